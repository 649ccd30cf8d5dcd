from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from backend.schemas.users import DisplayName, UserRead

PASSWORD_RULES = (
    (re.compile(r"[a-z]"), "a lower-case letter"),
    (re.compile(r"[A-Z]"), "an upper-case letter"),
    (re.compile(r"[0-9]"), "a digit"),
    (re.compile(r"[^A-Za-z0-9]"), "a character that is not a letter or digit"),
)


def _any_case(word: str) -> str:
    return "".join(f"[{character.lower()}{character.upper()}]" for character in word)


# email-validator refuses addresses at special-use names (`a@b.test`, `a@localhost`); the OpenAPI schema
# says so with a pattern, since `format: email` alone allows them.
_RESERVED_DOMAINS = "|".join(_any_case(name) for name in SPECIAL_USE_DOMAIN_NAMES)
DELIVERABLE_EMAIL_PATTERN = rf"^(?![\s\S]*@(?:[\s\S]*\.)?(?:{_RESERVED_DOMAINS})$)"


def _strong(password: str) -> str:
    missing = [rule for pattern, rule in PASSWORD_RULES if not pattern.search(password)]
    if missing:
        raise ValueError("Password needs " + ", ".join(missing))
    return password


# The same four rules as one ECMA-262 pattern, for the OpenAPI schema (validation uses PASSWORD_RULES).
STRONG_PASSWORD_PATTERN = "^" + "".join(f"(?=[\\s\\S]*{rule.pattern})" for rule, _ in PASSWORD_RULES)
NewPassword = Annotated[
    str,
    Field(min_length=12, max_length=128, json_schema_extra={"pattern": STRONG_PASSWORD_PATTERN}),
    AfterValidator(_strong),
]
# Checked passwords are not re-validated against today's policy; only bounded.
AnyPassword = Annotated[str, Field(min_length=1, max_length=128)]
Email = Annotated[EmailStr, Field(max_length=320, json_schema_extra={"pattern": DELIVERABLE_EMAIL_PATTERN})]
OpaqueToken = Annotated[str, Field(min_length=1, max_length=512)]


class RegisterRequest(BaseModel):
    email: Email
    password: NewPassword
    name: DisplayName  # plain text, HTML stripped, as when the profile is edited


class LoginRequest(BaseModel):
    email: Email
    password: AnyPassword


class RefreshRequest(BaseModel):
    refresh_token: OpaqueToken | None = None


class TokenPayload(BaseModel):
    user: UserRead
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the scheme's name, not a secret)
    expires_in: int = Field(description="Seconds until the access token expires.")
    csrf_token: str = Field(description="Send it back as X-CSRF-Token on unsafe requests made with cookies.")


class SessionRead(BaseModel):
    id: int
    user_agent: str | None
    ip: str | None
    created_at: datetime
    last_used_at: datetime
    current: bool


class SessionList(BaseModel):
    items: list[SessionRead]


class PasswordChangeRequest(BaseModel):
    current_password: AnyPassword
    new_password: NewPassword


class EmailRequest(BaseModel):
    email: Email


class PasswordResetConfirm(BaseModel):
    token: OpaqueToken
    new_password: NewPassword


class TokenRequest(BaseModel):
    token: OpaqueToken


class CodeRequest(BaseModel):
    code: OpaqueToken


class Message(BaseModel):
    model_config = ConfigDict(title="Notice")  # `Message` in the document is the chat message

    message: str


class VerifyEmailResult(BaseModel):
    message: str
    user: UserRead | None = Field(
        default=None, description="On the link's first use only; a link used before answers `message` alone."
    )

    @model_serializer(mode="wrap")  # no return annotation: the document keeps the fields' schema
    def _without_absent_user(self, handler: SerializerFunctionWrapHandler):
        data: dict[str, Any] = handler(self)
        if data.get("user") is None:
            data.pop("user", None)
        return data


class OAuthProvider(BaseModel):
    name: Literal["github", "google"]
    authorize_url: str


class OAuthProviderList(BaseModel):
    items: list[OAuthProvider]


# Query strings of the OAuth redirects: documented, not validated. A browser lands on these routes, so a
# malformed query must end in the usual redirect, never in a 422 body.
class OAuthStartQuery(BaseModel):
    redirect_to: str | None = Field(
        None,
        description="A path on the SPA to land on after signing in, e.g. `/exercises/42`; anything else is ignored.",
    )


class OAuthCallbackQuery(BaseModel):
    code: str | None = Field(None, description="The provider's authorization code.")
    state: str | None = Field(None, description="The state this server gave the provider.")
    error: str | None = Field(None, description="Set by the provider instead of `code`, e.g. `access_denied`.")
