"""Request and response shapes of accounts: login, tokens, the caller's own account, staff accounts, audit."""

from __future__ import annotations

from typing import Any, TypedDict

import marshmallow as ma

from accounts import service
from accounts.models import User
from accounts.tokens import Account
from core import i18n
from core.auth import Role
from core.fields import Instant, Language, QueryBoolean, StrictBoolean, UpdateSchema
from core.pagination import PageArgs
from core.validators import CNMobile, Text, id_field

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
#: Roles that /users manages; volunteers self-register through the volunteers package.
MANAGED_ROLES = (Role.ORGANISER.value, Role.STAFF.value, Role.ADMIN.value)


def _password_field(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(
        required=True,
        load_only=True,
        validate=ma.validate.Length(min=PASSWORD_MIN_LENGTH, max=PASSWORD_MAX_LENGTH),
        metadata={"format": "password"},
        **kwargs,
    )


def _display_name_field(**kwargs: Any) -> Text:
    return Text(validate=ma.validate.Length(min=1, max=100), **kwargs)


# --- output -----------------------------------------------------------------------------------


class AccountAreaSchema(ma.Schema):
    """The area an account belongs to (its scope for organisers, staff and admins)."""

    id = ma.fields.Integer(required=True)
    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    level = ma.fields.String(required=True)
    path = ma.fields.String(required=True, metadata={"example": "/1/4/17/"})


class MeSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    phone = ma.fields.String(required=True, metadata={"example": "+8613800138000"})
    role = ma.fields.String(required=True, metadata={"enum": [role.value for role in Role]})
    display_name = ma.fields.String(required=True)
    locale = Language(required=True)
    area = ma.fields.Nested(AccountAreaSchema, required=True)
    created_at = Instant(required=True)
    volunteer_id = ma.fields.Method(
        "_volunteer_id",
        required=True,
        allow_none=True,
        metadata={
            "type": "integer",
            "description": "Your volunteer profile's id (null for organiser, staff and admin "
            "accounts). Paths and bodies about volunteers (/volunteers/{id}, to_volunteer_id, "
            "volunteer_id) take this id; /users/{id} and actor ids take the user id (`id`).",
        },
    )

    def _volunteer_id(self, user: User | Account) -> int | None:
        return service.linked_ids(user.id)["volunteer_id"]


class UserSchema(MeSchema):
    """An account as staff and admins see it (never a volunteer's: they have no volunteer_id here)."""

    class Meta:
        exclude = ("volunteer_id",)

    is_active = StrictBoolean(required=True)
    updated_at = Instant(required=True)
    password_changed_at = Instant(required=True)
    created_by_id = ma.fields.Integer(required=True, allow_none=True)


class SessionTokensSchema(ma.Schema):
    access_token = ma.fields.String(required=True)
    refresh_token = ma.fields.String(
        required=True, metadata={"description": "Send to /auth/refresh; single use (rotated)"}
    )
    token_type = ma.fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = ma.fields.Integer(
        required=True, metadata={"description": "Seconds until the access token expires"}
    )
    user = ma.fields.Nested(MeSchema, required=True)


class AuditEntrySchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    at = Instant(required=True)
    actor_id = ma.fields.Integer(required=True, allow_none=True)
    actor_role = ma.fields.String(required=True, allow_none=True)
    action = ma.fields.String(required=True, metadata={"example": "user.update"})
    target_type = ma.fields.String(required=True, metadata={"example": "user"})
    target_id = ma.fields.String(required=True)
    area_path = ma.fields.String(required=True)
    before = ma.fields.Dict(required=True, allow_none=True)
    after = ma.fields.Dict(required=True, allow_none=True)


# --- input ------------------------------------------------------------------------------------


class LoginSchema(ma.Schema):
    phone = CNMobile(required=True)
    # No minimum here: a login only has to be right, and old accounts may predate the policy.
    password = ma.fields.String(
        required=True,
        load_only=True,
        validate=ma.validate.Length(min=1, max=PASSWORD_MAX_LENGTH),
        metadata={"format": "password"},
    )


class MeUpdateSchema(UpdateSchema):
    display_name = _display_name_field()
    locale = Language()


class PasswordChangeSchema(ma.Schema):
    current_password = ma.fields.String(
        required=True,
        load_only=True,
        validate=ma.validate.Length(min=1, max=PASSWORD_MAX_LENGTH),
        metadata={"format": "password"},
    )
    new_password = _password_field()


class UserCreateSchema(ma.Schema):
    phone = CNMobile(required=True)
    password = _password_field()
    display_name = _display_name_field(required=True)
    role = ma.fields.String(required=True, validate=ma.validate.OneOf(MANAGED_ROLES))
    area_id = id_field(required=True)
    locale = Language(load_default=i18n.DEFAULT_LANGUAGE)


class UserCreateInput(TypedDict):
    """What :class:`UserCreateSchema` loads."""

    phone: str
    password: str
    display_name: str
    role: str
    area_id: int
    locale: str  # defaulted by the schema


class UserUpdateSchema(UpdateSchema):
    display_name = _display_name_field()
    area_id = id_field()
    role = ma.fields.String(validate=ma.validate.OneOf(MANAGED_ROLES))
    is_active = StrictBoolean()


class UserQuerySchema(PageArgs):
    role = ma.fields.String(validate=ma.validate.OneOf(MANAGED_ROLES))
    area_id = id_field(
        strict=False,
        metadata={"description": "Only accounts in this area's subtree (must be in yours)"},
    )
    q = Text(
        validate=ma.validate.Length(min=1, max=100),
        metadata={"description": "Display name or phone contains this text"},
    )
    is_active = QueryBoolean()


class AuditQuerySchema(PageArgs):
    target_type = Text(validate=ma.validate.Length(min=1, max=32))
    target_id = Text(validate=ma.validate.Length(min=1, max=64))
    action = Text(validate=ma.validate.Length(min=1, max=64))
    actor_id = id_field(strict=False)
    since = Instant(metadata={"description": "Entries at or after this instant"})
    until = Instant(metadata={"description": "Entries before this instant"})
