"""The job lifecycle as pure generators: submit, refresh, wait, cancel, and many-job waits.

A flow yields steps (``_steps.py``) and returns a value; it never performs I/O, reads the time
or draws a random number (the clock and the random source come in :class:`Settings`). Both
clients run the same flows through the two drivers of ``_drivers.py``, so sync and async share
every rule: backoff, deadlines, retries, credential scoping, error translation, outcomes.

Reading one wait from top to bottom: :func:`wait_flow` sleeps per :class:`~mediajobs.PollPolicy`
and calls :func:`poll_flow`, which asks the dialect for a request and hands it to
:func:`request_flow`; that one adds headers and credentials (:meth:`Settings.prepare`), yields
it, translates failures and asks the one :class:`~mediajobs._retry.RetryRule` whether to try
again. A terminal state other than success is raised here, as the matching
:class:`~mediajobs.JobError` carrying the caller's handle.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx

from ._exceptions import (
    APIError,
    MediaJobsError,
    NotFoundError,
    ProtocolError,
    UnsupportedError,
    WaitTimeoutError,
    outcome_error,
    translate,
    unusable_redirect,
    wait_timeout_error,
)
from ._policy import PollPolicy, RetryPolicy, parse_retry_after
from ._retry import (
    RETRYABLE_STATUS,
    DeadlineReachedError,
    RetryRule,
    is_transient,
    submit_may_retry,
)
from ._settings import MIN_REQUEST_TIME, Settings
from ._status import is_newer
from ._steps import (
    Claim,
    Flow,
    Gather,
    H,
    Notify,
    Pushed,
    Record,
    Send,
    Sleep,
    StatusSeen,
    SubmitAccepted,
    SubmitFailed,
    SubmitIntent,
    WakeWatch,
    data_of,
    updated,
)

if TYPE_CHECKING:
    from ._models import JobData, ModelInfo

__all__ = [
    "GRACE",
    "RETRYABLE_STATUS",
    "Flow",
    "ManyWait",
    "Notify",
    "Send",
    "Settings",
    "Sleep",
    "cancel_flow",
    "forward",
    "is_transient",
    "models_flow",
    "observe",
    "on_some_route",
    "poll_flow",
    "poll_round",
    "refresh_flow",
    "request_flow",
    "submit_flow",
    "translate",
    "wait_flow",
]

T = TypeVar("T")
log = logging.getLogger("mediajobs")

GRACE = 1.0
"""Seconds polls in flight may still take once a job of an ``as_completed`` round finished."""


def request_flow(
    settings: Settings,
    build: Callable[[], httpx.Request],
    parse: Callable[[httpx.Response], T],
    *,
    submit: bool = False,
    deadline: float | None = None,
) -> Flow[T]:
    """Send one logical request, retrying transient failures per the retry rule.

    Each attempt builds a fresh request (bodies are not reusable), sends it and parses the
    answer; httpx failures become mediajobs errors, and an ``APIError`` whose body quotes the
    key is redacted. A ``Retry-After`` on the failed answer sets the delay.

    Args:
        settings: The client's settings.
        build: Builds the request (called once per attempt).
        parse: Turns a response into the result; raises ``APIError``/``ProtocolError``.
        submit: Retry only failures that prove the request was not accepted.
        deadline: Stop retrying when the next attempt would start after this monotonic time.

    Returns:
        What ``parse`` returned.

    Raises:
        ProtocolError: When the answer redirects to a ``Location`` that is not a URL.
        MediaJobsError: The last failure, when it is not retryable or retries ran out.
        DeadlineReachedError: When the next attempt would start after ``deadline``.
    """
    rule: RetryRule | None = None
    attempts = 0
    while True:
        attempts += 1
        request = build()
        failure: MediaJobsError
        try:
            response = yield Send(settings.prepare(request, deadline=deadline))
            return parse(response)
        except httpx.InvalidURL:
            raise unusable_redirect(settings.dialect.name, request) from None
        except httpx.HTTPError as exc:
            failure = translate(exc, request)
        except APIError as exc:
            settings.scrub(exc)
            failure = exc
        if rule is None:
            rule = RetryRule(
                settings.retry,
                clock=settings.clock,
                random=settings.random,
                retryable=submit_may_retry if submit else is_transient,
                deadline=deadline,
            )
        what = f"{request.method} {request.url.copy_with(query=None)}"
        yield Sleep(rule.delay(failure, attempts, what=what))


def submit_flow(
    settings: Settings,
    kind: str,
    *,
    model: str,
    prompt: str | None,
    params: Mapping[str, Any],
    idempotency_key: str,
    extra_headers: Mapping[str, str] | None = None,
    key: str | None = None,
    labels: Mapping[str, Any] | None = None,
) -> Flow[JobData]:
    """Create a job; the same ``Idempotency-Key`` goes on every attempt.

    Records :class:`~mediajobs._steps.SubmitIntent` before the first request leaves. The
    recorder (a job store) may answer that the key already names a job: it is returned and
    nothing is sent. It may answer that another sender holds the key: the intent is recorded
    again after the delay it asks for, with less patience each time (the settings' request
    timeout in all), until the key resolves or counts as abandoned. Once the provider accepted
    the job, :class:`~mediajobs._steps.SubmitAccepted` is recorded; a failure is recorded as
    :class:`~mediajobs._steps.SubmitFailed`, and when the recorder keeps it as an unknown
    outcome the error's message says how to resume.

    Args:
        settings: The client's settings.
        kind: The job kind.
        model: The model.
        prompt: The prompt.
        params: Extra provider parameters (input files already read).
        idempotency_key: The key for this submit's attempts.
        extra_headers: Headers for this submit's requests (checked; sent to API hosts only).
        key: The caller's name for the job.
        labels: The caller's labels.

    Returns:
        The new job (or the one ``key`` already names).

    Raises:
        UnsupportedError: If the provider does not offer ``kind`` (before any request).
        MediaJobsError: When the submit fails.
    """
    dialect = settings.dialect
    dialect.check_kind(kind)

    def build() -> httpx.Request:
        request = dialect.build_submit(kind, model=model, prompt=prompt, params=params)
        if extra_headers and dialect.is_api_url(request.url):
            request.headers.update(extra_headers)
        request.headers["Idempotency-Key"] = idempotency_key
        return request

    patience = settings.request_seconds
    intent = SubmitIntent(
        dialect.name, kind, model, prompt, idempotency_key, key, params, labels, patience
    )
    started = settings.clock()
    while True:
        claim = yield Record(intent)
        if not isinstance(claim, Claim) or (claim.job is None and claim.wait is None):
            break  # no store (any other answer), or the key is this submit's to send
        if claim.job is not None:
            log.debug("%s: key %r names job %s; nothing sent", dialect.name, key, claim.job.id)
            return claim.job
        yield Sleep(claim.wait or 0.0)
        intent = intent.waited(max(patience - (settings.clock() - started), 0.0))

    def parse(response: httpx.Response) -> JobData:
        try:
            return dialect.parse_submit(response, kind=kind, model=model)
        except ProtocolError as exc:
            exc.job_id = exc.job_id or named_id(response)
            raise

    try:
        job = yield from request_flow(settings, build, parse, submit=True)
    except ProtocolError as exc:
        if exc.job_id is None:
            yield from _submit_failed(dialect.name, key, exc)
            raise
        # The answer is not understood, but the job it names exists: keep it.
        placeholder = dialect.job_for_id(exc.job_id, kind=kind, model=model)
        yield Record(SubmitAccepted(placeholder, idempotency_key, key))
        _explain(exc, f"the answer named job {exc.job_id!r}, which is kept (read it by id)")
        raise
    except MediaJobsError as exc:
        yield from _submit_failed(dialect.name, key, exc)
        raise
    yield Record(SubmitAccepted(job, idempotency_key, key))
    log.debug("%s: submitted %s job %s", dialect.name, kind, job.id)
    return job


def _submit_failed(provider: str, key: str | None, error: MediaJobsError) -> Flow[None]:
    state = yield Record(SubmitFailed(provider, key, error))
    if state == "submit_unknown":
        _explain(
            error,
            f"the outcome of submit {key!r} is unknown (kept as submit_unknown): submit the "
            "same key again to re-send it with the same Idempotency-Key",
        )


def _explain(error: MediaJobsError, note: str) -> None:
    error.message = f"{error.message}; {note}"
    error.args = (error.message,)


def named_id(response: httpx.Response) -> str | None:
    """Find a job id in a submit's answer that is otherwise not in the documented shape.

    Looks for a non-empty string ``id`` or ``task_id`` at the top of a JSON object or in its
    ``data`` object (the places the providers put it).

    Args:
        response: The answer (body read).

    Returns:
        The id, or ``None``.
    """
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    for where in (body, body.get("data") if isinstance(body, dict) else None):
        if isinstance(where, dict):
            for name in ("id", "task_id"):
                value = where.get(name)
                if isinstance(value, str) and value:
                    return value
    return None


def poll_flow(
    settings: Settings, job: JobData, deadline: float | None = None
) -> Flow[tuple[JobData, float | None]]:
    """Read a job's state once (with retries), with the server's poll hint.

    A job named only by id, of unknown kind, is looked for on the provider's other status
    routes after a 404 (:func:`on_some_route`).

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

    def poll(job: JobData) -> Flow[tuple[JobData, float | None]]:
        def parse(response: httpx.Response) -> tuple[JobData, float | None]:
            new = dialect.parse_poll(response, previous=job)
            return new, parse_retry_after(response.headers.get("retry-after"))

        return (
            yield from request_flow(
                settings, lambda: dialect.build_poll(job), parse, deadline=deadline
            )
        )

    return (yield from on_some_route(settings, job, poll))


