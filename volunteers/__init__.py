"""Volunteer profiles, kinds, self-registration, vetting, availability and personal data rights."""
