"""A volunteer's personal iCalendar feed behind a secret, revocable URL."""
