"""The load generator for scenarios wrk cannot express: `python -m bench.loadgen < spec.json > result.json`.

bench/run.py starts it as a process of its own (so its CPU is not the server's) with a JSON spec on
stdin, and reads one JSON result from stdout. Modes:

- `chat_ttfb`: time to the first streamed `delta` of a chat reply, through our API and from the fake
  LLM directly (the same chunk delay), one message at a time; the difference is our overhead.
- `streams`: N chat streams opened evenly over `ramp_seconds`, each held open by the fake LLM longer
  than the ramp and read to its end; how many completed, and how many were open together at the peak.
- `session`: students doing login, daily, hint, submit and a streamed chat message in a loop, at
  increasing concurrency until the p99 of a request passes the limit.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(120, connect=30)


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 3)


def latency_summary(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_ms": percentile(values, 0.50),
        "p99_ms": percentile(values, 0.99),
        "max_ms": round(max(values), 3) if values else None,
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def first_delta_ms(response: httpx.Response, started: float, marker: bytes) -> float | None:
    """Read the stream to its end; the time at which `marker` first arrived (None if it never did)."""
    seen: float | None = None
    window = b""
    async for chunk in response.aiter_raw():
        if seen is None:
            window = window[-len(marker) :] + chunk
            if marker in window:
                seen = (time.perf_counter() - started) * 1000
    return seen


async def stream_message(
    client: httpx.AsyncClient, conversation_id: int, token: str, content: str
) -> tuple[float | None, bool]:
    """One streamed chat message: (ms to the first delta, whether the stream ended with `done`)."""
    started = time.perf_counter()
    async with client.stream(
        "POST",
        f"/api/v1/chat/conversations/{conversation_id}/messages",
        json={"content": content, "stream": True},
        headers=bearer(token),
    ) as response:
        if response.status_code != 200:
            await response.aread()
            return None, False
        ttfb: float | None = None
        tail = b""
        async for chunk in response.aiter_raw():
            if ttfb is None and b"event: delta" in tail[-16:] + chunk:
                ttfb = (time.perf_counter() - started) * 1000
            tail = (tail + chunk)[-4096:]
        return ttfb, b"event: done" in tail


# ------------------------------------------------------------------------------------ chat_ttfb


async def chat_ttfb(spec: dict[str, Any]) -> dict[str, Any]:
    count = spec["count"]
    ours: list[float] = []
    direct: list[float] = []
    failures = 0
    if spec.get("ours", True):
        async with httpx.AsyncClient(base_url=spec["base_url"], timeout=TIMEOUT) as client:
            for index in range(count + 2):  # two unmeasured warm-ups each
                ttfb, done = await stream_message(client, spec["conversation_id"], spec["token"], f"Question {index}?")
                if index >= 2:
                    if ttfb is None or not done:
                        failures += 1
                    else:
                        ours.append(ttfb)
    if not spec.get("direct", True):
        return {"ours": latency_summary(ours), "failures": failures}
    async with httpx.AsyncClient(base_url=spec["llm_base_url"], timeout=TIMEOUT) as client:
        body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "Question?"}]}
        for index in range(count + 2):
            started = time.perf_counter()
            async with client.stream(
                "POST", "/chat/completions", json=body, headers=bearer(spec["llm_api_key"])
            ) as response:
                ttfb = await first_delta_ms(response, started, b'"content": "Good')
            if index >= 2 and ttfb is not None:
                direct.append(ttfb)
    overhead = statistics.median(ours) - statistics.median(direct) if ours and direct else None
    return {
        "ours": latency_summary(ours),
        "direct": latency_summary(direct),
        "overhead_p50_ms": round(overhead, 3) if overhead is not None else None,
        "failures": failures,
    }


# -------------------------------------------------------------------------------------- streams


async def streams(spec: dict[str, Any]) -> dict[str, Any]:
    """Open the streams evenly over the ramp; a stream counts as held while its body is being read."""
    open_now = peak = 0
    completed = failed = 0
    ttfbs: list[float] = []
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=spec["base_url"], timeout=TIMEOUT, limits=limits) as client:

        async def one(conversation_id: int, token: str) -> None:
            nonlocal open_now, peak, completed, failed
            open_now += 1
            peak = max(peak, open_now)
            try:
                ttfb, done = await stream_message(client, conversation_id, token, spec["content"])
            except httpx.HTTPError:
                ttfb, done = None, False
            finally:
                open_now -= 1
            if done:
                completed += 1
                if ttfb is not None:
                    ttfbs.append(ttfb)
            else:
                failed += 1

        async def after(delay: float, conversation_id: int, token: str) -> None:
            await asyncio.sleep(delay)
            await one(conversation_id, token)

        started = time.perf_counter()
        gap = spec["ramp_seconds"] / max(1, len(spec["conversations"]))
        await asyncio.gather(*(after(i * gap, c, t) for i, (c, t) in enumerate(spec["conversations"])))
        elapsed = time.perf_counter() - started
    return {
        "streams": len(spec["conversations"]),
        "completed": completed,
        "failed": failed,
        "peak_open": peak,
        "seconds": round(elapsed, 2),
        "ttfb": latency_summary(ttfbs),
    }


# -------------------------------------------------------------------------------------- session


@dataclass
class Level:
    concurrency: int
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    sessions: int = 0

    def record(self, step: str, started: float, ok: bool) -> None:
        if ok:
            self.latencies.setdefault(step, []).append((time.perf_counter() - started) * 1000)
        else:
            self.errors[step] = self.errors.get(step, 0) + 1


async def student(client: httpx.AsyncClient, spec: dict[str, Any], user: dict[str, Any], level: Level, deadline: float):
    exercises: list[int] = spec["exercise_ids"]
    solutions: dict[str, str] = spec["solutions"]
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        response = await client.post("/api/v1/auth/login", json={"email": user["email"], "password": user["password"]})
        level.record("login", started, response.status_code == 200)
        if response.status_code != 200:
            continue
        token = response.json()["access_token"]

        started = time.perf_counter()
        response = await client.get("/api/v1/exercises/daily", headers=bearer(token))
        level.record("daily", started, response.status_code == 200)
        daily = response.json()["exercise"] if response.status_code == 200 else None

        # A hint on a random exercise: on the daily one the fourth would be a 409 (three hints at most).
        started = time.perf_counter()
        response = await client.post(
            f"/api/v1/exercises/{random.choice(exercises)}/hint", json={}, headers=bearer(token)
        )
        level.record("hint", started, response.status_code in (200, 409))

        if daily is not None:
            started = time.perf_counter()
            code = solutions.get(daily["slug"], daily["starter_code"])
            response = await client.post(
                f"/api/v1/exercises/{daily['id']}/submit", json={"code": code}, headers=bearer(token)
            )
            level.record("submit", started, response.status_code == 200)

        started = time.perf_counter()
        ttfb, done = await stream_message(client, user["conversation_id"], token, "How do I start?")
        if ttfb is not None and done:
            level.latencies.setdefault("chat_first_delta", []).append(ttfb)
        else:
            level.errors["chat_first_delta"] = level.errors.get("chat_first_delta", 0) + 1
        level.sessions += 1


async def session(spec: dict[str, Any]) -> dict[str, Any]:
    users = spec["users"]
    results: list[dict[str, Any]] = []
    reached = 0
    limits = httpx.Limits(max_connections=None)
    async with httpx.AsyncClient(base_url=spec["base_url"], timeout=TIMEOUT, limits=limits) as client:
        for concurrency in spec["levels"]:
            level = Level(concurrency)
            started = time.perf_counter()
            deadline = started + spec["seconds"]
            await asyncio.gather(
                *(student(client, spec, users[i % len(users)], level, deadline) for i in range(concurrency))
            )
            elapsed = time.perf_counter() - started
            every = [value for values in level.latencies.values() for value in values]
            p99 = percentile(every, 0.99)
            results.append(
                {
                    "concurrency": concurrency,
                    "seconds": round(elapsed, 2),
                    "sessions_per_second": round(level.sessions / elapsed, 2),
                    "requests_per_second": round(len(every) / elapsed, 2),
                    "all": latency_summary(every),
                    "steps": {step: latency_summary(values) for step, values in level.latencies.items()},
                    "errors": level.errors,
                }
            )
            if p99 is None or p99 > spec["p99_limit_ms"]:
                break
            reached = concurrency
    return {"reached_concurrency": reached, "p99_limit_ms": spec["p99_limit_ms"], "levels": results}


MODES = {"chat_ttfb": chat_ttfb, "streams": streams, "session": session}


def main() -> None:
    spec = json.load(sys.stdin)
    result = asyncio.run(MODES[spec["mode"]](spec))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
