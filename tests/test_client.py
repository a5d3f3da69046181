"""Both clients, end to end through the in-process FakeProvider (httpx.MockTransport)."""

from __future__ import annotations

import logging
from contextlib import aclosing
from typing import Any

import anyio
import httpx
import pytest

import mediajobs as mj
from mediajobs.testing import FakeProvider, Scenario

FAST = mj.PollPolicy.fixed(0.001)
RETRY = mj.RetryPolicy(max_attempts=4, initial=0.001, jitter=0, max_retry_after=0.001)

CASES = {
    "therouter": ("image", "openai/gpt-image-2"),
    "worldrouter": ("image", "gpt-image-2"),
    "openrouter": ("video", "bytedance/seedance-2.0"),
    "onerouter": ("video", "bytedance/seedance"),
}
PROVIDERS = sorted(CASES)


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider(api_key="test-key")  # strict: wrong-key tests need a 401


def sync_client(fake: FakeProvider, provider: str, **kwargs: Any) -> mj.Client:
    kwargs = {"api_key": fake.api_key, "poll": FAST, "retry": RETRY, **kwargs}
    return mj.Client(
        provider,
        base_url=fake.api_origin,
        http_client=httpx.Client(transport=fake.transport()),
        **kwargs,
    )


def async_client(fake: FakeProvider, provider: str, **kwargs: Any) -> mj.AsyncClient:
    kwargs = {"api_key": fake.api_key, "poll": FAST, "retry": RETRY, **kwargs}
    return mj.AsyncClient(
        provider,
        base_url=fake.api_origin,
        http_client=httpx.AsyncClient(transport=fake.transport()),
        **kwargs,
    )


def submit(client: mj.Client, provider: str, **params: Any) -> mj.Job:
    kind, model = CASES[provider]
    return client.submit(kind, model=model, prompt="a kitten by the sea", **params)


async def asubmit(client: mj.AsyncClient, provider: str, **params: Any) -> mj.AsyncJob:
    kind, model = CASES[provider]
    return await client.submit(kind, model=model, prompt="a kitten by the sea", **params)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sync_submit_wait_succeeds(fake: FakeProvider, provider: str) -> None:
    updates: list[str] = []
    with sync_client(fake, provider) as client:
        job = submit(client, provider)
        assert job.status is mj.JobStatus.QUEUED
        assert job.provider == provider
        same = job.wait(on_update=lambda j: updates.append(j.status.value))
    assert same is job
    assert job.status is mj.JobStatus.SUCCEEDED and job.done
    assert updates == ["running", "succeeded"]
    assert len(job.artifacts) == 1
    assert job.created_at is None or job.created_at.tzinfo is not None
    api = [r for r in fake.requests if r.origin == "api"]
    assert [r.method for r in api] == ["POST", "GET", "GET", "GET"][: len(api)]
    assert all(r.user_agent == f"mediajobs/{mj.__version__}" for r in api)
    assert all(r.authorized for r in api)
    assert api[0].idempotency_key


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_async_submit_wait_succeeds(fake: FakeProvider, provider: str) -> None:
    updates: list[str] = []

    async def on_update(job: mj.AsyncJob) -> None:
        updates.append(job.status.value)

    async with async_client(fake, provider) as client:
        job = await asubmit(client, provider)
        await job.wait(on_update=on_update)
    assert job.status is mj.JobStatus.SUCCEEDED
    assert updates == ["running", "succeeded"]
    assert job.artifacts


@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        ("failed", mj.JobFailedError),
        ("cancelled", mj.JobCancelledError),
        ("expired", mj.JobExpiredError),
    ],
)
@pytest.mark.parametrize("provider", ["therouter", "openrouter"])
def test_terminal_failures_raise_typed_errors(
    fake: FakeProvider, provider: str, outcome: str, error: type[mj.JobError]
) -> None:
    fake.scenario = Scenario(outcome=outcome, error_message="the model melted")
    with sync_client(fake, provider) as client:
        job = submit(client, provider)
        with pytest.raises(error) as info:
            job.wait()
    assert info.value.job is job
    assert job.status.value == outcome
    if outcome == "failed":
        assert job.error is not None and "melted" in job.error.message
        assert "melted" in str(info.value)


@pytest.mark.parametrize("provider", ["worldrouter", "onerouter"])
def test_failures_of_other_shapes(fake: FakeProvider, provider: str) -> None:
    fake.scenario = Scenario(outcome="failed", error_message="nsfw filter")
    with sync_client(fake, provider) as client:
        job = submit(client, provider)
        with pytest.raises(mj.JobFailedError, match="nsfw filter"):
            job.wait()
    assert job.error is not None and job.error.message == "nsfw filter"


