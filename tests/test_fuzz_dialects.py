"""Property tests: whatever a server answers, a dialect parses it or raises a typed error.

For every built-in dialect and parser (submit, poll, cancel, models, error bodies), bodies are
drawn near each provider's documented shape (fields dropped, retyped, nested, filled with odd
unicode, huge or non-finite numbers, malformed URLs and ids) or as arbitrary JSON or bytes,
under any status and content type. The property: the parser returns a snapshot (or model
list) that the engine can use as is (serializable, with requestable URLs), or raises
``APIError`` / ``ProtocolError``; nothing else. Example counts come from the hypothesis
profile (``ci`` by default; ``MEDIAJOBS_FUZZ=long`` for a long run, see tests/conftest.py).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mediajobs as mj
from mediajobs.dialects import DIALECTS, Dialect, UnknownStatusWarning

PROVIDERS = sorted(DIALECTS)

# ------------------------------------------------------------------------------ strategies

ODD_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=40)
"""Any code point, lone surrogates and control characters included."""

ODD_URLS = st.sampled_from(
    [
        "http://[::1",
        "https://[bad]/x",
        "https://api.example/a\x01b",
        "https://api.example/\ud800",
        "https://api.example/\u00e9t\u00e9.png",
        "https://api.example:99999/x",
        "ftp://files.example/a.png",
        "javascript:alert(1)",
        "data:video/mp4;base64,AAAA",
        "//other.example/x.mp4",
        "/relative/path.mp4?x=1",
        "../../etc/passwd",
        "https://user:pass@host.example/x",
        "",
        " ",
        "https://" + "a" * 300 + ".example/x",
    ]
)

NUMBERS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2**63, 10**12, 1e308, -1e308, 5e-324]),
)

SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, ODD_TEXT, ODD_URLS)

ANY_JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(ODD_TEXT, children, max_size=4),
    ),
    max_leaves=12,
)


def near(template: Any) -> st.SearchStrategy[Any]:
    """Values close to ``template``: it as is, its parts varied, or anything at all."""
    if isinstance(template, dict):
        fields = {
            key: st.one_of(st.just(_ABSENT), near(value), ANY_JSON)
            for key, value in template.items()
        }
        varied = st.fixed_dictionaries(fields).map(
            lambda d: {k: v for k, v in d.items() if v is not _ABSENT}
        )
        extra = st.dictionaries(ODD_TEXT, ANY_JSON, max_size=2)
        return st.one_of(
            st.builds(lambda d, e: {**e, **d}, varied, extra),
            ANY_JSON,
        )
    if isinstance(template, list):
        element = near(template[0]) if template else ANY_JSON
        return st.one_of(st.lists(element, max_size=4), ANY_JSON)
    if isinstance(template, str):
        return st.one_of(st.just(template), ODD_TEXT, ODD_URLS)
    if isinstance(template, (int, float)) and not isinstance(template, bool):
        return st.one_of(st.just(template), NUMBERS)
    return st.one_of(st.just(template), SCALARS)


_ABSENT = object()


def deeply_nested(depth: int) -> bytes:
    return b'{"id": "x", "status": "queued", "a": ' + b"[" * depth + b"]" * depth + b"}"


SUBMIT_BODIES: dict[str, Any] = {
    "therouter": {
        "id": "img_1",
        "object": "image_job",
        "status": "queued",
        "model": "m",
        "created_at": 1778637249,
        "polling_url": "https://api.therouter.ai/v1/jobs/img_1",
        "expires_at": "2026-05-15T12:00:00Z",
    },
    "worldrouter": {
        "id": "imgtask_1",
        "task_id": "imgtask_1",
        "object": "image.generation_task",
        "created": 1780501937,
        "status": "queued",
        "model": "gpt-image-2",
        "created_at": "2026-06-11T12:00:00+00:00",
    },
    "openrouter": {"id": "vid_1", "polling_url": "/api/v1/videos/vid_1", "status": "pending"},
    "onerouter": {
        "code": 200,
        "message": "ok",
        "data": {
            "task_id": "cgt-1",
            "object": "video",
            "model": "bytedance/seedance",
            "status": "created",
            "urls": {"get": "https://video.onerouter.pro/v1/videos/tasks/cgt-1"},
            "created_at": "2024-01-01 12:00:00.00",
        },
    },
}

POLL_BODIES: dict[str, Any] = {
    "therouter": {
        "id": "img_1",
        "status": "succeeded",
        "model": "m",
        "polling_url": "/v1/jobs/img_1",
        "content_url": "/v1/jobs/img_1/content",
        "unsigned_urls": ["https://s3.example/a.png?sig=1"],
        "result": {"data": [{"url": "https://s3.example/b.png"}]},
        "image_count": 2,
        "usage": {"prompt_tokens": 1, "cost_credits": 1.5},
        "error": {"message": "boom", "code": "E1"},
        "created_at": 1778637249,
        "completed_at": "2026-05-15T12:00:00Z",
        "expires_at": 1779242049,
    },
    "worldrouter": {
        "task_id": "imgtask_1",
        "status": "completed",
        "model": "gpt-image-2",
        "data": [{"url": "https://cdn.example/a.png"}],
        "content": {"video_url": "https://cdn.example/v.mp4"},
        "usage": {"total_tokens": 3},
        "error": {"code": "x", "message": "y"},
        "created": 1780501937,
        "completed_at": "2026-06-11T12:00:00+00:00",
    },
    "openrouter": {
        "id": "vid_1",
        "polling_url": "https://openrouter.ai/api/v1/videos/vid_1",
        "status": "completed",
        "generation_id": "gen-1",
        "unsigned_urls": ["https://openrouter.ai/api/v1/videos/vid_1/content?index=0"],
        "urls": ["https://storage.googleapis.com/b/v.mp4?X-Goog-Signature=1"],
        "expires_at": "2026-12-01T10:00:00Z",
        "usage": {"cost": 0.5, "is_byok": False},
        "error": "content policy",
    },
    "onerouter": {
        "code": 200,
        "message": "ok",
        "data": {
            "task_id": "cgt-1",
            "object": "video",
            "model": "bytedance/seedance",
            "status": "completed",
            "fail_reason": "",
            "urls": {"get": "/v1/videos/tasks/cgt-1", "video": "https://storage.example/x.mp4"},
            "outputs": ["https://storage.googleapis.com/b/a.mp4"],
            "submit_time": 1,
            "finish_time": 1773300000,
            "created_at": "2024-01-01 12:00:00.00",
            "cost": {"total_cost": 0.3},
        },
    },
}

MODELS_BODY = {
    "data": [
        {
            "id": "google/veo-3.1",
            "canonical_slug": "google/veo-3.1",
            "name": "Veo 3.1",
            "created": 1760000000,
            "supported_durations": [4, 6, 8],
            "supported_resolutions": ["720p", "1080p"],
            "supported_aspect_ratios": ["16:9"],
            "supported_frame_images": ["first_frame"],
            "supported_sizes": ["1280x720"],
            "generate_audio": True,
            "seed": None,
            "pricing_skus": {"per_second": "0.50"},
        }
    ]
}

ERROR_BODIES: dict[str, Any] = {
    "onerouter": {"code": 429, "message": "slow down", "data": None},
}
"""Error envelopes; the other providers use ``{"error": {"code", "message"}}``."""

STATUS_CODES = st.one_of(
    st.sampled_from([200, 201, 202, 204, 400, 401, 402, 403, 404, 409, 422, 429, 500, 502, 503]),
    st.integers(min_value=100, max_value=599),
)

CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
        "application/json; charset=bogus-charset",
        "text/html",
    ]
)

HEADERS = st.dictionaries(
    st.sampled_from(["retry-after", "x-request-id", "location", "content-encoding-note"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
    max_size=2,
)


def encoded(value: Any) -> st.SearchStrategy[bytes]:
    """JSON text of ``value`` (NaN and Infinity spelled as Python writes them)."""
    return st.just(json.dumps(value).encode())


def bodies(template: Any) -> st.SearchStrategy[bytes]:
    """Body bytes: near the template, arbitrary JSON, arbitrary bytes, or deeply nested."""
    return st.one_of(
        near(template).flatmap(encoded),
        near(template).flatmap(encoded),
        ANY_JSON.flatmap(encoded),
        st.binary(max_size=64),
        st.integers(min_value=60, max_value=3000).map(deeply_nested),
    )


def responses(template: Any, request: httpx.Request) -> st.SearchStrategy[httpx.Response]:
    return st.builds(
        _response,
        st.one_of(st.just(200), STATUS_CODES),
        bodies(template),
        CONTENT_TYPES,
        HEADERS,
        st.just(request),
    )


def _response(
    code: int,
    content: bytes,
    content_type: str | None,
    headers: dict[str, str],
    request: httpx.Request,
) -> httpx.Response:
    if content_type is not None:
        headers = {**headers, "content-type": content_type}
    return httpx.Response(code, content=content, headers=headers, request=request)


IDS = st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30)
"""Stored job ids: any writable text (what a user could have kept)."""


def previous_jobs(dialect: Dialect) -> st.SearchStrategy[mj.JobData]:
    kinds = st.one_of(st.none(), st.sampled_from(sorted(dialect.kinds)))
    return st.builds(lambda i, k: dialect.job_for_id(i, kind=k), IDS, kinds)


# ------------------------------------------------------------------------------- property


def check_parse(dialect: Dialect, parse: Callable[[], Any]) -> Any:
    """Run a parser: it returns, or raises APIError/ProtocolError, nothing else."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownStatusWarning)
        try:
            return parse()
        except (mj.APIError, mj.ProtocolError) as exc:
            error = exc
    assert error.provider == dialect.name
    assert str(error) and repr(error)
    return None


