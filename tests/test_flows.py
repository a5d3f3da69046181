"""The lifecycle flows, driven by hand: no client, no sockets, no sleeping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

import mediajobs as mj
from mediajobs._flows import (
    Flow,
    ManyWait,
    Notify,
    Send,
    Settings,
    Sleep,
    cancel_flow,
    forward,
    poll_flow,
    submit_flow,
    wait_flow,
)
from mediajobs.dialects import OpenRouter, TheRouter

KEY = "sk-secret-123"
Responder = Callable[[httpx.Request], "httpx.Response | Exception"]


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Trace:
    requests: list[httpx.Request] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    updates: list[mj.JobData] = field(default_factory=list)


def settings(
    dialect: mj.Dialect | None = None,
    *,
    clock: Clock | None = None,
    retry: mj.RetryPolicy | None = None,
    poll: mj.PollPolicy | None = None,
    wait_timeout: float | None = 600.0,
) -> Settings:
    return Settings(
        dialect=dialect or OpenRouter(),
        api_key=KEY,
        headers={"User-Agent": "mediajobs/test"},
        timeout=30.0,
        poll=poll or mj.PollPolicy(initial=2.0, factor=2.0, max_interval=10.0, jitter=0.0),
        retry=retry or mj.RetryPolicy(max_attempts=4, initial=1.0, jitter=0.0),
        wait_timeout=wait_timeout,
        clock=clock or Clock(),
    )


def drive(
    flow: Flow[Any], respond: Responder, clock: Clock | None = None, trace: Trace | None = None
) -> tuple[Any, Trace]:
    trace = trace if trace is not None else Trace()
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = flow.send(value) if error is None else flow.throw(error)
        except StopIteration as stop:
            return stop.value, trace
        value = error = None
        if isinstance(step, Send):
            trace.requests.append(step.request)
            answer = respond(step.request)
            if isinstance(answer, Exception):
                error = answer
            else:
                answer.request = step.request
                value = answer
        elif isinstance(step, Sleep):
            trace.sleeps.append(step.seconds)
            if clock is not None:
                clock.now += step.seconds
        elif isinstance(step, Notify):
            trace.updates.append(step.job)


def video(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "job1",
        "polling_url": "https://openrouter.ai/api/v1/videos/job1",
        "status": status,
        **extra,
    }


def queued() -> mj.JobData:
    return OpenRouter().parse_submit(
        httpx.Response(
            202,
            json=video("pending"),
            request=httpx.Request("POST", "https://openrouter.ai/api/v1/videos"),
        ),
        kind="video",
        model="m",
    )


def script(*answers: httpx.Response | Exception) -> Responder:
    queue = list(answers)

    def respond(request: httpx.Request) -> httpx.Response | Exception:
        return queue.pop(0)

    return respond


def test_submit_sends_one_idempotency_key_and_credentials() -> None:
    job, trace = drive(
        submit_flow(
            settings(), "video", model="m", prompt="p", params={}, idempotency_key="idem-1"
        ),
        script(httpx.Response(202, json=video("pending"))),
    )
    assert job.id == "job1" and job.status is mj.JobStatus.QUEUED
    (request,) = trace.requests
    assert request.headers["Idempotency-Key"] == "idem-1"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["User-Agent"] == "mediajobs/test"
    assert request.extensions["timeout"]["read"] == 30.0


def test_unsupported_kind_raises_before_any_request() -> None:
    flow = submit_flow(settings(), "image", model="m", prompt="p", params={}, idempotency_key="k")
    with pytest.raises(mj.UnsupportedError):
        next(flow)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow"),
        httpx.Response(429, headers={"Retry-After": "3"}),
    ],
)
def test_submit_retried_only_when_not_accepted(failure: httpx.Response | Exception) -> None:
    job, trace = drive(
        submit_flow(settings(), "video", model="m", prompt="p", params={}, idempotency_key="same"),
        script(failure, httpx.Response(202, json=video("pending"))),
    )
    assert job.id == "job1"
    assert len(trace.requests) == 2
    assert {r.headers["Idempotency-Key"] for r in trace.requests} == {"same"}
    if isinstance(failure, httpx.Response):
        assert trace.sleeps == [3.0]


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (httpx.ReadTimeout("lost"), mj.APITimeoutError),
        (httpx.RemoteProtocolError("cut"), mj.APIConnectionError),
        (httpx.Response(500, json={"error": {"code": 500, "message": "boom"}}), mj.ServerError),
        (httpx.Response(503), mj.ServerError),
        (httpx.Response(400, json={"error": {"code": 400, "message": "bad"}}), mj.BadRequestError),
    ],
)
def test_submit_never_retried_when_it_may_have_been_accepted(
    failure: httpx.Response | Exception, error: type[Exception]
) -> None:
    with pytest.raises(error):
        drive(
            submit_flow(settings(), "video", model="m", prompt="p", params={}, idempotency_key="k"),
            script(failure, httpx.Response(202, json=video("pending"))),
        )


def test_poll_retries_transient_failures_with_backoff_and_retry_after() -> None:
    (job, hint), trace = drive(
        poll_flow(settings(), queued()),
        script(
            httpx.ConnectError("down"),
            httpx.Response(503),
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(200, json=video("in_progress")),
        ),
    )
    assert job.status is mj.JobStatus.RUNNING
    assert hint is None
    assert len(trace.requests) == 4
    assert trace.sleeps == [1.0, 2.0, 7.0]


def test_poll_gives_up_after_max_attempts() -> None:
    with pytest.raises(mj.ServerError):
        drive(poll_flow(settings(), queued()), script(*[httpx.Response(502)] * 4))


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404])
def test_poll_never_retries_other_4xx(status: int) -> None:
    with pytest.raises(mj.APIError) as info:
        drive(
            poll_flow(settings(), queued()),
            script(httpx.Response(status, json={"error": {"code": status, "message": "no"}})),
        )
    assert info.value.status_code == status


def test_error_bodies_quoting_the_key_are_redacted() -> None:
    body = {"error": {"code": 401, "message": f"invalid key {KEY}"}}
    with pytest.raises(mj.AuthenticationError) as info:
        drive(poll_flow(settings(), queued()), script(httpx.Response(401, json=body)))
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)
    assert KEY not in repr(info.value.body)


def test_wait_polls_until_terminal_notifies_changes_and_backs_off() -> None:
    clock = Clock()
    answers = [
        video("pending"),
        video("in_progress"),
        video("in_progress"),
        video(
            "completed", unsigned_urls=["https://openrouter.ai/api/v1/videos/job1/content?index=0"]
        ),
    ]
    job, trace = drive(
        wait_flow(settings(clock=clock), queued()),
        script(*[httpx.Response(200, json=a) for a in answers]),
        clock,
    )
    assert job.status is mj.JobStatus.SUCCEEDED
    assert trace.sleeps == [2.0, 4.0, 8.0, 10.0]
    assert [u.raw_status for u in trace.updates] == ["in_progress", "completed"]


def test_wait_reads_server_hint_afresh_on_every_poll() -> None:
    clock = Clock()
    trace = Trace()
    with pytest.raises(mj.JobFailedError) as info:
        drive(
            wait_flow(settings(clock=clock), queued()),
            script(
                httpx.Response(200, json=video("in_progress"), headers={"Retry-After": "5"}),
                httpx.Response(200, json=video("in_progress"), headers={"Retry-After": "1"}),
                httpx.Response(200, json=video("in_progress")),
                httpx.Response(200, json=video("failed", error="nope")),
            ),
            clock,
            trace,
        )
    job = info.value.job
    assert job.status is mj.JobStatus.FAILED
    assert job.error == mj.JobErrorInfo(message="nope")
    assert trace.sleeps == [2.0, 5.0, 1.0, 10.0]


@pytest.mark.parametrize(
    ("final", "error"),
    [
        ("failed", mj.JobFailedError),
        ("cancelled", mj.JobCancelledError),
        ("expired", mj.JobExpiredError),
    ],
)
def test_every_terminal_state_ends_the_wait(final: str, error: type[mj.JobError[Any]]) -> None:
    # The flow itself raises the outcome, carrying the job it was given (here a snapshot).
    trace = Trace()
    with pytest.raises(error) as info:
        drive(
            wait_flow(settings(), queued()),
            script(httpx.Response(200, json=video(final))),
            trace=trace,
        )
    job = info.value.job
    assert job.done and job.raw_status == final
    assert len(trace.requests) == 1


def test_wait_has_one_deadline_with_a_last_poll_before_it() -> None:
    clock = Clock()
    polled_at: list[float] = []

    def respond(request: httpx.Request) -> httpx.Response:
        polled_at.append(clock.now - 1000.0)
        return httpx.Response(200, json=video("in_progress"))

    with pytest.raises(mj.WaitTimeoutError) as info:
        drive(wait_flow(settings(clock=clock), queued(), timeout=9.0), respond, clock)
    # backoff 2, 4; the next delay (8) would cross the deadline: one last poll 1 s before it
    assert polled_at == [2.0, 6.0, 8.0]
    assert info.value.job.status is mj.JobStatus.RUNNING
    assert "resume with client.wait('job1')" in str(info.value)


def test_request_timeouts_shrink_to_what_is_left() -> None:
    clock = Clock()
    seen: list[float] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        return httpx.Response(200, json=video("in_progress"))

    with pytest.raises(mj.WaitTimeoutError):
        drive(wait_flow(settings(clock=clock), queued(), timeout=40.0), respond, clock)
    assert seen[0] == 30.0
    assert seen[-1] < 30.0
    assert all(t > 0 for t in seen)


def test_wait_timeout_while_server_keeps_failing_is_a_wait_timeout() -> None:
    clock = Clock()
    with pytest.raises(mj.WaitTimeoutError) as info:
        drive(
            wait_flow(settings(clock=clock), queued(), timeout=5.0),
            lambda request: httpx.Response(503),
            clock,
        )
    assert isinstance(info.value.__cause__, mj.ServerError)
    assert clock.now <= 1005.0


def test_wait_on_stored_id_polls_at_once() -> None:
    job, trace = drive(
        wait_flow(settings(), OpenRouter().job_for_id("job1")),
        script(httpx.Response(200, json=video("completed", unsigned_urls=[]))),
    )
    assert job.status is mj.JobStatus.SUCCEEDED
    assert trace.sleeps == []


def test_wait_on_terminal_job_sends_nothing() -> None:
    done = queued().model_copy(update={"status": mj.JobStatus.SUCCEEDED, "raw_status": "completed"})
    job, trace = drive(wait_flow(settings(), done), script())
    assert job is done and trace.requests == []


def test_cancel_unsupported_raises_before_request() -> None:
    with pytest.raises(mj.UnsupportedError):
        next(cancel_flow(settings(), queued()))


def test_credentials_only_for_api_hosts() -> None:
    s = settings(TheRouter())
    api = s.prepare(httpx.Request("GET", "https://api.therouter.ai/v1/jobs/x"))
    storage = s.prepare(
        httpx.Request("GET", "https://bucket.s3.amazonaws.com/x.png?X-Amz-Signature=1")
    )
    assert api.headers["Authorization"] == f"Bearer {KEY}"
    assert "Authorization" not in storage.headers
    assert storage.headers["User-Agent"] == "mediajobs/test"


def test_many_wait_keeps_each_jobs_backoff_and_a_shared_deadline() -> None:
    clock = Clock()
    s = settings(clock=clock, wait_timeout=None)
    jobs = [queued().model_copy(update={"id": f"j{i}"}) for i in range(3)]
    many = ManyWait(s, jobs, timeout=100.0)
    assert many.pending == 3
    assert many.take_due(10) == []
    assert many.next_wake() == 2.0
    clock.now += 2.0
    due = many.take_due(2)
    assert [i for i, _ in due] == [0, 1]
    done = jobs[0].model_copy(update={"status": mj.JobStatus.SUCCEEDED, "raw_status": "completed"})
    assert many.record(0, (done, None)) is done
    assert many.drain_finished() == [0]
    assert many.drain_finished() == []
    # a transient failure reschedules that job alone, after the retry backoff (1 s here)
    assert many.record(1, mj.ServerError("x", status_code=503)) is None
    assert many.pending == 2
    assert [i for i, _ in many.take_due(5)] == [2]
    assert many.next_wake() == 1.0
    # a successful poll follows the poll policy: second delay 4 s, or the server's hint
    running = jobs[2].model_copy(
        update={"status": mj.JobStatus.RUNNING, "raw_status": "in_progress"}
    )
    assert many.record(2, (running, 0.5)) is None
    assert many.results[2] is running
    clock.now += 0.5
    assert [i for i, _ in many.take_due(5)] == [2]
    many.requeue(2)  # an abandoned poll is due again at once
    assert many.next_wake() == 0.0
    with pytest.raises(mj.AuthenticationError):
        many.record(2, mj.AuthenticationError("no", status_code=401))
    assert many.time_left() == pytest.approx(97.5)
    error = many.timeout_error()
    assert {j.id for j in error.pending} == {"j1", "j2"}


def test_many_wait_polls_once_and_gives_up_after_failures_in_a_row() -> None:
    clock = Clock()
    s = settings(clock=clock, retry=mj.RetryPolicy(max_attempts=3, initial=1.0, jitter=0.0))
    many = ManyWait(s, [OpenRouter().job_for_id("job1")])
    ((index, data),) = many.take_due(1)
    with pytest.raises(mj.ServerError):
        drive(
            many.poll_flow(data),
            script(httpx.Response(503), httpx.Response(200, json=video("completed"))),
        )
    for attempt in (1, 2):
        assert many.record(index, mj.APIConnectionError("down")) is None
        clock.now += attempt
        assert [i for i, _ in many.take_due(1)] == [index]
    with pytest.raises(mj.APIConnectionError):
        many.record(index, mj.APIConnectionError("down"))


def test_many_wait_honours_retry_after_of_a_failed_poll() -> None:
    clock = Clock()
    many = ManyWait(settings(clock=clock), [OpenRouter().job_for_id("job1")])
    many.take_due(1)
    limited = mj.RateLimitError(
        "slow down", status_code=429, response=httpx.Response(429, headers={"Retry-After": "12"})
    )
    many.record(0, limited)
    assert many.next_wake() == 12.0


# ------------------------------------------------------------------ pushed snapshots


def _as(status: str) -> mj.JobData:
    return queued().model_copy(update={"status": mj.JobStatus(status), "raw_status": status})


def test_a_late_poll_answer_never_moves_a_job_backwards() -> None:
    running, done = _as("running"), _as("succeeded")
    assert forward(done, running) is done
    assert forward(running, done) is done
    assert forward(running, _as("queued")) is running
    assert forward(running, running) is running


def test_a_woken_wait_takes_a_newer_pushed_snapshot_without_a_request() -> None:
    flow = wait_flow(settings(), queued())
    step = next(flow)
    assert isinstance(step, Sleep) and step.wake == "job1"
    steps: list[Any] = []
    value: Any = _as("succeeded")
    result: Any = None
    while result is None:
        try:
            steps.append(flow.send(value))
        except StopIteration as stop:
            result = stop.value
        value = None
    assert result.status is mj.JobStatus.SUCCEEDED
    assert [type(s).__name__ for s in steps] == ["Record", "Notify"]  # no Send


def test_a_woken_wait_with_nothing_newer_polls_at_once() -> None:
    flow = wait_flow(settings(), queued())
    next(flow)
    step = flow.send(_as("queued"))  # not newer: the wait asks the provider
    assert isinstance(step, Send)


def test_many_wait_pushes_finish_jobs_and_drop_polls_in_flight() -> None:
    clock = Clock()
    first, second = queued(), queued().model_copy(update={"id": "job2"})
    many = ManyWait(settings(clock=clock), [first, second])
    assert many.watch.ids == {"job1": 0, "job2": 1}
    clock.now += 2.0
    assert [index for index, _ in many.take_due(10)] == [0, 1]  # both polls in flight
    assert many.push(0, _as("succeeded"), running=True) is not None
    assert many.drain_finished() == [0] and many.watch.ids == {"job2": 1}
    assert many.record(0, (_as("running"), None)) is None  # the poll landed late: dropped
    assert many.results[0].status is mj.JobStatus.SUCCEEDED
    # a bare wake of a job not in flight makes it due now, once
    many.record(1, (first.model_copy(update={"id": "job2"}), None))
    assert many.take_due(10) == []
    many.push(1, None, running=False)
    assert [index for index, _ in many.take_due(10)] == [1]
    assert many.take_due(10) == [] and many.pending == 1
