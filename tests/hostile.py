"""A hostile HTTP server for fault tests: a raw socket on loopback that can lie.

Unlike the FakeProvider (which speaks each provider's wire shape faithfully) this server says
whatever a test scripts, byte by byte: a ``Content-Length`` that is not the body's, a ``206``
whose ``Content-Range`` stops short, an ``ETag`` that changes between answers, a body that
trickles one byte at a time or stalls, a ``Location`` no client can follow, or a connection
reset (``SO_LINGER`` 0: the peer sees an RST, not a clean end).

Requests are parsed with h11 (so what the client sent is checked as HTTP/1.1), answers are
written raw. Every answer closes its connection. One thread accepts, one thread serves each
connection; :meth:`HostileServer.stop` ends every trickle and stall at once and joins them.

Use the ``hostile`` fixture (re-exported by ``conftest.py``), or the class as a context manager::

    with HostileServer() as server:
        server.on("/v.mp4", ranged(data, cap=50_000))
        ... client.download(...) against server.url + "/v.mp4" ...
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import h11
import pytest

__all__ = [
    "Conn",
    "HostileServer",
    "Seen",
    "hang",
    "hostile",
    "json_reply",
    "ranged",
    "redirect",
    "reply",
    "reset",
    "stall",
    "trickle",
]

Headers = Mapping[str, str] | Sequence[tuple[str, str]]
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass(frozen=True)
class Seen:
    """A request as the server received it.

    Attributes:
        method: ``GET``, ``POST``...
        target: The path with its query.
        headers: Header names lower-cased (the last value of a repeated header).
        body: The request body.
    """

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


class Conn:
    """One accepted connection, for handlers to write to (raw bytes, lies included)."""

    def __init__(self, sock: socket.socket, stopping: threading.Event) -> None:
        self.sock = sock
        self.stopping = stopping

    def send(self, data: bytes) -> bool:
        """Write bytes; return ``False`` once the peer has gone or the server stops."""
        if self.stopping.is_set():
            return False
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def head(self, status: int, headers: Headers = (), *, length: int | None = None) -> bool:
        """Write a status line and headers (``Content-Length`` only when ``length`` is given)."""
        items = list(headers.items() if isinstance(headers, Mapping) else headers)
        if length is not None:
            items.append(("Content-Length", str(length)))
        items.append(("Connection", "close"))
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [f"HTTP/1.1 {status} {phrase}"] + [f"{k}: {v}" for k, v in items]
        return self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def pause(self, seconds: float) -> bool:
        """Sleep, unless the server stops first; return ``False`` if it did."""
        return not self.stopping.wait(seconds)

    def reset(self) -> None:
        """Abort the connection with an RST (``SO_LINGER`` on, zero seconds)."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


Handler = Callable[[Seen, Conn], None]


# ---------------------------------------------------------------- scripted answers


def reply(
    status: int = 200,
    body: bytes = b"",
    *,
    headers: Headers = (),
    length: int | None = None,
) -> Handler:
    """Answer at once; ``length`` overrides the true ``Content-Length`` (a lie, if it differs)."""

    def handle(_: Seen, conn: Conn) -> None:
        if conn.head(status, headers, length=len(body) if length is None else length):
            conn.send(body)

    return handle


def json_reply(status: int, value: Any, *, headers: Headers = ()) -> Handler:
    """Answer with a JSON body."""
    extra = [("Content-Type", "application/json"), *_items(headers)]
    return reply(status, json.dumps(value).encode(), headers=extra)


def redirect(location: str, status: int = 302) -> Handler:
    """Answer with a redirect to ``location``, whatever it is."""
    return reply(status, headers=[("Location", location)])


def trickle(
    status: int,
    body: bytes,
    *,
    every: float = 0.25,
    size: int = 1,
    headers: Headers = (),
) -> Handler:
    """Answer with a truthful ``Content-Length``, then ``size`` bytes every ``every`` seconds."""

    def handle(_: Seen, conn: Conn) -> None:
        if not conn.head(status, headers, length=len(body)):
            return
        for start in range(0, len(body), size):
            if not conn.send(body[start : start + size]) or not conn.pause(every):
                return

    return handle


def stall(status: int, prefix: bytes, *, total: int, headers: Headers = ()) -> Handler:
    """Announce ``total`` bytes, send ``prefix``, then send nothing more until the server stops."""

    def handle(_: Seen, conn: Conn) -> None:
        if conn.head(status, headers, length=total) and conn.send(prefix):
            conn.stopping.wait()

    return handle


