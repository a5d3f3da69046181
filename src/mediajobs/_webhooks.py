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

import hashlib
import hmac
import json
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

import httpx

from ._exceptions import ConfigurationError, MediaJobsError, WebhookVerificationError
from ._models import JobData, JobStatus
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

DEFAULT_TOLERANCE = 300.0
"""Seconds a signature's timestamp may lie before or after the receiver's clock."""

REASONS: tuple[str, ...] = (
    "no_secret",
    "missing_signature",
    "malformed_signature",
    "stale_timestamp",
    "future_timestamp",
    "bad_signature",
    "malformed_body",
    "wrong_provider",
    "unsupported_provider",
)
"""Every ``WebhookVerificationError.reason`` code."""

J = TypeVar("J")
K = TypeVar("K")

# At most 15 digits: a unix time for millions of years, and no giant-int parsing.
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
# Another sender's signature header: a delivery meant for some other receiver.
_OTHER_SIGNATURE = re.compile(r"(x-[a-z0-9-]+-signature(-256)?|webhook-signature|signature)")


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """Return an OpenRouter-style signature header value for a body.

    Args:
        body: The raw body, as it is sent.
        secret: The signing secret.
        timestamp: Unix seconds put in ``t=``.

    Returns:
        ``"t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>,<body>")>"``.
    """
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp},".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _secrets_of(secrets: str | Sequence[str] | None) -> list[str]:
    if secrets is None:
        return []
    items = [secrets] if isinstance(secrets, str) else list(secrets)
    return [item for item in items if isinstance(item, str) and item]


def verify_signature(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
    provider: str = "openrouter",
) -> int:
    """Check a ``t=<unix>,v1=<hex>[,v1=<hex>…]`` signature over the raw body.

    The timestamp is checked first (cheap), then every ``v1`` value against every secret with
    :func:`hmac.compare_digest`; one match is enough, so a secret can be rotated without a gap.

    Args:
        body: The raw request body, exactly as received (never re-serialized JSON).
        header: The signature header's value, or ``None`` when it is absent.
        secrets: The accepted signing secrets (a single string counts as one secret).
        now: The receiver's clock, in unix seconds.
        tolerance: How many seconds the timestamp may be older or newer than ``now``.
        provider: The provider named in errors.

    Returns:
        The signed timestamp (unix seconds).

    Raises:
        WebhookVerificationError: With reason ``no_secret``, ``missing_signature``,
            ``malformed_signature``, ``stale_timestamp``, ``future_timestamp`` or
            ``bad_signature``.
    """
    keys = _secrets_of(secrets)
    if not keys:
        raise _refuse(provider, "no_secret", "no webhook secret is configured")
    if header is None or (isinstance(header, str) and not header.strip()):
        raise _refuse(provider, "missing_signature", "the delivery carries no signature")
    timestamp, candidates = _parse_signature_header(header, provider)
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise _refuse(provider, "malformed_body", "the body must be the raw bytes received")
    if timestamp < now - tolerance:
        raise _refuse(provider, "stale_timestamp", "the signature's timestamp is too old")
    if timestamp > now + tolerance:
        raise _refuse(provider, "future_timestamp", "the signature's timestamp is in the future")
    raw = bytes(body)
    for key in keys:
        expected = _digest(key, timestamp, raw).encode()
        # Every candidate is compared (no early exit on the first mismatch).
        if any([hmac.compare_digest(expected, candidate) for candidate in candidates]):
            return timestamp
    raise _refuse(provider, "bad_signature", "the signature does not match the body")


def _parse_signature_header(header: Any, provider: str) -> tuple[int, list[bytes]]:
    if not isinstance(header, str):
        raise _refuse(provider, "malformed_signature", "the signature header is not text")
    timestamps: list[int] = []
    candidates: list[bytes] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        name, value = name.strip(), value.strip()
        if not sep:
            raise _refuse(provider, "malformed_signature", "the signature header is garbled")
        if name == "t":
            if not _TIMESTAMP.fullmatch(value):
                raise _refuse(provider, "malformed_signature", "the signature timestamp is garbled")
            timestamps.append(int(value))
        elif name == "v1":
            if not _HEX_DIGEST.fullmatch(value):
                raise _refuse(
                    provider, "malformed_signature", "a v1 signature is not 64 hex digits"
                )
            candidates.append(value.lower().encode("ascii"))
        # other schemes (v0=…, future versions) are ignored, as signers add them over time
    if len(timestamps) != 1:
        raise _refuse(provider, "malformed_signature", "the signature needs exactly one t=")
    if not candidates:
        raise _refuse(provider, "malformed_signature", "the signature has no v1= value")
    return timestamps[0], candidates