def check_usable(dialect: Dialect, job: mj.JobData) -> None:
    """What the engine does next with a snapshot must not fail."""
    assert job.provider == dialect.name
    assert job.id
    json.dumps(job.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")
    dialect.build_poll(job)
    for artifact in job.artifacts:
        for url in (artifact.url, artifact.fallback_url):
            if url is not None:
                assert httpx.URL(url).scheme in ("http", "https")
                httpx.Request("GET", url)
        dialect.build_content(job, artifact)
    for url in (job.poll_url, job.content_url):
        if url is not None:
            httpx.Request("GET", url)
    if job.cost is not None:
        assert math.isfinite(job.cost)
    if dialect.supports_cancel:
        dialect.build_cancel(job)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_parse_submit_never_raises_anything_else(provider: str) -> None:
    dialect = DIALECTS[provider]()
    kind = sorted(dialect.kinds)[-1]
    request = dialect.build_submit(kind, model="m", prompt="p", params={})

    @given(responses(SUBMIT_BODIES[provider], request))
    def run(response: httpx.Response) -> None:
        job = check_parse(dialect, lambda: dialect.parse_submit(response, kind=kind, model="m"))
        if job is not None:
            check_usable(dialect, job)

    run()


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("operation", ["poll", "cancel"])
def test_parse_poll_and_cancel_never_raise_anything_else(provider: str, operation: str) -> None:
    dialect = DIALECTS[provider]()

    @given(previous_jobs(dialect), st.data())
    def run(previous: mj.JobData, data: st.DataObject) -> None:
        request = dialect.build_poll(previous)
        response = data.draw(responses(POLL_BODIES[provider], request))
        parse = dialect.parse_poll if operation == "poll" else dialect.parse_cancel
        job = check_parse(dialect, lambda: parse(response, previous=previous))
        if job is not None:
            check_usable(dialect, job)

    run()


def test_parse_models_never_raises_anything_else() -> None:
    dialect = DIALECTS["openrouter"]()
    request = dialect.build_models()

    @given(responses(MODELS_BODY, request))
    def run(response: httpx.Response) -> None:
        models = check_parse(dialect, lambda: dialect.parse_models(response))
        if models is not None:
            for model in models:
                assert isinstance(model, mj.ModelInfo)
                assert isinstance(model.id, str)
                json.dumps(model.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")

    run()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_error_bodies_always_give_the_matching_api_error(provider: str) -> None:
    dialect = DIALECTS[provider]()
    template = ERROR_BODIES.get(provider, {"error": {"code": 400, "message": "bad"}})
    previous = dialect.job_for_id("t1")
    request = dialect.build_poll(previous)
    errors = st.integers(min_value=400, max_value=599)

    @given(errors, bodies(template), CONTENT_TYPES)
    def run(code: int, content: bytes, content_type: str | None) -> None:
        response = _response(code, content, content_type, {}, request)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnknownStatusWarning)
            with pytest.raises(mj.APIError) as info:
                dialect.parse_poll(response, previous=previous)
        assert info.value.status_code == code
        assert info.value.provider == provider
        assert str(info.value) and repr(info.value.body)

    run()


@given(st.sampled_from(PROVIDERS), IDS, st.one_of(st.none(), ODD_TEXT))
def test_stored_ids_always_give_a_pollable_placeholder(
    provider: str, job_id: str, kind: str | None
) -> None:
    dialect = DIALECTS[provider]()
    try:
        job = dialect.job_for_id(job_id, kind=kind)
    except mj.UnsupportedError:
        assert provider == "onerouter"
        return
    request = dialect.build_poll(job)
    assert dialect.is_api_url(request.url)
    for fallback in dialect.fallback_kinds(kind):
        dialect.build_poll(dialect.job_for_id(job_id, kind=fallback))
