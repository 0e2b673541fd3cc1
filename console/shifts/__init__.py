"""The console's Shifts page: a week of a community's shifts, grid by grid, with the shifts short of
people marked as gaps, and a shift's roster.

It owns no rule: the week is the API's area schedule (``shifts.schedules.service.area_schedule``), a
shift and its roster are what the API answers a manager (``get_managed_shift``, ``shift_view``,
``roster``), check-ins come from the patrol of each assignment (``patrols.presence.review``), and
the communities to choose from are the grids package's listings.
"""
