"""client.parse_webhook: verified pushes move jobs forward and wake their waits, sync and async.

The fake runs in-process (an httpx transport) on a hand-driven clock; deliveries are signed
here. A wait woken by a terminal push takes the pushed snapshot: the fake sees no status poll.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import mediajobs as mj
from mediajobs._client import WEBHOOK_POLL
from mediajobs.testing import FakeClock, FakeProvider, Scenario, webhook_event
from mediajobs.webhooks import sign

SECRET = "whsec_client_tests"
MODEL = "bytedance/seedance-2.0"


@pytest.fixture(params=["sync", "asyncio", "trio"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> FakeProvider:
    # Jobs move on by the fake's clock (1 s a step), never by being polled.
    return FakeProvider(clock, scenario=Scenario(seconds_per_step=1.0))


def client_args(fake: FakeProvider, **extra: Any) -> dict[str, Any]:
    return {
        "api_key": "test-api-key",
        "base_url": fake.api_origin,
        "webhook_secret": SECRET,
        "retry": mj.RetryPolicy(initial=0.001, max_delay=0.01),
        **extra,
    }


def sync_client(fake: FakeProvider, **extra: Any) -> mj.Client:
    import httpx

    http = httpx.Client(transport=fake.transport())
    return mj.Client("openrouter", http_client=http, **client_args(fake, **extra))


def async_client(fake: FakeProvider, **extra: Any) -> mj.AsyncClient:
    import httpx

    http = httpx.AsyncClient(transport=fake.transport())
    return mj.AsyncClient("openrouter", http_client=http, **client_args(fake, **extra))


def delivery(
    fake: FakeProvider, job_id: str, status: str = "completed", *, secret: str = SECRET
) -> tuple[bytes, dict[str, str]]:
    """A signed event for a fake job, with the body OpenRouter's poll would answer."""
    data: dict[str, Any] = {"id": job_id, "status": status, "model": MODEL}
    if status == "completed":
        data["unsigned_urls"] = [f"{fake.api_origin}/api/v1/videos/{job_id}/content?index=0"]
        data["usage"] = {"cost": 0.05, "is_byok": False}
    body = json.dumps(webhook_event(data)).encode()
    return body, {"X-OpenRouter-Signature": sign(body, secret, int(time.time()))}


def status_polls(fake: FakeProvider, job_id: str) -> int:
    return sum(
        1
        for r in fake.requests
        if r.method == "GET" and r.job_id == job_id and r.path.endswith(job_id)
    )


def until(check: Callable[[], bool]) -> None:
    """Spin (yielding the GIL) until a condition holds; the 120 s test timeout bounds it."""
    while not check():
        time.sleep(0.001)


async def until_async(check: Callable[[], bool]) -> None:
    while not check():  # noqa: ASYNC110 - the state is set by another thread or task
        await anyio.sleep(0.001)


# ------------------------------------------------------------------ parsing


def test_event_carries_a_handle_and_reports_repeats_once(fake: FakeProvider) -> None:
    with sync_client(fake) as client:
        job = client.submit("video", model=MODEL, prompt="p")
        body, headers = delivery(fake, job.id)
        first = client.parse_webhook(body, headers)
        again = client.parse_webhook(body, headers)
    assert isinstance(first.job, mj.Job) and first.job.id == job.id
    assert first.job.status is mj.JobStatus.SUCCEEDED and first.type.endswith("completed")
    assert first.id == f"{job.id}-completed"
    assert (first.duplicate, again.duplicate) == (False, True)


def test_a_stale_event_never_moves_a_job_backwards(fake: FakeProvider) -> None:
    with sync_client(fake) as client:
        job = client.submit("video", model=MODEL, prompt="p")
        client.parse_webhook(*delivery(fake, job.id, "completed"))
        late = client.parse_webhook(*delivery(fake, job.id, "in_progress"))
        assert late.duplicate is False  # another event, not a repeat
        assert late.job.status is mj.JobStatus.SUCCEEDED
        assert client._wakeups.latest(job.id).status is mj.JobStatus.SUCCEEDED  # type: ignore[union-attr]
        # and the wait afterwards finishes from the pushed state, without a request
        assert client.wait(job).status is mj.JobStatus.SUCCEEDED
    assert status_polls(fake, job.id) == 0