def test_unknown_status_is_running_warned_once_and_bounded_by_deadline(
    fake: FakeProvider,
) -> None:
    fake.scenario = Scenario(steps=(), outcome="thinking_hard")
    with sync_client(fake, "openrouter") as client:
        job = submit(client, "openrouter")
        with (
            pytest.warns(mj.UnknownStatusWarning, match="thinking_hard") as warned,
            pytest.raises(mj.WaitTimeoutError) as info,
        ):
            job.wait(timeout=0.3, poll=mj.PollPolicy.fixed(0.05))
    assert len(warned) == 1
    assert info.value.job is job
    assert job.raw_status == "thinking_hard"
    assert job.status is mj.JobStatus.RUNNING


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
def test_transient_poll_errors_are_retried(fake: FakeProvider, status: int) -> None:
    fake.scenario = Scenario(poll_errors={1: status, 2: status}, retry_after="0")
    with sync_client(fake, "therouter") as client:
        job = submit(client, "therouter").wait()
    polls = [r for r in fake.requests if r.method == "GET" and r.origin == "api"]
    assert job.status is mj.JobStatus.SUCCEEDED
    statuses = [r.status for r in polls]
    assert statuses[:2] == [status, status]
    assert set(statuses[2:]) == {200}


def test_retries_run_out(fake: FakeProvider) -> None:
    fake.scenario = Scenario(poll_errors={n: 503 for n in range(1, 10)})
    with sync_client(fake, "openrouter") as client:
        job = submit(client, "openrouter")
        with pytest.raises(mj.ServerError) as info:
            job.wait()
    assert info.value.status_code == 503
    polls = [r for r in fake.requests if r.method == "GET"]
    assert len(polls) == RETRY.max_attempts


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_other_4xx_polls_are_not_retried(fake: FakeProvider, status: int) -> None:
    fake.scenario = Scenario(poll_errors={1: status})
    with sync_client(fake, "openrouter") as client:
        job = submit(client, "openrouter")
        with pytest.raises(mj.APIError) as info:
            job.wait()
    assert info.value.status_code == status
    assert len([r for r in fake.requests if r.method == "GET"]) == 1


def test_submit_cut_off_after_acceptance_is_not_retried(fake: FakeProvider) -> None:
    fake.scenario = Scenario(submit_drop_after_record=True)
    with sync_client(fake, "therouter") as client, pytest.raises(mj.APIConnectionError):
        submit(client, "therouter")
    assert len(fake.jobs) == 1  # accepted once, never paid twice
    assert len([r for r in fake.requests if r.method == "POST"]) == 1


@pytest.mark.parametrize("status", [500, 503, 400, 402])
def test_submit_errors_are_not_retried(fake: FakeProvider, status: int) -> None:
    fake.scenario = Scenario(submit_status=status)
    with sync_client(fake, "openrouter") as client, pytest.raises(mj.APIError) as info:
        submit(client, "openrouter")
    assert info.value.status_code == status
    assert len(fake.requests) == 1


def test_submit_429_is_retried_with_the_same_idempotency_key(fake: FakeProvider) -> None:
    fake.script(Scenario(submit_status=429, retry_after="0"), times=2)
    with sync_client(fake, "openrouter") as client:
        job = submit(client, "openrouter")
    posts = [r for r in fake.requests if r.method == "POST"]
    assert [r.status for r in posts] == [429, 429, 202]
    assert len({r.idempotency_key for r in posts}) == 1
    assert posts[0].idempotency_key
    assert job.id in fake.jobs


def test_each_submit_has_its_own_idempotency_key(fake: FakeProvider) -> None:
    with sync_client(fake, "openrouter") as client:
        submit(client, "openrouter")
        submit(client, "openrouter")
    keys = [r.idempotency_key for r in fake.requests if r.method == "POST"]
    assert len(set(keys)) == 2


