"""Participation reports: see ``service.py`` for the rows each figure counts."""
