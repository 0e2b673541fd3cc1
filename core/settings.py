"""core's settings: the database, secrets, tokens, limits, the API document, background tasks.

Declared like every package's (``core/config.py`` explains the table); README's tables come from here.
"""

from __future__ import annotations

from typing import Any

from core.config import SECRET_NAMES, Setting, duration, flag, instance_file, integer, normalise_database_url, text

_GENERATED = "generated into `instance/secrets.json`"
_SECRET_DOCS = {
    "SECRET_KEY": "Flask's signing key",
    "JWT_SECRET_KEY": "signing key of access and refresh tokens",
    "PII_ENCRYPTION_KEY": "Fernet key encrypting national ID numbers at rest (keep it stable)",
    "PII_HASH_KEY": "HMAC key of the national ID uniqueness hash (keep it stable)",
}

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "SQLALCHEMY_DATABASE_URI", lambda where: "sqlite:///" + str(where.instance_path / "shouwang.db"),
        normalise_database_url, "SQLAlchemy URL; `postgresql://…` uses psycopg 3", env="DATABASE_URL",
        shown_default="`sqlite:///instance/shouwang.db`", blank_is_unset=True,
    ),
    flag(
        "DATABASE_POOL_PRE_PING",
        "`1`: ping pooled connections before use (a round trip per request); without it a connection "
        "lost in a database restart answers 503 `Retry-After: 1` once",
    ),
    integer("DATABASE_POOL_RECYCLE_SECONDS", 1800, "pooled connections are replaced after this many seconds"),
    *(text(name, None, _SECRET_DOCS[name], shown_default=_GENERATED, blank_is_unset=True) for name in SECRET_NAMES),
    text(
        "REDIS_URL", None,
        "storage of the rate limiter (login brute-force limits), shared by every worker and node; "
        "unset: in memory, and gunicorn (`make serve`) refuses to start without it",
    ),
    flag(
        "RATELIMIT_ALLOW_PER_PROCESS",
        "`1`: let gunicorn start without `REDIS_URL`, each worker counting on its own (one worker on one node only)",
    ),
    # "5 per minute" means at most 5 in any 60 s: a fixed window would allow 10 across the turn of a
    # minute (and a test of the limit would depend on the clock).
    text(
        "RATELIMIT_STRATEGY", "moving-window",
        "how limits count: in any window of that length (a fixed window would let twice the limit "
        "through across its turn)",
    ),
    text(
        "RATELIMIT_KEY_PREFIX", "shouwang",
        "prefix of the limit counters' keys in Redis (deployments sharing one Redis keep apart)",
    ),
    duration(
        "JWT_ACCESS_TOKEN_EXPIRES", "ACCESS_TOKEN_MINUTES", "minutes", 15, "lifetime of an access token, in minutes"
    ),
    duration(
        "JWT_REFRESH_TOKEN_EXPIRES", "REFRESH_TOKEN_DAYS", "days", 30,
        "lifetime of a refresh token, in days (refresh never extends a login past `SESSION_ABSOLUTE_DAYS`)",
    ),
    integer(
        "REQUEST_QUEUE_TIMEOUT_SECONDS", 20,
        "a request the balancer's `X-Request-Start` shows waiting longer than this is answered 503 "
        "`overloaded` with `Retry-After` before any work (set it below the phones' HTTP timeout; `0`: off)",
    ),
    integer(
        "REQUEST_QUEUE_TARGET_MS", 0,
        "a standing queue: once every stamped request has waited longer than this for longer than "
        "`REQUEST_QUEUE_INTERVAL_MS`, those that did are answered 503 `overloaded` until one comes within it "
        "(`core/overload.py`; `0`: off; only behind a balancer that stamps a request once it has read all of "
        "it, as nginx buffering does: docs/deploy.md)",
    ),
    integer(
        "REQUEST_QUEUE_INTERVAL_MS", 1000,
        "how long the waits must stay above `REQUEST_QUEUE_TARGET_MS` before the standing queue is shed",
    ),
    integer(
        "TRUSTED_PROXY_HOPS", 0,
        "proxies in front of gunicorn that append to `X-Forwarded-For` (nginx on the node: `1`); the "
        "client address (login limits, sessions) is then the one the nearest of them saw; `0`: the "
        "connection's own address, `X-Forwarded-For` ignored (a client could write anything in it)",
    ),
    integer("IDEMPOTENCY_TTL_HOURS", 24, "how long an `Idempotency-Key` is remembered (its replay kept)"),
    integer("IDEMPOTENCY_PURGE_MINUTES", 60, "how often beat forgets older `Idempotency-Key` records"),
    # Monthly partitions of the growing tables on PostgreSQL (core/partitions.py, docs/partitioning.md).
    integer(
        "PARTITION_MONTHS_AHEAD", 2,
        "PostgreSQL: partitions exist from the current month to this many months ahead (made by `core.maintain_partitions`)",
    ),
    integer("PARTITION_MAINTAIN_MINUTES", 360, "how often beat runs `core.maintain_partitions` (PostgreSQL; idempotent)"),
    # Served from the swagger-ui-bundle package (core/docs.py); no CDN needed.
    text("OPENAPI_SWAGGER_UI_URL", "/api/docs/assets/", "where the docs page loads Swagger UI from (our own copy)"),
    # Messages (core/i18n.py): README "Languages and translations".
    text(
        "TRANSLATIONS_DIR", None,
        "the gettext catalogues (`<lang>/LC_MESSAGES/messages.po`, compiled `.mo` beside each); every "
        "language with a catalogue there is offered",
        shown_default="`translations/` of the code", blank_is_unset=True,
    ),
    # Background work (core/tasks.py): without a broker every task runs in-process at once.
    text(
        "CELERY_BROKER_URL", None,
        "`amqp://…` (RabbitMQ) or `redis://…`; unset: tasks run in-process; workers and beat: "
        "`make worker`, see docs/deploy.md",
    ),
    text("CELERY_RESULT_BACKEND", None, "where task results are kept; unset: not kept"),
    text("CELERY_QUEUE", "shouwang", "the queue tasks go to"),
    integer(
        "TASK_RESEND_SECONDS", 5,
        "a task the broker refused after a commit is owed and resent by its process this often "
        "(the write's answer does not change)",
    ),
    # Operating it (core/logs.py, core/metrics.py; docs/deploy.md, "Logs, metrics and what to alert on").
    text("LOG_LEVEL", "INFO", "lowest level logged (JSON lines on standard error, with the request id)"),
    text(
        "METRICS_TOKEN", None,
        "`GET /metrics` also answers `Authorization: Bearer <this>`; unset: only clients on loopback "
        "(through no proxy), everyone else gets 404",
        blank_is_unset=True,
    ),
    # Photos (core/photos.py; reports and the catalogue): JPEG or PNG up to this size (the upload route allows this
    # plus the multipart envelope above MAX_CONTENT_LENGTH).
    integer("REPORT_PHOTO_MAX_BYTES", 5 * 1024 * 1024, "largest photo accepted, in bytes", shown_default="5 MiB"),
    integer("REPORT_PHOTO_MAX_PIXELS", 40_000_000, "larger images are refused before decoding (decompression bombs)"),
    text(
        "REPORT_PHOTO_STORAGE", "local",
        "`local` (files under `REPORT_PHOTO_DIR`) or `s3` (an S3-compatible bucket; credentials from `AWS_*`)",
    ),
    instance_file("REPORT_PHOTO_DIR", "report_photos", "where `local` storage keeps photos"),
    text("REPORT_PHOTO_S3_BUCKET", None, "the bucket of `s3` storage"),
    text("REPORT_PHOTO_S3_ENDPOINT_URL", None, "an S3-compatible service's URL; unset: AWS"),
    text("REPORT_PHOTO_S3_REGION", None, "the bucket's region"),
    text("REPORT_PHOTO_S3_PREFIX", "report-photos/", "key prefix of photos in the bucket"),
)

#: core's values that no environment changes.
FIXED: dict[str, Any] = {
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "JSON_SORT_KEYS": False,
    # flask-smorest / OpenAPI
    # ASCII: client generators turn the title into a package name (pip refuses 守望 in one).
    "API_TITLE": "Shouwang API",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
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
    "JWT_TOKEN_LOCATION": ["headers"],
    "JWT_ERROR_MESSAGE_KEY": "detail",
    "RATELIMIT_HEADERS_ENABLED": True,
}
