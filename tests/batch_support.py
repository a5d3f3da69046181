"""Helpers for the batch tests: a fake that can hold submits and trickle artifacts."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from mediajobs.testing import FakeProvider
from mediajobs.testing._storage import ArtifactStream

KINDS = {"therouter": "image", "worldrouter": "image", "openrouter": "video", "onerouter": "video"}
"""A kind every provider offers."""


def write_batch(path: Path, provider: str, count: int, **params: Any) -> Path:
    """A batch file of ``count`` jobs of the provider's kind."""
    kind = KINDS[provider]
    lines = [
        json.dumps({"kind": kind, "model": "m", "prompt": f"job {i}", **params})
        for i in range(count)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class _Trickle(httpx.AsyncByteStream):
    """An artifact body sent in small chunks with a pause between them."""

    def __init__(self, stream: ArtifactStream, pause: float) -> None:
        self._stream = stream
        self._pause = pause

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._stream:
            for start in range(0, len(chunk), 4096):
                yield chunk[start : start + 4096]
                await asyncio.sleep(self._pause)


class HoldingFake(FakeProvider):
    """A fake that can stop at the moments a kill test aims at.

    - ``hold_before``: a submit waits, unprocessed, until :attr:`release` is set; then the
      connection is cut without a job (the request never "arrived").
    - ``hold_after``: a submit is processed (the job exists) and its answer waits until
      :attr:`release` is set.
    - ``trickle``: artifact bodies are sent 4 KiB at a time with this pause (seconds).

    Holding blocks the served fake's event loop: meant for one client at a time.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hold_before = False
        self.hold_after = False
        self.trickle: float | None = None
        self.held = threading.Event()
        """Set once a submit is being held."""
        self.release = threading.Event()

    def handle(self, request: httpx.Request) -> httpx.Response:
        submit = request.method == "POST" and not request.url.path.endswith("/cancel")
        if submit and self.hold_before:
            self.held.set()
            self.release.wait(30)
            raise httpx.RemoteProtocolError("held submit dropped", request=request)
        response = super().handle(request)
        if submit and self.hold_after:
            self.held.set()
            self.release.wait(30)
        if self.trickle is not None and isinstance(response.stream, ArtifactStream):
            response.stream = _Trickle(response.stream, self.trickle)
        return response
