"""Plain text from what people and providers send: shared by the request bodies (schemas) and the services
that store text arriving by other ways (an OAuth provider's profile name, a conversation title drawn from
a message)."""

from __future__ import annotations

import html
from typing import Any

import nh3

MAX_DECODING_PASSES = 8


def strip_html(value: Any) -> Any:
    """Plain text from whatever the client sent: tags removed (script and style with their content),
    entities decoded, outer whitespace trimmed. Lengths are then checked on what is stored.

    Entities are decoded *before* cleaning, again and again until nothing changes: `&lt;img onerror=…&gt;`
    (or `&amp;lt;…`) decoded after cleaning would come out as live markup. Text that is still changing after
    MAX_DECODING_PASSES passes is refused rather than stored half-decoded."""
    if not isinstance(value, str):
        return value
    text = value
    for _ in range(MAX_DECODING_PASSES):
        # nh3 escapes the `<`, `>` and `&` of the text it keeps; decoding them again gives the plain text.
        cleaned = html.unescape(nh3.clean(html.unescape(text), tags=set()))
        if cleaned == text:
            return text.strip()
        text = cleaned
    raise ValueError("Use plain text (no HTML, no nested character references)")
