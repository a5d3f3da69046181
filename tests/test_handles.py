"""Job handles: equality and hashing by (provider, id), on both clients."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

import mediajobs as mj
from mediajobs.testing import FakeProvider

FAST = mj.PollPolicy.fixed(0.001)


def make(cls: Any, fake: FakeProvider, provider: str = "therouter") -> Any:
    """A client of class ``cls`` (``mj.Client`` or ``mj.AsyncClient``) on the fake."""
    http = httpx.Client if cls is mj.Client else httpx.AsyncClient
    return cls(
        provider,
        api_key=fake.api_key,
        base_url=fake.api_origin,
        poll=FAST,
        http_client=http(transport=fake.transport()),
    )


def sync_client(fake: FakeProvider, provider: str = "therouter") -> mj.Client:
    client: mj.Client = make(mj.Client, fake, provider)
    return client


def async_client(fake: FakeProvider) -> mj.AsyncClient:
    client: mj.AsyncClient = make(mj.AsyncClient, fake)
    return client


def test_handles_of_one_job_are_equal_whatever_snapshot_they_hold() -> None:
    fake = FakeProvider()
    with sync_client(fake) as client:
        job = client.submit("image", model="openai/gpt-image-2", prompt="a fox")
        stale = client.job_from_dict(job.to_dict())
        client.wait(job)
        by_id = client.get(job.id)
        other = client.submit("image", model="openai/gpt-image-2", prompt="a hen")
    assert stale.status is mj.JobStatus.QUEUED and job.status is mj.JobStatus.SUCCEEDED
    assert stale == job == by_id and stale is not job
    assert hash(stale) == hash(job) == hash(by_id)
    assert stale.data != job.data  # snapshots still compare as data
    assert other != job
    assert {job, stale, by_id, other} == {job, other}
    assert {job: "first"}[by_id] == "first"


def test_the_same_id_of_another_provider_is_another_job() -> None:
    fake = FakeProvider()
    data = {"id": "job_1", "status": "queued", "raw_status": "queued"}
    with sync_client(fake, "therouter") as one, sync_client(fake, "openrouter") as two:
        first = one.job_from_dict({**data, "provider": "therouter"})
        second = two.job_from_dict({**data, "provider": "openrouter"})
    assert first != second
    assert len({first, second}) == 2


def test_a_job_never_equals_an_async_job_of_the_same_id() -> None:
    fake = FakeProvider()
    data = {"id": "job_1", "provider": "therouter", "status": "queued", "raw_status": "queued"}
    with sync_client(fake) as client:
        job = client.job_from_dict(data)

    async def main() -> mj.AsyncJob:
        async with async_client(fake) as aclient:
            return aclient.job_from_dict(data)

    ajob = anyio.run(main)
    assert job != ajob and ajob != job
    assert job.data == ajob.data
    assert job != data["id"] and job != job.data  # neither an id nor a snapshot is a handle


@pytest.mark.anyio
async def test_async_handles_work_as_set_members() -> None:
    fake = FakeProvider()
    async with async_client(fake) as client:
        jobs = [await client.submit("image", model="m", prompt=str(n)) for n in range(3)]
        again = [await client.get(job.id) for job in reversed(jobs)]
        done = await client.wait_all(again)
    assert set(jobs) == set(again) == set(done)
    assert len(set(jobs) | set(done)) == 3
    assert {job: n for n, job in enumerate(jobs)}[done[0]] == 2
