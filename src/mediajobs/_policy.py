"""Polling and retry policies: frozen values with pure methods, testable without sleeping.

Nothing here draws a random number: the caller passes ``rand`` (where a delay falls within its
jitter), so a schedule is reproducible. Every setting is checked when a policy is built, and
every delay has a floor, so a bad value or a ``Retry-After: 0`` on every answer cannot make a
busy loop.
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


def _next(
    base: float, *, jitter: float, rand: float, hint: float | None, hint_cap: float, floor: float
) -> float:
    """The delay: the server's hint if it is a number, else ``base`` spread by ``±jitter``.

    ``rand`` 0.5 is the jitter's midpoint. A hint is capped at ``hint_cap``; both are raised to
    ``floor``.
    """
    spread = _check_rand(rand)
    if hint is not None and not math.isnan(hint):
        return max(min(hint, hint_cap), floor)
    return max(base * (1.0 + jitter * (2.0 * spread - 1.0)), floor)


def _floor(explicit: float | None, initial: float) -> float:
    if explicit is not None:
        return float(explicit)
    return min(DEFAULT_MIN_DELAY, float(initial))


def _check_delays(
    owner: str,
    *,
    initial: object,
    jitter: object,
    cap: tuple[str, object],
    hint_cap: tuple[str, object],
    floor: tuple[str, object],
) -> None:
    """Check the settings both policies share; ``cap``, ``hint_cap``, ``floor``: (name, value)."""
    first = _number(owner, "initial", initial)
    _check(owner, "initial", initial, first > 0, "> 0")
    spread = _number(owner, "jitter", jitter)
    _check(owner, "jitter", jitter, 0 <= spread <= 1, "within [0, 1]")
    cap_name, cap_value = cap
    largest = _number(owner, cap_name, cap_value)
    _check(owner, cap_name, cap_value, largest >= first, f">= initial ({first:g})")
    hint_name, hint_value = hint_cap
    _check(owner, hint_name, hint_value, _number(owner, hint_name, hint_value) > 0, "> 0")
    floor_name, floor_value = floor
    if floor_value is not None:
        smallest = _number(owner, floor_name, floor_value)
        _check(
            owner,
            floor_name,
            floor_value,
            0 < smallest <= largest,
            f"> 0 and <= {cap_name} ({largest:g})",
        )


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
        factor = _number("PollPolicy", "factor", self.factor)
        _check("PollPolicy", "factor", self.factor, factor >= 1, ">= 1")
        _check_delays(
            "PollPolicy",
            initial=self.initial,
            jitter=self.jitter,
            cap=("max_interval", self.max_interval),
            hint_cap=("max_hint", self.max_hint),
            floor=("min_interval", self.min_interval),
        )

    @property
    def floor(self) -> float:
        """The shortest delay this policy ever returns, in seconds (``min_interval`` resolved)."""
        return _floor(self.min_interval, self.initial)

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
        base = _grown(self.initial, self.factor, attempt, self.max_interval)
        return _next(
            base, jitter=self.jitter, rand=rand, hint=hint, hint_cap=self.max_hint, floor=self.floor
        )

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
        attempts: object = self.max_attempts
        _check(
            "RetryPolicy",
            "max_attempts",
            attempts,
            isinstance(attempts, int) and not isinstance(attempts, bool) and attempts >= 1,
            "an int >= 1",
        )
        _check_delays(
            "RetryPolicy",
            initial=self.initial,
            jitter=self.jitter,
            cap=("max_delay", self.max_delay),
            hint_cap=("max_retry_after", self.max_retry_after),
            floor=("min_delay", self.min_delay),
        )

    @property
    def floor(self) -> float:
        """The shortest backoff this policy ever returns, in seconds (``min_delay`` resolved)."""
        return _floor(self.min_delay, self.initial)

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
        base = _grown(self.initial, 2.0, attempt - 1, self.max_delay)
        return _next(
            base,
            jitter=self.jitter,
            rand=rand,
            hint=hint,
            hint_cap=self.max_retry_after,
            floor=self.floor,
        )

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
