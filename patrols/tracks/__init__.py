"""GPS tracks: uploads in batches (with the volunteer's consent to tracking), distance walked with GPS
jumps left out, GeoJSON. Their purge after TRACK_RETENTION_DAYS lives in ``patrols/privacy/retention.py``.
"""
