"""OpenRouter's signed artifact URLs: no key to storage, and the keyed fallback route.

A newer OpenRouter answer lists ``urls[i]`` (signed storage URLs that must get no credentials)
beside ``unsigned_urls[i]`` (content routes on the API host that need the key). Downloads take
the signed URL first and switch to the keyed one when it answers 403 or 404, or keeps failing
to connect until the retries run out. Every case runs on the blocking client and on the async
one under asyncio and trio, against the fake, wrapped to break the storage host at will.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import mediajobs as mj
from mediajobs.testing import FakeProvider, Scenario

KEY = "sk-or-signed-url-secret"
RETRY = mj.RetryPolicy(max_attempts=3, initial=0.001, jitter=0)
FAST = mj.PollPolicy.fixed(0.001)


@pytest.fixture(params=["sync", "asyncio", "trio"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Storage:
    """The fake behind a transport that records every request and may break the storage host.

    Args:
        fake: The fake provider.
        fault: ``None`` (storage works), ``"connect"`` (connections to it fail) or an HTTP
            status it answers with instead of the bytes.
    """

    def __init__(self, fake: FakeProvider, fault: str | int | None = None) -> None:
        self.fake = fake
        self.fault = fault
        self.seen: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.url.host == httpx.URL(self.fake.storage_origin).host and self.fault:
            if self.fault == "connect":
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(int(self.fault), content=b"<Error>NoSuchKey</Error>")
        return self.fake.handle(request)

    def on(self, origin: str) -> list[httpx.Request]:
        return [r for r in self.seen if r.url.host == httpx.URL(origin).host]


def finished_job(fake: FakeProvider, scenario: Scenario) -> dict[str, Any]:
    """Submit and wait for an OpenRouter job on the fake; return its ``to_dict()``."""
    fake.scenario = scenario
    with mj.Client(
        "openrouter",
        api_key=KEY,
        base_url=fake.api_origin,
        poll=FAST,
        http_client=httpx.Client(transport=fake.transport()),
    ) as client:
        return client.submit("video", model="google/veo-3.1", prompt="surf").wait().to_dict()


def download(mode: str, storage: Storage, job: dict[str, Any], dest: Path) -> list[Path]:
    options: dict[str, Any] = {
        "api_key": KEY,
        "base_url": storage.fake.api_origin,
        "retry": RETRY,
        "poll": FAST,
    }
    transport = httpx.MockTransport(storage.handle)
    if mode == "sync":
        with mj.Client("openrouter", http_client=httpx.Client(transport=transport), **options) as c:
            paths: list[Path] = c.job_from_dict(job).download(dest)
            return paths

    async def main() -> list[Path]:
        async with mj.AsyncClient(
            "openrouter", http_client=httpx.AsyncClient(transport=transport), **options
        ) as client:
            return await client.job_from_dict(job).download(dest)

    return anyio.run(main, backend=mode)


def assert_no_key_reached_storage(storage: Storage) -> None:
    requests = storage.on(storage.fake.storage_origin)
    assert requests
    for request in requests:
        assert "authorization" not in request.headers
        assert KEY not in str(request.headers.raw) and KEY not in str(request.url)


def test_the_signed_url_is_used_without_the_key(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider(api_key=KEY)
    job = finished_job(fake, Scenario(openrouter_shape="signed_urls", artifact_count=2))
    assert all(a["fallback_url"] for a in job["artifacts"])
    storage = Storage(fake)
    paths = download(mode, storage, job, tmp_path)
    assert [p.read_bytes() for p in paths] == [fake.artifact_bytes(job["id"], i) for i in (0, 1)]
    assert len(storage.on(fake.storage_origin)) == 2
    assert storage.on(fake.api_origin) == []  # the keyed fallback was never needed
    assert_no_key_reached_storage(storage)


@pytest.mark.parametrize("fault", [403, 404])
def test_a_refused_signed_url_falls_back_to_the_keyed_route(
    mode: str, tmp_path: Path, fault: int
) -> None:
    fake = FakeProvider(api_key=KEY)
    job = finished_job(fake, Scenario(openrouter_shape="signed_urls"))
    storage = Storage(fake, fault)
    (path,) = download(mode, storage, job, tmp_path)
    assert path.read_bytes() == fake.artifact_bytes(job["id"])
    assert path.name == f"{job['id']}_0.mp4"
    assert len(storage.on(fake.storage_origin)) == 1  # a refusal is not retried
    (keyed,) = storage.on(fake.api_origin)
    assert str(keyed.url) == job["artifacts"][0]["fallback_url"]
    assert keyed.headers["authorization"] == f"Bearer {KEY}"
    assert_no_key_reached_storage(storage)


def test_expired_signed_urls_fall_back_to_the_keyed_route(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider(api_key=KEY)
    scenario = Scenario(openrouter_shape="signed_urls", expired_urls=True, artifact_count=2)
    job = finished_job(fake, scenario)
    storage = Storage(fake)
    paths = download(mode, storage, job, tmp_path)
    assert [p.read_bytes() for p in paths] == [fake.artifact_bytes(job["id"], i) for i in (0, 1)]
    refused = [r for r in fake.requests if r.origin == "storage"]
    assert [r.status for r in refused] == [403, 403]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in storage.on(fake.api_origin))
    assert_no_key_reached_storage(storage)


def test_a_storage_host_that_never_connects_falls_back_after_retries(
    mode: str, tmp_path: Path
) -> None:
    fake = FakeProvider(api_key=KEY)
    job = finished_job(fake, Scenario(openrouter_shape="signed_urls"))
    storage = Storage(fake, "connect")
    (path,) = download(mode, storage, job, tmp_path)
    assert path.read_bytes() == fake.artifact_bytes(job["id"])
    assert len(storage.on(fake.storage_origin)) == RETRY.max_attempts
    assert len(storage.on(fake.api_origin)) == 1
    assert_no_key_reached_storage(storage)


def test_a_failing_fallback_is_an_error_that_names_no_key(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider(api_key=KEY)
    job = finished_job(fake, Scenario(openrouter_shape="signed_urls"))
    job["artifacts"][0]["fallback_url"] = job["artifacts"][0]["fallback_url"].replace(
        job["id"], "vj_gone"
    )
    storage = Storage(fake, 404)
    with pytest.raises(mj.DownloadError) as caught:
        download(mode, storage, job, tmp_path)
    assert isinstance(caught.value.__cause__, mj.NotFoundError)
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)
    assert len(storage.on(fake.storage_origin)) == 1  # the signed URL is not tried again
    assert list(tmp_path.iterdir()) == []


def test_an_unsigned_only_answer_downloads_with_the_key(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider(api_key=KEY)
    job = finished_job(fake, Scenario())
    assert all(a["fallback_url"] is None for a in job["artifacts"])
    storage = Storage(fake)
    (path,) = download(mode, storage, job, tmp_path)
    assert path.read_bytes() == fake.artifact_bytes(job["id"])
    (keyed,) = storage.on(fake.api_origin)
    assert keyed.headers["authorization"] == f"Bearer {KEY}"
