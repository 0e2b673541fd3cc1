"""The coverage map: the grids of an area drawn from their stored boundaries (ECharts, no tile
server), coloured by the coverage report's figures; a grid clicked opens its participation page."""
