"""One graded run per language, and graded runs per second at a given concurrency (by hand, never in CI).

    .venv/bin/python bench/languages.py                      # python, javascript, typescript; concurrency 8
    .venv/bin/python bench/languages.py --runs 40 --languages javascript

The catalog's `count-vowels` (7-8 cases), graded as the API grades a submission: through a sandbox runner
process (`python -m backend sandbox`, started here with SANDBOX_MAX_CONCURRENCY slots) over its Unix socket,
from `--concurrency` users at once; the CPU per run is the runner's with its children (prlimit, setpriv, bwrap,
the harness, the language's child), over the sequential runs, and in brackets the runner's own share.
TypeScript and Java are measured twice: "cold" (every run a new source, so a compile first) and "warm" (the
same source again: the compile cache answers, only the run is paid).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

# `--tree PATH` measures another checkout's runner and harnesses (before/after from one script).
sys.path.insert(0, sys.argv[sys.argv.index("--tree") + 1] if "--tree" in sys.argv else str(Path(__file__).parents[1]))

from backend.config import Settings
from backend.content.catalog import load_catalog
from backend.integrations.sandbox import RunnerSandbox
from backend.integrations.sandbox.languages import LANGUAGES, LanguageGrader
from backend.integrations.sandbox.process import RunnerProcess

SLUG = "count-vowels"


def cpu_seconds(pid: int) -> tuple[float, float]:
    """The runner's own CPU time, and that of its children it has reaped (every run: prlimit, setpriv, bwrap,
    the harness and its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own, children = (int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]))
    return own / os.sysconf("SC_CLK_TCK"), children / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(
    language: str, variant: str, runs: int, concurrency: int, sandbox: RunnerSandbox, runner_pid: int
) -> None:
    spec = next(spec for spec in load_catalog() if spec.slug == SLUG)
    grader = LanguageGrader(sandbox, timeout_seconds=30, queue_timeout_seconds=120)
    counter = iter(range(10**9))

    async def one(user: str) -> float:
        started = time.perf_counter()
        if language == "python":
            result = await sandbox.run(spec.solution, spec.tests, user=user)
        else:
            code = spec.variants[language].solution
            if variant == "cold":
                code += f"\n// run {next(counter)}\n"  # a new source: not in the compile cache
            result = await grader.grade(LANGUAGES[language], code, spec.variants[language].tests, user=user)
        assert result.status == "passed", result.results
        return time.perf_counter() - started

    for _ in range(3):
        await one("warm-up")
    cpu_before = cpu_seconds(runner_pid)
    latencies = [await one("sequential") for _ in range(runs)]
    cpu_after = cpu_seconds(runner_pid)
    own_ms, children_ms = ((after - before) * 1000 / runs for after, before in zip(cpu_after, cpu_before, strict=True))
    started = time.perf_counter()

    async def user_loop(index: int, count: int) -> None:
        for _ in range(count):
            await one(f"user-{index}")

    per_user = max(1, runs // concurrency)
    await asyncio.gather(*(user_loop(index, per_user) for index in range(concurrency)))
    elapsed = time.perf_counter() - started
    label = f"{language}{'/' + variant if variant else ''}"
    p50, p99 = statistics.median(latencies) * 1000, percentile(latencies, 0.99) * 1000
    print(
        f"{label:22} p50 {p50:7.0f} ms  p99 {p99:7.0f} ms  CPU {own_ms + children_ms:6.1f} ms per run"
        f" (runner {own_ms:5.1f})"
        f"  {per_user * concurrency / elapsed:6.1f} graded runs/s at concurrency {concurrency}",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--slots", type=int, default=2, help="the runner's SANDBOX_MAX_CONCURRENCY")
    parser.add_argument("--languages", nargs="*", default=["python", "javascript", "typescript"])
    parser.add_argument("--tree", type=Path, help="the checkout whose runner and harnesses are measured")
    args = parser.parse_args()
    runner = RunnerProcess(Settings(_env_file=None, sandbox_max_concurrency=args.slots))  # type: ignore[call-arg]
    sandbox = RunnerSandbox(runner.start(), timeout_seconds=30, queue_timeout_seconds=120)
    try:
        for language in args.languages:
            for variant in ("cold", "warm") if language in ("typescript", "go", "java", "cpp") else ("",):
                await measure(language, variant, args.runs, args.concurrency, sandbox, runner.pid or 0)
    finally:
        await sandbox.close()
        runner.stop()


if __name__ == "__main__":
    asyncio.run(main())
