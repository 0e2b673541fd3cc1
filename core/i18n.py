"""Messages in Chinese by default, English or any language with a catalogue on request (``Accept-Language``).

Texts are written in English in the code and translated through gettext catalogues under
``translations/`` (``core/catalogues.py`` extracts and compiles them; README "Languages and
translations" is the translator's side). Each error has a stable ``code``: its English title is
registered here with :func:`register_titles` and translated with the code as msgctxt, so one code
has one meaning. Validation messages come from marshmallow in English; those registered with
:func:`register_messages` (or matched by a pattern of :func:`register_patterns`) are translated.
A language is supported when it has a catalogue; a text its catalogue lacks falls back to Chinese,
the default language (English, the source language, shows the code's text as written).
"""

from __future__ import annotations

import gettext
import re
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from babel.support import NullTranslations, Translations
from flask import Flask, current_app, has_app_context, has_request_context, request

from core import catalogues

DEFAULT_LANGUAGE = "zh"
#: The language the code is written in: its catalogue may stay empty (an untranslated text shows the
#: code's English), and it never falls back to Chinese.
SOURCE_LANGUAGE = "en"


class Text(NamedTuple):
    """A text to translate later: its msgctxt (None: none) and its English msgid."""

    context: str | None
    message: str


def N_(message: str) -> str:
    """Mark ``message`` for extraction; translated where it is shown (:func:`translate`)."""
    return message


def C_(context: str, message: str) -> Text:
    """Mark a short ``message`` whose English alone would be ambiguous, with a msgctxt."""
    return Text(context, message)


def title(code: str, english: str) -> Text:
    """Mark the title of error ``code`` (its msgctxt): for :func:`register_titles`."""
    return Text(code, english)


class RegistrationClash(ValueError):
    """A code registered again with another title, or a pattern with another text: one of the two
    would silently win, depending on import order. Raised at import, so the app does not start."""


class CataloguesNotCompiled(RuntimeError):
    """A ``.po`` without its ``.mo``: the app refuses to start rather than answer in the wrong language."""


# code -> English title (the msgid; the code is its msgctxt)
_TITLES: dict[str, str] = {}
# English validation texts translated by exact text
_MESSAGES: set[str] = set()
# texts with variable parts: English regex -> msgid with {0}, {1}… for the groups
_PATTERNS: list[tuple[re.Pattern[str], str]] = []


def register_titles(*titles: Text) -> None:
    """Add error codes of a domain package: ``title(code, english)`` each. One code, one meaning:
    the same code again must come with the same title, or :class:`RegistrationClash` is raised."""
    for code, english in titles:
        if code in _TITLES and _TITLES[code] != english:
            raise RegistrationClash(
                f"error code {code!r} is already registered as {_TITLES[code]!r}, not {english!r}: "
                "give the other meaning its own code, or use the same text"
            )
    _TITLES.update({str(code): english for code, english in titles})


def register_messages(*messages: str) -> None:
    """Add validation texts of a domain package, each marked ``N_("…")`` (the catalogue holds one
    translation per text, so a text cannot clash)."""
    _MESSAGES.update(messages)


def register_patterns(patterns: dict[str, str]) -> None:
    """Add texts with variable parts: ``{english regex: N_("msgid with {0}…")}``, the groups filling
    the placeholders. The same regex again must come with the same msgid."""
    known = {compiled.pattern: msgid for compiled, msgid in _PATTERNS}
    for pattern, msgid in patterns.items():
        if pattern in known and known[pattern] != msgid:
            raise RegistrationClash(
                f"message pattern {pattern!r} is already registered as {known[pattern]!r}, not {msgid!r}"
            )
    _PATTERNS.extend((re.compile(pattern), msgid) for pattern, msgid in patterns.items() if pattern not in known)


# core's own error codes, marshmallow's messages and core's (more in each package)
register_titles(
    title("bad_request", "Bad request"),
    title("malformed_json", "The request body is not valid JSON"),
    title("unauthorized", "Authentication required"),
    title("invalid_token", "Invalid token"),
    title("token_expired", "Token has expired"),
    title("token_revoked", "Token has been revoked"),
    title("invalid_credentials", "Wrong phone number or password"),
    title("forbidden", "You are not allowed to do this"),
    title("out_of_scope", "Outside your area"),
    title("not_found", "Resource not found"),
    title("area_not_found", "Area not found"),
    title("method_not_allowed", "Method not allowed"),
    title("conflict", "Conflicts with existing data"),
    title("payload_too_large", "Request body too large"),
    title("unsupported_media_type", "Unsupported media type"),
    title("validation_failed", "Validation failed"),
    title("too_many_requests", "Too many requests, try again later"),
    title("internal_error", "Internal server error"),
    title("service_unavailable", "Service unavailable"),
)
register_messages(
    N_("Missing data for required field."),
    N_("Unknown field."),
    N_("Field may not be null."),
    N_("Not a valid string."),
    N_("Not a valid integer."),
    N_("Not a valid number."),
    N_("Not a valid boolean."),
    N_("Not a valid datetime."),
    N_("Not a valid date."),
    N_("Not a valid time."),
    N_("Not a valid UUID."),
    N_("Not a valid list."),
    N_("Not a valid tuple."),
    N_("Not a valid mapping type."),
    N_("Not a valid email address."),
    N_("Not a valid URL."),
    N_("Invalid input type."),
    N_("Invalid value."),
    N_("Invalid JSON body."),
    N_("Special numeric values (nan or infinity) are not permitted."),
    N_("Field may not be blank."),
    N_("Shorter than minimum length 1."),
    N_("Invalid cursor."),
    N_("Not a grid."),
    N_("Datetime must have a time zone offset."),
    N_("The record is outside your area."),
    N_("Your role may not do this."),
)
register_patterns(
    {
        r"^Length must be between (\d+) and (\d+)\.$": N_("Length must be between {0} and {1}."),
        r"^Longer than maximum length (\d+)\.$": N_("Longer than maximum length {0}."),
        r"^Shorter than minimum length (\d+)\.$": N_("Shorter than minimum length {0}."),
        r"^Must be greater than or equal to (\S+) and less than or equal to (\S+)\.$": N_(
            "Must be greater than or equal to {0} and less than or equal to {1}."
        ),
        r"^Must be greater than or equal to (\S+)\.$": N_("Must be greater than or equal to {0}."),
        r"^Must be less than or equal to (\S+)\.$": N_("Must be less than or equal to {0}."),
        r"^Must be greater than (\S+)\.$": N_("Must be greater than {0}."),
        r"^Must be one of: (.*)\.$": N_("Must be one of: {0}."),
        r"^Number must be (.*)\.$": N_("Number must be {0}."),
    }
)

