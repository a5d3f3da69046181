"""An ASGI adapter of :meth:`FakeProvider.handle`, so any ASGI server can serve the fake.

Each origin (API, storage) gets its own app: the app rebuilds the request URL on that origin, so
the fake routes it exactly as it routes in-process requests. Response bodies stream chunk by
chunk. A simulated connection cut (``httpx.TransportError`` from the handler or from the body)
really closes the TCP connection, after whatever part of the body was already sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
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

        Args:
            scope: The connection scope.
            receive: Receives request messages.
            send: Sends response messages.
        """
        if scope["type"] != "http":
            return
        request = await self._request(scope, receive)
        try:
            response = self.fake.handle(request)
        except httpx.TransportError:
            await _cut(send, receive)
            return
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": list(response.headers.raw),
            }
        )
        try:
            async for chunk in _chunks(response):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.TransportError:
            await _cut(send, receive)
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


async def _chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    stream = response.stream
    if isinstance(stream, httpx.AsyncByteStream):
        async for chunk in stream:
            yield chunk
    else:
        for chunk in stream:
            yield chunk


async def _cut(send: Send, receive: Receive) -> None:
    """Close the client's TCP connection at once, flushing what was already sent.

    ASGI has no message for this, so the transport is taken from uvicorn's request cycle (the
    bound ``send``); then the app waits for the disconnect, so the server neither logs an error
    nor answers 500. On another server the cut degrades into an exception.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if not isinstance(transport, asyncio.BaseTransport):
        raise ConnectionAbortedError("fake provider: connection cut by the scenario")
    transport.close()
    while (await receive())["type"] != "http.disconnect":
        pass
