"""The job store's write cost and size: SQLite (FULL and NORMAL sync) and PostgreSQL.

    python benchmarks/bench_store.py                 # 3 rounds of 300 jobs per run
    python benchmarks/bench_store.py --jobs 1000 --threads 8 --rounds 5
    python benchmarks/bench_store.py --client-jobs 10000 --client-only   # the client's cost

One job's life as a client records it, six write calls, each its own transaction:
``begin_submit`` → ``mark_accepted`` (queued) → ``record_status`` x 3 (running, running
again: a poll that changed nothing, succeeded with one artifact) → ``record_file``.
Reported: jobs per second and write calls per second, from one thread and from several at
once (median and range over the rounds, single- and multi-threaded runs interleaved); and
the bytes the database takes per job beyond the stored payload (the JSON text of
params, labels and the job snapshot, and the prompt). SQLite runs in a temporary directory
on the same filesystem as ``--dir``; PostgreSQL (when its server binaries are installed) in a
private cluster with ``fsync`` on.

With ``--client-jobs N``, the client's side as well: ``bench_many_jobs.py``'s run of N jobs
(submit all, ``AsyncClient.wait_all``, against the fake served in its own process) without a
store and with an SQLite store, interleaved over ``--rounds``; reported: the client's CPU
seconds (median, range) and their ratio, wall times, and the store's bytes per job beyond the
payload. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import mediajobs as mj
from mediajobs._store import _backends

P = "openrouter"
BASE = "https://openrouter.ai/api/v1/videos"
WRITES_PER_JOB = 6
PARAMS = {"size": "1280x720", "duration": 5, "image": {"name": "cat.png", "sha256": "ab" * 32}}
PROMPT = "a kitten chasing a laser pointer across a wooden floor, cinematic lighting"


def snapshot(job_id: str, status: str, artifacts: int = 0) -> dict[str, Any]:
    return {
        "id": job_id,
        "provider": P,
        "status": status,
        "raw_status": status,
        "kind": "video",
        "model": "bytedance/seedance-2.0",
        "artifacts": [
            {
                "url": f"https://openrouter.ai/api/v1/videos/{job_id}/content?index={i}",
                "index": i,
                "media_type": "video/mp4",
            }
            for i in range(artifacts)
        ],
        "error": None,
        "cost": None,
        "usage": {},
        "created_at": "2026-01-01T00:00:00Z",
        "completed_at": None,
        "expires_at": None,
        "raw": {"id": job_id, "status": status},
    }


def one_job(store: mj.JobStore, name: str) -> None:
    key, job_id = f"key-{name}", f"job-{name}"
    store.begin_submit(
        P, key, kind="video", model="bytedance/seedance-2.0", prompt=PROMPT, params=PARAMS,
        labels={"run": "bench", "shard": 1},
    )  # fmt: skip
    store.mark_accepted(P, key, snapshot(job_id, "queued"))
    store.record_status(P, job_id, snapshot(job_id, "running"))
    store.record_status(P, job_id, snapshot(job_id, "running"))
    store.record_status(P, job_id, snapshot(job_id, "succeeded", 1))
    store.record_file(P, job_id, 0, f"/data/out/{job_id}_0.mp4", 12_345_678, "cd" * 32)


def run(store: mj.JobStore, jobs: int, threads: int, prefix: str) -> float:
    """Run ``jobs`` job lives split over ``threads``; return the wall seconds."""
    per = jobs // threads

    def worker(t: int) -> None:
        for i in range(per):
            one_job(store, f"{prefix}-{t}-{i}")

    store.begin_submit(P, f"warm-{prefix}")  # open and migrate outside the timing
    store.forget(P, f"warm-{prefix}")
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return time.perf_counter() - start


def payload_bytes(store: mj.JobStore, provider: str = P) -> int:
    total = 0
    for job in store.jobs(provider):
        total += len(json.dumps(job.params, separators=(",", ":")))
        total += len(json.dumps(job.labels, separators=(",", ":")))
        total += len(json.dumps(job.job, separators=(",", ":")))
        total += len((job.prompt or "").encode())
    return total


@contextlib.contextmanager
def sqlite_sync(mode: str) -> Iterator[None]:
    original = _backends.SQLiteBackend._connect

    def connect(self: _backends.SQLiteBackend) -> sqlite3.Connection:
        conn = original(self)
        conn.execute(f"PRAGMA synchronous = {mode}")
        return conn

    _backends.SQLiteBackend._connect = connect  # type: ignore[method-assign]
    try:
        yield
    finally:
        _backends.SQLiteBackend._connect = original  # type: ignore[method-assign]


def sqlite_size(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int(page_size * (pages - free))
    finally:
        conn.close()


def postgres_size(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "WHERE c.relname LIKE 'mediajobs%' AND c.relkind = 'r'"
        ).fetchone()
    return int(row[0]) if row else 0


def report(label: str, jobs: int, seconds: list[float]) -> None:
    rates = sorted(jobs / t for t in seconds)
    median = statistics.median(rates)
    print(
        f"{label:<34} {median:>7.0f} jobs/s (range {rates[0]:.0f}-{rates[-1]:.0f}), "
        f"{median * WRITES_PER_JOB:>6.0f} writes/s"
    )


def measure(
    name: str, target: str, jobs: int, threads: int, rounds: int, size: Callable[[], int]
) -> None:
    with mj.JobStore(target) as store:
        single: list[float] = []
        multi: list[float] = []
        for r in range(rounds):  # interleaved: a noisy neighbour hits both alike
            single.append(run(store, jobs, 1, f"a{r}"))
            multi.append(run(store, jobs, threads, f"b{r}"))
        report(f"{name} 1 thread", jobs, single)
        report(f"{name} {threads} threads", jobs, multi)
        count = len(store.jobs(P))
        payload = payload_bytes(store)
        overhead = (size() - payload) / count
        print(f"{name + ' bytes/job beyond the payload':<34} {overhead:>7.0f} ({count} jobs)")
        print(f"{name + ' payload bytes/job':<34} {payload / count:>7.0f}")


def client_side_by_side(jobs: int, rounds: int, directory: str | None) -> None:
    """Run bench_many_jobs' child without and with a store, interleaved; print the figures."""
    import _common as common
    import bench_many_jobs as many

    variants = ("mediajobs", "mediajobs-store")
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    phases: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    wall: dict[str, list[float]] = {v: [] for v in variants}
    sizes: list[tuple[float, float]] = []
    for r in range(rounds):
        for variant in variants:
            with tempfile.TemporaryDirectory(dir=directory) as tmp, common.ServedFake() as server:
                db = Path(tmp) / "jobs.db"
                argv = [sys.executable, many.__file__, "--child", "--variant", variant]
                argv += ["--base-url", server.base_url, "--jobs", str(jobs)]
                argv += ["--store-path", str(db)]
                print(f"  round {r + 1}: {variant} x {jobs}...", file=sys.stderr, flush=True)
                data = common.run_child(argv, timeout=7200).data
                ok = data["statuses"].get("succeeded", 0)
                if ok != jobs or data["errors"]:
                    print(f"  {variant}: {ok}/{jobs} succeeded, {data['errors']} errors")
                cpu[variant].append(data["cpu"])
                phases[variant].append((data["cpu_submit"], data["cpu_wait"]))
                wall[variant].append(data["wall"])
                if variant == "mediajobs-store":
                    with mj.JobStore(db) as store:
                        count = len(store.jobs(many.PROVIDER))
                        payload = payload_bytes(store, many.PROVIDER)
                    sizes.append(((sqlite_size(db) - payload) / count, payload / count))
    print(f"\n## The client with and without a store ({jobs} jobs, {rounds} rounds)\n")
    for variant in variants:
        c, w = sorted(cpu[variant]), sorted(wall[variant])
        print(
            f"{variant:<16} client CPU {statistics.median(c):6.1f} s (range {c[0]:.1f}-"
            f"{c[-1]:.1f}), wall {statistics.median(w):6.1f} s (range {w[0]:.1f}-{w[-1]:.1f})"
        )
        submit = statistics.median(s for s, _ in phases[variant])
        waiting = statistics.median(w for _, w in phases[variant])
        print(f"{'':<16} of which submitting {submit:6.1f} s, waiting {waiting:6.1f} s")
    ratios = sorted(s / b for s, b in zip(cpu["mediajobs-store"], cpu["mediajobs"], strict=True))
    print(
        f"CPU ratio store/no store: median {statistics.median(ratios):.3f} "
        f"(range {ratios[0]:.3f}-{ratios[-1]:.3f}, per round)"
    )
    beyond = sorted(b for b, _ in sizes)
    print(
        f"store bytes/job beyond the payload: median {statistics.median(beyond):.0f} "
        f"(range {beyond[0]:.0f}-{beyond[-1]:.0f}); payload {sizes[0][1]:.0f} bytes/job"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the SQLite files go (default: tmp)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--client-jobs", type=int, default=0, help="also the client, N jobs")
    parser.add_argument("--client-only", action="store_true", help="only the client part")
    args = parser.parse_args()

    if args.client_jobs:
        client_side_by_side(args.client_jobs, args.rounds, args.dir)
    if args.client_only:
        return

    for mode in ("FULL", "NORMAL"):
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp, sqlite_sync(mode):
            path = Path(tmp) / "jobs.db"
            size = functools.partial(sqlite_size, path)
            measure(f"sqlite {mode}", str(path), args.jobs, args.threads, args.rounds, size)

    if args.no_postgres:
        return
    from pg_cluster import find_pg_bin, running_cluster

    bindir = find_pg_bin()
    if bindir is None:
        print("postgresql: server binaries not found, skipped")
        return
    with running_cluster(bindir, durable=True) as url:
        size = functools.partial(postgres_size, url)
        measure("postgres", url, args.jobs, args.threads, args.rounds, size)


if __name__ == "__main__":
    main()
