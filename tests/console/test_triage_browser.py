"""Report triage in a real browser: staff of the demo district opens a red report and acknowledges it.

Until the richer demo data (reports of every colour) lands, the demo has no report: the test then
files a red one first through the API, exactly as the demo volunteer's phone would (log in, POST
/api/v1/reports). Filing needs an active volunteer, not a patrol, so this runs on today's demo too.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.console.conftest import TABLET, Visit
from tests.console.test_vetting_browser import no_page_scroll

OPEN_RED = "[data-test=report-row][data-level=red][data-status=open]"


def _post(url: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def file_red_report_as_the_demo_volunteer(visit: Visit) -> int:
    login = visit.site.logins["volunteer"]
    token = _post(visit.site.url("/api/v1/auth/login"), {"phone": login["phone"], "password": login["password"]})
    [(grid_id, lat, lon)] = visit.site.sql(
        "SELECT a.id, (a.min_lat + a.max_lat) / 2, (a.min_lon + a.max_lon) / 2 FROM volunteers v "
        "JOIN users u ON u.id = v.user_id JOIN areas a ON a.id = v.home_grid_id WHERE u.phone = :phone",
        phone=login["phone"],
    )
    report = _post(visit.site.url("/api/v1/reports"), {
        "client_id": str(uuid.uuid4()), "category": "safety_hazard", "level": "red",
        "description": "楼道堆放易燃杂物，堵塞消防通道", "lat": float(lat), "lon": float(lon), "accuracy_m": 10,
        "device_time": datetime.now(UTC).isoformat(), "grid_id": grid_id,
    }, token["access_token"])
    report_id: int = report["id"]
    return report_id


def test_staff_opens_a_red_report_and_acknowledges_it(visit: Visit) -> None:
    page = visit.page
    visit.sign_in("staff")
    page.goto("/console/triage/?level=red&status=open")
    if page.locator(OPEN_RED).count() == 0:
        file_red_report_as_the_demo_volunteer(visit)
        page.reload()
    page.goto("/console/triage/")
    assert page.locator(OPEN_RED).count() > 0
    levels = [row.get_attribute("data-level") for row in page.locator("[data-test=report-row]").all()]
    urgent = [level in ("red", "orange") for level in levels]
    assert urgent == sorted(urgent, reverse=True), levels  # red and orange first
    visit.screenshot("triage")
    assert no_page_scroll(visit)
    row = page.locator(OPEN_RED).first
    report_id = int(row.get_attribute("data-report-id") or 0)
    row.locator("[data-test=open-report]").click()
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/console/triage/{report_id}")
    assert page.locator("[data-test=report-status]").get_attribute("data-status") == "open"
    visit.screenshot("triage-report")
    for size in (TABLET, {"width": 1366, "height": 768}):
        page.set_viewport_size(size)
        assert no_page_scroll(visit)
    page.click("[data-test=acknowledge]")
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/console/triage/{report_id}")
    assert page.locator("[data-test=report-status]").get_attribute("data-status") == "acknowledged"
    assert page.locator("[data-test=event][data-action=acknowledged]").count() == 1
    [(status,)] = visit.site.sql("SELECT status FROM patrol_reports WHERE id = :id", id=report_id)
    assert status == "acknowledged"
    [(actor,)] = visit.site.sql(
        "SELECT u.phone FROM patrol_report_events e JOIN users u ON u.id = e.actor_id "
        "WHERE e.report_id = :id AND e.action = 'acknowledged'", id=report_id,
    )
    assert actor == visit.site.logins["staff"]["phone"]
    visit.assert_clean()
