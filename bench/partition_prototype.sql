-- Prototype for docs/partitioning.md: a notifications-shaped table partitioned by the month of
-- created_at, the outbox claim's partial index per partition, and the claim as
-- notifications/delivery/service.py writes it. Run in a scratch database:
--   createdb -h 127.0.0.1 -U postgres proto && psql -h 127.0.0.1 -U postgres -d proto -f bench/partition_prototype.sql
-- Not used by the product or the tests.
\set ON_ERROR_STOP on
DROP TABLE IF EXISTS notifications_flat;
DROP TABLE IF EXISTS notifications_proto;
CREATE TABLE notifications_proto (
    id bigserial NOT NULL,
    user_id integer NOT NULL,
    dedupe_key varchar(120),
    created_at timestamptz NOT NULL,
    read_at timestamptz,
    urgent boolean NOT NULL DEFAULT false,
    push_status varchar(16) NOT NULL,
    push_due_at timestamptz NOT NULL,
    push_claim varchar(36),
    push_claimed_until timestamptz,
    push_attempts integer NOT NULL DEFAULT 0,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

DO $$
DECLARE month date := date '2025-12-01';
BEGIN
  WHILE month <= date '2026-12-01' LOOP
    EXECUTE format('CREATE TABLE notifications_proto_p%s PARTITION OF notifications_proto FOR VALUES FROM (%L) TO (%L)',
                   to_char(month, 'YYYY_MM'), month::text || ' 00:00:00+00', (month + interval '1 month')::date::text || ' 00:00:00+00');
    month := (month + interval '1 month')::date;
  END LOOP;
END $$;

CREATE INDEX ix_proto_push_due ON notifications_proto (push_due_at, urgent DESC, id) WHERE push_status = 'pending';
CREATE INDEX ix_proto_user_id_id ON notifications_proto (user_id, id);

-- 200,000 sent rows a month for 13 months, then 2,000 pending in the current month.
INSERT INTO notifications_proto (user_id, created_at, push_status, push_due_at)
SELECT (g % 45000) + 1, ts, 'sent', ts
FROM generate_series(0, 13 * 200000 - 1) g,
     LATERAL (SELECT timestamptz '2025-12-01 00:00:00+00' + (g / 200000) * interval '1 month' + (g % 200000) * interval '10 seconds') t(ts);
INSERT INTO notifications_proto (user_id, created_at, push_status, push_due_at, urgent)
SELECT (g % 45000) + 1, timestamptz '2026-12-07 10:00:00+00', 'pending', timestamptz '2026-12-07 10:00:00+00' + g * interval '1 second', g % 10 = 0
FROM generate_series(1, 2000) g;
ANALYZE notifications_proto;

-- The yardstick: the same rows in one plain table with the same indexes.
CREATE TABLE notifications_flat (LIKE notifications_proto INCLUDING DEFAULTS);
ALTER TABLE notifications_flat ADD PRIMARY KEY (id);
INSERT INTO notifications_flat SELECT * FROM notifications_proto;
CREATE INDEX ix_flat_push_due ON notifications_flat (push_due_at, urgent DESC, id) WHERE push_status = 'pending';
CREATE INDEX ix_flat_user_id_id ON notifications_flat (user_id, id);
ANALYZE notifications_flat;

EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON)
WITH due AS MATERIALIZED (
    SELECT id FROM notifications_proto
    WHERE push_status = 'pending' AND push_due_at <= timestamptz '2026-12-07 12:00:00+00'
      AND (push_claimed_until IS NULL OR push_claimed_until <= timestamptz '2026-12-07 12:00:00+00')
    ORDER BY push_due_at, urgent DESC, id LIMIT 100 FOR UPDATE SKIP LOCKED
)
UPDATE notifications_proto SET push_claim = 'w1', push_claimed_until = timestamptz '2026-12-07 12:01:00+00'
WHERE id IN (SELECT id FROM due);

-- The same claim carrying created_at, so the UPDATE reaches each row's own partition only.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON)
WITH due AS MATERIALIZED (
    SELECT id, created_at FROM notifications_proto
    WHERE push_status = 'pending' AND push_due_at <= timestamptz '2026-12-07 12:00:00+00'
      AND (push_claimed_until IS NULL OR push_claimed_until <= timestamptz '2026-12-07 12:00:00+00')
    ORDER BY push_due_at, urgent DESC, id LIMIT 100 FOR UPDATE SKIP LOCKED
)
UPDATE notifications_proto SET push_claim = 'w2', push_claimed_until = timestamptz '2026-12-07 12:01:00+00'
WHERE (id, created_at) IN (SELECT id, created_at FROM due);

-- The yardstick's claim.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON)
WITH due AS MATERIALIZED (
    SELECT id FROM notifications_flat
    WHERE push_status = 'pending' AND push_due_at <= timestamptz '2026-12-07 12:00:00+00'
      AND (push_claimed_until IS NULL OR push_claimed_until <= timestamptz '2026-12-07 12:00:00+00')
    ORDER BY push_due_at, urgent DESC, id LIMIT 100 FOR UPDATE SKIP LOCKED
)
UPDATE notifications_flat SET push_claim = 'w1', push_claimed_until = timestamptz '2026-12-07 12:01:00+00'
WHERE id IN (SELECT id FROM due);

-- The inbox page: a user's newest 20 by id.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON)
SELECT id FROM notifications_proto WHERE user_id = 4242 ORDER BY id DESC LIMIT 20;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON)
SELECT id FROM notifications_flat WHERE user_id = 4242 ORDER BY id DESC LIMIT 20;
