"""Configuration from the environment, with an embedded default that needs no service.

Secrets come from environment variables in production. In the embedded default they are generated
once into ``instance/secrets.json`` (mode 0600) so that no secret ever lives in the code.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

SECRET_NAMES = ("SECRET_KEY", "JWT_SECRET_KEY", "PII_ENCRYPTION_KEY", "PII_HASH_KEY")


def _generate_secret(name: str) -> str:
    if name == "PII_ENCRYPTION_KEY":
        return Fernet.generate_key().decode()
    return secrets.token_urlsafe(48)


def load_instance_secrets(instance_path: str) -> dict[str, str]:
    """Read the embedded default's secrets, generating any that are missing."""
    path = Path(instance_path) / "secrets.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in SECRET_NAMES if name not in stored]
    if missing:
        stored.update({name: _generate_secret(name) for name in missing})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle, indent=2)
    return stored


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whichever spelling the operator gave."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _int_env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def refuse_per_process_limits(config: dict[str, Any], environ: dict[str, str] | None = None) -> None:
    """Refuse to serve under gunicorn with login limits kept in each process's memory.

    Each gunicorn worker (and each node) would count failed logins on its own, so a phone gets the
    limit once per worker: 12 wrong passwords against "5 per minute" met 9 password checks on four
    workers. ``make run`` (one process) and the CLI, workers and tests are not gunicorn.
    """
    environ = os.environ if environ is None else environ
    if config.get("TESTING") or not environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/"):
        return
    if not str(config["RATELIMIT_STORAGE_URI"]).startswith("memory://") or config["RATELIMIT_ALLOW_PER_PROCESS"]:
        return
    raise RuntimeError(
        "Login limits would be counted in each gunicorn worker's memory, so every worker and node "
        "would allow the limit again. Set REDIS_URL (e.g. redis://127.0.0.1:6379/0) so all of them "
        "share the counters, or RATELIMIT_ALLOW_PER_PROCESS=1 to accept per-process counting "
        "knowingly (one worker on one node)."
    )


