"""A throw-away Redis server for the Celery tests.

``redis_url`` (session scope) starts the Debian ``redis-server`` on a free loopback port, with
no persistence (no RDB snapshots, no append-only file) in a temporary directory, and yields
its URL; the server is shut down at the end of the session. ``MEDIAJOBS_TEST_REDIS_URL`` points
the tests at an existing server instead.

Without ``redis-server`` the tests skip, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

__all__ = ["free_port", "redis_url", "require_redis_server", "running_redis"]


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def running_redis(binary: str) -> Iterator[str]:
    """Run a private Redis server; yield its URL (database 0).

    Args:
        binary: The ``redis-server`` executable.

    Yields:
        ``redis://127.0.0.1:<port>/0``.

    Raises:
        RuntimeError: If the server does not answer within 10 seconds.
    """
    with tempfile.TemporaryDirectory(prefix="mediajobs-redis-") as workdir:
        port = free_port()
        process = subprocess.Popen(
            [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", workdir,
                "--save", "",
                "--appendonly", "no",
                "--protected-mode", "yes",
                "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while not _ping(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                    raise RuntimeError(f"redis-server did not start: {error[-2000:]}")
                time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr:
                process.stderr.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server for the whole session (see the module's docstring)."""
    existing = os.environ.get("MEDIAJOBS_TEST_REDIS_URL")
    if existing:
        yield existing
        return
    with running_redis(require_redis_server()) as url:
        yield url


def require_redis_server() -> str:
    """Find ``redis-server``; without it skip, or fail under CI (``CI`` set)."""
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if binary is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary
