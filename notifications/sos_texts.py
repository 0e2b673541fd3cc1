"""The texts of an SOS's notifications (notifications/sos_listeners.py), beside the others of
``texts.py``, which takes them in: the alert, its escalations, the answer and the stand-down.

Params: ``volunteer_name`` (who raised it), ``grid_name``, ``note`` (appended when given),
``sos_level`` (community|district|city), ``responder_name`` and ``responder_role`` (a user's role)
of who answered or closed it; ``status`` selects the text (going|handled of sos_acknowledged,
cancelled|closed|closed_own of sos_ended).
"""

from __future__ import annotations

from typing import Any

from core.i18n import C_, Text, gettext_in

SOS_TEXTS: dict[str, tuple[Text, Text]] = {
    "sos_alert": (
        C_("notification:sos_alert", "SOS: {volunteer_name} needs help"),
        C_(
            "notification:sos_alert",
            "{volunteer_name} raised an SOS in {grid_name}.{note_text} Open it to see where, and answer.",
        ),
    ),
    "sos_escalated": (
        C_("notification:sos_escalated", "SOS not answered: {volunteer_name} needs help"),
        # i18n: {sos_level_label}: district or city, the level the SOS has reached
        C_(
            "notification:sos_escalated",
            "Nobody has answered the SOS {volunteer_name} raised in {grid_name}; it now goes to the {sos_level_label}.{note_text} Please act now.",
        ),
    ),
    "sos_acknowledged.going": (
        C_("notification:sos_acknowledged.going", "Help is on the way"),
        C_("notification:sos_acknowledged.going", "{responder_name} ({responder_role_label}) is on the way to you."),
    ),
    "sos_acknowledged.handled": (
        C_("notification:sos_acknowledged.handled", "Your SOS was handled"),
        C_("notification:sos_acknowledged.handled", "{responder_name} ({responder_role_label}) has handled your SOS."),
    ),
    "sos_acknowledged": (
        C_("notification:sos_acknowledged", "Your SOS was answered"),
        C_("notification:sos_acknowledged", "{responder_name} ({responder_role_label}) answered your SOS."),
    ),
    "sos_ended.cancelled": (
        C_("notification:sos_ended.cancelled", "SOS called off"),
        C_(
            "notification:sos_ended.cancelled",
            "{volunteer_name} called off the SOS in {grid_name} as a false alarm. You can stand down.",
        ),
    ),
    "sos_ended.closed": (
        C_("notification:sos_ended.closed", "SOS closed"),
        C_(
            "notification:sos_ended.closed",
            "{responder_name} closed the SOS {volunteer_name} raised in {grid_name}. You can stand down.{note_text}",
        ),
    ),
    "sos_ended.closed_own": (
        C_("notification:sos_ended.closed_own", "Your SOS was closed"),
        C_("notification:sos_ended.closed_own", "{responder_name} closed your SOS.{note_text}"),
    ),
    "sos_ended": (
        C_("notification:sos_ended", "SOS ended"),
        C_("notification:sos_ended", "The SOS {volunteer_name} raised in {grid_name} has ended. You can stand down."),
    ),
}

_SOS_LEVEL = {
    "community": C_("sos level", "community"),
    "district": C_("sos level", "district staff"),
    "city": C_("sos level", "city staff"),
}
_USER_ROLE = {
    "volunteer": C_("user role", "volunteer"),
    "organiser": C_("user role", "organiser"),
    "staff": C_("user role", "staff"),
    "admin": C_("user role", "administrator"),
}


def _pick(table: dict[str, Text], key: Any, language: str) -> str:
    text = table.get(str(key))
    return gettext_in(language, text) if text else str(key or "")


def sos_values(params: dict[str, Any], language: str) -> dict[str, str]:
    """The formatted values the SOS texts name, besides the params themselves."""
    values = {
        "sos_level_label": _pick(_SOS_LEVEL, params.get("sos_level"), language),
        "responder_role_label": _pick(_USER_ROLE, params.get("responder_role"), language),
    }
    note = (params.get("note") or "").strip()
    if note:
        # The English text starts with a space: it follows a full stop.
        values["note_text"] = gettext_in(language, C_("notification", " Note: “{note}”.")).format(note=note)
    return values
