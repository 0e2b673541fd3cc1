"""Badges: milestones granted once, when earned (the month without absence by a periodic task)."""
