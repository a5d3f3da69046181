"""Property-based tests of both clients end to end: whatever a server answers, a call returns a
job (or files) or raises a ``MediaJobsError`` -- never anything else, never a hang.

Each example scripts a short sequence of answers (arbitrary statuses, headers and bodies,
bodies often shaped like the provider's own with fields dropped, retyped or replaced), served
through ``httpx.MockTransport`` to ``submit``, ``get``, ``wait`` or ``download`` of one of the
four providers, on the blocking client or the async one under asyncio or trio. Once the script
is used up every request gets a 404, so every call ends; retry and poll delays are zero.

How many examples run is set by the hypothesis profile (``tests/conftest.py``): ``ci`` by
default, ``long`` with ``MEDIAJOBS_FUZZ=long``.

Wild input (an unusable ``Location``, URLs and ids that cannot be parsed) has its own property
below, with explicit examples that once escaped as raw exceptions; the main properties draw
URLs from well-formed ones. Everything runs with warnings as errors.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

import mediajobs as mj
from test_client import CASES  # provider -> (kind, model)

KEY = "sk-fuzz-secret-0123456789abcdef"
API = "http://api.test"
STORE = "http://storage.test"
FAST = mj.PollPolicy(
    initial=0.001, factor=1.0, max_interval=0.001, jitter=0, max_hint=0.001, min_interval=0.001
)
RETRY = mj.RetryPolicy(
    max_attempts=2, initial=0.001, jitter=0, max_retry_after=0.001, min_delay=0.001
)
FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# --------------------------------------------------------------------------- strategies

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
RAW_STATUSES = [
    "queued", "pending", "created", "in_progress", "running", "processing", "succeeded",
    "completed", "failed", "error", "cancelled", "expired", "", "COMPLETED", "weird",
]  # fmt: skip
statuses = st.sampled_from(RAW_STATUSES) | st.text(max_size=12)
ids = st.sampled_from(["job_1", "img_abc", "cgt-2026-x", "a/b", "../x", "a?b#c", "%zz"]) | st.text(
    min_size=1, max_size=40
)  # any text but lone surrogates (those are pinned below)
paths = st.from_regex(r"(/[A-Za-z0-9._~%-]{0,12}){0,4}", fullmatch=True)
absolute_urls = st.one_of(
    st.builds(lambda p, q: f"{STORE}{p or '/'}{q}", paths, st.sampled_from(["", "?sig=1", "?a=b&c"])),
    st.builds(lambda p: f"{API}{p or '/'}", paths),
    st.builds(lambda host, p: f"https://{host}.example{p}", st.from_regex(r"[a-z]{1,8}", fullmatch=True), paths),
)  # fmt: skip
urls = absolute_urls | st.from_regex(r"(/[A-Za-z0-9._~%-]{0,12}){1,4}", fullmatch=True)
times = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.sampled_from(
        ["2026-05-15T12:00:00Z", "2026-06-11T12:00:00+00:00", "2024-01-01 12:00:00.00"]
    ),
    st.text(max_size=25),
)


def template(provider: str, job_id: str, status: str, url: str, stamp: Any) -> dict[str, Any]:
    """A body in the provider's documented shape (submit and poll answers alike)."""
    if provider == "therouter":
        return {
            "id": job_id, "object": "video_job", "status": status, "model": "m",
            "created_at": stamp, "polling_url": url, "expires_at": stamp,
            "completed_at": stamp, "content_url": url, "unsigned_urls": [url],
            "image_count": 1, "usage": {"cost_credits": 1.5}, "error": {"message": "no"},
            "result": {"data": [{"url": url}]},
        }  # fmt: skip
    if provider == "worldrouter":
        return {
            "id": job_id, "task_id": job_id, "object": "image.generation_task", "status": status,
            "model": "m", "created": stamp, "created_at": stamp, "data": [{"url": url}],
            "usage": {"total_tokens": 3}, "error": {"code": "x", "message": "no"},
            "content": {"video_url": url},
        }  # fmt: skip
    if provider == "openrouter":
        return {
            "id": job_id, "polling_url": url, "status": status, "generation_id": "g",
            "unsigned_urls": [url], "urls": [url], "usage": {"cost": 0.5, "is_byok": False},
            "error": "no", "expires_at": stamp,
        }  # fmt: skip
    return {
        "code": 200, "message": "ok",
        "data": {
            "task_id": job_id, "object": "video", "model": "m", "status": status,
            "urls": {"get": url, "query": url, "video": url}, "outputs": [url], "fail_reason": "",
            "submit_time": stamp, "finish_time": stamp, "created_at": stamp,
            "cost": {"total_cost": 0.1},
        },
    }  # fmt: skip


