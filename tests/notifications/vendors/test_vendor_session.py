"""The vendors' HTTP session reads the environment once: a proxy set there (closed networks reach
the vendors through one) is used, without requests looking it up again on every call."""

from __future__ import annotations

import pytest

from notifications.delivery.vendors.base import pooled_session

VENDOR = "https://api.push.example.cn"


def test_a_proxy_from_the_environment_is_kept_for_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.gov.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = pooled_session(VENDOR, 4)
    assert session.proxies.get("https") == "http://proxy.gov.example:3128"
    assert session.trust_env is False  # not looked up again per call


def test_a_vendor_named_in_no_proxy_is_reached_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.gov.example:3128")
    monkeypatch.setenv("NO_PROXY", "api.push.example.cn")
    session = pooled_session(VENDOR, 4)
    assert "https" not in session.proxies


def test_a_ca_bundle_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/gov-ca.pem")
    assert pooled_session(VENDOR, 4).verify == "/etc/ssl/gov-ca.pem"
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert pooled_session(VENDOR, 4).verify is True
