"""Measurement and reporting of the load driver: phases, CPU accounting from /proc, percentiles,
ratios to the bare endpoint and the Markdown table (``bench/load.py`` drives the requests)."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENDPOINTS = ("bare", "me", "locate")


@dataclass
class Phase:
    endpoint: str
    round: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    errors: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds spent during the phase, by party

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())


class CpuMeter:
    """CPU seconds used by the driver, the gunicorn master and workers, and the database's backends.

    Read from /proc (Linux), so the cost of a request can be compared even when other work on the
    machine disturbs the latencies. Backends are recognised by their process title, which names the
    database (``postgres: 15/main: postgres test_bench 127.0.0.1(…) idle``).
    """

    def __init__(self, server_pid: int | None, database: str | None) -> None:
        self.server_pid = server_pid
        self.database = database
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.enabled = Path("/proc/self/stat").exists()

    @staticmethod
    def _stat(pid: str) -> tuple[int, int] | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return int(fields[1]), int(fields[11]) + int(fields[12])  # ppid, utime + stime (ticks)

    def snapshot(self) -> dict[str, dict[str, int]]:
        if not self.enabled:
            return {}
        server: dict[str, int] = {}
        database: dict[str, int] = {}
        marker = f" {self.database} " if self.database else None
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            stat = self._stat(entry.name)
            if stat is None:
                continue
            ppid, ticks = stat
            if self.server_pid and (int(entry.name) == self.server_pid or ppid == self.server_pid):
                server[entry.name] = ticks
            elif marker:
                try:
                    title = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                except (OSError, UnicodeDecodeError):
                    continue
                if title.startswith("postgres:") and marker in title + " ":
                    database[entry.name] = ticks
        times = os.times()
        return {"server": server, "database": database,
                "driver": {"self": round((times.user + times.system) * self.tick)}}

    def spent(self, before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, float]:
        """CPU seconds per party between two snapshots (a process born in between counts in full)."""
        return {
            party: sum(ticks - before.get(party, {}).get(pid, 0) for pid, ticks in after[party].items())
            / self.tick
            for party in after
        }


def machine(load_at_start: tuple[float, float, float], load_after_warmup: tuple[float, float, float]) -> dict[str, Any]:
    """The machine a run was on, and its load (other work shows here; a benchmark keeps about 2
    cores busy itself)."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": load_at_start,
        "loadavg_after_warmup": load_after_warmup,
        "loadavg_after": os.getloadavg(),
    }


def timed_rounds(
    cases: dict[str, Callable[[], Any]], rounds: int, calls: int, bare_calls: int
) -> tuple[dict[str, list[float]], list[dict[str, float]]]:
    """Each case timed one call at a time (``bare_calls`` for a case named ``bare…``, ``calls`` for the
    others), in ``rounds`` rounds whose order rotates every round, so drift on the machine hits every
    case alike. Returns every latency (ms) by case and each round's medians; prints each round's."""
    latencies: dict[str, list[float]] = {}
    per_round: list[dict[str, float]] = []
    names = list(cases)
    for round_no in range(rounds):
        order = names[round_no % len(names) :] + names[: round_no % len(names)]
        this_round: dict[str, list[float]] = {}
        for name in order:
            for _ in range(bare_calls if name.startswith("bare") else calls):
                began = time.perf_counter()
                cases[name]()
                elapsed = (time.perf_counter() - began) * 1000
                latencies.setdefault(name, []).append(elapsed)
                this_round.setdefault(name, []).append(elapsed)
        per_round.append({name: statistics.median(values) for name, values in this_round.items()})
        print(
            f"# round {round_no + 1}: "
            + ", ".join(f"{name} {statistics.median(values):.0f}" for name, values in this_round.items()),
            file=sys.stderr,
        )
    return latencies, per_round


