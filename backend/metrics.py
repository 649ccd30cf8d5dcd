"""Prometheus metrics, one set per process (`/metrics` aggregates workers in multiprocess mode)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "http_requests_total", "HTTP requests by route template, method and status.", ["method", "route", "status"]
)
REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival to its response, by route template and method.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),  # streams last minutes
)
# Slow things: LLM answers and jobs take seconds to minutes.
SLOW_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
LLM_TOKENS = Counter("llm_tokens_total", "Tokens used by LLM calls.", ["provider", "model", "kind"])
LLM_DURATION = Histogram(
    "llm_request_duration_seconds",
    "LLM provider calls (a stream: until its end) by provider and outcome (ok, error).",
    ["provider", "outcome"],
    buckets=SLOW_BUCKETS,
)
LLM_ERRORS = Counter("llm_errors_total", "Failed LLM provider calls by provider and reason.", ["provider", "reason"])
SANDBOX_RUNS = Counter("sandbox_runs_total", "Code runs in the sandbox by outcome.", ["backend", "status"])
SANDBOX_QUEUE_WAIT = Histogram(
    "sandbox_queue_wait_seconds",
    "Time a code run waited in the runner's fair queue for a slot (a refused run: until it gave up).",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
)
JOB_DURATION = Histogram(
    "job_duration_seconds",
    "Background jobs from claim to end, by kind and outcome.",
    ["kind", "outcome"],
    buckets=SLOW_BUCKETS,
)
# Set on every scrape of /metrics from the jobs table (one process answers: the most recent value stands).
JOBS_QUEUED = Gauge("jobs_queued", "Background jobs waiting to run (queued rows).", multiprocess_mode="mostrecent")


def render_latest() -> tuple[bytes, str]:
    """The exposition text; with PROMETHEUS_MULTIPROC_DIR set, summed over every worker process."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
