"""GitHub connection, linked repositories and AI code reviews."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import tag_blueprint

bp = Blueprint("github", __name__)
tag_blueprint(bp, ["github"])
