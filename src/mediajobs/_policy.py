"""Polling and retry policies: frozen values with pure methods, testable without sleeping.

Nothing here reads a clock or draws a random number: the caller passes ``rand`` (jitter) and
``now`` (HTTP dates) in. Every setting is checked when a policy is built, and every delay has a
floor, so a bad value or a ``Retry-After: 0`` on every answer cannot make a busy loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from ._exceptions import ConfigurationError

__all__ = ["DEFAULT_MIN_DELAY", "PollPolicy", "RetryPolicy", "check_timeout", "parse_retry_after"]

DEFAULT_MIN_DELAY = 0.5
"""The floor of every delay, in seconds, unless a policy sets its own (or starts lower)."""


def _number(owner: str, name: str, value: object) -> float:
    """Return ``value`` as a finite float, or raise ConfigurationError naming the setting."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{owner}.{name} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigurationError(f"{owner}.{name} must be finite, got {number!r}")
    return number


def _check(owner: str, name: str, value: object, ok: bool, rule: str) -> None:
    if not ok:
        raise ConfigurationError(f"{owner}.{name} must be {rule}, got {value!r}")


def _check_rand(rand: float) -> float:
    value = _number("next_delay", "rand", rand)
    _check("next_delay", "rand", rand, 0.0 <= value <= 1.0, "within [0, 1]")
    return value


def _grown(initial: float, ratio: float, steps: int, cap: float) -> float:
    """``initial * ratio**steps`` capped at ``cap``, without overflow for any ``steps``."""
    if steps <= 0 or ratio == 1.0 or initial >= cap:
        return min(initial, cap)
    if steps * math.log(ratio) >= math.log(cap / initial):
        return cap
    return min(initial * ratio**steps, cap)


def _delay(base: float, jitter: float, rand: float, floor: float) -> float:
    """Spread ``base`` by ``±jitter`` (``rand`` 0.5 is the midpoint) and raise it to ``floor``."""
    return max(base * (1.0 + jitter * (2.0 * rand - 1.0)), floor)


def _hinted(hint: float, floor: float, cap: float) -> float | None:
    """A server hint clamped to ``[floor, cap]``; ``None`` for a hint that is not a number."""
    if math.isnan(hint):
        return None
    return max(min(hint, cap), floor)


