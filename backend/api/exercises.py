"""The exercise catalog, daily assignments, hints and graded submissions."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import tag_blueprint

bp = Blueprint("exercises", __name__)
tag_blueprint(bp, ["exercises"])
