"""The engine under both clients: recorded facts, the one many-job rule, the one retry rule.

Client-level tests run the same body on the blocking client and on the async client under
asyncio and trio (the ``mode`` fixture): a body is a generator that yields what a client call
returned, and the runner resolves it (awaiting it in the async modes).
"""

from __future__ import annotations

import ast
import hashlib
import logging
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import mediajobs as mj
from mediajobs import _steps
from mediajobs._flows import Settings, cancel_flow, wait_flow
from mediajobs._retry import DeadlineReachedError, RetryRule
from mediajobs.dialects import OpenRouter
from mediajobs.testing import FakeProvider, Scenario

FAST = mj.PollPolicy(initial=0.001, factor=1.0, max_interval=0.001, jitter=0, min_interval=0.001)
RETRY = mj.RetryPolicy(
    max_attempts=4, initial=0.001, jitter=0, max_retry_after=0.001, min_delay=0.001
)
SRC = Path(mj.__file__).parent

Body = Callable[[Any], Generator[Any, Any, Any]]


@pytest.fixture(params=["sync", "asyncio", "trio"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run(mode: str, fake: FakeProvider, body: Body, provider: str = "therouter", **kw: Any) -> Any:
    """Run ``body(client)`` on the client of ``mode``; each value it yields is a call's result."""
    options = {"api_key": fake.api_key, "base_url": fake.api_origin, "poll": FAST, "retry": RETRY}
    options.update(kw)
    if mode == "sync":
        with mj.Client(
            provider, http_client=httpx.Client(transport=fake.transport()), **options
        ) as client:
            steps = body(client)
            value: Any = None
            try:
                while True:
                    value = steps.send(value)
            except StopIteration as stop:
                return stop.value

    async def main() -> Any:
        async with mj.AsyncClient(
            provider, http_client=httpx.AsyncClient(transport=fake.transport()), **options
        ) as client:
            steps = body(client)
            value: Any = None
            error: Exception | None = None
            while True:
                try:
                    call = steps.send(value) if error is None else steps.throw(error)
                except StopIteration as stop:
                    return stop.value
                value = error = None
                try:
                    value = await call
                except Exception as exc:  # thrown into the body, as a sync call raises in it
                    error = exc

    return anyio.run(main, backend=mode)


def first_of(iterator: Any) -> Any:
    """The first item of a sync or async iterator, closing it after (awaitable when async)."""
    if hasattr(iterator, "__anext__"):

        async def first() -> Any:
            async with aclosing(iterator) as items:
                return await items.__anext__()

        return first()
    item = next(iterator)
    iterator.close()
    return item


def pause(client: Any, seconds: float) -> Any:
    """Sleep the way the client's callers do (awaitable when async)."""
    if isinstance(client, mj.AsyncClient):
        return anyio.sleep(seconds)
    threading.Event().wait(seconds)
    return None


def kitten(client: Any) -> Any:
    return client.submit("image", model="openai/gpt-image-2", prompt="a kitten")


# --------------------------------------------------------------------- recorded facts


def test_every_durable_fact_is_recorded_in_order(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider(scenario=Scenario(steps=("queued", "running")))
    events: list[tuple[Any, int]] = []

    def note(event: Any) -> None:
        events.append((event, len(fake.requests)))

    async def async_note(event: Any) -> None:
        await anyio.lowlevel.checkpoint()
        note(event)

    def body(client: Any) -> Generator[Any, Any, list[Path]]:
        client._recorder = note if mode == "sync" else async_note  # the async one is awaited
        job = yield kitten(client)
        yield job.wait()
        paths: list[Path] = yield job.download(tmp_path)
        return paths

    (path,) = run(mode, fake, body)
    kinds = [type(event).__name__ for event, _ in events]
    assert kinds[:2] == ["SubmitIntent", "SubmitAccepted"]
    assert kinds[-1] == "FileWritten"
    assert set(kinds[2:-1]) == {"StatusSeen"}
    intent, sent_before = events[0]
    assert sent_before == 0  # recorded before the submit request left
    assert intent.provider == "therouter" and intent.kind == "image"
    assert intent.idempotency_key == fake.requests[0].idempotency_key
    accepted = events[1][0]
    assert accepted.job.id and accepted.idempotency_key == intent.idempotency_key
    statuses = [event.job.status for event, _ in events[2:-1]]
    assert statuses == [mj.JobStatus.RUNNING, mj.JobStatus.SUCCEEDED]
    written = events[-1][0]
    assert written.path == path and path.exists()
    assert written.size == path.stat().st_size
    assert written.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_without_a_recorder_records_are_no_ops(mode: str) -> None:
    fake = FakeProvider()

    def body(client: Any) -> Generator[Any, Any, Any]:
        job = yield kitten(client)
        return (yield job.wait())

    assert run(mode, fake, body).status is mj.JobStatus.SUCCEEDED


def test_a_resumed_download_hashes_the_whole_file(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider(scenario=Scenario(drop_download_after=1000, artifact_size=5000))
    written: list[Any] = []

    def body(client: Any) -> Generator[Any, Any, Any]:
        client._recorder = lambda e: written.append(e) if isinstance(e, _steps.FileWritten) else 0
        job = yield kitten(client)
        yield job.wait()
        return (yield job.download(tmp_path))

    (path,) = run(mode, fake, body)
    assert [r.range for r in fake.requests if r.range]  # it did resume
    assert written[0].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert written[0].size == 5000


# -------------------------------------------------------------- many jobs: one rule


def test_many_job_waits_follow_one_rule(mode: str) -> None:
    fake = FakeProvider(scenario=Scenario(steps=("queued", "running", "running")))
    seen: list[Any] = []

    def body(client: Any) -> Generator[Any, Any, Any]:
        jobs = []
        for _ in range(6):
            jobs.append((yield kitten(client)))
        client._recorder = seen.append
        first = yield first_of(client.as_completed(jobs))
        assert first.done and first in jobs  # the caller's own handle
        count = len(fake.requests)
        yield pause(client, 0.1)
        assert len(fake.requests) == count  # leaving early left nothing polling
        done = yield client.wait_all(jobs)
        assert done == jobs and all(j is k for j, k in zip(done, jobs, strict=True))
        return jobs

    jobs = run(mode, fake, body, poll=mj.PollPolicy.fixed(0.01))
    assert all(j.status is mj.JobStatus.SUCCEEDED for j in jobs)
    finished = [e.job.id for e in seen if e.job.status is mj.JobStatus.SUCCEEDED]
    assert sorted(finished) == sorted(j.id for j in jobs)  # every change seen was recorded


def test_many_job_timeouts_carry_the_callers_handles(mode: str) -> None:
    fake = FakeProvider(scenario=Scenario(steps=("running",), polls_per_step=10_000))

    def body(client: Any) -> Generator[Any, Any, Any]:
        jobs = []
        for _ in range(2):
            jobs.append((yield kitten(client)))
        try:
            yield client.wait_all(jobs, timeout=0.1)
        except mj.WaitTimeoutError as error:
            return jobs, error
        raise AssertionError("no timeout")

    jobs, error = run(mode, fake, body, poll=mj.PollPolicy.fixed(0.01))
    assert error.job is jobs[0]
    assert [j is k for j, k in zip(error.pending, jobs, strict=True)] == [True, True]


def test_a_failed_wait_raises_with_the_callers_handle(mode: str) -> None:
    fake = FakeProvider(scenario=Scenario(outcome="failed"))

    def body(client: Any) -> Generator[Any, Any, Any]:
        job = yield kitten(client)
        try:
            yield job.wait()
        except mj.JobFailedError as error:
            return job, error
        raise AssertionError("no failure")

    job, error = run(mode, fake, body)
    assert error.job is job and job.status is mj.JobStatus.FAILED


# ------------------------------------------------------------------------- logging


def test_status_changes_and_retries_are_logged_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeProvider(scenario=Scenario(poll_errors={1: 503}, retry_after="0"))
    caplog.set_level(logging.DEBUG, logger="mediajobs")

    def body(client: Any) -> Generator[Any, Any, Any]:
        job = yield kitten(client)
        return (yield job.wait())

    job = run("sync", fake, body)
    retries = [r for r in caplog.records if r.levelno == logging.INFO and "retrying" in r.message]
    assert len(retries) == 1
    assert "503" in retries[0].message and "?" not in retries[0].message
    changes = [r.message for r in caplog.records if r.levelno == logging.DEBUG]
    assert any(f"job {job.id}: succeeded" in m for m in changes)
    assert all(fake.api_key not in r.message for r in caplog.records)


# ------------------------------------------------------------ the pure parts, by hand


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    "module",
    ["_steps.py", "_flows.py", "_retry.py", "_artifact.py", "_naming.py"]
    + [f"dialects/{p.name}" for p in sorted((SRC / "dialects").glob("*.py"))],
)
def test_flows_and_dialects_do_no_io_of_their_own(module: str) -> None:
    forbidden = {"os", "threading", "time", "random", "anyio", "asyncio", "trio", "socket"}
    assert not _imports(SRC / module) & forbidden


def settings(**kw: Any) -> Settings:
    options: dict[str, Any] = {
        "dialect": OpenRouter(),
        "api_key": "sk-x",
        "headers": {},
        "timeout": 30.0,
        "poll": mj.PollPolicy(initial=2.0, factor=1.0, max_interval=2.0, jitter=0.5),
        "retry": mj.RetryPolicy(max_attempts=3, initial=1.0, jitter=0.5),
        "wait_timeout": None,
        "clock": lambda: 100.0,
        "random": lambda: 0.0,
    }
    options.update(kw)
    return Settings(**options)


def test_the_retry_rule_uses_the_injected_random_source_and_clock() -> None:
    s = settings()
    rule = RetryRule(s.retry, clock=s.clock, random=s.random)
    down = mj.APIConnectionError("down")
    assert rule.delay(down, 1, what="GET x") == 0.5  # 1.0 spread by -50 %: rand() was 0
    assert rule.delay(down, 2, what="GET x") == 1.0
    with pytest.raises(mj.APIConnectionError):
        rule.delay(down, 3, what="GET x")  # max_attempts reached
    with pytest.raises(mj.AuthenticationError):
        rule.delay(mj.AuthenticationError("no", status_code=401), 1, what="GET x")
    near = RetryRule(s.retry, clock=s.clock, random=s.random, deadline=100.4)
    with pytest.raises(DeadlineReachedError) as info:
        near.delay(down, 1, what="GET x")
    assert info.value.__cause__ is down


def test_wait_sleeps_name_their_job_and_use_the_injected_jitter() -> None:
    job = OpenRouter().parse_submit(
        httpx.Response(
            202,
            json={"id": "j1", "status": "pending", "polling_url": "https://openrouter.ai/x"},
            request=httpx.Request("POST", "https://openrouter.ai/api/v1/videos"),
        ),
        kind="video",
        model="m",
    )
    step = next(wait_flow(settings(), job))
    assert step == _steps.Sleep(1.0, wake="j1")  # 2.0 spread by -50 %


def test_cancel_reads_supports_cancel_before_any_request() -> None:
    class NoCancel(OpenRouter):
        supports_cancel = False

        def build_cancel(self, job: mj.JobData) -> httpx.Request:
            return httpx.Request("DELETE", "https://openrouter.ai/api/v1/videos/x")

    flow: Iterator[Any] = cancel_flow(
        settings(dialect=NoCancel()),
        mj.JobData(
            id="x", provider="openrouter", status=mj.JobStatus.RUNNING, raw_status="in_progress"
        ),
    )
    with pytest.raises(mj.UnsupportedError):
        next(flow)


# ------------------------------------------------------------------ waking a wait


def _wake_until(client: Any, job_id: str, finished: Callable[[], bool]) -> int:
    """From another thread: end the wait's sleeps as they begin, until it finished (<= 10 s)."""
    woken = 0
    for _ in range(1000):
        if finished():
            break
        woken += client._wakeups.wake(job_id)
        threading.Event().wait(0.01)
    return woken


def test_a_woken_wait_polls_at_once(mode: str) -> None:
    # Polls every 60 s: without the wake-ups the wait could not finish within the test.
    fake = FakeProvider(scenario=Scenario(steps=("queued",)))
    slow = mj.PollPolicy.fixed(60)
    options = {"api_key": fake.api_key, "base_url": fake.api_origin, "poll": slow}
    if mode == "sync":
        with mj.Client(
            "therouter", http_client=httpx.Client(transport=fake.transport()), **options
        ) as client:
            job = kitten(client)
            waiter = threading.Thread(target=job.wait, daemon=True)
            waiter.start()
            woken = _wake_until(client, job.id, lambda: not waiter.is_alive())
            waiter.join(1)
            assert not waiter.is_alive()
    else:

        async def main() -> tuple[int, Any]:
            async with mj.AsyncClient(
                "therouter", http_client=httpx.AsyncClient(transport=fake.transport()), **options
            ) as client:
                job = await kitten(client)
                with anyio.fail_after(15):  # a wait that is never woken would take 120 s
                    async with anyio.create_task_group() as group:
                        group.start_soon(job.wait)
                        count = await anyio.to_thread.run_sync(
                            lambda: _wake_until(client, job.id, lambda: job.done)
                        )
                return count, job

        woken, job = anyio.run(main, backend=mode)
    assert woken == 2  # one sleep before each of the two polls
    assert job.status is mj.JobStatus.SUCCEEDED
