"""HTTP handlers, one blueprint per domain. `register_blueprints` mounts them under `/api/v1` (docs/API.md)."""

from __future__ import annotations

from quart import Quart

from backend.api import auth, chat, docs, exercises, github, health, oauth, users
from backend.api.openapi import reject_impossible_ids

API_PREFIX = "/api/v1"


def register_blueprints(app: Quart) -> None:
    app.before_request(reject_impossible_ids)
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    for module in (auth, users, exercises, chat, github):
        app.register_blueprint(module.bp, url_prefix=f"{API_PREFIX}/{module.bp.name}")
    app.register_blueprint(oauth.bp, url_prefix=f"{API_PREFIX}/auth/oauth")
