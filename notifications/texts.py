"""Titles and bodies of notifications, in English here and translated by the catalogues (translations/).

:func:`render` is pure: no database, no request. Callers pass raw values and it formats them per
language, so one set of ``params`` serves every recipient:

- ``shift_title``, ``grid_name``: text as stored.
- ``starts_at``: an aware datetime (or ISO 8601 text), shown in ``timezone`` (a zone name, default
  Asia/Shanghai) as "11月26日 19:00" / "26 Nov 19:00".
- ``role``: primary | backup; ``status``: how a place ended (selects the text of
  assignment_cancelled); ``reason``: free text, appended when given.
- ``fields``: names of the shift fields that changed (assignment_changed).
- ``volunteer_name``; ``level`` (red|orange|yellow|green) and ``category`` of a report;
  ``to_status`` of a report.
- ``minutes_before``: how long before the start a shift_reminder goes out.
- ``title``, ``body``: a broadcast's own text, shown as written.
- ``badge_name_zh``, ``badge_name_en``: a badge's name in each language (badge_earned,
  star_level_certified: the star's badge).
- ``item_name``, ``pickup_code`` and ``status`` (selects the text) of a redemption.
- an SOS's: see ``notifications/sos_texts.py``.

A missing parameter renders as empty text rather than failing: a notification is written inside
the transaction of the change that caused it, and a wording slip must not undo that change.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.i18n import C_, Text, gettext_in, language_of, ngettext_in
from notifications.sos_texts import SOS_TEXTS, sos_values

__all__ = ["BODY_MAX", "KINDS", "TITLE_MAX", "format_lead", "format_local_time", "language_of", "render", "zone"]

DEFAULT_TIMEZONE = "Asia/Shanghai"
TITLE_MAX = 200
BODY_MAX = 1000

# Abbreviated month names of dates in English (zh writes 11月26日).
_MONTHS = (
    C_("month", "Jan"),
    C_("month", "Feb"),
    C_("month", "Mar"),
    C_("month", "Apr"),
    C_("month", "May"),
    C_("month", "Jun"),
    C_("month", "Jul"),
    C_("month", "Aug"),
    C_("month", "Sep"),
    C_("month", "Oct"),
    C_("month", "Nov"),
    C_("month", "Dec"),
)

# kind, or "kind.variant" -> (title, body), msgctxt "notification:<key>" (error codes own the bare
# names). Placeholders name formatted params.
_TEXTS: dict[str, tuple[Text, Text]] = {
    "assignment_created": (
        C_("notification:assignment_created", "Shift confirmed"),
        C_(
            "notification:assignment_created",
            "You have a {role_label} place on “{shift_title}” ({grid_name}), starting {starts_at}.",
        ),
    ),
    "assignment_changed": (
        C_("notification:assignment_changed", "Shift changed"),
        C_("notification:assignment_changed", "“{shift_title}” has changed ({fields_label}); it now starts {starts_at}."),
    ),
    "assignment_cancelled": (
        C_("notification:assignment_cancelled", "Your shift place ended"),
        C_("notification:assignment_cancelled", "Your place on “{shift_title}” ({starts_at}) has ended.{reason_text}"),
    ),
    "assignment_cancelled.removed": (
        C_("notification:assignment_cancelled.removed", "Removed from a shift"),
        C_("notification:assignment_cancelled.removed", "An organiser took you off “{shift_title}” ({starts_at}).{reason_text}"),
    ),
    "assignment_cancelled.withdrawn": (
        C_("notification:assignment_cancelled.withdrawn", "Withdrawn from a shift"),
        C_(
            "notification:assignment_cancelled.withdrawn",
            "An organiser withdrew you from “{shift_title}” ({starts_at}).{reason_text}",
        ),
    ),
    "assignment_cancelled.swapped": (
        C_("notification:assignment_cancelled.swapped", "Swap approved"),
        C_(
            "notification:assignment_cancelled.swapped",
            "Your place on “{shift_title}” ({starts_at}) has gone to the other volunteer as agreed.",
        ),
    ),
    "assignment_cancelled.absent": (
        C_("notification:assignment_cancelled.absent", "Marked absent"),
        C_(
            "notification:assignment_cancelled.absent",
            "You did not check in for “{shift_title}” ({starts_at}) and were marked absent. Contact your organiser if this is wrong.",
        ),
    ),
    "invitation_sent": (
        C_("notification:invitation_sent", "Shift invitation"),
        C_(
            "notification:invitation_sent",
            "An organiser invites you to a {role_label} place on “{shift_title}” ({grid_name}), starting {starts_at}. Please reply.",
        ),
    ),
    "backup_promoted": (
        C_("notification:backup_promoted", "You are now on duty"),
        C_(
            "notification:backup_promoted",
            "The primary on “{shift_title}” ({starts_at}) dropped out; your backup place is now a primary place. Please be there on time.",
        ),
    ),
    "waitlist_promoted": (
        C_("notification:waitlist_promoted", "Off the waitlist"),
        C_(
            "notification:waitlist_promoted",
            "A place freed up: you are now on “{shift_title}” ({grid_name}), starting {starts_at}.",
        ),
    ),
    "shift_cancelled": (
        C_("notification:shift_cancelled", "Shift cancelled"),
        C_("notification:shift_cancelled", "“{shift_title}” ({grid_name}, {starts_at}) has been cancelled.{reason_text}"),
    ),
    "absence_alert": (
        C_("notification:absence_alert", "No-show"),
        C_(
            "notification:absence_alert",
            "{volunteer_name} did not check in for “{shift_title}” ({grid_name}, {starts_at}) and was marked absent.",
        ),
    ),
    "report_alert": (
        C_("notification:report_alert", "{level_label} report"),
        # i18n: also {level_label}, the level as the title shows it
        C_(
            "notification:report_alert",
            "A {level_label_lower} report ({category_label}) was filed in {grid_name}. Please act now.",
        ),
    ),
    "report_status_changed": (
        C_("notification:report_status_changed", "Update on your report"),
        C_("notification:report_status_changed", "Your report ({category_label}) {status_label}."),
    ),
    "volunteer_approved": (
        C_("notification:volunteer_approved", "Registration approved"),
        C_("notification:volunteer_approved", "Your volunteer registration has been approved. Welcome!"),
    ),
    "volunteer_rejected": (
        C_("notification:volunteer_rejected", "Registration not approved"),
        C_("notification:volunteer_rejected", "Sorry, your volunteer registration was not approved.{reason_text}"),
    ),
    "badge_earned": (
        C_("notification:badge_earned", "New badge"),
        C_("notification:badge_earned", "Congratulations! You earned the “{badge_label}” badge."),
    ),
    "star_level_certified": (
        C_("notification:star_level_certified", "Star level certified"),
        C_(
            "notification:star_level_certified",
            "Congratulations! The publicity is over: you are certified as “{badge_label}”.",
        ),
    ),
    "redemption_status.requested": (
        C_("notification:redemption_status.requested", "Redemption requested"),
        C_("notification:redemption_status.requested", "Your request for “{item_name}” is waiting for approval."),
    ),
    "redemption_status.approved": (
        C_("notification:redemption_status.approved", "Redemption approved"),
        C_("notification:redemption_status.approved", "Your “{item_name}” is approved. Pickup code: {pickup_code}."),
    ),
    "redemption_status.fulfilled": (
        C_("notification:redemption_status.fulfilled", "Redemption completed"),
        C_("notification:redemption_status.fulfilled", "You have collected “{item_name}”."),
    ),
    "redemption_status.cancelled": (
        C_("notification:redemption_status.cancelled", "Redemption cancelled"),
        C_(
            "notification:redemption_status.cancelled",
            "Your request for “{item_name}” was cancelled; the points are back.{reason_text}",
        ),
    ),
    "redemption_status.rejected": (
        C_("notification:redemption_status.rejected", "Redemption rejected"),
        C_(
            "notification:redemption_status.rejected",
            "Your request for “{item_name}” was not approved; the points are back.{reason_text}",
        ),
    ),
    "redemption_status": (
        C_("notification:redemption_status", "Redemption update"),
        C_("notification:redemption_status", "Your request for “{item_name}” has a new status."),
    ),
    "shift_reminder": (
        C_("notification:shift_reminder", "Shift reminder"),
        C_("notification:shift_reminder", "“{shift_title}” ({grid_name}) starts {starts_at}, in {lead}."),
    ),
    # An SOS's (notifications/sos_texts.py).
    **SOS_TEXTS,
    # A broadcast's own text, shown as written in every language (nothing to translate).
    "broadcast": (Text(None, "{title}"), Text(None, "{body}")),
}

KINDS = frozenset(key for key in _TEXTS if "." not in key)

_ROLE = {
    "primary": C_("shift role", "primary"),
    "backup": C_("shift role", "backup"),
}
_LEVEL = {
    "red": C_("report level", "Red"),
    "orange": C_("report level", "Orange"),
    "yellow": C_("report level", "Yellow"),
    "green": C_("report level", "Green"),
}
_CATEGORY = {
    "dispute": C_("report category", "dispute"),
    "safety_hazard": C_("report category", "safety hazard"),
    "suspicious_activity": C_("report category", "suspicious activity"),
    "help_needed": C_("report category", "help needed"),
    "other": C_("report category", "other"),
}
_REPORT_STATUS = {
    "acknowledged": C_("report status", "has been acknowledged"),
    "assigned": C_("report status", "has been assigned to someone"),
    "escalated": C_("report status", "has been escalated"),
    "resolved": C_("report status", "has been resolved"),
    "open": C_("report status", "is open again"),
}
_FIELD = {
    "starts_at": C_("shift field", "time"),
    "ends_at": C_("shift field", "time"),
    "title": C_("shift field", "title"),
    "instructions": C_("shift field", "instructions"),
    "meeting_point": C_("shift field", "meeting point"),
}

def render(kind: str, locale: str | None, params: dict[str, Any]) -> tuple[str, str]:
    """(title, body) of a notification of ``kind`` in the language of ``locale`` (a stored locale or
    a language: :func:`core.i18n.language_of` picks the catalogue).

    Unknown kinds raise KeyError: that is a programming error, found by the tests.
    """
    language = language_of(locale)
    variant = params.get("status")
    texts = _TEXTS.get(f"{kind}.{variant}") if variant else None
    title, body = (gettext_in(language, text) for text in (texts or _TEXTS[kind]))
    values = _Values(_formatted(params, language))
    return _clip(title.format_map(values), TITLE_MAX), _clip(body.format_map(values), BODY_MAX)


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def _pick(table: dict[str, Text], key: Any, language: str) -> str:
    text = table.get(str(key))
    return gettext_in(language, text) if text else str(key or "")


def _listed(items: list[str], language: str) -> str:
    """"time, title and meeting point" / "时间、名称、集合地点"."""
    if len(items) < 2:
        return "".join(items)
    head = gettext_in(language, C_("list separator", ", ")).join(items[:-1])
    return gettext_in(language, C_("list", "{items} and {last}")).format(items=head, last=items[-1])


def _formatted(params: dict[str, Any], language: str) -> dict[str, str]:
    values = {name: _text(value) for name, value in params.items()}
    if params.get("starts_at") is not None:
        values["starts_at"] = format_local_time(
            params["starts_at"], params.get("timezone") or DEFAULT_TIMEZONE, language
        )
    values["badge_label"] = str(params.get("badge_name_en" if language == "en" else "badge_name_zh") or "")
    values["role_label"] = _pick(_ROLE, params.get("role") or "primary", language)
    values["level_label"] = _pick(_LEVEL, params.get("level"), language)
    values["level_label_lower"] = values["level_label"].lower()
    values["category_label"] = _pick(_CATEGORY, params.get("category"), language)
    values["status_label"] = _pick(_REPORT_STATUS, params.get("to_status"), language)
    fields = list(dict.fromkeys(_pick(_FIELD, name, language) for name in params.get("fields") or []))
    values["fields_label"] = _listed(fields, language) or _pick(_FIELD, "title", language)
    reason = (params.get("reason") or "").strip()
    if reason:
        # The English text starts with a space: it follows a full stop.
        values["reason_text"] = gettext_in(language, C_("notification", " Reason: {reason}")).format(reason=reason)
    values.update(sos_values(params, language))
    if params.get("minutes_before") is not None:
        values["lead"] = format_lead(int(params["minutes_before"]), language)
    return values

def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The zone called ``name``; Asia/Shanghai for a name this system does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def format_local_time(moment: datetime | str, zone_name: str, language: str) -> str:
    """"11月26日 19:00" (zh) or "26 Nov 19:00" (en), in the zone ``zone_name``."""
    if isinstance(moment, str):
        text = moment
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return text
    if moment.tzinfo is None:
        return moment.isoformat()
    local = moment.astimezone(zone(zone_name))
    # i18n: {day}, {month} (its number), {month_name} (Jan…), {time} (19:00)
    pattern = gettext_in(language, C_("date and time", "{day} {month_name} {time}"))
    month_name = gettext_in(language, _MONTHS[local.month - 1])
    return pattern.format(day=local.day, month=local.month, month_name=month_name, time=f"{local:%H:%M}")


def format_lead(minutes: int, language: str) -> str:
    """How long before the start, in the largest whole unit: 1天 / 2 hours / 30 minutes."""
    days, rest = divmod(minutes, 1440)
    if days and not rest:
        return ngettext_in(language, "{n} day", "{n} days", days).format(n=days)
    hours, rest = divmod(minutes, 60)
    if hours and not rest:
        return ngettext_in(language, "{n} hour", "{n} hours", hours).format(n=hours)
    return ngettext_in(language, "{n} minute", "{n} minutes", minutes).format(n=minutes)
