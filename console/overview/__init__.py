"""The overview (page 1): an area's month at a glance — figures against last month, a daily trend,
the weakest grids and what needs attention today — composed from the participation and coverage
reports and the API's own lists (coverage gaps, presence review, reports, volunteers)."""
