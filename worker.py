"""Celery entry point: ``celery -A worker worker`` and ``celery -A worker beat`` (``make worker``).

The worker builds the same Flask app as the web process (``create_app`` configures Celery from the
environment and imports every package's tasks), so tasks run with the same configuration, database
and code. ``CELERY_BROKER_URL`` must be set: without a broker tasks run inside the web process and
a worker would have nothing to consume.
"""

from __future__ import annotations

from app import create_app
from core.tasks import init_celery

# Named flask_app, not app: `celery -A worker` takes a module attribute called `app` to be Celery's.
flask_app = create_app()
# create_app has already imported the packages' task modules; this binds the worker to this app.
celery = init_celery(flask_app)

if not flask_app.config.get("CELERY_BROKER_URL"):
    raise RuntimeError(
        "CELERY_BROKER_URL is not set: tasks run in-process in the web server; "
        "set it (e.g. amqp://guest:guest@127.0.0.1:5672//) to run a worker or beat."
    )
