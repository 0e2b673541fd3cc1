"""Redemptions: spending points on a catalogue item, and the workflow after."""
