"""Weekly repeating series: RFC 5545 rules (``repeats``), creating and expanding a series, editing and
cancelling all or this-and-following occurrences (``edits``), the periodic top-up (``tasks``).
"""
