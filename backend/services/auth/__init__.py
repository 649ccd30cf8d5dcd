"""Accounts and sessions: registration, login, refresh-token rotation, revocation, email tokens.

`accounts` registers, signs in with a password (with its lockout) and verifies addresses; `sessions`
starts, rotates, lists and ends sessions; `authentication` finds the user behind an access token on every
request; `passwords` changes and resets passwords; `one_time` keeps the single-use tokens of email links
and OAuth exchange codes; `errors` holds their errors. Callers use the names exported here.

Revocation is written to the database, the truth, and the session row is the revocation check of every
authenticated request (`authentication`): a revoked access token stops working on the very next request,
on every worker, whatever the cache's state.
"""

from backend.services.auth.accounts import (
    EMAILS_PER_ADDRESS_PER_HOUR,
    LOCKOUT_SECONDS,
    MAX_FAILED_LOGINS,
    VERIFY_EMAIL_TTL,
    ensure_admin,
    login,
    normalise_email,
    register,
    resend_verification,
    verify_email,
)
from backend.services.auth.authentication import ALIVE_SESSION_USER, authenticate, detached_user
from backend.services.auth.errors import (
    AccessTokenExpired,
    AccountDisabled,
    AccountLocked,
    EmailTaken,
    InvalidCredentials,
    InvalidPassword,
    OneTimeTokenExpired,
    OneTimeTokenInvalid,
    TokenReused,
)
from backend.services.auth.one_time import (
    OAUTH_EXCHANGE_TTL,
    create_oauth_exchange_code,
    redeem_oauth_exchange_code,
)
from backend.services.auth.passwords import (
    PASSWORD_RESET_TTL,
    change_password,
    confirm_password_reset,
    request_password_reset,
)
from backend.services.auth.sessions import (
    Client,
    IssuedTokens,
    end_session,
    list_sessions,
    refresh,
    revoke_sessions,
    start_session,
)

__all__ = [
    "ALIVE_SESSION_USER",
    "EMAILS_PER_ADDRESS_PER_HOUR",
    "LOCKOUT_SECONDS",
    "MAX_FAILED_LOGINS",
    "OAUTH_EXCHANGE_TTL",
    "PASSWORD_RESET_TTL",
    "VERIFY_EMAIL_TTL",
    "AccessTokenExpired",
    "AccountDisabled",
    "AccountLocked",
    "Client",
    "EmailTaken",
    "InvalidCredentials",
    "InvalidPassword",
    "IssuedTokens",
    "OneTimeTokenExpired",
    "OneTimeTokenInvalid",
    "TokenReused",
    "authenticate",
    "change_password",
    "confirm_password_reset",
    "create_oauth_exchange_code",
    "detached_user",
    "end_session",
    "ensure_admin",
    "list_sessions",
    "login",
    "normalise_email",
    "redeem_oauth_exchange_code",
    "refresh",
    "register",
    "request_password_reset",
    "resend_verification",
    "revoke_sessions",
    "start_session",
    "verify_email",
]
