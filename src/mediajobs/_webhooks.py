"""Webhook deliveries: signature checks, event parsing and de-duplication, with no I/O.

A provider that sends webhooks has a :class:`WebhookFormat`: how its deliveries are signed and
where the job payload sits in the body. The job payload is then read by the provider's dialect
exactly like a status poll (:meth:`~mediajobs.Dialect.parse_poll`), so a webhook and a poll of
the same job give the same :class:`~mediajobs.JobData`.

OpenRouter signs with ``X-OpenRouter-Signature: t=<unix>,v1=<hex>`` where the hex is
``HMAC-SHA256(secret, "<t>,<raw body>")``; several ``v1`` values may be present while a secret
is rotated, and several secrets may be configured for the same reason. The clock is always
passed in (``now``), so every rule here tests without waiting.

Every failure raises :class:`~mediajobs.WebhookVerificationError` with a ``reason`` code; no
other exception escapes whatever bytes arrive, and no message carries a secret or a digest.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Generic, Protocol, TypeVar

import httpx

from ._exceptions import ConfigurationError, MediaJobsError
from ._models import JobData
from ._status import is_newer
from ._webhook_formats import (
    DEFAULT_TOLERANCE,
    REASONS,
    OpenRouterWebhooks,
    WebhookFormat,
    WebhookPayload,
    _refuse,
    _secrets_of,
    header_value,
    sign,
    verify_signature,
)
from .dialects import DIALECTS, Dialect

__all__ = [
    "DEFAULT_TOLERANCE",
    "REASONS",
    "DeliveryDeduplicator",
    "SeenDeliveries",
    "OpenRouterWebhooks",
    "WebhookEvent",
    "WebhookEventData",
    "WebhookFormat",
    "WebhookPayload",
    "WebhookVerifier",
    "header_value",
    "is_newer",
    "parse_event",
    "sign",
    "verify_signature",
    "webhook_format_for",
]

J = TypeVar("J")
K = TypeVar("K")


def webhook_format_for(dialect: Dialect) -> WebhookFormat | None:
    """Return a dialect's webhook format (its ``webhook_format`` attribute).

    Args:
        dialect: The provider's dialect.

    Returns:
        The format, or ``None`` for a provider that sends no webhooks (TheRouter, …).
    """
    attached: WebhookFormat | None = getattr(dialect, "webhook_format", None)
    return attached


# ------------------------------------------------------------------------- events


@dataclass(frozen=True)
class WebhookEventData:
    """A verified delivery, read into the one job model (no handle, no de-duplication yet)."""

    type: str
    """The event type, e.g. ``"video.generation.completed"``."""
    id: str
    """The delivery's idempotency key (the same for every retry of one event)."""
    job: JobData
    """The job as the event describes it, parsed like a status poll."""
    raw_status: str
    """The job status as the provider sent it."""
    signed_at: datetime
    """The signature's timestamp (timezone-aware)."""


@dataclass(frozen=True)
class WebhookEvent(Generic[J]):
    """One verified webhook delivery, as ``client.parse_webhook`` returns it.

    ``job`` is a handle (``Job`` / ``AsyncJob``) from a client, or a
    :class:`~mediajobs.JobData` from a standalone :class:`WebhookVerifier`.
    """

    type: str
    """The event type, e.g. ``"video.generation.completed"``."""
    id: str
    """The delivery's idempotency key: the same for every retry of one event."""
    job: J
    """The job the event is about."""
    duplicate: bool
    """``True`` when this delivery id was already reported (a retry or a replay)."""
    received_at: datetime
    """When the delivery was verified (timezone-aware, UTC)."""

    def with_job(self, job: K) -> WebhookEvent[K]:
        """Return the same event about another representation of the job (e.g. a handle).

        Args:
            job: The new ``job`` value.

        Returns:
            A copy with ``job`` replaced.
        """
        return WebhookEvent(
            type=self.type,
            id=self.id,
            job=job,
            duplicate=self.duplicate,
            received_at=self.received_at,
        )


