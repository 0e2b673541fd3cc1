"""The gettext catalogues: where they live, how texts are extracted from the code, how they compile.

Texts are written in English in the code (the msgid) and marked for extraction:

- ``i18n.N_("Text.")`` a validation message or a text without context;
- ``i18n.title("code", "Title")`` an error title, its code the msgctxt (one code, one meaning);
- ``i18n.C_("context", "Text")`` a short text whose English alone would be ambiguous;
- ``ngettext_in(language, "{n} day", "{n} days", n)`` a text with plural forms.

A comment ``# i18n: …`` on the line before a marker reaches the translator (``#.`` in the catalogue):
say there which placeholders a translation may use beyond the English text's.

``translations/messages.pot`` is the extracted template; ``translations/<lang>/LC_MESSAGES/messages.po``
one language each; the ``.mo`` next to each ``.po`` is a build product (``make translations``).
Run as ``python -m core.catalogues extract|update|compile|init <language>`` (what the Makefile's
``translations*`` targets do), without an app: the app refuses to start until its catalogues are compiled.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
#: The catalogues shipped with the code; ``TRANSLATIONS_DIR`` points the app at another directory.
DEFAULT_DIRECTORY = ROOT / "translations"
DOMAIN = "messages"
TEMPLATE = DEFAULT_DIRECTORY / f"{DOMAIN}.pot"
#: Problems whose first argument is their detail (core/errors.py).
ERROR_KEYWORDS = ("ApiError", "Forbidden", "OutOfScope", "NotFound", "Conflict")
#: The markers of core/i18n.py besides Babel's defaults (``N_``, ``gettext``, ``ngettext``, ``pgettext``…).
KEYWORDS: dict[str, tuple[int | tuple[int, str], ...]] = {
    "title": ((1, "c"), 2), "C_": ((1, "c"), 2), "ngettext_in": (2, 3),
    # A problem's detail written in place (``NotFound("Shift not found.")``) is translated when it is
    # answered, so it is a text of the catalogue like any other, marked or not.
    **dict.fromkeys(ERROR_KEYWORDS, (1,)),
}  # fmt: skip
#: Application code only: tests, migrations, benchmarks and the virtualenv hold no user-facing texts.
METHOD_MAP = [
    ("**/tests/**", "ignore"), ("tests/**", "ignore"), ("migrations/**", "ignore"), ("bench/**", "ignore"),
    (".venv/**", "ignore"), ("**.py", "python"), ("console/templates/**.html", "jinja2"),
]
_PROJECT = "Shouwang"


def catalogue_path(directory: Path, language: str, suffix: str = ".po") -> Path:
    return directory / language / "LC_MESSAGES" / f"{DOMAIN}{suffix}"


def languages_in(directory: Path) -> list[str]:
    """The languages with a ``.po`` catalogue in ``directory``, sorted."""
    return sorted(path.parent.parent.name for path in directory.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def extract(root: Path = ROOT) -> Catalog:
    """Every marked text of the application code under ``root``, as a template catalogue."""
    from babel.messages.extract import DEFAULT_KEYWORDS

    catalog = Catalog(project=_PROJECT, charset="utf-8", fuzzy=False)
    keywords: dict[str, Any] = {**DEFAULT_KEYWORDS, **KEYWORDS}
    for filename, lineno, message, comments, context in extract_from_dir(
        str(root), method_map=METHOD_MAP, keywords=keywords, comment_tags=("i18n:",), strip_comment_tags=True,
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def _write(catalog: Catalog, path: Path) -> None:
    # File names without line numbers: a moved line elsewhere does not change the catalogue.
    with path.open("wb") as out:
        write_po(out, catalog, width=100, include_lineno=False, omit_header=False)


def write_template(template: Path = TEMPLATE) -> None:
    _write(extract(), template)


def update(directory: Path = DEFAULT_DIRECTORY, template: Path = TEMPLATE) -> None:
    """Bring every language's ``.po`` up to the template: new texts come in untranslated (or fuzzy,
    from a similar old text: a translator checks and clears the flag), removed ones become obsolete."""
    with template.open("rb") as source:
        pot = read_po(source)
    for language in languages_in(directory):
        path = catalogue_path(directory, language)
        with path.open("rb") as source:
            catalog = read_po(source, locale=language)
        catalog.update(pot)
        _write(catalog, path)


def init(language: str, directory: Path = DEFAULT_DIRECTORY, template: Path = TEMPLATE) -> Path:
    """A new language's ``.po``: every text of the template, untranslated (``pybabel init``)."""
    path = catalogue_path(directory, language)
    if path.exists():
        raise FileExistsError(f"{path} exists: run `make translations-update` instead")
    with template.open("rb") as source:
        catalog = read_po(source, locale=language)
    catalog.fuzzy = False
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(catalog, path)
    return path


def compile_all(directory: Path = DEFAULT_DIRECTORY) -> list[Path]:
    """Compile every ``.po`` under ``directory`` to its ``.mo`` (fuzzy entries left out, as pybabel does)."""
    written = []
    for language in languages_in(directory):
        source = catalogue_path(directory, language)
        with source.open("rb") as stream:
            catalog = read_po(stream, locale=language)
        target = catalogue_path(directory, language, ".mo")
        with target.open("wb") as out:
            write_mo(out, catalog)
        written.append(target)
    return written


def _extract_and_update() -> None:
    write_template()
    update()


def main(argv: list[str]) -> int:
    if argv[:1] == ["init"] and len(argv) == 2:
        print(f"wrote {init(argv[1])}: translate it, then `make translations`")
        return 0
    commands: dict[str, Callable[[], object]] = {
        "extract": write_template,
        "update": _extract_and_update,
        "compile": compile_all,
    }
    if len(argv) != 1 or argv[0] not in commands:
        print("usage: python -m core.catalogues extract|update|compile|init <language>", file=sys.stderr)
        return 2
    commands[argv[0]]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