def test_submit_connection_refused_is_retried() -> None:
    attempts: list[httpx.Request] = []
    fake = FakeProvider()

    def flaky(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        if len(attempts) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return fake.handle(request)

    client = mj.Client(
        "openrouter",
        api_key=fake.api_key,
        base_url=fake.api_origin,
        http_client=httpx.Client(transport=httpx.MockTransport(flaky)),
        retry=RETRY,
    )
    job = submit(client, "openrouter")
    assert job.id in fake.jobs
    assert attempts[0].headers["Idempotency-Key"] == attempts[1].headers["Idempotency-Key"]


@pytest.mark.parametrize("code", [401, 402, 429, 500])
def test_onerouter_envelope_errors_map_like_http(fake: FakeProvider, code: int) -> None:
    fake.scenario = Scenario(envelope_error=code)
    client = sync_client(fake, "onerouter", retry=mj.RetryPolicy.none())
    job = submit(client, "onerouter")
    with pytest.raises(mj.APIError) as info:
        job.wait()
    assert info.value.status_code == code
    assert type(info.value) is mj._exceptions.error_class_for_status(code)


def test_onerouter_sends_the_raw_key(fake: FakeProvider) -> None:
    with sync_client(fake, "onerouter") as client:
        submit(client, "onerouter").wait()
    assert {r.auth_header for r in fake.requests if r.origin == "api"} == {"raw ***"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wrong_key_is_an_authentication_error_that_never_shows_the_key(
    fake: FakeProvider, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-live-DO-NOT-LEAK-42"
    caplog.set_level(logging.DEBUG)
    client = sync_client(fake, provider, api_key=secret)
    with pytest.raises(mj.AuthenticationError) as info:
        submit(client, provider)
    assert info.value.status_code == 401
    for text in (
        str(info.value),
        repr(info.value),
        repr(info.value.body),
        repr(client),
        caplog.text,
    ):
        assert secret not in text


def test_base_url_replaces_every_host(fake: FakeProvider) -> None:
    with sync_client(fake, "onerouter") as client:
        job = submit(client, "onerouter").wait()
    assert {r.host for r in fake.requests} == {httpx.URL(fake.api_origin).host}
    assert job.status is mj.JobStatus.SUCCEEDED


def test_openrouter_relative_polling_url(fake: FakeProvider) -> None:
    fake.scenario = Scenario(relative_polling_url=True)
    with sync_client(fake, "openrouter") as client:
        job = submit(client, "openrouter").wait()
    assert job.status is mj.JobStatus.SUCCEEDED


@pytest.mark.parametrize("where", ["submit", "submit_fields"])
def test_malformed_submit_is_a_protocol_error(fake: FakeProvider, where: str) -> None:
    fake.scenario = Scenario(malformed=frozenset({where}))
    with sync_client(fake, "openrouter") as client, pytest.raises(mj.ProtocolError) as info:
        submit(client, "openrouter")
    assert info.value.provider == "openrouter"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_poll_is_a_protocol_error(fake: FakeProvider, provider: str) -> None:
    fake.scenario = Scenario(malformed=frozenset({"poll_fields"}))
    with sync_client(fake, provider) as client:
        job = submit(client, provider)
        with pytest.raises(mj.ProtocolError) as info:
            job.wait()
    assert info.value.provider == provider
    assert info.value.field


def test_server_hint_sets_the_next_delay(fake: FakeProvider) -> None:
    fake.scenario = Scenario(poll_retry_after="0.01")
    # 30 s would hang the test without the hint; the floor is lowered so the hint is used as is.
    slow = mj.PollPolicy(initial=30.0, factor=1.0, max_interval=30.0, jitter=0.0, min_interval=0.01)
    with sync_client(fake, "therouter") as client:
        job = submit(client, "therouter")
        client.wait(job.id, poll=slow, timeout=20)  # a stored id is polled at once
    assert client.get(job.id).status is mj.JobStatus.SUCCEEDED


def test_cancel_where_offered_and_refused_before_any_request_elsewhere(fake: FakeProvider) -> None:
    fake.scenario = Scenario(steps=("queued", "running", "running", "running"))
    with sync_client(fake, "therouter") as client:
        job = submit(client, "therouter")
        job.cancel()
        with pytest.raises(mj.JobCancelledError):
            job.wait()
    for provider in ("worldrouter", "openrouter", "onerouter"):
        before = len(fake.requests)
        with sync_client(fake, provider) as client:
            job = submit(client, provider)
            with pytest.raises(mj.UnsupportedError):
                job.cancel()
        assert len(fake.requests) == before + 1  # only the submit


def test_unsupported_kind_sends_nothing(fake: FakeProvider) -> None:
    with sync_client(fake, "openrouter") as client, pytest.raises(mj.UnsupportedError):
        client.submit("speech", model="m", prompt="hi")
    assert fake.requests == []


def test_resume_from_stored_id_and_from_dict(fake: FakeProvider) -> None:
    with sync_client(fake, "openrouter") as client:
        job = submit(client, "openrouter")
        stored = job.to_dict()
        by_id = client.wait(job.id)
        assert by_id.status is mj.JobStatus.SUCCEEDED
        again = client.job_from_dict(stored)
        assert again.id == job.id and again.status is mj.JobStatus.QUEUED
        assert again.to_dict() == stored
        assert client.get(job.id).status is mj.JobStatus.SUCCEEDED
        with pytest.raises(mj.ConfigurationError):
            sync_client(fake, "therouter").job_from_dict(stored)


@pytest.mark.parametrize("provider", ["therouter", "onerouter"])
def test_image_edit_and_transcription_send_files(
    fake: FakeProvider, provider: str, tmp_path: Any
) -> None:
    picture = tmp_path / "in.png"
    picture.write_bytes(b"\x89PNG fake")
    with sync_client(fake, "therouter") as client:
        edit = client.submit("image_edit", model="m", prompt="make it blue", image=picture)
        talk = client.submit("transcription", model="whisper-1", file=b"RIFF....WAVE")
        edit.wait()
        talk.wait()
    posts = [r for r in fake.requests if r.method == "POST"]
    assert posts[0].files == {"image": len(b"\x89PNG fake")}
    assert posts[0].form["prompt"] == "make it blue"
    assert posts[1].files == {"file": len(b"RIFF....WAVE")}


def test_missing_input_file_is_a_configuration_error(fake: FakeProvider) -> None:
    with sync_client(fake, "therouter") as client, pytest.raises(mj.ConfigurationError):
        client.submit("image_edit", model="m", prompt="p", image="/no/such/file.png")
    assert fake.requests == []


def test_caller_supplied_http_client_is_left_open(fake: FakeProvider) -> None:
    http = httpx.Client(transport=fake.transport())
    with mj.Client("openrouter", api_key=fake.api_key, base_url=fake.api_origin, http_client=http):
        pass
    assert not http.is_closed
    own = mj.Client("openrouter", api_key="k")
    own.close()
    assert own._http.is_closed


def test_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    with pytest.raises(mj.ConfigurationError, match="OPENROUTER_API_KEY"):
        mj.Client("openrouter")
    with pytest.raises(mj.ConfigurationError, match="unknown provider"):
        mj.Client("nowhere", api_key="k")
    for bad in ("ftp://x", "not a url", "http://127.0.0.1:8000/api/v1"):
        with pytest.raises(mj.ConfigurationError):
            mj.Client("openrouter", api_key="k", base_url=bad)
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-env")
    assert mj.Client("openrouter").provider == "openrouter"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wait_all_and_as_completed_mixed_outcomes(fake: FakeProvider, provider: str) -> None:
    with sync_client(fake, provider, max_concurrency=3) as client:
        fake.script(Scenario(outcome="failed"), times=1)
        jobs = [submit(client, provider) for _ in range(5)]
        fake.scenario = Scenario(steps=("queued",) * 3)
        order = [j.id for j in client.as_completed(jobs)]
        assert sorted(order) == sorted(j.id for j in jobs)
        assert [j.id for j in client.wait_all(jobs)] == [j.id for j in jobs]
    assert jobs[0].status is mj.JobStatus.FAILED
    assert all(j.status is mj.JobStatus.SUCCEEDED for j in jobs[1:])


@pytest.mark.anyio
async def test_async_many_jobs_with_a_flaky_one(fake: FakeProvider) -> None:
    async with async_client(fake, "openrouter", max_concurrency=4) as client:
        fake.script(Scenario(poll_errors={1: 503, 2: 503}, retry_after="0"), times=1)
        fake.script(Scenario(outcome="expired"), times=1)
        jobs = [await asubmit(client, "openrouter") for _ in range(12)]
        seen = [j.id async for j in client.as_completed(jobs)]
        done = await client.wait_all(jobs)
    assert sorted(seen) == sorted(j.id for j in jobs)
    assert done == jobs
    assert [j.status for j in jobs].count(mj.JobStatus.EXPIRED) == 1
    assert [j.status for j in jobs].count(mj.JobStatus.SUCCEEDED) == 11


@pytest.mark.anyio
@pytest.mark.parametrize("closing", [True, False])
async def test_leaving_async_as_completed_early_stops_all_polling(
    fake: FakeProvider, anyio_backend: str, closing: bool
) -> None:
    if not closing and anyio_backend == "trio":
        pytest.skip("trio warns about any async generator left unexhausted; use aclosing there")
    fake.scenario = Scenario(steps=("queued", "running", "running"))
    async with async_client(fake, "openrouter", poll=mj.PollPolicy.fixed(0.01)) as client:
        jobs = [await asubmit(client, "openrouter") for _ in range(8)]
        if closing:
            async with aclosing(client.as_completed(jobs)) as finished:
                first = await finished.__anext__()
        else:
            async for first in client.as_completed(jobs):
                break
        assert first.done
        count = len(fake.requests)
        await anyio.sleep(0.1)
        assert len(fake.requests) == count
        # the client is still fine afterwards
        assert (await client.wait(jobs[-1])).status is mj.JobStatus.SUCCEEDED


def test_leaving_sync_as_completed_early_stops_all_polling(fake: FakeProvider) -> None:
    import time

    fake.scenario = Scenario(steps=("queued", "running", "running"))
    with sync_client(fake, "openrouter", poll=mj.PollPolicy.fixed(0.01)) as client:
        jobs = [submit(client, "openrouter") for _ in range(8)]
        for job in client.as_completed(jobs):
            assert job.done
            break
        count = len(fake.requests)
        time.sleep(0.1)
        assert len(fake.requests) == count


@pytest.mark.anyio
async def test_many_jobs_raise_errors_that_concern_all_of_them(fake: FakeProvider) -> None:
    async with async_client(fake, "openrouter") as client:
        jobs = [await asubmit(client, "openrouter") for _ in range(3)]
    async with async_client(fake, "openrouter", api_key="wrong-key") as client:
        with pytest.raises(mj.AuthenticationError):
            await client.wait_all(jobs)


@pytest.mark.anyio
async def test_async_many_jobs_share_one_deadline(fake: FakeProvider) -> None:
    fake.scenario = Scenario(steps=(), outcome="pondering")
    async with async_client(fake, "openrouter", poll=mj.PollPolicy.fixed(0.02)) as client:
        jobs = [await asubmit(client, "openrouter") for _ in range(3)]
        with pytest.warns(mj.UnknownStatusWarning), pytest.raises(mj.WaitTimeoutError) as info:
            await client.wait_all(jobs, timeout=0.2)
    assert [j.id for j in info.value.pending] == [j.id for j in jobs]
    assert info.value.job is jobs[0]


def test_sync_many_jobs_share_one_deadline(fake: FakeProvider) -> None:
    fake.scenario = Scenario(steps=(), outcome="pondering")
    with sync_client(fake, "openrouter", poll=mj.PollPolicy.fixed(0.02)) as client:
        jobs = [submit(client, "openrouter") for _ in range(3)]
        with pytest.warns(mj.UnknownStatusWarning), pytest.raises(mj.WaitTimeoutError) as info:
            client.wait_all(jobs, timeout=0.2)
    assert len(info.value.pending) == 3
    assert info.value.job is jobs[0]


@pytest.mark.anyio
async def test_cancel_scope_stops_polling_cleanly(fake: FakeProvider) -> None:
    fake.scenario = Scenario(steps=("running",), polls_per_step=10_000)
    async with async_client(fake, "openrouter", poll=mj.PollPolicy.fixed(0.01)) as client:
        job = await asubmit(client, "openrouter")
        with anyio.move_on_after(0.2) as scope:
            await job.wait()
        assert scope.cancelled_caught
        count = len(fake.requests)
        await anyio.sleep(0.1)
        assert len(fake.requests) == count
    assert job.status is mj.JobStatus.RUNNING


def test_keyboard_interrupt_stops_polling(fake: FakeProvider) -> None:
    fake.scenario = Scenario(steps=("running",) * 5)
    polls: list[str] = []

    def interrupt(job: mj.Job) -> None:
        polls.append(job.raw_status)
        raise KeyboardInterrupt

    with sync_client(fake, "therouter") as client:
        job = submit(client, "therouter")
        with pytest.raises(KeyboardInterrupt):
            job.wait(on_update=interrupt)
        count = len(fake.requests)
    assert polls == ["in_progress"]
    assert count == 2  # the submit and the one poll


def test_repr_shows_no_secrets(fake: FakeProvider) -> None:
    client = sync_client(fake, "openrouter")
    job = submit(client, "openrouter")
    assert fake.api_key not in repr(client)
    assert repr(job).startswith("Job(id=")
