"""Filling a shift's places: sign-up and withdrawal, organiser assignment and removal, invitations,
absence (no-shows), A/B backups and the waitlist (``promotion``).
"""
