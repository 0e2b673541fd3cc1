"""Every endpoint README.md names exists in the OpenAPI document, with the query arguments it shows."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

README = Path(__file__).resolve().parent.parent / "README.md"
METHODS = r"(?:GET|POST|PUT|PATCH|DELETE)"
# `POST /volunteers/{id}/approve|reject`, `GET /leaderboards?period=month&metric=hours`, `/me/shifts?when=…`
ENDPOINT = re.compile(rf"^(?:{METHODS}(?:/{METHODS})* )?(/[^\s`]*)$")
# Served outside /api/v1 and outside the OpenAPI document (probes and operators' metrics).
UNVERSIONED = ("/healthz", "/readyz", "/metrics")
CONSOLE = "/console"
# Materialised area paths in the text (`/1/2/` never covers `/1/23/`), not endpoints.
AREA_PATH = re.compile(r"^/\d+(?:/\d+)*/$")


def normalised(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def named_endpoints() -> list[tuple[str, str, list[str]]]:
    """(as written, path under /api/v1 with placeholders, query argument names) for each one named."""
    found = []
    for span in re.findall(r"`([^`\n]+)`", README.read_text(encoding="utf-8")):
        span = span.replace("\\|", "|")
        match = ENDPOINT.match(span)
        if not match or match.group(1).startswith("/api/") or "…" in span:  # /api/docs; `/volunteers/…`
            continue
        if match.group(1).startswith(CONSOLE):  # the console's pages: HTML, not the API
            continue
        if AREA_PATH.match(match.group(1)):
            continue
        path, _, query = match.group(1).partition("?")
        *parents, last = path.rstrip("/").split("/")
        prefix = "" if path in UNVERSIONED else "/api/v1"
        for alternative in last.split("|"):
            found.append((span, prefix + "/".join([*parents, alternative]), re.findall(r"(\w+)=", query)))
    return found


def test_readme_names_only_endpoints_and_arguments_that_exist(app: Flask, client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").get_json()
    operations = {normalised(path): item for path, item in spec["paths"].items()}
    # The unversioned routes are real routes of the app, though not in the document.
    served = {rule.rule for rule in app.url_map.iter_rules()}
    operations.update({path: {} for path in UNVERSIONED if path in served})
    endpoints = named_endpoints()
    assert len(endpoints) > 100  # the tables were read

    unknown_paths = [(span, path) for span, path, _ in endpoints if normalised(path) not in operations]
    unknown_arguments = [
        (span, name)
        for span, path, names in endpoints
        if normalised(path) in operations
        for name in names
        if name not in {
            parameter["name"]
            for parameter in operations[normalised(path)].get("get", {}).get("parameters", [])
            if parameter["in"] == "query"
        }
    ]
    assert unknown_paths == [] and unknown_arguments == []
