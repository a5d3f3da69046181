"""Per-call options of submit (``extra_headers``, ``timeout``) and ``httpx.Timeout`` values.

Run on the blocking client and on the async one under asyncio and trio, against the fake
behind a transport that keeps every request as sent (headers and timeout extensions).
"""

from __future__ import annotations

import math
from typing import Any

import anyio
import httpx
import pytest

import mediajobs as mj
from mediajobs.testing import FakeProvider

KEY = "sk-per-call-secret"
FAST = mj.PollPolicy.fixed(0.001)


@pytest.fixture(params=["sync", "asyncio", "trio"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Spy:
    """The fake behind a transport that keeps every request."""

    def __init__(self) -> None:
        self.fake = FakeProvider(api_key=KEY)
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.fake.handle(request)


def run(
    mode: str,
    spy: Spy,
    steps: list[tuple[str, dict[str, Any]]],
    provider: str = "therouter",
    **client_options: Any,
) -> Any:
    """Build a client of ``mode`` and run ``submit(**kw)`` then ``wait()`` as listed."""
    options: dict[str, Any] = {
        "api_key": KEY,
        "base_url": spy.fake.api_origin,
        "poll": FAST,
        **client_options,
    }
    transport = httpx.MockTransport(spy.handle)
    if mode == "sync":
        with mj.Client(provider, http_client=httpx.Client(transport=transport), **options) as c:
            job = None
            for name, kw in steps:
                job = c.submit(**kw) if name == "submit" else c.wait(job, **kw)
            return job

    async def main() -> Any:
        async with mj.AsyncClient(
            provider, http_client=httpx.AsyncClient(transport=transport), **options
        ) as client:
            job = None
            for name, kw in steps:
                job = await (client.submit(**kw) if name == "submit" else client.wait(job, **kw))
            return job

    return anyio.run(main, backend=mode)


IMAGE = {"kind": "image", "model": "openai/gpt-image-2", "prompt": "a boat"}


def test_extra_headers_go_on_the_submit_only(mode: str) -> None:
    spy = Spy()
    headers = {"X-Trace-Id": "trace-42", "OpenAI-Organization": "org 7"}
    submit = {**IMAGE, "extra_headers": headers, "quality": "high"}
    job = run(mode, spy, [("submit", submit), ("wait", {})])
    assert job.status is mj.JobStatus.SUCCEEDED
    post, *polls = spy.requests
    assert post.method == "POST"
    assert post.headers["x-trace-id"] == "trace-42"
    assert post.headers["openai-organization"] == "org 7"
    assert post.headers["authorization"] == f"Bearer {KEY}"
    assert post.headers["idempotency-key"]
    sent = spy.fake.requests[0].json
    assert sent["quality"] == "high"  # other keywords still reach the provider
    assert "extra_headers" not in sent and "timeout" not in sent
    assert polls and all("x-trace-id" not in r.headers for r in polls)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer other"},
        {"idempotency-key": "mine"},
        {"Content-Type": "text/plain"},
        {"X-Bad": "line\r\nInjected: yes"},
        {"X-Bad": "caf\u00e9"},
        {"Bad Name": "v"},
        {"X-Number": 7},
        ["X-List", "v"],
    ],
)
def test_unusable_extra_headers_are_refused_before_any_request(mode: str, headers: Any) -> None:
    spy = Spy()
    with pytest.raises(mj.ConfigurationError, match="extra_headers") as caught:
        run(mode, spy, [("submit", {**IMAGE, "extra_headers": headers})])
    assert spy.requests == []
    assert "Injected" not in str(caught.value) and "other" not in str(caught.value)


def test_a_per_call_timeout_replaces_the_clients_for_that_submit(mode: str) -> None:
    spy = Spy()
    job = run(mode, spy, [("submit", {**IMAGE, "timeout": 7.5}), ("wait", {})], timeout=20)
    assert job.done
    post, *polls = spy.requests
    assert post.extensions["timeout"] == dict.fromkeys(("connect", "read", "write", "pool"), 7.5)
    assert polls and all(r.extensions["timeout"]["read"] <= 20 for r in polls)
    assert all(r.extensions["timeout"]["connect"] > 7.5 for r in polls)


def test_httpx_timeouts_are_taken_by_the_client_and_by_submit(mode: str) -> None:
    spy = Spy()
    per_call = httpx.Timeout(30.0, connect=2.0)
    client_wide = httpx.Timeout(None, connect=5.0)
    steps = [("submit", {**IMAGE, "timeout": per_call}), ("wait", {"timeout": 60})]
    run(mode, spy, steps, timeout=client_wide)
    post, *polls = spy.requests
    assert post.extensions["timeout"] == {"connect": 2.0, "read": 30.0, "write": 30.0, "pool": 30.0}
    for poll in polls:  # no limit but the wait's deadline, cut per request
        limits = poll.extensions["timeout"]
        assert limits["connect"] == 5.0
        assert all(0 < limits[part] <= 60 for part in ("read", "write", "pool"))


def test_without_a_wait_the_client_timeout_sets_every_part() -> None:
    spy = Spy()
    with mj.Client(
        "therouter",
        api_key=KEY,
        base_url=spy.fake.api_origin,
        timeout=httpx.Timeout(9.0, read=None),
        http_client=httpx.Client(transport=httpx.MockTransport(spy.handle)),
    ) as client:
        client.get(client.submit(**IMAGE).id)
    for request in spy.requests:
        assert request.extensions["timeout"] == {
            "connect": 9.0,
            "read": None,
            "write": 9.0,
            "pool": 9.0,
        }


@pytest.mark.parametrize(
    "timeout", [0, -1.0, math.inf, math.nan, "10", True, httpx.Timeout(5.0, read=-1.0)]
)
def test_unusable_timeouts_are_configuration_errors(mode: str, timeout: Any) -> None:
    spy = Spy()
    with pytest.raises(mj.ConfigurationError, match="timeout"):
        run(mode, spy, [("submit", {**IMAGE, "timeout": timeout})])
    with pytest.raises(mj.ConfigurationError, match="timeout"):
        run(mode, spy, [], timeout=timeout)
    assert spy.requests == []
