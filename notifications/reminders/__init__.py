"""Shift reminders: written before each assigned shift, at a city's offsets (its own or the default)."""
