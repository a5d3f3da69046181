"""Pure tests of the WorldRouter dialect: literal responses in, job snapshots out."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from mediajobs._exceptions import (
    ProtocolError,
    UnsupportedError,
)
from mediajobs._models import Artifact, JobData, JobStatus
from mediajobs.dialects.worldrouter import WorldRouter

API = "https://inference-api.worldrouter.ai"
TASK_ID = "imgtask_9f2c"
STORED_URL = "https://storage.worldrouter.ai/tasks/imgtask_9f2c/0.png"

# The create answer of the async image task guide.
CREATED: dict[str, Any] = {
    "id": TASK_ID,
    "object": "image.generation_task",
    "created": 1780501937,
    "task_id": TASK_ID,
    "status": "queued",
    "model": "gpt-image-2",
    "created_at": "2026-06-11T12:00:00+00:00",
}

# The completed poll answer of the same guide.
COMPLETED: dict[str, Any] = {
    **CREATED,
    "status": "completed",
    "data": [{"url": STORED_URL}],
    "usage": {"input_tokens": 20, "output_tokens": 397, "total_tokens": 417},
}

# docs/providers.md (WorldRouter, statuses): every documented raw status and what it means.
DOCUMENTED_STATUSES = {
    "queued": JobStatus.QUEUED,
    "in_progress": JobStatus.RUNNING,
    "running": JobStatus.RUNNING,
    "completed": JobStatus.SUCCEEDED,
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "expired": JobStatus.EXPIRED,
}


@pytest.fixture
def dialect() -> WorldRouter:
    return WorldRouter()


def respond(
    status_code: int,
    body: Any = None,
    *,
    content: bytes | None = None,
    method: str = "GET",
    url: str = f"{API}/v1/images/generation_tasks/{TASK_ID}",
) -> httpx.Response:
    request = httpx.Request(method, url)
    if content is not None:
        return httpx.Response(status_code, content=content, request=request)
    return httpx.Response(status_code, json=body, request=request)


def created(dialect: WorldRouter, body: Any = None, *, kind: str = "image") -> JobData:
    return dialect.parse_submit(
        respond(200, CREATED if body is None else body, method="POST"),
        kind=kind,
        model="gpt-image-2",
    )


def polled(dialect: WorldRouter, body: Any, *, previous: JobData | None = None) -> JobData:
    return dialect.parse_poll(respond(200, body), previous=previous or created(dialect))


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)


# ------------------------------------------------------------------------------ attributes


def test_class_attributes() -> None:
    assert WorldRouter.name == "worldrouter"
    assert WorldRouter.env_var == "WORLDROUTER_API_KEY"
    assert WorldRouter.kinds == {"image", "video"}
    assert WorldRouter.default_hosts == {"api": API}
    assert WorldRouter.supports_cancel is False
    assert WorldRouter.default_poll.max_interval <= 10.0


@pytest.mark.parametrize(("raw", "expected"), DOCUMENTED_STATUSES.items())
def test_every_documented_status_maps(dialect: WorldRouter, raw: str, expected: JobStatus) -> None:
    assert WorldRouter.status_table[raw] is expected
    body = {**COMPLETED, "status": raw}
    if raw == "succeeded":  # the video route's success
        previous = created(dialect, kind="video")
        body = {**CREATED, "status": raw, "content": {"video_url": "https://cdn.example/v.mp4"}}
    else:
        previous = created(dialect)
    job = polled(dialect, body, previous=previous)
    assert job.status is expected
    assert job.raw_status == raw


def test_status_table_holds_only_documented_statuses() -> None:
    assert dict(WorldRouter.status_table) == DOCUMENTED_STATUSES


# --------------------------------------------------------------------------- submit requests


def test_image_submit(dialect: WorldRouter) -> None:
    request = dialect.build_submit(
        "image",
        model="gpt-image-2",
        prompt="a star icon",
        params={"n": 1, "size": "1024x1024", "output_format": "png", "response_format": "url"},
    )
    assert request.method == "POST"
    assert request.url == f"{API}/v1/images/generation_tasks"
    assert "async" not in request.url.params
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    assert "user-agent" not in request.headers
    assert json.loads(request.read()) == {
        "model": "gpt-image-2",
        "prompt": "a star icon",
        "n": 1,
        "size": "1024x1024",
        "output_format": "png",
        "response_format": "url",
    }


def test_video_submit(dialect: WorldRouter) -> None:
    request = dialect.build_submit(
        "video",
        model="grok-imagine-video",
        prompt="waves",
        params={"duration": 6, "resolution": "720p"},
    )
    assert request.method == "POST"
    assert request.url == f"{API}/v1/videos/generations"
    assert json.loads(request.read()) == {
        "model": "grok-imagine-video",
        "prompt": "waves",
        "duration": 6,
        "resolution": "720p",
    }


def test_prompt_left_out_when_none(dialect: WorldRouter) -> None:
    request = dialect.build_submit("image", model="m", prompt=None, params={})
    assert json.loads(request.read()) == {"model": "m"}


@pytest.mark.parametrize("kind", ["image_edit", "speech", "transcription", "music"])
def test_unsupported_kinds(dialect: WorldRouter, kind: str) -> None:
    with pytest.raises(UnsupportedError, match=repr(kind)):
        dialect.build_submit(kind, model="m", prompt="p", params={})


def test_input_files_are_refused(dialect: WorldRouter) -> None:
    with pytest.raises(UnsupportedError, match="image"):
        dialect.build_submit(
            "image", model="m", prompt="p", params={"image": ("a.png", b"bytes", "image/png")}
        )


def test_an_image_url_passes_through(dialect: WorldRouter) -> None:
    request = dialect.build_submit(
        "image", model="m", prompt="p", params={"image": "https://cdn.example/ref.png"}
    )
    assert json.loads(request.read())["image"] == "https://cdn.example/ref.png"


def test_base_url_replaces_every_host() -> None:
    dialect = WorldRouter(base_url="http://127.0.0.1:8123")
    submit = dialect.build_submit("image", model="m", prompt="p", params={})
    assert submit.url == "http://127.0.0.1:8123/v1/images/generation_tasks"
    poll = dialect.build_poll(created(dialect))
    assert poll.url == f"http://127.0.0.1:8123/v1/images/generation_tasks/{TASK_ID}"
    video = dialect.build_poll(dialect.job_for_id("vt_1", kind="video"))
    assert video.url == "http://127.0.0.1:8123/v1/videos/generations/vt_1"


def test_cancel_is_unsupported(dialect: WorldRouter) -> None:
    with pytest.raises(UnsupportedError, match="cancel"):
        dialect.build_cancel(created(dialect))


# ------------------------------------------------------------------------- submit answers


def test_create_answer(dialect: WorldRouter) -> None:
    job = created(dialect)
    assert job.id == TASK_ID
    assert job.provider == "worldrouter"
    assert job.status is JobStatus.QUEUED
    assert job.raw_status == "queued"
    assert job.kind == "image"
    assert job.model == "gpt-image-2"
    assert job.route == "image"
    # created_at (ISO +00:00) is preferred over created (unix): the exact value says which.
    assert job.created_at == utc(2026, 6, 11, 12, 0, 0)
    assert job.created_at is not None
    assert job.created_at.utcoffset() is not None
    assert job.artifacts == []
    assert job.raw == CREATED


def test_create_answer_with_unix_time_only(dialect: WorldRouter) -> None:
    body = {key: value for key, value in CREATED.items() if key != "created_at"}
    job = created(dialect, body)
    assert job.created_at == utc(2026, 6, 3, 15, 52, 17)
    assert job.created_at is not None
    assert job.created_at.tzinfo is not None


def test_create_answer_with_z_time(dialect: WorldRouter) -> None:
    job = created(dialect, {**CREATED, "created_at": "2026-06-11T12:00:00Z"})
    assert job.created_at == utc(2026, 6, 11, 12, 0, 0)


def test_create_answer_id_without_task_id(dialect: WorldRouter) -> None:
    body = {key: value for key, value in CREATED.items() if key != "task_id"}
    assert created(dialect, {**body, "id": "imgtask_only_id"}).id == "imgtask_only_id"


def test_create_answer_task_id_without_id(dialect: WorldRouter) -> None:
    body = {key: value for key, value in CREATED.items() if key != "id"}
    assert created(dialect, body).id == TASK_ID


def test_create_answer_without_any_id(dialect: WorldRouter) -> None:
    body = {key: value for key, value in CREATED.items() if key not in ("id", "task_id")}
    with pytest.raises(ProtocolError) as caught:
        created(dialect, body)
    assert caught.value.field == "id"
    assert caught.value.provider == "worldrouter"


def test_create_answer_with_numeric_task_id(dialect: WorldRouter) -> None:
    with pytest.raises(ProtocolError) as caught:
        created(dialect, {**CREATED, "task_id": 42})
    assert caught.value.field == "task_id"


def test_create_answer_without_status_is_queued(dialect: WorldRouter) -> None:
    body = {key: value for key, value in CREATED.items() if key != "status"}
    job = created(dialect, body)
    assert job.status is JobStatus.QUEUED
    assert job.id == TASK_ID


def test_create_accepts_202(dialect: WorldRouter) -> None:
    job = dialect.parse_submit(respond(202, CREATED, method="POST"), kind="image", model="m")
    assert job.id == TASK_ID


def test_video_create_answer_records_the_route(dialect: WorldRouter) -> None:
    body = {"task_id": "vidtask_1", "status": "queued", "created": 1780501937}
    job = created(dialect, body, kind="video")
    assert job.route == "video"
    assert job.kind == "video"
    assert dialect.build_poll(job).url == f"{API}/v1/videos/generations/vidtask_1"


# --------------------------------------------------------------------------------- polling


def test_poll_request(dialect: WorldRouter) -> None:
    request = dialect.build_poll(created(dialect))
    assert request.method == "GET"
    assert request.url == f"{API}/v1/images/generation_tasks/{TASK_ID}"


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        (None, "/v1/images/generation_tasks/t_1"),
        ("image", "/v1/images/generation_tasks/t_1"),
        ("video", "/v1/videos/generations/t_1"),
    ],
)
def test_stored_id_route_follows_the_kind(
    dialect: WorldRouter, kind: str | None, path: str
) -> None:
    job = dialect.job_for_id("t_1", kind=kind)
    assert job.route == ("video" if kind == "video" else "image")
    assert dialect.build_poll(job).url == API + path


def test_poll_keeps_the_id_in_one_segment(dialect: WorldRouter) -> None:
    request = dialect.build_poll(dialect.job_for_id("a/b?c"))
    assert request.url.raw_path == b"/v1/images/generation_tasks/a%2Fb%3Fc"


def test_in_progress(dialect: WorldRouter) -> None:
    job = polled(dialect, {**CREATED, "status": "in_progress"})
    assert job.status is JobStatus.RUNNING
    assert not job.done
    assert job.route == "image"


def test_completed_image_task(dialect: WorldRouter) -> None:
    job = polled(dialect, COMPLETED)
    assert job.status is JobStatus.SUCCEEDED
    assert job.done
    assert job.artifacts == [Artifact(url=STORED_URL, index=0, media_type="image/png")]
    assert job.usage == {"input_tokens": 20, "output_tokens": 397, "total_tokens": 417}
    assert job.cost is None
    assert job.error is None
    assert job.created_at == utc(2026, 6, 11, 12, 0, 0)
    assert job.raw == COMPLETED


def test_completed_with_several_images(dialect: WorldRouter) -> None:
    body = {
        **COMPLETED,
        "data": [{"url": "https://s.example/a.jpeg"}, {"url": "https://s.example/b?sig=1"}],
    }
    job = polled(dialect, body)
    assert job.artifacts == [
        Artifact(url="https://s.example/a.jpeg", index=0, media_type="image/jpeg"),
        Artifact(url="https://s.example/b?sig=1", index=1, media_type=None),
    ]


def test_poll_keeps_what_the_body_leaves_out(dialect: WorldRouter) -> None:
    previous = created(dialect)
    job = polled(dialect, {"status": "in_progress"}, previous=previous)
    assert job.id == TASK_ID
    assert job.model == "gpt-image-2"
    assert job.created_at == previous.created_at


def test_video_succeeded(dialect: WorldRouter) -> None:
    previous = dialect.job_for_id("vidtask_1", kind="video")
    body = {
        "task_id": "vidtask_1",
        "status": "succeeded",
        "model": "grok-imagine-video",
        "content": {"video_url": "https://vidgen.example/out/vidtask_1"},
    }
    job = polled(dialect, body, previous=previous)
    assert job.status is JobStatus.SUCCEEDED
    assert job.artifacts == [
        Artifact(url="https://vidgen.example/out/vidtask_1", index=0, media_type="video/mp4")
    ]
    assert job.kind == "video"
    assert job.model == "grok-imagine-video"


def test_failed_with_error_object(dialect: WorldRouter) -> None:
    body = {
        **CREATED,
        "status": "failed",
        "error": {"code": "moderation_blocked", "message": "prompt was rejected"},
    }
    job = polled(dialect, body)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.message == "prompt was rejected"
    assert job.error.code == "moderation_blocked"
    assert job.artifacts == []


def test_failed_with_error_string(dialect: WorldRouter) -> None:
    job = polled(dialect, {**CREATED, "status": "failed", "error": "upstream timeout"})
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.message == "upstream timeout"
    assert job.error.code is None


# ----------------------------------------------------------------------- malformed answers


def test_malformed_json_is_a_protocol_error(dialect: WorldRouter) -> None:
    with pytest.raises(ProtocolError, match="not valid JSON"):
        dialect.parse_poll(respond(200, content=b"<html>"), previous=dialect.job_for_id(TASK_ID))
    with pytest.raises(ProtocolError, match="not a JSON object"):
        dialect.parse_submit(respond(200, "queued", method="POST"), kind="image", model="m")


def test_poll_without_status_is_a_protocol_error(dialect: WorldRouter) -> None:
    with pytest.raises(ProtocolError) as caught:
        polled(dialect, {"task_id": TASK_ID})
    assert caught.value.field == "status"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": ["completed"]}, "status"),
        ({"data": {"url": STORED_URL}}, "data"),
        ({"data": [{"b64_json": "AAAA"}]}, "data[0].url"),
        ({"data": [{"url": STORED_URL}, "https://s.example/b.png"]}, "data[1].url"),
        ({"data": []}, "data"),
        ({"data": None}, "data"),
        ({"usage": "417 tokens"}, "usage"),
        ({"created_at": "June 11"}, "created_at"),
    ],
)
def test_malformed_task_bodies(dialect: WorldRouter, change: dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        polled(dialect, {**COMPLETED, **change})
    assert caught.value.field == field
    assert caught.value.provider == "worldrouter"


@pytest.mark.parametrize(
    ("content", "field"),
    [(None, "content.video_url"), ({"video_url": 5}, "video_url"), ("x", "content")],
)
def test_malformed_video_bodies(dialect: WorldRouter, content: Any, field: str) -> None:
    previous = dialect.job_for_id("vidtask_1", kind="video")
    with pytest.raises(ProtocolError) as caught:
        polled(dialect, {"status": "succeeded", "content": content}, previous=previous)
    assert caught.value.field == field
