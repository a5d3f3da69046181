"""Webhooks end to end over real sockets: the served fake posts signed events to a receiver.

The receiver is ``mediajobs.webhooks.webhook_app(client)`` on uvicorn in a thread; the client
polls with its webhook default (first safety poll after a minute), so every job of the first
test must be finished by its webhook: the fake sees no status poll at all. In the second test
half the deliveries are lost and a short safety-net policy finishes those jobs by polling.
Both run on the blocking client and on the async one (asyncio and trio).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import uvicorn

import mediajobs as mj
from mediajobs.testing import FakeProvider, FakeServer, Scenario
from mediajobs.webhooks import webhook_app

SECRET = "whsec_end_to_end"
MODEL = "bytedance/seedance-2.0"
JOBS = 100
FAST = Scenario(seconds_per_step=0.05)  # queued, running, then succeeded 0.15 s after submit


@pytest.fixture(params=["sync", "asyncio", "trio"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(FakeProvider(webhook_secret=SECRET, scenario=FAST)) as running:
        yield running


class Receiver:
    """``webhook_app(client)`` served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, client: Any) -> None:
        self.events: list[Any] = []
        app = webhook_app(client, on_event=self.events.append, path="/hooks/openrouter")
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hooks/openrouter"
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> Receiver:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the receiver did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join()
        self.sock.close()


def client_args(server: FakeServer, **extra: Any) -> dict[str, Any]:
    return {"api_key": "test-key", "base_url": server.base_url, "webhook_secret": SECRET, **extra}


def run_jobs(mode: str, server: FakeServer, **extra: Any) -> list[Any]:
    """Submit JOBS jobs with a callback to a receiver, wait for all, return them."""
    if mode == "sync":
        with (
            mj.Client("openrouter", **client_args(server, **extra)) as client,
            Receiver(client) as receiver,
        ):
            jobs = [
                client.submit("video", model=MODEL, prompt=f"{n}", callback_url=receiver.url)
                for n in range(JOBS)
            ]
            return client.wait_all(jobs)

    async def main() -> list[mj.AsyncJob]:
        async with mj.AsyncClient("openrouter", **client_args(server, **extra)) as client:
            with Receiver(client) as receiver:
                jobs = [
                    await client.submit(
                        "video", model=MODEL, prompt=f"{n}", callback_url=receiver.url
                    )
                    for n in range(JOBS)
                ]
                return [job async for job in client.as_completed(jobs)]

    return anyio.run(main, backend=mode)


def status_polls(fake: FakeProvider) -> int:
    return sum(1 for r in fake.requests if r.method == "GET" and r.path.count("/") == 4)


def test_webhooks_finish_every_job_without_polling(mode: str, server: FakeServer) -> None:
    finished = run_jobs(mode, server)
    fake = server.fake
    assert len(finished) == JOBS and {job.id for job in finished} == set(fake.jobs)
    assert all(job.status is mj.JobStatus.SUCCEEDED and job.artifacts for job in finished)
    assert status_polls(fake) == 0  # no status request: every wait was ended by its webhook
    assert fake.webhooks is not None
    assert sum(d.delivered for d in fake.webhooks.deliveries) == JOBS


def test_lost_deliveries_are_caught_by_the_safety_net(mode: str, server: FakeServer) -> None:
    fake = server.fake
    fake.script(Scenario(seconds_per_step=0.05, webhook_faults={"lost"}), times=JOBS // 2)
    safety = mj.PollPolicy(initial=0.3, factor=1.0, max_interval=0.3, jitter=0.0)
    finished = run_jobs(mode, server, poll=safety)
    assert len(finished) == JOBS
    assert all(job.status is mj.JobStatus.SUCCEEDED for job in finished)
    assert fake.webhooks is not None
    lost = {d.job_id for d in fake.webhooks.deliveries if d.dropped}
    assert len(lost) == JOBS // 2
    polled = {r.job_id for r in fake.requests if r.method == "GET" and r.path.count("/") == 4}
    assert lost <= polled  # every job whose webhook was lost was found by polling


@pytest.mark.e2e
def test_serve_fake_sends_webhooks() -> None:
    """``mediajobs serve-fake --webhook-secret S``: a job's webhook reaches the receiver."""
    import re
    import signal
    import subprocess
    import sys

    from cli_support import clean_env

    serve = [sys.executable, "-m", "mediajobs", "serve-fake", "--port", "0"]
    serve += ["--webhook-secret", SECRET]
    with subprocess.Popen(serve, stdout=subprocess.PIPE, text=True, env=clean_env()) as proc:
        try:
            assert proc.stdout is not None
            match = re.search(r"at (http://127\.0\.0\.1:\d+) ", proc.stdout.readline())
            assert match
            args = {"api_key": "test-key", "base_url": match.group(1), "webhook_secret": SECRET}
            with mj.Client("openrouter", **args) as client, Receiver(client) as receiver:
                job = client.submit("video", model=MODEL, prompt="hi", callback_url=receiver.url)
                client.wait(job)  # the first safety poll would come after a minute
                assert job.status is mj.JobStatus.SUCCEEDED
                while not receiver.events:  # on_event runs just after the answer
                    time.sleep(0.001)
                assert [event.job.id for event in receiver.events] == [job.id]
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize(
    "fault", ["duplicate", "out_of_order", "bad_signature", "stale_timestamp", "lost"]
)
def test_scenario_faults_reach_the_receiver(fault: str) -> None:
    fake = FakeProvider(
        webhook_secret=SECRET,
        webhook_backoff=0.001,
        scenario=Scenario(seconds_per_step=0.05, webhook_faults={fault}),
    )
    safety = mj.PollPolicy(initial=0.2, factor=1.0, max_interval=0.2, jitter=0.0)
    with (
        FakeServer(fake) as server,
        mj.Client("openrouter", **client_args(server, poll=safety)) as client,
        Receiver(client) as receiver,
    ):
        job = client.submit("video", model=MODEL, prompt="p", callback_url=receiver.url)
        client.wait(job)
        assert fake.webhooks is not None
        assert fake.webhooks.flush(timeout=30)
        deliveries = fake.webhooks.deliveries
        assert job.status is mj.JobStatus.SUCCEEDED
        # a late or repeated event never moves the client's view of the job
        latest = client._wakeups.latest(job.id)
        assert latest is None or latest.status is mj.JobStatus.SUCCEEDED
    codes = [code for d in deliveries for code in d.status_codes]
    if fault == "duplicate":
        assert [d.variant for d in deliveries] == ["event", "duplicate"] and codes == [204, 204]
        assert len(receiver.events) == 1  # the repeat is acknowledged, not handed over
    elif fault == "out_of_order":
        assert [d.status for d in deliveries] == ["completed", "in_progress"]
        assert codes == [204, 204]
    elif fault == "lost":
        assert deliveries[0].dropped and codes == []
    else:  # refused every time, retried to the bound; the job was found by polling
        assert codes == [400] * 8 and not receiver.events
    if fault in ("bad_signature", "stale_timestamp", "lost"):
        assert status_polls(fake) >= 1
