"""Reliability: the faults an adversarial review found, each pinned by a test.

Most tests run on the blocking client and on the async client under asyncio and trio (the
``mode`` fixture), against the hostile server of ``hostile.py`` (real sockets that lie) or an
``httpx.MockTransport`` where only the requests matter. A fault found and not yet fixed is
pinned by a test marked ``xfail(strict=True)`` with the reason, un-marked when the fix lands
(strict: an unexpected pass fails the suite); none is open today.

Tests that could hang on a broken build run their call on a worker thread and give it a
liveness bound (:func:`bounded`), many times what the call needs; this detects a hang, it
measures nothing. Past the bound the test releases whatever blocks the call (stopping the
hostile server, setting an event) and fails.
"""

from __future__ import annotations

import _thread
import contextlib
import gc
import json
import math
import multiprocessing
import pickle
import re
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import pytest

import mediajobs as mj
from hostile import HostileServer, hang, json_reply, ranged, redirect, reset, stall, trickle
from mediajobs import cli
from mediajobs._config import check_api_key

T = TypeVar("T")

KEY = "sk-or-v1-reliability-secret-0123456789"
API = "http://api.test"
STORE = "http://storage.test"
ELSEWHERE = "http://localhost:9"  # an API base distinct from the hostile server's host
FAST = mj.PollPolicy(
    initial=0.001, factor=1.0, max_interval=0.001, jitter=0, max_hint=0.001, min_interval=0.001
)
RETRY = mj.RetryPolicy(
    max_attempts=3, initial=0.001, jitter=0, max_retry_after=0.001, min_delay=0.001
)
DATA = bytes(range(256)) * 800  # 204 800 bytes
HANG_BOUND = 5.0  # seconds before a call expected to end in about one is deemed a hang


