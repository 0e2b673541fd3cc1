"""Configuration from the environment, with an embedded default that needs no service.

Each package declares its own settings next to its code, in ``<package>/settings.py``: a table of
:class:`Setting` (its ``app.config`` key, default, how the environment's text becomes the value, the
environment variable, one line of documentation). :func:`build_config` collects the tables of the
packages the app is made of (``app.PACKAGES``), reads the environment over the defaults and applies
the app factory's overrides last; README's configuration tables are generated from the same
declarations (``flask settings table``), and a test keeps them equal.

Secrets come from environment variables in production. In the embedded default they are generated
once into ``instance/secrets.json`` (mode 0600) so that no secret ever lives in the code.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from cryptography.fernet import Fernet
from flask import current_app
from flask.cli import AppGroup

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


# --- declaring settings ------------------------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """What a default may depend on: the instance folder and the environment."""

    instance_path: Path
    environ: Mapping[str, str]


@dataclass(frozen=True)
class Setting:
    """One setting a package declares (see the module docstring); use the constructors below."""

    #: The ``app.config`` key.
    name: str
    #: The value when the environment does not give one; or a function of :class:`Where`.
    default: Any
    #: The environment's text → the value (``int``, ``str``, …).
    parse: Callable[[str], Any]
    #: One line for README's table: what it means, in the operator's words.
    doc: str
    #: The environment variable; empty: the same as ``name``.
    env: str = ""
    #: README's default column, where the value itself says little (paths, derived values).
    shown_default: str | None = None
    #: An empty variable counts as unset (paths, URLs, secrets); otherwise it is a value.
    blank_is_unset: bool = False

    @property
    def variable(self) -> str:
        return self.env or self.name

    def value(self, where: Where) -> Any:
        raw = where.environ.get(self.variable)
        if raw is None or (self.blank_is_unset and raw == ""):
            return self.default(where) if callable(self.default) else self.default
        return self.parse(raw)

    def default_text(self) -> str:
        if self.shown_default is not None:
            return self.shown_default
        if self.default is None:
            return "unset"
        if isinstance(self.default, bool):
            return f"`{int(self.default)}`"
        if isinstance(self.default, str):
            return f"`{self.default}`"
        if isinstance(self.default, list):
            return f"`{','.join(str(item) for item in self.default)}`"
        return str(self.default)


def integer(name: str, default: int, doc: str, **options: Any) -> Setting:
    """A whole number (``int()`` of the variable: a malformed one stops the app at start)."""
    return Setting(name, default, int, doc, **options)


def text(name: str, default: str | None, doc: str, **options: Any) -> Setting:
    """Text as given (unset: ``default``, which may be None)."""
    return Setting(name, default, str, doc, **options)


def flag(name: str, doc: str, **options: Any) -> Setting:
    """``1`` is on; anything else, or unset, is off."""
    return Setting(name, False, lambda raw: raw == "1", doc, **options)


def integer_list(name: str, default: list[int], doc: str, **options: Any) -> Setting:
    """Comma-separated whole numbers (``1440,60``)."""
    return Setting(name, default, lambda raw: [int(part) for part in raw.split(",") if part.strip()], doc, **options)


def duration(name: str, env: str, unit: str, amount: int, doc: str) -> Setting:
    """A :class:`~datetime.timedelta` read as a whole number of ``unit`` from ``env``."""
    return Setting(
        name, timedelta(**{unit: amount}), lambda raw: timedelta(**{unit: int(raw)}), doc, env=env,
        shown_default=str(amount),
    )


def instance_file(name: str, relative: str, doc: str) -> Setting:
    """A path, by default inside the instance folder (an empty variable counts as unset)."""
    return Setting(
        name, lambda where: str(where.instance_path / relative), str, doc,
        shown_default=f"`instance/{relative}`", blank_is_unset=True,
    )


def declared_settings(packages: Iterable[str]) -> list[tuple[str, Setting]]:
    """(package, setting) for every setting of core and the given packages, in their order.

    Each package's ``settings.py`` has ``SETTINGS``; a key or a variable declared twice is refused.
    """
    declared: list[tuple[str, Setting]] = []
    seen: dict[str, str] = {}  # key or variable -> the package that declared it
    for package in dict.fromkeys(["core", *packages]):
        for setting in importlib.import_module(f"{package}.settings").SETTINGS:
            for key in dict.fromkeys((setting.name, setting.variable)):
                if key in seen:
                    raise RuntimeError(f"{key} is declared twice (by {seen[key]} and {package})")
                seen[key] = package
            declared.append((package, setting))
    return declared


def refuse_per_process_limits(config: dict[str, Any], environ: Mapping[str, str] | None = None) -> None:
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


def build_config(
    instance_path: str, overrides: dict[str, Any] | None = None, *, packages: Iterable[str] = ()
) -> dict[str, Any]:
    """Every declared setting of core and ``packages``, the environment over the defaults, then
    ``overrides`` (the app factory's ``test_config``)."""
    from core.settings import FIXED  # core's values that no environment changes

    overrides = dict(overrides or {})
    where = Where(Path(instance_path), os.environ)
    config: dict[str, Any] = copy.deepcopy(FIXED)
    for _, setting in declared_settings(packages):
        config[setting.name] = setting.value(where)

    database_url = overrides.pop("SQLALCHEMY_DATABASE_URI", None)
    if database_url:
        config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(database_url)
    # Pre-ping costs a round trip on every request (bench/README.md). Without it, a request on a
    # pooled connection that died with a database restart answers 503 with Retry-After
    # (core/errors.py) and the pool replaces the connection.
    config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        "pool_pre_ping": config["DATABASE_POOL_PRE_PING"],
        "pool_recycle": config["DATABASE_POOL_RECYCLE_SECONDS"],
        # A database error's message then shows the SQL without its values: a logged traceback
        # would otherwise carry phone numbers, ID ciphertexts and positions (core/logs.py).
        "hide_parameters": True,
    }
    config["RATELIMIT_STORAGE_URI"] = config["REDIS_URL"] or "memory://"

    if any(config.get(name) is None and name not in overrides for name in SECRET_NAMES):
        stored = load_instance_secrets(instance_path)
        for name in SECRET_NAMES:
            if config.get(name) is None:
                config[name] = stored[name]

    config.update(overrides)
    return config


# --- README's tables ---------------------------------------------------------------------------


def settings_table(packages: Iterable[str]) -> str:
    """README's configuration tables, one per package, from the declarations."""
    lines: list[str] = []
    for package, settings in _by_package(declared_settings(packages)).items():
        lines += ["", f"**{package}**", "", "| variable | default | meaning |", "|---|---|---|"]
        lines += [f"| `{s.variable}` | {s.default_text()} | {s.doc} |" for s in settings]
    return "\n".join(lines[1:]) + "\n"


def _by_package(declared: list[tuple[str, Setting]]) -> dict[str, list[Setting]]:
    grouped: dict[str, list[Setting]] = {}
    for package, setting in declared:
        grouped.setdefault(package, []).append(setting)
    return grouped


settings_cli = AppGroup("settings", help="The settings every package declares.")


@settings_cli.command("table")
def table_command() -> None:
    """Print README's configuration tables (Markdown) from the packages' declarations."""
    click.echo(settings_table(current_app.extensions["shouwang.packages"]), nl=False)
