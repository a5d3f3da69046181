"""The ASGI webhook receiver, in-process through httpx.ASGITransport, on asyncio and trio."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

import mediajobs as mj
from mediajobs.testing import webhook_event
from mediajobs.webhooks import WebhookVerifier, sign, webhook_app

pytestmark = pytest.mark.anyio

SECRET = "whsec_app_secret"
JOB_ID = "vj_app0000000000000000000001"


def delivery(status: str = "completed", secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    data = {"id": JOB_ID, "status": status, "unsigned_urls": ["https://openrouter.ai/x?index=0"]}
    body = json.dumps(webhook_event(data)).encode()
    return body, {
        "content-type": "application/json",
        "x-openrouter-signature": sign(body, secret, int(time.time())),
    }


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hooks.test")


async def test_verified_delivery_answers_204_and_hands_the_event_over() -> None:
    events: list[mj.WebhookEvent[mj.JobData]] = []
    app = webhook_app(WebhookVerifier("openrouter", secret=SECRET), on_event=events.append)
    body, headers = delivery()
    async with client_for(app) as http:
        first = await http.post("/", content=body, headers=headers)
        again = await http.post("/", content=body, headers=headers)
    assert (first.status_code, first.content) == (204, b"")
    assert again.status_code == 204  # a repeat is acknowledged, so the provider stops
    assert len(events) == 1  # ... but reported once
    assert events[0].job.id == JOB_ID and events[0].job.status is mj.JobStatus.SUCCEEDED
    assert events[0].duplicate is False


async def test_duplicates_are_handed_over_when_asked() -> None:
    events: list[Any] = []
    app = webhook_app(
        WebhookVerifier("openrouter", secret=SECRET), on_event=events.append, duplicates=True
    )
    body, headers = delivery()
    async with client_for(app) as http:
        for _ in range(2):
            assert (await http.post("/", content=body, headers=headers)).status_code == 204
    assert [event.duplicate for event in events] == [False, True]


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda body, headers: (body + b" ", headers), "bad_signature"),
        (lambda body, headers: (body, {"content-type": "application/json"}), "missing_signature"),
        (
            lambda body, headers: (body, {**headers, "x-openrouter-signature": "t=x"}),
            "malformed_signature",
        ),
    ],
)
async def test_refused_delivery_answers_400_with_the_reason(mutate: Any, reason: str) -> None:
    events: list[Any] = []
    app = webhook_app(WebhookVerifier("openrouter", secret=SECRET), on_event=events.append)
    body, headers = mutate(*delivery())
    async with client_for(app) as http:
        response = await http.post("/", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == reason
    assert SECRET not in response.text
    assert events == []


async def test_routing_method_and_size_limits() -> None:
    app = webhook_app(
        WebhookVerifier("openrouter", secret=SECRET), path="/hooks/openrouter", max_body=2048
    )
    body, headers = delivery()
    async with client_for(app) as http:
        wrong_method = await http.get("/hooks/openrouter")
        wrong_path = await http.post("/elsewhere", content=body, headers=headers)
        too_big = await http.post("/hooks/openrouter", content=b"x" * 4096, headers=headers)
        fine = await http.post("/hooks/openrouter", content=body, headers=headers)
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "POST")
    assert wrong_path.status_code == 404
    assert too_big.status_code == 413
    assert fine.status_code == 204


async def test_mounted_under_a_root_path() -> None:
    app = webhook_app(WebhookVerifier("openrouter", secret=SECRET), path="/")
    body, headers = delivery()
    transport = httpx.ASGITransport(app=app, root_path="/hooks")
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks.test") as http:
        response = await http.post("/hooks/", content=body, headers=headers)
    assert response.status_code == 204


async def test_sync_handlers_run_in_a_worker_thread_and_async_ones_are_awaited() -> None:
    threads: list[int] = []
    awaited: list[str] = []

    def sync_handler(event: Any) -> None:
        threads.append(threading.get_ident())

    async def async_handler(event: Any) -> None:
        await anyio.lowlevel.checkpoint()
        awaited.append(event.id)

    verifier = WebhookVerifier("openrouter", secret=SECRET)
    body, headers = delivery("completed")
    async with client_for(webhook_app(verifier, on_event=sync_handler)) as http:
        await http.post("/", content=body, headers=headers)
    body, headers = delivery("failed")
    async with client_for(webhook_app(verifier, on_event=async_handler)) as http:
        await http.post("/", content=body, headers=headers)
    assert len(threads) == 1 and threads[0] != threading.get_ident()
    assert awaited == [f"{JOB_ID}-failed"]


async def test_the_answer_is_sent_before_the_handler_finishes() -> None:
    """Drive the app by hand: the 204 is out while the handler is still blocked."""
    release = anyio.Event()
    finished: list[str] = []

    async def slow_handler(event: Any) -> None:
        await release.wait()
        finished.append(event.id)

    app = webhook_app(WebhookVerifier("openrouter", secret=SECRET), on_event=slow_handler)
    body, headers = delivery()
    sent: list[dict[str, Any]] = []
    answered = anyio.Event()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    async with anyio.create_task_group() as tg:
        tg.start_soon(app, scope, receive, send)
        await answered.wait()
        assert sent[0]["status"] == 204
        assert finished == []  # the handler has not run to completion yet
        release.set()
    assert finished == [f"{JOB_ID}-completed"]


async def test_a_failing_handler_is_logged_and_the_answer_stands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: Any) -> None:
        raise RuntimeError("handler bug")

    app = webhook_app(WebhookVerifier("openrouter", secret=SECRET), on_event=broken)
    body, headers = delivery()
    with caplog.at_level(logging.ERROR, logger="mediajobs.webhooks"):
        async with client_for(app) as http:
            response = await http.post("/", content=body, headers=headers)
    assert response.status_code == 204
    assert "on_event handler failed" in caplog.text and "handler bug" in caplog.text


async def test_a_parser_crash_is_not_swallowed() -> None:
    def parse(body: bytes, headers: Mapping[str, str]) -> Any:
        raise RuntimeError("store unavailable")

    async with client_for(webhook_app(parse)) as http:
        with pytest.raises(RuntimeError, match="store unavailable"):
            await http.post("/", content=b"{}")


async def test_plain_and_async_callables_are_parsers() -> None:
    seen: list[tuple[bytes, str | None]] = []

    def parse(body: bytes, headers: Mapping[str, str]) -> Any:
        seen.append((body, headers.get("x-test")))
        return object()

    async def aparse(body: bytes, headers: Mapping[str, str]) -> Any:
        seen.append((body, headers.get("x-test")))
        raise mj.WebhookVerificationError("nope", reason="bad_signature")

    async with client_for(webhook_app(parse)) as http:
        assert (await http.post("/", content=b"a", headers={"X-Test": "1"})).status_code == 204
    async with client_for(webhook_app(aparse)) as http:
        response = await http.post("/", content=b"b", headers={"X-Test": "2"})
        assert response.json() == {"error": "bad_signature", "message": "nope"}
    assert seen == [(b"a", "1"), (b"b", "2")]
    with pytest.raises(TypeError):
        webhook_app(42)  # type: ignore[arg-type]


async def test_lifespan_messages_are_answered() -> None:
    app = webhook_app(WebhookVerifier("openrouter", secret=SECRET))
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
