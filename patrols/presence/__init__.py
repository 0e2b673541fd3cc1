"""Presence on a shift: check-in and check-out from the phone (geofenced, offline-safe) and their
rules (``rules``), review by organisers (``review``), forgotten check-outs and no-shows
(``tasks``).
"""