def on_some_route(
    settings: Settings, job: JobData, attempt: Callable[[JobData], Flow[T]]
) -> Flow[T]:
    """Run a request about a job, trying the provider's other routes for an id of unknown kind.

    Some providers read each kind of job on its own route, and a bare id does not say which.
    When ``job`` is a placeholder (never read, so ``raw`` is empty) whose route the provider
    cannot know for sure (:meth:`~mediajobs.dialects.Dialect.fallback_kinds`), a 404 from the
    first route is followed by one attempt on each other route, in the dialect's order (one
    for the built-in dialects). The snapshot that answers carries its route and kind, so the
    caller's handle keeps them and never searches again.

    Args:
        settings: The client's settings.
        job: The last snapshot, or a placeholder built from an id.
        attempt: Sends the request for one snapshot and returns its result.

    Returns:
        What the first route that knows the job returned.

    Raises:
        NotFoundError: The first route's error, when no route knows the job.
        MediaJobsError: Any other failure, from the route that answered it.
    """
    try:
        return (yield from attempt(job))
    except NotFoundError as missing:
        kinds = () if job.raw else settings.dialect.fallback_kinds(job.kind)
        if not kinds:
            raise
        for kind in kinds:
            other = settings.dialect.job_for_id(job.id, kind=kind, model=job.model)
            try:
                result = yield from attempt(other)
            except NotFoundError:
                continue
            log.debug("%s job %s: found on the %s route", job.provider, job.id, kind)
            return result
        raise missing


