"""Broadcasts: call-outs from organisers and staff to the active volunteers of a subtree."""
