"""The user behind an access token: the check on every authenticated request.

The session row is the revocation check: every authenticated request reads it in the one query that
also loads the user, so a revoked access token stops working on the very next request, on every worker,
and a cache outage cannot let it through (fail closed). It is deliberately not a cache lookup
(docs/PERFORMANCE.md, "Revocation"); if reads ever move to a replica, authentication must still read
the primary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import RowMapping, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import make_transient_to_detached

from backend.db import ReadStatement, UTCDateTime, fetch, utcnow
from backend.errors import Unauthorized
from backend.models import AuthSession, User
from backend.security import AccessClaims
from backend.services.auth.errors import AccountDisabled

# The user behind an access token, if its session is alive: one Core statement built once (building a
# select per request costs more than running it), every column of `users`, no ORM session; run through
# the driver on PostgreSQL (db.fetch).
ALIVE_SESSION_USER = ReadStatement(
    select(*User.__table__.columns)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        User.id == bindparam("user_id"),
        AuthSession.id == bindparam("session_id"),
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > bindparam("now", type_=UTCDateTime()),
    )
)


def detached_user(row: Mapping[Any, Any] | RowMapping) -> User:
    """A `User` from a row of every column, as if loaded and then detached: adding it to a session later
    makes it persistent without a query, and changes to it are then flushed as usual."""
    user = User.__mapper__.class_manager.new_instance()
    user.__dict__.update(row)
    make_transient_to_detached(user)
    return user


async def authenticate(connection: AsyncConnection, claims: AccessClaims) -> User:
    """The user behind a verified access token, if its session is still alive (not revoked, not expired).

    `connection` should not wrap the read in a transaction (`db.read_connection()`): one round trip."""
    values = {"user_id": claims.user_id, "session_id": claims.session_id, "now": utcnow()}
    rows = await fetch(connection, ALIVE_SESSION_USER, values)
    if not rows:
        raise Unauthorized("The session has ended; sign in again.")
    user = detached_user(rows[0])
    if not user.is_active:
        raise AccountDisabled()
    return user