@st.composite
def shaped_bodies(draw: st.DrawFn, provider: str) -> bytes:
    """A provider-shaped JSON body with some fields dropped, retyped or replaced."""
    body = template(provider, draw(ids), draw(statuses), draw(urls), draw(times))
    target = body["data"] if provider == "onerouter" and draw(st.booleans()) else body
    for name in draw(st.lists(st.sampled_from(sorted(target)), max_size=4, unique=True)):
        action = draw(st.sampled_from(["drop", "replace", "null"]))
        if action == "drop":
            del target[name]
        else:
            target[name] = None if action == "null" else draw(json_values)
    if provider == "onerouter" and draw(st.booleans()):
        body["code"] = draw(st.sampled_from([200, 400, 401, 404, 429, 500]) | json_values)
    text = json.dumps(body)
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]  # cut short
    return text.encode()


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
header_values = {
    "content-type": st.sampled_from(["application/json", "text/html", "video/mp4", "image/png"])
    | header_text,
    "retry-after": st.sampled_from(["0", "1", "3600", "-5", "Wed, 21 Oct 2015 07:28:00 GMT"])
    | header_text,
    "etag": st.sampled_from(['"v1"', 'W/"v1"', '"v2"']) | header_text,
    "content-range": st.sampled_from(["bytes 0-9/100", "bytes */100", "bytes 5-4/3"]) | header_text,
    "content-encoding": st.sampled_from(["gzip", "identity", "br", "deflate"]),
    "location": urls,
    "last-modified": header_text,
}


@dataclass(frozen=True)
class Answer:
    """A scripted answer; its body is only decoded (``Content-Encoding``) by the client."""

    status: int
    headers: dict[str, str]
    content: bytes

    def response(self) -> httpx.Response:
        # Header values as a server's bytes (UTF-8 for what ASCII cannot say): httpx refuses
        # non-ASCII text when building a response, which no client would ever see.
        headers = [(k.encode("utf-8"), v.encode("utf-8")) for k, v in self.headers.items()]
        return httpx.Response(self.status, headers=headers, stream=httpx.ByteStream(self.content))


@st.composite
def answers(draw: st.DrawFn, provider: str, *, binary: bool = False) -> Answer:
    """One scripted answer."""
    status = draw(
        st.sampled_from([200, 200, 200, 201, 202, 204, 206, 301, 302, 307, 400, 401, 403, 404])
        | st.sampled_from([408, 416, 422, 429, 500, 502, 503])
        | st.integers(100, 599)
    )
    names = draw(st.lists(st.sampled_from(sorted(header_values)), max_size=4, unique=True))
    headers = {name: draw(header_values[name]) for name in names}
    kinds = st.sampled_from(["shaped", "json", "bytes"] if not binary else ["bytes", "json"])
    kind = draw(kinds)
    if kind == "shaped":
        content = draw(shaped_bodies(provider))
    elif kind == "json":
        content = json.dumps(draw(json_values)).encode()
    else:
        content = draw(st.binary(max_size=2048))
    if status in (204, 304) or 100 <= status < 200:
        content = b""
    return Answer(status, headers, content)