def _refuse(provider: str | None, reason: str, message: str) -> WebhookVerificationError:
    prefix = f"{provider} webhook refused" if provider else "webhook refused"
    return WebhookVerificationError(f"{prefix}: {message}", reason=reason, provider=provider)


def header_value(headers: Any, name: str) -> str | None:
    """Read a header case-insensitively from any mapping (or list of pairs) of headers.

    Args:
        headers: A mapping such as ``dict``, ``httpx.Headers`` or a framework's headers,
            anything with ``items()``, or an iterable of ``(name, value)`` pairs (ASGI's bytes).
        name: The header name.

    Returns:
        The value, or ``None`` when absent. Several different values are joined with ``,``
        (so a repeated signature header reads as garbled, never as one of its copies).

    Raises:
        WebhookVerificationError: With reason ``malformed_signature`` if the headers cannot
            be read at all.
    """
    wanted = name.lower()
    try:
        values: list[str] = []
        for key, value in _pairs(headers):
            key_text = _text(key)
            if key_text is not None and key_text.lower() == wanted:
                text = _text(value)
                if text is not None and text not in values:
                    values.append(text)
    except (TypeError, ValueError, AttributeError) as exc:
        raise _refuse(None, "malformed_signature", "the headers cannot be read") from exc
    return ",".join(values) if values else None


def _pairs(headers: Any) -> list[tuple[Any, Any]]:
    """Return the ``(name, value)`` pairs of any headers object.

    A mapping, anything with ``items()`` (``email.message.Message``, werkzeug's headers), or
    an iterable of pairs (ASGI).
    """
    items = headers.items() if hasattr(headers, "items") else headers
    return [(name, value) for name, value in items]


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return None


# ------------------------------------------------------------------------- formats


class WebhookPayload(NamedTuple):
    """What a provider's webhook body says, before the dialect reads the job."""

    type: str
    """The event type, e.g. ``"video.generation.completed"``."""
    id: str
    """The delivery's idempotency key: the same for every retry of one event."""
    job: dict[str, Any]
    """The job payload, in the shape the dialect's status poll reads."""
    raw_status: str
    """The job status as the provider sent it."""


class WebhookFormat(Protocol):
    """How one provider signs its webhooks and where the job sits in their bodies.

    A dialect exposes its format as ``dialect.webhook_format``; a provider without webhooks
    has none. Adding one is a dialect change: implement these two methods.
    """

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> int:
        """Check the delivery's signature.

        Args:
            body: The raw body.
            headers: The request headers.
            secrets: The accepted secrets.
            now: The receiver's clock (unix seconds).
            tolerance: Seconds of clock skew accepted.

        Returns:
            The signed timestamp (unix seconds).

        Raises:
            WebhookVerificationError: If the delivery cannot be trusted.
        """

    def parse(self, body: bytes, headers: Mapping[str, str]) -> WebhookPayload:
        """Read the event type, delivery id and job payload of a verified body.

        Args:
            body: The raw body (already verified).
            headers: The request headers.

        Returns:
            The payload.

        Raises:
            WebhookVerificationError: With reason ``malformed_body`` for any other shape.
        """