def hang() -> Handler:
    """Read the request and answer nothing until the server stops."""

    def handle(_: Seen, conn: Conn) -> None:
        conn.stopping.wait()

    return handle


def reset(
    status: int | None = None, prefix: bytes = b"", *, total: int = 0, headers: Headers = ()
) -> Handler:
    """Reset the connection: at once, or after a head announcing ``total`` and ``prefix``."""

    def handle(_: Seen, conn: Conn) -> None:
        if status is not None:
            conn.head(status, headers, length=total)
            conn.send(prefix)
        conn.reset()

    return handle


def ranged(
    data: bytes,
    *,
    cap: int | None = None,
    etag: str | Callable[[], str] | None = '"v1"',
    content_type: str = "video/mp4",
    cut: int | None = None,
) -> Handler:
    """Serve ``data`` honouring ``Range: bytes=N-``, with the lies a CDN may tell.

    Args:
        data: The object.
        cap: Answer at most this many bytes each time, as a ``206`` whose ``Content-Range``
            names the full size (also to a request without ``Range``).
        etag: The ``ETag`` sent, or a callable returning it afresh on each answer.
        content_type: The ``Content-Type``.
        cut: Reset the connection after this many body bytes of each answer.
    """

    def handle(seen: Seen, conn: Conn) -> None:
        match = _RANGE.fullmatch(seen.headers.get("range", "").strip())
        start = int(match.group(1)) if match else 0
        if start >= len(data) > 0:
            conn.head(416, [("Content-Range", f"bytes */{len(data)}")], length=0)
            return
        end = len(data) if cap is None else min(len(data), start + cap)
        headers = [("Content-Type", content_type)]
        tag = etag() if callable(etag) else etag
        if tag is not None:
            headers.append(("ETag", tag))
        status = 200
        if match or end < len(data):
            status = 206
            headers.append(("Content-Range", f"bytes {start}-{end - 1}/{len(data)}"))
        if not conn.head(status, headers, length=end - start):
            return
        body = data[start:end]
        if cut is not None and cut < len(body):
            conn.send(body[:cut])
            conn.reset()
            return
        conn.send(body)

    return handle


def _items(headers: Headers) -> list[tuple[str, str]]:
    return list(headers.items() if isinstance(headers, Mapping) else headers)


# ------------------------------------------------------------------------ the server


@dataclass
class HostileServer:
    """A loopback HTTP/1.1 server whose answers are scripted per ``METHOD path``.

    Routes take handlers used in turn, the last one sticking; unknown routes get a JSON 404.
    """

    routes: dict[str, list[Handler]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()
        self._acceptor = threading.Thread(target=self._accept, name="hostile-accept", daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def on(self, path: str, *handlers: Handler, method: str = "GET") -> HostileServer:
        """Script the answers to ``method path`` (query ignored)."""
        with self._lock:
            self.routes[f"{method} {path}"] = list(handlers)
        return self

    def seen(self, path: str, method: str | None = None) -> list[Seen]:
        """The requests received for a path (query ignored), in order."""
        with self._lock:
            return [r for r in self.requests if r.path == path and method in (None, r.method)]

    def start(self) -> HostileServer:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """End every trickle, stall and hang, close every connection, join every thread."""
        self._stopping.set()
        self._acceptor.join(5)
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._open), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(5)

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            with self._lock:
                self._open.add(sock)
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(10)
            seen = _read_request(sock)
            if seen is None:
                return
            with self._lock:
                self.requests.append(seen)
                queue = self.routes.get(f"{seen.method} {seen.path}")
                handler = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else None
            if handler is None:
                handler = json_reply(404, {"error": {"code": 404, "message": "no such route"}})
            handler(seen, Conn(sock, self._stopping))
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(sock)
            sock.close()


def _read_request(sock: socket.socket) -> Seen | None:
    parser = h11.Connection(h11.SERVER)
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = parser.next_event()
        if event is h11.NEED_DATA:
            data = sock.recv(65536)
            if not data:
                return None
            parser.receive_data(data)
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage) and request is not None:
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in request.headers}
            return Seen(request.method.decode(), request.target.decode(), headers, bytes(body))
        elif isinstance(event, h11.ConnectionClosed):
            return None


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    """A started :class:`HostileServer`, stopped (every thread joined) after the test."""
    with HostileServer() as server:
        yield server
