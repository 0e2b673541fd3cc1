"""What the ``flask`` commands of every package share: the language of their messages."""

from __future__ import annotations

from typing import Any

import click

from core import i18n


def _supported_language(context: click.Context, parameter: click.Parameter, value: str) -> str:
    # The languages are those with a catalogue, known once the app is loaded (not at import).
    if value not in i18n.supported_languages():
        raise click.BadParameter(f"{value!r} is not one of {', '.join(i18n.supported_languages())}.")
    return value


#: ``--lang``: the language of a command's error messages (Chinese by default, as in the API).
language_option: Any = click.option(
    "--lang", default=i18n.DEFAULT_LANGUAGE, callback=_supported_language,
    show_default=True, help="Language of error messages (zh, en, or any with a catalogue).",
)


def error_lines(errors: object, language: str) -> list[str]:
    """Flatten ``{field: [message]}`` (possibly nested) into translated ``field: message`` lines."""
    translated = i18n.translate_errors(errors, language)
    lines: list[str] = []

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list):
            for inner in value:
                walk(prefix, inner)
        else:
            lines.append(f"{prefix}: {value}" if prefix else str(value))

    walk("", translated)
    return lines