def observe(job: H, new: JobData) -> Flow[tuple[H, bool]]:
    """Store a polled snapshot into the job; record and log a status change.

    Args:
        job: The caller's handle (updated in place), or a bare snapshot.
        new: The snapshot just read.

    Returns:
        The job (the same handle, or ``new`` for a bare snapshot) and whether its status
        changed.
    """
    old = data_of(job)
    job = updated(job, new)
    return job, (yield from _seen(old, new))


def _seen(old: JobData, new: JobData) -> Flow[bool]:
    if (new.status, new.raw_status) == (old.status, old.raw_status):
        return False
    log.debug("%s job %s: %s (%s)", new.provider, new.id, new.status.value, new.raw_status)
    yield Record(StatusSeen(new))
    return True


def refresh_flow(settings: Settings, job: H) -> Flow[H]:
    """Read a job's current state once (with retries).

    Args:
        settings: The client's settings.
        job: The caller's handle, or a bare snapshot.

    Returns:
        The handle, updated (or the new snapshot).

    Raises:
        MediaJobsError: When the status cannot be read.
    """
    new, _ = yield from poll_flow(settings, data_of(job))
    job, _ = yield from observe(job, new)
    return job


def cancel_flow(settings: Settings, job: H) -> Flow[H]:
    """Cancel a job.

    Args:
        settings: The client's settings.
        job: The caller's handle, or a bare snapshot.

    Returns:
        The job after the cancel request.

    Raises:
        UnsupportedError: Where the provider has no cancel (before any request).
        MediaJobsError: When the cancel fails.
    """
    dialect = settings.dialect
    if not dialect.supports_cancel:
        raise UnsupportedError(f"{dialect.name} has no way to cancel a job")

    def cancel(data: JobData) -> Flow[JobData]:
        return (
            yield from request_flow(
                settings,
                lambda: dialect.build_cancel(data),
                lambda response: dialect.parse_cancel(response, previous=data),
            )
        )

    new = yield from on_some_route(settings, data_of(job), cancel)
    job, _ = yield from observe(job, new)
    return job


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


