"""LLM providers behind one interface (`LLM`): OpenAI-compatible, Anthropic, offline, with fallback.

`create_llm(settings)` builds what LLM_PROVIDER and LLM_FALLBACK_* describe; the app keeps one in
`app.extensions["llm"]` and closes it on shutdown.
"""

from __future__ import annotations

from backend.config import Settings
from backend.integrations.llm.base import (
    LLM,
    Attempt,
    ChatTurn,
    Completion,
    LLMError,
    LLMTimeout,
    LLMUnavailable,
    Prompt,
    StreamItem,
    Usage,
)
from backend.integrations.llm.fallback import FallbackLLM
from backend.integrations.llm.offline import OfflineTutor

# One retry with the SDKs' exponential backoff (0.5 s, jittered): enough for a blip, short enough that
# the fallback still answers while the student waits.
MAX_RETRIES = 1

__all__ = [
    "LLM",
    "Attempt",
    "ChatTurn",
    "Completion",
    "FallbackLLM",
    "LLMError",
    "LLMTimeout",
    "LLMUnavailable",
    "Prompt",
    "StreamItem",
    "Usage",
    "build_provider",
    "create_llm",
]


def build_provider(
    provider: str,
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float = 60,
    max_retries: int = MAX_RETRIES,
) -> LLM:
    # The SDKs are imported only when configured: each costs ~0.5 s of start-up and ~50 MB per worker,
    # which the offline default never needs.
    if provider == "openai":
        from backend.integrations.llm.openai_provider import OpenAIProvider

        return OpenAIProvider(model=model, api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)
    if provider == "anthropic":
        from backend.integrations.llm.anthropic_provider import AnthropicProvider

        return AnthropicProvider(
            model=model, api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )
    if provider == "offline":
        return OfflineTutor()
    raise ValueError(f"unknown LLM provider {provider!r}")


def create_llm(settings: Settings) -> LLM:
    primary = build_provider(
        settings.llm_provider,
        model=settings.llm_model,
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
        timeout=settings.llm_timeout_seconds,
    )
    if settings.llm_fallback_provider is None:
        return primary
    fallback = build_provider(
        settings.llm_fallback_provider,
        model=settings.llm_fallback_model,
        base_url=settings.llm_fallback_base_url,
        api_key=settings.llm_fallback_api_key.get_secret_value() if settings.llm_fallback_api_key else None,
        timeout=settings.llm_timeout_seconds,
    )
    return FallbackLLM(primary, fallback)