def drive(
    phase: Phase,
    worker: Callable[[int], None],
    connections: int,
    seconds: float,
    start: threading.Event,
    box: dict[str, float],
    latencies: list[list[float]],
    errors: list[dict[str, int]],
    meter: CpuMeter | None = None,
) -> Phase:
    """Run ``worker(index)`` on ``connections`` threads released together by ``start``, with the
    deadline in ``box["deadline"]``, and gather each thread's latencies and error counts into ``phase``."""
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    cpu_before = meter.snapshot() if meter else {}
    began = time.perf_counter()
    box["deadline"] = began + seconds
    start.set()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    phase.seconds = time.perf_counter() - began
    if meter and cpu_before:
        phase.cpu = meter.spent(cpu_before, meter.snapshot())
    for own in latencies:
        phase.latencies.extend(own)
    for own in errors:
        for kind, count in own.items():
            phase.errors[kind] = phase.errors.get(kind, 0) + count
    return phase


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summarise(
    latencies: list[float], errors: dict[str, int], seconds: float, cpu: dict[str, float] | None = None
) -> dict[str, Any]:
    ordered = sorted(latencies)
    total = len(ordered) + sum(errors.values())
    cpu_per_request = {
        f"{party}_ms": round(used / total * 1000, 3) if total else float("nan") for party, used in (cpu or {}).items()
    }
    if cpu_per_request:
        cpu_per_request["server_and_database_ms"] = round(
            cpu_per_request.get("server_ms", 0.0) + cpu_per_request.get("database_ms", 0.0), 3
        )
    return {
        "requests": total,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "seconds": round(seconds, 3),
        "rps": round(len(ordered) / seconds, 1) if seconds else 0.0,
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
        "mean_ms": round(sum(ordered) / len(ordered) * 1000, 3) if ordered else float("nan"),
        "cpu_per_request": cpu_per_request,
        "cores_busy": {party: round(used / seconds, 2) for party, used in (cpu or {}).items()} if seconds else {},
    }


def pooled(phases: list[Phase]) -> dict[str, Any]:
    """:func:`summarise` over several phases taken as one (their latencies, errors, seconds and CPU)."""
    errors: dict[str, int] = {}
    cpu: dict[str, float] = {}
    for phase in phases:
        for kind, count in phase.errors.items():
            errors[kind] = errors.get(kind, 0) + count
        for party, used in phase.cpu.items():
            cpu[party] = cpu.get(party, 0.0) + used
    return summarise([x for phase in phases for x in phase.latencies], errors, sum(p.seconds for p in phases), cpu)


def ratios(pooled: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    bare = pooled["bare"]
    out = {}
    for endpoint in ("me", "locate"):
        figures = pooled[endpoint]
        out[endpoint] = {
            "p50": round(figures["p50_ms"] / bare["p50_ms"], 2),
            "p99": round(figures["p99_ms"] / bare["p99_ms"], 2),
            "rps": round(bare["rps"] / figures["rps"], 2) if figures["rps"] else float("inf"),
        }
        cpu, bare_cpu = figures["cpu_per_request"], bare["cpu_per_request"]
        if cpu and bare_cpu.get("server_and_database_ms"):
            # Reported, not part of the target: what a request costs the server, whatever else runs.
            out[endpoint]["cpu_info"] = round(cpu["server_and_database_ms"] / bare_cpu["server_and_database_ms"], 2)
    return out


def markdown(pooled: dict[str, dict[str, Any]], ratio: dict[str, dict[str, float]]) -> str:
    lines = [
        "| endpoint | requests | errors | req/s | p50 ms | p99 ms | p50 ÷ bare | p99 ÷ bare | bare req/s ÷ req/s "
        "| server+DB CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {"bare": "bare `GET /healthz`", "me": "`GET /api/v1/me`", "locate": "`GET /api/v1/areas/locate`"}
    for endpoint in ENDPOINTS:
        f = pooled[endpoint]
        r = ratio.get(endpoint, {"p50": 1.0, "p99": 1.0, "rps": 1.0, "cpu_info": 1.0})
        cpu = f["cpu_per_request"].get("server_and_database_ms")
        cpu_cell = f"{cpu:.2f} ({r.get('cpu_info', float('nan')):.2f}×)" if cpu is not None else "n/a"
        lines.append(
            f"| {labels[endpoint]} | {f['requests']} | {f['errors']} | {f['rps']:.0f} | {f['p50_ms']:.2f} | "
            f"{f['p99_ms']:.2f} | {r['p50']:.2f}× | {r['p99']:.2f}× | {r['rps']:.2f}× | {cpu_cell} |"
        )
    return "\n".join(lines)


def finish(work_dir: Path, keep: bool, failed: bool, met: bool, strict: bool) -> int:
    """Clean up a run's scratch directory (unless kept) and say how it ended: 2 when a check of the
    answers failed, 1 when ``--strict`` and the target was not met, else 0."""
    if not keep:
        shutil.rmtree(work_dir, ignore_errors=True)
    if failed:
        return 2
    return 1 if strict and not met else 0


def stop_group(server: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn and its workers: quick shutdown, then SIGKILL to the group if a worker is still
    in a long query (a sync worker only sees a signal between statements)."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGQUIT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    server.wait()
