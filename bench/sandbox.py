"""What one sandbox run costs, and graded runs per second at a given concurrency (by hand, never in CI).

    .venv/bin/python bench/sandbox.py                       # isolated (bwrap) and fallback, concurrency 8
    .venv/bin/python bench/sandbox.py --runs 200 --concurrency 8 --variants isolated

A small exercise with 8 call tests, as the catalog has, sent the way the API sends it: to a sandbox
runner process (`python -m backend sandbox`, started here with SANDBOX_MAX_CONCURRENCY slots) over its
Unix socket, from `--concurrency` users at once (the runner runs one job per user at a time). Each run
starts bubblewrap, runs the harness and its test child; the API side grades. Prints sequential latency
(p50/p99 of one run alone), throughput, and the runner's CPU time per run (its children included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.config import Settings
from backend.integrations.sandbox import RunnerSandbox
from backend.integrations.sandbox.process import RunnerProcess

CODE = """
def count_vowels(text):
    return sum(1 for char in text.lower() if char in "aeiou")
"""
TESTS = [
    {"name": f"case {i}", "call": f"count_vowels({word!r})", "expected": str(sum(c in "aeiou" for c in word.lower()))}
    for i, word in enumerate(["", "a", "xyz", "Hello", "AEIOU", "banana", "rhythm", "Programming in Python"])
]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its reaped children (utime + stime + cutime + cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


async def measure(variant: str, runs: int, concurrency: int, slots: int) -> None:
    settings = Settings(
        _env_file=None,
        sandbox_max_concurrency=slots,
        sandbox_require_isolation=variant == "isolated",
        sandbox_bwrap="bwrap" if variant == "isolated" else "/nonexistent/bwrap",
    )
    runner = RunnerProcess(settings)
    sandbox = RunnerSandbox(runner.start(), timeout_seconds=10)
    try:
        for _ in range(5):  # warm the page cache and the interpreter's .pyc files
            await sandbox.run(CODE, TESTS, user="warm-up")
        alone = []
        for _ in range(min(runs, 50)):
            started = time.perf_counter()
            result = await sandbox.run(CODE, TESTS, user="alone")
            alone.append((time.perf_counter() - started) * 1000)
            assert result.status == "passed", result
        assert runner.pid is not None
        cpu_before, started = cpu_seconds(runner.pid), time.perf_counter()
        results = await asyncio.gather(*(sandbox.run(CODE, TESTS, user=f"u{i % concurrency}") for i in range(runs)))
        elapsed = time.perf_counter() - started
        cpu_per_run = (cpu_seconds(runner.pid) - cpu_before) / runs * 1000
        assert all(result.status == "passed" for result in results)
        print(
            f"{variant:9} one run alone: p50 {statistics.median(alone):.1f} ms, p99 {percentile(alone, 0.99):.1f} ms | "
            f"{runs} runs from {concurrency} users, {slots} slots: {runs / elapsed:.1f} runs/s, "
            f"runner CPU {cpu_per_run:.1f} ms/run"
        )
    finally:
        await sandbox.close()
        runner.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--slots", type=int, default=os.cpu_count() or 1, help="the runner's slots (CPU count)")
    parser.add_argument("--variants", default="isolated,fallback")
    args = parser.parse_args()
    for variant in args.variants.split(","):
        await measure(variant, args.runs, args.concurrency, args.slots)


if __name__ == "__main__":
    asyncio.run(main())
