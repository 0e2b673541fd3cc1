"""The overview in a real browser: staff sign in and land on it, its trend chart is drawn (the canvas
has pixels), the layout holds on an office screen and a tablet, and nothing foreign loads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tests.console.conftest import TABLET, Visit
from tests.console.test_triage_browser import _post

#: Pixels of the chart's canvas that are not fully transparent (ECharts draws axes, labels and
#: the legend even for a month of zeros; a chart that failed to draw leaves none).
_PAINTED = """(element) => {
  const canvas = element.querySelector('canvas');
  if (!canvas) { return -1; }
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) { if (data[i] !== 0) { painted += 1; } }
  return painted;
}"""


def test_staff_sign_in_and_land_on_the_overview_with_its_chart_drawn(visit: Visit) -> None:
    page = visit.page
    visit.sign_in("staff")
    assert page.url.endswith("/console/overview/")
    assert page.locator("nav.mainnav a.active").get_attribute("href") == "/console/overview/"
    chart = page.locator("[data-test=trend-chart]")
    chart.locator("canvas").wait_for()
    assert chart.get_attribute("data-drawn") == "true"
    assert chart.evaluate(_PAINTED) > 1000
    assert page.locator("[data-test=figures] .figure").count() == 5
    assert page.locator("[data-test=weak-grid]").count() == 10  # the demo district has more than ten grids
    assert page.locator("[data-test=attention] h3").count() == 5
    # No horizontal scroll on the office screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    visit.screenshot("overview")
    page.set_viewport_size(TABLET)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    visit.screenshot("overview-tablet")
    # A weak grid's link leads to its participation page (built beside this one).
    href = page.locator("[data-test=weak-grid] a").first.get_attribute("href")
    assert href is not None and href.startswith("/console/participation/?area=")
    visit.assert_clean()


def test_an_organiser_cannot_open_the_districts_overview_by_editing_the_url(visit: Visit) -> None:
    district_id = visit.site.sql("SELECT area_id FROM users WHERE phone = :phone",
                                 phone=visit.site.logins["staff"]["phone"])[0][0]
    visit.sign_in("organiser")
    response = visit.page.goto(f"/console/overview/?area={district_id}")
    assert response is not None and response.status == 403
    assert visit.page.locator("[data-test=figures]").count() == 0
    visit.screenshot("overview-out-of-scope")
    # Chromium logs the page's own 403 as a failed resource: the one error expected here.
    visit.script_errors = [error for error in visit.script_errors if "status of 403" not in error]
    visit.assert_clean()


def test_a_live_sos_shows_first_in_what_needs_attention(visit: Visit) -> None:
    """Raised from the demo volunteer's phone (the API), then called off again: the site is shared."""
    login = visit.site.logins["volunteer"]
    token = _post(visit.site.url("/api/v1/auth/login"), {"phone": login["phone"], "password": login["password"]})
    [(lat, lon)] = visit.site.sql(
        "SELECT (a.min_lat + a.max_lat) / 2, (a.min_lon + a.max_lon) / 2 FROM volunteers v "
        "JOIN users u ON u.id = v.user_id JOIN areas a ON a.id = v.home_grid_id WHERE u.phone = :phone",
        phone=login["phone"],
    )
    sos = _post(visit.site.url("/api/v1/me/sos"), {
        "client_id": str(uuid.uuid4()), "lat": float(lat), "lon": float(lon), "accuracy_m": 10,
        "device_time": datetime.now(UTC).isoformat(), "note": "摔倒受伤",
    }, token["access_token"])  # fmt: skip
    try:
        page = visit.page
        visit.sign_in("staff")
        heading = page.locator("[data-test=attention] h3").first
        assert heading.locator("[data-test=attention-open_sos-count]").inner_text() == "1"
        item = page.locator("[data-test=open-sos]")
        assert item.get_attribute("data-sos") == str(sos["id"])
        assert item.get_attribute("data-acknowledged") == "false"
        visit.screenshot("overview-open-sos")
        visit.assert_clean()
    finally:
        _post(visit.site.url(f"/api/v1/me/sos/{sos['id']}/cancel"), {}, token["access_token"])
