"""Peak memory of a 100,000-row participation export, through the writers the endpoint uses.

Rows are generated one at a time (a volunteer's figures, as the participation report gives them)
and laid out by ``reports.exports.participation.row`` with the export's own columns, then written by
``write_xlsx`` (write-only workbook into a temporary file) and by ``csv_chunks`` (chunks counted
and dropped, as a server sends them). For each format: the peak of Python allocations during the
write (tracemalloc, so what the writer holds, not what the interpreter had before), the wall
time, the output size; and, for scale, the peak of merely holding the same rows in a list, which is
what a writer that kept them would need at least. The process's maximum resident set size is
printed last (it includes the interpreter and the imports).

    .venv/bin/python bench/export_memory.py [--rows 100000] [--only xlsx|csv|held] [--no-tracemalloc]

``--no-tracemalloc`` times the writers without tracing (tracing slows allocation-heavy code several
times) and shows memory as the growth of the maximum resident set size over that after the imports.

Not a test: figures go to bench/README.md ("Exports").
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reports.exports.participation import columns, row
from reports.exports.writers import Sheet, csv_chunks, write_xlsx

FIRST, LAST = date(2026, 9, 1), date(2026, 9, 30)
AS_OF = datetime(2026, 10, 1, 8, 0)


def figures(number: int) -> dict[str, Any]:
    """Plausible, varied figures of one volunteer (every section a report row has)."""
    assigned = number % 9
    served = assigned - number % 3 if assigned >= number % 3 else 0
    return {
        "volunteers": {"registered": number % 2, "approved": 1, "newly_approved": number % 5 == 0,
                       "suspended_closed": 0, "active": int(served > 0)},
        "shifts": None,
        "presence": {"assignments": assigned, "served": served, "no_shows": assigned - served, "late_withdrawals": 0,
                     "in_review": number % 4 == 0, "attendance_rate": served / assigned if assigned else None,
                     "served_hours": round(served * 2.5, 2), "manual_hours": (number % 7) / 2},
        "reports": {"filed": number % 3, "by_level": {"red": 0, "orange": number % 2, "yellow": 0, "green": 1},
                    "taken_up": 1, "resolved": number % 2, "median_minutes_to_take_up": 12.5,
                    "median_minutes_to_resolve": None},
        "points": {"awarded": served * 10, "reversed": 0, "redeemed": number % 50, "expired": 0, "adjusted": 0,
                   "star_levels": {f"star_{level}": int(number % (97 * level) == 0) for level in range(1, 6)}},
    }


def rows(count: int) -> Iterator[list[Any]]:
    for number in range(count):
        yield row("volunteer", 1_000_000 + number, f"志愿者{number}", FIRST, LAST, AS_OF, figures(number))


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(label: str, work: Callable[[], int], trace: bool) -> None:
    if trace:
        tracemalloc.start()
    rss_before = _max_rss_mib()
    started = time.perf_counter()
    size = work()
    elapsed = time.perf_counter() - started
    if trace:
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        memory = f"peak {peak / 2**20:7.1f} MiB"
    else:
        memory = f"max RSS +{_max_rss_mib() - rss_before:6.1f} MiB"
    print(f"{label:<28} {memory}   {elapsed:6.1f} s   output {size / 2**20:6.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--only", choices=("xlsx", "csv", "held"))
    parser.add_argument("--no-tracemalloc", action="store_true")
    options = parser.parse_args()
    count, trace = options.rows, not options.no_tracemalloc
    heads = columns("zh")
    print(f"{count:,} rows × {len(heads)} columns")

    def xlsx() -> int:
        with tempfile.TemporaryFile(suffix=".xlsx") as spool:
            write_xlsx([Sheet("志愿者", heads, rows(count))], spool)
            return spool.tell()

    def csv() -> int:
        return sum(len(chunk) for chunk in csv_chunks(heads, rows(count)))

    def held() -> int:
        kept = list(rows(count))
        return len(kept) * 0  # no output: only what holding the rows costs

    print(f"max resident set size after the imports: {_max_rss_mib():.1f} MiB")
    runs = {"xlsx": ("xlsx (write-only, streamed)", xlsx), "csv": ("csv (chunks, streamed)", csv),
            "held": ("rows held in a list", held)}
    for name, (label, work) in runs.items():
        if options.only in (None, name):
            measure(label, work, trace)
    print(f"max resident set size of the process: {_max_rss_mib():.1f} MiB (pid {os.getpid()})")


if __name__ == "__main__":
    main()
