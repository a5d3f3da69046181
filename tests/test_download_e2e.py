"""Every provider's artifact path end to end on the fake: submit, wait, download, sha256.

In-process through ``FakeProvider.transport()`` for every provider, client and scenario, then a
few over a real loopback socket, where a scripted drop really cuts the TCP connection.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import mediajobs as mj
from mediajobs.testing import FakeProvider, FakeServer, Scenario

KEY = "test-key"
RETRY = mj.RetryPolicy(initial=0.001, max_attempts=3)
POLL = mj.PollPolicy.fixed(0.001)

# provider -> (kind, model): one job shape per provider's artifact path
SHAPES: dict[str, tuple[str, str]] = {
    "therouter": ("image", "openai/gpt-image-1"),  # pre-signed storage URLs, /content -> 302
    "worldrouter": ("image", "gpt-image-2"),  # storage URLs, refreshed by re-reading the task
    "openrouter": ("video", "google/veo-3.1"),  # API /content URLs that need the key
    "onerouter": ("video", "bytedance/seedance"),  # storage URLs on another host
}

SCENARIOS: dict[str, Scenario] = {
    "plain": Scenario(artifact_count=2),
    "dropped": Scenario(drop_download_after=1000, artifact_size=20_000),
    "no-range": Scenario(drop_download_after=1000, artifact_size=20_000, ignore_range=True),
    "expired": Scenario(expired_urls=True, artifact_count=2),
}


@pytest.fixture(params=["sync", "asyncio", "trio"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class Outcome:
    job: Any
    paths: list[Path]
    reports: list[tuple[int, int | None]]


def submit_wait_download(
    mode: str, provider: str, base_url: str, dest: Path, transport: Any = None
) -> Outcome:
    kind, model = SHAPES[provider]
    reports: list[tuple[int, int | None]] = []
    options: dict[str, Any] = {"api_key": KEY, "base_url": base_url, "retry": RETRY, "poll": POLL}

    def record(done: int, total: int | None) -> None:
        reports.append((done, total))

    if mode == "sync":
        with httpx.Client(transport=transport) as http:
            client = mj.Client(provider, http_client=http, **options)
            job = client.submit(kind, model=model, prompt="a fox").wait()
            return Outcome(job, job.download(dest, on_progress=record), reports)

    async def main() -> Outcome:
        async with httpx.AsyncClient(transport=transport) as http:
            client = mj.AsyncClient(provider, http_client=http, **options)
            job = await (await client.submit(kind, model=model, prompt="a fox")).wait()
            return Outcome(job, await job.download(dest, on_progress=record), reports)

    return anyio.run(main, backend=mode)


def check_files(fake: FakeProvider, outcome: Outcome, dest: Path) -> None:
    job = outcome.job
    assert [p.name for p in outcome.paths] == [
        f"{job.id}_{i}{p.suffix}" for i, p in enumerate(outcome.paths)
    ]
    for index, path in enumerate(outcome.paths):
        assert path.parent == dest.resolve()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == fake.artifact_sha256(job.id, index)
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in outcome.paths)
    total = sum(p.stat().st_size for p in outcome.paths)
    assert outcome.reports[-1] == (total, total)


def check_credentials(fake: FakeProvider, provider: str) -> None:
    storage = [r for r in fake.requests if r.origin == "storage"]
    assert all(not r.authorized for r in storage)  # pre-signed and storage URLs: no key
    content = [r for r in fake.requests if r.origin == "api" and r.path.endswith("/content")]
    assert all(r.authorized for r in content)  # the provider's own routes: the key
    if provider == "openrouter":
        assert content
        assert all(r.auth_header == "Bearer ***" for r in content)
    else:
        assert storage


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("provider", sorted(SHAPES))
def test_every_provider_downloads_exact_bytes(
    mode: str, provider: str, scenario: str, tmp_path: Path
) -> None:
    fake = FakeProvider(api_key=KEY, scenario=SCENARIOS[scenario])
    dest = tmp_path / "out"
    outcome = submit_wait_download(mode, provider, fake.api_origin, dest, fake.transport())
    check_files(fake, outcome, dest)
    check_credentials(fake, provider)
    # (the fake records no job id for a refused URL: match the path)
    downloads = [r for r in fake.requests if outcome.job.id in r.path and r.method == "GET"]
    ranges = [r.range for r in downloads if r.range]
    if scenario in ("dropped", "no-range"):
        assert ranges == ["bytes=1000-"]  # the drop was resumed with Range...
    if scenario == "no-range":
        assert [r.status for r in downloads if r.range] == [200]  # ...and restarted on 200
    if scenario == "expired" and provider != "openrouter":
        assert 403 in [r.status for r in downloads]


def test_therouter_expired_urls_go_through_the_content_route(tmp_path: Path) -> None:
    fake = FakeProvider(api_key=KEY, scenario=Scenario(expired_urls=True))
    outcome = submit_wait_download("sync", "therouter", fake.api_origin, tmp_path, fake.transport())
    check_files(fake, outcome, tmp_path)
    trail = [(r.origin, r.status, r.authorized) for r in fake.requests if r.method == "GET"]
    assert trail[-3:] == [("storage", 403, False), ("api", 302, True), ("storage", 200, False)]


# ------------------------------------------------------------------ over real sockets


@pytest.mark.e2e
@pytest.mark.parametrize("provider", ["therouter", "openrouter", "onerouter"])
def test_a_real_tcp_drop_is_resumed(mode: str, provider: str, tmp_path: Path) -> None:
    fake = FakeProvider(
        api_key=KEY, scenario=Scenario(drop_download_after=50_000, artifact_size=300_000)
    )
    with FakeServer(fake) as server:
        outcome = submit_wait_download(mode, provider, server.base_url, tmp_path)
    check_files(fake, outcome, tmp_path)
    check_credentials(fake, provider)
    assert [r.range for r in fake.requests if r.range] == ["bytes=50000-"]


@pytest.mark.e2e
def test_a_real_cross_origin_redirect_drops_the_key(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider(api_key=KEY, scenario=Scenario(expired_urls=True, artifact_count=2))
    with FakeServer(fake) as server:
        outcome = submit_wait_download(mode, "therouter", server.base_url, tmp_path)
    check_files(fake, outcome, tmp_path)
    check_credentials(fake, "therouter")
    assert [r.status for r in fake.requests if r.path.endswith("/content")] == [302, 302]