@pytest.fixture(params=["sync", "asyncio", "trio"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ----------------------------------------------------------------------------- helpers


def bounded(
    call: Callable[[], T], *, release: Callable[[], object], limit: float = HANG_BOUND
) -> T:
    """Run ``call`` on a thread; fail if it has not ended after ``limit`` seconds.

    On a hang, ``release`` unblocks the call (so no thread outlives the test) before failing.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:  # handed to the test thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        release()
        thread.join(30)
        pytest.fail(f"still running after {limit:g}s: a hang")
    if "error" in box:
        raise box["error"]
    result: T = box["result"]
    return result


def client_options(base_url: str, **extra: Any) -> dict[str, Any]:
    return {"api_key": KEY, "base_url": base_url, "poll": FAST, "retry": RETRY, **extra}


def run(
    mode: str,
    provider: str,
    action: Callable[[Any], Any],
    *,
    transport: Callable[[], Any] | None = None,
    **options: Any,
) -> Any:
    """Build a client for ``mode`` and run ``action(client)`` (awaited in the async modes).

    With ``transport`` (a factory of a sync or async httpx transport), the client uses an
    httpx client over it; otherwise it opens real connections.
    """
    if mode == "sync":
        http = httpx.Client(transport=transport()) if transport else None
        with mj.Client(provider, http_client=http, **options) as client:
            try:
                return action(client)
            finally:
                if http is not None:
                    http.close()

    async def main() -> Any:
        http = httpx.AsyncClient(transport=transport()) if transport else None
        async with mj.AsyncClient(provider, http_client=http, **options) as client:
            try:
                return await action(client)
            finally:
                if http is not None:
                    await http.aclose()

    return anyio.run(main, backend=mode)


def stored_job(client: Any, url: str, *, provider: str = "therouter", job_id: str = "j1") -> Any:
    return client.job_from_dict(
        {
            "id": job_id,
            "provider": provider,
            "status": "succeeded",
            "raw_status": "succeeded",
            "kind": "video",
            "artifacts": [{"url": url, "index": 0, "media_type": "video/mp4"}],
        }
    )


def download(mode: str, artifact_url: str, dest: Path, **options: Any) -> list[Path]:
    """Download one stored therouter artifact from ``artifact_url``."""
    opts = client_options(ELSEWHERE, **options)
    paths: list[Path] = run(
        mode, "therouter", lambda c: stored_job(c, artifact_url).download(dest), **opts
    )
    return paths


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def openrouter_job(job_id: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"id": job_id, "polling_url": f"/api/v1/videos/{job_id}", "status": status, **extra}


def mock(handler: Callable[[httpx.Request], httpx.Response]) -> Callable[[], httpx.MockTransport]:
    return lambda: httpx.MockTransport(handler)


# ----------------------------------------------------- 1: a short 206 is not the end


@pytest.mark.parametrize("shape", ["capped-cdn", "one-short-answer"])
def test_a_capped_range_answer_never_ends_the_file(
    mode: str, hostile: HostileServer, tmp_path: Path, shape: str
) -> None:
    if shape == "capped-cdn":  # every answer capped at 50 kB, Range or not
        hostile.on("/v.mp4", ranged(DATA, cap=50_000))
    else:  # 206 bytes 0-49999/204800 to a request without Range, then honest answers
        hostile.on("/v.mp4", ranged(DATA, cap=50_000), ranged(DATA))
    (path,) = download(mode, f"{hostile.url}/v.mp4", tmp_path)
    assert path.read_bytes() == DATA
    ranges = [r.headers.get("range") for r in hostile.seen("/v.mp4")]
    if shape == "capped-cdn":
        assert ranges == [None, "bytes=50000-", "bytes=100000-", "bytes=150000-", "bytes=200000-"]
    else:
        assert ranges == [None, "bytes=50000-"]


def test_a_short_206_that_cannot_be_resumed_is_never_a_file(
    mode: str, hostile: HostileServer, tmp_path: Path
) -> None:
    # Every answer: 206 bytes 0-49999/204800, whatever the Range asked for.
    def capped_from_zero(_: Any, conn: Any) -> None:
        headers = [("Content-Type", "video/mp4"), ("Content-Range", "bytes 0-49999/204800")]
        if conn.head(206, headers, length=50_000):
            conn.send(DATA[:50_000])

    hostile.on("/v.mp4", capped_from_zero)
    with pytest.raises(mj.DownloadError, match="gave up"):
        download(mode, f"{hostile.url}/v.mp4", tmp_path)
    assert files_under(tmp_path) == []


# ------------------------------------------------------ 2: keys that are not header-safe

BAD_KEYS = {
    "trailing-lf": KEY + "\n",
    "crlf": KEY + "\r\n",
    "trailing-cr": KEY + "\r",
    "typographic-quotes": f"\u201c{KEY}\u201d",
    "inner-space": KEY[:10] + " " + KEY[10:],
    "leading-tab": "\t" + KEY,
    "nul": KEY + "\0",
}


@pytest.mark.parametrize("case", sorted(BAD_KEYS))
@pytest.mark.parametrize("client_class", [mj.Client, mj.AsyncClient])
@pytest.mark.parametrize("source", ["argument", "environment"])
def test_a_key_that_cannot_be_a_header_is_refused_at_construction(
    case: str, client_class: type[Any], source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = BAD_KEYS[case]
    if source == "environment" and "\0" in bad:
        pytest.skip("an environment variable cannot hold a NUL")
    if source == "environment":
        monkeypatch.setenv("OPENROUTER_API_KEY", bad)
        kwargs: dict[str, Any] = {}
    else:
        kwargs = {"api_key": bad}
    with pytest.raises(mj.ConfigurationError) as caught:
        client_class("openrouter", **kwargs)
    message = str(caught.value)
    named = "OPENROUTER_API_KEY" if source == "environment" else "api_key"
    assert named in message  # where the key came from, so the user knows what to fix
    for text in (message, repr(caught.value)):
        assert KEY not in text
        assert KEY[8:20] not in text  # not even a fragment


@pytest.mark.parametrize(
    ("key", "says"),
    [
        (KEY + "\n", "ends with a line break"),
        (KEY + "\r\n", "ends with a carriage return"),
        (f"\u201c{KEY}", "non-ASCII character U+201C"),
        (KEY[:4] + " " + KEY[4:], "at position 4"),
        (b"sk-bytes", "must be a str"),
        ("", "is empty"),
    ],
)
def test_the_refusal_says_what_is_wrong(key: object, says: str) -> None:
    with pytest.raises(mj.ConfigurationError, match=re.escape(says)):
        check_api_key(key, source="api_key")


def test_keys_of_visible_ascii_are_kept_as_they_are() -> None:
    odd_but_fine = "sk-or-v1_AZaz09~!#$%&'*+.^`|"
    assert check_api_key(odd_but_fine, source="api_key") == odd_but_fine
    client = mj.Client("onerouter", api_key=odd_but_fine)
    client.close()


def test_the_cli_reports_a_crlf_key_without_printing_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY + "\r\n")
    code = cli.main(["--provider", "openrouter", "--base-url", ELSEWHERE, "status", "j1"])
    out, err = capsys.readouterr()
    assert code != 0
    assert "OPENROUTER_API_KEY" in err
    assert KEY not in out + err


# ------------------------------------------------ 4: a Location no client can follow

BAD_LOCATIONS = ["javascript:alert(1)", "data:text/plain,hi", "mailto:ops@example.com"]


@pytest.mark.parametrize("operation", ["submit", "get", "wait", "download"])
def test_an_unparseable_location_is_a_typed_error(
    mode: str, hostile: HostileServer, tmp_path: Path, operation: str
) -> None:
    for location in BAD_LOCATIONS:
        hostile.on("/api/v1/videos", redirect(location), method="POST")
        hostile.on("/api/v1/videos/j1", redirect(location))
        hostile.on("/v.mp4", redirect(location, 307))
        if operation == "download":
            with pytest.raises(mj.DownloadError, match="unusable redirect"):
                download(mode, f"{hostile.url}/v.mp4", tmp_path)
            assert files_under(tmp_path) == []
            continue

        def act(client: Any, operation: str = operation) -> Any:
            if operation == "submit":
                return client.submit("video", model="m", prompt="p")
            if operation == "get":
                return client.get("j1")
            return client.wait("j1", timeout=5)

        with pytest.raises(mj.ProtocolError, match="not a URL") as caught:
            run(mode, "openrouter", act, **client_options(hostile.url))
        assert location not in str(caught.value)
    if operation == "submit":  # not retried: a redirect to nowhere is no transient failure
        assert len(hostile.seen("/api/v1/videos", "POST")) == len(BAD_LOCATIONS)


# ---------------------------------------------------- 6: one deadline, whatever the body

RUNNING = openrouter_job("j1", "in_progress")


def test_a_trickling_poll_body_cannot_stretch_a_wait(mode: str, hostile: HostileServer) -> None:
    body = json_body(RUNNING)
    hostile.on("/api/v1/videos/j1", trickle(200, body, every=0.25))
    options = client_options(hostile.url)

    def wait() -> Any:
        return run(mode, "openrouter", lambda c: c.wait("j1", timeout=0.5), **options)

    with pytest.raises(mj.WaitTimeoutError):
        bounded(wait, release=hostile.stop)


def test_a_trickling_body_cannot_stretch_a_request(mode: str, hostile: HostileServer) -> None:
    hostile.on("/api/v1/videos/j1", trickle(200, json_body(RUNNING), every=0.25))
    options = client_options(hostile.url, timeout=0.5, retry=mj.RetryPolicy.none())

    def get() -> Any:
        return run(mode, "openrouter", lambda c: c.get("j1"), **options)

    with pytest.raises(mj.APITimeoutError):
        bounded(get, release=hostile.stop)


def test_a_stalled_download_ends_within_its_retries(
    mode: str, hostile: HostileServer, tmp_path: Path
) -> None:
    # A body that stops for longer than the client timeout is a failed attempt; attempts
    # that add nothing are bounded by the retry policy, so the stall time is too.
    hostile.on("/v.mp4", stall(200, DATA[:1000], total=len(DATA), headers=[("ETag", '"v1"')]))
    options = {
        "timeout": 0.3,
        "retry": mj.RetryPolicy(max_attempts=2, initial=0.001, jitter=0, min_delay=0.001),
    }

    def fetch() -> Any:
        return download(mode, f"{hostile.url}/v.mp4", tmp_path, **options)

    with pytest.raises(mj.DownloadError, match="gave up"):
        bounded(fetch, release=hostile.stop)
    assert files_under(tmp_path) == []
    assert len(hostile.seen("/v.mp4")) == 2


def json_body(value: Any) -> bytes:
    return json.dumps(value).encode()


# ---------------------------------------------------- 7: custom headers stay on API hosts


def test_custom_headers_reach_api_hosts_only(mode: str, tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    lock = threading.Lock()

    def handle(request: httpx.Request) -> httpx.Response:
        with lock:
            seen.append(request)
        if request.url.host == "api.test" and request.url.path == "/v1/jobs/j1/content":
            return httpx.Response(302, headers={"Location": f"{STORE}/fresh.mp4?sig=1"})
        if request.url.host == "api.test":
            return httpx.Response(404, json={"error": {"message": "no"}})
        return httpx.Response(200, headers={"Content-Type": "video/mp4"}, content=DATA[:100])

    options = client_options(API, headers={"X-Team": "team-secret"})

    def act(client: Any) -> Any:
        direct = stored_job(client, f"{STORE}/v.mp4?sig=0", job_id="j0")
        via_api = stored_job(client, f"{API}/v1/jobs/j1/content")
        if isinstance(client, mj.Client):
            return [direct.download(tmp_path / "a"), via_api.download(tmp_path / "b")]

        async def both() -> Any:
            return [await direct.download(tmp_path / "a"), await via_api.download(tmp_path / "b")]

        return both()

    run(mode, "therouter", act, transport=mock(handle), **options)
    api = [r for r in seen if r.url.host == "api.test"]
    storage = [r for r in seen if r.url.host == "storage.test"]
    assert api and len(storage) == 2
    assert all(r.headers.get("x-team") == "team-secret" for r in api)
    assert all("x-team" not in r.headers for r in storage)
    assert all(r.headers["user-agent"].startswith("mediajobs/") for r in seen)


# ---------------------------------------------------------- 8: errors cross processes


def api_response(status: int) -> httpx.Response:
    request = httpx.Request(
        "GET", f"{API}/v1/jobs/j1?sig=abc", headers={"Authorization": f"Bearer {KEY}"}
    )
    return httpx.Response(
        status,
        headers={"Retry-After": "7", "Set-Cookie": f"session={KEY}"},
        content=f'{{"error": "bad key {KEY}"}}'.encode(),
        request=request,
    )


def job_data(status: str = "running") -> mj.JobData:
    return mj.JobData(id="j1", provider="therouter", status=status, raw_status=status)


ERRORS: list[mj.MediaJobsError] = [
    mj.MediaJobsError("base"),
    mj.ConfigurationError("config"),
    mj.UnsupportedError("unsupported"),
    mj.APIError("teapot", status_code=418, body={"a": 1}, response=api_response(418)),
    *(
        cls(
            f"status {code}",
            status_code=code,
            body="***",
            response=api_response(code),
            provider="p",
        )
        for cls, code in [
            (mj.BadRequestError, 400),
            (mj.AuthenticationError, 401),
            (mj.PaymentRequiredError, 402),
            (mj.PermissionDeniedError, 403),
            (mj.NotFoundError, 404),
            (mj.RateLimitError, 429),
            (mj.ServerError, 503),
        ]
    ),
    mj.APIConnectionError("dropped", unsent=True),
    mj.APITimeoutError("slow"),
    mj.ProtocolError("odd", provider="therouter", field="status"),
    mj.JobFailedError("failed", job=job_data("failed")),
    mj.JobCancelledError("cancelled", job=job_data("cancelled")),
    mj.JobExpiredError("expired", job=job_data("expired")),
    mj.WaitTimeoutError("late", job=job_data(), pending=[job_data()]),
    mj.DownloadError("short", url=f"{STORE}/v.mp4"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_every_error_pickles_without_the_key(error: mj.MediaJobsError) -> None:
    data = pickle.dumps(error)
    assert KEY.encode() not in data
    back = pickle.loads(data)
    assert type(back) is type(error)
    assert str(back) == str(error) and repr(back) == repr(error)
    assert back.args == error.args
    for name, value in vars(error).items():
        if name != "response":
            assert getattr(back, name) == value, name
    if isinstance(error, mj.APIError):
        assert back.status_code == error.status_code
        assert back.retry_after == "7"
        assert back.response is not None and back.response.status_code == error.status_code
        assert "authorization" not in back.response.request.headers
        assert back.response.request.url == httpx.URL(f"{API}/v1/jobs/j1")
        assert "set-cookie" not in back.response.headers


def never_done(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/missing"):
        return httpx.Response(404, json={"error": {"code": 404, "message": "no such job"}})
    return httpx.Response(200, json=openrouter_job(request.url.path.rsplit("/", 1)[1], "pending"))


def test_errors_raised_by_a_client_pickle_without_it_or_the_key(mode: str) -> None:
    options = client_options(API)

    def act(client: Any) -> Any:
        async def collect() -> list[BaseException]:
            caught = []
            for call in (lambda: client.get("missing"), lambda: client.wait("j1", timeout=0.2)):
                try:
                    await call()
                except mj.MediaJobsError as exc:
                    caught.append(exc)
            return caught

        if isinstance(client, mj.AsyncClient):
            return collect()
        caught = []
        for call in (lambda: client.get("missing"), lambda: client.wait("j1", timeout=0.2)):
            try:
                call()
            except mj.MediaJobsError as exc:
                caught.append(exc)
        return caught

    not_found, late = run(mode, "openrouter", act, transport=mock(never_done), **options)
    assert isinstance(not_found, mj.NotFoundError) and isinstance(late, mj.WaitTimeoutError)
    assert not_found.response is not None
    assert KEY in not_found.response.request.headers["authorization"]  # live: all of it
    for error in (not_found, late):
        data = pickle.dumps(error)
        assert KEY.encode() not in data
    back = pickle.loads(pickle.dumps(late))
    assert isinstance(back.job, mj.JobData) and back.job.id == "j1"
    assert [j.id for j in back.pending] == ["j1"]
    assert pickle.loads(pickle.dumps(not_found)).status_code == 404


def fail_in_worker(job_id: str) -> str:
    """Run in a worker process: a real client call that raises NotFoundError."""
    with mj.Client(
        "openrouter",
        api_key=KEY,
        base_url=API,
        retry=RETRY,
        http_client=httpx.Client(transport=httpx.MockTransport(never_done)),
    ) as client:
        return client.get(job_id).id


def test_an_error_in_a_worker_process_reaches_the_parent() -> None:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        with pytest.raises(mj.NotFoundError) as caught:
            pool.submit(fail_in_worker, "missing").result(timeout=60)
        assert caught.value.status_code == 404
        assert pool.submit(fail_in_worker, "j2").result(timeout=60) == "j2"  # pool intact


# ---------------------------------------------- 9: a resume must not splice two objects


def test_a_resume_never_splices_two_objects(
    mode: str, hostile: HostileServer, tmp_path: Path
) -> None:
    old, new = DATA, DATA[::-1]
    half = len(old) // 2
    hostile.on(
        "/v.mp4",
        ranged(old, etag='"v1"', cut=half),  # the connection drops halfway: resume
        ranged(new, etag='"v2"'),  # a lying cache: 206 of the new object despite If-Range
    )
    (path,) = download(mode, f"{hostile.url}/v.mp4", tmp_path)
    assert path.read_bytes() == new  # restarted on the new version, never spliced
    _, resume, again = hostile.seen("/v.mp4")
    assert resume.headers.get("if-range") == '"v1"'
    assert "range" not in again.headers and "if-range" not in again.headers
    assert files_under(tmp_path) == [path.name]


# ---------------------------------------------------------- 10: a deadline that is NaN


@pytest.mark.parametrize("timeout", [math.nan, math.inf, -math.inf, -1.0])
def test_a_non_finite_or_negative_wait_timeout_is_refused(mode: str, timeout: float) -> None:
    stop = threading.Event()

    def handle(request: httpx.Request) -> httpx.Response:
        if stop.is_set():  # released: end any wait still polling
            return httpx.Response(401, json={"error": {"code": 401, "message": "stop"}})
        return httpx.Response(200, json=RUNNING)

    poll = mj.PollPolicy(initial=0.05, max_interval=0.05, jitter=0)
    options = client_options(API, poll=poll)

    def wait() -> Any:
        return run(
            mode,
            "openrouter",
            lambda c: c.wait("j1", timeout=timeout),
            transport=mock(handle),
            **options,
        )

    with pytest.raises(mj.ConfigurationError, match="timeout must be a finite number"):
        bounded(wait, release=stop.set, limit=3)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        *(
            (name, value)
            for name in ("timeout", "wait_timeout")
            for value in (math.nan, math.inf, -5)
        ),
        ("timeout", 0),  # a request cannot take no time; a wait may (it reads the job once)
        ("wait_timeout", "9"),
    ],
)
@pytest.mark.parametrize("client_class", [mj.Client, mj.AsyncClient])
def test_a_bad_client_timeout_is_refused_at_construction(
    client_class: type[Any], option: str, value: object
) -> None:
    with pytest.raises(mj.ConfigurationError, match=f"^{option} must be"):
        client_class("openrouter", api_key=KEY, **{option: value})


def test_many_job_waits_refuse_a_nan_timeout(mode: str) -> None:
    def act(client: Any) -> Any:
        return client.wait_all(["j1"], timeout=math.nan)

    with pytest.raises(mj.ConfigurationError, match="timeout"):
        run(mode, "openrouter", act, transport=mock(never_done), **client_options(API))


@pytest.mark.parametrize(
    ("timeout", "most"),
    [
        (0, 1),  # a wait of 0 seconds reads the job once
        (0.5, 7),  # Retry-After: 0 on every answer: still one poll per 0.1 s (the floor) at most
    ],
)
def test_a_wait_polls_at_most_as_the_floor_allows(mode: str, timeout: float, most: int) -> None:
    polls: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        polls.append(request)
        return httpx.Response(200, json=RUNNING, headers={"Retry-After": "0"})

    floor = mj.PollPolicy(initial=0.1, max_interval=0.1, jitter=0, min_interval=0.1)
    options = client_options(API, poll=floor)
    with pytest.raises(mj.WaitTimeoutError):
        run(
            mode,
            "openrouter",
            lambda c: c.wait("j1", timeout=timeout),
            transport=mock(handle),
            **options,
        )
    assert 1 <= len(polls) <= most


# ------------------------------------------------ 11: leaving as_completed early


def one_blocked_poll(gate: threading.Event) -> Callable[[httpx.Request], httpx.Response]:
    """Poll answers: job ``fast`` completes once ``slow``'s poll is in flight; that one
    blocks until ``gate`` is set."""
    slow_started = threading.Event()

    def handle(request: httpx.Request) -> httpx.Response:
        job_id = request.url.path.rsplit("/", 1)[1]
        if job_id == "slow":
            slow_started.set()
            gate.wait(30)
            return httpx.Response(200, json=openrouter_job(job_id, "pending"))
        slow_started.wait(5)
        return httpx.Response(200, json=openrouter_job(job_id, "completed"))

    return handle


def test_leaving_the_blocking_as_completed_early_returns_at_once() -> None:
    gate = threading.Event()
    http = httpx.Client(transport=httpx.MockTransport(one_blocked_poll(gate)))
    client = mj.Client("openrouter", http_client=http, **client_options(API))

    def first() -> str:
        with contextlib.closing(client.as_completed(["fast", "slow"], timeout=60)) as jobs:
            return next(jobs).id

    try:
        assert bounded(first, release=gate.set, limit=3) == "fast"
    finally:
        gate.set()
        http.close()


@pytest.mark.anyio
async def test_leaving_the_async_as_completed_early_returns(anyio_backend: str) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(one_blocked_async())) as http:
        client = mj.AsyncClient("openrouter", http_client=http, **client_options(API))
        with anyio.fail_after(HANG_BOUND):
            async with contextlib.aclosing(client.as_completed(["fast", "slow"])) as jobs:
                async for job in jobs:
                    assert job.id == "fast"
                    break


def one_blocked_async() -> Callable[[httpx.Request], Any]:
    slow_started = anyio.Event()

    async def handle(request: httpx.Request) -> httpx.Response:
        job_id = request.url.path.rsplit("/", 1)[1]
        if job_id == "slow":
            slow_started.set()
            await anyio.sleep(30)
            return httpx.Response(200, json=openrouter_job(job_id, "pending"))
        with anyio.move_on_after(5):
            await slow_started.wait()
        return httpx.Response(200, json=openrouter_job(job_id, "completed"))

    return handle


# ------------------------------------------------- Ctrl-C during a blocking download


def test_ctrl_c_during_a_blocking_download_returns_and_leaves_nothing(
    hostile: HostileServer, tmp_path: Path
) -> None:
    # Both bodies stop after their first bytes: each worker thread is blocked in a read, with
    # a minute before its read timeout. Ctrl-C must end the call and the reads alike.
    for name in ("a", "b"):
        hostile.on(f"/{name}.mp4", stall(200, DATA[:1000], total=len(DATA)))
    interrupted = threading.Event()
    timers: list[threading.Timer] = []

    def interrupt() -> None:
        interrupted.set()
        _thread.interrupt_main()  # as a Ctrl-C would

    def on_progress(done: int, total: int | None) -> None:
        if done > 0 and not timers:  # bytes flow: both requests are out by now or soon
            timers.append(threading.Timer(0.3, interrupt))
            timers[0].start()

    before = set(threading.enumerate())
    with mj.Client("therouter", **client_options(ELSEWHERE, timeout=60)) as client:
        job = client.job_from_dict(
            {
                "id": "j1",
                "provider": "therouter",
                "status": "succeeded",
                "raw_status": "succeeded",
                "kind": "video",
                "artifacts": [
                    {"url": f"{hostile.url}/{name}.mp4", "index": index, "media_type": "video/mp4"}
                    for index, name in enumerate(("a", "b"))
                ],
            }
        )
        with pytest.raises(KeyboardInterrupt):
            job.download(tmp_path, on_progress=on_progress)
    timers[0].join()
    assert interrupted.is_set()
    assert len(hostile.seen("/a.mp4")) == len(hostile.seen("/b.mp4")) == 1
    assert files_under(tmp_path) == []  # neither final nor part files
    workers = [t for t in set(threading.enumerate()) - before if t.name.startswith("mediajobs")]
    for thread in workers:
        thread.join(HANG_BOUND)  # a liveness bound, far below the 60 s read timeout
    assert [t.name for t in workers if t.is_alive()] == []


# --------------------------------------------------------------- 12: a closed client

OPERATIONS = ["submit", "get", "wait", "refresh", "download", "wait_all"]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_closed_client_raises_a_typed_error(mode: str, operation: str, tmp_path: Path) -> None:
    options = client_options("http://127.0.0.1:9")  # never contacted: the client is closed

    def call(client: Any) -> Any:
        job = stored_job(client, f"{STORE}/v.mp4", provider="openrouter")
        running = client.job_from_dict({**job.to_dict(), "status": "running"})
        calls = {
            "submit": lambda: client.submit("video", model="m", prompt="p"),
            "get": lambda: client.get("j1"),
            "wait": lambda: client.wait("j1", timeout=5),
            "refresh": running.refresh,
            "download": lambda: job.download(tmp_path),
            "wait_all": lambda: client.wait_all(["j1"], timeout=5),
        }
        return calls[operation]()

    closed = "the client is closed"
    if mode == "sync":
        client = mj.Client("openrouter", **options)
        client.close()
        with pytest.raises(mj.ConfigurationError, match=closed):
            call(client)
        return

    async def main() -> None:
        client = mj.AsyncClient("openrouter", **options)
        await client.aclose()
        with pytest.raises(mj.ConfigurationError, match=closed):
            await call(client)

    anyio.run(main, backend=mode)


def test_an_httpx_client_closed_by_its_owner_gives_the_same_error(mode: str) -> None:
    if mode == "sync":
        http = httpx.Client(transport=httpx.MockTransport(never_done))
        http.close()
        client = mj.Client("openrouter", http_client=http, **client_options(API))
        with pytest.raises(mj.ConfigurationError, match="the client is closed"):
            client.get("j1")
        return

    async def main() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(never_done))
        await http.aclose()
        async with mj.AsyncClient("openrouter", http_client=http, **client_options(API)) as client:
            with pytest.raises(mj.ConfigurationError, match="the client is closed"):
                await client.get("j1")

    anyio.run(main, backend=mode)


def test_a_client_closed_during_a_wait_stops_it_with_the_same_error(
    mode: str, hostile: HostileServer
) -> None:
    hostile.on("/api/v1/videos/j1", json_reply(200, RUNNING))

    # on_update closes the client after the first poll: the next poll must not be sent.
    def act(client: Any) -> Any:
        if isinstance(client, mj.Client):
            return client.wait("j1", timeout=30, on_update=lambda _: client.close())

        async def close(_: Any) -> None:
            await client.aclose()

        return client.wait("j1", timeout=30, on_update=close)

    with pytest.raises(mj.ConfigurationError, match="the client is closed"):
        run(mode, "openrouter", act, **client_options(hostile.url))
    assert len(hostile.seen("/api/v1/videos/j1")) == 1


# --------------------------------------- found by the fuzz suite: an undecodable body


@pytest.mark.parametrize("operation", ["get", "download"])
def test_an_undecodable_body_leaves_no_async_generator_behind(
    operation: str, tmp_path: Path
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Encoding": "gzip", "Content-Type": "video/mp4"}
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(b"not gzip"))

    def act(client: Any) -> Any:
        if operation == "get":
            return client.get("j1")
        return stored_job(client, f"{STORE}/v.mp4", provider="openrouter").download(tmp_path)

    options = client_options(API, retry=mj.RetryPolicy.none())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(mj.MediaJobsError):
            run("trio", "openrouter", act, transport=mock(handle), **options)
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


# ------------------------------------------- faults the engine already survives, kept so


def test_a_submit_cut_after_sending_is_not_repeated(mode: str, hostile: HostileServer) -> None:
    hostile.on("/api/v1/videos", reset(), method="POST")
    options = client_options(hostile.url)
    with pytest.raises(mj.APIConnectionError) as caught:
        run(mode, "openrouter", lambda c: c.submit("video", model="m", prompt="p"), **options)
    assert not caught.value.unsent
    assert len(hostile.seen("/api/v1/videos", "POST")) == 1  # the job may exist: never twice


def test_a_reset_poll_is_retried(mode: str, hostile: HostileServer) -> None:
    done = openrouter_job("j1", "completed", unsigned_urls=[f"{hostile.url}/c"])
    hostile.on("/api/v1/videos/j1", reset(), reset(200, b"{", total=500), json_reply(200, done))
    options = client_options(hostile.url)
    job = run(mode, "openrouter", lambda c: c.wait("j1", timeout=30), **options)
    assert job.status is mj.JobStatus.SUCCEEDED
    assert len(hostile.seen("/api/v1/videos/j1")) == 3


def test_a_reset_mid_body_resumes_from_where_it_stopped(
    mode: str, hostile: HostileServer, tmp_path: Path
) -> None:
    hostile.on("/v.mp4", ranged(DATA, cut=70_000), ranged(DATA, cut=50_000), ranged(DATA))
    (path,) = download(mode, f"{hostile.url}/v.mp4", tmp_path)
    assert path.read_bytes() == DATA
    ranges = [r.headers.get("range") for r in hostile.seen("/v.mp4")]
    assert ranges == [None, "bytes=70000-", "bytes=120000-"]


def test_a_lying_content_length_is_never_a_short_file(
    mode: str, hostile: HostileServer, tmp_path: Path
) -> None:
    short = reset(200, DATA[:1000], total=len(DATA), headers=[("Content-Type", "video/mp4")])
    hostile.on("/v.mp4", short)
    with pytest.raises(mj.DownloadError):
        download(mode, f"{hostile.url}/v.mp4", tmp_path)
    assert files_under(tmp_path) == []


def test_a_poll_that_never_answers_ends_at_the_deadline(mode: str, hostile: HostileServer) -> None:
    hostile.on("/api/v1/videos/j1", hang())
    options = client_options(hostile.url)

    def wait() -> Any:
        return run(mode, "openrouter", lambda c: c.wait("j1", timeout=0.5), **options)

    with pytest.raises(mj.WaitTimeoutError):
        bounded(wait, release=hostile.stop)
