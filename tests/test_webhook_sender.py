"""The fake's WebhookSender against real loopback receivers: retries, faults and the whole
chain into the ASGI receiver served by uvicorn."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

import mediajobs as mj
from mediajobs.testing import WebhookSender, webhook_event
from mediajobs.webhooks import WebhookVerifier, is_newer, webhook_app

SECRET = "whsec_sender_secret"
FAST = {"backoff": 0.001, "max_backoff": 0.005}


def job_body(n: int = 1, status: str = "completed") -> dict[str, Any]:
    job_id = f"vj_sender{n:020d}"
    body: dict[str, Any] = {
        "id": job_id,
        "polling_url": f"http://127.0.0.1/api/v1/videos/{job_id}",
        "status": status,
        "generation_id": f"gen-{n}",
    }
    if status == "completed":
        body["unsigned_urls"] = [f"http://127.0.0.1/api/v1/videos/{job_id}/content?index=0"]
        body["usage"] = {"cost": 0.25, "is_byok": False}
    return body


@dataclass
class Receiver:
    """A stdlib HTTP receiver that verifies like a client would, with scripted refusals."""

    url: str
    verifier: WebhookVerifier
    script: list[Any] = field(default_factory=list)  # status codes or "cut", used first
    events: list[mj.WebhookEvent[mj.JobData]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = dict(self.headers.items())
            with state.lock:
                state.requests.append((headers, body))
                step = state.script.pop(0) if state.script else None
            if step == "cut":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if step is not None:
                self._answer(step, b"")
                return
            try:
                event = state.verifier.parse_webhook(body, self.headers)
            except mj.WebhookVerificationError as exc:
                with state.lock:
                    state.refusals.append(exc.reason)
                self._answer(400, json.dumps({"error": exc.reason}).encode())
                return
            with state.lock:
                state.events.append(event)
            self._answer(204, b"")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Receiver(
        url=f"http://127.0.0.1:{server.server_address[1]}/hook",
        verifier=WebhookVerifier("openrouter", secret=SECRET),
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def test_a_delivery_is_signed_exactly_as_documented(receiver: Receiver) -> None:
    payload = job_body()
    with WebhookSender(SECRET, receiver.url, **FAST) as sender:
        sender.deliver(payload, "succeeded", model="bytedance/seedance-2.0")
        assert sender.flush(timeout=10)
    [delivery] = sender.deliveries
    assert (delivery.delivered, delivery.attempts, delivery.status_codes) == (True, 1, [204])
    [(headers, body)] = receiver.requests
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["x-openrouter-idempotency-key"] == f"{payload['id']}-completed"
    assert lower["content-type"] == "application/json"
    assert lower["x-openrouter-signature"].startswith("t=")
    event = json.loads(body)
    assert event["type"] == "video.generation.completed"
    assert event["data"] == {
        "id": payload["id"],
        "status": "completed",
        "generation_id": "gen-1",
        "model": "bytedance/seedance-2.0",
        "unsigned_urls": payload["unsigned_urls"],
        "usage": {"cost": 0.25, "is_byok": False},
    }
    assert body == delivery.body
    [received] = receiver.events
    assert received.job.status is mj.JobStatus.SUCCEEDED and received.job.cost == 0.25


def test_refusals_and_cut_connections_are_retried_with_a_fresh_signature(
    receiver: Receiver,
) -> None:
    receiver.script = [503, "cut", 500]
    with WebhookSender(SECRET, receiver.url, attempts=5, **FAST) as sender:
        sender.deliver(job_body(), "completed")
        assert sender.flush(timeout=10)
    [delivery] = sender.deliveries
    assert delivery.delivered and delivery.attempts == 4
    assert delivery.status_codes == [503, 500, 204]
    assert delivery.error is not None  # the cut connection
    assert len(receiver.events) == 1 and len(receiver.requests) == 4


def test_attempts_are_bounded(receiver: Receiver) -> None:
    receiver.script = [500] * 10
    with WebhookSender(SECRET, receiver.url, attempts=3, **FAST) as sender:
        sender.deliver(job_body(), "completed")
        assert sender.flush(timeout=10)
    [delivery] = sender.deliveries
    assert (delivery.delivered, delivery.attempts, delivery.status_codes) == (False, 3, [500] * 3)
    assert len(receiver.requests) == 3


def test_an_unreachable_receiver_is_given_up_on() -> None:
    with WebhookSender(SECRET, closed_port_url(), attempts=3, **FAST) as sender:
        sender.deliver(job_body(), "completed")
        assert sender.flush(timeout=10)
    [delivery] = sender.deliveries
    assert (delivery.delivered, delivery.attempts, delivery.status_codes) == (False, 3, [])
    assert delivery.error is not None and "ConnectError" in delivery.error


def test_duplicate_deliveries_are_reported_once(receiver: Receiver) -> None:
    with WebhookSender(SECRET, receiver.url, duplicate=True, **FAST) as sender:
        sender.deliver(job_body(), "completed")
        assert sender.flush(timeout=10)
    assert [d.variant for d in sender.deliveries] == ["event", "duplicate"]
    assert all(d.delivered for d in sender.deliveries)
    assert [e.duplicate for e in receiver.events] == [False, True]
    assert len({e.id for e in receiver.events}) == 1


def test_a_stale_event_after_the_terminal_one_moves_nothing_backwards(receiver: Receiver) -> None:
    with WebhookSender(SECRET, receiver.url, out_of_order=True, **FAST) as sender:
        sender.deliver(job_body(), "completed")
        sender.deliver(job_body(2, "failed") | {"error": "boom"}, "failed")
        assert sender.flush(timeout=10)
    assert [(d.variant, d.status) for d in sender.deliveries] == [
        ("event", "completed"),
        ("stale", "in_progress"),
        ("event", "failed"),
        ("stale", "in_progress"),
    ]
    statuses: dict[str, mj.JobStatus] = {}
    for event in receiver.events:  # in arrival order, as a store would apply them
        old = statuses.get(event.job.id)
        if old is None or is_newer(old, event.job.status):
            statuses[event.job.id] = event.job.status
    assert [e.job.status for e in receiver.events] == [
        mj.JobStatus.SUCCEEDED,
        mj.JobStatus.RUNNING,
        mj.JobStatus.FAILED,
        mj.JobStatus.RUNNING,
    ]
    assert receiver.events[1].job.artifacts == []  # the stale event has no outputs
    assert list(statuses.values()) == [mj.JobStatus.SUCCEEDED, mj.JobStatus.FAILED]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("bad_signature", "bad_signature"), ("stale_timestamp", "stale_timestamp")],
)
def test_forged_and_stale_deliveries_are_refused(
    receiver: Receiver, fault: str, reason: str
) -> None:
    with WebhookSender(SECRET, receiver.url, attempts=2, **FAST, **{fault: True}) as sender:
        sender.deliver(job_body(), "completed")
        assert sender.flush(timeout=10)
    [delivery] = sender.deliveries
    assert getattr(delivery, fault) is True
    assert (delivery.delivered, delivery.status_codes) == (False, [400, 400])
    assert receiver.refusals == [reason, reason]
    assert receiver.events == []


def test_lost_deliveries(receiver: Receiver) -> None:
    lost = job_body(1)["id"]
    with WebhookSender(SECRET, receiver.url, drop_jobs={lost}, **FAST) as sender:
        sender.deliver(job_body(1), "completed")
        sender.deliver(job_body(2), "completed")
        assert sender.flush(timeout=10)
    assert [(d.job_id, d.dropped, d.delivered) for d in sender.deliveries] == [
        (lost, True, False),
        (job_body(2)["id"], False, True),
    ]
    assert [e.job.id for e in receiver.events] == [job_body(2)["id"]]


def test_lost_deliveries_by_probability_are_repeatable(receiver: Receiver) -> None:
    def run() -> list[bool]:
        with WebhookSender(SECRET, receiver.url, drop_probability=0.5, seed=7, **FAST) as sender:
            for n in range(20):
                sender.deliver(job_body(n), "completed")
            assert sender.flush(timeout=10)
        return [d.dropped for d in sender.deliveries]

    first, second = run(), run()
    assert first == second and 0 < sum(first) < 20
    assert len(receiver.events) == 2 * first.count(False)


def test_close_stops_retrying_at_once(receiver: Receiver) -> None:
    receiver.script = [500] * 100
    sender = WebhookSender(SECRET, receiver.url, attempts=50, backoff=30.0, max_backoff=30.0)
    sender.deliver(job_body(), "completed")
    while not receiver.requests:
        time.sleep(0.01)
    sender.close(timeout=0.05)
    assert sender.deliveries[0].attempts < 50
    with pytest.raises(RuntimeError):
        sender.deliver(job_body(), "completed")


def test_a_delivery_needs_a_url_and_a_job_body() -> None:
    with WebhookSender(SECRET) as sender:
        with pytest.raises(ValueError, match="callback URL"):
            sender.deliver(job_body())
        with pytest.raises(ValueError):
            sender.deliver({"status": "completed"}, url="http://127.0.0.1:9/hook")
        with pytest.raises(ValueError, match="http"):
            sender.deliver(job_body(), url="ftp://127.0.0.1/hook")
    assert sender.deliveries == []
    with pytest.raises(ValueError):
        WebhookSender(SECRET, attempts=0)


def test_an_unusable_url_is_recorded_and_the_queue_goes_on(receiver: Receiver) -> None:
    with WebhookSender(SECRET, attempts=2, **FAST) as sender:
        sender.deliver(job_body(1), url="http://\x00/hook")  # httpx refuses it outright
        sender.deliver(job_body(2), url=receiver.url)
        assert sender.flush(timeout=10)
    bad, good = sender.deliveries
    assert not bad.delivered and bad.error is not None and "InvalidURL" in bad.error
    assert good.delivered and [e.job.id for e in receiver.events] == [job_body(2)["id"]]


# ------------------------------------------------------------------ uvicorn + the ASGI app


@pytest.fixture
def asgi_receiver() -> Iterator[tuple[str, list[Any]]]:
    import uvicorn

    events: list[Any] = []
    got = threading.Condition()

    def on_event(event: Any) -> None:
        with got:
            events.append(event)
            got.notify_all()

    app = webhook_app(
        WebhookVerifier("openrouter", secret=SECRET), on_event=on_event, path="/hooks/or"
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", http="h11")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hooks/or", events
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_the_sender_and_the_asgi_receiver_over_real_http(
    asgi_receiver: tuple[str, list[Any]],
) -> None:
    url, events = asgi_receiver
    with WebhookSender(SECRET, url, duplicate=True, out_of_order=True, **FAST) as sender:
        sender.deliver(job_body(1), "completed")
        sender.deliver(job_body(2, "failed") | {"error": "nope"}, "failed")
        assert sender.flush(timeout=10)
    assert all(d.delivered and d.status_codes == [204] for d in sender.deliveries)
    assert len(sender.deliveries) == 6  # each: event, duplicate, stale
    deadline = time.monotonic() + 10
    while len(events) < 4 and time.monotonic() < deadline:  # handlers run after the answer
        time.sleep(0.01)
    # The duplicates were answered 204 but not handed over; the stale events were.
    assert sorted((e.job.id[-1], e.job.status.value) for e in events) == [
        ("1", "running"),
        ("1", "succeeded"),
        ("2", "failed"),
        ("2", "running"),
    ]
    assert not any(e.duplicate for e in events)


def test_build_event_for_every_terminal_status() -> None:
    for raw in ("completed", "failed", "cancelled", "expired"):
        event = webhook_event(job_body(status=raw), created_at=0)
        assert event["type"] == f"video.generation.{raw}"
        assert event["created_at"] == "1970-01-01T00:00:00.000Z"


def test_an_in_process_receiver_through_a_transport() -> None:
    verifier = WebhookVerifier("openrouter", secret=SECRET)
    events: list[mj.WebhookEvent[mj.JobData]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        try:
            events.append(verifier.parse_webhook(request.content, request.headers))
        except mj.WebhookVerificationError as exc:
            return httpx.Response(400, json={"error": exc.reason})
        return httpx.Response(204)

    transport = httpx.MockTransport(handler)
    with WebhookSender(SECRET, "http://app.test/hook", transport=transport, **FAST) as sender:
        sender.deliver(job_body(), "completed")
        sender.bad_signature = True  # switches apply to deliveries queued from then on
        sender.deliver(job_body(2), "completed")
        assert sender.flush(timeout=10)
    assert [d.status_codes[-1] for d in sender.deliveries] == [204, 400]
    assert [e.job.id for e in events] == [job_body()["id"]]