def forward(old: JobData, new: JobData) -> JobData:
    """Return the newer of two snapshots of a job: a late answer never moves it backwards.

    Args:
        old: The snapshot known so far.
        new: One just read or pushed.

    Returns:
        ``new``, unless its status is behind ``old``'s (``running`` after ``succeeded``,
        ``queued`` after ``running``): then ``old``.
    """
    return old if is_newer(new.status, old.status) else new


def _moves_on(data: JobData, pushed: JobData, last_poll: bool) -> bool:
    """Whether a pushed snapshot replaces the poll a woken wait would make."""
    if pushed.id != data.id or not is_newer(data.status, pushed.status):
        return False  # stale, or nothing new: poll (the wake may mean a change we cannot see)
    return pushed.done or not last_poll


def wait_flow(
    settings: Settings,
    job: H,
    *,
    timeout: float | None = None,
    poll: PollPolicy | None = None,
) -> Flow[H]:
    """Poll until the job is terminal, within one monotonic deadline for the whole wait.

    The delay between polls follows the poll policy; a server hint (``Retry-After``) on a
    poll answer sets the next delay, read afresh each time. Every request's timeout shrinks
    to what is left of the deadline, and a final poll is made just before it. A job that was
    only named by id (empty ``raw``) is polled at once. Each sleep can be cut short by waking
    the job (its id is on the :class:`~mediajobs._steps.Sleep`): a wake that carries a newer
    snapshot (a verified webhook's) is taken as it is, without a request; a bare wake, or one
    whose snapshot is not newer, makes the wait poll at once.

    Args:
        settings: The client's settings.
        job: The caller's handle, or a bare snapshot.
        timeout: Seconds for the whole wait; ``None`` uses the client's ``wait_timeout``.
        poll: A poll policy for this wait; ``None`` uses the client's.

    Returns:
        The job, succeeded.

    Raises:
        JobFailedError: The job failed (``.job`` is ``job``).
        JobCancelledError: The job was cancelled.
        JobExpiredError: The job expired.
        WaitTimeoutError: When the deadline passes first (``.job`` is ``job``, as last seen).
        ConfigurationError: When ``timeout`` is not a finite number of seconds > 0.
        MediaJobsError: When a status read fails beyond retries.
    """
    timeout = settings.timeout_of(timeout)
    deadline = None if timeout is None else settings.clock() + timeout
    policy = poll or settings.poll
    data = data_of(job)
    polls = 0
    hint: float | None = None
    poll_now = not data.raw
    last_poll = False
    while not data.done:
        if last_poll:
            raise wait_timeout_error([(job, data)], timeout)
        if not poll_now:
            delay = policy.next_delay(polls, hint=hint, rand=settings.random())
            if deadline is not None:
                remaining = deadline - settings.clock()
                if remaining <= MIN_REQUEST_TIME:
                    raise wait_timeout_error([(job, data)], timeout)
                if delay >= remaining:  # one last poll, shortly before the deadline
                    delay = max(remaining - min(1.0, remaining / 2), 0.0)
                    last_poll = True
            pushed = yield Sleep(delay, wake=data.id)
            if pushed is not None and _moves_on(data, pushed, last_poll):
                data, hint = pushed, None  # a verified push: no request needed
                job, changed = yield from observe(job, data)
                if changed:
                    yield Notify(job)
                continue
        poll_now = False
        try:
            data, hint = yield from poll_flow(settings, data, deadline)
        except DeadlineReachedError as exc:
            raise wait_timeout_error([(job, data)], timeout) from exc.__cause__
        polls += 1
        data = forward(data_of(job), data)
        job, changed = yield from observe(job, data)
        if changed:
            yield Notify(job)
    error = outcome_error(job, data)
    if error is not None:
        raise error
    return job


