"""The vetting queue in a real browser: staff of the demo district approves a pending volunteer."""

from __future__ import annotations

from tests.console.conftest import TABLET, Visit


def no_page_scroll(visit: Visit) -> bool:
    """Nothing wider than the window: a wide table scrolls inside its own box."""
    return bool(visit.page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


def test_staff_approves_a_pending_volunteer_and_the_row_goes(visit: Visit) -> None:
    page = visit.page
    visit.sign_in("staff")
    page.click("nav.mainnav >> a[href='/console/vetting/']")
    page.wait_for_load_state("load")
    assert page.url.endswith("/console/vetting/")
    rows = page.locator("[data-test=volunteer-row]")
    assert rows.count() > 0, "the demo city has pending volunteers"
    visit.screenshot("vetting")
    assert no_page_scroll(visit)
    visit.page.set_viewport_size(TABLET)
    assert no_page_scroll(visit)
    row = rows.first
    volunteer_id = int(row.get_attribute("data-volunteer-id") or 0)
    [(status,)] = visit.site.sql("SELECT status FROM volunteers WHERE id = :id", id=volunteer_id)
    assert status == "pending"
    # Staff see the national ID number in full (organisers get it masked).
    assert "*" not in row.locator("[data-test=national-id]").inner_text()
    row.locator("[data-test=certificate-no]").fill("BTYJ-2026-9001")
    row.locator("[data-test=approve]").click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/console/vetting/")
    assert page.locator(f"[data-test=volunteer-row][data-volunteer-id='{volunteer_id}']").count() == 0
    assert page.locator("[data-test=flash]").is_visible()
    [(status, certificate)] = visit.site.sql(
        "SELECT status, certificate_no FROM volunteers WHERE id = :id", id=volunteer_id
    )
    assert (status, certificate) == ("active", "BTYJ-2026-9001")
    [(action,)] = visit.site.sql(
        "SELECT action FROM audit_entries WHERE target_type = 'volunteer' AND target_id = :id", id=str(volunteer_id)
    )
    assert action == "volunteer.approve"
    visit.assert_clean()
