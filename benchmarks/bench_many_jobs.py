"""N concurrent jobs: mediajobs ``AsyncClient.wait_all`` vs a hand-written asyncio + httpx loop.

    python benchmarks/bench_many_jobs.py                 # 1,000 and 10,000 jobs
    python benchmarks/bench_many_jobs.py --jobs 1000     # one size only
    python benchmarks/bench_many_jobs.py --variants mediajobs,raw --concurrency 32

The fake provider is served over loopback by uvicorn in its own process (a fresh one per
run), so the client's CPU and memory are measured alone. Every variant runs in a fresh child
process of this script, one after the other, and reports: wall time (submit phase, wait
phase), client CPU seconds, peak RSS growth over its baseline (taken after imports and client
set-up) and per job, and the requests it sent. Jobs last 2-10 s by default, chosen per submit
with the fake's ``X-Fake-Scenario`` header (``seconds_per_step``), spread evenly.

Variants:
  mediajobs       AsyncClient.wait_all, the provider's default PollPolicy (or --policy)
  mediajobs-fixed AsyncClient.wait_all with PollPolicy.fixed(--interval): the same schedule
                  as the raw loop, so the difference is the library's own overhead
  mediajobs-store the mediajobs variant with a job store (SQLite in a temporary directory) that
                  the submitting and waiting clients share: every submit, status change is
                  recorded (see bench_store.py for the side-by-side CPU and size figures)
  raw             one asyncio task per job: sleep(--interval), GET under a semaphore, json()

All variants submit the same way (at most --concurrency submits in flight) and share one
connection pool sized --concurrency (mediajobs' own default pool is the same size).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

PROVIDER = "therouter"
MODEL = "bench-image"
SUBMIT_PATH = "/v1/images/generations?async=true"
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "expired"})
ALL_VARIANTS = ("mediajobs", "mediajobs-fixed", "mediajobs-store", "raw")


# ----------------------------------------------------------------------------- child side


class CountingTransport(httpx.AsyncHTTPTransport):
    """The default transport, counting requests by method (one dict update per request)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.counts: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.counts[request.method] += 1
        return await super().handle_async_request(request)


def durations(n: int, low: float, high: float, buckets: int) -> list[float]:
    """Job lengths spread evenly over [low, high] in ``buckets`` values, job i gets i % buckets."""
    values = [low + (high - low) * k / max(buckets - 1, 1) for k in range(buckets)]
    return [values[i % buckets] for i in range(n)]


def scenario_header(seconds: float) -> str:
    """The X-Fake-Scenario value for a job that succeeds ``seconds`` after its submit."""
    return json.dumps({"steps": ["queued", "running"], "seconds_per_step": seconds / 2})


def policy_from(text: str) -> Any:
    """``default`` (None: the provider's) or ``initial,factor,max_interval,jitter``."""
    if text == "default":
        return None
    import mediajobs as mj

    initial, factor, cap, jitter = (float(x) for x in text.split(","))
    return mj.PollPolicy(initial=initial, factor=factor, max_interval=cap, jitter=jitter)


