"""The errors of accounts and sessions, each with its code of docs/API.md."""

from __future__ import annotations

from backend.errors import BadRequest, Conflict, Forbidden, RateLimited, Unauthorized


class EmailTaken(Conflict):
    code, detail = "email_taken", "An account with this email already exists."


class InvalidCredentials(Unauthorized):
    code, detail = "invalid_credentials", "The email or password is incorrect."


class AccountDisabled(Forbidden):
    code, detail = "account_disabled", "This account has been disabled."


class AccountLocked(RateLimited):
    code, detail = "account_locked", "Too many failed sign-ins; try again later."


class TokenReused(Unauthorized):
    code, detail = "token_reused", "This refresh token was already used; the session has been ended."
    keep_changes = True  # the revocation must stick although the answer is an error


class AccessTokenExpired(Unauthorized):
    code, detail = "token_expired", "The access token has expired; refresh it."


class InvalidPassword(BadRequest):
    code, detail = "invalid_password", "The current password is incorrect."


class OneTimeTokenInvalid(BadRequest):
    code, detail = "token_invalid", "This link or code is not valid."


class OneTimeTokenExpired(BadRequest):
    code, detail = "token_expired", "This link or code has expired."
