"""Rewards events reach the volunteer's inbox: a badge earned, a redemption's status."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.extensions import db
from tests import factories
from tests.rewards.support import API, ledger_invariant, serve  # noqa: F401 (fixture)


def inbox(client: Any, volunteer: Any) -> list[dict[str, Any]]:
    response = client.get(f"{API}/me/notifications", headers=factories.headers_for(volunteer.user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def test_a_badge_earned_is_in_the_inbox_once_in_the_volunteers_language(client, tree) -> None:
    chinese = factories.make_volunteer(tree.grid_a)
    english = factories.make_volunteer(tree.grid_a)
    english.user.locale = "en"
    db.session.flush()

    for volunteer in (chinese, english):
        serve(client, tree.grid_a, volunteer, started_ago=timedelta(hours=7))
        serve(client, tree.grid_a, volunteer)

    [zh_item] = [item for item in inbox(client, chinese) if item["kind"] == "badge_earned"]
    [en_item] = [item for item in inbox(client, english) if item["kind"] == "badge_earned"]
    assert (zh_item["title"], zh_item["body"]) == ("获得新徽章", "恭喜！您获得了「首次巡逻」徽章。")
    assert (en_item["title"], en_item["body"]) == ("New badge", "Congratulations! You earned the “First patrol” badge.")
    assert zh_item["data"] == {"type": "badge_earned", "volunteer_id": str(chinese.id), "badge": "first_patrol"}
