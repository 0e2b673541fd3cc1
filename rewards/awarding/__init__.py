"""Awarding: service records and points from served shifts, confirmed reports and hand-entered hours."""
