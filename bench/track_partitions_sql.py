"""The track upload's two statements alone, on a plain and a month-partitioned table, alternated.

Usage (from the repository root)::

    .venv/bin/python bench/track_partitions_sql.py [batches, default 100]

In ``BENCH_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/bench_partitions``) it makes
``tp_plain`` (migration 0019's layout, no foreign key) and ``tp_part`` (0020's: six months and the
default partition), each with 300,000 points of history, then per batch and per table, in plain
psycopg and alternating which goes first: the upload's insert of 1,000 points (unnest, ON CONFLICT
DO NOTHING RETURNING id), the recount's read of the patrol's whole track, and that read bounded by
the shift's window. Prints the median and p95 of each in milliseconds and the ratios. The tables are
left for inspection (dropped at the next run).
"""
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

import psycopg

url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_partitions")
COLUMNS = (
    "id bigserial, patrol_id int NOT NULL, device_at timestamptz NOT NULL, received_at timestamptz NOT NULL, "
    "lat float8 NOT NULL, lon float8 NOT NULL, accuracy_m float8"
)
MONTHS = [(2026, 9), (2026, 10), (2026, 11), (2026, 12), (2027, 1), (2027, 2)]
INSERT = (
    "INSERT INTO {t} (patrol_id, device_at, received_at, lat, lon, accuracy_m) SELECT %(p)s, x.d, now(), x.la, x.lo, x.a "
    "FROM unnest(%(d)s::timestamptz[], %(la)s::float8[], %(lo)s::float8[], %(a)s::float8[]) AS x(d, la, lo, a) "
    "ON CONFLICT (patrol_id, device_at) DO NOTHING RETURNING id"
)
READ = "SELECT device_at, lat, lon FROM {t} WHERE patrol_id = %(p)s ORDER BY device_at"
BOUNDED = (
    "SELECT device_at, lat, lon FROM {t} WHERE patrol_id = %(p)s AND device_at BETWEEN %(lo)s AND %(hi)s "
    "ORDER BY device_at"
)
START = datetime(2026, 12, 7, 8, tzinfo=UTC)


def setup(conn: psycopg.Connection) -> None:
    conn.execute("DROP TABLE IF EXISTS tp_plain, tp_part")
    conn.execute(f"CREATE TABLE tp_plain ({COLUMNS}, PRIMARY KEY (id), UNIQUE (patrol_id, device_at))")
    conn.execute(
        f"CREATE TABLE tp_part ({COLUMNS}, PRIMARY KEY (id, device_at), UNIQUE (patrol_id, device_at)) "
        "PARTITION BY RANGE (device_at)"
    )
    for year, month in MONTHS:
        after_year, after_month = year + month // 12, month % 12 + 1
        conn.execute(
            f"CREATE TABLE tp_part_{year}_{month:02d} PARTITION OF tp_part FOR VALUES "
            f"FROM ('{year}-{month:02d}-01 00:00+00') TO ('{after_year}-{after_month:02d}-01 00:00+00')"
        )
    conn.execute("CREATE TABLE tp_part_default PARTITION OF tp_part DEFAULT")
    for table in ("tp_plain", "tp_part"):
        conn.execute(
            f"INSERT INTO {table} (patrol_id, device_at, received_at, lat, lon) SELECT 100000 + g / 1000, "
            "timestamptz '2026-09-05 00:00+00' + g * interval '20 seconds', now(), 1, 1 FROM generate_series(0, 299999) g"
        )
        conn.execute(f"ANALYZE {table}")


def main(batches: int) -> None:
    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    setup(conn)
    times: dict[str, dict[str, list[float]]] = {t: {"insert": [], "read": [], "bounded": []} for t in ("tp_plain", "tp_part")}
    window = {"lo": START - timedelta(hours=1), "hi": START + timedelta(hours=3)}
    for batch in range(batches):
        params = {
            "p": batch, "d": [START + timedelta(seconds=s) for s in range(1000)],
            "la": [40.6] * 1000, "lo": [109.8] * 1000, "a": [5.0] * 1000,
        }
        for table in ("tp_plain", "tp_part") if batch % 2 == 0 else ("tp_part", "tp_plain"):
            with conn.transaction():
                started = time.perf_counter()
                conn.execute(INSERT.format(t=table), params).fetchall()
                inserted = time.perf_counter()
                conn.execute(READ.format(t=table), {"p": batch}).fetchall()
                read = time.perf_counter()
                conn.execute(BOUNDED.format(t=table), {"p": batch, **window}).fetchall()
                bounded = time.perf_counter()
            times[table]["insert"].append((inserted - started) * 1000)
            times[table]["read"].append((read - inserted) * 1000)
            times[table]["bounded"].append((bounded - read) * 1000)
    for table, measured in times.items():
        summary = {k: (round(statistics.median(v), 2), round(sorted(v)[int(0.95 * len(v)) - 1], 2)) for k, v in measured.items()}
        print(table, "median, p95 ms:", summary)
    for kind in ("insert", "read", "bounded"):
        ratio = statistics.median(times["tp_part"][kind]) / statistics.median(times["tp_plain"][kind])
        print(f"partitioned / plain, median {kind}: {ratio:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