# ------------------------------------------------------------------ many-job waits


class _Tracked:
    """A pending job's schedule: polls made and failures in a row.

    Its snapshot lives in :attr:`ManyWait.results`, so this stays a few dozen bytes.
    """

    __slots__ = ("failures", "polls")

    def __init__(self) -> None:
        self.polls = 0
        self.failures = 0


class ManyWait(Generic[H]):
    """Scheduling state for waiting on many jobs at once, driven by :func:`poll_round`.

    Each job keeps its own backoff (poll count and server hint); a heap orders the jobs by
    when they are next due. A round takes the due jobs (:meth:`take_due`), polls them
    concurrently with :meth:`poll_flow` and reports each outcome with :meth:`record`; terminal
    jobs leave the schedule and are listed by :meth:`drain_finished`.

    A poll here makes a single attempt: a failure goes through the same
    :class:`~mediajobs._retry.RetryRule` as any request, counting that job's failures in a row,
    and reschedules that job alone after the backoff (or the server's ``Retry-After``), so a
    failing job never holds a concurrency slot while it backs off.

    Args:
        settings: The client's settings.
        jobs: The jobs (handles or bare snapshots), in input order.
        timeout: Seconds for the whole batch (one shared deadline); ``None`` uses the client's
            ``wait_timeout``.
        poll: A poll policy; ``None`` uses the client's.

    Raises:
        ConfigurationError: When ``timeout`` is not a finite number of seconds > 0.
    """

    def __init__(
        self,
        settings: Settings,
        jobs: Sequence[H],
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
    ) -> None:
        self.settings = settings
        self._single = replace(settings, retry=RetryPolicy.none())
        self._rule = RetryRule(settings.retry, clock=settings.clock, random=settings.random)
        self.policy = poll or settings.poll
        self.timeout = settings.timeout_of(timeout)
        now = settings.clock()
        self.deadline = None if self.timeout is None else now + self.timeout
        self.results: list[H] = list(jobs)
        """The jobs, in input order, each holding its latest snapshot."""
        self._heap: list[tuple[float, int]] = []
        self._due: dict[int, float] = {}  # a heap entry counts only while it matches this
        self._tracked: dict[int, _Tracked] = {}
        self._finished: list[int] = []
        self.watch = WakeWatch()
        """The pending jobs' ids, for the wake-ups that end a round early."""
        for index, job in enumerate(self.results):
            data = data_of(job)
            if data.done:
                self._finished.append(index)
                continue
            self._tracked[index] = _Tracked()
            self.watch.ids[data.id] = index
            self._schedule(index, now if not data.raw else now + self._delay(0, None))

    def _schedule(self, index: int, due: float) -> None:
        self._due[index] = due
        heapq.heappush(self._heap, (due, index))

    def _finish(self, index: int) -> None:
        del self._tracked[index]
        self._due.pop(index, None)
        self.watch.ids.pop(data_of(self.results[index]).id, None)
        self._finished.append(index)

    def _delay(self, polls: int, hint: float | None) -> float:
        return self.policy.next_delay(polls, hint=hint, rand=self.settings.random())

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
            when, index = heapq.heappop(self._heap)
            if self._due.get(index) != when:
                continue  # rescheduled or finished since
            del self._due[index]
            due.append((index, data_of(self.results[index])))
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
        self._schedule(index, self.settings.clock())

    def next_wake(self) -> float | None:
        """Return seconds until the next poll is due (0 if one is due now), or ``None``."""
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # a stale entry
        if not self._heap:
            return None
        return max(self._heap[0][0] - self.settings.clock(), 0.0)

    def time_left(self) -> float | None:
        """Return seconds until the shared deadline, or ``None`` without one."""
        return None if self.deadline is None else self.deadline - self.settings.clock()

    def record(self, index: int, outcome: tuple[JobData, float | None] | BaseException) -> H | None:
        """Record one poll's outcome and reschedule the job.

        Args:
            index: The job's index.
            outcome: ``(snapshot, server hint)`` from :meth:`poll_flow`, or its failure.

        Returns:
            The job if it is now terminal, else ``None``.

        Raises:
            MediaJobsError: A non-transient failure (authentication, not found, protocol), or a
                transient one that happened ``retry.max_attempts`` times in a row.
        """
        tracked = self._tracked.get(index)
        if tracked is None:
            return None  # a push finished it while this poll was in flight
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, MediaJobsError):
                raise outcome
            tracked.failures += 1
            data = data_of(self.results[index])
            what = f"polling {data.provider} job {data.id}"
            delay = self._rule.delay(outcome, tracked.failures, what=what)
        else:
            data, hint = outcome
            data = forward(data_of(self.results[index]), data)
            job = self.results[index] = updated(self.results[index], data)
            tracked.polls += 1
            tracked.failures = 0
            if data.done:
                self._finish(index)
                return job
            delay = self._delay(tracked.polls, hint)
        self._schedule(index, self.settings.clock() + delay)
        return None

    def push(self, index: int, snapshot: JobData | None, running: bool) -> H | None:
        """Take a wake-up of a job: its pushed snapshot, or a request to poll it now.

        A newer snapshot replaces the job's (no request is made for it); a bare wake-up, or one
        whose snapshot is not newer, makes the job due at once unless a poll is in flight.

        Args:
            index: The job's index.
            snapshot: The pushed snapshot (a verified webhook's), or ``None``.
            running: Whether a poll of the job is in flight.

        Returns:
            The job if it is now terminal, else ``None``.
        """
        if index not in self._tracked:
            return None
        current = data_of(self.results[index])
        if (
            snapshot is not None
            and snapshot.id == current.id
            and is_newer(current.status, snapshot.status)
        ):
            job = self.results[index] = updated(self.results[index], snapshot)
            if snapshot.done:
                self._finish(index)
                return job
            return None
        if not running:
            self._schedule(index, self.settings.clock())
        return None

    def timeout_error(self) -> WaitTimeoutError[H]:
        """Build the error raised when the shared deadline passes.

        Returns:
            A :class:`~mediajobs.WaitTimeoutError` whose ``.job`` is the first unfinished job and
            ``.pending`` lists all of them.
        """
        unfinished = [self.results[index] for index in sorted(self._tracked)]
        return wait_timeout_error([(j, data_of(j)) for j in unfinished], self.timeout)


