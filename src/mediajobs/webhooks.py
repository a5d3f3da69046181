"""Receive provider webhooks: a minimal ASGI app, and the pieces to build your own receiver.

:func:`webhook_app` turns a parser (``client.parse_webhook``, or a :class:`WebhookVerifier`)
into an ASGI 3 application that any ASGI server (uvicorn, hypercorn, …) can serve, or that a
framework can mount. It reads the raw body, verifies it, answers at once and hands the event to
your callback afterwards::

    from mediajobs.webhooks import webhook_app

    app = webhook_app(client, on_event=handle, path="/hooks/openrouter")

Answers: ``204`` for a verified delivery (a repeated one too, so the provider stops retrying),
``400`` with ``{"error": <reason>, "message": ...}`` for a refused one, ``404`` off ``path``,
``405`` for anything but ``POST``, ``413`` for a body over ``max_body`` bytes. An exception of
the parser other than :class:`~mediajobs.WebhookVerificationError` propagates, so the server
answers ``500`` and the provider retries later.

Only the standard library and anyio are used. Framework recipes: ``docs/webhooks.md``.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from functools import partial
from typing import Any, Protocol

import anyio
import anyio.to_thread

from ._exceptions import WebhookVerificationError
from ._webhooks import (
    DEFAULT_TOLERANCE,
    REASONS,
    DeliveryDeduplicator,
    OpenRouterWebhooks,
    SeenDeliveries,
    WebhookEvent,
    WebhookEventData,
    WebhookFormat,
    WebhookPayload,
    WebhookVerifier,
    is_newer,
    parse_event,
    secret_env_var,
    sign,
    verify_signature,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "REASONS",
    "DeliveryDeduplicator",
    "OpenRouterWebhooks",
    "SeenDeliveries",
    "WebhookEvent",
    "WebhookEventData",
    "WebhookFormat",
    "WebhookPayload",
    "WebhookVerificationError",
    "WebhookVerifier",
    "is_newer",
    "parse_event",
    "secret_env_var",
    "sign",
    "verify_signature",
    "webhook_app",
]

logger = logging.getLogger("mediajobs.webhooks")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

Parse = Callable[[bytes, Mapping[str, str]], Any]
OnEvent = Callable[[Any], Any]

MAX_BODY = 1024 * 1024
"""The default body limit: 1 MiB, far above any job event."""


class _HasParseWebhook(Protocol):
    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> Any: ...


def webhook_app(
    parser: Parse | _HasParseWebhook,
    *,
    on_event: OnEvent | None = None,
    path: str = "/",
    max_body: int = MAX_BODY,
    duplicates: bool = False,
) -> ASGIApp:
    """Build an ASGI app that verifies deliveries and hands events to ``on_event``.

    The parser runs in a worker thread (it may write to a job store) unless it is a coroutine
    function. ``on_event`` runs after the answer is sent, so a slow handler never makes the
    provider time out and retry: a coroutine function is awaited, a plain function runs in a
    worker thread. Its exceptions are logged (logger ``mediajobs.webhooks``) and swallowed.

    Args:
        parser: ``client.parse_webhook``, a :class:`WebhookVerifier`, any object with a
            ``parse_webhook(body, headers)`` method, or such a callable.
        on_event: Called with each event, after the answer.
        path: The one path served; others answer 404.
        max_body: The largest body accepted, in bytes.
        duplicates: Also hand repeated deliveries (``event.duplicate``) to ``on_event``.

    Returns:
        The ASGI 3 application.

    Raises:
        TypeError: If ``parser`` is neither callable nor has ``parse_webhook``.
    """
    parse: Parse
    if hasattr(parser, "parse_webhook"):
        parse = parser.parse_webhook
    elif callable(parser):
        parse = parser
    else:
        raise TypeError("parser must be callable or have a parse_webhook(body, headers) method")
    return _WebhookApp(parse, on_event, path, max_body, duplicates)


class _WebhookApp:
    def __init__(
        self, parse: Parse, on_event: OnEvent | None, path: str, max_body: int, duplicates: bool
    ) -> None:
        self.parse = parse
        self.on_event = on_event
        self.path = path
        self.max_body = max_body
        self.duplicates = duplicates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if _route_path(scope) != self.path:
            await _answer(send, 404, {"error": "not_found"})
            return
        if scope.get("method") != "POST":
            await _answer(send, 405, {"error": "method_not_allowed"}, [(b"allow", b"POST")])
            return
        body = await _read_body(receive, self.max_body)
        if body is None:
            await _answer(send, 413, {"error": "body_too_large"})
            return
        headers = _headers(scope)
        try:
            event = await self._parse(body, headers)
        except WebhookVerificationError as exc:
            logger.info("webhook refused (%s)", exc.reason)
            await _answer(send, 400, {"error": exc.reason, "message": exc.message})
            return
        await _answer(send, 204, None)
        if self.on_event is not None and (self.duplicates or not _is_duplicate(event)):
            await self._hand_over(event)

    async def _parse(self, body: bytes, headers: dict[str, str]) -> Any:
        if inspect.iscoroutinefunction(self.parse):
            return await self.parse(body, headers)
        return await anyio.to_thread.run_sync(self.parse, body, headers)

    async def _hand_over(self, event: Any) -> None:
        assert self.on_event is not None
        try:
            if inspect.iscoroutinefunction(self.on_event):
                await self.on_event(event)
            else:
                result = await anyio.to_thread.run_sync(partial(self.on_event, event))
                if inspect.isawaitable(result):
                    await result
        except Exception:
            logger.exception("webhook on_event handler failed")


def _route_path(scope: Scope) -> str:
    """The request path below the app's mount point (``root_path``), ``"/"`` at its root."""
    path = str(scope.get("path") or "/")
    root = str(scope.get("root_path") or "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path if path.startswith("/") else "/" + path


def _is_duplicate(event: Any) -> bool:
    return bool(getattr(event, "duplicate", False))


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """Read the whole request body; ``None`` when it exceeds ``limit`` bytes.

    An oversized body is still read to its end (and dropped), so the connection stays usable.
    """
    chunks = bytearray()
    too_big = False
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        if not too_big:
            chunks += message.get("body", b"")
            too_big = len(chunks) > limit
            if too_big:
                chunks.clear()
        if not message.get("more_body"):
            break
    return None if too_big else bytes(chunks)


def _headers(scope: Scope) -> dict[str, str]:
    """Decode ASGI headers into one lower-case name → value mapping (repeats joined)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = bytes(raw_name).decode("latin-1").lower()
        value = bytes(raw_value).decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


async def _answer(
    send: Send,
    status: int,
    body: dict[str, Any] | None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    content = b"" if body is None else json.dumps(body).encode()
    headers = list(extra or [])
    if body is not None:
        headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(content)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content, "more_body": False})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
