"""What one sandbox run costs, and graded runs per second at a given concurrency (by hand, never in CI).

    .venv/bin/python bench/sandbox.py                       # isolated (bwrap) and fallback, concurrency 8
    .venv/bin/python bench/sandbox.py --runs 200 --concurrency 8 --variants isolated

A small exercise with 8 call tests, as the catalog has: each run starts the sandbox, runs the harness,
forks the test child, and grades. Prints sequential latency (p50/p99 of one run alone) and throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.integrations.sandbox import LocalSandbox

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


async def measure(variant: str, runs: int, concurrency: int) -> None:
    sandbox = LocalSandbox(
        timeout_seconds=10, memory_mb=256, max_concurrency=concurrency, use_isolation=variant == "isolated"
    )
    for _ in range(5):  # warm the page cache and the interpreter's .pyc files
        await sandbox.run(CODE, TESTS)
    alone = []
    for _ in range(min(runs, 50)):
        started = time.perf_counter()
        result = await sandbox.run(CODE, TESTS)
        alone.append((time.perf_counter() - started) * 1000)
        assert result.status == "passed", result
    started = time.perf_counter()
    results = await asyncio.gather(*(sandbox.run(CODE, TESTS) for _ in range(runs)))
    elapsed = time.perf_counter() - started
    assert all(result.status == "passed" for result in results)
    print(
        f"{variant:9} one run alone: p50 {statistics.median(alone):.1f} ms, p99 {percentile(alone, 0.99):.1f} ms | "
        f"{runs} runs at concurrency {concurrency}: {runs / elapsed:.1f} runs/s"
    )
    await sandbox.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--variants", default="isolated,fallback")
    args = parser.parse_args()
    for variant in args.variants.split(","):
        await measure(variant, args.runs, args.concurrency)


if __name__ == "__main__":
    asyncio.run(main())
