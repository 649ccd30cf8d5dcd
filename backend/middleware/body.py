"""Request input: the 1 MiB limit, JSON only, parse errors in our own words, and no NUL characters.

PostgreSQL text cannot hold U+0000 (asyncpg refuses it), so a NUL anywhere in a JSON string or a query
argument is refused up front as a 422 naming the field, on every stack alike, instead of failing later
as a database error.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, cast

from quart import Quart, Request, request
from quart.routing import QuartRule

from backend.errors import InvalidJSON, UnsupportedMediaType, ValidationFailed

ROUTE_KEY = "codementor.route"  # the key request_context.py reads
MAX_BODY_BYTES = 1024 * 1024
NUL = "\x00"
NUL_MESSAGE = "Must not contain the NUL character (U+0000)"
JSON_ESCAPED_NUL = b"\\u0000"  # the only way JSON can carry a NUL inside a string
URL_ENCODED_NUL = b"%00"


class JSONRequest(Request):
    """A request whose JSON body is required to be JSON: a form or text body is a 415, not a 422.

    It also leaves the route template it matched in the ASGI scope, where the request middleware reads
    it for the metrics' labels (no hook runs per request for that), and works out the matched route's
    blueprints once: Quart asks for them three times per request, deriving them from the endpoint's
    name each time."""

    _url_rule: QuartRule | None = None
    _blueprints: list[str] | None = None

    @property
    def url_rule(self) -> QuartRule | None:
        return self._url_rule

    @url_rule.setter
    def url_rule(self, rule: QuartRule | None) -> None:
        self._url_rule, self._blueprints = rule, None
        if rule is not None:
            cast("MutableMapping[str, Any]", self.scope)[ROUTE_KEY] = rule.rule  # an ASGI extension key

    @property
    def blueprints(self) -> list[str]:
        if self._blueprints is None:
            self._blueprints = super().blueprints
        return list(self._blueprints)

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if not (force or self.is_json):
            if silent:
                return None
            if self.mimetype or await self.get_data(cache=True):
                raise UnsupportedMediaType()
            return {}  # no body at all: the same as an empty object, so optional-only bodies may be omitted
        try:
            data = await super().get_json(force=force, silent=silent, cache=cache)
        except (UnicodeDecodeError, RecursionError):  # not UTF-8, or nested deeper than the parser goes
            if silent:
                return None
            raise InvalidJSON() from None
        if JSON_ESCAPED_NUL in await self.get_data(cache=True):  # a byte search: the walk runs only then
            path = nul_path(data)
            if path is not None:
                raise ValidationFailed(errors=[{"field": path, "message": NUL_MESSAGE}])
        return data

    def on_json_loading_failed(self, error: Exception) -> Any:
        raise InvalidJSON()


def nul_path(value: Any) -> str | None:
    """The dotted path of the first string (key or value) holding a NUL, or None. Iterative: the parser
    accepts nesting deep enough to exhaust Python's recursion limit."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return path or "body"
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                child_path = f"{path}.{key}" if path else str(key)
                if NUL in str(key):
                    return child_path
                stack.append((child_path, child))
        elif isinstance(item, list):
            stack.extend(
                (f"{path}.{index}" if path else str(index), child) for index, child in reversed(list(enumerate(item)))
            )
    return None


def register_input_guards(app: Quart) -> None:
    @app.before_request
    async def _refuse_nul_in_query() -> None:
        if URL_ENCODED_NUL not in request.query_string:
            return
        for key, value in request.args.items(multi=True):
            if NUL in key or NUL in value:
                raise ValidationFailed(errors=[{"field": key.replace(NUL, ""), "message": NUL_MESSAGE}])
