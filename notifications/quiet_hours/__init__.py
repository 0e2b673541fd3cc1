"""Quiet hours: when a non-urgent push may go out (the rule), and a user's own quiet hours."""
