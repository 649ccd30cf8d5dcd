"""Conversations with the Socratic AI tutor."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import tag_blueprint

bp = Blueprint("chat", __name__)
tag_blueprint(bp, ["chat"])
