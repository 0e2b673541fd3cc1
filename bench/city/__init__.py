"""The parts of ``bench/city_seed.py``: a seeded 包头 (geometry, people and a year of history, checks)."""
