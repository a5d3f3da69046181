"""An ASGI adapter of :meth:`FakeProvider.handle`, so any ASGI server can serve the fake.

Each origin (API, storage) gets its own app: the app rebuilds the request URL on that origin, so
the fake routes it exactly as it routes in-process requests. Response bodies stream chunk by
chunk and stop as soon as the client hangs up. A simulated connection cut
(``httpx.TransportError`` from the handler or from the body) really closes the TCP connection,
after whatever part of the body was already sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, MutableMapping
from typing import Any, Literal

import httpx

from ._fake import FakeProvider

__all__ = ["FakeASGIApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class FakeASGIApp:
    """Serve one origin of a :class:`FakeProvider` as an ASGI 3 application.

    Args:
        fake: The fake to serve.
        origin: Which of its origins this app is.
    """

    def __init__(self, fake: FakeProvider, origin: Literal["api", "storage"] = "api") -> None:
        self.fake = fake
        self.origin = origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope (HTTP only).

        A client that hangs up mid-body stops the stream at once: a task waits for the
        ``http.disconnect`` message, and the body loop yields to the event loop after every
        chunk (so the server notices a dead socket) and checks for it before the next.

        Args:
            scope: The connection scope.
            receive: Receives request messages.
            send: Sends response messages.
        """
        if scope["type"] != "http":
            return
        request = await self._request(scope, receive)
        gone = asyncio.Event()
        watcher = asyncio.ensure_future(_watch(receive, gone))
        try:
            await self._respond(request, send, gone)
        finally:
            watcher.cancel()

    async def _respond(self, request: httpx.Request, send: Send, gone: asyncio.Event) -> None:
        try:
            response = self.fake.handle(request)
        except httpx.TransportError:
            await _cut(send, gone)
            return
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": list(response.headers.raw),
            }
        )
        try:
            async with contextlib.aclosing(_chunks(response)) as chunks:
                async for chunk in chunks:
                    if gone.is_set() or _closing(send):
                        return  # closing the chunks stops the body generator
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await asyncio.sleep(0)
        except httpx.TransportError:
            await _cut(send, gone)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _request(self, scope: Scope, receive: Receive) -> httpx.Request:
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        origin = self.fake.storage_origin if self.origin == "storage" else self.fake.api_origin
        target = scope.get("raw_path") or scope["path"].encode()
        url = origin.encode() + target
        if scope.get("query_string"):
            url += b"?" + scope["query_string"]
        return httpx.Request(
            scope["method"], url.decode("latin-1"), headers=scope["headers"], content=bytes(body)
        )


async def _chunks(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """Yield a response's body chunks; closing this closes the body's own generator."""
    stream = response.stream
    if isinstance(stream, httpx.AsyncByteStream):
        async for chunk in stream:
            yield chunk
        return
    iterator = iter(stream)
    try:
        for chunk in iterator:
            yield chunk
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


async def _watch(receive: Receive, gone: asyncio.Event) -> None:
    """Set ``gone`` when the server reports the client's disconnect."""
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


def _transport(send: Send) -> asyncio.BaseTransport | None:
    """Return uvicorn's transport of this connection, from its request cycle (the bound send)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    return transport if isinstance(transport, asyncio.BaseTransport) else None


def _closing(send: Send) -> bool:
    """Whether the connection is closing: a failed write closes it before the disconnect."""
    transport = _transport(send)
    return transport is not None and transport.is_closing()


async def _cut(send: Send, gone: asyncio.Event) -> None:
    """Close the client's TCP connection at once, flushing what was already sent.

    ASGI has no message for this, so the transport is taken from uvicorn's request cycle; then
    the app waits for the disconnect, so the server neither logs an error nor answers 500. On
    another server the cut degrades into an exception.
    """
    transport = _transport(send)
    if transport is None:
        raise ConnectionAbortedError("fake provider: connection cut by the scenario")
    transport.close()
    await gone.wait()
