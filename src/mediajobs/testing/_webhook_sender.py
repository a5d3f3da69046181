"""Send signed OpenRouter-shaped webhook deliveries, with the faults real senders have.

A :class:`WebhookSender` posts events to callback URLs from one background thread, in the order
they were asked for, retrying a refused or failed delivery with exponential backoff (bounded
attempts). Switches turn on the faults a receiver must survive: repeated deliveries, a stale
non-terminal event arriving after the terminal one, a wrong signature, a stale timestamp, and
lost deliveries. Every delivery is recorded in :attr:`WebhookSender.deliveries`.

The body is OpenRouter's: ``{"type": "video.generation.<status>", "created_at": ISO, "data":
{id, status, generation_id, model, unsigned_urls?, usage?, error?}}`` with
``X-OpenRouter-Idempotency-Key: <id>-<status>`` and ``X-OpenRouter-Signature: t=<unix>,v1=<hex>``.
"""

from __future__ import annotations

import contextlib
import json
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential,
)

from .._version import __version__
from .._webhooks import DEFAULT_TOLERANCE, sign
from ._scenario import WEBHOOK_FAULTS

__all__ = ["FAULTS", "WebhookDelivery", "WebhookSender", "webhook_event"]

FAULTS = WEBHOOK_FAULTS
"""The faults a single delivery can be given (``deliver(..., faults=...)``)."""

# The fake's normalized names → OpenRouter's raw ones (raw names pass through unchanged).
_RAW_STATUS = {"queued": "pending", "running": "in_progress", "succeeded": "completed"}
_TERMINAL = frozenset({"completed", "failed", "cancelled", "expired"})
_DATA_FIELDS = ("id", "status", "generation_id", "model", "unsigned_urls", "usage", "error")


def webhook_event(
    job_payload: Mapping[str, Any],
    status: str | None = None,
    *,
    model: str | None = None,
    created_at: float | None = None,
) -> dict[str, Any]:
    """Build an OpenRouter webhook event from a job body (a poll's answer).

    Args:
        job_payload: The job body: ``id``, ``status`` and any of ``generation_id``, ``model``,
            ``unsigned_urls``, ``usage``, ``error`` (other fields are left out).
        status: The status to report, raw (``"completed"``) or normalized (``"succeeded"``);
            the body's own ``status`` by default.
        model: The model, when the job body does not name it.
        created_at: The event time in unix seconds (now by default).

    Returns:
        ``{"type": "video.generation.<status>", "created_at": ISO, "data": {…}}``.

    Raises:
        ValueError: If the job body has no string ``id`` or no status is known.
    """
    job_id = job_payload.get("id")
    raw = status if status is not None else job_payload.get("status")
    if not isinstance(job_id, str) or not isinstance(raw, str):
        raise ValueError("a job body needs a string 'id' and a status")
    raw = _RAW_STATUS.get(raw, raw)
    data = {name: job_payload[name] for name in _DATA_FIELDS if job_payload.get(name) is not None}
    data["status"] = raw
    if "model" not in data and model is not None:
        data["model"] = model
    if raw not in _TERMINAL:
        for name in ("unsigned_urls", "usage", "error"):
            data.pop(name, None)
    moment = datetime.fromtimestamp(time.time() if created_at is None else created_at, timezone.utc)
    return {
        "type": f"video.generation.{raw}",
        "created_at": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
        "data": data,
    }


@dataclass
class WebhookDelivery:
    """One delivery the sender made (or dropped), and what came of it."""

    job_id: str
    """The job the event is about."""
    status: str
    """The raw status the event reports."""
    url: str
    """Where it was posted."""
    idempotency_key: str
    """``<id>-<status>``, as sent in ``X-OpenRouter-Idempotency-Key``."""
    variant: str
    """``"event"``, ``"duplicate"`` (a repeat) or ``"stale"`` (the out-of-order one)."""
    bad_signature: bool = False
    """Whether it was signed with the wrong secret."""
    stale_timestamp: bool = False
    """Whether its signature's timestamp was outside the window."""
    body: bytes = b""
    """The body as sent."""
    attempts: int = 0
    """How many POSTs were made."""
    status_codes: list[int] = field(default_factory=list)
    """The receiver's answer to each attempt that got one."""
    delivered: bool = False
    """Whether an attempt was answered 2xx."""
    dropped: bool = False
    """Whether the lost-delivery fault swallowed it (nothing was sent)."""
    error: str | None = None
    """The last connection error, when an attempt failed without an answer."""