def test_every_failure_is_a_verification_error(fake: FakeProvider) -> None:
    with sync_client(fake) as client:
        body, headers = delivery(fake, "vj_x", secret="another")
        with pytest.raises(mj.WebhookVerificationError) as bad:
            client.parse_webhook(body, headers)
        assert bad.value.reason == "bad_signature"
        with pytest.raises(mj.WebhookVerificationError) as garbage:
            client.parse_webhook(b"\xff\x00", {"X-OpenRouter-Signature": "t=1,v1=zz"})
        assert garbage.value.reason == "malformed_signature"
        with pytest.raises(mj.WebhookVerificationError) as unsigned:
            client.parse_webhook(body, {})
        assert unsigned.value.reason == "missing_signature"
        assert SECRET not in repr(client) and SECRET not in str(bad.value)


def test_secret_from_the_environment_and_rotation(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENROUTER_WEBHOOK_SECRET", "from-env")
    env_client = mj.Client("openrouter", api_key="k", base_url=fake.api_origin)
    body, headers = delivery(fake, "vj_env", secret="from-env")
    assert env_client.parse_webhook(body, headers).job.id == "vj_env"
    # a secret from the environment leaves the client's polling as it was
    assert env_client._settings.poll == env_client.dialect.default_poll
    env_client.close()
    rotating = mj.Client(
        "openrouter", api_key="k", base_url=fake.api_origin, webhook_secret=["new", "old"]
    )
    for secret in ("new", "old"):
        body, headers = delivery(fake, f"vj_{secret}", secret=secret)
        assert rotating.parse_webhook(body, headers).job.id == f"vj_{secret}"
    assert rotating._settings.poll == WEBHOOK_POLL
    rotating.close()


def test_no_secret_and_unsupported_providers(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENROUTER_WEBHOOK_SECRET", raising=False)
    with mj.Client("openrouter", api_key="k") as plain:
        with pytest.raises(mj.WebhookVerificationError) as none:
            plain.parse_webhook(*delivery(fake, "vj_1"))
        assert none.value.reason == "no_secret"
    with pytest.raises(mj.ConfigurationError, match="sends no webhooks"):
        mj.Client("therouter", api_key="k", webhook_secret=SECRET)
    for bad in ("", [], [""], [3]):
        with pytest.raises(mj.ConfigurationError):
            mj.Client("openrouter", api_key="k", webhook_secret=bad)  # type: ignore[arg-type]
    with mj.Client("therouter", api_key="k") as therouter:
        with pytest.raises(mj.WebhookVerificationError) as unsupported:
            therouter.parse_webhook(*delivery(fake, "vj_1"))
        assert unsupported.value.reason == "unsupported_provider"


def test_the_dedupe_is_pluggable(fake: FakeProvider) -> None:
    seen: list[str] = []

    class Shared:
        def seen(self, delivery_id: str) -> bool:
            repeat = delivery_id in seen
            seen.append(delivery_id)
            return repeat

    with sync_client(fake) as client:
        client._webhook_dedupe = Shared()
        body, headers = delivery(fake, "vj_shared")
        assert [client.parse_webhook(body, headers).duplicate for _ in range(2)] == [False, True]
    assert seen == ["vj_shared-completed"] * 2


def test_moved_jobs_are_recorded(fake: FakeProvider) -> None:
    recorded: list[Any] = []
    with sync_client(fake) as client:
        client._webhook_recorder = recorded.append
        client.parse_webhook(*delivery(fake, "vj_rec", "in_progress"))
        client.parse_webhook(*delivery(fake, "vj_rec", "completed"))
        client.parse_webhook(*delivery(fake, "vj_rec", "in_progress"))  # stale: not recorded
    assert [event.job.status for event in recorded] == [
        mj.JobStatus.RUNNING,
        mj.JobStatus.SUCCEEDED,
    ]


# ------------------------------------------------------------------ waking


def run(mode: str, sync: Callable[[], Any], main: Callable[[], Any]) -> Any:
    if mode == "sync":
        return sync()
    return anyio.run(main, backend=mode)


def test_a_push_ends_a_wait_with_no_poll(
    mode: str, fake: FakeProvider, clock: FakeClock, tmp_path: Path
) -> None:
    """The wait sleeps a minute (the safety net); the push ends it and the job downloads."""

    def sync() -> tuple[mj.Job, list[Path]]:
        with sync_client(fake) as client:
            job = client.submit("video", model=MODEL, prompt="p")
            clock.advance(10)  # the job is done at the provider
            pusher = threading.Thread(
                target=lambda: (
                    until(lambda: job.id in client._wakeups._waiting),
                    client.parse_webhook(*delivery(fake, job.id)),
                )
            )
            pusher.start()
            done = client.wait(job)
            pusher.join()
            return done, done.download(tmp_path)

    async def main() -> tuple[mj.AsyncJob, list[Path]]:
        async with async_client(fake) as client:
            job = await client.submit("video", model=MODEL, prompt="p")
            clock.advance(10)

            async def push() -> None:
                await until_async(lambda: job.id in client._wakeups._waiting)
                # from a worker thread, as a sync web framework would
                await anyio.to_thread.run_sync(client.parse_webhook, *delivery(fake, job.id))

            async with anyio.create_task_group() as group:
                group.start_soon(push)
                done = await client.wait(job)
            return done, await done.download(tmp_path)

    done, paths = run(mode, sync, main)
    assert done.status is mj.JobStatus.SUCCEEDED
    assert paths[0].read_bytes() == fake.artifact_bytes(done.id)
    assert status_polls(fake, done.id) == 0


def test_a_push_from_the_waiting_loop_itself(fake: FakeProvider, clock: FakeClock) -> None:
    async def main() -> mj.AsyncJob:
        async with async_client(fake) as client:
            job = await client.submit("video", model=MODEL, prompt="p")
            clock.advance(10)

            async def push() -> None:
                await until_async(lambda: job.id in client._wakeups._waiting)
                client.parse_webhook(*delivery(fake, job.id))  # same thread as the wait

            async with anyio.create_task_group() as group:
                group.start_soon(push)
                return await client.wait(job)

    for backend in ("asyncio", "trio"):
        done = anyio.run(main, backend=backend)
        assert done.status is mj.JobStatus.SUCCEEDED
        assert status_polls(fake, done.id) == 0


def test_a_failed_push_raises_in_the_wait(mode: str, fake: FakeProvider) -> None:
    def sync() -> Any:
        with sync_client(fake) as client:
            job = client.submit("video", model=MODEL, prompt="p")
            client.parse_webhook(*delivery(fake, job.id, "failed"))
            with pytest.raises(mj.JobFailedError) as failed:
                client.wait(job)
            return failed.value.job

    async def main() -> Any:
        async with async_client(fake) as client:
            job = await client.submit("video", model=MODEL, prompt="p")
            client.parse_webhook(*delivery(fake, job.id, "failed"))
            with pytest.raises(mj.JobFailedError) as failed:
                await client.wait(job)
            return failed.value.job

    job = run(mode, sync, main)
    assert job.status is mj.JobStatus.FAILED and status_polls(fake, job.id) == 0


@pytest.mark.parametrize("many", ["as_completed", "wait_all"])
def test_pushes_end_many_job_waits(
    mode: str, many: str, fake: FakeProvider, clock: FakeClock
) -> None:
    """Five jobs: two pushed before the wait starts, three while it waits; no poll at all."""
    count = 5

    def sync() -> list[str]:
        with sync_client(fake) as client:
            jobs = [client.submit("video", model=MODEL, prompt=str(n)) for n in range(count)]
            clock.advance(10)
            for job in jobs[:2]:
                client.parse_webhook(*delivery(fake, job.id))

            def push_rest() -> None:
                until(lambda: bool(client._wakeups._watchers))
                for job in jobs[2:]:
                    client.parse_webhook(*delivery(fake, job.id))

            pusher = threading.Thread(target=push_rest)
            pusher.start()
            if many == "as_completed":
                finished = [job.id for job in client.as_completed(jobs)]
            else:
                finished = [job.id for job in client.wait_all(jobs)]
            pusher.join()
            return finished

    async def main() -> list[str]:
        async with async_client(fake) as client:
            jobs = [await client.submit("video", model=MODEL, prompt=str(n)) for n in range(count)]
            clock.advance(10)
            for job in jobs[:2]:
                client.parse_webhook(*delivery(fake, job.id))

            async def push_rest() -> None:
                await until_async(lambda: bool(client._wakeups._watchers))
                for job in jobs[2:]:
                    await anyio.to_thread.run_sync(client.parse_webhook, *delivery(fake, job.id))

            async with anyio.create_task_group() as group:
                group.start_soon(push_rest)
                if many == "as_completed":
                    finished = [job.id async for job in client.as_completed(jobs)]
                else:
                    finished = [job.id for job in await client.wait_all(jobs)]
            return finished

    finished = run(mode, sync, main)
    assert sorted(finished) == sorted(fake.jobs)
    assert all(status_polls(fake, job_id) == 0 for job_id in fake.jobs)


def test_a_bare_wake_makes_a_many_job_wait_poll_at_once(
    mode: str, fake: FakeProvider, clock: FakeClock
) -> None:
    """``wake(id)`` without a snapshot: the job is polled now, not a minute later."""

    def sync() -> list[mj.Job]:
        with sync_client(fake) as client:
            job = client.submit("video", model=MODEL, prompt="p")
            clock.advance(10)
            pusher = threading.Thread(
                target=lambda: (
                    until(lambda: bool(client._wakeups._watchers)),
                    client._wakeups.wake(job.id),
                )
            )
            pusher.start()
            done = client.wait_all([job])
            pusher.join()
            return done

    async def main() -> list[mj.AsyncJob]:
        async with async_client(fake) as client:
            job = await client.submit("video", model=MODEL, prompt="p")
            clock.advance(10)

            async def wake() -> None:
                await until_async(lambda: bool(client._wakeups._watchers))
                client._wakeups.wake(job.id)

            async with anyio.create_task_group() as group:
                group.start_soon(wake)
                return await client.wait_all([job])

    (done,) = run(mode, sync, main)
    assert done.status is mj.JobStatus.SUCCEEDED
    assert status_polls(fake, done.id) == 1


def test_submit_passes_callback_url(fake: FakeProvider) -> None:
    url = "http://127.0.0.1:9/hooks/openrouter"
    with sync_client(fake) as client:
        job = client.submit("video", model=MODEL, prompt="p", callback_url=url)
    (submit,) = [r for r in fake.requests if r.method == "POST"]
    assert submit.json["callback_url"] == url
    assert fake.jobs[job.id].callback_url == url


def test_a_shared_store_reports_a_delivery_once_across_clients_and_records_it(
    fake: FakeProvider, tmp_path: Path
) -> None:
    store = mj.JobStore(tmp_path / "jobs.db")
    try:
        with sync_client(fake, store=store) as first, sync_client(fake, store=store) as second:
            job = first.submit("video", model=MODEL, prompt="a kitten", key="kitten-1")
            body, headers = delivery(fake, job.id)
            event = first.parse_webhook(body, headers)
            again = second.parse_webhook(body, headers)
            assert (event.duplicate, again.duplicate) == (False, True)
            assert event.job.id == again.job.id == job.id
            record = store.get("openrouter", key="kitten-1")
            assert record is not None and record.status == "succeeded"
    finally:
        store.close()
