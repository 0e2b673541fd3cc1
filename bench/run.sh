#!/usr/bin/env bash
# End-to-end benchmark: recreate the database, seed 10,000 grids, start gunicorn on a free loopback
# port, run the load driver, stop gunicorn. `make bench` runs this from the repository root.
#
# Environment overrides (defaults in brackets):
#   BENCH_DATABASE_URL  PostgreSQL database to DROP and recreate [postgresql://postgres@127.0.0.1:5432/test_bench]
#                       (only names test_* or *bench*, unless BENCH_ALLOW_DROP=1)
#   BENCH_SECONDS       measured seconds per endpoint per round [4]
#   BENCH_CONNECTIONS   concurrent driver connections [2]
#   BENCH_ROUNDS        rounds of bare/me/locate, order rotating [8]
#   BENCH_WARMUP        unmeasured seconds per endpoint before the rounds [5]
#   BENCH_WORKERS       gunicorn workers [2]
#   BENCH_THREADS       gunicorn threads per worker [1: sync workers]
#   BENCH_KEEP=1        keep the temporary instance dir and gunicorn log
#   BENCH_APP           gunicorn app spec ["app:create_app()"]
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
GUNICORN=${GUNICORN:-.venv/bin/gunicorn}
DATABASE=${BENCH_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test_bench}
SECONDS_PER_PHASE=${BENCH_SECONDS:-4}
CONNECTIONS=${BENCH_CONNECTIONS:-2}
ROUNDS=${BENCH_ROUNDS:-8}
WARMUP=${BENCH_WARMUP:-5}
WORKERS=${BENCH_WORKERS:-2}
THREADS=${BENCH_THREADS:-1}
APP=${BENCH_APP:-app:create_app()}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/shouwang-bench.XXXXXX")
LOG="$WORK/gunicorn.log"
SERVER_PID=""

cleanup() {
    local status=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ $status -ne 0 && -s "$LOG" ]]; then
        echo "--- last lines of the gunicorn log ($LOG):" >&2
        tail -n 30 "$LOG" >&2
    fi
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
        echo "kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Server and seed share one instance dir, so they share the generated secrets (JWT key, PII keys).
# One node; the login limit is not what is measured, so no Redis for its counters.
export DATABASE_URL="$DATABASE" INSTANCE_PATH="$WORK/instance" RATELIMIT_ALLOW_PER_PROCESS=1
# A run lasts a few minutes; the default 15-minute access token would do, this leaves room for long runs.
export ACCESS_TOKEN_MINUTES=${ACCESS_TOKEN_MINUTES:-120}
unset REDIS_URL
# No login fails in the benchmark: per-worker limit counters are fine here (gunicorn refuses them otherwise).
export RATELIMIT_ALLOW_PER_PROCESS=1

DB_NAME=$("$PY" -c 'import sys; from urllib.parse import urlsplit; print(urlsplit(sys.argv[1]).path.lstrip("/"))' "$DATABASE")
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime)" >&2
echo "== seeding $(echo "$DATABASE" | sed -E 's#//[^@/]*@#//#')" >&2
"$PY" bench/seed.py --recreate --out "$WORK/seed.json" >&2

PG_VERSION=$("$PY" -c 'import os, sqlalchemy as sa
from core.config import normalise_database_url
e = sa.create_engine(normalise_database_url(os.environ["DATABASE_URL"]))
with e.connect() as c: print(c.execute(sa.text("SHOW server_version")).scalar())' 2>/dev/null || echo unknown)
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
SERVER_ARGS="-w $WORKERS --threads $THREADS -b 127.0.0.1:$PORT"
echo "== gunicorn $SERVER_ARGS (log: $LOG)" >&2
# shellcheck disable=SC2086
"$GUNICORN" $SERVER_ARGS --log-level warning --error-logfile "$LOG" "$APP" >>"$LOG" 2>&1 &
SERVER_PID=$!

ready=""
for _ in $(seq 150); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "gunicorn exited early" >&2; exit 1; fi
    if "$PY" - "$PORT" <<'PYEOF' 2>/dev/null; then ready=1; break; fi
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=1)
c.request("GET", "/readyz")
sys.exit(0 if c.getresponse().status == 200 else 1)
PYEOF
    sleep 0.2
done
[[ -n "$ready" ]] || { echo "gunicorn did not become ready on port $PORT" >&2; exit 1; }

"$PY" bench/load.py --base "http://127.0.0.1:$PORT" --seed-info "$WORK/seed.json" \
    --seconds "$SECONDS_PER_PHASE" --warmup "$WARMUP" --connections "$CONNECTIONS" --rounds "$ROUNDS" \
    --server-pid "$SERVER_PID" --database "$DB_NAME" \
    --server-note "gunicorn $SERVER_ARGS $APP (sync worker when threads=1); PostgreSQL $PG_VERSION $(echo "$DATABASE" | sed -E 's#//[^@/]*@#//#')"
