"""GPS tracks: uploads in batches, distance walked with GPS jumps left out, GeoJSON, the purge after
TRACK_RETENTION_DAYS (``tasks``).
"""
