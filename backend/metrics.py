"""Prometheus metrics, one set per process (`/metrics` aggregates workers in multiprocess mode)."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

REQUESTS = Counter(
    "http_requests_total", "HTTP requests by route template, method and status.", ["method", "route", "status"]
)
REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival to its response, by route template and method.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LLM_TOKENS = Counter("llm_tokens_total", "Tokens used by LLM calls.", ["provider", "model", "kind"])
SANDBOX_RUNS = Counter("sandbox_runs_total", "Code runs in the sandbox by outcome.", ["backend", "status"])


def render_latest() -> tuple[bytes, str]:
    """The exposition text; with PROMETHEUS_MULTIPROC_DIR set, summed over every worker process."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
