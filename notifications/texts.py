"""Titles and bodies of notifications, in Chinese (default) and English.

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
- ``badge_name_zh``, ``badge_name_en``: a badge's name in each language (badge_earned).
- ``item_name``, ``pickup_code`` and ``status`` (selects the text) of a redemption.

A missing parameter renders as empty text rather than failing: a notification is written inside
the transaction of the change that caused it, and a wording slip must not undo that change.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
DEFAULT_TIMEZONE = "Asia/Shanghai"
TITLE_MAX = 200
BODY_MAX = 1000

_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# kind, or "kind.variant" -> language -> (title, body). Placeholders name formatted params.
_TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "assignment_created": {
        "zh": ("排班已确认", "您已被安排为「{shift_title}」的{role_label}（{grid_name}），{starts_at} 开始。"),
        "en": ("Shift confirmed", "You have a {role_label} place on “{shift_title}” ({grid_name}), starting {starts_at}."),
    },
    "assignment_changed": {
        "zh": ("排班有变动", "「{shift_title}」的{fields_label}已调整，现在 {starts_at} 开始。"),
        "en": ("Shift changed", "“{shift_title}” has changed ({fields_label}); it now starts {starts_at}."),
    },
    "assignment_cancelled": {
        "zh": ("您的排班已取消", "您在「{shift_title}」（{starts_at}）的岗位已取消。{reason_text}"),
        "en": ("Your shift place ended", "Your place on “{shift_title}” ({starts_at}) has ended.{reason_text}"),
    },
    "assignment_cancelled.removed": {
        "zh": ("您已被移出排班", "组织者已将您移出「{shift_title}」（{starts_at}）。{reason_text}"),
        "en": ("Removed from a shift", "An organiser took you off “{shift_title}” ({starts_at}).{reason_text}"),
    },
    "assignment_cancelled.withdrawn": {
        "zh": ("已为您退出排班", "组织者已为您退出「{shift_title}」（{starts_at}）。{reason_text}"),
        "en": ("Withdrawn from a shift", "An organiser withdrew you from “{shift_title}” ({starts_at}).{reason_text}"),
    },
    "assignment_cancelled.swapped": {
        "zh": ("换班已批准", "您在「{shift_title}」（{starts_at}）的岗位已按换班申请交给对方。"),
        "en": ("Swap approved", "Your place on “{shift_title}” ({starts_at}) has gone to the other volunteer as agreed."),
    },
    "assignment_cancelled.absent": {
        "zh": ("您被记为缺勤", "您未在「{shift_title}」（{starts_at}）签到，已被记为缺勤。如有异议请联系组织者。"),
        "en": ("Marked absent", "You did not check in for “{shift_title}” ({starts_at}) and were marked absent. Contact your organiser if this is wrong."),
    },
    "invitation_sent": {
        "zh": ("新的排班邀请", "组织者邀请您担任「{shift_title}」的{role_label}（{grid_name}），{starts_at} 开始，请及时回复。"),
        "en": ("Shift invitation", "An organiser invites you to a {role_label} place on “{shift_title}” ({grid_name}), starting {starts_at}. Please reply."),
    },
    "backup_promoted": {
        "zh": ("备岗转为主岗", "「{shift_title}」（{starts_at}）的主岗人员无法到岗，您已转为主岗，请按时到岗。"),
        "en": ("You are now on duty", "The primary on “{shift_title}” ({starts_at}) dropped out; your backup place is now a primary place. Please be there on time."),
    },
    "waitlist_promoted": {
        "zh": ("候补成功", "您已从候补名单转为「{shift_title}」（{grid_name}）的正式岗位，{starts_at} 开始。"),
        "en": ("Off the waitlist", "A place freed up: you are now on “{shift_title}” ({grid_name}), starting {starts_at}."),
    },
    "shift_cancelled": {
        "zh": ("排班已取消", "「{shift_title}」（{grid_name}，{starts_at}）已取消。{reason_text}"),
        "en": ("Shift cancelled", "“{shift_title}” ({grid_name}, {starts_at}) has been cancelled.{reason_text}"),
    },
    "absence_alert": {
        "zh": ("缺勤提醒", "{volunteer_name} 未在「{shift_title}」（{grid_name}，{starts_at}）签到，已记为缺勤。"),
        "en": ("No-show", "{volunteer_name} did not check in for “{shift_title}” ({grid_name}, {starts_at}) and was marked absent."),
    },
    "report_alert": {
        "zh": ("{level_label}事件上报", "{grid_name} 上报了{level_label}「{category_label}」事件，请立即处理。"),
        "en": ("{level_label} report", "A {level_label_lower} report ({category_label}) was filed in {grid_name}. Please act now."),
    },
    "report_status_changed": {
        "zh": ("您的上报有新进展", "您上报的「{category_label}」事件{status_label}。"),
        "en": ("Update on your report", "Your report ({category_label}) {status_label}."),
    },
    "volunteer_approved": {
        "zh": ("审核已通过", "您的志愿者注册已通过审核，欢迎加入！"),
        "en": ("Registration approved", "Your volunteer registration has been approved. Welcome!"),
    },
    "volunteer_rejected": {
        "zh": ("审核未通过", "很抱歉，您的志愿者注册未通过审核。{reason_text}"),
        "en": ("Registration not approved", "Sorry, your volunteer registration was not approved.{reason_text}"),
    },
    "badge_earned": {
        "zh": ("获得新徽章", "恭喜！您获得了「{badge_label}」徽章。"),
        "en": ("New badge", "Congratulations! You earned the “{badge_label}” badge."),
    },
    "redemption_status.requested": {
        "zh": ("兑换申请已提交", "您兑换「{item_name}」的申请已提交，等待审核。"),
        "en": ("Redemption requested", "Your request for “{item_name}” is waiting for approval."),
    },
    "redemption_status.approved": {
        "zh": ("兑换已批准", "您兑换的「{item_name}」已批准，取货码：{pickup_code}。"),
        "en": ("Redemption approved", "Your “{item_name}” is approved. Pickup code: {pickup_code}."),
    },
    "redemption_status.fulfilled": {
        "zh": ("兑换已完成", "您已领取「{item_name}」。"),
        "en": ("Redemption completed", "You have collected “{item_name}”."),
    },
    "redemption_status.cancelled": {
        "zh": ("兑换已取消", "您兑换「{item_name}」的申请已取消，积分已退回。{reason_text}"),
        "en": ("Redemption cancelled", "Your request for “{item_name}” was cancelled; the points are back.{reason_text}"),
    },
    "redemption_status.rejected": {
        "zh": ("兑换未获批准", "您兑换「{item_name}」的申请未获批准，积分已退回。{reason_text}"),
        "en": ("Redemption rejected", "Your request for “{item_name}” was not approved; the points are back.{reason_text}"),
    },
    "redemption_status": {
        "zh": ("兑换状态更新", "您兑换「{item_name}」的申请状态已更新。"),
        "en": ("Redemption update", "Your request for “{item_name}” has a new status."),
    },
    "shift_reminder": {
        "zh": ("排班提醒", "「{shift_title}」（{grid_name}）将于 {starts_at} 开始，还有{lead}。"),
        "en": ("Shift reminder", "“{shift_title}” ({grid_name}) starts {starts_at}, in {lead}."),
    },
    "broadcast": {"zh": ("{title}", "{body}"), "en": ("{title}", "{body}")},
}

KINDS = frozenset(key for key in _TEXTS if "." not in key)

_ROLE = {"primary": ("主岗", "primary"), "backup": ("备岗", "backup")}
_LEVEL = {
    "red": ("红色预警", "Red"),
    "orange": ("橙色预警", "Orange"),
    "yellow": ("黄色预警", "Yellow"),
    "green": ("绿色预警", "Green"),
}
_CATEGORY = {
    "dispute": ("矛盾纠纷", "dispute"),
    "safety_hazard": ("安全隐患", "safety hazard"),
    "suspicious_activity": ("可疑情况", "suspicious activity"),
    "help_needed": ("求助", "help needed"),
    "other": ("其他", "other"),
}
_REPORT_STATUS = {
    "acknowledged": ("已被受理", "has been acknowledged"),
    "assigned": ("已安排专人处理", "has been assigned to someone"),
    "escalated": ("已上报上级联动处理", "has been escalated"),
    "resolved": ("已处理完毕", "has been resolved"),
    "open": ("已重新打开", "is open again"),
}
_FIELD = {
    "starts_at": ("时间", "time"),
    "ends_at": ("时间", "time"),
    "title": ("名称", "title"),
    "instructions": ("说明", "instructions"),
    "meeting_point": ("集合地点", "meeting point"),
}


def language_of(locale: str | None) -> str:
    """``en``, ``en-US`` → en; anything else (zh, zh-CN, unknown, none) → zh."""
    if locale and locale.strip().lower()[:2] == "en":
        return "en"
    return DEFAULT_LANGUAGE


def render(kind: str, locale: str | None, params: dict[str, Any]) -> tuple[str, str]:
    """(title, body) of a notification of ``kind`` in the language of ``locale``.

    Unknown kinds raise KeyError: that is a programming error, found by the tests.
    """
    language = language_of(locale)
    variant = params.get("status")
    texts = _TEXTS.get(f"{kind}.{variant}") if variant else None
    title, body = (texts or _TEXTS[kind])[language]
    values = _Values(_formatted(params, language))
    return _clip(title.format_map(values), TITLE_MAX), _clip(body.format_map(values), BODY_MAX)


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def _pick(table: dict[str, tuple[str, str]], key: Any, language: str) -> str:
    zh, en = table.get(str(key), (str(key or ""), str(key or "")))
    return en if language == "en" else zh


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
    if language == "en" and len(fields) > 1:
        fields = [", ".join(fields[:-1]) + " and " + fields[-1]]
    values["fields_label"] = "、".join(fields) or _pick(_FIELD, "title", language)
    reason = (params.get("reason") or "").strip()
    if reason:
        values["reason_text"] = f"原因：{reason}" if language == "zh" else f" Reason: {reason}"
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
    if language == "en":
        return f"{local.day} {_MONTHS_EN[local.month - 1]} {local:%H:%M}"
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def format_lead(minutes: int, language: str) -> str:
    """How long before the start, in the largest whole unit: 1天 / 2 hours / 30 minutes."""
    days, rest = divmod(minutes, 1440)
    if days and not rest:
        return f"{days}天" if language == "zh" else f"{days} day" + ("s" if days > 1 else "")
    hours, rest = divmod(minutes, 60)
    if hours and not rest:
        return f"{hours}小时" if language == "zh" else f"{hours} hour" + ("s" if hours > 1 else "")
    return f"{minutes}分钟" if language == "zh" else f"{minutes} minute" + ("s" if minutes != 1 else "")