# ------------------------------------------------------------------------------------ catalogues


class Catalogues:
    """The compiled catalogues of one translations directory, one per language."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        found = catalogues.languages_in(directory)
        if DEFAULT_LANGUAGE not in found:
            raise CataloguesNotCompiled(f"no {DEFAULT_LANGUAGE} catalogue in {directory}")
        missing = [
            str(catalogues.catalogue_path(directory, language, ".mo"))
            for language in found
            if not catalogues.catalogue_path(directory, language, ".mo").is_file()
        ]
        if missing:
            raise CataloguesNotCompiled(
                f"translations not compiled: {', '.join(missing)} missing; run `make translations` "
                "(or `python -m core.catalogues compile`)"
            )
        #: The default language first (it wins when a client accepts anything), then by name.
        self.languages: tuple[str, ...] = (DEFAULT_LANGUAGE, *(lang for lang in found if lang != DEFAULT_LANGUAGE))
        self._loaded = {language: self._load(language) for language in self.languages}
        for language, translations in self._loaded.items():
            if language not in (DEFAULT_LANGUAGE, SOURCE_LANGUAGE):
                translations.add_fallback(self._loaded[DEFAULT_LANGUAGE])

    def _load(self, language: str) -> NullTranslations:
        with catalogues.catalogue_path(self.directory, language, ".mo").open("rb") as compiled:
            return Translations(compiled, domain=catalogues.DOMAIN)

    def of(self, language: str) -> gettext.NullTranslations:
        return self._loaded[language if language in self._loaded else DEFAULT_LANGUAGE]


@lru_cache(maxsize=8)
def catalogues_in(directory: str) -> Catalogues:
    return Catalogues(Path(directory))


def current_catalogues() -> Catalogues:
    """The catalogues of the current app (its ``TRANSLATIONS_DIR``), or the shipped ones outside an app."""
    directory = current_app.config.get("TRANSLATIONS_DIR") if has_app_context() else None
    return catalogues_in(str(directory or catalogues.DEFAULT_DIRECTORY))


def init_app(app: Flask) -> None:
    """Load the app's catalogues at start-up: a missing ``.mo`` stops the app with what to run."""
    catalogues_in(str(app.config.get("TRANSLATIONS_DIR") or catalogues.DEFAULT_DIRECTORY))


def supported_languages() -> tuple[str, ...]:
    """The languages that have a catalogue, the default one first."""
    return current_catalogues().languages


def language_of(locale: str | None) -> str:
    """A stored or requested locale's supported language: ``en``, ``en-US`` → en; a language without
    a catalogue (or none) → zh."""
    primary = (locale or "").strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in supported_languages() else DEFAULT_LANGUAGE


def current_language() -> str:
    if not has_request_context():
        return DEFAULT_LANGUAGE
    best = request.accept_languages.best_match(supported_languages(), default=DEFAULT_LANGUAGE)
    return best or DEFAULT_LANGUAGE


def gettext_in(language: str, text: Text | str) -> str:
    """``text`` (a marked :class:`Text` or a plain msgid) in ``language``."""
    context, message = text if isinstance(text, Text) else (None, text)
    translations = current_catalogues().of(language)
    return translations.pgettext(context, message) if context else translations.gettext(message)


def ngettext_in(language: str, singular: str, plural: str, count: int) -> str:
    """``singular`` or ``plural`` (English, ``{n}`` the count) in ``language``, by its plural rules."""
    return current_catalogues().of(language).ngettext(singular, plural, count)


def title_for(code: str, language: str | None = None) -> str:
    language = language or current_language()
    if code not in _TITLES:
        code = "bad_request"
    return gettext_in(language, Text(code, _TITLES[code]))


def translate(message: str, language: str | None = None) -> str:
    language = language or current_language()
    if message in _MESSAGES:
        return gettext_in(language, message)
    for pattern, msgid in _PATTERNS:
        match = pattern.match(message)
        if match:
            return gettext_in(language, msgid).format(*match.groups())
    return message


def translate_errors(errors: object, language: str | None = None) -> object:
    """Translate a marshmallow error tree (dicts and lists of strings) leaf by leaf."""
    language = language or current_language()
    if isinstance(errors, dict):
        return {str(key): translate_errors(value, language) for key, value in errors.items()}
    if isinstance(errors, list):
        return [translate_errors(item, language) for item in errors]
    if isinstance(errors, str):
        return translate(errors, language)
    return errors