def build_config(instance_path: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    overrides = dict(overrides or {})
    env = os.environ
    database_url = overrides.pop("SQLALCHEMY_DATABASE_URI", None) or env.get("DATABASE_URL")
    if not database_url:
        database_url = "sqlite:///" + str(Path(instance_path) / "shouwang.db")
    redis_url = env.get("REDIS_URL")

    config: dict[str, Any] = {
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        # Pre-ping costs a round trip on every request (bench/README.md). Without it, a request on a
        # pooled connection that died with a database restart answers 503 with Retry-After
        # (core/errors.py) and the pool replaces the connection.
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_pre_ping": env.get("DATABASE_POOL_PRE_PING", "0") == "1",
            "pool_recycle": _int_env("DATABASE_POOL_RECYCLE_SECONDS", 1800),
        },
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "JSON_SORT_KEYS": False,
        "REDIS_URL": redis_url,
        # flask-smorest / OpenAPI
        # ASCII: client generators turn the title into a package name (pip refuses 守望 in one).
        "API_TITLE": "Shouwang API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        # Served from the swagger-ui-bundle package (core/docs.py); no CDN needed.
        "OPENAPI_SWAGGER_UI_URL": env.get("OPENAPI_SWAGGER_UI_URL", "/api/docs/assets/"),
        "API_SPEC_OPTIONS": {
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                }
            },
            "info": {
                "description": "守望 Shouwang: volunteer auxiliary patrols by grid. Errors are RFC 9457 "
                "problem+json; messages are Chinese unless `Accept-Language: en`."
            },
        },
        # Tokens
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=_int_env("ACCESS_TOKEN_MINUTES", 15)),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=_int_env("REFRESH_TOKEN_DAYS", 30)),
        "SESSION_ABSOLUTE_LIFETIME": timedelta(days=_int_env("SESSION_ABSOLUTE_DAYS", 90)),
        "REFRESH_REUSE_GRACE": timedelta(seconds=_int_env("REFRESH_REUSE_GRACE_SECONDS", 10)),
        "JWT_TOKEN_LOCATION": ["headers"],
        "JWT_ERROR_MESSAGE_KEY": "detail",
        # Password hashing: argon2id at the OWASP minimum (19 MiB, 2 iterations, 1 lane).
        "ARGON2_TIME_COST": _int_env("ARGON2_TIME_COST", 2),
        "ARGON2_MEMORY_COST": _int_env("ARGON2_MEMORY_COST", 19 * 1024),
        "ARGON2_PARALLELISM": _int_env("ARGON2_PARALLELISM", 1),
        # Brute-force limits on login (failed attempts only).
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        # "5 per minute" means at most 5 in any 60 s: a fixed window would allow 10 across the
        # turn of a minute (and a test of the limit would depend on the clock).
        "RATELIMIT_STRATEGY": env.get("RATELIMIT_STRATEGY", "moving-window"),
        # Deployments sharing one Redis keep their counters apart.
        "RATELIMIT_KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX", "shouwang"),
        "LOGIN_LIMIT_PER_PHONE": env.get("LOGIN_LIMIT_PER_PHONE", "5 per minute;20 per hour"),
        "LOGIN_LIMIT_PER_ADDRESS": env.get("LOGIN_LIMIT_PER_ADDRESS", "30 per minute;200 per hour"),
        "REGISTRATION_LIMIT_PER_ADDRESS": env.get("REGISTRATION_LIMIT_PER_ADDRESS", "20 per hour"),
        # Without REDIS_URL each process counts on its own; gunicorn refuses that unless this is 1.
        "RATELIMIT_ALLOW_PER_PROCESS": env.get("RATELIMIT_ALLOW_PER_PROCESS", "0") == "1",
        # Domain defaults
        "DEFAULT_TIMEZONE": env.get("DEFAULT_TIMEZONE", "Asia/Shanghai"),
        "GRID_MAX_VERTICES": _int_env("GRID_MAX_VERTICES", 2000),
        "PRIVACY_TERMS_VERSION": env.get("PRIVACY_TERMS_VERSION", "2026-01"),
        "IDEMPOTENCY_TTL_HOURS": _int_env("IDEMPOTENCY_TTL_HOURS", 24),  # replays kept this long
        "IDEMPOTENCY_PURGE_MINUTES": _int_env("IDEMPOTENCY_PURGE_MINUTES", 60),
        # Shifts (shifts/): volunteers withdraw on their own up to this long before the start.
        "SHIFT_WITHDRAW_CUTOFF_MINUTES": _int_env("SHIFT_WITHDRAW_CUTOFF_MINUTES", 120),
        # Least time between the end of one of a volunteer's shifts and the start of the next.
        "SHIFT_MIN_REST_MINUTES": _int_env("SHIFT_MIN_REST_MINUTES", 60),
        "SHIFT_MAX_HOURS": _int_env("SHIFT_MAX_HOURS", 12),
        "SHIFT_MAX_HEADCOUNT": _int_env("SHIFT_MAX_HEADCOUNT", 100),
        # Repeating shifts exist as concrete shifts this far ahead; a periodic task tops them up.
        "SERIES_HORIZON_DAYS": _int_env("SERIES_HORIZON_DAYS", 56),
        "SERIES_MAX_OCCURRENCES": _int_env("SERIES_MAX_OCCURRENCES", 366),
        # Auto-fill: default cap on a volunteer's planned hours in one week (Monday to Sunday, local).
        "AUTOFILL_WEEKLY_CAP_HOURS": _int_env("AUTOFILL_WEEKLY_CAP_HOURS", 8),
        # Auto-fill refuses areas with more open shifts than this (422), and tries the exact CP-SAT
        # model only when a plan has at most this many candidate (shift, volunteer) pairs.
        "AUTOFILL_MAX_SHIFTS": _int_env("AUTOFILL_MAX_SHIFTS", 20_000),
        "AUTOFILL_EXACT_MAX_PAIRS": _int_env("AUTOFILL_EXACT_MAX_PAIRS", 20_000),
        # Background work (core/tasks.py): without a broker every task runs in-process at once.
        "CELERY_BROKER_URL": env.get("CELERY_BROKER_URL"),  # amqp://… (RabbitMQ) or redis://…
        "CELERY_RESULT_BACKEND": env.get("CELERY_RESULT_BACKEND"),  # unset: results not kept
        "CELERY_QUEUE": env.get("CELERY_QUEUE", "shouwang"),
        # A task the broker refused after a commit is owed and resent by its process this often.
        "TASK_RESEND_SECONDS": _int_env("TASK_RESEND_SECONDS", 5),
        # How often beat tops repeating shifts up to SERIES_HORIZON_DAYS (shifts.top_up_series).
        "SERIES_TOP_UP_MINUTES": _int_env("SERIES_TOP_UP_MINUTES", 60),
        # Reports (patrols/reports.py, patrols/photos.py): photos are JPEG or PNG up to this size
        # (the upload route allows this plus the multipart envelope above MAX_CONTENT_LENGTH).
        "REPORT_PHOTO_MAX_BYTES": _int_env("REPORT_PHOTO_MAX_BYTES", 5 * 1024 * 1024),
        # Larger images are refused before decoding (decompression bombs).
        "REPORT_PHOTO_MAX_PIXELS": _int_env("REPORT_PHOTO_MAX_PIXELS", 40_000_000),
        # "local": files under REPORT_PHOTO_DIR; "s3": an S3-compatible bucket (credentials from the
        # standard AWS_* environment variables).
        "REPORT_PHOTO_STORAGE": env.get("REPORT_PHOTO_STORAGE", "local"),
        "REPORT_PHOTO_DIR": env.get("REPORT_PHOTO_DIR") or str(Path(instance_path) / "report_photos"),
        "REPORT_PHOTO_S3_BUCKET": env.get("REPORT_PHOTO_S3_BUCKET"),
        "REPORT_PHOTO_S3_ENDPOINT_URL": env.get("REPORT_PHOTO_S3_ENDPOINT_URL"),  # unset: AWS
        "REPORT_PHOTO_S3_REGION": env.get("REPORT_PHOTO_S3_REGION"),
        "REPORT_PHOTO_S3_PREFIX": env.get("REPORT_PHOTO_S3_PREFIX", "report-photos/"),
        # Tracks and checkpoints (patrols/tracks.py, patrols/checkpoints.py).
        # Track points are purged this many days after their shift ends (PIPL art. 28).
        "TRACK_RETENTION_DAYS": _int_env("TRACK_RETENTION_DAYS", 90),
        "TRACK_PURGE_MINUTES": _int_env("TRACK_PURGE_MINUTES", 60),
        "TRACK_MAX_BATCH": _int_env("TRACK_MAX_BATCH", 1000),  # points per upload
        "TRACK_MAX_POINTS_PER_PATROL": _int_env("TRACK_MAX_POINTS_PER_PATROL", 50_000),
        # Faster than this between consecutive points is a GPS jump, left out of the distance.
        "TRACK_MAX_SPEED_KMH": _int_env("TRACK_MAX_SPEED_KMH", 150),
        # Track points and scans are accepted from this long before the start to after the end.
        "PATROL_EVENT_SLACK_MINUTES": _int_env("PATROL_EVENT_SLACK_MINUTES", 60),
        # Checkpoints may stand up to this far outside their grid (a gate on the boundary road).
        "CHECKPOINT_MAX_OUTSIDE_M": _int_env("CHECKPOINT_MAX_OUTSIDE_M", 200),
        # A scan reported farther than this (plus its accuracy, bounded) is flagged.
        "CHECKPOINT_SCAN_RADIUS_M": _int_env("CHECKPOINT_SCAN_RADIUS_M", 100),
        # HMAC key of QR payloads; unset: derived from SECRET_KEY.
        "CHECKPOINT_QR_KEY": env.get("CHECKPOINT_QR_KEY"),
        # Patrols, presence (patrols/presence.py): check-in opens this long before the start.
        "CHECK_IN_OPENS_MINUTES": _int_env("CHECK_IN_OPENS_MINUTES", 30),
        # Served time runs at most this long past the end; a forgotten check-out closes then.
        "CHECK_OUT_GRACE_MINUTES": _int_env("CHECK_OUT_GRACE_MINUTES", 30),
        # A position less accurate than this needs review; the geofence allows at most this much.
        "CHECK_IN_MAX_ACCURACY_M": _int_env("CHECK_IN_MAX_ACCURACY_M", 100),
        # A device clock this far ahead of our receipt time is flagged device_time_future.
        "CHECK_IN_CLOCK_SKEW_MINUTES": _int_env("CHECK_IN_CLOCK_SKEW_MINUTES", 5),
        # Offline phones deliver late; a device time further behind receipt than this is flagged.
        "CHECK_IN_MAX_OFFLINE_HOURS": _int_env("CHECK_IN_MAX_OFFLINE_HOURS", 72),
        # A primary without check-in this long after the start is marked absent.
        "NO_SHOW_AFTER_MINUTES": _int_env("NO_SHOW_AFTER_MINUTES", 15),
        # How often beat runs the presence tasks (auto-close, no-shows).
        "PRESENCE_TASKS_MINUTES": _int_env("PRESENCE_TASKS_MINUTES", 5),
        # Notifications (notifications/): push through FCM with FIREBASE_CREDENTIALS (a service
        # account JSON file); without it a recording backend writes what would have been sent to
        # PUSH_RECORD_PATH (JSON lines).
        "FIREBASE_CREDENTIALS": env.get("FIREBASE_CREDENTIALS"),
        "FIREBASE_PROJECT_ID": env.get("FIREBASE_PROJECT_ID"),  # unset: from the credentials
        # Where firebase-admin sends (tests and benchmarks: a local FCM-speaking server); unset: FCM.
        "FCM_ENDPOINT": env.get("FCM_ENDPOINT"),
        "PUSH_RECORD_PATH": env.get("PUSH_RECORD_PATH") or str(Path(instance_path) / "pushes.jsonl"),
        "PUSH_BATCH_SIZE": _int_env("PUSH_BATCH_SIZE", 500),  # messages per send_each (FCM's maximum)
        "PUSH_MAX_ATTEMPTS": _int_env("PUSH_MAX_ATTEMPTS", 8),  # then failed (it stays in the inbox)
        "PUSH_RETRY_BASE_SECONDS": _int_env("PUSH_RETRY_BASE_SECONDS", 30),  # doubled per attempt
        "PUSH_RETRY_MAX_SECONDS": _int_env("PUSH_RETRY_MAX_SECONDS", 3600),
        # Urgent pushes (call-outs, alerts) retry on a short schedule of their own, with more tries.
        "PUSH_URGENT_RETRY_BASE_SECONDS": _int_env("PUSH_URGENT_RETRY_BASE_SECONDS", 5),
        "PUSH_URGENT_RETRY_MAX_SECONDS": _int_env("PUSH_URGENT_RETRY_MAX_SECONDS", 60),
        "PUSH_URGENT_MAX_ATTEMPTS": _int_env("PUSH_URGENT_MAX_ATTEMPTS", 16),
        "PUSH_LEASE_SECONDS": _int_env("PUSH_LEASE_SECONDS", 300),  # a claimed batch returns after
        # Beat's delivery run: the safety net for wake-ups lost with the broker, and what notices a
        # push service back after an outage (PUSH_DELIVERY_MINUTES, the former setting, still counts).
        "PUSH_DELIVERY_SECONDS": _int_env(
            "PUSH_DELIVERY_SECONDS", _int_env("PUSH_DELIVERY_MINUTES", 0) * 60 or 10
        ),
        # A device whose token the app has not registered again for this long is skipped.
        "DEVICE_STALE_DAYS": _int_env("DEVICE_STALE_DAYS", 60),
        "DEVICE_TOKEN_MAX_LENGTH": _int_env("DEVICE_TOKEN_MAX_LENGTH", 4096),
        # Reminders before each assigned shift, unless a city sets its own (minutes before start).
        "REMINDER_OFFSETS_MINUTES": [
            int(part) for part in env.get("REMINDER_OFFSETS_MINUTES", "1440,60").split(",") if part.strip()
        ],
        "REMINDER_MINUTES": _int_env("REMINDER_MINUTES", 1),  # how often beat schedules reminders
        # Default quiet hours (user's area time zone): non-urgent pushes wait until the end.
        "QUIET_HOURS_START": env.get("QUIET_HOURS_START", "22:00"),
        "QUIET_HOURS_END": env.get("QUIET_HOURS_END", "07:00"),
        # Rewards (rewards/tasks.py): how often beat runs point expiry and the monthly badges.
        "REWARDS_TASKS_MINUTES": _int_env("REWARDS_TASKS_MINUTES", 60),
    }

    for name in SECRET_NAMES:
        if env.get(name):
            config[name] = env[name]
    if any(name not in config and name not in overrides for name in SECRET_NAMES):
        stored = load_instance_secrets(instance_path)
        for name in SECRET_NAMES:
            config.setdefault(name, stored[name])

    config.update(overrides)
    return config
