"""The notifications' hot statements alone, on a plain and a month-partitioned table, alternated.

Usage (from the repository root)::

    .venv/bin/python bench/notification_partitions_sql.py [rounds, default 200]

In ``BENCH_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/bench_partitions``) it makes
``np_plain`` (migration 0020's layout: one table, the unique dedupe key) and ``np_part`` (0021's: the
six months a 180-day retention keeps, this month, two ahead and the default partition, and the
dedupe table ``np_keys``), each with 100,000 notifications a month for 2,000 users (10% unread) and
2,000 pushes pending this month, with the model's indexes. Then per round and per table, in plain
psycopg and alternating which goes first: the inbox's first page (a user's newest 21 by id), a
later page (from a cursor id), the unread count, the outbox claim of 100 rows (the CTE, carrying
created_at into the UPDATE on the partitioned table; rolled back), and a write of 1,000 keyed
notifications (plain: ON CONFLICT on the unique key; partitioned: the keys first, then the rows
whose key was got; rolled back); at the end, once, the retention of the oldest month (plain: DELETE
of its 100,000 rows; partitioned: its dedupe keys deleted and its partition dropped). Prints the
median and p95 of each in milliseconds and the ratio.
The tables are left for inspection (dropped at the next run).
"""
import os
import random
import statistics
import sys
import time

import psycopg

url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_partitions")
COLUMNS = (
    "id bigserial, user_id int NOT NULL, kind varchar(40) NOT NULL, title varchar(200) NOT NULL, "
    "body varchar(1000) NOT NULL, data jsonb NOT NULL, urgent boolean NOT NULL, dedupe_key varchar(120), "
    "created_at timestamptz NOT NULL, read_at timestamptz, push_status varchar(16) NOT NULL, "
    "push_due_at timestamptz NOT NULL, push_attempts int NOT NULL, push_claim varchar(36), "
    "push_claimed_until timestamptz, push_device_ids jsonb NOT NULL"
)
KEPT = [(2026, 6), (2026, 7), (2026, 8), (2026, 9), (2026, 10), (2026, 11)]
MONTHS = [*KEPT, (2026, 12), (2027, 1), (2027, 2)]
USERS, PER_MONTH, PENDING = 2000, 100_000, 2000
FILL = (
    "INSERT INTO {t} (user_id, kind, title, body, data, urgent, dedupe_key, created_at, read_at, push_status, "
    "push_due_at, push_attempts, push_device_ids) SELECT 1 + g %% {users}, 'broadcast', '标题', '今晚巡逻', '{{}}', "
    "false, CASE WHEN g %% 3 = 0 THEN 'k:' || %(start)s || ':' || g END, %(start)s::timestamptz + g * %(step)s::interval, "
    "CASE WHEN g %% 10 = 0 THEN NULL ELSE %(start)s::timestamptz END, 'sent', %(start)s::timestamptz, 1, '[]' FROM generate_series(1, %(n)s) g"
)
PENDING_FILL = (
    "INSERT INTO {t} (user_id, kind, title, body, data, urgent, created_at, push_status, push_due_at, "
    "push_attempts, push_device_ids) SELECT 1 + g % {users}, 'broadcast', 't', 'b', '{{}}', g % 7 = 0, "
    "timestamptz '2026-12-07 08:00+00', 'pending', timestamptz '2026-12-07 08:00+00', 0, '[]' "
    "FROM generate_series(1, {pending}) g"
)
PAGE = "SELECT id, title FROM {t} WHERE user_id = %(u)s ORDER BY id DESC LIMIT 21"
LATER = "SELECT id, title FROM {t} WHERE user_id = %(u)s AND id < %(c)s ORDER BY id DESC LIMIT 21"
UNREAD = "SELECT count(*) FROM {t} WHERE user_id = %(u)s AND read_at IS NULL"
DUE = (
    "WITH due AS MATERIALIZED (SELECT id, created_at FROM {t} WHERE push_status = 'pending' "
    "AND push_due_at <= timestamptz '2026-12-07 09:00+00' AND (push_claimed_until IS NULL "
    "OR push_claimed_until <= timestamptz '2026-12-07 09:00+00') ORDER BY push_due_at, urgent DESC, id "
    "LIMIT 100 FOR UPDATE SKIP LOCKED) UPDATE {t} SET push_claim = 'c', push_attempts = push_attempts + 1 "
)
CLAIM = {
    "np_plain": DUE + "WHERE id IN (SELECT id FROM due) RETURNING id",
    "np_part": DUE + "WHERE (id, created_at) IN (SELECT id, created_at FROM due) RETURNING id",
}
ROWS = (
    "INSERT INTO {t} (user_id, kind, title, body, data, urgent, dedupe_key, created_at, push_status, push_due_at, "
    "push_attempts, push_device_ids) SELECT x.u, 'shift_reminder', 't', 'b', '{{}}', false, x.k, now(), 'pending', "
    "now(), 0, '[]' FROM unnest(%(u)s::int[], %(k)s::text[]) AS x(u, k) "
)
KEYS = (
    "INSERT INTO np_keys (user_id, dedupe_key, created_at) SELECT x.u, x.k, now() "
    "FROM unnest(%(u)s::int[], %(k)s::text[]) AS x(u, k) ON CONFLICT DO NOTHING RETURNING user_id, dedupe_key"
)


