"""Report triage: the patrol reports of the caller's area, red and orange first, and one report's
details, history, photos and handling, through the very service calls of the API's report
endpoints (``patrols/reports/routes.py``)."""
