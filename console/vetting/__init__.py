"""The vetting queue: volunteers awaiting vetting in the caller's area, approved or rejected through
the very service calls of the API's approve and reject endpoints (``volunteers/routes.py``)."""
