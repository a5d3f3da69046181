"""How a provider signs its webhooks and where the job sits in their bodies (no I/O).

Dialects attach their :class:`WebhookFormat` as ``webhook_format`` (OpenRouter's is
:class:`OpenRouterWebhooks`); :mod:`mediajobs._webhooks` builds events on top. This module
imports nothing from the dialects, so a dialect can import it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple, Protocol

from ._exceptions import WebhookVerificationError

__all__ = [
    "DEFAULT_TOLERANCE",
    "REASONS",
    "OpenRouterWebhooks",
    "WebhookFormat",
    "WebhookPayload",
    "header_value",
    "sign",
    "verify_signature",
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