class _Refused(Exception):
    """An attempt that the receiver answered with a non-2xx status, or that failed."""


class WebhookSender:
    """Post signed OpenRouter webhook events to callback URLs from a background thread.

    Args:
        secret: The signing secret (the receiver's ``webhook_secret``).
        url: The default callback URL (a job's own ``callback_url`` can be given per delivery);
            loopback ``http://`` is fine.
        attempts: POSTs per delivery at most (the first plus retries).
        backoff: The first retry delay in seconds; doubled on each retry.
        max_backoff: The longest retry delay.
        timeout: The timeout of each POST, in seconds.
        duplicate: Send every event twice (same idempotency key, fresh signature).
        out_of_order: After a terminal event, also send a stale ``in_progress`` one.
        bad_signature: Sign with the wrong secret.
        stale_timestamp: Sign correctly, but with a timestamp far outside the 300 s window.
        drop_probability: The chance that a delivery is lost (nothing sent).
        drop_jobs: Job ids whose deliveries are all lost.
        seed: Seeds the drop decisions, for repeatable tests.
        clock: Returns unix seconds, for signatures and ``created_at``.
        transport: An httpx transport instead of real HTTP (for in-process receivers).

    Raises:
        ValueError: If ``attempts`` is below 1.

    Example:
        >>> with WebhookSender("whsec_test", "http://127.0.0.1:8001/hook") as sender:
        ...     sender.deliver(job_body, "completed")
        ...     sender.flush(timeout=5)
    """

    def __init__(
        self,
        secret: str,
        url: str | None = None,
        *,
        attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: float = 10.0,
        duplicate: bool = False,
        out_of_order: bool = False,
        bad_signature: bool = False,
        stale_timestamp: bool = False,
        drop_probability: float = 0.0,
        drop_jobs: Iterable[str] = (),
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.secret = secret
        self.url = url
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.duplicate = duplicate
        self.out_of_order = out_of_order
        self.bad_signature = bad_signature
        self.stale_timestamp = stale_timestamp
        self.drop_probability = drop_probability
        self.drop_jobs = set(drop_jobs)
        self.clock = clock
        self.deliveries: list[WebhookDelivery] = []
        self._random = random.Random(seed)  # noqa: S311  (a test fault, not cryptography)
        self._http = httpx.Client(
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": f"mediajobs-fake-webhooks/{__version__}"},
        )
        self._queue: queue.Queue[WebhookDelivery | None] = queue.Queue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._closing = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="mediajobs-webhook-sender", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"WebhookSender(url={self.url!r}, deliveries={len(self.deliveries)})"

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def deliver(
        self,
        job_payload: Mapping[str, Any],
        status: str | None = None,
        *,
        url: str | None = None,
        model: str | None = None,
        faults: Iterable[str] = (),
    ) -> None:
        """Queue the event for a job's status (and whatever the fault switches add).

        Returns at once; the background thread posts it. Deliveries go out one at a time in
        the order they were queued.

        Args:
            job_payload: The job body, as a poll would answer it.
            status: The status to report (raw or normalized); the body's own by default.
            url: The callback URL (the sender's ``url`` by default).
            model: The model, when the job body does not name it.
            faults: Faults for this delivery on top of the sender's switches: any of
                ``"duplicate"``, ``"out_of_order"``, ``"bad_signature"``,
                ``"stale_timestamp"``, ``"lost"`` (see :data:`FAULTS`).

        Raises:
            ValueError: If there is no http(s) URL, or the job body has no id or status.
            RuntimeError: If the sender is closed.
        """
        target = url or self.url
        if not target:
            raise ValueError("no callback URL: give url= here or to WebhookSender()")
        if not target.startswith(("http://", "https://")):
            raise ValueError(f"the callback URL must be http(s): {target!r}")
        if self._closing.is_set():
            raise RuntimeError("the webhook sender is closed")
        extra = set(faults)
        if unknown := extra - FAULTS:
            raise ValueError(f"unknown webhook faults: {sorted(unknown)}")
        event = webhook_event(job_payload, status, model=model, created_at=self.clock())
        events = [(event, "event")]
        if self.duplicate or "duplicate" in extra:
            events.append((event, "duplicate"))
        out_of_order = self.out_of_order or "out_of_order" in extra
        if out_of_order and event["data"]["status"] in _TERMINAL:
            stale = webhook_event(event["data"], "in_progress", created_at=self.clock() - 1)
            events.append((stale, "stale"))
        for item, variant in events:
            self._enqueue(target, item, variant, extra)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued delivery has finished (delivered or given up).

        Args:
            timeout: Seconds to wait at most; ``None`` waits as long as it takes.

        Returns:
            ``True`` when nothing is pending any more.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Finish pending deliveries (for up to ``timeout`` seconds), then stop the thread.

        Deliveries still retrying when the time is up make no further attempts.

        Args:
            timeout: Seconds given to pending deliveries.
        """
        if self._closing.is_set():
            return
        self.flush(timeout)
        self._closing.set()
        self._queue.put(None)
        self._thread.join(timeout)  # the thread closes the HTTP client as it ends

    # ------------------------------------------------------------------ internals

    def _enqueue(
        self, url: str, event: dict[str, Any], variant: str, faults: AbstractSet[str]
    ) -> None:
        data = event["data"]
        delivery = WebhookDelivery(
            job_id=data["id"],
            status=data["status"],
            url=url,
            idempotency_key=f"{data['id']}-{data['status']}",
            variant=variant,
            bad_signature=self.bad_signature or "bad_signature" in faults,
            stale_timestamp=self.stale_timestamp or "stale_timestamp" in faults,
            body=json.dumps(event, separators=(",", ":")).encode(),
        )
        lost = (
            "lost" in faults
            or data["id"] in self.drop_jobs
            or self._random.random() < self.drop_probability
        )
        with self._lock:
            self.deliveries.append(delivery)
            if lost:
                delivery.dropped = True
                return
            self._pending += 1
        self._queue.put(delivery)

    def _run(self) -> None:
        try:
            while (delivery := self._queue.get()) is not None:
                try:
                    self._send(delivery)
                except Exception as exc:  # recorded: the thread keeps serving the queue
                    delivery.error = f"{type(exc).__name__}: {exc}"
                finally:
                    with self._idle:
                        self._pending -= 1
                        self._idle.notify_all()
        finally:
            self._http.close()

    def _send(self, delivery: WebhookDelivery) -> None:
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts) | stop_when_event_set(self._closing),
            wait=wait_exponential(multiplier=self.backoff, max=self.max_backoff),
            retry=retry_if_exception_type(_Refused),
            sleep=self._pause,
            reraise=False,
        )
        with contextlib.suppress(RetryError):  # given up: the record says how attempts went
            retrying(self._attempt, delivery)

    def _pause(self, seconds: float) -> None:
        """Sleep between attempts; closing the sender ends the sleep at once."""
        self._closing.wait(seconds)

    def _attempt(self, delivery: WebhookDelivery) -> None:
        delivery.attempts += 1
        headers = {
            "Content-Type": "application/json",
            "X-OpenRouter-Idempotency-Key": delivery.idempotency_key,
            "X-OpenRouter-Signature": self._signature(delivery),
        }
        try:
            response = self._http.post(delivery.url, content=delivery.body, headers=headers)
        except httpx.HTTPError as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
            raise _Refused(delivery.error) from exc
        delivery.status_codes.append(response.status_code)
        if not response.is_success:
            raise _Refused(f"answered {response.status_code}")
        delivery.delivered = True

    def _signature(self, delivery: WebhookDelivery) -> str:
        now = int(self.clock())
        if delivery.stale_timestamp:
            now -= int(DEFAULT_TOLERANCE) * 10
        secret = f"{self.secret}-wrong" if delivery.bad_signature else self.secret
        return sign(delivery.body, secret, now)
