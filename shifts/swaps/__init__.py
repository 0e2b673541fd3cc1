"""Swap requests between two volunteers of one community, and their approval by an organiser."""
