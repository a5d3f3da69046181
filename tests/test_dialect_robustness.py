"""Hostile or odd answers: every built-in dialect raises only APIError or ProtocolError."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import pytest

import mediajobs as mj
from mediajobs.dialects import DIALECTS, Dialect, base
from mediajobs.dialects.base import MAX_JSON_DEPTH
from mediajobs.dialects.therouter import MAX_OUTPUTS

PROVIDERS = sorted(DIALECTS)

QUEUED = {
    "therouter": "queued",
    "worldrouter": "queued",
    "openrouter": "pending",
    "onerouter": "created",
}

OK_STATUS = {
    "therouter": "succeeded",
    "worldrouter": "completed",
    "openrouter": "completed",
    "onerouter": "completed",
}


def job_body(provider: str, status: str, **extra: Any) -> dict[str, Any]:
    """A job body in the provider's shape (OneRouter's without its envelope)."""
    if provider == "onerouter":
        return {"task_id": "t1", "object": "video", "status": status, **extra}
    if provider == "worldrouter":
        return {"task_id": "t1", "status": status, **extra}
    if provider == "openrouter":
        return {"id": "t1", "polling_url": "/api/v1/videos/t1", "status": status, **extra}
    return {"id": "t1", "status": status, **extra}


def with_output(provider: str, url: str) -> dict[str, Any]:
    """A succeeded job body whose one output is ``url``."""
    key = {
        "therouter": "unsigned_urls",
        "openrouter": "unsigned_urls",
        "onerouter": "outputs",
    }.get(provider)
    if key is None:
        return job_body(provider, OK_STATUS[provider], data=[{"url": url}])
    return job_body(provider, OK_STATUS[provider], **{key: [url]})


def wrap(provider: str, body: Any) -> Any:
    if provider == "onerouter":
        return {"code": 200, "message": "ok", "data": body}
    return body


def raw_response(dialect: Dialect, content: bytes, code: int = 200) -> httpx.Response:
    request = dialect.build_poll(dialect.job_for_id("t1"))
    return httpx.Response(code, content=content, request=request)


def submit(dialect: Dialect, content: bytes, code: int = 200) -> mj.JobData:
    kind = sorted(dialect.kinds)[-1]
    request = dialect.build_submit(kind, model="m", prompt="p", params={})
    response = httpx.Response(code, content=content, request=request)
    return dialect.parse_submit(response, kind=kind, model="m")


def poll(dialect: Dialect, content: bytes, code: int = 200) -> mj.JobData:
    previous = dialect.job_for_id("t1")
    return dialect.parse_poll(raw_response(dialect, content, code), previous=previous)


def encode(provider: str, body: Any) -> bytes:
    return json.dumps(wrap(provider, body)).encode()


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


# -------------------------------------------------------------------------------- nesting


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 200_000])
def test_deeply_nested_bodies_are_protocol_errors(provider: str, depth: int) -> None:
    dialect = DIALECTS[provider]()
    body = job_body(provider, QUEUED[provider], extra=nested(depth))
    content = json.dumps(wrap(provider, body)) if depth < 500 else None
    if content is None:  # json.dumps itself would recurse too deep: write it by hand
        inner = "[" * depth + '"x"' + "]" * depth
        content = json.dumps(wrap(provider, job_body(provider, QUEUED[provider], extra="@")))
        content = content.replace('"@"', inner)
    for parse in (submit, poll):
        with pytest.raises(mj.ProtocolError, match="nested deeper"):
            parse(dialect, content.encode())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_nesting_up_to_the_limit_is_read_and_serializable(provider: str) -> None:
    dialect = DIALECTS[provider]()
    envelope_levels = 2 if provider == "onerouter" else 1
    body = job_body(provider, QUEUED[provider], extra=nested(MAX_JSON_DEPTH - envelope_levels - 1))
    job = poll(dialect, encode(provider, body))
    assert json.loads(json.dumps(job.model_dump(mode="json")))["raw"]["extra"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_deep_error_body_is_an_api_error_with_the_text(provider: str) -> None:
    dialect = DIALECTS[provider]()
    content = b'{"error": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(mj.ServerError) as info:
        poll(dialect, content, code=500)
    assert isinstance(info.value.body, str)
    assert len(info.value.body) <= 2000


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_standard_json_constants_are_refused(provider: str, constant: bytes) -> None:
    dialect = DIALECTS[provider]()
    content = encode(provider, job_body(provider, QUEUED[provider], x="@")).replace(
        b'"@"', constant
    )
    with pytest.raises(mj.ProtocolError, match="not valid JSON"):
        poll(dialect, content)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_huge_numbers_are_protocol_errors(provider: str) -> None:
    dialect = DIALECTS[provider]()
    digits = encode(provider, job_body(provider, QUEUED[provider], x="@")).replace(
        b'"@"', b"9" * 5000
    )
    with pytest.raises(mj.ProtocolError, match="not valid JSON"):
        poll(dialect, digits)
    time_field = {"openrouter": "expires_at", "onerouter": "finish_time"}.get(
        provider, "created_at"
    )
    overflow = encode(provider, job_body(provider, QUEUED[provider], **{time_field: "@"}))
    with pytest.raises(mj.ProtocolError):
        poll(dialect, overflow.replace(b'"@"', b"1e400"))


def test_a_cost_that_is_not_finite_is_a_protocol_error() -> None:
    dialect = DIALECTS["therouter"]()
    content = encode("therouter", job_body("therouter", "queued", usage={"cost_credits": "@"}))
    with pytest.raises(mj.ProtocolError, match="finite") as info:
        poll(dialect, content.replace(b'"@"', b"1e400"))
    assert info.value.field == "cost_credits"


# ------------------------------------------------------------------------------ ids and URLs


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_id_with_a_lone_surrogate_is_a_protocol_error(provider: str) -> None:
    dialect = DIALECTS[provider]()
    content = encode(provider, job_body(provider, QUEUED[provider])).replace(b'"t1"', b'"\\ud800"')
    with pytest.raises(mj.ProtocolError, match="unusable job id") as info:
        submit(dialect, content)
    assert info.value.job_id is None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stored_id_with_a_lone_surrogate_is_refused(provider: str) -> None:
    with pytest.raises(mj.ConfigurationError):
        DIALECTS[provider]().job_for_id("\ud800")


BAD_URLS = [
    "http://[::1",  # urljoin raises ValueError
    "https://api.example/jobs/a\x01b",  # httpx refuses control characters
    "https://api.example/\ud800",  # not encodable
    "ftp://files.example/out.png",
]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("url", BAD_URLS)
def test_a_malformed_artifact_url_is_a_protocol_error(provider: str, url: str) -> None:
    dialect = DIALECTS[provider]()
    with pytest.raises(mj.ProtocolError) as info:
        poll(dialect, encode(provider, with_output(provider, url)))
    assert info.value.field is not None
    assert info.value.job_id == "t1"


@pytest.mark.parametrize("provider", ["therouter", "openrouter", "onerouter"])
@pytest.mark.parametrize("url", BAD_URLS)
def test_a_malformed_polling_url_keeps_the_submitted_id(provider: str, url: str) -> None:
    dialect = DIALECTS[provider]()
    if provider == "onerouter":
        body = job_body(provider, QUEUED[provider], urls={"get": url})
    else:
        body = job_body(provider, QUEUED[provider], polling_url=url)
    with pytest.raises(mj.ProtocolError) as info:
        submit(dialect, encode(provider, body))
    assert info.value.job_id == "t1"
    assert info.value.field in {"polling_url", "urls.get"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_submit_answer_out_of_shape_after_the_id_keeps_the_id(provider: str) -> None:
    dialect = DIALECTS[provider]()
    with pytest.raises(mj.ProtocolError) as info:
        submit(
            dialect,
            encode(provider, job_body(provider, QUEUED[provider], model=["not", "a", "str"])),
        )
    assert info.value.job_id == "t1"
    assert info.value.field == "model"


def test_a_snapshot_holding_a_bad_poll_url_polls_the_documented_route() -> None:
    dialect = DIALECTS["therouter"]()
    job = dialect.job_for_id("t1").model_copy(update={"poll_url": "https://x/\x01"})
    assert str(dialect.build_poll(job).url) == "https://api.therouter.ai/v1/jobs/t1"


# ------------------------------------------------------------------------ TheRouter's count


def content_only(count: int) -> bytes:
    body = job_body("therouter", "succeeded", content_url="/v1/jobs/t1/content", image_count=count)
    return encode("therouter", body)


@pytest.mark.parametrize("count", [MAX_OUTPUTS + 1, 1_000_000, 10**12])
def test_an_unbelievable_image_count_is_a_protocol_error(count: int) -> None:
    with pytest.raises(mj.ProtocolError, match="outputs") as info:
        poll(DIALECTS["therouter"](), content_only(count))
    assert info.value.field == "image_count"
    assert info.value.job_id == "t1"


def test_image_count_up_to_the_maximum_is_believed() -> None:
    job = poll(DIALECTS["therouter"](), content_only(MAX_OUTPUTS))
    assert [a.index for a in job.artifacts] == list(range(MAX_OUTPUTS))
    assert job.artifacts[-1].url.endswith(f"/v1/jobs/t1/content?index={MAX_OUTPUTS - 1}")


# ------------------------------------------------------------------------------- the guard


class Clumsy(Dialect):
    """A custom dialect whose parsers trip over odd bodies with plain exceptions."""

    name: ClassVar[str] = "clumsy"
    kinds: ClassVar[frozenset[str]] = frozenset({"image"})
    default_hosts: ClassVar[Mapping[str, str]] = {"api": "https://clumsy.example"}
    status_table: ClassVar[Mapping[str, mj.JobStatus]] = {"new": mj.JobStatus.QUEUED}

    def parse_submit(self, response: httpx.Response, *, kind: str, model: str) -> mj.JobData:
        return self._read(response)

    def parse_poll(self, response: httpx.Response, *, previous: mj.JobData) -> mj.JobData:
        return self._read(response)

    def _read(self, response: httpx.Response) -> mj.JobData:
        body = response.json()  # no depth limit, raises ValueError on junk
        return mj.JobData(
            id=body["id"],  # KeyError when absent
            provider=self.name,
            status=self.normalize_status(body["state"]),
            raw_status=body["state"],
        )


@pytest.mark.parametrize(
    "content",
    [b"not json", b"{}", b'{"id": 5, "state": "new"}', b"[" * 100_000 + b"]" * 100_000],
)
def test_a_custom_dialects_plain_exceptions_become_protocol_errors(content: bytes) -> None:
    dialect = Clumsy()
    previous = dialect.job_for_id("c1")
    response = httpx.Response(200, content=content, request=httpx.Request("GET", "https://x/"))
    with pytest.raises(mj.ProtocolError, match="unreadable response") as info:
        dialect.parse_poll(response, previous=previous)
    assert info.value.provider == "clumsy"
    assert info.value.job_id == "c1"
    assert info.value.__cause__ is not None
    with pytest.raises(mj.ProtocolError) as on_submit:
        dialect.parse_submit(response, kind="image", model="m")
    assert on_submit.value.job_id is None


# ------------------------------------------------------------------ warnings, copies, cancel


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unknown_statuses_are_warned_once_per_dialect_instance(provider: str) -> None:
    assert not hasattr(base, "_warned_statuses")
    content = encode(provider, job_body(provider, "pondering"))
    for dialect in (DIALECTS[provider](), DIALECTS[provider]()):
        with pytest.warns(mj.UnknownStatusWarning, match="pondering"):
            poll(dialect, content)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert poll(dialect, content).status is mj.JobStatus.RUNNING


def test_a_flood_of_unknown_statuses_stops_warning() -> None:
    dialect = DIALECTS["therouter"]()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for index in range(500):
            poll(dialect, encode("therouter", job_body("therouter", f"odd-{index}")))
    assert 0 < len(record) < 500


@pytest.mark.parametrize("provider", PROVIDERS)
def test_supports_cancel_tells_whether_build_cancel_works(provider: str) -> None:
    dialect = DIALECTS[provider]()
    job = dialect.job_for_id("t1")
    if dialect.supports_cancel:
        assert isinstance(dialect.build_cancel(job), httpx.Request)
    else:
        with pytest.raises(mj.UnsupportedError):
            dialect.build_cancel(job)
    assert DIALECTS["therouter"].supports_cancel


def test_supports_cancel_follows_a_custom_build_cancel() -> None:
    class Cancellable(Clumsy):
        def build_cancel(self, job: mj.JobData) -> httpx.Request:
            return httpx.Request("DELETE", self.url(f"/jobs/{job.id}"))

    class Declared(Clumsy):
        supports_cancel = True

    assert not Clumsy.supports_cancel
    assert Cancellable.supports_cancel
    assert Declared.supports_cancel


@pytest.mark.parametrize("provider", PROVIDERS)
def test_with_base_url_builds_a_fresh_dialect_of_the_same_class(provider: str) -> None:
    dialect = DIALECTS[provider]()
    moved = dialect.with_base_url("http://127.0.0.1:9")
    assert type(moved) is type(dialect)
    assert moved.base_url == "http://127.0.0.1:9"
    assert dialect.base_url is None
    assert dialect.with_base_url(None) is dialect


# ------------------------------------------------------------------------- fallback kinds


@pytest.mark.parametrize(
    ("provider", "alternative"), [("worldrouter", "video"), ("onerouter", "image")]
)
def test_an_id_of_unknown_kind_has_one_other_route_to_try(provider: str, alternative: str) -> None:
    dialect = DIALECTS[provider]()
    first = dialect.build_poll(dialect.job_for_id("t1"))
    assert dialect.fallback_kinds(None) == (alternative,)
    second = dialect.build_poll(dialect.job_for_id("t1", kind=alternative))
    assert first.url != second.url
    for kind in dialect.kinds:
        assert dialect.fallback_kinds(kind) == ()


@pytest.mark.parametrize("provider", ["therouter", "openrouter"])
def test_one_status_route_needs_no_fallback(provider: str) -> None:
    dialect = DIALECTS[provider]()
    assert dialect.fallback_kinds(None) == ()
    urls = {str(dialect.build_poll(dialect.job_for_id("t1", kind=k)).url) for k in dialect.kinds}
    assert len(urls) == 1


# ------------------------------------------------------------------------------ literals


def test_literal_types_match_the_dialects() -> None:
    from typing import get_args

    assert set(get_args(mj.ProviderName)) == set(DIALECTS)
    offered = set().union(*(cls.kinds for cls in DIALECTS.values()))
    assert set(get_args(mj.Kind)) == offered


# ------------------------------------------------------------------- through the client


def test_client_submit_and_wait_raise_protocol_errors_for_hostile_answers() -> None:
    answers = [
        httpx.Response(202, json={"id": "img_1", "status": "queued", "polling_url": "http://[::1"}),
        httpx.Response(202, json={"id": "img_2", "status": "queued"}),
        httpx.Response(
            200, content=b'{"id": "img_2", "status": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
        ),
    ]
    http = httpx.Client(transport=httpx.MockTransport(lambda request: answers.pop(0)))
    with mj.Client("therouter", api_key="sk-secret", http_client=http) as client:
        with pytest.raises(mj.ProtocolError) as on_submit:
            client.submit("image", model="m", prompt="p")
        assert on_submit.value.job_id == "img_1"
        assert on_submit.value.field == "polling_url"
        job = client.submit("image", model="m", prompt="p")
        with pytest.raises(mj.ProtocolError, match="nested deeper"):
            job.wait(timeout=5)
    assert answers == []
