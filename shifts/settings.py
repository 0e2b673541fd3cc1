"""shifts' settings: planning limits, repeating series, auto-fill (``core/config.py`` explains the table)."""

from __future__ import annotations

from core.config import Setting, integer

SETTINGS: tuple[Setting, ...] = (
    integer(
        "SHIFT_WITHDRAW_CUTOFF_MINUTES", 120,
        "volunteers withdraw on their own until this long before a shift; later only an organiser can, "
        "marked late",
    ),
    integer("SHIFT_MIN_REST_MINUTES", 60, "least time between the end of one of a volunteer's shifts and the next"),
    integer("SHIFT_MAX_HOURS", 12, "longest shift, in hours"),
    integer("SHIFT_MAX_HEADCOUNT", 100, "largest headcount of a shift"),
    # Repeating shifts exist as concrete shifts this far ahead; a periodic task tops them up.
    integer("SERIES_HORIZON_DAYS", 56, "repeating shifts exist this many days ahead"),
    integer("SERIES_MAX_OCCURRENCES", 366, "a repeat rule may not expand past this many shifts"),
    integer("SERIES_TOP_UP_MINUTES", 60, "how often beat tops repeating shifts up to the horizon"),
    integer(
        "AUTOFILL_WEEKLY_CAP_HOURS", 8,
        "auto-fill's default cap on a volunteer's planned hours per week (Monday to Sunday, local)",
    ),
    # The exact CP-SAT model is tried only when a plan has at most AUTOFILL_EXACT_MAX_PAIRS candidate
    # (shift, volunteer) pairs; above, the greedy plan with its proven bound.
    integer("AUTOFILL_MAX_SHIFTS", 20_000, "auto-fill refuses areas with more open shifts than this (422)"),
    integer(
        "AUTOFILL_EXACT_MAX_PAIRS", 20_000,
        "auto-fill tries the exact model only up to this many candidate (shift, volunteer) pairs",
    ),
)
