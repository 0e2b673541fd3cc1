"""Where a check-in's (or a hot read's) time goes: cProfile and SQL timing in-process (Flask test
client, no HTTP).

Recreates ``BENCH_DATABASE_URL`` (default ``…/test_bench_profile``; same name rule as ``checkin.py``),
migrates and seeds it with ``bench/checkin_seed.py``, then runs first check-ins of distinct
assignments as ``bench/checkin.py`` sends them (or ``--endpoint`` me, shifts, locate, bare: the reads
``bench/checkin.py`` measures) and prints ``profile_request.profile``'s report::

    .venv/bin/python bench/profile_checkin.py [--endpoint checkin] [--requests 1000] [--top 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from checkin_requests import check_in_request  # noqa: E402  (bench/ is the script directory)
from profile_request import profile  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test_bench_profile"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="profiled check-ins (as many again warm up and time)")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"))
    parser.add_argument("--no-idempotency-key", action="store_true")
    parser.add_argument("--cpu", action="store_true", help="CPU time of this process, not the wall clock")
    parser.add_argument("--endpoint", default="checkin", choices=("checkin", "me", "shifts", "locate", "bare"))
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    work_dir = Path(tempfile.mkdtemp(prefix="shouwang-profile-"))
    os.environ.update(DATABASE_URL=url, INSTANCE_PATH=str(work_dir / "instance"), ACCESS_TOKEN_MINUTES="120")
    os.environ.pop("REDIS_URL", None)

    from checkin_seed import seed  # after the environment: create_app reads it
    from seed import recreate_database

    from app import create_app

    recreate_database(url)
    # Warm-up (≤ 500), the plain pass and the profiled pass each use distinct assignments.
    items = iter(seed(min(args.requests, 500) + 2 * args.requests + 10)["work"])
    app = create_app()
    client = app.test_client()

    reader = next(items)
    read_paths = {
        "me": "/api/v1/me", "shifts": "/api/v1/me/shifts", "bare": "/healthz",
        "locate": f"/api/v1/areas/locate?lat={reader['lat']}&lon={reader['lon']}",
    }

    def read() -> int:
        response = client.get(read_paths[args.endpoint], headers={"Authorization": f"Bearer {reader['token']}"})
        if response.status_code != 200:
            raise SystemExit(f"{args.endpoint} failed: {response.status_code} {response.get_data(as_text=True)}")
        return response.status_code

    def one() -> int:
        path, headers, body, _ = check_in_request(next(items), not args.no_idempotency_key)
        response = client.post(path, data=body, headers=headers)
        if response.status_code != 200 or response.get_json()["presence_status"] != "verified":
            raise SystemExit(f"check-in failed: {response.status_code} {response.get_data(as_text=True)}")
        return response.status_code

    if args.endpoint == "checkin":
        profile(app, one, "check-in", args.requests, args.top, args.sort, args.cpu)
    else:
        profile(app, read, args.endpoint, args.requests, args.top, args.sort, args.cpu)


if __name__ == "__main__":
    main()
