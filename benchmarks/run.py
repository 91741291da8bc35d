"""Run every benchmark, each client in its own process, and write the report.

    python -m benchmarks            # full run (a few minutes), rewrites docs/benchmarks.md
    python -m benchmarks --quick    # well under a minute; prints the tables, writes nothing
    python -m benchmarks --only ingest,calls --no-write
    python -m benchmarks --json results.json   # keep the raw figures too
    python -m benchmarks --render results.json # rewrite the docs from them

One server process (:mod:`benchmarks.sink`) answers every client. On a machine with two or
more CPUs the server is pinned to the last one and the clients to the first, so that neither
steals the other's core; ``--no-pin`` leaves scheduling to the kernel. Each measurement is
repeated (``--repeat``, 5 by default, 1 with ``--quick``), rounds interleaved so that a slow
patch of the machine hits every client alike, and the median is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from . import report

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench_key"
GROUPS = ("ingest", "calls", "startup", "memory")


def _sync_available() -> str | None:
    """``None`` when ``lago_sync.Lago`` imports, else why not."""
    probe = subprocess.run(
        [sys.executable, "-c", "from lago_sync import Lago"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if probe.returncode == 0:
        return None
    lines = probe.stderr.strip().splitlines()
    return lines[-1] if lines else "lago_sync is not importable"


class Runner:
    """Starts processes pinned to the client CPU and collects their JSON answers."""

    def __init__(self, pin: bool, verbose: bool) -> None:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.pinned = pin and len(cpus) >= 2
        self.client_cpus = {cpus[0]} if self.pinned else None
        self.server_cpus = {cpus[-1]} if self.pinned else None
        self.verbose = verbose

    def _pin(self, pid: int, cpus: set[int] | None) -> None:
        if cpus is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(pid, cpus)

    @contextlib.contextmanager
    def server(self) -> Iterator[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.sink", "--api-key", API_KEY],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self._pin(proc.pid, self.server_cpus)
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            if not url.startswith("http"):
                raise RuntimeError("the benchmark sink did not start")
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def run_json(self, args: list[str], timeout: float = 600) -> dict[str, Any]:
        proc = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self._pin(proc.pid, self.client_cpus)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise RuntimeError(f"{' '.join(args)} timed out after {timeout}s") from None
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{err[-3000:]}")
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError(f"{' '.join(args)} printed no result:\n{out[-1000:]}{err[-2000:]}")
        return dict(json.loads(lines[-1]))

    def client(self, url: str, scenario: str, count: int, **options: Any) -> dict[str, Any]:
        args = ["-m", "benchmarks.clients", scenario, "--url", url, "--api-key", API_KEY]
        args += ["--count", str(count)]
        for name, value in options.items():
            flag = "--" + name.replace("_", "-")
            if value is True:
                args.append(flag)
            elif value is not False and value is not None:
                args += [flag, str(value)]
        started = time.perf_counter()
        data = self.run_json(args)
        if self.verbose:
            per = data.get("cpu_s", 0) / max(data.get("count", 1), 1) * 1e6
            print(
                f"    {scenario:<26} {data.get('count', 0):>9,} in "
                f"{time.perf_counter() - started:5.1f}s  cpu {per:8.2f} us/event",
                flush=True,
            )
        return data


def _counts(quick: bool) -> dict[str, int]:
    if quick:
        return {
            "async_ingestor": 50_000,
            "async_ingestor_many": 50_000,
            "async_ingestor_many_gen": 50_000,
            "sync_ingestor": 40_000,
            "sync_ingestor_4": 40_000,
            "raw_batches": 50_000,
            "official_batch": 2_000,
            "official_create": 30,
            "async_create_concurrent": 2_000,
            "raw_create_concurrent": 2_000,
            "async_create_sequential": 1_000,
            "sync_create_sequential": 1_000,
            "ingestor_memory": 100_000,
        }
    return {
        "async_ingestor": 1_000_000,
        "async_ingestor_many": 1_000_000,
        "async_ingestor_many_gen": 1_000_000,
        "sync_ingestor": 500_000,
        "sync_ingestor_4": 500_000,
        "raw_batches": 1_000_000,
        "official_batch": 30_000,
        "official_create": 500,
        "async_create_concurrent": 30_000,
        "raw_create_concurrent": 30_000,
        "async_create_sequential": 10_000,
        "sync_create_sequential": 10_000,
        "ingestor_memory": 1_000_000,
    }


def _summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs of one scenario, per event (or call)."""
    cpu_us = [r["cpu_s"] / r["count"] * 1e6 for r in runs]
    wall_us = [r["wall_s"] / r["count"] * 1e6 for r in runs]
    rate = [r["count"] / r["wall_s"] for r in runs]
    return {
        "count": runs[0]["count"],
        "runs": len(runs),
        "cpu_us": statistics.median(cpu_us),
        "wall_us": statistics.median(wall_us),
        "wall_us_best": min(wall_us),
        "per_s": statistics.median(rate),
        "raw": runs,
    }


