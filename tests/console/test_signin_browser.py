"""Signing in and out of the console in a real browser, with the session cookie's attributes."""

from __future__ import annotations

from tests.console.conftest import Visit


def test_staff_signs_in_lands_in_the_console_and_signs_out(visit: Visit) -> None:
    page = visit.page
    response = page.goto("/console/")
    assert response is not None and "script-src 'self';" in response.headers["content-security-policy"]
    assert page.url.endswith("/console/login?next=/console/")  # signed out: to the sign-in page first
    visit.screenshot("signin")
    visit.sign_in("staff")
    assert "/console/login" not in page.url
    assert page.locator("[data-test=logout]").is_visible()
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    token = cookies["console_token"]
    assert token["httpOnly"] and token["secure"] and token["sameSite"] == "Lax" and token["path"] == "/console/"
    page.click("[data-test=logout]")
    page.wait_for_load_state("load")
    assert page.url.endswith("/console/login")
    page.goto("/console/")
    assert "/console/login" in page.url  # the session is gone, not only the cookie
    visit.assert_clean()


def test_a_volunteer_gets_the_plain_page_that_the_console_is_for_organisers_and_staff(visit: Visit) -> None:
    visit.sign_in("volunteer")
    assert visit.page.locator("h1").inner_text() == "控制台供组织者和工作人员使用"
    assert "console_token" not in {cookie["name"] for cookie in visit.page.context.cookies()}
    visit.screenshot("volunteer")