async def child_main(args: argparse.Namespace) -> dict[str, Any]:
    common.raise_fd_limit()
    import mediajobs as mj

    n, conc = args.jobs, args.concurrency
    lengths = durations(n, args.min_seconds, args.max_seconds, args.buckets)
    transport = CountingTransport(
        limits=httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    )
    http = httpx.AsyncClient(transport=transport, follow_redirects=False, timeout=60.0)
    headers_for = {d: scenario_header(d) for d in set(lengths)}
    seen: dict[int, float] = {}
    submitted: list[float] = [0.0] * n
    errors: list[str] = []
    statuses: Counter[str] = Counter()

    gc.collect()
    base_rss = common.rss_now()
    base_cpu = common.cpu_seconds()
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(conc)

    store = None
    if args.variant.startswith("mediajobs"):
        poll = policy_from(args.policy)
        if args.variant == "mediajobs-fixed":
            poll = mj.PollPolicy.fixed(args.interval)
        if args.variant == "mediajobs-store":
            store = mj.JobStore(args.store_path)
        submitters = {
            d: mj.AsyncClient(
                PROVIDER,
                api_key=common.API_KEY,
                base_url=args.base_url,
                http_client=http,
                headers={"X-Fake-Scenario": h},
                max_concurrency=conc,
                store=store,
            )
            for d, h in headers_for.items()
        }
        client = mj.AsyncClient(
            PROVIDER,
            api_key=common.API_KEY,
            base_url=args.base_url,
            http_client=http,
            poll=poll,
            max_concurrency=conc,
            wait_timeout=args.timeout,
            store=store,
        )

        async def submit(i: int) -> Any:
            async with sem:
                job = await submitters[lengths[i]].submit("image", model=MODEL, prompt=f"job {i}")
            submitted[i] = time.perf_counter()
            return job

        jobs = await asyncio.gather(*(submit(i) for i in range(n)))
        t_submitted = time.perf_counter()
        cpu_submitted = common.cpu_seconds()
        if args.api == "as_completed":
            index_of = {job.id: i for i, job in enumerate(jobs)}
            done = []
            async for job in client.as_completed(jobs):
                seen[index_of[job.id]] = time.perf_counter()
                done.append(job)
        else:
            done = await client.wait_all(jobs)
        for job in done:
            statuses[job.status.value] += 1
    else:
        auth = {"Authorization": f"Bearer {common.API_KEY}"}

        async def submit_raw(i: int) -> str:
            headers = {**auth, "X-Fake-Scenario": headers_for[lengths[i]]}
            async with sem:
                response = await http.post(
                    args.base_url + SUBMIT_PATH,
                    json={"model": MODEL, "prompt": f"job {i}"},
                    headers=headers,
                )
            response.raise_for_status()
            submitted[i] = time.perf_counter()
            return str(response.json()["id"])

        async def wait_raw(i: int, job_id: str) -> None:
            url = f"{args.base_url}/v1/jobs/{job_id}"
            while True:
                await asyncio.sleep(args.interval)
                try:
                    async with sem:
                        response = await http.get(url, headers=auth)
                    response.raise_for_status()
                    status = response.json()["status"]
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                if status in TERMINAL:
                    seen[i] = time.perf_counter()
                    statuses[status] += 1
                    return

        ids = await asyncio.gather(*(submit_raw(i) for i in range(n)))
        t_submitted = time.perf_counter()
        cpu_submitted = common.cpu_seconds()
        await asyncio.gather(*(wait_raw(i, job_id) for i, job_id in enumerate(ids)))

    t_end = time.perf_counter()
    cpu_end = common.cpu_seconds()
    cpu = cpu_end - base_cpu
    end_rss = common.rss_now()
    await http.aclose()
    if store is not None:
        store.close()
    lags = sorted(seen[i] - (submitted[i] + lengths[i]) for i in seen)
    return {
        "variant": args.variant,
        "jobs": n,
        "submit_wall": t_submitted - t0,
        "wait_wall": t_end - t_submitted,
        "wall": t_end - t0,
        "cpu": cpu,
        "cpu_submit": cpu_submitted - base_cpu,
        "cpu_wait": cpu_end - cpu_submitted,
        "base_rss": base_rss,
        "peak_rss": common.peak_rss(),
        "end_rss": end_rss,
        "posts": transport.counts["POST"],
        "gets": transport.counts["GET"],
        "statuses": dict(statuses),
        "errors": len(errors),
        "first_errors": errors[:3],
        "lag_mean": sum(lags) / len(lags) if lags else None,
        "lag_p95": lags[int(0.95 * (len(lags) - 1))] if lags else None,
    }


# ----------------------------------------------------------------------------- memory breakdown


def memory_breakdown(n: int) -> list[list[object]]:
    """Bytes per job of each piece of state, measured with tracemalloc (no I/O)."""
    import tracemalloc

    import mediajobs as mj
    from mediajobs._flows import ManyWait
    from mediajobs.testing import FakeProvider, Scenario

    fake = FakeProvider(scenario=Scenario(seconds_per_step=1e9))
    client = mj.Client(
        PROVIDER,
        api_key=common.API_KEY,
        base_url=fake.api_origin,
        http_client=httpx.Client(transport=fake.transport()),
    )
    with client:
        template = client.submit("image", model=MODEL, prompt="x").refresh()
        done_fake = FakeProvider(scenario=Scenario(steps=()))
        with mj.Client(
            PROVIDER,
            api_key=common.API_KEY,
            base_url=done_fake.api_origin,
            http_client=httpx.Client(transport=done_fake.transport()),
        ) as done_client:
            finished = done_client.submit("image", model=MODEL, prompt="x").refresh()
        settings = client._settings
        rows: list[list[object]] = []

        def measure(label: str, build: Any) -> Any:
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            kept = build()
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            rows.append([label, f"{(after - before) / n:.0f}"])
            return kept

        running_bodies = [{**template.raw, "id": f"img_{i:024x}"} for i in range(n)]
        finished_bodies = [{**finished.raw, "id": f"img_{i:024x}"} for i in range(n)]
        measure(
            "raw poll payload dict, running (what `job.raw` keeps)",
            lambda: [json.loads(json.dumps(b)) for b in running_bodies],
        )
        measure(
            "raw poll payload dict, succeeded (1 pre-signed URL)",
            lambda: [json.loads(json.dumps(b)) for b in finished_bodies],
        )
        dialect = settings.dialect

        def parsed(bodies: list[dict[str, Any]], previous: Any) -> list[Any]:
            return [
                dialect.parse_poll(httpx.Response(200, json=b), previous=previous.data)
                for b in bodies
            ]

        snaps = measure(
            "JobData snapshot, running (model + its raw dict)",
            lambda: parsed(running_bodies, template),
        )
        measure(
            "JobData snapshot, succeeded (model + raw + Artifact)",
            lambda: parsed(finished_bodies, finished),
        )
        measure(
            "AsyncJob handle around a snapshot",
            lambda: [mj.AsyncJob(s, None) for s in snaps],  # type: ignore[arg-type]
        )
        measure(
            "ManyWait scheduling state (heap entry + per-job record)",
            lambda: ManyWait(settings, snaps, timeout=3600),
        )
    return rows