def poll_round(many: ManyWait[H], *, until_first: bool = True) -> Flow[None]:
    """Poll due jobs concurrently until one finishes (or all, ``until_first=False``).

    The round also ends when the deadline passes, and raises
    :class:`~mediajobs.WaitTimeoutError` if it starts after it. At most
    ``settings.concurrency`` polls are in flight. Once a job has finished (``until_first``),
    no new poll starts; polls in flight get :data:`GRACE` seconds to land (they usually take
    milliseconds) and the rest are abandoned and due again next round. Nothing outlives the
    round, so the caller may hand the finished jobs out between rounds.

    Args:
        many: The wait's state.
        until_first: End the round once a job is terminal.

    Raises:
        WaitTimeoutError: When the shared deadline has passed.
        MediaJobsError: A failure that concerns the whole wait (see :meth:`ManyWait.record`).
    """
    clock = many.settings.clock
    limit = many.settings.concurrency
    left = many.time_left()
    if many.pending and left is not None and left <= 0:
        raise many.timeout_error()
    running: set[int] = set()
    stop_at: float | None = None
    while many.pending and (stop_at is None or (running and clock() < stop_at)):
        start: list[tuple[int, Flow[Any]]] = []
        if stop_at is None:
            for index, data in many.take_due(limit - len(running)):
                running.add(index)
                start.append((index, many.poll_flow(data)))
        left = many.time_left()
        if left is not None and left <= 0:
            break
        if stop_at is not None:
            wake: float | None = stop_at - clock()
        else:
            wake = many.next_wake() if len(running) < limit else None
        waits = [w for w in (wake, left) if w is not None]
        outcomes = yield Gather(start, min(waits) if waits else None, many.watch)
        for index, outcome in outcomes:
            before = data_of(many.results[index])
            if isinstance(outcome, Pushed):
                finished = many.push(index, outcome.job, index in running)
            else:
                running.discard(index)
                finished = many.record(index, outcome)
            yield from _seen(before, data_of(many.results[index]))
            if finished is not None and stop_at is None and until_first:
                stop_at = clock() + GRACE
    for index in running:
        many.requeue(index)
