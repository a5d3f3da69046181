"""The job lifecycle as pure generators: submit, refresh, wait, cancel, and many-job waits.

A flow yields *steps* (:class:`Send` a request, :class:`Sleep` a while, :class:`Notify` the
caller of a new status) and returns a value; it never performs I/O. The two clients drive the
same flows (``_client.py``: ``run_sync`` / ``run_async``), so sync and async share every rule:
backoff, deadlines, retries, credential scoping, error translation.

Reading one wait from top to bottom: :func:`wait_flow` sleeps per :class:`~mediajobs.PollPolicy`
and calls :func:`refresh_flow`, which asks the dialect for a request and hands it to
:func:`request_flow`; that one adds headers and credentials (:meth:`Settings.prepare`), yields
it, translates failures (:func:`translate`) and retries them with tenacity.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import httpx
import tenacity

from ._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    JobCancelledError,
    JobExpiredError,
    JobFailedError,
    MediaJobsError,
    WaitTimeoutError,
)
from ._models import JobData, JobStatus, ModelInfo
from ._policy import PollPolicy, RetryPolicy, parse_retry_after
from .dialects.base import Dialect

__all__ = [
    "Flow",
    "ManyWait",
    "Notify",
    "Send",
    "Settings",
    "Sleep",
    "Step",
    "cancel_flow",
    "models_flow",
    "poll_flow",
    "raise_for_outcome",
    "refresh_flow",
    "request_flow",
    "submit_flow",
    "translate",
    "wait_flow",
]

T = TypeVar("T")
log = logging.getLogger("mediajobs")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_MIN_REQUEST_TIME = 0.05  # a request given less time than this cannot succeed


@dataclass(frozen=True)
class Send:
    """Send this request and resume the flow with the ``httpx.Response`` (or throw the error).

    Attributes:
        request: The request, complete with headers, credentials and timeout.
        stream: Leave the body unread (downloads); otherwise the driver reads it.
    """

    request: httpx.Request
    stream: bool = False


@dataclass(frozen=True)
class Sleep:
    """Sleep this many seconds, then resume the flow with ``None``.

    Attributes:
        seconds: The delay.
    """

    seconds: float


@dataclass(frozen=True)
class Notify:
    """Tell the caller's ``on_update`` about a status change, then resume with ``None``.

    Attributes:
        job: The new snapshot.
    """

    job: JobData


Step = Send | Sleep | Notify
Flow = Generator[Step, Any, T]


@dataclass(frozen=True)
class Settings:
    """Everything a flow needs to know about its client, as plain data.

    Attributes:
        dialect: The provider dialect.
        api_key: The key (never formatted into text).
        headers: Headers for every API request (``User-Agent`` and the caller's own).
        timeout: The longest any single request may take, in seconds.
        poll: The default poll policy.
        retry: The retry policy.
        wait_timeout: The default deadline of a wait, in seconds (``None``: no deadline).
        clock: A monotonic clock (injectable for tests).
    """

    dialect: Dialect
    api_key: str = field(repr=False)
    headers: Mapping[str, str]
    timeout: float
    poll: PollPolicy
    retry: RetryPolicy
    wait_timeout: float | None
    clock: Callable[[], float] = time.monotonic

    def prepare(self, request: httpx.Request, *, deadline: float | None = None) -> httpx.Request:
        """Add headers, credentials (API hosts only) and a timeout to a dialect's request.

        Args:
            request: The request as the dialect built it.
            deadline: A monotonic deadline the request's timeout must not pass.

        Returns:
            The same request, completed.
        """
        for name, value in self.headers.items():
            request.headers.setdefault(name, value)
        if self.dialect.is_api_url(request.url):
            request.headers.update(self.dialect.auth_headers(self.api_key))
        timeout = self.timeout
        if deadline is not None:
            timeout = max(min(timeout, deadline - self.clock()), _MIN_REQUEST_TIME)
        request.extensions["timeout"] = httpx.Timeout(timeout).as_dict()
        return request

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


class _DeadlineReachedError(Exception):
    """Internal: retries stopped because the next attempt would pass the deadline."""


class _StopAtDeadline(tenacity.stop.stop_base):
    """A tenacity stop condition: the next attempt would start after the deadline."""

    def __init__(self, clock: Callable[[], float], deadline: float | None) -> None:
        self.clock = clock
        self.deadline = deadline
        self.reached = False

    def __call__(self, state: tenacity.RetryCallState) -> bool:
        if self.deadline is not None and self.clock() + state.upcoming_sleep >= self.deadline:
            self.reached = True
        return self.reached


def _retry_delay(policy: RetryPolicy, state: tenacity.RetryCallState) -> float:
    failure = state.outcome.exception() if state.outcome else None
    hint = parse_retry_after(failure.retry_after) if isinstance(failure, APIError) else None
    return policy.next_delay(state.attempt_number, hint=hint)


def translate(exc: httpx.HTTPError, request: httpx.Request | None = None) -> MediaJobsError:
    """Translate an httpx failure into the mediajobs error tree.

    Args:
        exc: The httpx exception.
        request: The request that failed, if known.

    Returns:
        :class:`~mediajobs.APITimeoutError` for timeouts, :class:`~mediajobs.APIConnectionError`
        otherwise; ``.unsent`` tells whether the request surely never reached the server.
    """
    try:
        target = request or exc.request
        where = f"{target.method} {target.url.copy_with(query=None)}"
    except RuntimeError:
        where = "request"
    cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    unsent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    return cls(f"{where} failed: {type(exc).__name__}: {exc}", unsent=unsent)


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


def _submit_may_retry(exc: BaseException) -> bool:
    # A paid submit is retried only when the server cannot have accepted it.
    if isinstance(exc, APIConnectionError):
        return exc.unsent
    return isinstance(exc, APIError) and exc.status_code == 429


def request_flow(
    settings: Settings,
    build: Callable[[], httpx.Request],
    parse: Callable[[httpx.Response], T],
    *,
    submit: bool = False,
    deadline: float | None = None,
) -> Flow[T]:
    """Send one logical request, retrying transient failures per the retry policy.

    Each attempt builds a fresh request (bodies are not reusable), sends it and parses the
    answer; httpx failures become mediajobs errors, and an ``APIError`` whose body quotes the
    key is redacted. tenacity decides whether and when to retry; a ``Retry-After`` on the
    failed answer sets the delay.

    Args:
        settings: The client's settings.
        build: Builds the request (called once per attempt).
        parse: Turns a response into the result; raises ``APIError``/``ProtocolError``.
        submit: Retry only failures that prove the request was not accepted.
        deadline: Stop retrying when the next attempt would start after this monotonic time.

    Returns:
        What ``parse`` returned.

    Raises:
        MediaJobsError: The last failure, when it is not retryable or retries ran out.
    """
    policy = settings.retry
    at_deadline = _StopAtDeadline(settings.clock, deadline)
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_attempts) | at_deadline,
        wait=lambda state: _retry_delay(policy, state),
        retry=tenacity.retry_if_exception(_submit_may_retry if submit else is_transient),
        reraise=True,
    )
    retrying.begin()
    state = tenacity.RetryCallState(retrying, fn=None, args=(), kwargs={})
    while True:
        try:
            action = retrying.iter(retry_state=state)
        except MediaJobsError as exc:
            if at_deadline.reached:
                raise _DeadlineReachedError() from exc
            raise
        if isinstance(action, tenacity.DoAttempt):
            request = build()
            try:
                response = yield Send(settings.prepare(request, deadline=deadline))
                result = parse(response)
            except httpx.HTTPError as exc:
                error = translate(exc, request)
                error.__cause__ = exc
                state.set_exception((type(error), error, None))
            except MediaJobsError as exc:
                if isinstance(exc, APIError):
                    settings.scrub(exc)
                state.set_exception((type(exc), exc, exc.__traceback__))
            else:
                state.set_result(result)
        elif isinstance(action, tenacity.DoSleep):
            state.prepare_for_next_attempt()
            log.debug("retrying %s in %.2fs", request.url.copy_with(query=None), float(action))
            yield Sleep(float(action))
        else:
            return action  # type: ignore[no-any-return]


def submit_flow(
    settings: Settings,
    kind: str,
    *,
    model: str,
    prompt: str | None,
    params: Mapping[str, Any],
    idempotency_key: str,
) -> Flow[JobData]:
    """Create a job; the same ``Idempotency-Key`` goes on every attempt.

    Args:
        settings: The client's settings.
        kind: The job kind.
        model: The model.
        prompt: The prompt.
        params: Extra provider parameters (input files already read).
        idempotency_key: The key for this submit's attempts.

    Returns:
        The new job.

    Raises:
        UnsupportedError: If the provider does not offer ``kind`` (before any request).
        MediaJobsError: When the submit fails.
    """
    dialect = settings.dialect
    dialect.check_kind(kind)

    def build() -> httpx.Request:
        request = dialect.build_submit(kind, model=model, prompt=prompt, params=params)
        request.headers["Idempotency-Key"] = idempotency_key
        return request

    job = yield from request_flow(
        settings,
        build,
        lambda response: dialect.parse_submit(response, kind=kind, model=model),
        submit=True,
    )
    log.debug("%s: submitted %s job %s", dialect.name, kind, job.id)
    return job


def poll_flow(
    settings: Settings, job: JobData, deadline: float | None = None
) -> Flow[tuple[JobData, float | None]]:
    """Read a job's state once (with retries), with the server's poll hint.

    Args:
        settings: The client's settings.
        job: The last snapshot.
        deadline: A monotonic time retries must not pass.

    Returns:
        The new snapshot and the ``Retry-After`` of the answer in seconds (or ``None``).

    Raises:
        MediaJobsError: When the status cannot be read.
    """
    dialect = settings.dialect

    def parse(response: httpx.Response) -> tuple[JobData, float | None]:
        new = dialect.parse_poll(response, previous=job)
        return new, parse_retry_after(response.headers.get("retry-after"))

    return (
        yield from request_flow(settings, lambda: dialect.build_poll(job), parse, deadline=deadline)
    )


def refresh_flow(settings: Settings, job: JobData) -> Flow[JobData]:
    """Read a job's current state once (with retries).

    Args:
        settings: The client's settings.
        job: The last snapshot.

    Returns:
        The new snapshot.

    Raises:
        MediaJobsError: When the status cannot be read.
    """
    new, _ = yield from poll_flow(settings, job, None)
    return new


def cancel_flow(settings: Settings, job: JobData) -> Flow[JobData]:
    """Cancel a job.

    Args:
        settings: The client's settings.
        job: The job.

    Returns:
        The job after the cancel request.

    Raises:
        UnsupportedError: Where the provider has no cancel (before any request).
        MediaJobsError: When the cancel fails.
    """
    dialect = settings.dialect
    dialect.build_cancel(job)  # raises UnsupportedError before any request is sent
    return (
        yield from request_flow(
            settings,
            lambda: dialect.build_cancel(job),
            lambda response: dialect.parse_cancel(response, previous=job),
        )
    )


def models_flow(settings: Settings) -> Flow[list[ModelInfo]]:
    """List the provider's models.

    Args:
        settings: The client's settings.

    Returns:
        The model entries.

    Raises:
        UnsupportedError: Where the provider has no listing.
        MediaJobsError: When the request fails.
    """
    dialect = settings.dialect
    dialect.build_models()
    return (yield from request_flow(settings, dialect.build_models, dialect.parse_models))


def raise_for_outcome(job: JobData, wrap: Callable[[JobData], Any] = lambda d: d) -> None:
    """Raise the :class:`~mediajobs.JobError` that matches a terminal non-success state.

    Args:
        job: The terminal snapshot.
        wrap: Turns the snapshot into the handle stored on the error (``.job``).

    Raises:
        JobFailedError: The job failed.
        JobCancelledError: The job was cancelled.
        JobExpiredError: The job expired.
    """
    reason = f": {job.error.message}" if job.error else ""
    where = f"{job.provider} job {job.id}"
    if job.status is JobStatus.FAILED:
        raise JobFailedError(f"{where} failed{reason}", job=wrap(job))
    if job.status is JobStatus.CANCELLED:
        raise JobCancelledError(f"{where} was cancelled{reason}", job=wrap(job))
    if job.status is JobStatus.EXPIRED:
        raise JobExpiredError(f"{where} expired{reason}", job=wrap(job))


def wait_flow(
    settings: Settings,
    job: JobData,
    *,
    timeout: float | None = None,
    poll: PollPolicy | None = None,
) -> Flow[JobData]:
    """Poll until the job is terminal, within one monotonic deadline for the whole wait.

    The delay between polls follows the poll policy; a server hint (``Retry-After``) on a
    poll answer sets the next delay, read afresh each time. Every request's timeout shrinks
    to what is left of the deadline, and a final poll is made just before it. A job that was
    only named by id (empty ``raw``) is polled at once.

    Args:
        settings: The client's settings.
        job: The last snapshot.
        timeout: Seconds for the whole wait; ``None`` uses the client's ``wait_timeout``.
        poll: A poll policy for this wait; ``None`` uses the client's.

    Returns:
        The terminal snapshot, whatever its status (callers raise per outcome).

    Raises:
        WaitTimeoutError: When the deadline passes first (``.job`` is the last seen).
        MediaJobsError: When a status read fails beyond retries.
    """
    timeout = settings.wait_timeout if timeout is None else timeout
    deadline = None if timeout is None else settings.clock() + timeout
    policy = poll or settings.poll
    polls = 0
    hint: float | None = None
    poll_now = not job.raw
    last_poll = False
    while not job.done:
        if last_poll:
            raise _timeout(job, timeout)
        if not poll_now:
            delay = policy.next_delay(polls, hint=hint)
            if deadline is not None:
                remaining = deadline - settings.clock()
                if remaining <= _MIN_REQUEST_TIME:
                    raise _timeout(job, timeout)
                if delay >= remaining:  # one last poll, shortly before the deadline
                    delay = max(remaining - min(1.0, remaining / 2), 0.0)
                    last_poll = True
            yield Sleep(delay)
        poll_now = False
        try:
            new, hint = yield from poll_flow(settings, job, deadline)
        except _DeadlineReachedError as exc:
            raise _timeout(job, timeout) from exc.__cause__
        polls += 1
        if (new.status, new.raw_status) != (job.status, job.raw_status):
            yield Notify(new)
        job = new
    return job


def _timeout(job: JobData, timeout: float | None) -> WaitTimeoutError:
    return WaitTimeoutError(
        f"{job.provider} job {job.id} still {job.status.value} after {timeout:g}s "
        f"(it keeps running; resume with client.wait({job.id!r}))",
        job=job,
    )


class _Tracked:
    """A pending job's schedule: polls made and failures in a row.

    Its snapshot lives in :attr:`ManyWait.results`, so this stays a few dozen bytes.
    """

    __slots__ = ("failures", "polls")

    def __init__(self) -> None:
        self.polls = 0
        self.failures = 0


class ManyWait:
    """Pure scheduling state for waiting on many jobs at once.

    Each job keeps its own backoff (poll count and server hint); a heap orders the jobs by
    when they are next due. The drivers ask which jobs are due, poll them concurrently
    (bounded) with :meth:`poll_flow`, and report each outcome with :meth:`record`; terminal
    jobs leave the schedule and are listed by :meth:`drain_finished`.

    A poll here makes a single attempt: a transient failure reschedules that job alone after
    the retry policy's backoff (or the server's ``Retry-After``), so a failing job never holds
    a concurrency slot while it backs off. After ``retry.max_attempts`` failures in a row the
    failure is raised, as a single wait would.

    Args:
        settings: The client's settings.
        jobs: The jobs' snapshots, in input order.
        timeout: Seconds for the whole batch (one shared deadline); ``None`` uses the client's
            ``wait_timeout``.
        poll: A poll policy; ``None`` uses the client's.
    """

    def __init__(
        self,
        settings: Settings,
        jobs: Sequence[JobData],
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
    ) -> None:
        self.settings = settings
        self._single = replace(settings, retry=RetryPolicy.none())
        self.policy = poll or settings.poll
        self.timeout = settings.wait_timeout if timeout is None else timeout
        now = settings.clock()
        self.deadline = None if self.timeout is None else now + self.timeout
        self.results: list[JobData] = list(jobs)
        """The latest snapshot of every job, in input order."""
        self._heap: list[tuple[float, int]] = []
        self._tracked: dict[int, _Tracked] = {}
        self._finished: list[int] = []
        for index, job in enumerate(jobs):
            if job.done:
                self._finished.append(index)
                continue
            self._tracked[index] = _Tracked()
            due = now if not job.raw else now + self.policy.next_delay(0)
            heapq.heappush(self._heap, (due, index))

    @property
    def pending(self) -> int:
        """How many jobs are not terminal yet."""
        return len(self._tracked)

    def drain_finished(self) -> list[int]:
        """Return the indices of jobs that became terminal since the last call.

        Returns:
            Indices into :attr:`results`, in the order the jobs finished.
        """
        finished, self._finished = self._finished, []
        return finished

    def take_due(self, limit: int) -> list[tuple[int, JobData]]:
        """Remove and return up to ``limit`` jobs whose poll is due now.

        Args:
            limit: The most jobs to return (free concurrency slots).

        Returns:
            ``(index, snapshot)`` pairs.
        """
        now = self.settings.clock()
        due: list[tuple[int, JobData]] = []
        while self._heap and len(due) < limit and self._heap[0][0] <= now:
            _, index = heapq.heappop(self._heap)
            due.append((index, self.results[index]))
        return due

    def poll_flow(self, job: JobData) -> Flow[tuple[JobData, float | None]]:
        """Return the flow of one poll of a due job (one attempt, timeout cut to the deadline).

        Args:
            job: The job's snapshot from :meth:`take_due`.

        Returns:
            The flow; its outcome (or failure) goes to :meth:`record`.
        """
        return poll_flow(self._single, job, self.deadline)

    def requeue(self, index: int) -> None:
        """Put back a job whose poll was abandoned before it finished: it is due at once.

        Args:
            index: The job's index.
        """
        heapq.heappush(self._heap, (self.settings.clock(), index))

    def next_wake(self) -> float | None:
        """Return seconds until the next poll is due (0 if one is due now), or ``None``."""
        if not self._heap:
            return None
        return max(self._heap[0][0] - self.settings.clock(), 0.0)

    def time_left(self) -> float | None:
        """Return seconds until the shared deadline, or ``None`` without one."""
        return None if self.deadline is None else self.deadline - self.settings.clock()

    def record(
        self, index: int, outcome: tuple[JobData, float | None] | BaseException
    ) -> JobData | None:
        """Record one poll's outcome and reschedule the job.

        Args:
            index: The job's index.
            outcome: ``(snapshot, server hint)`` from :meth:`poll_flow`, or its failure.

        Returns:
            The snapshot if the job is now terminal, else ``None``.

        Raises:
            MediaJobsError: A non-transient failure (authentication, not found, protocol), or a
                transient one that happened ``retry.max_attempts`` times in a row.
        """
        tracked = self._tracked[index]
        if isinstance(outcome, BaseException):
            tracked.failures += 1
            if not is_transient(outcome) or tracked.failures >= self.settings.retry.max_attempts:
                raise outcome
            job = self.results[index]
            log.warning("polling %s job %s failed, will retry: %s", job.provider, job.id, outcome)
            hint = parse_retry_after(outcome.retry_after) if isinstance(outcome, APIError) else None
            delay = self.settings.retry.next_delay(tracked.failures, hint=hint)
        else:
            job, hint = outcome
            self.results[index] = job
            tracked.polls += 1
            tracked.failures = 0
            if job.done:
                del self._tracked[index]
                self._finished.append(index)
                return job
            delay = self.policy.next_delay(tracked.polls, hint=hint)
        heapq.heappush(self._heap, (self.settings.clock() + delay, index))
        return None

    def timeout_error(self) -> WaitTimeoutError:
        """Build the error raised when the shared deadline passes.

        Returns:
            A :class:`~mediajobs.WaitTimeoutError` whose ``.job`` is the first unfinished job and
            ``.pending`` lists all of them.
        """
        unfinished = [self.results[index] for index in sorted(self._tracked)]
        first = _timeout(unfinished[0], self.timeout)
        return WaitTimeoutError(
            f"{len(unfinished)} job(s) unfinished; first: {first.message}",
            job=unfinished[0],
            pending=unfinished,
        )