def parse_event(
    dialect: Dialect,
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    now: float,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> WebhookEventData:
    """Verify a delivery and read its job with the dialect's own status parser.

    Args:
        dialect: The provider's dialect.
        body: The raw body, exactly as received.
        headers: The request headers.
        secrets: The accepted signing secrets.
        now: The receiver's clock (unix seconds).
        tolerance: Seconds of clock skew accepted.

    Returns:
        The verified event.

    Raises:
        WebhookVerificationError: For any failure (reason ``unsupported_provider`` when the
            provider sends no webhooks; ``malformed_body`` when the dialect cannot read the
            job).
    """
    fmt = webhook_format_for(dialect)
    if fmt is None:
        raise _refuse(dialect.name, "unsupported_provider", "this provider sends no webhooks")
    timestamp = fmt.verify(body, headers, secrets, now=now, tolerance=tolerance)
    payload = fmt.parse(body, headers)
    return WebhookEventData(
        type=payload.type,
        id=payload.id,
        job=_job_of(dialect, payload),
        raw_status=payload.raw_status,
        signed_at=datetime.fromtimestamp(timestamp, tz=timezone.utc),
    )


# The request a webhook's job payload is "answered" to: dialects name it only in errors.
_STAND_IN = httpx.Request("POST", "http://webhook.invalid/")


def _job_of(dialect: Dialect, payload: WebhookPayload) -> JobData:
    """Parse the job payload as if a status poll had answered it."""
    try:
        content = json.dumps(payload.job).encode()
        response = httpx.Response(200, content=content, request=_STAND_IN)
        model = payload.job.get("model")
        previous = dialect.job_for_id(
            payload.job["id"],
            kind=next(iter(dialect.kinds), None) if len(dialect.kinds) == 1 else None,
            model=model if isinstance(model, str) else None,
        )
        return dialect.parse_poll(response, previous=previous)
    except (MediaJobsError, ValueError, TypeError, RecursionError) as exc:
        detail = exc.message if isinstance(exc, MediaJobsError) else "unreadable job"
        raise _refuse(
            dialect.name, "malformed_body", f"the event's job is malformed: {detail}"
        ) from exc


# ------------------------------------------------------------------ de-duplication


class SeenDeliveries(Protocol):
    """Anything that records delivery ids: the in-memory LRU, or a shared job store."""

    def seen(self, delivery_id: str) -> bool:
        """Record a delivery id; tell whether it had been recorded before.

        Args:
            delivery_id: The delivery's idempotency key.

        Returns:
            ``True`` for a repeat.
        """


class DeliveryDeduplicator:
    """Remembers the most recent delivery ids (an LRU set), safely from any thread.

    Args:
        maxsize: How many ids to remember; the least recently seen is forgotten first.

    Raises:
        ValueError: If ``maxsize`` is below 1.
    """

    def __init__(self, maxsize: int = 10_000) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, delivery_id: str) -> bool:
        """Record a delivery id and tell whether it had been recorded before.

        Args:
            delivery_id: The delivery's idempotency key.

        Returns:
            ``True`` for a repeat (a retry or replay), ``False`` the first time.
        """
        with self._lock:
            if delivery_id in self._ids:
                self._ids.move_to_end(delivery_id)
                return True
            self._ids[delivery_id] = None
            if len(self._ids) > self.maxsize:
                self._ids.popitem(last=False)
            return False

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)


# ------------------------------------------------------------------ status ordering

# ------------------------------------------------------------------ standalone verifier


class WebhookVerifier:
    """Verify, parse and de-duplicate one provider's deliveries without a client.

    ``client.parse_webhook`` does the same and also returns a job handle, records the
    snapshot and wakes waits; this class serves receivers that only need the events.

    Args:
        provider: A provider name (``"openrouter"``) or a dialect instance.
        secret: The signing secret, or several while rotating; ``None`` reads the environment
            variable ``<PROVIDER>_WEBHOOK_SECRET`` (e.g. ``OPENROUTER_WEBHOOK_SECRET``).
        tolerance: Seconds a signature's timestamp may differ from the clock.
        dedupe: What remembers delivery ids: a new :class:`DeliveryDeduplicator` (10,000
            ids) by default; anything with ``seen(id) -> bool``, e.g. a shared store.
        clock: Returns unix seconds (``time.time`` by default).

    Raises:
        ConfigurationError: If the provider name is unknown.
    """

    def __init__(
        self,
        provider: str | Dialect,
        *,
        secret: str | Sequence[str] | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
        dedupe: SeenDeliveries | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dialect = provider if isinstance(provider, Dialect) else _dialect(provider)
        if secret is None:
            secret = os.environ.get(secret_env_var(self.dialect.name))
        self._secrets = tuple(_secrets_of(secret))
        self.tolerance = tolerance
        self.dedupe = dedupe if dedupe is not None else DeliveryDeduplicator()
        self.clock = clock

    def __repr__(self) -> str:
        count = len(self._secrets)
        return f"WebhookVerifier(provider={self.dialect.name!r}, secrets={count})"

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent[JobData]:
        """Verify a delivery and return its event.

        Args:
            body: The raw request body, exactly as received.
            headers: The request headers (any mapping; names are case-insensitive).

        Returns:
            The event; ``duplicate`` is ``True`` when its id was seen before.

        Raises:
            WebhookVerificationError: For any delivery that cannot be trusted or read.
        """
        now = self.clock()
        data = parse_event(
            self.dialect, body, headers, self._secrets, now, tolerance=self.tolerance
        )
        return WebhookEvent(
            type=data.type,
            id=data.id,
            job=data.job,
            duplicate=self.dedupe.seen(data.id),
            received_at=datetime.fromtimestamp(now, tz=timezone.utc),
        )


def secret_env_var(provider: str) -> str:
    """Return the environment variable holding a provider's webhook secret.

    Args:
        provider: The provider name.

    Returns:
        ``"<PROVIDER>_WEBHOOK_SECRET"``, e.g. ``"OPENROUTER_WEBHOOK_SECRET"``.
    """
    return f"{re.sub(r'[^A-Za-z0-9]', '_', provider).upper()}_WEBHOOK_SECRET"


def _dialect(name: str) -> Dialect:
    cls = DIALECTS.get(name)
    if cls is None:
        known = ", ".join(sorted(DIALECTS))
        raise ConfigurationError(f"unknown provider {name!r} (known: {known})")
    return cls()