# --------------------------------------------------------------------------- the harness


@dataclass
class Script:
    """Answers used in turn, then 404 for ever; records what was asked."""

    answers: list[Answer]
    seen: list[httpx.Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.seen.append(request)
            if self.answers:
                return self.answers.pop(0).response()
        return httpx.Response(404, json={"error": {"code": 404, "message": "script done"}})


def drive(mode: str, provider: str, script: Script, action: Callable[[Any], Any]) -> Any:
    """Run ``action(client)`` on a fresh client of ``mode``; awaited in the async modes."""
    options: dict[str, Any] = {"api_key": KEY, "base_url": API, "poll": FAST, "retry": RETRY}

    async def main() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(script.handle)) as http:
            return await action(mj.AsyncClient(provider, http_client=http, **options))

    with warnings.catch_warnings():
        # Arbitrary statuses are unknown ones: warned about once per process, by design.
        warnings.simplefilter("ignore", mj.UnknownStatusWarning)
        if mode != "sync":
            return anyio.run(main, backend=mode)
        with httpx.Client(transport=httpx.MockTransport(script.handle)) as http:
            return action(mj.Client(provider, http_client=http, **options))


def outcome(mode: str, provider: str, script: Script, action: Callable[[Any], Any]) -> Any:
    """The call's result or its ``MediaJobsError``; anything else fails the example."""
    try:
        return drive(mode, provider, script, action)
    except mj.MediaJobsError as exc:
        error = exc
    note(f"{type(error).__name__}: {error}")
    assert KEY not in str(error) and KEY not in repr(error)
    return error


def check_job(result: Any, provider: str) -> None:
    if isinstance(result, mj.MediaJobsError):
        return
    assert isinstance(result, (mj.Job, mj.AsyncJob))
    assert result.provider == provider
    assert isinstance(result.id, str) and result.id
    assert isinstance(result.status, mj.JobStatus)
    json.dumps(result.to_dict())  # a snapshot always serializes


modes = st.sampled_from(["sync", "asyncio", "trio"])
providers = st.sampled_from(sorted(CASES))


# ---------------------------------------------------------------------------- properties


@FUZZ
@given(data=st.data(), mode=modes, provider=providers)
def test_submit_returns_a_job_or_a_typed_error(
    data: st.DataObject, mode: str, provider: str
) -> None:
    script = Script(data.draw(st.lists(answers(provider), min_size=1, max_size=3)))
    kind, model = CASES[provider]

    def action(client: Any) -> Any:
        return client.submit(kind, model=model, prompt="a kitten")

    result = outcome(mode, provider, script, action)
    check_job(result, provider)
    posts = [r for r in script.seen if r.method == "POST"]
    keys = {r.headers.get("idempotency-key") for r in posts}
    assert len(keys) == 1 and None not in keys  # one submit: one key on every attempt


@pytest.mark.parametrize("operation", ["get", "wait"])
@FUZZ
@given(data=st.data(), mode=modes, provider=providers, job_id=ids)
def test_get_and_wait_return_a_job_or_a_typed_error(
    operation: str, data: st.DataObject, mode: str, provider: str, job_id: str
) -> None:
    script = Script(data.draw(st.lists(answers(provider), min_size=1, max_size=5)))
    kind = CASES[provider][0]

    def action(client: Any) -> Any:
        if operation == "get":
            return client.get(job_id, kind=kind)
        return client.wait(job_id, kind=kind, timeout=30)

    result = outcome(mode, provider, script, action)
    check_job(result, provider)
    if operation == "wait" and not isinstance(result, mj.MediaJobsError):
        assert result.status is mj.JobStatus.SUCCEEDED  # wait returns succeeded jobs only


