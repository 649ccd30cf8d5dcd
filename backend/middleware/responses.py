"""Response bodies straight from pydantic to bytes.

quart-schema turns a handler's model into Python objects (`model_dump`) and Quart then encodes those
with the standard library's json, calling back into pydantic for every datetime. pydantic's own
serializer writes the same JSON (compact, fields in declared order, ISO datetimes) in one call in Rust.
Only the body's bytes change: non-ASCII characters are sent as UTF-8 instead of `\\u` escapes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from quart import Quart


def serialize_models_directly(app: Quart) -> None:
    """Wrap `app.make_response` (after QuartSchema has wrapped it) to encode pydantic models itself."""
    if app.config.get("QUART_SCHEMA_CONVERT_CASING"):
        return  # quart-schema rewrites the keys then; leave it to do so
    inner = app.make_response
    # Quart's own, without quart-schema's conversion around it: the body built here is a Response already,
    # which that conversion would only inspect (two model_dump calls, four config lookups) and pass on.
    plain = Quart.make_response.__get__(app)
    options = app.config.get("QUART_SCHEMA_PYDANTIC_DUMP_OPTIONS") or {}
    response_class = app.response_class

    async def make_response(result: Any) -> Any:
        value = result[0] if isinstance(result, tuple) else result
        if not isinstance(value, BaseModel):
            return await inner(result)
        body = value.__pydantic_serializer__.to_json(value, **options) + b"\n"
        response = response_class(body, mimetype="application/json")
        if not isinstance(result, tuple):
            return await plain(response)
        rest = result[1:]  # a status, headers: a headers model still needs quart-schema's conversion
        return await (inner if any(isinstance(part, BaseModel) for part in rest) else plain)((response, *rest))

    app.make_response = make_response  # type: ignore[method-assign]