class OpenRouterWebhooks:
    """OpenRouter's webhooks: ``X-OpenRouter-Signature`` and ``{type, created_at, data}``.

    OpenRouter posts on a terminal state ``{"type": "video.generation.<status>", "created_at":
    ISO, "data": {id, status, generation_id, model, unsigned_urls?, usage?, error?}}``; ``data``
    is a job body like a poll's.

    The delivery id is ``"<data.id>-<data.status>"``, the value OpenRouter also sends as
    ``X-OpenRouter-Idempotency-Key``. It is derived from the signed body rather than read
    from that header, which the signature does not cover.
    """

    provider: ClassVar[str] = "openrouter"
    signature_header: ClassVar[str] = "X-OpenRouter-Signature"
    idempotency_header: ClassVar[str] = "X-OpenRouter-Idempotency-Key"

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> int:
        """Check ``X-OpenRouter-Signature`` with :func:`verify_signature` (see the protocol).

        Raises:
            WebhookVerificationError: If the delivery cannot be trusted; reason
                ``wrong_provider`` when it carries another sender's signature header instead.
        """
        header = header_value(headers, self.signature_header)
        if header is None and _secrets_of(secrets) and _foreign_signature(headers):
            raise _refuse(
                self.provider,
                "wrong_provider",
                f"the delivery is signed for another receiver (no {self.signature_header})",
            )
        return verify_signature(
            body, header, secrets, now=now, tolerance=tolerance, provider=self.provider
        )

    def parse(self, body: bytes, headers: Mapping[str, str]) -> WebhookPayload:
        """Read ``{type, created_at?, data: {id, status, …}}`` (headers unused: see above).

        Raises:
            WebhookVerificationError: With reason ``malformed_body`` for any other shape.
        """
        try:
            document = json.loads(bytes(body))
        except (ValueError, TypeError, RecursionError) as exc:
            raise _refuse(self.provider, "malformed_body", "the body is not JSON") from exc
        if not isinstance(document, dict):
            raise _refuse(self.provider, "malformed_body", "the body is not a JSON object")
        event_type = document.get("type")
        data = document.get("data")
        if not isinstance(event_type, str) or not event_type:
            raise _refuse(self.provider, "malformed_body", "the event has no 'type'")
        if not isinstance(data, dict):
            raise _refuse(self.provider, "malformed_body", "the event has no 'data' object")
        job_id, status = data.get("id"), data.get("status")
        if not isinstance(job_id, str) or not job_id:
            raise _refuse(self.provider, "malformed_body", "the event's job has no 'id'")
        if not isinstance(status, str) or not status:
            raise _refuse(self.provider, "malformed_body", "the event's job has no 'status'")
        return WebhookPayload(type=event_type, id=f"{job_id}-{status}", job=data, raw_status=status)


def _foreign_signature(headers: Any) -> bool:
    try:
        names = [name for name, _ in _pairs(headers)]
        return any(
            _OTHER_SIGNATURE.fullmatch(text.lower())
            for text in (_text(name) for name in names)
            if text is not None
        )
    except (TypeError, ValueError, AttributeError):
        return False


_FORMATS: dict[str, WebhookFormat] = {"openrouter": OpenRouterWebhooks()}


def webhook_format_for(dialect: Dialect) -> WebhookFormat | None:
    """Return a dialect's webhook format: its ``webhook_format`` attribute, else the built-in.

    Args:
        dialect: The provider's dialect.

    Returns:
        The format, or ``None`` for a provider that sends no webhooks (TheRouter, …).
    """
    attached: WebhookFormat | None = getattr(dialect, "webhook_format", None)
    if attached is not None:
        return attached
    builtin = DIALECTS.get(dialect.name)
    return _FORMATS.get(dialect.name) if builtin and isinstance(dialect, builtin) else None


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

_RANK: dict[JobStatus, int] = {
    JobStatus.QUEUED: 0,
    JobStatus.RUNNING: 1,
    JobStatus.SUCCEEDED: 2,
    JobStatus.FAILED: 2,
    JobStatus.CANCELLED: 2,
    JobStatus.EXPIRED: 2,
}


def is_newer(old: JobStatus, new: JobStatus) -> bool:
    """Tell whether ``new`` moves a job forward from ``old`` (events can arrive out of order).

    Queued < running < terminal. A terminal status is never replaced: a job finishes once, so
    a late non-terminal event, or a second, different terminal one, changes nothing.

    Args:
        old: The status already known.
        new: The status an event or poll reports.

    Returns:
        ``True`` when ``new`` should replace ``old``.
    """
    return _RANK[new] > _RANK[old]


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