@dataclass(frozen=True)
class PollPolicy:
    """How long to wait between status polls.

    The n-th delay (``attempt`` counted from 0: the wait before the first poll) is
    ``initial * factor**attempt``, capped at ``max_interval``, then spread by ``±jitter`` (a
    fraction) so that many clients started together do not poll in lockstep. A server hint
    (``Retry-After`` on a poll response) replaces the computed delay for that one poll, capped at
    ``max_hint``; it is read afresh on every response, never frozen. No delay, hinted or computed,
    is ever shorter than ``min_interval``.

    The defaults (a first poll after 4.8 s, then 2.5 % longer each time, at most 10 s) were
    chosen for jobs of unknown length spread evenly over 2-60 s: about 6.4 polls per job, each
    job seen done 14.6 % of its length after it ended on average, where no fixed interval is
    as good on both counts (docs/performance.md). 10 s is the top of TheRouter's published
    5-10 s and the bottom of OpenRouter's 10-30 s.

    Attributes:
        initial: The first delay, in seconds (> 0).
        factor: Growth of the delay per poll (>= 1; 1.0 for fixed-interval polling).
        max_interval: The largest computed delay, in seconds (>= ``initial``).
        jitter: Relative spread of each delay, 0 to 1.
        max_hint: The largest server hint honoured, in seconds (> 0).
        min_interval: The shortest delay ever used, server hints included, in seconds (> 0,
            at most ``max_interval``). ``None`` (the default) means 0.5 s, or ``initial`` when
            that is shorter.

    Raises:
        ConfigurationError: When a setting is not a finite number in its range.
    """

    initial: float = 4.8
    factor: float = 1.025
    max_interval: float = 10.0
    jitter: float = 0.1
    max_hint: float = 300.0
    min_interval: float | None = None

    def __post_init__(self) -> None:
        owner = "PollPolicy"
        initial = _number(owner, "initial", self.initial)
        _check(owner, "initial", self.initial, initial > 0, "> 0")
        factor = _number(owner, "factor", self.factor)
        _check(owner, "factor", self.factor, factor >= 1, ">= 1")
        cap = _number(owner, "max_interval", self.max_interval)
        _check(
            owner, "max_interval", self.max_interval, cap >= initial, f">= initial ({initial:g})"
        )
        jitter = _number(owner, "jitter", self.jitter)
        _check(owner, "jitter", self.jitter, 0 <= jitter <= 1, "within [0, 1]")
        max_hint = _number(owner, "max_hint", self.max_hint)
        _check(owner, "max_hint", self.max_hint, max_hint > 0, "> 0")
        if self.min_interval is not None:
            floor = _number(owner, "min_interval", self.min_interval)
            _check(
                owner,
                "min_interval",
                self.min_interval,
                0 < floor <= cap,
                f"> 0 and <= max_interval ({cap:g})",
            )

    @property
    def floor(self) -> float:
        """The shortest delay this policy ever returns, in seconds (``min_interval`` resolved)."""
        if self.min_interval is not None:
            return float(self.min_interval)
        return min(DEFAULT_MIN_DELAY, float(self.initial))

    def next_delay(self, attempt: int, *, hint: float | None = None, rand: float) -> float:
        """Return the delay before the next poll.

        Args:
            attempt: How many polls have been made so far in this wait (0 before the first;
                a negative count is taken as 0).
            hint: A server-suggested delay in seconds, if the last response carried one. It is
                capped at ``max_hint`` and raised to ``min_interval``; one that is not a number
                is ignored.
            rand: A number in [0, 1) that places the delay within its jitter (0.5: no spread).
                The caller draws it, so the schedule is reproducible.

        Returns:
            The delay in seconds, never below ``min_interval``.

        Raises:
            ConfigurationError: When ``rand`` is not a number within [0, 1].
        """
        spread = _check_rand(rand)
        floor = self.floor
        if hint is not None:
            hinted = _hinted(float(hint), floor, max(self.max_hint, floor))
            if hinted is not None:
                return hinted
        base = _grown(self.initial, self.factor, attempt, self.max_interval)
        return _delay(base, self.jitter, spread, floor)

    @classmethod
    def fixed(cls, interval: float) -> PollPolicy:
        """Return a policy that polls every ``interval`` seconds, without jitter.

        Args:
            interval: The interval in seconds (> 0).

        Returns:
            The policy.

        Raises:
            ConfigurationError: When ``interval`` is not a finite number > 0.
        """
        seconds = _number("PollPolicy.fixed", "interval", interval)
        _check("PollPolicy.fixed", "interval", interval, seconds > 0, "> 0")
        return cls(initial=interval, factor=1.0, max_interval=interval, jitter=0.0)


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures of polls, cancels and downloads are retried.

    Connection errors, timeouts and 408/429/500/502/503/504 answers are retried up to
    ``max_attempts`` attempts in all, after ``initial * 2**n`` seconds (capped at ``max_delay``,
    spread by ``±jitter``), or after the server's ``Retry-After`` when it sent one (capped at
    ``max_retry_after``). No backoff, hinted or computed, is shorter than ``min_delay``. A submit
    is retried only when it cannot have been accepted.

    Attributes:
        max_attempts: Attempts in all, the first included (an int >= 1; 1 disables retries).
        initial: The first backoff, in seconds (> 0).
        max_delay: The largest computed backoff, in seconds (>= ``initial``).
        jitter: Relative spread of each backoff, 0 to 1.
        max_retry_after: The largest ``Retry-After`` honoured, in seconds (> 0).
        min_delay: The shortest backoff ever used, ``Retry-After`` included, in seconds (> 0,
            at most ``max_delay``). ``None`` (the default) means 0.5 s, or ``initial`` when
            that is shorter.

    Raises:
        ConfigurationError: When a setting is not a finite number in its range.
    """

    max_attempts: int = 5
    initial: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 120.0
    min_delay: float | None = None

    def __post_init__(self) -> None:
        owner = "RetryPolicy"
        attempts: object = self.max_attempts
        _check(
            owner,
            "max_attempts",
            attempts,
            isinstance(attempts, int) and not isinstance(attempts, bool) and attempts >= 1,
            "an int >= 1",
        )
        initial = _number(owner, "initial", self.initial)
        _check(owner, "initial", self.initial, initial > 0, "> 0")
        cap = _number(owner, "max_delay", self.max_delay)
        _check(owner, "max_delay", self.max_delay, cap >= initial, f">= initial ({initial:g})")
        jitter = _number(owner, "jitter", self.jitter)
        _check(owner, "jitter", self.jitter, 0 <= jitter <= 1, "within [0, 1]")
        max_retry_after = _number(owner, "max_retry_after", self.max_retry_after)
        _check(owner, "max_retry_after", self.max_retry_after, max_retry_after > 0, "> 0")
        if self.min_delay is not None:
            floor = _number(owner, "min_delay", self.min_delay)
            _check(
                owner,
                "min_delay",
                self.min_delay,
                0 < floor <= cap,
                f"> 0 and <= max_delay ({cap:g})",
            )

    @property
    def floor(self) -> float:
        """The shortest backoff this policy ever returns, in seconds (``min_delay`` resolved)."""
        if self.min_delay is not None:
            return float(self.min_delay)
        return min(DEFAULT_MIN_DELAY, float(self.initial))

    def next_delay(self, attempt: int, *, hint: float | None = None, rand: float) -> float:
        """Return the backoff before retry number ``attempt`` (1 for the first retry).

        Args:
            attempt: The number of attempts made so far (>= 1; lower counts are taken as 1).
            hint: The server's ``Retry-After`` in seconds, if any. It is capped at
                ``max_retry_after`` and raised to ``min_delay``; one that is not a number is
                ignored.
            rand: A number in [0, 1) that places the backoff within its jitter (0.5: no
                spread). The caller draws it, so the schedule is reproducible.

        Returns:
            The delay in seconds, never below ``min_delay``.

        Raises:
            ConfigurationError: When ``rand`` is not a number within [0, 1].
        """
        spread = _check_rand(rand)
        floor = self.floor
        if hint is not None:
            hinted = _hinted(float(hint), floor, max(self.max_retry_after, floor))
            if hinted is not None:
                return hinted
        base = _grown(self.initial, 2.0, attempt - 1, self.max_delay)
        return _delay(base, self.jitter, spread, floor)

    @classmethod
    def none(cls) -> RetryPolicy:
        """Return a policy that never retries.

        Returns:
            The policy.
        """
        return cls(max_attempts=1)


def check_timeout(value: object, name: str) -> float | None:
    """Check a wait timeout: ``None`` (no deadline) or a finite number of seconds > 0.

    Args:
        value: The timeout as given.
        name: How the caller calls it in messages (e.g. ``"timeout"``, ``"wait_timeout"``).

    Returns:
        The timeout as a float, or ``None``.

    Raises:
        ConfigurationError: When it is not ``None`` and not a finite number > 0.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(
            f"{name} must be a number of seconds or None, got {type(value).__name__}"
        )
    seconds = float(value)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigurationError(f"{name} must be a finite number of seconds > 0, got {seconds!r}")
    return seconds


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
