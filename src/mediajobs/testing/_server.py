"""Serve a :class:`FakeProvider` over real HTTP on loopback: an API origin and a storage origin.

uvicorn (the ``testing`` extra) is imported only when a server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

from ._asgi import FakeASGIApp
from ._fake import FakeProvider

if TYPE_CHECKING:
    import uvicorn

__all__ = ["TICK", "FakeServer", "serve"]

TICK = 0.02
"""Seconds between two looks at the fake's clock for jobs that finished (webhooks)."""


class FakeServer:
    """Run a fake behind uvicorn in a background thread, on two loopback ports.

    While it runs, ``fake.api_origin`` and ``fake.storage_origin`` are the real origins, so
    every URL the fake hands out (polling URLs, pre-signed URLs) points at this server.

    Args:
        fake: The fake to serve (a new one by default).
        host: The interface to listen on (keep to loopback).
        port: The API port; 0 picks a free one.
        storage_port: The storage port; 0 picks a free one.
        startup_timeout: Seconds to wait for both origins to listen.

    Example:
        >>> with FakeServer() as server:
        ...     httpx.get(f"{server.base_url}/api/v1/videos/models", headers=...)
    """

    def __init__(
        self,
        fake: FakeProvider | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        storage_port: int = 0,
        startup_timeout: float = 10.0,
    ) -> None:
        self.fake = fake or FakeProvider()
        self.host = host
        self._ports = (port, storage_port)
        self._startup_timeout = startup_timeout
        self._servers: list[uvicorn.Server] = []
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._origins: tuple[str, str] | None = None
        self._saved_origins = (self.fake.api_origin, self.fake.storage_origin)
        self._ticking = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The API origin, ``http://127.0.0.1:<port>``: the ``base_url`` to give a client.

        Raises:
            RuntimeError: If the server is not running.
        """
        return self._running_origins()[0]

    @property
    def storage_url(self) -> str:
        """The storage origin that pre-signed URLs point to.

        Raises:
            RuntimeError: If the server is not running.
        """
        return self._running_origins()[1]

    def start(self) -> None:
        """Bind both ports, start serving and wait until both origins listen.

        Raises:
            RuntimeError: If it is already running or does not start in time.
            ImportError: If uvicorn is not installed (``pip install 'mediajobs[testing]'``).
            OSError: If a port cannot be bound.
        """
        if self._thread is not None:
            raise RuntimeError("the fake server is already running")
        import uvicorn  # noqa: PLC0415  (optional dependency)

        sockets = [_listen(self.host, port) for port in self._ports]
        origins = tuple(f"http://{self.host}:{sock.getsockname()[1]}" for sock in sockets)
        self._origins = (origins[0], origins[1])
        self._saved_origins = (self.fake.api_origin, self.fake.storage_origin)
        self.fake.api_origin, self.fake.storage_origin = self._origins
        self._servers = [
            uvicorn.Server(
                uvicorn.Config(
                    FakeASGIApp(self.fake, role),
                    log_level="warning",
                    access_log=False,
                    lifespan="off",
                    http="h11",
                    ws="none",
                    proxy_headers=False,
                    server_header=False,
                    # Well above httpx's 5 s keep-alive expiry: with equal timeouts a client can
                    # write a request to a connection the server is closing.
                    timeout_keep_alive=30,
                )
            )
            for role in ("api", "storage")
        ]
        self._thread = threading.Thread(
            target=self._run, args=(sockets,), name="mediajobs-fake-server", daemon=True
        )
        self._thread.start()
        self._ticking.clear()
        self._ticker = threading.Thread(target=self._tick, name="mediajobs-fake-clock", daemon=True)
        self._ticker.start()
        deadline = time.monotonic() + self._startup_timeout
        while not all(server.started for server in self._servers):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the fake server did not start") from self._failure
            time.sleep(0.01)

    def stop(self, grace: float = 1.0) -> None:
        """Stop serving, close the ports and give the fake its previous origins back.

        Idle connections close at once. Responses in flight get ``grace`` seconds to finish;
        then their connections are aborted, so clients see a connection error at once rather
        than waiting for their read timeout.

        Args:
            grace: Seconds in-flight responses may take to finish.
        """
        thread = self._thread
        if thread is None:
            return
        self._ticking.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        self.fake.close()
        for server in self._servers:
            server.should_exit = True
        thread.join(timeout=grace)
        loop = self._loop
        if thread.is_alive() and loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._abort_connections)
            thread.join(timeout=3)
        if thread.is_alive():
            for server in self._servers:
                server.force_exit = True
            thread.join(timeout=5)
        self._thread = None
        self._loop = None
        self._origins = None
        self.fake.api_origin, self.fake.storage_origin = self._saved_origins

    def _tick(self) -> None:
        """Let the fake notice, on its clock, jobs that finished (it sends their webhooks)."""
        while not self._ticking.wait(TICK):
            self.fake.tick()

    def _abort_connections(self) -> None:
        """Reset every open connection (runs on the server's loop).

        The app's body loop notices the closed transport and returns, so no task is left to
        cancel (which uvicorn would log with a traceback).
        """
        for server in self._servers:
            for connection in list(server.server_state.connections):
                transport = getattr(connection, "transport", None)
                if isinstance(transport, asyncio.Transport):
                    transport.abort()
                # A body send waiting for the socket to drain would wait forever: release it.
                resume = getattr(connection, "resume_writing", None)
                if callable(resume):
                    resume()

    def wait(self, timeout: float | None = None) -> bool:
        """Block while the server runs.

        Args:
            timeout: Give up after this many seconds (``None``: wait until it stops).

        Returns:
            Whether the server has stopped.
        """
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def __enter__(self) -> FakeServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _running_origins(self) -> tuple[str, str]:
        if self._origins is None:
            raise RuntimeError("the fake server is not running: use start() or `with`")
        return self._origins

    def _run(self, sockets: list[socket.socket]) -> None:
        async def serve_all() -> None:
            self._loop = asyncio.get_running_loop()
            await asyncio.gather(
                *(
                    server.serve(sockets=[sock])
                    for server, sock in zip(self._servers, sockets, strict=True)
                )
            )

        try:
            asyncio.run(serve_all())
        except BaseException as exc:  # reported by start(); the thread must not print
            self._failure = exc
        finally:
            for sock in sockets:
                sock.close()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
    # proto says TCP; without it every answer on a reused connection waits ~40 ms for an ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    storage_port: int = 0,
    fake: FakeProvider | None = None,
    on_ready: Callable[[FakeServer], None] | None = None,
) -> None:
    """Serve a fake until interrupted (Ctrl-C or SIGTERM); prints nothing.

    This is what ``mediajobs serve-fake`` runs: its ``on_ready`` prints ``server.base_url``.

    Args:
        host: The interface to listen on (keep to loopback).
        port: The API port (0 picks a free one).
        storage_port: The storage port (0 picks a free one).
        fake: The fake to serve (a new one, key ``test-key``, by default).
        on_ready: Called with the running server once both origins listen.

    Raises:
        ImportError: If uvicorn is not installed.
        OSError: If a port cannot be bound.
    """
    with FakeServer(fake, host=host, port=port, storage_port=storage_port) as server:
        restore = _stop_on_sigterm()
        try:
            if on_ready is not None:
                on_ready(server)
            while not server.wait(timeout=0.2):
                pass
        except KeyboardInterrupt:
            return
        finally:
            restore()


def _stop_on_sigterm() -> Callable[[], None]:
    """Turn SIGTERM into KeyboardInterrupt while serving (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore
