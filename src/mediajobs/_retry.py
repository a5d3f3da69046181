"""The one retry rule, for API requests, artifact downloads and the polls of many-job waits.

:class:`RetryRule` answers one question: *this attempt failed; after how long is the next one?*
(or raises the failure when there is none). tenacity decides, through its strategies evaluated on
a state this module keeps: ``retry_if_exception`` (is the failure retryable?) and
``stop_after_attempt`` combined with a deadline stop (is it time to give up?). The delay is the
:class:`~mediajobs.RetryPolicy` backoff with jitter drawn from the injected random source, or the
server's ``Retry-After``. The clock is injected too; nothing here reads the time.

A request whose first attempt succeeds costs nothing here: the rule is consulted on failures only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import cast

import tenacity

from ._exceptions import APIConnectionError, APIError, MediaJobsError
from ._policy import RetryPolicy, parse_retry_after

__all__ = [
    "RETRYABLE_STATUS",
    "DeadlineReachedError",
    "RetryRule",
    "is_transient",
    "submit_may_retry",
]

log = logging.getLogger("mediajobs")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    """Tell whether a failure is worth retrying for an idempotent request.

    Args:
        exc: The failure.

    Returns:
        ``True`` for connection errors, timeouts and 408/429/5xx answers.
    """
    if isinstance(exc, APIConnectionError):
        return True
    return isinstance(exc, APIError) and exc.status_code in RETRYABLE_STATUS


def submit_may_retry(exc: BaseException) -> bool:
    """Tell whether a failed submit may be repeated: only when it cannot have been accepted.

    Args:
        exc: The failure.

    Returns:
        ``True`` for a connection that never opened and for 429.
    """
    if isinstance(exc, APIConnectionError):
        return exc.unsent
    return isinstance(exc, APIError) and exc.status_code == 429


class DeadlineReachedError(Exception):
    """Retries stopped because the next attempt would start after the deadline.

    ``__cause__`` is the last failure; callers turn this into their own timeout error.
    """


class _StopAtDeadline(tenacity.stop.stop_base):
    """A tenacity stop condition: the next attempt would start after the deadline."""

    def __init__(self, clock: Callable[[], float], deadline: float | None) -> None:
        self.clock = clock
        self.deadline = deadline

    def __call__(self, state: tenacity.RetryCallState) -> bool:
        return self.deadline is not None and self.clock() + state.upcoming_sleep >= self.deadline


class _State:
    """The part of ``tenacity.RetryCallState`` its strategies read, without its wall clock."""

    __slots__ = ("attempt_number", "outcome", "upcoming_sleep")

    def __init__(self, attempt: int, failure: BaseException) -> None:
        self.attempt_number = attempt
        self.outcome = tenacity.Future.construct(attempt, failure, True)
        self.upcoming_sleep = 0.0


class RetryRule:
    """Whether and when a failed attempt is tried again.

    Args:
        policy: The retry policy (attempts, backoff, ``Retry-After`` cap).
        clock: A monotonic clock.
        random: Draws a number in [0, 1) for jitter.
        retryable: Which failures may be retried (default: :func:`is_transient`).
        deadline: A monotonic time no attempt may start after.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        clock: Callable[[], float],
        random: Callable[[], float],
        retryable: Callable[[BaseException], bool] = is_transient,
        deadline: float | None = None,
    ) -> None:
        self.policy = policy
        self.random = random
        self.deadline = deadline
        self._retry = tenacity.retry_if_exception(retryable)
        self._stop_attempts = tenacity.stop_after_attempt(policy.max_attempts)
        self._stop_deadline = _StopAtDeadline(clock, deadline)

    def delay(
        self,
        failure: MediaJobsError,
        attempts: int,
        *,
        what: str,
        hint: float | None = None,
        reason: str | None = None,
    ) -> float:
        """Return the delay before the next attempt, or raise when there is none.

        Args:
            failure: Why the last attempt failed.
            attempts: Attempts that failed so far (in a row, or without progress), >= 1.
            what: What is retried, for the log line (no query string, no key).
            hint: A server-suggested delay; by default the failure's ``Retry-After``.
            reason: Why the attempt failed, for the log line (default: the failure's message).

        Returns:
            The delay in seconds (logged at INFO on the ``mediajobs`` logger).

        Raises:
            MediaJobsError: ``failure`` itself, when it is not retryable or attempts ran out.
            DeadlineReachedError: When the next attempt would start after the deadline.
        """
        state = _State(attempts, failure)
        tenacity_state = cast(tenacity.RetryCallState, state)
        if not self._retry(tenacity_state) or self._stop_attempts(tenacity_state):
            raise failure
        if hint is None and isinstance(failure, APIError):
            hint = parse_retry_after(failure.retry_after)
        state.upcoming_sleep = self.policy.next_delay(attempts, hint=hint, rand=self.random())
        if self._stop_deadline(tenacity_state):
            raise DeadlineReachedError() from failure
        delay = state.upcoming_sleep
        log.info("%s failed (%s); retrying in %.2fs", what, reason or failure, delay)
        return delay
