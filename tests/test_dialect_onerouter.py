"""Pure tests of the OneRouter dialect: literal responses in, requests and job data out."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from mediajobs._exceptions import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    ServerError,
    UnsupportedError,
)
from mediajobs._models import Artifact, JobData, JobErrorInfo, JobStatus
from mediajobs.dialects.onerouter import OneRouter

IMAGE_HOST = "https://image.onerouter.pro"
VIDEO_HOST = "https://video.onerouter.pro"
LOCAL = "http://127.0.0.1:8123"
SUBMIT_URL = f"{IMAGE_HOST}/v1/images/generations"
TASK_ID = "cgt-20260312231129-7db6s"
VIDEO_POLL = f"{VIDEO_HOST}/v1/videos/tasks/{TASK_ID}"
IMAGE_POLL = f"{IMAGE_HOST}/v1/images/tasks/{TASK_ID}"
OUTPUT = "https://storage.googleapis.com/infron_gcs/video%2Fcgt-20260328120757-nw49t.mp4"
UTC = timezone.utc


@pytest.fixture
def dialect() -> OneRouter:
    return OneRouter()


def _envelope(data: Any, *, code: int = 200, message: str = "success") -> dict[str, Any]:
    return {"code": code, "message": message, "data": data}


def _response(
    body: Any = None,
    *,
    status_code: int = 200,
    method: str = "GET",
    url: str = VIDEO_POLL,
    **kw: Any,
) -> httpx.Response:
    if body is not None:
        kw["json"] = body
    return httpx.Response(status_code, request=httpx.Request(method, url), **kw)


def _submit_data(**data: Any) -> dict[str, Any]:
    return {
        "task_id": TASK_ID,
        "object": "video",
        "model": "bytedance/seedance",
        "status": "created",
        "urls": {"get": VIDEO_POLL},
        "created_at": "2024-01-01 12:00:00.00",
        **data,
    }


def _poll_data(**data: Any) -> dict[str, Any]:
    return {
        "task_id": TASK_ID,
        "object": "video",
        "model": "bytedance/seedance",
        "status": "in_progress",
        "fail_reason": "",
        "submit_time": 1773318919,
        "start_time": 1773318925,
        "finish_time": 0,
        "outputs": [],
        "created_at": "2024-01-01 12:00:00",
        **data,
    }


def _submitted(dialect: OneRouter, kind: str = "video", **data: Any) -> JobData:
    response = _response(_envelope(_submit_data(**data)), method="POST", url=SUBMIT_URL)
    return dialect.parse_submit(response, kind=kind, model="bytedance/seedance")


def _polled(dialect: OneRouter, previous: JobData | None = None, **data: Any) -> JobData:
    return dialect.parse_poll(
        _response(_envelope(_poll_data(**data))), previous=previous or dialect.job_for_id(TASK_ID)
    )


# ---------------------------------------------------------------------------- class attributes


def test_identity_and_capabilities(dialect: OneRouter) -> None:
    assert dialect.name == "onerouter"
    assert dialect.env_var == "ONEROUTER_API_KEY"
    assert dialect.kinds == frozenset({"image", "video"})
    assert dict(dialect.default_hosts) == {"api": IMAGE_HOST, "video": VIDEO_HOST}
    assert dialect.supports_cancel is False
    assert dialect.default_poll.initial <= dialect.default_poll.max_interval


def test_auth_headers_send_the_raw_key(dialect: OneRouter) -> None:
    assert dialect.auth_headers("sk-3c6k") == {"Authorization": "sk-3c6k"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (VIDEO_POLL, True),
        (IMAGE_POLL, True),
        (OUTPUT, False),
        ("https://llm.onerouter.pro/v1/images/generations", False),
    ],
)
def test_is_api_url(dialect: OneRouter, url: str, expected: bool) -> None:
    assert dialect.is_api_url(url) is expected


# ------------------------------------------------------------------------------------ submit


@pytest.mark.parametrize("kind", ["video", "image"])
def test_build_submit_wraps_the_prompt_in_content(dialect: OneRouter, kind: str) -> None:
    request = dialect.build_submit(
        kind,
        model="bytedance/seedance",
        prompt="A little kitten walks along the seaside.",
        params={"resolution": "720p", "ratio": "adaptive", "duration": 5, "watermark": False},
    )
    assert request.method == "POST"
    assert str(request.url) == SUBMIT_URL
    assert json.loads(request.content) == {
        "model": "bytedance/seedance",
        "content": [{"type": "text", "text": "A little kitten walks along the seaside."}],
        "resolution": "720p",
        "ratio": "adaptive",
        "duration": 5,
        "watermark": False,
    }
    assert "authorization" not in request.headers
    assert "user-agent" not in request.headers


def test_build_submit_puts_given_content_after_the_text(dialect: OneRouter) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    request = dialect.build_submit("video", model="m", prompt="move", params={"content": [image]})
    assert json.loads(request.content)["content"] == [{"type": "text", "text": "move"}, image]


def test_build_submit_without_prompt_passes_content_as_is(dialect: OneRouter) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    request = dialect.build_submit("video", model="m", prompt=None, params={"content": [image]})
    assert json.loads(request.content) == {"model": "m", "content": [image]}


@pytest.mark.parametrize("kind", ["image_edit", "speech", "transcription"])
def test_build_submit_refuses_other_kinds(dialect: OneRouter, kind: str) -> None:
    with pytest.raises(UnsupportedError, match="onerouter"):
        dialect.build_submit(kind, model="m", prompt="p", params={})


def test_parse_submit_video(dialect: OneRouter) -> None:
    job = _submitted(dialect)
    assert job.id == TASK_ID
    assert job.provider == "onerouter"
    assert job.status is JobStatus.QUEUED
    assert job.raw_status == "created"
    assert (job.kind, job.route, job.model) == ("video", "video", "bytedance/seedance")
    assert job.poll_url == VIDEO_POLL
    assert job.created_at == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert job.completed_at is None
    assert job.artifacts == []
    assert job.error is None
    assert job.raw["urls"] == {"get": VIDEO_POLL}


def test_parse_submit_image_with_query_url(dialect: OneRouter) -> None:
    job = _submitted(dialect, "image", object="image", urls={"query": IMAGE_POLL})
    assert (job.kind, job.route) == ("image", "image")
    assert job.poll_url == IMAGE_POLL
    assert str(dialect.build_poll(job).url) == IMAGE_POLL


def test_parse_submit_without_object_or_urls_follows_the_kind(dialect: OneRouter) -> None:
    data = _submit_data(object=None, urls=None)
    response = _response(_envelope(data), method="POST", url=SUBMIT_URL)
    job = dialect.parse_submit(response, kind="image", model="m")
    assert (job.kind, job.route, job.poll_url) == ("image", "image", None)
    assert str(dialect.build_poll(job).url) == IMAGE_POLL


def test_object_from_the_server_wins_over_the_submitted_kind(dialect: OneRouter) -> None:
    job = _submitted(dialect, "image", object="video", urls={})
    assert (job.kind, job.route) == ("video", "video")
    assert str(dialect.build_poll(job).url) == VIDEO_POLL


def test_parse_submit_resolves_a_relative_poll_url_on_the_route_host(dialect: OneRouter) -> None:
    job = _submitted(dialect, urls={"get": f"/v1/videos/tasks/{TASK_ID}"})
    assert job.poll_url == VIDEO_POLL


# -------------------------------------------------------------------------------------- poll


@pytest.mark.parametrize(("kind", "url"), [("video", VIDEO_POLL), ("image", IMAGE_POLL)])
def test_build_poll_from_a_stored_id(dialect: OneRouter, kind: str, url: str) -> None:
    request = dialect.build_poll(dialect.job_for_id(TASK_ID, kind=kind))
    assert request.method == "GET"
    assert str(request.url) == url
    assert "authorization" not in request.headers


def test_job_for_id_defaults_to_the_video_route(dialect: OneRouter) -> None:
    job = dialect.job_for_id(TASK_ID)
    assert (job.kind, job.route, job.status) == (None, "video", JobStatus.QUEUED)
    assert str(dialect.build_poll(job).url) == VIDEO_POLL


def test_job_for_id_refuses_bad_input(dialect: OneRouter) -> None:
    with pytest.raises(UnsupportedError):
        dialect.job_for_id(TASK_ID, kind="speech")
    with pytest.raises(ConfigurationError):
        dialect.job_for_id("")


def test_build_poll_ignores_a_foreign_poll_url(dialect: OneRouter) -> None:
    job = _submitted(dialect, urls={"get": f"https://attacker.example/v1/videos/tasks/{TASK_ID}"})
    assert str(dialect.build_poll(job).url) == VIDEO_POLL


def test_build_poll_quotes_the_id(dialect: OneRouter) -> None:
    url = str(dialect.build_poll(dialect.job_for_id("a/../b")).url)
    assert url == f"{VIDEO_HOST}/v1/videos/tasks/a%2F..%2Fb"


def test_base_url_replaces_both_hosts() -> None:
    local = OneRouter(base_url=LOCAL)
    assert local.hosts == {"api": LOCAL, "video": LOCAL}
    submit = local.build_submit("video", model="m", prompt="p", params={})
    assert str(submit.url) == f"{LOCAL}/v1/images/generations"
    video = _submitted(local)  # the server names video.onerouter.pro: not an API host here
    assert str(local.build_poll(video).url) == f"{LOCAL}/v1/videos/tasks/{TASK_ID}"
    image = local.job_for_id(TASK_ID, kind="image")
    assert str(local.build_poll(image).url) == f"{LOCAL}/v1/images/tasks/{TASK_ID}"
    relative = _submitted(local, urls={"get": f"/v1/videos/tasks/{TASK_ID}"})
    assert relative.poll_url == f"{LOCAL}/v1/videos/tasks/{TASK_ID}"


def test_parse_poll_completed(dialect: OneRouter) -> None:
    previous = _submitted(dialect)
    job = _polled(
        dialect,
        previous,
        status="completed",
        finish_time=1773319107,
        outputs=[OUTPUT],
        cost={"total_cost": 0.35},
    )
    assert job.status is JobStatus.SUCCEEDED
    assert job.done
    assert job.artifacts == [Artifact(url=OUTPUT, index=0)]
    assert not dialect.is_api_url(job.artifacts[0].url)
    assert job.created_at == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert job.completed_at == datetime(2026, 3, 12, 12, 38, 27, tzinfo=UTC)
    assert job.cost == 0.35
    assert job.usage == {"total_cost": 0.35}
    assert job.error is None
    assert job.poll_url == VIDEO_POLL
    assert job.raw["start_time"] == 1773318925


def test_parse_poll_reads_urls_video(dialect: OneRouter) -> None:
    job = _polled(dialect, status="succeeded", outputs=None, urls={"video": OUTPUT})
    assert job.status is JobStatus.SUCCEEDED
    assert job.artifacts == [Artifact(url=OUTPUT, index=0)]


def test_parse_poll_prefers_outputs_to_urls_video(dialect: OneRouter) -> None:
    job = _polled(dialect, status="completed", outputs=[OUTPUT], urls={"video": "https://x/y.mp4"})
    assert [a.url for a in job.artifacts] == [OUTPUT]


def test_parse_poll_image_outputs(dialect: OneRouter) -> None:
    previous = dialect.job_for_id(TASK_ID, kind="image")
    urls = ["https://storage.googleapis.com/b/1.png", "https://storage.googleapis.com/b/2.png"]
    job = _polled(dialect, previous, object="image", status="completed", outputs=urls)
    assert [(a.url, a.index) for a in job.artifacts] == [(urls[0], 0), (urls[1], 1)]
    assert (job.kind, job.route) == ("image", "image")


@pytest.mark.parametrize("raw", ["failed", "error"])
def test_parse_poll_failure_reason(dialect: OneRouter, raw: str) -> None:
    job = _polled(dialect, status=raw, fail_reason="The input image is not supported.")
    assert job.status is JobStatus.FAILED
    assert job.error == JobErrorInfo(message="The input image is not supported.", code=None)


def test_empty_fail_reason_means_no_error(dialect: OneRouter) -> None:
    job = _polled(dialect, status="processing", fail_reason="")
    assert job.status is JobStatus.RUNNING
    assert job.error is None


def test_times_fall_back_to_submit_time(dialect: OneRouter) -> None:
    job = _polled(dialect, created_at=None, submit_time=1773318919, finish_time=0)
    assert job.created_at == datetime(2026, 3, 12, 12, 35, 19, tzinfo=UTC)
    assert job.completed_at is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01 12:00:00.00", datetime(2024, 1, 1, 12, 0, tzinfo=UTC)),
        ("2024-01-01 12:00:00.5", datetime(2024, 1, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2026-03-12 23:11:29", datetime(2026, 3, 12, 23, 11, 29, tzinfo=UTC)),
    ],
)
def test_naive_times_are_utc(dialect: OneRouter, text: str, expected: datetime) -> None:
    created = _polled(dialect, created_at=text).created_at
    assert created == expected
    assert created is not None
    assert created.utcoffset() is not None


def test_unreadable_time_names_the_field(dialect: OneRouter) -> None:
    with pytest.raises(ProtocolError) as info:
        _polled(dialect, created_at="yesterday")
    assert info.value.field == "created_at"


def test_parse_poll_carries_the_route_of_a_stored_image_id(dialect: OneRouter) -> None:
    previous = dialect.job_for_id(TASK_ID, kind="image", model="m")
    data = {"task_id": TASK_ID, "status": "processing"}
    job = dialect.parse_poll(_response(_envelope(data), url=IMAGE_POLL), previous=previous)
    assert (job.kind, job.route, job.model, job.poll_url) == ("image", "image", "m", None)
    assert str(dialect.build_poll(job).url) == IMAGE_POLL


# ----------------------------------------------------------------------------------- statuses

DOCUMENTED = {
    "created": JobStatus.QUEUED,
    "in_progress": JobStatus.RUNNING,
    "processing": JobStatus.RUNNING,
    "completed": JobStatus.SUCCEEDED,
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "error": JobStatus.FAILED,
}


def test_status_table_maps_every_documented_status() -> None:
    for raw, expected in DOCUMENTED.items():
        assert OneRouter.status_table[raw] is expected, raw


@pytest.mark.parametrize(("raw", "expected"), sorted(DOCUMENTED.items()))
def test_parse_poll_normalizes_each_status(
    dialect: OneRouter, raw: str, expected: JobStatus
) -> None:
    job = _polled(dialect, status=raw)
    assert job.status is expected
    assert job.raw_status == raw


# ------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (401, AuthenticationError),
        (402, PaymentRequiredError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_envelope_code_inside_http_200_raises_like_a_status(
    dialect: OneRouter, code: int, cls: type[APIError]
) -> None:
    body = _envelope(None, code=code, message=f"refused {code}")
    with pytest.raises(cls) as info:
        dialect.parse_poll(_response(body), previous=dialect.job_for_id(TASK_ID))
    assert info.value.status_code == code
    assert info.value.body == body
    assert info.value.provider == "onerouter"
    assert info.value.response is not None
    assert info.value.response.status_code == 200
    assert f"refused {code}" in str(info.value)


def test_envelope_error_on_submit(dialect: OneRouter) -> None:
    body = _envelope({}, code=402, message="insufficient balance")
    with pytest.raises(PaymentRequiredError, match="insufficient balance") as info:
        dialect.parse_submit(
            _response(body, method="POST", url=SUBMIT_URL), kind="video", model="m"
        )
    assert info.value.status_code == 402


@pytest.mark.parametrize("code", [0, 200])
def test_success_codes_pass(dialect: OneRouter, code: int) -> None:
    body = _envelope(_poll_data(status="processing"), code=code)
    job = dialect.parse_poll(_response(body), previous=dialect.job_for_id(TASK_ID))
    assert job.status is JobStatus.RUNNING


def test_envelope_without_code_passes(dialect: OneRouter) -> None:
    body = {"data": _poll_data(status="created")}
    job = dialect.parse_poll(_response(body), previous=dialect.job_for_id(TASK_ID))
    assert job.status is JobStatus.QUEUED


def test_http_error_status_wins_over_an_ok_envelope(dialect: OneRouter) -> None:
    with pytest.raises(ServerError) as info:
        dialect.raise_for_status(_response(_envelope(None), status_code=500))
    assert info.value.status_code == 500


def test_http_error_with_text_body(dialect: OneRouter) -> None:
    response = _response(status_code=503, text="upstream unavailable")
    with pytest.raises(ServerError, match="upstream unavailable"):
        dialect.parse_poll(response, previous=dialect.job_for_id(TASK_ID))


def test_raise_for_status_leaves_artifact_bytes_alone(dialect: OneRouter) -> None:
    mp4 = _response(content=b"\x00\x00\x00\x18ftypmp42", headers={"content-type": "video/mp4"})
    dialect.raise_for_status(mp4)
    unread = httpx.Response(
        200,
        headers={"content-type": "application/json"},
        stream=httpx.ByteStream(json.dumps(_envelope(None, code=401)).encode()),
        request=httpx.Request("GET", OUTPUT),
    )
    dialect.raise_for_status(unread)
    assert not unread.is_stream_consumed


@pytest.mark.parametrize(
    "content", [b"<html>blocked</html>", b"", b"[1, 2]", b'{"code": 200, "data": ']
)
def test_malformed_bodies_are_protocol_errors(dialect: OneRouter, content: bytes) -> None:
    with pytest.raises(ProtocolError, match="onerouter"):
        dialect.parse_poll(_response(content=content), previous=dialect.job_for_id(TASK_ID))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (None, "data"),
        ([], "data"),
        ("ok", "data"),
        ({"status": "created"}, "task_id"),
        ({"task_id": TASK_ID}, "status"),
        ({"task_id": 7, "status": "created"}, "task_id"),
        ({"task_id": TASK_ID, "status": ["created"]}, "status"),
        (_poll_data(object=1), "object"),
        (_poll_data(urls=[VIDEO_POLL]), "urls"),
        (_poll_data(urls={"get": 5}), "get"),
        (_poll_data(outputs=OUTPUT), "outputs"),
        (_poll_data(outputs=[{"url": OUTPUT}]), "outputs[0]"),
        (_poll_data(outputs=[], urls={"video": ["x"]}), "video"),
        (_poll_data(cost=0.35), "cost"),
        (_poll_data(cost={"total_cost": "0.35"}), "total_cost"),
        (_poll_data(model=3), "model"),
    ],
)
def test_bodies_out_of_shape_name_the_field(dialect: OneRouter, data: Any, field: str) -> None:
    with pytest.raises(ProtocolError) as info:
        dialect.parse_poll(_response(_envelope(data)), previous=dialect.job_for_id(TASK_ID))
    assert info.value.field == field
    assert info.value.provider == "onerouter"


def test_missing_data_on_submit(dialect: OneRouter) -> None:
    response = _response({"code": 200, "message": "success"}, method="POST", url=SUBMIT_URL)
    with pytest.raises(ProtocolError) as info:
        dialect.parse_submit(response, kind="video", model="m")
    assert info.value.field == "data"


def test_no_model_listing(dialect: OneRouter) -> None:
    with pytest.raises(UnsupportedError, match="onerouter"):
        dialect.build_models()
