"""Client CPU per status poll: mediajobs ``client.get(job)`` vs a raw httpx loop.

    python benchmarks/bench_poll_cpu.py                  # both modes, sync and async
    python benchmarks/bench_poll_cpu.py --mode mock --polls 5000 --rounds 7
    python benchmarks/bench_poll_cpu.py --profile        # where mediajobs spends it (mock)

Two modes, both in this one process, every variant interleaved round by round (the median
round is reported, so a noisy neighbour hits all variants alike):

* ``mock``: an in-process ``httpx.MockTransport`` answering every GET with the same bytes the
  fake provider sent for a running TheRouter job. No sockets, no server work: this is the pure
  client cost (building the request, httpx, parsing JSON, and for mediajobs the dialect, the
  retry machinery and the pydantic snapshot).
* ``served``: the fake provider served by uvicorn on loopback in a separate process; the CPU
  figure is still this process's alone (``time.process_time``), now including sockets and
  HTTP/1.1 parsing; wall time per poll is shown too.

The raw loop does what a hand-written poller does: ``GET /v1/jobs/{id}`` with the bearer
header, ``raise_for_status()``, ``response.json()["status"]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

import mediajobs as mj
from mediajobs.testing import FakeProvider, Scenario

PROVIDER = "therouter"
AUTH = {"Authorization": f"Bearer {common.API_KEY}"}
RUNNING = json.dumps({"steps": ["queued", "running"], "seconds_per_step": 1e6})


def canned_transport() -> tuple[httpx.MockTransport, str, str]:
    """A transport answering every request with one recorded poll of a running job.

    Returns:
        The transport, the fake's API origin and the job id.
    """
    fake = FakeProvider(scenario=Scenario.from_header(RUNNING))
    with httpx.Client(transport=fake.transport(), base_url=fake.api_origin) as http:
        job_id = http.post(
            "/v1/images/generations?async=true", json={"model": "m", "prompt": "p"}, headers=AUTH
        ).json()["id"]
        http.get(f"/v1/jobs/{job_id}", headers=AUTH)  # now in_progress
        recorded = http.get(f"/v1/jobs/{job_id}", headers=AUTH)
    body, headers = recorded.content, dict(recorded.headers)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=headers, content=body)

    return httpx.MockTransport(handler), fake.api_origin, job_id


def submit_served(base_url: str) -> str:
    with httpx.Client(base_url=base_url) as http:
        response = http.post(
            "/v1/images/generations?async=true",
            json={"model": "m", "prompt": "p"},
            headers={**AUTH, "X-Fake-Scenario": RUNNING},
        )
        response.raise_for_status()
        return str(response.json()["id"])


class Variants:
    """The four pollers of one mode, each a function running ``n`` polls."""

    def __init__(self, base_url: str, job_id: str, transport: Any | None) -> None:
        self.url = f"{base_url}/v1/jobs/{job_id}"
        kwargs: dict[str, Any] = {"transport": transport} if transport else {}
        # One event loop for every async round: pooled connections belong to their loop.
        self.loop = asyncio.new_event_loop()
        self.raw_sync = httpx.Client(**kwargs)
        self.raw_async = httpx.AsyncClient(**kwargs)
        self.borrowed = httpx.AsyncClient(**kwargs) if transport else None
        self.mj_sync = mj.Client(
            PROVIDER,
            api_key=common.API_KEY,
            base_url=base_url,
            http_client=httpx.Client(**kwargs) if transport else None,
        )
        self.mj_async = mj.AsyncClient(
            PROVIDER,
            api_key=common.API_KEY,
            base_url=base_url,
            http_client=self.borrowed,
        )
        self.job_sync = self.mj_sync.get(job_id)
        self.job_async = self.loop.run_until_complete(self._first_async(job_id))

    async def _first_async(self, job_id: str) -> mj.AsyncJob:
        return await self.mj_async.get(job_id)

    def run_raw_sync(self, n: int) -> None:
        http, url = self.raw_sync, self.url
        for _ in range(n):
            response = http.get(url, headers=AUTH)
            response.raise_for_status()
            assert response.json()["status"]

    def run_mj_sync(self, n: int) -> None:
        job = self.job_sync
        for _ in range(n):
            job.refresh()

    def run_raw_async(self, n: int) -> None:
        async def go() -> None:
            http, url = self.raw_async, self.url
            for _ in range(n):
                response = await http.get(url, headers=AUTH)
                response.raise_for_status()
                assert response.json()["status"]

        self.loop.run_until_complete(go())

    def run_mj_async(self, n: int) -> None:
        async def go() -> None:
            job = self.job_async
            for _ in range(n):
                await job.refresh()

        self.loop.run_until_complete(go())

    def close(self) -> None:
        self.raw_sync.close()
        self.mj_sync.close()

        async def aclose() -> None:
            await self.raw_async.aclose()
            await self.mj_async.aclose()
            if self.borrowed is not None:
                await self.borrowed.aclose()

        self.loop.run_until_complete(aclose())
        self.loop.close()


def measure(
    variants: dict[str, Callable[[int], None]], polls: int, rounds: int
) -> dict[str, tuple[float, float]]:
    """Median (CPU µs, wall µs) per poll of each variant over interleaved rounds."""
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    wall: dict[str, list[float]] = {name: [] for name in variants}
    for run in variants.values():  # warm-up: connections, imports, caches
        run(max(polls // 20, 20))
    for _ in range(rounds):
        for name, run in variants.items():
            gc.collect()
            c0, w0 = time.process_time(), time.perf_counter()
            run(polls)
            cpu[name].append((time.process_time() - c0) / polls * 1e6)
            wall[name].append((time.perf_counter() - w0) / polls * 1e6)
    return {name: (common.median(cpu[name]), common.median(wall[name])) for name in variants}


def report(mode: str, results: dict[str, tuple[float, float]], show_wall: bool) -> None:
    rows = []
    for flavour in ("sync", "async"):
        raw_cpu, raw_wall = results[f"raw httpx ({flavour})"]
        mj_cpu, mj_wall = results[f"mediajobs ({flavour})"]
        row: list[object] = [flavour, f"{raw_cpu:.0f}", f"{mj_cpu:.0f}", f"{mj_cpu / raw_cpu:.2f}"]
        row.append(f"{mj_cpu - raw_cpu:+.0f}")
        if show_wall:
            row += [f"{raw_wall:.0f}", f"{mj_wall:.0f}"]
        rows.append(row)
    headers = ["client", "raw httpx CPU µs/poll", "mediajobs CPU µs/poll", "ratio", "difference"]
    if show_wall:
        headers += ["raw wall µs/poll", "mediajobs wall µs/poll"]
    print(f"\n## mode: {mode}\n")
    common.print_table(headers, rows)


def run_mode(mode: str, polls: int, rounds: int, server_defaults: bool) -> None:
    if mode == "mock":
        transport, origin, job_id = canned_transport()
        variants = Variants(origin, job_id, transport)
        try:
            results = measure(variant_map(variants), polls, rounds)
        finally:
            variants.close()
        report(mode, results, show_wall=False)
        return
    with common.ServedFake(server_defaults=server_defaults) as server:
        job_id = submit_served(server.base_url)
        variants = Variants(server.base_url, job_id, None)
        try:
            results = measure(variant_map(variants), polls, rounds)
        finally:
            variants.close()
    report(mode, results, show_wall=True)


def variant_map(v: Variants) -> dict[str, Callable[[int], None]]:
    return {
        "raw httpx (sync)": v.run_raw_sync,
        "mediajobs (sync)": v.run_mj_sync,
        "raw httpx (async)": v.run_raw_async,
        "mediajobs (async)": v.run_mj_async,
    }


def profile(polls: int) -> None:
    """Print where mediajobs' async poll spends CPU beyond httpx (mock mode)."""
    transport, origin, job_id = canned_transport()
    variants = Variants(origin, job_id, transport)
    variants.run_mj_async(200)
    profiler = cProfile.Profile()
    profiler.enable()
    variants.run_mj_async(polls)
    profiler.disable()
    variants.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"mediajobs|tenacity|pydantic", 25)
    print(f"\n## profile: mediajobs async poll, {polls} polls (mock), cumulative\n")
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("mock", "served", "both"), default="both")
    parser.add_argument("--polls", type=int, default=None, help="polls per variant per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="profile mediajobs (mock)")
    parser.add_argument(
        "--server-defaults", action="store_true", help="serve the fake without the workarounds"
    )
    args = parser.parse_args()
    print(f"# bench_poll_cpu: {common.machine_summary()}")
    print(
        f"# provider {PROVIDER}, a running job; median of {args.rounds} interleaved rounds; "
        "CPU = time.process_time() of this process only"
    )
    if args.profile:
        profile(args.polls or 2000)
        return
    modes = ("mock", "served") if args.mode == "both" else (args.mode,)
    for mode in modes:
        polls = args.polls or (2000 if mode == "mock" else 500)
        print(f"# {mode}: {polls} polls per variant per round", file=sys.stderr, flush=True)
        run_mode(mode, polls, args.rounds, args.server_defaults)


if __name__ == "__main__":
    main()
