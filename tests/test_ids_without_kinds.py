"""Ids without kinds: a stored id is found on the provider's other status route after a 404.

WorldRouter reads image tasks and video generations on two routes, OneRouter video and image
tasks on two hosts; an id alone does not say which. Every client method that takes an id
tries the likelier route, then (on 404, and only for an id of unknown kind) the other one,
once. Run on the blocking client and on the async one under asyncio and trio.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import mediajobs as mj
from mediajobs.dialects import WorldRouter
from mediajobs.testing import FakeProvider

FAST = mj.PollPolicy.fixed(0.001)
RETRY = mj.RetryPolicy(max_attempts=3, initial=0.001, jitter=0)
SUBMITS = {
    ("worldrouter", "video"): "grok-imagine-video",
    ("worldrouter", "image"): "gpt-image-2",
    ("onerouter", "image"): "google/imagen-4",
    ("onerouter", "video"): "bytedance/seedance",
}


@pytest.fixture(params=["sync", "asyncio", "trio"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def call(
    mode: str,
    fake: FakeProvider | httpx.MockTransport,
    provider: str | mj.Dialect,
    method: str,
    *args: Any,
    **kw: Any,
) -> Any:
    """Call ``client.<method>(*args, **kw)`` on a fresh client of ``mode``."""
    transport = fake.transport() if isinstance(fake, FakeProvider) else fake
    options: dict[str, Any] = {"api_key": "test-key", "poll": FAST, "retry": RETRY}
    if isinstance(fake, FakeProvider):
        options["base_url"] = fake.api_origin
    if mode == "sync":
        with mj.Client(provider, http_client=httpx.Client(transport=transport), **options) as c:
            return getattr(c, method)(*args, **kw)

    async def main() -> Any:
        async with mj.AsyncClient(
            provider, http_client=httpx.AsyncClient(transport=transport), **options
        ) as client:
            return await getattr(client, method)(*args, **kw)

    return anyio.run(main, backend=mode)


def submitted(fake: FakeProvider, provider: str, kind: str) -> str:
    """Submit a job straight to the fake and return its id (no client involved)."""
    with mj.Client(
        provider,
        api_key=fake.api_key,
        base_url=fake.api_origin,
        http_client=httpx.Client(transport=fake.transport()),
    ) as client:
        return client.submit(kind, model=SUBMITS[provider, kind], prompt="a lighthouse").id


def polls_since(fake: FakeProvider, start: int) -> list[str]:
    return [r.path for r in fake.requests[start:] if r.origin == "api" and r.method == "GET"]


@pytest.mark.parametrize(
    ("provider", "kind", "first", "second"),
    [
        ("worldrouter", "video", "/v1/images/generation_tasks/", "/v1/videos/generations/"),
        ("onerouter", "image", "/v1/videos/tasks/", "/v1/images/tasks/"),
    ],
)
def test_get_finds_the_other_route_with_one_extra_request(
    mode: str, provider: str, kind: str, first: str, second: str
) -> None:
    fake = FakeProvider()
    job_id = submitted(fake, provider, kind)
    start = len(fake.requests)
    job = call(mode, fake, provider, "get", job_id)
    assert polls_since(fake, start) == [first + job_id, second + job_id]
    assert job.id == job_id and job.kind == kind  # the found kind sticks to the handle
    again = len(fake.requests)
    call(mode, fake, provider, "get", job)  # the handle knows its route now
    assert polls_since(fake, again) == [second + job_id]


@pytest.mark.parametrize(("provider", "kind"), [("worldrouter", "image"), ("onerouter", "video")])
def test_the_likelier_route_costs_no_extra_request(mode: str, provider: str, kind: str) -> None:
    fake = FakeProvider()
    job_id = submitted(fake, provider, kind)
    start = len(fake.requests)
    job = call(mode, fake, provider, "get", job_id)
    assert len(polls_since(fake, start)) == 1
    assert job.id == job_id


@pytest.mark.parametrize("provider", ["worldrouter", "onerouter"])
def test_an_unknown_id_is_not_found_after_both_routes(mode: str, provider: str) -> None:
    fake = FakeProvider()
    with pytest.raises(mj.NotFoundError) as caught:
        call(mode, fake, provider, "get", "task_nowhere")
    assert len(polls_since(fake, 0)) == 2
    assert caught.value.status_code == 404


@pytest.mark.parametrize(("provider", "wrong"), [("worldrouter", "image"), ("onerouter", "video")])
def test_a_given_kind_is_trusted_and_never_searched(mode: str, provider: str, wrong: str) -> None:
    right = "video" if provider == "worldrouter" else "image"
    fake = FakeProvider()
    job_id = submitted(fake, provider, right)
    start = len(fake.requests)
    with pytest.raises(mj.NotFoundError):
        call(mode, fake, provider, "get", job_id, kind=wrong)
    assert len(polls_since(fake, start)) == 1


def test_a_handle_already_read_is_never_searched(mode: str) -> None:
    fake = FakeProvider()
    job_id = submitted(fake, "worldrouter", "image")
    job = call(mode, fake, "worldrouter", "get", job_id)
    del fake.jobs[job_id]  # the provider forgot it
    start = len(fake.requests)
    with pytest.raises(mj.NotFoundError):
        call(mode, fake, "worldrouter", "get", job.data)
    assert len(polls_since(fake, start)) == 1


def test_wait_and_download_by_id_find_a_video_task(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider()
    job_id = submitted(fake, "worldrouter", "video")
    done = call(mode, fake, "worldrouter", "wait", job_id)
    assert done.status is mj.JobStatus.SUCCEEDED and done.kind == "video"
    misses = [r for r in fake.requests if r.status == 404]
    assert len(misses) == 1  # one miss for the whole wait, not one per poll
    (path,) = call(mode, fake, "worldrouter", "download", job_id, tmp_path)
    assert path.read_bytes() == fake.artifact_bytes(job_id)
    assert len([r for r in fake.requests if r.status == 404]) == 2  # one more: a new id


def test_many_job_waits_find_each_route(mode: str) -> None:
    fake = FakeProvider()
    ids = [submitted(fake, "onerouter", kind) for kind in ("image", "video", "image")]
    jobs = call(mode, fake, "onerouter", "wait_all", ids)
    assert [j.kind for j in jobs] == ["image", "video", "image"]
    assert all(j.status is mj.JobStatus.SUCCEEDED for j in jobs)
    misses = [path for path in polls_since(fake, 0) if path.startswith("/v1/videos/tasks/")]
    assert misses.count(f"/v1/videos/tasks/{ids[0]}") == 1  # searched once, not per poll
    assert misses.count(f"/v1/videos/tasks/{ids[2]}") == 1


class CancellableWorld(WorldRouter):
    """WorldRouter with a cancel route beside each status route (no such route exists)."""

    supports_cancel = True

    def build_cancel(self, job: mj.JobData) -> httpx.Request:
        return httpx.Request("POST", str(self.build_poll(job).url) + "/cancel")


def test_cancel_by_id_finds_the_other_route(mode: str) -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/v1/videos/generations/vid_7/cancel":
            return httpx.Response(200, json={"id": "vid_7", "status": "cancelled"})
        return httpx.Response(404, json={"error": {"message": "not found"}})

    job = call(mode, httpx.MockTransport(handle), CancellableWorld(), "cancel", "vid_7")
    assert job.status is mj.JobStatus.CANCELLED and job.kind == "video"
    assert seen == [
        "/v1/images/generation_tasks/vid_7/cancel",
        "/v1/videos/generations/vid_7/cancel",
    ]
