"""The console: server-rendered pages for district staff and organisers, in the same app.

It owns no rule and no table: every page calls the services of the packages below it (reports,
volunteers, patrols, shifts, grids) with the caller of a browser session, so a page shows exactly what
the API would answer that caller. ``web.py`` holds the blueprint, rendering, language and security
headers; ``signin.py`` the browser session (a cookie holding an access token of an ordinary login, the
CSRF check of every form); each page is a feature subpackage (``overview/``, ``coverage_map/``,
``participation/``, ``vetting/``, ``triage/``, ``shifts/``) with its routes and templates.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

MODEL_MODULES: tuple[str, ...] = ()
TASK_MODULES: tuple[str, ...] = ()

#: The route module of each page, one a line; each holds a ``bp`` nested in the console's blueprint,
#: in the order of the navigation bar.
FEATURE_ROUTES: tuple[str, ...] = (
    "console.overview.routes",
    "console.coverage_map.routes",
    "console.participation.routes",
    "console.vetting.routes",
    "console.triage.routes",
    "console.shifts.routes",
)


def init_app(app: Flask) -> None:
    """The console's blueprint under /console/, its pages, the cookie and CSRF settings."""
    from console import routes  # noqa: F401  (sign-in, sign-out, language: routes of the blueprint)
    from console.signin import configure_cookies
    from console.web import NAVIGATION, bp, init_web

    modules = [importlib.import_module(name) for name in FEATURE_ROUTES]
    # Pages are nested once per process: a blueprint takes no more once an app has it (tests make several apps).
    if not bp._got_registered_once:
        for module in modules:
            bp.register_blueprint(module.bp)
            if hasattr(module, "NAV_ITEM"):
                NAVIGATION.append(module.NAV_ITEM)
    configure_cookies(app)
    init_web(app)
    app.register_blueprint(bp)