# ----------------------------------------------------------------------------- parent side


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--variants", default=",".join(ALL_VARIANTS))
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--interval", type=float, default=1.0, help="fixed poll interval (s)")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="shortest job (s)")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="longest job (s)")
    parser.add_argument("--buckets", type=int, default=9, help="distinct job lengths")
    parser.add_argument("--api", choices=("wait_all", "as_completed"), default="wait_all")
    parser.add_argument(
        "--policy",
        default="default",
        help="the mediajobs variant's PollPolicy: 'default' or initial,factor,max_interval,jitter",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="wait deadline (s)")
    parser.add_argument(
        "--server-defaults", action="store_true", help="serve the fake without the workarounds"
    )
    parser.add_argument("--no-breakdown", action="store_true", help="skip the tracemalloc part")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--store-path", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        args.jobs = args.jobs[0]
        print(json.dumps(asyncio.run(child_main(args))), flush=True)
        return

    variants = [v for v in args.variants.split(",") if v]
    if unknown := set(variants) - set(ALL_VARIANTS):
        parser.error(f"unknown variants: {sorted(unknown)}")
    print(f"# bench_many_jobs: {common.machine_summary()}")
    print(
        f"# provider {PROVIDER}, jobs {args.min_seconds:g}-{args.max_seconds:g} s, "
        f"concurrency {args.concurrency}, fixed interval {args.interval:g} s, "
        f"mediajobs call: {args.api}, policy {args.policy}; "
        "fake server in its own process (fresh per run)"
    )
    rows: list[list[object]] = []
    failures: list[str] = []
    for n in args.jobs:
        for variant in variants:
            with common.ServedFake(server_defaults=args.server_defaults) as server:
                server_cpu = server.cpu_seconds()
                argv = [
                    sys.executable,
                    __file__,
                    "--child",
                    "--variant",
                    variant,
                    "--base-url",
                    server.base_url,
                    "--jobs",
                    str(n),
                    "--concurrency",
                    str(args.concurrency),
                    "--interval",
                    str(args.interval),
                    "--min-seconds",
                    str(args.min_seconds),
                    "--max-seconds",
                    str(args.max_seconds),
                    "--buckets",
                    str(args.buckets),
                    "--api",
                    args.api,
                    "--policy",
                    args.policy,
                    "--timeout",
                    str(args.timeout),
                    "--store-path",
                    str(Path(tempfile.mkdtemp()) / "jobs.db"),
                ]
                print(f"  running {variant} with {n} jobs...", file=sys.stderr, flush=True)
                try:
                    result = common.run_child(argv, timeout=args.timeout + 600)
                except RuntimeError as exc:
                    failures.append(f"{variant} x {n}: {exc}")
                    continue
                server_cpu = server.cpu_seconds() - server_cpu
            r = result.data
            growth = r["peak_rss"] - r["base_rss"]
            ok = r["statuses"].get("succeeded", 0)
            if ok != n or r["errors"]:
                failures.append(
                    f"{variant} x {n}: {ok}/{n} succeeded, {r['errors']} poll errors "
                    f"{r['first_errors']}, statuses {r['statuses']}"
                )
            rows.append(
                [
                    variant,
                    n,
                    f"{ok}/{n}",
                    fmt(r["submit_wall"], 1),
                    fmt(r["wait_wall"], 1),
                    fmt(r["cpu"], 1),
                    fmt(r["cpu_submit"] / r["posts"] * 1e6, 0),
                    fmt(r["cpu_wait"] / max(r["gets"], 1) * 1e6, 0),
                    common.mib(growth),
                    f"{growth / n / 1024:.1f}",
                    r["posts"],
                    r["gets"],
                    fmt(r["gets"] / n, 1),
                    fmt(r["lag_mean"]),
                    fmt(r["lag_p95"]),
                    fmt(server_cpu, 1),
                ]
            )
    print()
    common.print_table(
        [
            "variant",
            "jobs",
            "ok",
            "submit s",
            "wait s",
            "client CPU s",
            "µs/submit",
            "µs/poll",
            "peak RSS +MiB",
            "KiB/job",
            "POSTs",
            "GETs",
            "GETs/job",
            "lag mean s",
            "lag p95 s",
            "server CPU s",
        ],
        rows,
    )
    print(
        "\nµs/submit, µs/poll: client CPU of the submit phase per POST, of the wait phase per GET."
    )
    print(
        "lag: when the client saw the job terminal minus when it ended (submit answer + its"
        " length); shown for the raw loop, and for mediajobs with --api as_completed."
    )
    if not args.no_breakdown:
        n = 10000
        print(f"\n## State kept per job (tracemalloc, {n} jobs, in-process, bytes/job)\n")
        common.print_table(["what", "bytes/job"], memory_breakdown(n))
    if failures:
        print("\nFAILURES:")
        for failure in failures:
            print("  " + failure)
        sys.exit(1)


if __name__ == "__main__":
    main()