def setup(conn: psycopg.Connection) -> None:
    conn.execute("DROP TABLE IF EXISTS np_plain, np_part, np_keys")
    conn.execute(f"CREATE TABLE np_plain ({COLUMNS}, PRIMARY KEY (id), UNIQUE (user_id, dedupe_key))")
    conn.execute(f"CREATE TABLE np_part ({COLUMNS}, PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)")
    conn.execute(
        "CREATE TABLE np_keys (user_id int, dedupe_key varchar(120), created_at timestamptz NOT NULL, "
        "PRIMARY KEY (user_id, dedupe_key))"
    )
    conn.execute("CREATE INDEX ON np_keys (created_at)")
    for year, month in MONTHS:
        after_year, after_month = year + month // 12, month % 12 + 1
        conn.execute(
            f"CREATE TABLE np_part_{year}_{month:02d} PARTITION OF np_part FOR VALUES "
            f"FROM ('{year}-{month:02d}-01 00:00+00') TO ('{after_year}-{after_month:02d}-01 00:00+00')"
        )
    conn.execute("CREATE TABLE np_part_default PARTITION OF np_part DEFAULT")
    for table in ("np_plain", "np_part"):
        conn.execute(f"CREATE INDEX ON {table} (user_id, id)")
        conn.execute(f"CREATE INDEX ON {table} (user_id, dedupe_key)" if table == "np_part" else "SELECT 1")
        conn.execute(f"CREATE INDEX ON {table} (user_id) WHERE read_at IS NULL")
        conn.execute(f"CREATE INDEX ON {table} (push_due_at, urgent DESC, id) WHERE push_status = 'pending'")
        for year, month in KEPT:
            step = f"{28 * 86400 // PER_MONTH} seconds"
            conn.execute(
                FILL.format(t=table, users=USERS),
                {"start": f"{year}-{month:02d}-01 00:00+00", "step": step, "n": PER_MONTH},
            )
        conn.execute(PENDING_FILL.format(t=table, users=USERS, pending=PENDING))
    conn.execute("INSERT INTO np_keys SELECT user_id, dedupe_key, created_at FROM np_part WHERE dedupe_key IS NOT NULL")
    conn.commit()
    conn.autocommit = True  # VACUUM runs outside a transaction
    for table in ("np_plain", "np_part", "np_keys"):
        conn.execute(f"VACUUM ANALYZE {table}")


def timed(conn: psycopg.Connection, sql: str, params: dict, rollback: bool = False) -> float:
    started = time.perf_counter()
    conn.execute(sql, params).fetchall()
    took = (time.perf_counter() - started) * 1000
    if rollback:
        conn.rollback()
    return took


def write_keyed(conn: psycopg.Connection, table: str, users: list[int], keys: list[str]) -> float:
    started = time.perf_counter()
    if table == "np_plain":
        conn.execute(ROWS.format(t=table) + "ON CONFLICT (user_id, dedupe_key) DO NOTHING RETURNING id",
                     {"u": users, "k": keys}).fetchall()
    else:
        got = conn.execute(KEYS, {"u": users, "k": keys}).fetchall()
        conn.execute(ROWS.format(t=table) + "RETURNING id",
                     {"u": [u for u, _ in got], "k": [k for _, k in got]}).fetchall()
    took = (time.perf_counter() - started) * 1000
    conn.rollback()
    return took


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with psycopg.connect(url, autocommit=False) as conn:
        conn.execute("SET timezone TO 'Asia/Shanghai'")
        setup(conn)
        conn.autocommit = False
        times: dict[tuple[str, str], list[float]] = {}
        rng = random.Random(19)
        for round_ in range(rounds):
            user = rng.randint(1, USERS)
            cursor = conn.execute(
                "SELECT id FROM np_plain WHERE user_id = %(u)s ORDER BY id DESC OFFSET 100 LIMIT 1", {"u": user}
            ).fetchone()[0]
            conn.rollback()
            users = sorted(rng.sample(range(1, USERS + 1), 1000))
            keys = [f"bench:{round_}:{u}" for u in users]
            order = ("np_plain", "np_part") if round_ % 2 == 0 else ("np_part", "np_plain")
            for table in order:
                for name, sql, params, rollback in (
                    ("inbox first page", PAGE, {"u": user}, False),
                    ("inbox later page", LATER, {"u": user, "c": cursor}, False),
                    ("unread count", UNREAD, {"u": user}, False),
                    ("outbox claim (100)", CLAIM[table], {}, True),
                ):
                    times.setdefault((name, table), []).append(timed(conn, sql.format(t=table), params, rollback))
                conn.rollback()
                times.setdefault(("1,000 keyed rows written", table), []).append(write_keyed(conn, table, users, keys))
        # Retention of the oldest month, once (it changes the tables): row by row against the drop
        # (with the month's dedupe keys, as notifications/retention.py does).
        edge = "timestamptz '2026-07-01 00:00+00'"
        started = time.perf_counter()
        conn.execute(f"DELETE FROM np_plain WHERE created_at < {edge}")
        conn.commit()
        times[("retention: oldest month (once)", "np_plain")] = [(time.perf_counter() - started) * 1000] * 2
        started = time.perf_counter()
        conn.execute(f"DELETE FROM np_keys WHERE created_at >= timestamptz '2026-06-01 00:00+00' AND created_at < {edge}")
        conn.execute("DROP TABLE np_part_2026_06")
        conn.commit()
        times[("retention: oldest month (once)", "np_part")] = [(time.perf_counter() - started) * 1000] * 2
    names = list(dict.fromkeys(name for name, _ in times))
    print(f"{rounds} rounds; median / p95 in ms; partitioned ÷ plain (medians)")
    for name in names:
        plain, part = times[(name, "np_plain")], times[(name, "np_part")]
        p95 = lambda values: statistics.quantiles(values, n=20)[-1]  # noqa: E731
        print(
            f"{name:28} plain {statistics.median(plain):7.2f} / {p95(plain):7.2f}   "
            f"partitioned {statistics.median(part):7.2f} / {p95(part):7.2f}   "
            f"×{statistics.median(part) / statistics.median(plain):.2f}"
        )


if __name__ == "__main__":
    main()
