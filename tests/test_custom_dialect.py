"""A provider added without forking: a small dialect passed as ``provider=``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import pytest

import mediajobs as mj


class TinyRouter(mj.Dialect):
    """A made-up router: POST /jobs → {job: {...}}, GET /jobs/{id}, statuses new/busy/ok/bad."""

    name: ClassVar[str] = "tinyrouter"
    env_var: ClassVar[str] = "TINYROUTER_API_KEY"
    kinds: ClassVar[frozenset[str]] = frozenset({"image"})
    default_hosts: ClassVar[Mapping[str, str]] = {"api": "https://tiny.example"}
    default_poll: ClassVar[mj.PollPolicy] = mj.PollPolicy.fixed(0.001)
    status_table: ClassVar[Mapping[str, mj.JobStatus]] = {
        "new": mj.JobStatus.QUEUED,
        "busy": mj.JobStatus.RUNNING,
        "ok": mj.JobStatus.SUCCEEDED,
        "bad": mj.JobStatus.FAILED,
    }

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"X-Tiny-Key": api_key}

    def build_submit(
        self, kind: str, *, model: str, prompt: str | None, params: Mapping[str, Any]
    ) -> httpx.Request:
        return httpx.Request("POST", self.url("/jobs"), json={"model": model, "prompt": prompt})

    def parse_submit(self, response: httpx.Response, *, kind: str, model: str) -> mj.JobData:
        return self._job(response, kind=kind, model=model)

    def build_poll(self, job: mj.JobData) -> httpx.Request:
        return httpx.Request("GET", self.url(f"/jobs/{job.id}"))

    def parse_poll(self, response: httpx.Response, *, previous: mj.JobData) -> mj.JobData:
        return self._job(response, kind=previous.kind, model=previous.model)

    def _job(self, response: httpx.Response, *, kind: str | None, model: str | None) -> mj.JobData:
        self.raise_for_status(response)
        body = self.field(self.json_object(response), "job", dict)
        raw = self.field(body, "state", str)
        urls = self.field(body, "outputs", list, default=[])
        return mj.JobData(
            id=self.field(body, "id", str),
            provider=self.name,
            status=self.normalize_status(raw),
            raw_status=raw,
            kind=kind,
            model=model,
            artifacts=[mj.Artifact(url=u, index=i) for i, u in enumerate(urls)],
            error=self.error_info(body.get("problem")),
            raw=body,
        )


class TinyServer:
    def __init__(self, states: list[str]) -> None:
        self.states = states
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.headers.get("X-Tiny-Key") != "tiny-key":
            return httpx.Response(401, json={"message": "who are you"})
        state = self.states.pop(0)
        outputs = ["https://cdn.tiny.example/1.png"] if state == "ok" else []
        problem = "melted" if state == "bad" else None
        return httpx.Response(
            200, json={"job": {"id": "t1", "state": state, "outputs": outputs, "problem": problem}}
        )


def test_custom_dialect_runs_the_whole_lifecycle() -> None:
    server = TinyServer(["new", "busy", "ok"])
    http = httpx.Client(transport=httpx.MockTransport(server))
    with mj.Client(TinyRouter(), api_key="tiny-key", http_client=http) as client:
        job = client.submit("image", model="tiny-1", prompt="a cat")
        assert job.provider == "tinyrouter"
        seen: list[str] = []
        job.wait(on_update=lambda j: seen.append(j.raw_status))
    assert job.status is mj.JobStatus.SUCCEEDED
    assert seen == ["busy", "ok"]
    assert job.artifacts[0].url == "https://cdn.tiny.example/1.png"
    assert all(r.headers["X-Tiny-Key"] == "tiny-key" for r in server.seen)
    assert [r.method for r in server.seen] == ["POST", "GET", "GET"]


@pytest.mark.anyio
async def test_custom_dialect_on_async_client_with_base_url() -> None:
    server = TinyServer(["new", "bad"])
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    async with mj.AsyncClient(
        TinyRouter(), api_key="tiny-key", http_client=http, base_url="http://127.0.0.1:9"
    ) as client:
        job = await client.submit("image", model="tiny-1", prompt="a cat")
        with pytest.raises(mj.JobFailedError) as info:
            await job.wait()
    assert info.value.job is job
    assert job.error == mj.JobErrorInfo(message="melted")
    assert {str(r.url.copy_with(path="/")) for r in server.seen} == {"http://127.0.0.1:9/"}
    await http.aclose()


def test_custom_dialect_refuses_other_kinds_before_any_request() -> None:
    server = TinyServer([])
    with (
        mj.Client(
            TinyRouter(),
            api_key="k",
            http_client=httpx.Client(transport=httpx.MockTransport(server)),
        ) as client,
        pytest.raises(mj.UnsupportedError),
    ):
        client.submit("video", model="m")
    assert server.seen == []


def test_key_from_environment_or_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINYROUTER_API_KEY", raising=False)
    with pytest.raises(mj.ConfigurationError, match="TINYROUTER_API_KEY"):
        mj.Client(TinyRouter())
    monkeypatch.setenv("TINYROUTER_API_KEY", "tiny-key")
    server = TinyServer(["new"])
    with mj.Client(
        TinyRouter(), http_client=httpx.Client(transport=httpx.MockTransport(server))
    ) as client:
        client.submit("image", model="m")
    assert server.seen[0].headers["X-Tiny-Key"] == "tiny-key"


class RegionalRouter(TinyRouter):
    """A custom dialect with constructor state, some of it derived from its hosts."""

    def __init__(self, region: str = "eu", base_url: str | None = None, *, tier: int = 1) -> None:
        super().__init__(base_url)
        self.region = region
        self.tier = tier
        self.upload_url = self.url(f"/{region}/uploads")

    def build_submit(
        self, kind: str, *, model: str, prompt: str | None, params: Mapping[str, Any]
    ) -> httpx.Request:
        body = {"model": model, "prompt": prompt, "region": self.region, "tier": self.tier}
        return httpx.Request("POST", self.upload_url, json=body)


def test_with_base_url_runs_the_subclass_init_again() -> None:
    dialect = RegionalRouter("us", tier=3)
    moved = dialect.with_base_url("http://127.0.0.1:9")
    assert type(moved) is RegionalRouter
    assert (moved.region, moved.tier) == ("us", 3)
    assert moved.upload_url == "http://127.0.0.1:9/us/uploads"
    assert dialect.upload_url == "https://tiny.example/us/uploads"
    positional = RegionalRouter("ap", "https://tiny-ap.example").with_base_url("http://127.0.0.1:8")
    assert (positional.region, positional.upload_url) == ("ap", "http://127.0.0.1:8/ap/uploads")


def test_custom_init_state_reaches_the_server_through_base_url() -> None:
    server = TinyServer(["new"])
    http = httpx.Client(transport=httpx.MockTransport(server))
    with mj.Client(
        RegionalRouter("us", tier=2), api_key="tiny-key", http_client=http, base_url="http://h:1"
    ) as client:
        client.submit("image", model="m", prompt="p")
    sent = server.seen[0]
    assert str(sent.url) == "http://h:1/us/uploads"
    assert json.loads(sent.content) == {"model": "m", "prompt": "p", "region": "us", "tier": 2}


class FixedRouter(TinyRouter):
    """A custom dialect whose ``__init__`` takes no ``base_url``."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label


def test_with_base_url_copies_a_dialect_whose_init_takes_no_base_url() -> None:
    moved = FixedRouter("x").with_base_url("http://127.0.0.1:7")
    assert moved.label == "x"
    assert moved.url("/jobs") == "http://127.0.0.1:7/jobs"
    assert moved.is_api_url("http://127.0.0.1:7/jobs/1")
    assert not moved.is_api_url("https://tiny.example/jobs/1")
