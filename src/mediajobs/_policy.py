"""Polling and retry policies: frozen values with pure methods, testable without sleeping."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

__all__ = ["PollPolicy", "RetryPolicy", "parse_retry_after"]


def _jittered(delay: float, jitter: float, rand: float | None) -> float:
    if jitter <= 0 or delay <= 0:
        return delay
    r = random.random() if rand is None else rand  # noqa: S311 - jitter, not cryptography
    return max(0.0, delay * (1.0 + jitter * (2.0 * r - 1.0)))


@dataclass(frozen=True)
class PollPolicy:
    """How long to wait between status polls.

    The n-th delay (``attempt`` counted from 0) is ``initial * factor**attempt``, capped at
    ``max_interval``, then spread by ``±jitter`` (a fraction) so that many clients started
    together do not poll in lockstep. A server hint (``Retry-After`` on a poll response)
    replaces the computed delay for that one poll, capped at ``max_hint``; it is read afresh
    on every response, never frozen.

    The defaults (2.5 s, factor 1.1, at most 5 s) come from simulating jobs of unknown length: for
    2-60 s jobs they send about a third of the requests of fixed 1 s polling and notice
    completion 1.9 s after it on average (docs/performance.md).

    Attributes:
        initial: The first delay, in seconds.
        factor: Growth of the delay per poll (1.0 for fixed-interval polling).
        max_interval: The largest computed delay, in seconds.
        jitter: Relative spread of each delay, 0 to 1.
        max_hint: The largest server hint honoured, in seconds.
    """

    initial: float = 2.5
    factor: float = 1.1
    max_interval: float = 5.0
    jitter: float = 0.1
    max_hint: float = 300.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.max_interval < 0 or self.max_hint < 0:
            raise ValueError("PollPolicy delays must be >= 0")
        if self.factor < 1:
            raise ValueError("PollPolicy.factor must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("PollPolicy.jitter must be within [0, 1]")

    def next_delay(
        self, attempt: int, *, hint: float | None = None, rand: float | None = None
    ) -> float:
        """Return the delay before the next poll.

        Args:
            attempt: How many polls have been made so far in this wait (0 before the second).
            hint: A server-suggested delay in seconds, if the last response carried one.
            rand: A number in [0, 1) used for jitter; random when omitted.

        Returns:
            The delay in seconds.
        """
        if hint is not None:
            return min(max(hint, 0.0), self.max_hint)
        base = min(self.initial * self.factor ** min(attempt, 64), self.max_interval)
        return min(_jittered(base, self.jitter, rand), self.max_interval * (1 + self.jitter))

    @classmethod
    def fixed(cls, interval: float) -> PollPolicy:
        """Return a policy that polls every ``interval`` seconds, without jitter.

        Args:
            interval: The interval in seconds.

        Returns:
            The policy.
        """
        return cls(initial=interval, factor=1.0, max_interval=interval, jitter=0.0)


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures of polls, cancels and downloads are retried.

    Connection errors, timeouts and 408/429/500/502/503/504 answers are retried up to
    ``max_attempts`` attempts in all, after ``initial * 2**n`` seconds (capped at ``max_delay``,
    spread by ``±jitter``), or after the server's ``Retry-After`` when it sent one (capped at
    ``max_retry_after``). A submit is retried only when it cannot have been accepted.

    Attributes:
        max_attempts: Attempts in all, the first included (1 disables retries).
        initial: The first backoff, in seconds.
        max_delay: The largest computed backoff, in seconds.
        jitter: Relative spread of each backoff, 0 to 1.
        max_retry_after: The largest ``Retry-After`` honoured, in seconds.
    """

    max_attempts: int = 5
    initial: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be >= 1")
        if self.initial < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("RetryPolicy delays must be >= 0")
        if not 0 <= self.jitter <= 1:
            raise ValueError("RetryPolicy.jitter must be within [0, 1]")

    def next_delay(
        self, attempt: int, *, hint: float | None = None, rand: float | None = None
    ) -> float:
        """Return the backoff before retry number ``attempt`` (1 for the first retry).

        Args:
            attempt: The number of attempts made so far (>= 1).
            hint: The server's ``Retry-After`` in seconds, if any.
            rand: A number in [0, 1) used for jitter; random when omitted.

        Returns:
            The delay in seconds.
        """
        if hint is not None:
            return min(max(hint, 0.0), self.max_retry_after)
        base = min(self.initial * 2.0 ** min(max(attempt - 1, 0), 64), self.max_delay)
        return _jittered(base, self.jitter, rand)

    @classmethod
    def none(cls) -> RetryPolicy:
        """Return a policy that never retries.

        Returns:
            The policy.
        """
        return cls(max_attempts=1)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header: delay-seconds or an HTTP date.

    Args:
        value: The header value.
        now: The current time for HTTP dates (defaults to the wall clock).

    Returns:
        The delay in seconds (never negative), or ``None`` when absent or unreadable.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    return max((when - current).total_seconds(), 0.0)
