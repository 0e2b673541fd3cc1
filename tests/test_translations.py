"""The gettext catalogues (translations/, core/catalogues.py): the template matches the code, Chinese is
complete, one error code has one title, and a new language is a translator's file, not code."""

from __future__ import annotations

import shutil
import string
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from flask import Flask

from core import catalogues, i18n
from tests import factories
from tests.conftest import Tree

API = "/api/v1"


def _read(path: Path, language: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=language)


def _keys(catalog: Catalog) -> set[tuple[str | None, str]]:
    return {(message.context, _singular(message.id)) for message in catalog if message.id}


def _singular(msgid: str | tuple[str, ...]) -> str:
    return msgid[0] if isinstance(msgid, tuple) else msgid


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_the_checked_in_template_holds_exactly_the_texts_of_the_code() -> None:
    extracted, checked_in = _keys(catalogues.extract()), _keys(_read(catalogues.TEMPLATE))
    assert extracted - checked_in == set(), "texts not in translations/messages.pot: run `make translations-update`"
    assert checked_in - extracted == set(), "texts gone from the code: run `make translations-update`"


def test_every_detail_written_in_a_problem_is_answered_in_chinese(app: Flask) -> None:
    """``NotFound("Export not found.")``: the catalogue holds the text (the template test), and the
    text must also be registered (``i18n.register_messages``), or it is answered in English."""
    from babel.messages.extract import extract_from_dir

    keywords = dict.fromkeys(catalogues.ERROR_KEYWORDS, (1,))
    details = {
        message
        for _, _, message, _, _ in extract_from_dir(
            str(catalogues.ROOT), method_map=catalogues.METHOD_MAP, keywords=keywords
        )
    }
    assert "Export not found." in details  # the extraction sees the details written in place
    with app.test_request_context():
        untranslated = sorted(detail for detail in details if i18n.translate(detail, "zh") == detail)
    assert untranslated == [], "register these with i18n.register_messages(i18n.N_(...)) where they are raised"


@pytest.mark.parametrize("language", ["zh", "en"])
def test_each_shipped_catalogue_has_the_texts_of_the_template(language: str) -> None:
    catalog = _read(catalogues.catalogue_path(catalogues.DEFAULT_DIRECTORY, language), language)
    assert _keys(catalog) == _keys(_read(catalogues.TEMPLATE))
    assert not catalog.obsolete


def test_every_text_has_a_chinese_translation_none_fuzzy() -> None:
    catalog = _read(catalogues.catalogue_path(catalogues.DEFAULT_DIRECTORY, "zh"), "zh")
    untranslated = [message.id for message in catalog if message.id and not all(_as_tuple(message.string))]
    fuzzy = [message.id for message in catalog if message.id and message.fuzzy]
    assert (untranslated, fuzzy, catalog.fuzzy) == ([], [], False)


def _as_tuple(string_or_forms: str | tuple[str, ...]) -> tuple[str, ...]:
    return string_or_forms if isinstance(string_or_forms, tuple) else (string_or_forms,)


def test_translations_use_only_the_placeholders_their_text_offers() -> None:
    """A misspelt ``{shift_title}`` would show as nothing; a pattern's unknown ``{2}`` would fail the request.
    What a translation may use beyond the English text's is named in the ``i18n:`` comment."""
    for language in catalogues.languages_in(catalogues.DEFAULT_DIRECTORY):
        catalog = _read(catalogues.catalogue_path(catalogues.DEFAULT_DIRECTORY, language), language)
        for message in catalog:
            if not message.id:
                continue
            offered = set().union(*(_placeholders(text) for text in (*_as_tuple(message.id), *message.auto_comments)))
            for translated in _as_tuple(message.string):
                assert _placeholders(translated) <= offered, (language, message.context, message.id, translated)


def test_one_error_code_has_one_title_in_the_catalogue(app: Flask) -> None:
    """The code is the msgctxt of its title: a code given another English title anywhere in the code
    would be a second entry with the same context (and fails at start-up: RegistrationClash)."""
    titles_by_code: dict[str, set[str]] = {}
    for context, msgid in _keys(catalogues.extract()):
        if context in i18n._TITLES:
            titles_by_code.setdefault(context, set()).add(msgid)
    assert titles_by_code, "no error titles extracted"
    # (Other tests register probe codes of their own: only the code's are compared.)
    assert titles_by_code == {code: {i18n._TITLES[code]} for code in titles_by_code}


