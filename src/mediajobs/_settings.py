"""What a flow knows about its client, as plain data: dialect, key, headers, policies, clock.

The clock and the random source are injected here, by the client, so that nothing below (the
flows, the retry rule, the dialects) reads the time or draws a random number on its own: tests
drive them with a fake clock and fixed jitter.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from ._exceptions import APIError
from ._policy import PollPolicy, RetryPolicy, check_timeout

if TYPE_CHECKING:
    from .dialects.base import Dialect

__all__ = ["MIN_REQUEST_TIME", "Settings"]

MIN_REQUEST_TIME = 0.05
"""Seconds: a request given less time than this cannot succeed."""


@dataclass(frozen=True)
class Settings:
    """Everything a flow needs to know about its client, as plain data.

    Attributes:
        dialect: The provider dialect.
        api_key: The key (never formatted into text).
        headers: Headers for every API request (``User-Agent`` and the caller's own).
        timeout: The longest any single request may take: seconds for every phase, or an
            ``httpx.Timeout`` (connect, read, write, pool); the wait's deadline cuts each.
        poll: The default poll policy.
        retry: The retry policy.
        wait_timeout: The default deadline of a wait, in seconds (``None``: no deadline).
        clock: A monotonic clock.
        random: Draws a number in [0, 1) for jitter.
        concurrency: Requests in flight at once for many-job waits and downloads.
    """

    dialect: Dialect
    api_key: str = field(repr=False)
    headers: Mapping[str, str]
    timeout: float | httpx.Timeout
    poll: PollPolicy
    retry: RetryPolicy
    wait_timeout: float | None
    clock: Callable[[], float] = time.monotonic
    random: Callable[[], float] = field(default_factory=lambda: random.Random().random)  # noqa: S311
    concurrency: int = 32

    def __post_init__(self) -> None:
        """Refuse a request timeout that is not a finite number > 0, or a bad wait timeout.

        Raises:
            ConfigurationError: When one is (``nan``, ``inf``, negative, not a number; ``0``
                for a request).
        """
        if not isinstance(self.timeout, httpx.Timeout):  # one checked by its maker
            object.__setattr__(self, "timeout", check_timeout(self.timeout, "timeout"))
        object.__setattr__(self, "wait_timeout", _wait_seconds(self.wait_timeout, "wait_timeout"))

    def timeout_of(self, timeout: float | None) -> float | None:
        """Return the length of a wait: ``timeout`` checked, or the default ``wait_timeout``.

        Args:
            timeout: The caller's timeout in seconds (``0``: look once, do not wait), or
                ``None`` for the default.

        Returns:
            Seconds, or ``None`` for no deadline.

        Raises:
            ConfigurationError: When ``timeout`` is not a finite number of seconds >= 0.
        """
        return self.wait_timeout if timeout is None else _wait_seconds(timeout, "timeout")

    def prepare(self, request: httpx.Request, *, deadline: float | None = None) -> httpx.Request:
        """Add headers and credentials (API hosts only) and a timeout to a dialect's request.

        Other hosts (storage, redirect targets) get the ``User-Agent`` alone.

        Args:
            request: The request as the dialect built it.
            deadline: A monotonic deadline the request's timeout must not pass.

        Returns:
            The same request, completed.
        """
        headers = request.headers
        api = self.dialect.is_api_url(request.url)
        for name, value in self.headers.items():
            # The caller's headers are API headers: storage hosts and redirect targets
            # elsewhere get the User-Agent alone.
            if (api or name.lower() == "user-agent") and name not in headers:
                headers[name] = value  # not setdefault: a miss there raises and catches KeyError
        if api:
            for name, value in self.dialect.auth_headers(self.api_key).items():
                headers[name] = value
        limits = (
            self.timeout if isinstance(self.timeout, httpx.Timeout) else httpx.Timeout(self.timeout)
        ).as_dict()
        if deadline is not None:
            left = deadline - self.clock()
            limits = {
                part: max(left if seconds is None else min(seconds, left), MIN_REQUEST_TIME)
                for part, seconds in limits.items()
            }
        request.extensions["timeout"] = limits
        return request

    @property
    def request_seconds(self) -> float:
        """The longest a single request may take, in seconds (the largest part of a ``Timeout``)."""
        if not isinstance(self.timeout, httpx.Timeout):
            return float(self.timeout)
        parts = (self.timeout.connect, self.timeout.read, self.timeout.write, self.timeout.pool)
        return max((float(p) for p in parts if p is not None), default=0.0)

    def redact(self, text: str) -> str:
        """Remove the API key from a text.

        Args:
            text: Any text.

        Returns:
            The text with every occurrence of the key replaced by ``***``.
        """
        return text.replace(self.api_key, "***") if self.api_key else text

    def scrub(self, error: APIError) -> None:
        """Remove the API key from an API error's message and body, in place.

        Args:
            error: The error (a provider may echo a wrong key back in its message).
        """
        error.message = self.redact(error.message)
        error.args = (error.message,)
        if isinstance(error.body, str):
            error.body = self.redact(error.body)
        elif self.api_key and self.api_key in repr(error.body):
            error.body = "<redacted: the body quoted the API key>"


def _wait_seconds(value: object, name: str) -> float | None:
    # A wait may be 0 seconds long (read the job once, do not wait); a request may not.
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return 0.0
    return check_timeout(value, name)
