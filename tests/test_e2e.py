"""The core flows of every provider, sync and async, over real loopback sockets."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import mediajobs as mj
from mediajobs.testing import FakeProvider, FakeServer, Scenario

pytestmark = pytest.mark.e2e

FAST = mj.PollPolicy(initial=0.01, factor=1.0, max_interval=0.01, jitter=0)
RETRY = mj.RetryPolicy(max_attempts=4, initial=0.01, jitter=0, max_retry_after=0.05)
CASES = {
    "therouter": ("image", "openai/gpt-image-2"),
    "worldrouter": ("image", "gpt-image-2"),
    "openrouter": ("video", "bytedance/seedance-2.0"),
    "onerouter": ("video", "bytedance/seedance"),
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(FakeProvider()) as served:
        yield served


@pytest.fixture
def fake(server: FakeServer) -> FakeProvider:
    server.fake.scenario = Scenario(artifact_size=300_000)
    server.fake.requests.clear()
    return server.fake


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("provider", sorted(CASES))
def test_sync_submit_wait_download(
    server: FakeServer, fake: FakeProvider, provider: str, tmp_path: Path
) -> None:
    kind, model = CASES[provider]
    with mj.Client(
        provider, api_key=fake.api_key, base_url=server.base_url, poll=FAST, retry=RETRY
    ) as client:
        job = client.submit(kind, model=model, prompt="a lighthouse")
        seen: list[str] = []
        job.wait(timeout=30, on_update=lambda j: seen.append(j.status.value))
        (path,) = job.download(tmp_path)
    assert seen[-1] == "succeeded"
    assert path.parent == tmp_path
    assert path.stat().st_size == 300_000
    assert sha256(path) == fake.artifact_sha256(job.id, 0)
    storage = [r for r in fake.requests if r.origin == "storage"]
    assert all(not r.authorized for r in storage)


@pytest.mark.anyio
@pytest.mark.parametrize("provider", sorted(CASES))
async def test_async_submit_wait_download(
    server: FakeServer, fake: FakeProvider, provider: str, tmp_path: Path
) -> None:
    kind, model = CASES[provider]
    async with mj.AsyncClient(
        provider, api_key=fake.api_key, base_url=server.base_url, poll=FAST, retry=RETRY
    ) as client:
        jobs = [await client.submit(kind, model=model, prompt="a lighthouse") for _ in range(3)]
        done = await client.wait_all(jobs, timeout=30)
        paths = [p for job in done for p in await job.download(tmp_path)]
    assert [j.status for j in done] == [mj.JobStatus.SUCCEEDED] * 3
    assert sorted(sha256(p) for p in paths) == sorted(fake.artifact_sha256(j.id, 0) for j in done)


def test_failures_retries_and_a_cut_submit_over_sockets(
    server: FakeServer, fake: FakeProvider
) -> None:
    with mj.Client(
        "openrouter", api_key=fake.api_key, base_url=server.base_url, poll=FAST, retry=RETRY
    ) as client:
        fake.script(Scenario(poll_errors={1: 503, 2: 429}, retry_after="0"))
        assert client.submit("video", model="m", prompt="p").wait(timeout=30).done
        fake.script(Scenario(outcome="failed", error_message="melted"))
        with pytest.raises(mj.JobFailedError, match="melted"):
            client.submit("video", model="m", prompt="p").wait(timeout=30)
        before = len(fake.jobs)
        fake.script(Scenario(submit_drop_after_record=True))
        with pytest.raises(mj.APIConnectionError):
            client.submit("video", model="m", prompt="p")
        assert len(fake.jobs) == before + 1  # accepted once, not submitted again
        fake.script(Scenario(steps=("running",), polls_per_step=10_000))
        with pytest.raises(mj.WaitTimeoutError):
            client.submit("video", model="m", prompt="p").wait(timeout=0.3)