@FUZZ
@given(
    data=st.data(),
    mode=modes,
    provider=providers,
    job_id=ids,
    artifact_urls=st.lists(absolute_urls, min_size=1, max_size=2),
)
def test_download_returns_files_or_a_typed_error(
    data: st.DataObject, mode: str, provider: str, job_id: str, artifact_urls: list[str]
) -> None:
    script = Script(data.draw(st.lists(answers(provider, binary=True), min_size=1, max_size=4)))
    stored = {
        "id": job_id,
        "provider": provider,
        "status": "succeeded",
        "raw_status": "succeeded",
        "kind": CASES[provider][0],
        "artifacts": [
            {"url": u, "index": i, "media_type": None} for i, u in enumerate(artifact_urls)
        ],
    }
    with TemporaryDirectory() as tmp:
        dest = Path(tmp) / "out"
        result = outcome(mode, provider, script, lambda c: c.job_from_dict(stored).download(dest))
        left = sorted(p.name for p in dest.iterdir()) if dest.exists() else []
        if isinstance(result, mj.MediaJobsError):
            assert left == []  # no partial file, no temporary file
        else:
            assert [p.parent for p in result] == [dest.resolve()] * len(artifact_urls)
            assert sorted(p.name for p in result) == left
    for request in script.seen:
        if request.url.host != "api.test":
            assert "authorization" not in request.headers  # no key off the API hosts


# ------------------------------------------------------- open defects, pinned by examples

BAD_URLS = ["javascript:alert(1)", "data:text/plain,hi", "mailto:ops@example.com", "http://[::1"]
wild_urls = urls | st.sampled_from(BAD_URLS) | st.text(max_size=40)


# (mode, provider, operation, location, url, job_id): each once escaped untyped.
WILD_EXAMPLES = [
    ("sync", "openrouter", "get", BAD_URLS[0], STORE, "job_1"),  # Location: javascript:
    ("trio", "therouter", "download", BAD_URLS[1], STORE, "job_1"),  # Location: data:
    ("asyncio", "onerouter", "wait", None, BAD_URLS[3], "job_1"),  # a URL field: http://[::1
    ("sync", "worldrouter", "submit", None, BAD_URLS[3], "job_1"),
    ("trio", "openrouter", "get", None, STORE, "\ud800"),  # an id with a lone surrogate
]


def with_wild_examples(test: Callable[..., None]) -> Callable[..., None]:
    names = ["mode", "provider", "operation", "location", "url", "job_id"]
    for case in WILD_EXAMPLES:
        test = example(**dict(zip(names, case, strict=True)))(test)
    return test


@FUZZ
@given(
    mode=modes,
    provider=providers,
    operation=st.sampled_from(["submit", "get", "wait", "download"]),
    location=st.none() | wild_urls,
    url=wild_urls,
    job_id=ids | st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),
)
@with_wild_examples
def test_wild_urls_and_ids_give_typed_errors(
    mode: str, provider: str, operation: str, location: str | None, url: str, job_id: str
) -> None:
    kind, model = CASES[provider]
    body = json.dumps(template(provider, "job_1", "completed", url, 1)).encode()
    script = Script([Answer(200, {"content-type": "application/json"}, body)])
    if location is not None:
        script.answers.insert(0, Answer(307, {"location": location}, b""))
    stored = {
        "id": "job_1",
        "provider": provider,
        "status": "succeeded",
        "raw_status": "succeeded",
        "artifacts": [{"url": url if "://" in url else f"{STORE}/v", "index": 0}],
    }
    actions: dict[str, Callable[[Any], Any]] = {
        "submit": lambda c: c.submit(kind, model=model, prompt="p"),
        "get": lambda c: c.get(job_id, kind=kind),
        "wait": lambda c: c.wait(job_id, kind=kind, timeout=30),
        "download": lambda c: c.job_from_dict(stored).download(Path(tmp) / "out"),
    }
    with TemporaryDirectory() as tmp:
        result = outcome(mode, provider, script, actions[operation])
    if operation != "download":
        check_job(result, provider)
