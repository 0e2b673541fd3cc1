"""With REDIS_URL set, failed-login limits live in Redis, shared by every API node.

Runs the app in a subprocess (the limiter's storage is chosen when the app is created) against the
local Redis (TEST_REDIS_URL, default database 15, flushed before and after).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

PROBE = """
import json
from app import create_app
from core.extensions import db, limiter
app = create_app()
with app.app_context():
    db.create_all()
client = app.test_client()
codes = [
    client.post("/api/v1/auth/login", json={"phone": "13800138999", "password": "wrong-password"}).status_code
    for _ in range(7)
]
print(json.dumps({"storage": type(limiter.storage).__name__, "codes": codes}))
"""


def test_failed_logins_are_counted_in_redis(tmp_path: Path) -> None:
    store = redis.Redis.from_url(REDIS_URL)
    store.flushdb()
    env = {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "DATABASE_URL": f"sqlite:///{tmp_path}/probe.db",
        "INSTANCE_PATH": str(tmp_path),
        "LOGIN_LIMIT_PER_PHONE": "5 per minute",
    }
    try:
        result = subprocess.run(
            [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        outcome = json.loads(result.stdout.strip().splitlines()[-1])
        counters = store.keys("*login-phone*")
    finally:
        store.flushdb()
    assert outcome["storage"] == "RedisStorage"
    assert outcome["codes"] == [401] * 5 + [429] * 2
    assert counters, "the per-phone counter should be in Redis"
