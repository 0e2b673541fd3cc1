#!/usr/bin/env bash
# A newcomer's first `make run`: a fresh clone in a temp dir, empty pip and uv caches, the clock
# running from `make run` until GET /healthz answers. Prints the seconds, the time of each step and
# the installer used. Usage: bench/cold_start.sh [git-ref] (default HEAD); PORT=5099 by default.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ref=${1:-HEAD}
port=${PORT:-5099}
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -- -"$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

git clone -q "$repo" "$work/shouwang"
git -C "$work/shouwang" checkout -q "$ref"
export PIP_CACHE_DIR="$work/pip-cache" UV_CACHE_DIR="$work/uv-cache"
unset INSTANCE_PATH DATABASE_URL VIRTUAL_ENV

start=$(date +%s.%N)
# Its own process group, so the server and everything make started stop together.
stamp='import sys, time
t = time.monotonic()
for line in sys.stdin:
    print(f"{time.monotonic() - t:6.1f}s  {line}", end="", flush=True)'
(cd "$work/shouwang" && exec setsid bash -c "make run PORT=$port 2>&1 | python3 -c '$stamp'") \
  >"$work/run.log" 2>&1 &
pid=$!
while ! curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do
  if ! kill -0 "$pid" 2>/dev/null; then
    cat "$work/run.log" >&2
    echo "make run exited before /healthz answered" >&2
    exit 1
  fi
  sleep 0.2
done
end=$(date +%s.%N)
# CPU seconds of the whole process tree (children that ended are counted in their parent's c-times):
# on a shared machine the wall clock depends on the neighbours, this much less.
ticks=0
for p in $(pgrep -g "$pid"); do
  t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat" 2>/dev/null || echo 0)
  ticks=$((ticks + t))
done
cpu=$(echo "scale=1; $ticks / $(getconf CLK_TCK)" | bc)
# Every recipe line make echoed, with the seconds since the start when it began.
grep -E '^ *[0-9.]+s  (\.venv/|python3 |uv |pip )' "$work/run.log" | cut -c1-120
printf 'cold make run → /healthz: %.1f s wall, %s s CPU (ref %s; load average %s)\n' \
  "$(echo "$end - $start" | bc)" "$cpu" "$(git -C "$work/shouwang" rev-parse --short HEAD)" \
  "$(cut -d' ' -f1-3 /proc/loadavg)"