def test_compiled_catalogues_are_not_older_than_their_sources() -> None:
    for language in catalogues.languages_in(catalogues.DEFAULT_DIRECTORY):
        source = catalogues.catalogue_path(catalogues.DEFAULT_DIRECTORY, language)
        compiled = catalogues.catalogue_path(catalogues.DEFAULT_DIRECTORY, language, ".mo")
        assert compiled.stat().st_mtime >= source.stat().st_mtime, f"{compiled} is stale: run `make translations`"


def test_an_uncompiled_catalogue_stops_the_app_with_what_to_run(tmp_path: Path) -> None:
    shutil.copytree(catalogues.DEFAULT_DIRECTORY, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.mo"))
    with pytest.raises(i18n.CataloguesNotCompiled, match="make translations"):
        i18n.catalogues_in(str(tmp_path))


# --- a third language -----------------------------------------------------------------------------


@pytest.fixture
def with_mongolian(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return install_mongolian(app, tmp_path, monkeypatch)


def install_mongolian(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What a translator does for Mongolian, in a directory of its own: start the catalogue from the
    template, translate (here two test markers, not a translation), compile. No code changes."""
    directory = tmp_path / "translations"
    shutil.copytree(catalogues.DEFAULT_DIRECTORY, directory, ignore=shutil.ignore_patterns("*.mo"))
    path = catalogues.init("mn", directory=directory)
    catalog = _read(path, "mn")
    catalog.get("Resource not found", context="not_found").string = "[mn] Resource not found"
    catalog.get("Registration approved", context="notification:volunteer_approved").string = "[mn] Registration approved"
    catalogues._write(catalog, path)
    catalogues.compile_all(directory)
    monkeypatch.setitem(app.config, "TRANSLATIONS_DIR", str(directory))
    return directory


def test_without_a_mongolian_catalogue_mongolian_clients_get_chinese(client: Any) -> None:
    response = client.get(f"{API}/nowhere", headers={"Accept-Language": "mn"})
    assert response.get_json()["title"] == "资源不存在"


def test_a_new_catalogue_is_offered_to_clients_that_ask_for_it(app: Flask, client: Any, with_mongolian: Path) -> None:
    with app.app_context():
        assert i18n.supported_languages() == ("zh", "en", "mn")

    response = client.get(f"{API}/nowhere", headers={"Accept-Language": "mn, zh;q=0.5"})
    assert (response.status_code, response.get_json()["title"]) == (404, "[mn] Resource not found")
    # What the catalogue does not translate yet is shown in Chinese, the default language.
    response = client.get(f"{API}/me", headers={"Accept-Language": "mn"})
    assert (response.status_code, response.get_json()["title"]) == (401, "需要登录")
    # The others are as they were.
    assert client.get(f"{API}/nowhere", headers={"Accept-Language": "en"}).get_json()["title"] == "Resource not found"
    assert client.get(f"{API}/nowhere").get_json()["title"] == "资源不存在"


def test_a_user_whose_language_is_the_new_one_gets_its_push_texts(
    app: Flask, client: Any, tree: Tree, with_mongolian: Path
) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    volunteer = factories.make_volunteer(tree.grid_a, status="pending")
    volunteer.user.locale = "mn"  # stored at registration from Accept-Language: mn
    response = client.post(
        f"{API}/volunteers/{volunteer.id}/approve", json={"certificate_no": "BT-1"},
        headers=factories.headers_for(organiser),
    )
    assert response.status_code == 200, response.get_json()

    inbox = client.get(f"{API}/me/notifications", headers=factories.headers_for(volunteer.user)).get_json()["items"]
    [welcome] = inbox
    assert (welcome["kind"], welcome["title"]) == ("volunteer_approved", "[mn] Registration approved")
    assert welcome["body"] == "您的志愿者注册已通过审核，欢迎加入！"  # not translated yet: Chinese


def test_a_user_may_choose_the_new_language_once_its_catalogue_is_there(
    app: Flask, client: Any, tree: Tree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    headers = factories.headers_for(volunteer.user)
    refused = client.patch(f"{API}/me", json={"locale": "mn"}, headers={**headers, "Accept-Language": "en"})
    assert refused.status_code == 422
    assert refused.get_json()["errors"]["locale"] == ["Must be one of: zh, en."]
    assert volunteer.user.locale == "zh"

    install_mongolian(app, tmp_path, monkeypatch)  # the translator's catalogue arrives
    for path in ("/me", "/volunteers/me"):
        response = client.patch(f"{API}{path}", json={"locale": "mn"}, headers=headers)
        assert response.status_code == 200, response.get_json()
    assert volunteer.user.locale == "mn"