def _bench_ingest_and_calls(
    runner: Runner, url: str, groups: set[str], counts: dict[str, int], repeat: int, sync: bool
) -> dict[str, Any]:
    plan: list[tuple[str, dict[str, Any]]] = []
    if "ingest" in groups:
        plan += [
            ("raw_batches", {"warmup": 5_000}),
            ("async_ingestor", {"warmup": 5_000}),
            ("async_ingestor_many", {"warmup": 5_000}),
            ("async_ingestor_many_gen", {"warmup": 5_000}),
            ("sync_ingestor_4", {"warmup": 5_000, "threads": 4, "scenario": "sync_ingestor"}),
            ("sync_ingestor", {"warmup": 5_000, "threads": 8}),
            ("official_batch", {"warmup": 200}),
            ("official_create", {"warmup": 5}),
        ]
    if "calls" in groups:
        plan += [
            ("raw_create_concurrent", {"warmup": 500, "concurrency": 64}),
            ("async_create_concurrent", {"warmup": 500, "concurrency": 64}),
            ("async_create_sequential", {"warmup": 200}),
            ("sync_create_sequential", {"warmup": 200}),
        ]
    if not sync:
        plan = [(name, opts) for name, opts in plan if not name.startswith("sync_")]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in plan}
    slow = {"official_batch", "official_create"}  # minutes, not seconds: measured once
    for round_ in range(repeat):
        print(f"  round {round_ + 1}/{repeat}", flush=True)
        for name, options in plan:
            if name in slow and round_ > 0:
                continue
            scenario = options.get("scenario", name)
            flags = {k: v for k, v in options.items() if k != "scenario"}
            runs[name].append(runner.client(url, scenario, counts[name], **flags))
    return {name: _summarise(data) for name, data in runs.items()}


def _bench_startup(runner: Runner, url: str, samples: int, sync: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"imports": {}, "first_answer": {}, "samples": samples}
    imports = ["deps_async", "deps_all", "lago_async", "lago_sync", "official"]
    clients = ["raw", "lago_async", "lago_sync", "official"]
    if not sync:
        imports.remove("lago_sync")
        clients.remove("lago_sync")
    for label in imports:  # one unmeasured run each so that bytecode caches are written
        runner.run_json(["-m", "benchmarks.startup", "import", label])
    times: dict[str, list[float]] = {label: [] for label in imports}
    firsts: dict[str, list[float]] = {label: [] for label in clients}
    for _ in range(samples):  # interleaved, so that drift hits every label alike
        for label in imports:
            times[label].append(
                runner.run_json(["-m", "benchmarks.startup", "import", label])["seconds"]
            )
        for label in clients:
            args = ["-m", "benchmarks.startup", "first-answer", label, "--url", url]
            firsts[label].append(runner.run_json([*args, "--api-key", API_KEY])["seconds"])
    for label, values in times.items():
        out["imports"][label] = {"ms": statistics.median(values) * 1e3, "samples": values}
    for label, values in firsts.items():
        out["first_answer"][label] = {"ms": statistics.median(values) * 1e3, "samples": values}
    if runner.verbose:
        for kind in ("imports", "first_answer"):
            for label, data in out[kind].items():
                print(f"    {kind:<13} {label:<11} {data['ms']:8.1f} ms", flush=True)
    return out


