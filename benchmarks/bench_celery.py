"""Jobs through Celery workers (1, 2, 4 processes) vs one AsyncClient process, same run.

    python benchmarks/bench_celery.py                  # 2,000 jobs of 10 s each
    python benchmarks/bench_celery.py --jobs 200 --processes 1,2 --seconds 5

A private Redis (the Debian ``redis-server``, no persistence) is the broker and the result
backend; the fake provider is served over loopback in its own process. For each pool size a
fresh ``celery worker --pool prefork --concurrency N`` (the tests' app, ``tests/celery_app.py``)
runs ``mediajobs.celery.run_job`` for
every job (submit, polls with the provider's default PollPolicy, each a task with a countdown,
then the 4 KiB download), and this script enqueues them all at once and waits for every
result. Reported: wall seconds from the first enqueue to the last result, jobs finished per
second, and broker messages per job (Redis ``LPUSH`` calls, which is how kombu publishes, over
the number of jobs). The baseline is one ``AsyncClient`` in this process: submit all (32 in
flight), ``wait_all``, download all, with the same policy and scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))
import _common as common  # noqa: E402

from celery_support import Worker, producer, worker_env  # noqa: E402
from redis_server import running_redis  # noqa: E402

MODEL = "bench-video"


def scenario(seconds: float) -> str:
    return json.dumps({"steps": ["queued", "running"], "seconds_per_step": seconds / 2})


def lpushes(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_lpush", {}).get("calls", 0))


def run_celery(
    broker: str, base_url: str, processes: int, jobs: int, seconds: float, out: Path
) -> dict[str, Any]:
    import mediajobs.celery as mjc

    store = redis.Redis.from_url(broker)
    store.flushdb()
    env = worker_env(broker, base_url, poll=None, scenario=scenario(seconds))
    worker = Worker(env, concurrency=processes, pool="prefork")
    app = producer(broker)
    try:
        time.sleep(3)  # let the pool start: its start-up is not what is measured
        before = lpushes(store)
        start = time.perf_counter()
        results = [
            mjc.run_job.delay(
                provider="openrouter", kind="video", model=MODEL, prompt=f"job {i}",
                dest_dir=str(out),
            )
            for i in range(jobs)
        ]  # fmt: skip
        done = [r.get(timeout=3600) for r in results]
        wall = time.perf_counter() - start
        messages = lpushes(store) - before
    finally:
        worker.stop()
        app.close()
    assert all(d["job"]["status"] == "succeeded" for d in done)
    return {
        "variant": f"celery, {processes} process(es)",
        "jobs": jobs,
        "wall": wall,
        "jobs_per_second": jobs / wall,
        "messages_per_job": messages / jobs,
        "files": sum(len(d["files"]) for d in done),
    }


async def run_async_client(base_url: str, jobs: int, seconds: float, out: Path) -> dict[str, Any]:
    import mediajobs as mj

    async with mj.AsyncClient(
        "openrouter",
        api_key="test-key",
        base_url=base_url,
        headers={"X-Fake-Scenario": scenario(seconds)},
    ) as client:
        limit = asyncio.Semaphore(32)

        async def submit(i: int) -> mj.AsyncJob:
            async with limit:
                return await client.submit("video", model=MODEL, prompt=f"job {i}")

        async def download(job: mj.AsyncJob) -> list[Path]:
            async with limit:
                return await job.download(out)

        start = time.perf_counter()
        submitted = await asyncio.gather(*(submit(i) for i in range(jobs)))
        finished = await client.wait_all(submitted)
        files = await asyncio.gather(*(download(j) for j in finished))
        wall = time.perf_counter() - start
    return {
        "variant": "one AsyncClient process (wait_all)",
        "jobs": jobs,
        "wall": wall,
        "jobs_per_second": jobs / wall,
        "messages_per_job": 0.0,
        "files": sum(len(f) for f in files),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of every job")
    parser.add_argument("--processes", default="1,2,4", help="worker pool sizes")
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    common.raise_fd_limit()
    print(common.machine_summary())
    rows = []
    with common.ServedFake() as fake, running_redis(binary) as broker:
        for processes in (int(p) for p in args.processes.split(",")):
            with tempfile.TemporaryDirectory() as out:
                rows.append(
                    run_celery(broker, fake.base_url, processes, args.jobs, args.seconds, Path(out))
                )
            print(json.dumps(rows[-1]), flush=True)
        with tempfile.TemporaryDirectory() as out:
            rows.append(
                asyncio.run(run_async_client(fake.base_url, args.jobs, args.seconds, Path(out)))
            )
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{args.jobs} jobs of {args.seconds:g} s each")
    print(f"{'variant':40} {'wall s':>8} {'jobs/s':>8} {'msgs/job':>9} {'files':>6}")
    for row in rows:
        print(
            f"{row['variant']:40} {row['wall']:8.1f} {row['jobs_per_second']:8.1f} "
            f"{row['messages_per_job']:9.2f} {row['files']:6d}"
        )


if __name__ == "__main__":
    main()
