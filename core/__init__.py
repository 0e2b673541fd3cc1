"""Cross-cutting pieces every domain package builds on: config, extensions, errors, auth, i18n.

Like every package, core exposes ``MODEL_MODULES``, ``TASK_MODULES`` and ``init_app(app)``, which
``app.py`` calls in package order; the extensions themselves are bound by ``create_app`` before any
package's ``init_app`` runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

#: Modules holding core's tables (the audit log, Idempotency-Key records).
MODEL_MODULES: tuple[str, ...] = ("core.audit", "core.idempotency")
#: core's own tasks (``core.ping``, the idempotency purge) live beside the Celery app.
TASK_MODULES: tuple[str, ...] = ("core.tasks",)


def init_app(app: Flask) -> None:
    """The message catalogues (a start without compiled ones stops here), the health probes (first in
    the API document), the docs page's own assets, ``flask settings``."""
    from core import i18n
    from core.config import settings_cli
    from core.docs import assets
    from core.extensions import api
    from core.health import blp as health_blp

    i18n.init_app(app)
    api.register_blueprint(health_blp)
    app.register_blueprint(assets)
    app.cli.add_command(settings_cli)
