"""Token counting for history windows and usage estimates, without ever reaching the network.

tiktoken downloads its BPE tables on first use, which an offline host cannot do (and a request must not
wait for). We use `cl100k_base` only when its file is already in tiktoken's cache (TIKTOKEN_CACHE_DIR,
e.g. pre-seeded in the image); otherwise an estimate of ~4 characters per token, which is what OpenAI
documents for English text and close enough to keep a prompt under its budget.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

import structlog

from backend.integrations.llm.base import ChatTurn

log = structlog.get_logger(__name__)

ENCODING_NAME = "cl100k_base"
ENCODING_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4  # role and separators the chat formats add around every message


def _tiktoken_cache_file() -> Path:
    # Where tiktoken.load.read_file_cached looks (tiktoken 0.14): the SHA-1 of the URL in the cache dir.
    directory = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    base = Path(directory) if directory else Path(tempfile.gettempdir()) / "data-gym-cache"
    return base / hashlib.sha1(ENCODING_URL.encode(), usedforsecurity=False).hexdigest()


@cache
def _encoder() -> Callable[[str], int] | None:
    if not _tiktoken_cache_file().is_file():
        log.info("llm.tokens_estimated", reason="tiktoken_encoding_not_cached")
        return None
    try:
        import tiktoken

        encoding = tiktoken.get_encoding(ENCODING_NAME)
    except Exception as error:  # a corrupt cache file would make tiktoken try the network; estimate instead
        log.warning("llm.tokens_estimated", reason="tiktoken_failed", error_type=type(error).__name__)
        return None
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def count_tokens(text: str) -> int:
    encode = _encoder()
    if encode is not None:
        return encode(text)
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def count_turn_tokens(turn: ChatTurn) -> int:
    return count_tokens(turn.content) + TOKENS_PER_MESSAGE


def count_prompt_tokens(system: str, turns: Iterable[ChatTurn]) -> int:
    return count_tokens(system) + TOKENS_PER_MESSAGE + sum(count_turn_tokens(turn) for turn in turns)
