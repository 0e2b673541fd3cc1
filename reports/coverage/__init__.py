"""Grid coverage: expected, staffed and served patrol of every grid of an area, uncovered windows,
the weakest grids ranked, the change against the previous period, and grids below their steward quota."""
