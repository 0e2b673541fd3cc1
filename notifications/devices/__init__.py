"""Devices: the push tokens of a user's phones (register, refresh, list, remove, unregister)."""
