"""The Shifts page in a real browser, on the demo site: the demo city's organiser opens the week of
东站社区, opens a shift and sees its roster; the week fits a tablet without a sideways page scroll.

The demo has evening patrols (Mon/Wed/Fri 19:00–21:00, from the day after seeding, for 8 weeks) in
each community's first grid, and the demo volunteer's shift starting soon; on a week without any
(seeded on a Friday or later, say) the test moves to the next week.
"""

from __future__ import annotations

from playwright.sync_api import Page

from tests.console.conftest import TABLET, Visit


def _open_week_with_shifts(page: Page) -> None:
    page.click("nav.mainnav a[href='/console/shifts/']")
    page.wait_for_load_state("load")
    assert page.locator("[data-test=week]").is_visible()
    if page.locator("[data-test=shift]").count() == 0:
        page.click("[data-test=next-week]")
        page.wait_for_load_state("load")


def test_the_organiser_sees_the_week_of_their_community_and_a_shifts_roster(visit: Visit) -> None:
    page = visit.page
    visit.sign_in("organiser")
    _open_week_with_shifts(page)
    assert page.locator("h1[data-test=community]").inner_text().find("东站社区") >= 0
    assert page.locator("[data-test=grid-row]").count() >= 1
    chips = page.locator("[data-test=shift]")
    assert chips.count() >= 1
    # Every shift short of its minimum and not over carries the gap marker, and only those.
    for index in range(chips.count()):
        chip = chips.nth(index)
        assigned, minimum, _ = (int(n) for n in chip.locator("[data-test=headcount]").inner_text().split("/"))
        marked = chip.locator("[data-test=gap]").count() == 1
        assert marked == ("gap" in (chip.get_attribute("class") or "").split())
        if assigned >= minimum:
            assert not marked
    visit.screenshot("shifts")

    # Open a shift someone holds a place on if there is one (the demo volunteer's), else the first.
    held = [chips.nth(i) for i in range(chips.count())
            if not chips.nth(i).locator("[data-test=headcount]").inner_text().startswith("0/")]
    chosen = held[0] if held else chips.first
    shift_id = chosen.get_attribute("data-shift")
    chosen.click()
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/console/shifts/{shift_id}")
    assert page.locator("[data-test=shift-details]").is_visible()
    # The roster is every place on the shift, and "checked in" is what the phones sent (the richer
    # demo's served shifts have check-ins; today's demo has none yet).
    places = visit.site.sql("SELECT count(*) FROM shift_assignments WHERE shift_id = :id", id=int(shift_id or 0))
    checked_in = visit.site.sql(
        "SELECT count(*) FROM patrols WHERE shift_id = :id AND check_in_client_id IS NOT NULL", id=int(shift_id or 0)
    )
    assert page.locator("[data-test=roster] [data-test=place]").count() == places[0][0]
    assert page.locator("[data-test=checked-in][data-checked-in=true]").count() == checked_in[0][0]
    if held:
        assert page.locator("[data-test=roster] [data-test=place]").count() >= 1
        assert page.locator("[data-test=roster] [data-test=volunteer]").first.inner_text().strip()
    else:
        assert page.locator("[data-test=empty-roster]").is_visible()
    visit.screenshot("shift-roster")
    page.click("[data-test=back-to-week]")
    page.wait_for_load_state("load")
    assert page.locator(f"[data-test=shift][data-shift='{shift_id}']").count() == 1
    visit.assert_clean()


def test_the_week_fits_a_tablet_without_a_sideways_page_scroll(visit: Visit) -> None:
    page = visit.page
    page.set_viewport_size(TABLET)
    visit.sign_in("organiser")
    _open_week_with_shifts(page)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.locator(".table-scroll [data-test=week]").count() == 1
    visit.screenshot("shifts-tablet")
    page.locator("[data-test=shift]").first.click()
    page.wait_for_load_state("load")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    visit.assert_clean()


def test_an_organiser_cannot_reach_another_communitys_week_by_editing_the_url(visit: Visit) -> None:
    page = visit.page
    visit.sign_in("organiser")
    own = visit.site.sql("SELECT area_id FROM users WHERE phone = :phone", phone=visit.site.logins["organiser"]["phone"])
    other = visit.site.sql(
        "SELECT id FROM areas WHERE level = 'community' AND id != :own ORDER BY id LIMIT 1", own=own[0][0]
    )
    response = page.goto(f"/console/shifts/?community={other[0][0]}")
    assert response is not None and response.status == 403
    assert page.locator("[data-test=week]").count() == 0
    visit.screenshot("shifts-refused")
