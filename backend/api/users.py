"""Profiles, onboarding, progress, streaks and achievements."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import tag_blueprint

bp = Blueprint("users", __name__)
tag_blueprint(bp, ["users"])
