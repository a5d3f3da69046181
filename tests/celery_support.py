"""Running the Celery tests' pieces: a served fake, worker subprocesses, a producer app.

Workers run ``tests/celery_app.py`` in their own process group (so that ``kill -9`` takes the
pool's children too) with ``src`` and ``tests`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
from celery import Celery

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
API_KEY = "sk-or-celery-" + uuid.uuid4().hex
"""The workers' key: a string a test can look for in every broker command."""
JSON_ONLY: dict[str, Any] = {
    "task_serializer": "json",
    "result_serializer": "json",
    "accept_content": ["json"],
    "broker_connection_retry_on_startup": True,
}
"""The settings producers and workers share: JSON messages and results only."""


def worker_env(
    broker: str,
    base_url: str,
    *,
    poll: float | None,
    visibility: float = 3600,
    scenario: str | None = None,
    store: str | None = None,
) -> dict[str, str]:
    """The environment of a worker (``poll=None``: the provider's default policy)."""
    env = dict(os.environ)
    path = [str(ROOT / "src"), str(TESTS)]
    if env.get("PYTHONPATH"):
        path.append(env["PYTHONPATH"])
    env.update(
        PYTHONPATH=os.pathsep.join(path),
        MEDIAJOBS_TEST_BROKER=broker,
        MEDIAJOBS_TEST_BASE_URL=base_url,
        MEDIAJOBS_TEST_VISIBILITY=str(visibility),
        OPENROUTER_API_KEY=API_KEY,
    )
    if poll is not None:
        env["MEDIAJOBS_TEST_POLL"] = str(poll)
    if scenario is not None:
        env["MEDIAJOBS_TEST_SCENARIO"] = scenario
    if store is not None:
        env["MEDIAJOBS_TEST_STORE"] = store
    return env


class Worker:
    """One ``celery worker`` process (and its pool), started at once."""

    def __init__(self, env: dict[str, str], *, concurrency: int = 2, pool: str = "prefork") -> None:
        self.name = f"w{uuid.uuid4().hex[:8]}@%h"
        self.log = open(  # noqa: SIM115 - closed in stop()
            Path(os.environ.get("TMPDIR", "/tmp")) / f"mediajobs-{self.name[:9]}.log", "w+b"
        )
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "celery_app", "worker",
                "--pool", pool, "--concurrency", str(concurrency), "-n", self.name,
                "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=TESTS,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        """``kill -9`` the worker and its pool, as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Stop the worker (warm shutdown, then kill) and close its log."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()

    def output(self) -> str:
        """What the worker logged so far."""
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")


@contextlib.contextmanager
def workers(env: dict[str, str], count: int = 1, **options: Any) -> Iterator[list[Worker]]:
    """Run ``count`` workers for the duration of the block."""
    started = [Worker(env, **options) for _ in range(count)]
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


def producer(broker: str) -> Celery:
    """The enqueuing side: an app with the broker, JSON only, set as the current app."""
    app = Celery("mediajobs_producer", broker=broker, backend=broker)
    app.conf.update(JSON_ONLY)
    app.set_current()
    app.set_default()
    return app


class Monitor:
    """Every command the Redis server receives while it runs (``MONITOR``), as text."""

    def __init__(self, url: str) -> None:
        self.commands: list[str] = []
        self._url = url
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with redis.Redis.from_url(self._url) as client, client.monitor() as monitor:
            self._ready.set()
            while not self._stop.is_set():
                self.commands.append(str(monitor.next_command()["command"]))

    def __enter__(self) -> Monitor:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with redis.Redis.from_url(self._url) as client:
            client.ping()  # one more command ends the blocking read
        self._thread.join(5)


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    """Poll ``predicate`` every 50 ms until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
