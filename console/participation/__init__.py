"""The participation page: an area's participation report with one row per child area (per
volunteer at a grid), drilling down from the caller's area to a volunteer, with the API's XLSX and
CSV exports as download buttons."""
