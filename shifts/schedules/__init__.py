"""Schedules: open shifts near a volunteer, my shifts, an area's schedule, a shift's roster, coverage
gaps.
"""
