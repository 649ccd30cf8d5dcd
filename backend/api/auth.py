"""Accounts and sessions: registration, login, tokens, cookies with CSRF, email flows and OAuth."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import tag_blueprint

bp = Blueprint("auth", __name__)
tag_blueprint(bp, ["auth"])
