"""Daily roll-ups of the participation figures (see :mod:`reports.rollups.models`)."""
