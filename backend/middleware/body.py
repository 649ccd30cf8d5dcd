"""Request bodies: the 1 MiB limit, JSON only, and parse errors in our own words."""

from __future__ import annotations

from typing import Any

from quart import Request

from backend.errors import InvalidJSON, UnsupportedMediaType

MAX_BODY_BYTES = 1024 * 1024


class JSONRequest(Request):
    """A request whose JSON body is required to be JSON: a form or text body is a 415, not a 422."""

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if not (force or self.is_json):
            if silent:
                return None
            if self.mimetype or await self.get_data(cache=True):
                raise UnsupportedMediaType()
            return {}  # no body at all: the same as an empty object, so optional-only bodies may be omitted
        try:
            return await super().get_json(force=force, silent=silent, cache=cache)
        except UnicodeDecodeError:  # decoding the body as text fails before JSON parsing is reached
            if silent:
                return None
            raise InvalidJSON() from None

    def on_json_loading_failed(self, error: Exception) -> Any:
        raise InvalidJSON()
