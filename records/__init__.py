"""Records: a volunteer's service record and the certificates that prove it (MCA rules).

The rules are the Ministry of Civil Affairs' 《志愿服务记录与证明出具办法（试行）》 (in force
2021-02-01) and its 2015 guidance on certificates (民发〔2015〕149号): the organisation that recorded
the service issues the proof ("谁记录谁证明"); a record holds the volunteer's identity, each service,
training, awards and evaluations, and is true, accurate, complete, unpaid and timely.

Read-only over the service that ``rewards`` already keeps (``rewards.awarding.models.ServiceRecord``:
served patrols and hand-entered hours); it writes tables of its own. What the features share stays
here: the hours that count (``hours.py``, the one owner of that question). Features, each a
subpackage with the usual rooms, are listed in ``FEATURE_ROUTES``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

MODEL_MODULES: tuple[str, ...] = (
    "records.entries.models",
    "records.stars.models",
    "records.certificates.models",
)
TASK_MODULES: tuple[str, ...] = (
    "records.stars.tasks",
)

#: The route module of each feature, one a line; each holds a ``blp`` registered in this order (the
#: order of the API document's sections), and may hold ``pages``, a plain Flask blueprint of public
#: HTML pages outside the API (the certificate check the QR code opens).
FEATURE_ROUTES: tuple[str, ...] = (
    "records.entries.routes",
    "records.certificates.routes",
    "records.stars.routes",
    "records.handover.routes",
)
#: Modules whose ``connect()`` subscribes a feature to other packages' signals, one a line.
LISTENER_MODULES: tuple[str, ...] = (
    "records.stars.listeners",
)


def init_app(app: Flask) -> None:
    """The records API (one blueprint per feature) and the features' listeners."""
    from core.extensions import api

    for name in FEATURE_ROUTES:
        module = importlib.import_module(name)
        api.register_blueprint(module.blp)
        if hasattr(module, "pages"):
            app.register_blueprint(module.pages)
    for name in LISTENER_MODULES:
        importlib.import_module(name).connect()
