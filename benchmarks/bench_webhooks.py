"""Webhooks: requests saved per job, and the cost of receiving a delivery.

    python benchmarks/bench_webhooks.py
    python benchmarks/bench_webhooks.py --events 20000 --requests 2000 --concurrency 16
    python benchmarks/bench_webhooks.py --jobs 200 --speed 10

First, side by side: ``--jobs`` jobs whose lengths are spread evenly over 2-60 s, waited for
with ``as_completed`` against the served fake, once by a client polling with the default policy
and once by a client given ``webhook_secret=`` whose receiver (``webhook_app`` on uvicorn) gets
the fake's webhooks; each with its default poll policy. Time runs ``--speed`` times faster than
real on both sides (the jobs' lengths and the poll policies are divided by it); figures are
reported in unscaled seconds. Reported: status requests per job, all requests per job, and how
long after a job finished its wait ended.

Then three measurements, each the median of ``--rounds``:

1. CPU per delivery, in-process: a bare ``hmac`` + ``json.loads`` baseline, the pure
   ``parse_event`` (signature, body shape, the OpenRouter dialect's poll parser) and
   ``WebhookVerifier.parse_webhook`` (plus de-duplication and the event object).
2. ``webhook_app`` through ``httpx.ASGITransport`` (no sockets): deliveries per second.
3. ``webhook_app`` served by uvicorn on loopback, posted by ``--concurrency`` httpx clients:
   deliveries per second and the answer latency (p50/p99). A handler that sleeps 50 ms runs
   after every answer, so the latency shows that the answer does not wait for it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

import mediajobs as mj
from mediajobs._client import WEBHOOK_POLL
from mediajobs.dialects import OpenRouter
from mediajobs.testing import FakeProvider, FakeServer, Scenario, webhook_event
from mediajobs.webhooks import WebhookVerifier, parse_event, sign, webhook_app

SECRET = "whsec_bench"


def deliveries(count: int) -> list[tuple[bytes, dict[str, str]]]:
    out = []
    now = int(time.time())
    for n in range(count):
        job_id = f"vj_bench{n:020d}"
        data = {
            "id": job_id,
            "status": "completed",
            "generation_id": f"gen-{n}",
            "model": "bytedance/seedance-2.0",
            "unsigned_urls": [f"https://openrouter.ai/api/v1/videos/{job_id}/content?index=0"],
            "usage": {"cost": 0.5, "is_byok": False},
        }
        body = json.dumps(webhook_event(data), separators=(",", ":")).encode()
        out.append((body, {"x-openrouter-signature": sign(body, SECRET, now)}))
    return out


def per_event_us(func, items) -> float:
    start = time.process_time()
    for body, headers in items:
        func(body, headers)
    return (time.process_time() - start) / len(items) * 1e6


def baseline(body: bytes, headers: dict[str, str]) -> None:
    t, v1 = (part.split("=", 1)[1] for part in headers["x-openrouter-signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{t},".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, v1)
    json.loads(body)


async def asgi_rate(items) -> float:
    app = webhook_app(WebhookVerifier("openrouter", secret=SECRET))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
        start = time.perf_counter()
        for body, headers in items:
            response = await http.post("/", content=body, headers=headers)
            assert response.status_code == 204
        return len(items) / (time.perf_counter() - start)


def served(items, concurrency: int) -> tuple[float, float, float]:
    async def slow_handler(event) -> None:
        await asyncio.sleep(0.05)

    app = webhook_app(WebhookVerifier("openrouter", secret=SECRET), on_event=slow_handler)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", http="h11")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    latencies: list[float] = []

    async def worker(chunk) -> None:
        async with httpx.AsyncClient() as http:
            for body, headers in chunk:
                start = time.perf_counter()
                response = await http.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - start)
                assert response.status_code == 204

    async def run() -> float:
        start = time.perf_counter()
        chunks = [items[i::concurrency] for i in range(concurrency)]
        await asyncio.gather(*(worker(chunk) for chunk in chunks))
        return time.perf_counter() - start

    try:
        wall = asyncio.run(run())
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1e3
    p99 = latencies[int(len(latencies) * 0.99)] * 1e3
    return len(items) / wall, p50, p99


def scaled(policy: mj.PollPolicy, speed: float) -> mj.PollPolicy:
    return mj.PollPolicy(
        initial=policy.initial / speed,
        factor=policy.factor,
        max_interval=policy.max_interval / speed,
        jitter=policy.jitter,
        min_interval=policy.floor / speed,
    )


def side_by_side(jobs: int, speed: float, webhooks: bool) -> tuple[float, float, float, float]:
    """Return (status requests / job, requests / job, mean and max detection delay in s)."""
    lengths = [2 + 58 * n / max(jobs - 1, 1) for n in range(jobs)]
    fake = FakeProvider(webhook_secret=SECRET if webhooks else None)
    for length in lengths:
        fake.script(Scenario(seconds_per_step=length / 2 / speed))
    policy = WEBHOOK_POLL if webhooks else OpenRouter.default_poll
    args: dict[str, Any] = {"api_key": "test-key", "poll": scaled(policy, speed)}
    if webhooks:
        args["webhook_secret"] = SECRET
    delays: list[float] = []
    with FakeServer(fake) as server:
        client = mj.Client("openrouter", base_url=server.base_url, **args)
        receiver = sock = thread = None
        callback: dict[str, str] = {}
        if webhooks:
            receiver = uvicorn.Server(
                uvicorn.Config(webhook_app(client), log_level="warning", lifespan="off")
            )
            sock = socket.create_server(("127.0.0.1", 0))
            thread = threading.Thread(target=receiver.run, kwargs={"sockets": [sock]})
            thread.start()
            callback["callback_url"] = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        try:
            handles = [
                client.submit("video", model="google/veo-3.1", prompt=f"{n}", **callback)
                for n in range(jobs)
            ]
            ends = {
                h.id: fake.jobs[h.id].created + lengths[n] / speed for n, h in enumerate(handles)
            }
            for job in client.as_completed(handles):
                delays.append((time.monotonic() - ends[job.id]) * speed)
        finally:
            client.close()
            if receiver is not None and thread is not None and sock is not None:
                receiver.should_exit = True
                thread.join()
                sock.close()
    status = sum(1 for r in fake.requests if r.method == "GET" and r.path.count("/") == 4)
    return status / jobs, len(fake.requests) / jobs, statistics.mean(delays), max(delays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="deliveries per CPU round")
    parser.add_argument("--requests", type=int, default=1000, help="deliveries over HTTP")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent HTTP senders")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=100, help="jobs in the side-by-side run")
    parser.add_argument("--speed", type=float, default=20.0, help="time runs this much faster")
    args = parser.parse_args()
    print(common.machine_summary())

    rows = []
    for label, webhooks in (("polling (default policy)", False), ("webhooks + safety net", True)):
        status, total, mean, worst = side_by_side(args.jobs, args.speed, webhooks)
        rows.append([label, f"{status:.2f}", f"{total:.2f}", f"{mean:.2f}", f"{worst:.2f}"])
    print(f"\n### {args.jobs} jobs of 2-60 s, requests per job (time sped up {args.speed:g}x)\n")
    common.print_table(
        ["client", "status polls / job", "requests / job", "seen after end, mean s", "max s"],
        rows,
    )

    items = deliveries(args.events)
    dialect = OpenRouter()
    now = time.time()
    rows = []
    variants = {
        "hmac + json.loads (baseline)": baseline,
        "parse_event (verify + dialect parse)": lambda b, h: parse_event(
            dialect, b, h, [SECRET], now
        ),
        "WebhookVerifier.parse_webhook": None,
    }
    for label, func in variants.items():
        results = []
        for _ in range(args.rounds):
            if func is None:  # a fresh verifier each round: no delivery is a duplicate
                func_round = WebhookVerifier("openrouter", secret=SECRET).parse_webhook
            else:
                func_round = func
            results.append(per_event_us(func_round, items))
        rows.append([label, f"{statistics.median(results):.1f}"])
    print("\n### CPU per delivery (median of rounds)\n")
    common.print_table(["variant", "µs / delivery"], rows)

    few = items[: args.requests]
    rate = statistics.median(asyncio.run(asgi_rate(few)) for _ in range(args.rounds))
    print("\n### webhook_app in-process (httpx.ASGITransport)\n")
    common.print_table(["deliveries / s"], [[f"{rate:,.0f}"]])

    results = [served(few, args.concurrency) for _ in range(max(1, args.rounds // 2))]
    rate, p50, p99 = (statistics.median(values) for values in zip(*results, strict=True))
    print(f"\n### webhook_app on uvicorn, loopback, {args.concurrency} senders\n")
    common.print_table(
        ["deliveries / s", "answer p50 ms", "answer p99 ms", "handler per event"],
        [[f"{rate:,.0f}", f"{p50:.1f}", f"{p99:.1f}", "sleeps 50 ms after the answer"]],
    )


if __name__ == "__main__":
    main()
