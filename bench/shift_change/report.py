"""Figures of a shift-change run read back from Locust's CSV, and the Markdown summary printed at the end."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open() as handle:
        return list(csv.DictReader(handle))


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


def status_of(key: str) -> str:
    """The status in a key of the locustfile's answer counts ("NAME STATUS" or "NAME STATUS retry-after")."""
    words = key.split(" ")
    return words[-2] if words[-1] == "retry-after" else words[-1]


def read_locust(out: Path) -> dict[str, Any]:
    """Per endpoint: requests, failures, p50/p99 (ms); and requests/s held (median of the seconds with
    every volunteer spawned, from the aggregated history)."""
    endpoints = {}
    for row in _rows(out / "locust_stats.csv"):
        endpoints[row["Name"]] = {
            "requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
            "rps": _number(row["Requests/s"]), "p50_ms": _number(row["50%"]), "p99_ms": _number(row["99%"]),
            "max_ms": _number(row["Max Response Time"]),
        }
    history = [row for row in _rows(out / "locust_stats_history.csv") if row["Name"] == "Aggregated"]
    users = [int(row["User Count"]) for row in history]
    full = [_number(row["Requests/s"]) or 0.0 for row in history if users and int(row["User Count"]) == max(users)]
    timeline = [{"t": i, "users": int(row["User Count"]), "rps": _number(row["Requests/s"]),
                 "p50_ms": _number(row["50%"]), "p99_ms": _number(row["99%"])}
                for i, row in enumerate(history)][::5]
    return {
        "endpoints": endpoints,
        "rps_held_median": round(statistics.median(full), 1) if full else None,
        "rps_held_min": round(min(full), 1) if full else None,
        "timeline_every_5s": timeline,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = []
    settings = result["settings"]
    lines.append(f"Shift change: {settings['volunteers']} volunteers over {settings['checkin_window']:.0f} s, "
                 f"{settings['minutes']:g} min, seed {settings['seed']}, gunicorn -w {settings['workers']}, "
                 f"celery -c {settings['celery_concurrency']}, "
                 + ("phones straight to gunicorn" if settings.get("no_proxy") else "through nginx"))
    figures = result.get("locust") or {}
    lines.append(f"Requests/s held (all volunteers on duty): median {figures.get('rps_held_median')}, "
                 f"lowest second {figures.get('rps_held_min')}")
    lines += ["", "| endpoint | requests | non-2xx | req/s | p50 ms | p99 ms |", "|---|---:|---:|---:|---:|---:|"]
    for name, f in (figures.get("endpoints") or {}).items():
        lines.append(f"| {name} | {f['requests']} | {f['failures']} | {f['rps'] or 0:.1f} | "
                     f"{f['p50_ms'] or 0:.0f} | {f['p99_ms'] or 0:.0f} |")
    answers = result.get("answers") or {}
    non_2xx = {k: v for k, v in answers.items() if not status_of(k).startswith("2")}
    lines += ["", "Answers other than 2xx: " + (", ".join(f"{k}: {v}" for k, v in sorted(non_2xx.items())) or "none")]
    for kind, f in (result.get("acks") or {}).items():
        lines.append(f"Acknowledged {kind}s: {f['acknowledged']}, in the database {f['in_database']}, "
                     f"lost {f['lost']}")
    pushes = result.get("pushes") or {}
    if pushes:
        lines.append(f"Pushes: outbox {pushes['outbox']}, kinds {pushes['kinds']}; FCM server got "
                     f"{pushes['delivered']} of {pushes['expected_deliveries']} expected, twice "
                     f"{pushes['delivered_twice']}, missing {pushes['not_delivered']}")
    for fault in result.get("faults") or []:
        lines.append(f"Fault: {fault}")
    samples = result.get("outbox_samples") or []
    if samples:
        lines.append("Outbox (t s: pending/sent): " + ", ".join(
            f"{s['t']:.0f}: {s.get('pending', 0)}/{s.get('sent', 0)}" if "unavailable" not in s
            else f"{s['t']:.0f}: db away" for s in samples[::3]))
    seen = result.get("nginx_access")
    if seen:
        lines.append(f"nginx's log of the load: {seen['requests']} requests, by status {seen['statuses']}; "
                     f"nginx's time p50/p99 {seen['nginx']['p50_ms']}/{seen['nginx']['p99_ms']} ms, "
                     f"gunicorn's part p50/p99 {seen['gunicorn']['p50_ms']}/{seen['gunicorn']['p99_ms']} ms")
    cpu = result.get("cpu_during_load_s")
    if cpu:
        lines.append(f"CPU seconds during the load: {cpu} over {result.get('load_seconds')} s")
    per_endpoint = result.get("cpu_per_endpoint") or {}
    if per_endpoint:
        lines += ["", "| endpoint alone | 2xx | other | req/s | gunicorn CPU ms/req | PostgreSQL CPU ms/req |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, f in per_endpoint.items():
            c = f["cpu_ms_per_request"]
            lines.append(f"| {name} | {f['requests_2xx']} | {f['other']} | {f['rps']} | {c.get('gunicorn')} | "
                         f"{c.get('postgres')} |")
    return "\n".join(lines)