def _bench_memory(runner: Runner, url: str, count: int, quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    methods = ("rss",) if quick else ("tracemalloc", "rss")
    for method in methods:
        data = runner.client(url, "ingestor_memory", count, tracemalloc=method == "tracemalloc")
        out[method] = data
        if runner.verbose:
            print(f"    memory ({method}): {data['bytes_per_event']:.0f} bytes/event", flush=True)
    return out


def environment(pinned: bool) -> dict[str, Any]:
    """The machine, the interpreter and the versions of everything measured."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for dist in (
        "lago-async",
        "aiohttp",
        "orjson",
        "attrs",
        "cattrs",
        "anyio",
        "lago-python-client",
        "httpx",
        "pydantic",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": usable,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "system": f"{platform.system()} {platform.release()}",
        "versions": versions,
        "pinned": pinned,
        "date": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, one round")
    parser.add_argument("--repeat", type=int, help="rounds per measurement (5; quick: 1)")
    parser.add_argument("--only", help=f"comma-separated groups to run, among {', '.join(GROUPS)}")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    write = parser.add_mutually_exclusive_group()
    write.add_argument("--write", action="store_true", help="write the docs even when quick")
    write.add_argument("--no-write", action="store_true", help="only print the tables")
    parser.add_argument(
        "--json", type=Path, default=None, help="also save the raw results to this file"
    )
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="only rewrite the docs from saved results"
    )
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads(args.render.read_text(encoding="utf-8"))
        report.write_docs(saved, report.render_markdown(saved), ROOT)
        print(f"wrote {report.DOC.relative_to(ROOT)} and {report.CHART.relative_to(ROOT)}")
        return 0
    groups = set(GROUPS if not args.only else args.only.split(","))
    unknown = groups - set(GROUPS)
    if unknown:
        parser.error(f"unknown groups: {', '.join(sorted(unknown))}")
    repeat = args.repeat or (1 if args.quick else 5)
    counts = _counts(args.quick)
    runner = Runner(pin=not args.no_pin, verbose=True)
    started = time.perf_counter()

    sync_problem = _sync_available()
    if sync_problem:
        print(f"lago_sync is skipped: {sync_problem}", flush=True)
    results: dict[str, Any] = {
        "environment": environment(runner.pinned),
        "quick": args.quick,
        "sync_skipped": sync_problem,
    }
    with runner.server() as url:
        print(f"server: {url}", flush=True)
        if groups & {"ingest", "calls"}:
            print("throughput and CPU per event", flush=True)
            results["scenarios"] = _bench_ingest_and_calls(
                runner, url, groups, counts, repeat, sync_problem is None
            )
        if "startup" in groups:
            print("import time and first answer", flush=True)
            samples = 3 if args.quick else 21
            results["startup"] = _bench_startup(runner, url, samples, sync_problem is None)
        if "memory" in groups:
            print("memory per queued event", flush=True)
            results["memory"] = _bench_memory(runner, url, counts["ingestor_memory"], args.quick)
    results["duration_s"] = time.perf_counter() - started

    markdown = report.render_markdown(results)
    print()
    print(markdown)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if args.write or (not args.quick and not args.no_write and groups == set(GROUPS)):
        report.write_docs(results, markdown, ROOT)
        print(f"wrote {report.DOC.relative_to(ROOT)} and {report.CHART.relative_to(ROOT)}")
    print(f"benchmarks took {results['duration_s']:.0f}s")
    return 0
