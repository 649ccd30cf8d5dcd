"""By-hand benchmark of `GET /health`: our full app against bare Quart, on the same Hypercorn set-up.

Never run in CI. From the repository root, with the venv active and Debian's `wrk` installed:

    python bench/health.py                      # 3 rounds of bare, full, full-json; 10 s each at 64 connections
    python bench/health.py --rounds 5 --duration 20 --connections 128
    python bench/health.py --profile full       # afterwards, one extra run of `full` under py-spy

Each run starts a fresh server (`hypercorn -k uvloop --workers 1 --backlog 2048`) on a free port of
127.0.0.1 with a throw-away SQLite database, waits for /health, warms up, measures with
`wrk --latency`, reads the worker's RSS, then stops it with SIGTERM. Variants alternate within each
round so drift (thermal, noisy neighbours) hits them alike. Results go to the terminal and to
bench/results/health-<timestamp>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.harness import (
    HOST,
    REPO,
    RESULTS_DIR,
    cpu_seconds,
    free_port,
    loadavg,
    parse_wrk,
    read_status_kib,
    wrk_path,
)

PATH = "/health"
VERSIONED_PACKAGES = ("quart", "hypercorn", "uvloop", "quart-schema", "quart-cors", "structlog", "prometheus-client")


@dataclass(frozen=True)
class Variant:
    name: str
    app: str
    env: dict[str, str]
    description: str


VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant(
            "bare",
            "bench.bare_app:create_app()",
            {"LOG_LEVEL": "WARNING"},
            "plain Quart, the same /health route, nothing else",
        ),
        Variant(
            "full",
            "backend.app:create_app()",
            {"LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"},
            "our app; LOG_LEVEL=WARNING, so no access-log line is written",
        ),
        Variant(
            "full-json",
            "backend.app:create_app()",
            {"LOG_LEVEL": "INFO", "LOG_FORMAT": "json"},
            "our app; LOG_LEVEL=INFO, JSON access log on stdout, which goes to /dev/null",
        ),
    )
}


@dataclass
class Run:
    variant: str
    round: int
    requests_per_second: float
    latency_ms: dict[str, float]  # wrk's percentiles: "50", "75", "90", "99"
    requests: int
    errors: dict[str, int]
    non_2xx: int
    worker_rss_kib: int | None
    worker_hwm_kib: int | None
    supervisor_rss_kib: int | None
    worker_cpu_percent: float | None  # of one core, over the measured seconds: near 100 = CPU-bound
    loadavg_before: float | None  # 1-minute load average when the server started (others' work shows here)
    wrk_output: str = field(repr=False)


class Server(harness.Server):
    """One Hypercorn process (`--workers 1`, uvloop) serving `variant` on a throw-away SQLite database."""

    def __init__(self, variant: Variant, environment: str, hypercorn: str) -> None:
        self.variant = variant
        self.tmpdir = Path(tempfile.mkdtemp(prefix="bench-health-"))
        port = free_port()
        env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
        env.update(
            ENVIRONMENT=environment,
            DATABASE_URL=f"sqlite+aiosqlite:///{self.tmpdir / 'bench.db'}",
            PYTHONUNBUFFERED="1",
        )
        env.update(variant.env)
        command = [hypercorn, "--workers", "1", "-k", "uvloop", "--backlog", "2048", "--bind", f"{HOST}:{port}"]
        super().__init__(variant.name, [*command, variant.app], env, port, self.tmpdir / "stderr.log")

    @property
    def url(self) -> str:
        return f"{self.base_url}{PATH}"

    @property
    def worker(self) -> int:
        return self.workers[0]

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self) -> Server:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self


def run_wrk(wrk: str, url: str, threads: int, connections: int, seconds: int) -> str:
    return harness.run_wrk(url, threads=threads, connections=connections, seconds=seconds)["output"]


# ----------------------------------------------------------------------------------------- main


def measure(variant: Variant, round_no: int, args: argparse.Namespace, wrk: str, hypercorn: str) -> Run:
    load = loadavg()
    with Server(variant, args.environment, hypercorn) as server:
        assert server.proc is not None and server.worker is not None
        if args.warmup > 0:
            run_wrk(wrk, server.url, args.threads, args.connections, args.warmup)
        cpu_before, started = cpu_seconds(server.worker), time.monotonic()
        output = run_wrk(wrk, server.url, args.threads, args.connections, args.duration)
        cpu_after, elapsed = cpu_seconds(server.worker), time.monotonic() - started
        rss = read_status_kib(server.worker, "VmRSS")
        hwm = read_status_kib(server.worker, "VmHWM")
        supervisor_rss = read_status_kib(server.proc.pid, "VmRSS") if server.worker != server.proc.pid else None
    parsed = parse_wrk(output)
    cpu = None
    if cpu_before is not None and cpu_after is not None:
        cpu = round(100 * (cpu_after - cpu_before) / elapsed, 1)
    return Run(
        variant.name,
        round_no,
        worker_rss_kib=rss,
        worker_hwm_kib=hwm,
        supervisor_rss_kib=supervisor_rss,
        worker_cpu_percent=cpu,
        loadavg_before=load,
        wrk_output=output,
        **parsed,
    )


def profile(variant: Variant, args: argparse.Namespace, wrk: str, hypercorn: str, stamp: str) -> list[Path]:
    """One extra, unmeasured run of `variant` with py-spy sampling the worker (its req/s are not comparable)."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        print("--profile: py-spy is not installed (pip install py-spy); skipped", file=sys.stderr)
        return []
    outputs = {
        "flamegraph": RESULTS_DIR / f"profile-{variant.name}-{stamp}.svg",
        "raw": RESULTS_DIR / f"profile-{variant.name}-{stamp}.txt",
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with Server(variant, args.environment, hypercorn) as server:
        run_wrk(wrk, server.url, args.threads, args.connections, max(args.warmup, 1))
        for fmt, output in outputs.items():  # one pass per format; py-spy writes one per recording
            spy = subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(server.worker),
                    "--duration",
                    str(args.duration + 1),
                    "--rate",
                    "200",
                    "--function",
                    "--format",
                    fmt,
                    "--output",
                    str(output),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            time.sleep(0.5)
            run_wrk(wrk, server.url, args.threads, args.connections, args.duration)
            _, err = spy.communicate(timeout=args.duration + 60)
            if spy.returncode != 0:
                print(f"py-spy failed: {err.decode(errors='replace').strip()}", file=sys.stderr)
    if outputs["raw"].exists():
        print_hotspots(outputs["raw"])
    return [path for path in outputs.values() if path.exists()]


def print_hotspots(raw: Path) -> None:
    print("\nprofile: inclusive share of the worker's samples (whole request = 100% of its CPU)")
    for share, frame in harness.hotspots(raw, limit=15):
        print(f"  {share:5.1f}%  {frame}")


def summarise(runs: list[Run], names: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in names:
        mine = [run for run in runs if run.variant == name]
        if not mine:
            continue
        rss = [run.worker_rss_kib for run in mine if run.worker_rss_kib is not None]
        summary[name] = {
            "runs": len(mine),
            "requests_per_second": {
                "median": round(statistics.median(r.requests_per_second for r in mine), 1),
                "min": min(r.requests_per_second for r in mine),
                "max": max(r.requests_per_second for r in mine),
            },
            "p50_ms_median": round(statistics.median(r.latency_ms["50"] for r in mine), 3),
            "p99_ms_median": round(statistics.median(r.latency_ms["99"] for r in mine), 3),
            "p99_ms_max": max(r.latency_ms["99"] for r in mine),
            "worker_rss_mib_median": round(statistics.median(rss) / 1024, 1) if rss else None,
            "errors": sum(sum(r.errors.values()) + r.non_2xx for r in mine),
        }
    if "bare" in summary:
        bare = {run.round: run for run in runs if run.variant == "bare"}
        for name in summary:
            if name == "bare":
                continue
            ratios = [
                run.requests_per_second / bare[run.round].requests_per_second
                for run in runs
                if run.variant == name and run.round in bare
            ]
            if ratios:
                summary[name]["ratio_to_bare"] = {  # per round (neighbouring runs), then the median
                    "per_round": [round(ratio, 3) for ratio in ratios],
                    "median": round(statistics.median(ratios), 3),
                }
    return summary


def _num(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def print_table(runs: list[Run], summary: dict[str, Any]) -> None:
    header = (
        f"{'server':<10} {'round':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'RSS MiB':>8} {'errors':>6} "
        f"{'CPU%':>5} {'load':>5}"
    )
    print("\n" + header)
    print("-" * len(header))
    for run in runs:
        rss = f"{run.worker_rss_kib / 1024:.1f}" if run.worker_rss_kib else "?"
        errors = sum(run.errors.values()) + run.non_2xx
        print(
            f"{run.variant:<10} {run.round:>5} {run.requests_per_second:>9.1f} {run.latency_ms['50']:>8.2f} "
            f"{run.latency_ms['99']:>8.2f} {rss:>8} {errors:>6} {_num(run.worker_cpu_percent):>5} "
            f"{_num(run.loadavg_before):>5}"
        )
    print("\nmedians")
    print("-" * len(header))
    for name, data in summary.items():
        ratio = data.get("ratio_to_bare")
        ratio_text = f"  full/bare req/s = {ratio['median']:.3f} (per round {ratio['per_round']})" if ratio else ""
        rss = data["worker_rss_mib_median"]
        print(
            f"{name:<10} {'':>5} {data['requests_per_second']['median']:>9.1f} {data['p50_ms_median']:>8.2f} "
            f"{data['p99_ms_median']:>8.2f} {rss if rss is not None else '?':>8} {data['errors']:>6}{ratio_text}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="variants:\n" + "\n".join(f"  {v.name:<10} {v.description}" for v in VARIANTS.values()),
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs every variant once (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of measurement per run (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load first (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (default 2)")
    parser.add_argument(
        "--variants",
        default="bare,full,full-json",
        help="comma-separated, run in this order each round (default bare,full,full-json)",
    )
    parser.add_argument(
        "--environment",
        choices=("development", "test"),
        default="development",
        help="ENVIRONMENT for the servers (production needs secrets; default development)",
    )
    parser.add_argument(
        "--profile",
        metavar="VARIANT",
        choices=tuple(VARIANTS),
        help="afterwards, run VARIANT once more under py-spy (flame graph + raw stacks)",
    )
    parser.add_argument(
        "--no-save",
        action="store_true",
        help="do not write bench/results/health-*.json (--profile output is still written)",
    )
    args = parser.parse_args(argv)
    args.variant_names = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = [name for name in args.variant_names if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    if not 1 <= args.rounds <= 50 or not 1 <= args.duration <= 600 or not 0 <= args.warmup <= 60:
        parser.error("keep --rounds in 1..50, --duration in 1..600 and --warmup in 0..60")
    if args.threads < 1 or args.connections < args.threads:
        parser.error("--connections must be at least --threads, which must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = wrk_path()
    hypercorn = shutil.which("hypercorn", path=str(Path(sys.executable).parent)) or shutil.which("hypercorn")
    if hypercorn is None:
        sys.exit("error: hypercorn is not installed in this Python environment (activate .venv)")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    found_versions = harness.versions(
        VERSIONED_PACKAGES
    )  # before the runs: the commit and the working tree that get measured
    estimate = args.rounds * len(args.variant_names) * (3 + args.warmup + args.duration)
    print(
        f"GET {PATH}: {args.rounds} rounds x {args.variant_names}, wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration}s after {args.warmup}s warm-up (about {estimate} s)",
        flush=True,
    )

    runs: list[Run] = []
    for round_no in range(1, args.rounds + 1):
        for name in args.variant_names:
            run = measure(VARIANTS[name], round_no, args, wrk, hypercorn)
            runs.append(run)
            print(
                f"  round {round_no} {name:<10} {run.requests_per_second:>9.1f} req/s  "
                f"p50 {run.latency_ms['50']:.2f} ms  p99 {run.latency_ms['99']:.2f} ms",
                flush=True,
            )

    summary = summarise(runs, args.variant_names)
    print_table(runs, summary)
    result = {
        "benchmark": "GET /health",
        "timestamp": stamp,
        "settings": {
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "threads": args.threads,
            "environment": args.environment,
            "server": "hypercorn --workers 1 -k uvloop --backlog 2048",
            "host": HOST,
        },
        "variants": {
            name: {"app": VARIANTS[name].app, "env": VARIANTS[name].env, "description": VARIANTS[name].description}
            for name in args.variant_names
        },
        "machine": harness.machine(),
        "versions": found_versions,
        "summary": summary,
        "runs": [vars(run) for run in runs],
    }
    if args.profile:
        profiles = profile(VARIANTS[args.profile], args, wrk, hypercorn, stamp)
        result["profiles"] = [str(path.relative_to(REPO)) for path in profiles]
        for path in profiles:
            print(f"profile: {path.relative_to(REPO)}")
    if not args.no_save:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = RESULTS_DIR / f"health-{stamp}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nresults: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
