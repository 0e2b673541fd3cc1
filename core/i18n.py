"""Messages in Chinese by default, English on request (``Accept-Language: en``).

Each error has a stable ``code``; its title lives here in both languages. Validation messages come
from marshmallow in English; they are translated by exact text or by pattern, and packages register
the texts of their own validators with :func:`register_messages`.
"""

from __future__ import annotations

import re
from typing import Any

from flask import has_request_context, request

SUPPORTED_LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

# code -> (zh, en)
_TITLES: dict[str, tuple[str, str]] = {
    "bad_request": ("请求无效", "Bad request"),
    "malformed_json": ("请求体不是有效的 JSON", "The request body is not valid JSON"),
    "unauthorized": ("需要登录", "Authentication required"),
    "invalid_token": ("令牌无效", "Invalid token"),
    "token_expired": ("令牌已过期", "Token has expired"),
    "token_revoked": ("令牌已被撤销", "Token has been revoked"),
    "invalid_credentials": ("手机号或密码错误", "Wrong phone number or password"),
    "forbidden": ("无权执行此操作", "You are not allowed to do this"),
    "out_of_scope": ("超出您的管辖区域", "Outside your area"),
    "not_found": ("资源不存在", "Resource not found"),
    "area_not_found": ("区域不存在", "Area not found"),
    "method_not_allowed": ("不支持该请求方法", "Method not allowed"),
    "conflict": ("与现有数据冲突", "Conflicts with existing data"),
    "payload_too_large": ("请求体过大", "Request body too large"),
    "unsupported_media_type": ("不支持的内容类型", "Unsupported media type"),
    "validation_failed": ("输入校验失败", "Validation failed"),
    "too_many_requests": ("请求过于频繁，请稍后再试", "Too many requests, try again later"),
    "internal_error": ("服务器内部错误", "Internal server error"),
    "service_unavailable": ("服务暂不可用", "Service unavailable"),
}

# English validation text -> Chinese
_MESSAGES: dict[str, str] = {
    "Missing data for required field.": "缺少必填字段。",
    "Unknown field.": "未知字段。",
    "Field may not be null.": "字段不能为空值。",
    "Not a valid string.": "不是有效的字符串。",
    "Not a valid integer.": "不是有效的整数。",
    "Not a valid number.": "不是有效的数字。",
    "Not a valid boolean.": "不是有效的布尔值。",
    "Not a valid datetime.": "不是有效的日期时间。",
    "Not a valid date.": "不是有效的日期。",
    "Not a valid time.": "不是有效的时间。",
    "Not a valid UUID.": "不是有效的 UUID。",
    "Not a valid list.": "不是有效的列表。",
    "Not a valid tuple.": "不是有效的元组。",
    "Not a valid mapping type.": "不是有效的对象。",
    "Not a valid email address.": "不是有效的电子邮箱地址。",
    "Not a valid URL.": "不是有效的网址。",
    "Invalid input type.": "输入类型无效。",
    "Invalid value.": "取值无效。",
    "Invalid JSON body.": "请求体不是有效的 JSON。",
    "Special numeric values (nan or infinity) are not permitted.": "不允许 NaN 或无穷大。",
    "Field may not be blank.": "字段不能为空。",
    "Shorter than minimum length 1.": "不能为空。",
    "Invalid cursor.": "分页游标无效。",
    "Not a grid.": "不是网格。",
    "Datetime must have a time zone offset.": "日期时间必须带时区偏移。",
    "The record is outside your area.": "该记录不在您的管辖范围内。",
    "Your role may not do this.": "您的角色无权执行此操作。",
}

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Length must be between (\d+) and (\d+)\.$"), r"长度必须在 \1 到 \2 之间。"),
    (re.compile(r"^Longer than maximum length (\d+)\.$"), r"长度不能超过 \1。"),
    (re.compile(r"^Shorter than minimum length (\d+)\.$"), r"长度不能少于 \1。"),
    (
        re.compile(r"^Must be greater than or equal to (\S+) and less than or equal to (\S+)\.$"),
        r"必须在 \1 到 \2 之间。",
    ),
    (re.compile(r"^Must be greater than or equal to (\S+)\.$"), r"必须大于或等于 \1。"),
    (re.compile(r"^Must be less than or equal to (\S+)\.$"), r"必须小于或等于 \1。"),
    (re.compile(r"^Must be greater than (\S+)\.$"), r"必须大于 \1。"),
    (re.compile(r"^Must be one of: (.*)\.$"), r"必须是以下之一：\1。"),
    (re.compile(r"^Number must be (.*)\.$"), r"数值必须\1。"),
]


class RegistrationClash(ValueError):
    """A code or text registered again with another translation: one of the two would silently
    win, depending on import order. Raised at import, so the app does not start."""


def _register(registry: dict[str, Any], entries: dict[str, Any], what: str) -> None:
    for key, value in entries.items():
        if key in registry and registry[key] != value:
            raise RegistrationClash(
                f"{what} {key!r} is already registered as {registry[key]!r}, not {value!r}: "
                "give the other meaning its own code, or use the same text"
            )
    registry.update(entries)


def register_titles(titles: dict[str, tuple[str, str]]) -> None:
    """Add error codes of a domain package: ``{code: (zh, en)}``. One code, one meaning: the same
    code again must come with the same titles, or :class:`RegistrationClash` is raised."""
    _register(_TITLES, titles, "error code")


def register_messages(messages: dict[str, str]) -> None:
    """Add validation texts of a domain package: ``{english: chinese}`` (a clash raises)."""
    _register(_MESSAGES, messages, "message")


def register_patterns(patterns: dict[str, str]) -> None:
    """Add translations of texts with variable parts: ``{english regex: chinese replacement}``."""
    known = {compiled.pattern: replacement for compiled, replacement in _PATTERNS}
    fresh = {pattern: replacement for pattern, replacement in patterns.items() if pattern not in known}
    _register(known, patterns, "message pattern")
    _PATTERNS.extend((re.compile(pattern), replacement) for pattern, replacement in fresh.items())


def current_language() -> str:
    if not has_request_context():
        return DEFAULT_LANGUAGE
    best = request.accept_languages.best_match(SUPPORTED_LANGUAGES, default=DEFAULT_LANGUAGE)
    return best or DEFAULT_LANGUAGE


def title_for(code: str, language: str | None = None) -> str:
    language = language or current_language()
    zh, en = _TITLES.get(code, _TITLES["bad_request"])
    return en if language == "en" else zh


def translate(message: str, language: str | None = None) -> str:
    language = language or current_language()
    if language == "en":
        return message
    if message in _MESSAGES:
        return _MESSAGES[message]
    for pattern, replacement in _PATTERNS:
        if pattern.match(message):
            return pattern.sub(replacement, message)
    return message


def translate_errors(errors: object, language: str | None = None) -> object:
    """Translate a marshmallow error tree (dicts and lists of strings) leaf by leaf."""
    language = language or current_language()
    if isinstance(errors, dict):
        return {str(key): translate_errors(value, language) for key, value in errors.items()}
    if isinstance(errors, list):
        return [translate_errors(item, language) for item in errors]
    if isinstance(errors, str):
        return translate(errors, language)
    return errors
