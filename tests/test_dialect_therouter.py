"""Pure tests of the TheRouter dialect: literal responses in, job snapshots out."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from mediajobs._exceptions import (
    APIError,
    ProtocolError,
    UnsupportedError,
)
from mediajobs._models import Artifact, JobData, JobStatus
from mediajobs.dialects.therouter import TheRouter

API = "https://api.therouter.ai"
JOB_ID = "img_uxRZK4KwxkWaaHXRfwP0fWUDST"
S3_URL = "https://therouter-media-prod.s3.us-east-2.amazonaws.com/t/img_0.png?X-Amz-Signature=abc"

# The submit answer of the async image guide, verbatim.
SUBMITTED: dict[str, Any] = {
    "id": JOB_ID,
    "object": "image_job",
    "status": "queued",
    "model": "openai/gpt-image-2",
    "created_at": 1778637249,
    "polling_url": f"{API}/v1/jobs/{JOB_ID}",
    "expires_at": 1779242049,
}

# The succeeded poll answer of the same guide (URLs completed).
SUCCEEDED: dict[str, Any] = {
    "id": JOB_ID,
    "object": "image_job",
    "status": "succeeded",
    "model": "openai/gpt-image-2",
    "created_at": 1778637249,
    "completed_at": 1778637444,
    "polling_url": f"{API}/v1/jobs/{JOB_ID}",
    "content_url": f"{API}/v1/jobs/{JOB_ID}/content",
    "unsigned_urls": [S3_URL],
    "image_count": 1,
    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "cost_credits": 9},
    "error": None,
}

# docs/providers.md (TheRouter, statuses): every documented raw status and what it means.
DOCUMENTED_STATUSES = {
    "queued": JobStatus.QUEUED,
    "in_progress": JobStatus.RUNNING,
    "running": JobStatus.RUNNING,
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "expired": JobStatus.EXPIRED,
}


@pytest.fixture
def dialect() -> TheRouter:
    return TheRouter()


def respond(
    status_code: int,
    body: Any = None,
    *,
    content: bytes | None = None,
    method: str = "GET",
    url: str = f"{API}/v1/jobs/{JOB_ID}",
) -> httpx.Response:
    request = httpx.Request(method, url)
    if content is not None:
        return httpx.Response(status_code, content=content, request=request)
    return httpx.Response(status_code, json=body, request=request)


def submitted(dialect: TheRouter, body: dict[str, Any] | None = None) -> JobData:
    return dialect.parse_submit(
        respond(202, SUBMITTED if body is None else body, method="POST"),
        kind="image",
        model="openai/gpt-image-2",
    )


def polled(dialect: TheRouter, body: Any, *, previous: JobData | None = None) -> JobData:
    return dialect.parse_poll(respond(200, body), previous=previous or submitted(dialect))


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)


def multipart(request: httpx.Request) -> bytes:
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    return request.read()


def png(name: str, payload: bytes) -> tuple[str, bytes, str]:
    return (name, payload, "image/png")


# ------------------------------------------------------------------------------ attributes


def test_class_attributes() -> None:
    assert TheRouter.name == "therouter"
    assert TheRouter.env_var == "THEROUTER_API_KEY"
    assert TheRouter.kinds == {"image", "image_edit", "video", "speech", "transcription"}
    assert TheRouter.default_hosts == {"api": API}
    assert TheRouter.supports_cancel is True
    # Provider guidance is 5-10 s: the backoff settles inside it.
    assert 5.0 <= TheRouter.default_poll.max_interval <= 10.0


@pytest.mark.parametrize(("raw", "expected"), DOCUMENTED_STATUSES.items())
def test_every_documented_status_maps(dialect: TheRouter, raw: str, expected: JobStatus) -> None:
    assert TheRouter.status_table[raw] is expected
    job = polled(dialect, {**SUBMITTED, "status": raw})
    assert job.status is expected
    assert job.raw_status == raw


def test_status_table_holds_only_documented_statuses() -> None:
    assert dict(TheRouter.status_table) == DOCUMENTED_STATUSES


# --------------------------------------------------------------------------- submit requests


def test_image_submit_is_async_json(dialect: TheRouter) -> None:
    request = dialect.build_submit(
        "image", model="openai/gpt-image-2", prompt="an apple", params={"size": "1024x1024", "n": 2}
    )
    assert request.method == "POST"
    assert request.url == f"{API}/v1/images/generations?async=true"
    assert request.url.params["async"] == "true"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.read()) == {
        "model": "openai/gpt-image-2",
        "prompt": "an apple",
        "size": "1024x1024",
        "n": 2,
    }


def test_requests_carry_no_credentials_or_user_agent(dialect: TheRouter) -> None:
    job = submitted(dialect)
    requests = [
        dialect.build_submit("image", model="m", prompt="p", params={}),
        dialect.build_poll(job),
        dialect.build_cancel(job),
    ]
    for request in requests:
        assert "authorization" not in request.headers
        assert "user-agent" not in request.headers


def test_video_submit_goes_to_videos(dialect: TheRouter) -> None:
    request = dialect.build_submit(
        "video",
        model="openai/sora-2",
        prompt="waves",
        params={"duration": 8, "aspect_ratio": "16:9"},
    )
    assert request.method == "POST"
    assert request.url == f"{API}/v1/videos"
    assert json.loads(request.read()) == {
        "model": "openai/sora-2",
        "prompt": "waves",
        "duration": 8,
        "aspect_ratio": "16:9",
    }


def test_speech_submit_sends_the_prompt_as_input(dialect: TheRouter) -> None:
    request = dialect.build_submit(
        "speech", model="openai/tts-1", prompt="Hello there", params={"voice": "alloy"}
    )
    assert request.url == f"{API}/v1/audio/speech?async=true"
    assert json.loads(request.read()) == {
        "model": "openai/tts-1",
        "input": "Hello there",
        "voice": "alloy",
    }


def test_prompt_left_out_when_none(dialect: TheRouter) -> None:
    request = dialect.build_submit("image", model="m", prompt=None, params={"size": "1x1"})
    assert json.loads(request.read()) == {"model": "m", "size": "1x1"}


def test_image_edit_is_async_multipart(dialect: TheRouter) -> None:
    request = dialect.build_submit(
        "image_edit",
        model="openai/gpt-image-2",
        prompt="watercolor",
        params={
            "size": "1024x1024",
            "n": 2,
            "stream": False,
            "image": png("input.png", b"\x89PNG-input-bytes"),
        },
    )
    assert request.method == "POST"
    assert request.url == f"{API}/v1/images/edits?async=true"
    body = multipart(request)
    assert b'name="model"\r\n\r\nopenai/gpt-image-2\r\n' in body
    assert b'name="prompt"\r\n\r\nwatercolor\r\n' in body
    assert b'name="size"\r\n\r\n1024x1024\r\n' in body
    assert b'name="n"\r\n\r\n2\r\n' in body
    assert b'name="stream"\r\n\r\nfalse\r\n' in body
    assert b'name="image"; filename="input.png"\r\nContent-Type: image/png' in body
    assert b"\x89PNG-input-bytes" in body


def test_image_edit_with_several_images(dialect: TheRouter) -> None:
    request = dialect.build_submit(
        "image_edit",
        model="m",
        prompt="merge",
        params={"image": [png("a.png", b"first-image"), png("b.png", b"second-image")]},
    )
    body = multipart(request)
    assert b'name="image[]"; filename="a.png"' in body
    assert b'name="image[]"; filename="b.png"' in body
    assert b"first-image" in body
    assert b"second-image" in body


def test_transcription_is_async_multipart(dialect: TheRouter) -> None:
    request = dialect.build_submit(
        "transcription",
        model="openai/whisper-1",
        prompt="names: Kyoto",
        params={"file": ("talk.mp3", b"ID3-audio-bytes", "audio/mpeg")},
    )
    assert request.url == f"{API}/v1/audio/transcriptions?async=true"
    body = multipart(request)
    assert b'name="model"\r\n\r\nopenai/whisper-1\r\n' in body
    assert b'name="prompt"\r\n\r\nnames: Kyoto\r\n' in body
    assert b'name="file"; filename="talk.mp3"\r\nContent-Type: audio/mpeg' in body
    assert b"ID3-audio-bytes" in body


def test_transcription_without_prompt_sends_no_prompt_field(dialect: TheRouter) -> None:
    request = dialect.build_submit(
        "transcription", model="w", prompt=None, params={"file": ("a.wav", b"RIFF", "audio/wav")}
    )
    body = multipart(request)
    assert b'name="model"' in body
    assert b'name="prompt"' not in body


def test_a_file_switches_a_json_kind_to_multipart(dialect: TheRouter) -> None:
    request = dialect.build_submit(
        "video", model="v", prompt="move", params={"image": png("first.png", b"frame-bytes")}
    )
    assert request.url == f"{API}/v1/videos"
    body = multipart(request)
    assert b'name="prompt"\r\n\r\nmove\r\n' in body
    assert b"frame-bytes" in body


def test_an_image_url_stays_an_ordinary_field(dialect: TheRouter) -> None:
    request = dialect.build_submit(
        "video", model="v", prompt="move", params={"image": "https://cdn.example/first.png"}
    )
    assert json.loads(request.read())["image"] == "https://cdn.example/first.png"
    edit = dialect.build_submit(
        "image_edit", model="m", prompt="p", params={"image": "https://cdn.example/in.png"}
    )
    body = multipart(edit)  # multipart even without a file part
    assert b'name="image"\r\n\r\nhttps://cdn.example/in.png\r\n' in body
    assert b"filename=" not in body


def test_unsupported_kind(dialect: TheRouter) -> None:
    with pytest.raises(UnsupportedError, match="music"):
        dialect.build_submit("music", model="m", prompt="p", params={})


def test_base_url_replaces_every_host() -> None:
    dialect = TheRouter(base_url="http://127.0.0.1:8123")
    submit = dialect.build_submit("image", model="m", prompt="p", params={})
    assert submit.url == "http://127.0.0.1:8123/v1/images/generations?async=true"
    # The server still names the production host: the poll must not go there.
    job = submitted(dialect)
    assert job.poll_url == f"{API}/v1/jobs/{JOB_ID}"
    assert dialect.build_poll(job).url == f"http://127.0.0.1:8123/v1/jobs/{JOB_ID}"
    assert dialect.build_cancel(job).url == f"http://127.0.0.1:8123/v1/jobs/{JOB_ID}/cancel"
    artifact = Artifact(url=S3_URL, index=0)
    content = dialect.build_content(job, artifact)
    assert content is not None
    assert content.url == f"http://127.0.0.1:8123/v1/jobs/{JOB_ID}/content"


# ------------------------------------------------------------------------- submit answers


def test_submit_answer_with_unix_times(dialect: TheRouter) -> None:
    job = submitted(dialect)
    assert job.id == JOB_ID
    assert job.provider == "therouter"
    assert job.status is JobStatus.QUEUED
    assert job.raw_status == "queued"
    assert job.kind == "image"
    assert job.model == "openai/gpt-image-2"
    assert job.created_at == utc(2026, 5, 13, 1, 54, 9)
    assert job.expires_at == utc(2026, 5, 20, 1, 54, 9)
    assert job.created_at is not None
    assert job.created_at.utcoffset() is not None
    assert job.poll_url == f"{API}/v1/jobs/{JOB_ID}"
    assert job.artifacts == []
    assert job.error is None
    assert job.raw == SUBMITTED


def test_submit_answer_with_iso_expiry(dialect: TheRouter) -> None:
    # The announcement's shape: no created_at, expires_at as ISO with Z.
    job = submitted(
        dialect,
        {
            "id": "img_01J",
            "polling_url": f"{API}/v1/jobs/img_01J",
            "status": "queued",
            "expires_at": "2026-05-15T12:00:00Z",
            "model": "openai/gpt-image-2",
        },
    )
    assert job.expires_at == utc(2026, 5, 15, 12, 0, 0)
    assert job.expires_at is not None
    assert job.expires_at.tzinfo is not None
    assert job.created_at is None


def test_submit_accepts_any_2xx(dialect: TheRouter) -> None:
    response = respond(200, SUBMITTED, method="POST")
    job = dialect.parse_submit(response, kind="image", model="m")
    assert job.id == JOB_ID
    assert job.status is JobStatus.QUEUED


def test_submit_without_status_is_queued(dialect: TheRouter) -> None:
    body = {key: value for key, value in SUBMITTED.items() if key != "status"}
    job = submitted(dialect, body)
    assert job.id == JOB_ID
    assert job.status is JobStatus.QUEUED
    assert job.raw_status == "queued"


def test_submit_without_id_is_a_protocol_error(dialect: TheRouter) -> None:
    body = {key: value for key, value in SUBMITTED.items() if key != "id"}
    with pytest.raises(ProtocolError) as caught:
        submitted(dialect, body)
    assert caught.value.field == "id"
    assert caught.value.provider == "therouter"


def test_submit_with_numeric_id_is_a_protocol_error(dialect: TheRouter) -> None:
    with pytest.raises(ProtocolError) as caught:
        submitted(dialect, {**SUBMITTED, "id": 12345})
    assert caught.value.field == "id"


# --------------------------------------------------------------------------------- polling


def test_poll_uses_the_servers_polling_url_on_the_api_host(dialect: TheRouter) -> None:
    job = submitted(dialect, {**SUBMITTED, "polling_url": f"{API}/v2/jobs/{JOB_ID}"})
    request = dialect.build_poll(job)
    assert request.method == "GET"
    assert request.url == f"{API}/v2/jobs/{JOB_ID}"


def test_poll_ignores_a_polling_url_on_another_host(dialect: TheRouter) -> None:
    job = submitted(
        dialect, {**SUBMITTED, "polling_url": f"https://elsewhere.example/v1/jobs/{JOB_ID}"}
    )
    assert dialect.build_poll(job).url == f"{API}/v1/jobs/{JOB_ID}"


def test_repeated_polls_get_requests_of_their_own(dialect: TheRouter) -> None:
    # Parsed URLs are cached across polls; the requests built from them must not be shared.
    job = submitted(dialect, {**SUBMITTED, "polling_url": f"{API}/v2/jobs/{JOB_ID}"})
    first, second = dialect.build_poll(job), dialect.build_poll(job)
    assert first is not second
    first.headers["Authorization"] = "Bearer k"
    assert "Authorization" not in second.headers
    assert second.url == first.url == f"{API}/v2/jobs/{JOB_ID}"
    moved = TheRouter("http://127.0.0.1:8123")
    assert moved.build_poll(job).url == f"http://127.0.0.1:8123/v1/jobs/{JOB_ID}"


def test_a_stored_malformed_polling_url_falls_back_every_time(dialect: TheRouter) -> None:
    job = submitted(dialect).model_copy(update={"poll_url": "http://[::1"})
    for _ in range(2):
        assert dialect.build_poll(job).url == f"{API}/v1/jobs/{JOB_ID}"


def test_poll_of_a_stored_id_keeps_the_id_in_one_segment(dialect: TheRouter) -> None:
    request = dialect.build_poll(dialect.job_for_id("img_a/b?c"))
    assert request.url.raw_path == b"/v1/jobs/img_a%2Fb%3Fc"


def test_relative_polling_url_is_resolved(dialect: TheRouter) -> None:
    job = submitted(dialect, {**SUBMITTED, "polling_url": f"/v1/jobs/{JOB_ID}"})
    assert job.poll_url == f"{API}/v1/jobs/{JOB_ID}"


def test_in_progress(dialect: TheRouter) -> None:
    job = polled(dialect, {**SUBMITTED, "status": "in_progress"})
    assert job.status is JobStatus.RUNNING
    assert not job.done
    assert job.artifacts == []


def test_succeeded_with_unsigned_urls(dialect: TheRouter) -> None:
    job = polled(dialect, SUCCEEDED)
    assert job.status is JobStatus.SUCCEEDED
    assert job.done
    assert job.artifacts == [Artifact(url=S3_URL, index=0, media_type="image/png")]
    assert job.content_url == f"{API}/v1/jobs/{JOB_ID}/content"
    assert job.usage == {"prompt_tokens": 0, "completion_tokens": 0, "cost_credits": 9}
    assert job.cost == 9.0
    assert job.completed_at == utc(2026, 5, 13, 1, 57, 24)
    assert job.created_at == utc(2026, 5, 13, 1, 54, 9)
    assert job.error is None
    assert job.raw == SUCCEEDED


def test_succeeded_with_result_data(dialect: TheRouter) -> None:
    body = {key: value for key, value in SUCCEEDED.items() if key != "unsigned_urls"}
    body["result"] = {
        "data": [{"url": "https://cdn.example/a.webp"}, {"url": "https://cdn.example/b.jpg"}]
    }
    job = polled(dialect, body)
    assert job.status is JobStatus.SUCCEEDED
    assert job.artifacts == [
        Artifact(url="https://cdn.example/a.webp", index=0, media_type="image/webp"),
        Artifact(url="https://cdn.example/b.jpg", index=1, media_type="image/jpeg"),
    ]


def test_succeeded_with_iso_times(dialect: TheRouter) -> None:
    body = {
        **SUCCEEDED,
        "created_at": "2026-05-13T01:54:09Z",
        "completed_at": "2026-05-13T01:57:24+00:00",
        "expires_at": "2026-05-20 01:54:09",
    }
    job = polled(dialect, body)
    assert job.created_at == utc(2026, 5, 13, 1, 54, 9)
    assert job.completed_at == utc(2026, 5, 13, 1, 57, 24)
    assert job.expires_at == utc(2026, 5, 20, 1, 54, 9)
    for moment in (job.created_at, job.completed_at, job.expires_at):
        assert moment is not None
        assert moment.utcoffset() == timezone.utc.utcoffset(None)


def test_relative_content_url_is_resolved(dialect: TheRouter) -> None:
    job = polled(dialect, {**SUCCEEDED, "content_url": f"/v1/jobs/{JOB_ID}/content"})
    assert job.content_url == f"{API}/v1/jobs/{JOB_ID}/content"


def test_succeeded_without_urls_falls_back_to_the_content_route(dialect: TheRouter) -> None:
    body = {key: value for key, value in SUCCEEDED.items() if key != "unsigned_urls"}
    job = polled(dialect, {**body, "image_count": 2})
    assert [artifact.url for artifact in job.artifacts] == [
        f"{API}/v1/jobs/{JOB_ID}/content",
        f"{API}/v1/jobs/{JOB_ID}/content?index=1",
    ]
    assert [artifact.index for artifact in job.artifacts] == [0, 1]


def test_video_and_speech_media_types_come_from_the_kind(dialect: TheRouter) -> None:
    url = "https://therouter-media-prod.s3.amazonaws.com/t/output?X-Amz-Signature=abc"
    body = {**SUCCEEDED, "unsigned_urls": [url]}
    video = polled(dialect, {**body, "id": "vid_1"}, previous=dialect.job_for_id("vid_1"))
    assert video.kind == "video"
    assert video.artifacts[0].media_type == "video/mp4"
    speech = dialect.job_for_id("aud_1", kind="speech")
    assert polled(dialect, body, previous=speech).artifacts[0].media_type == "audio/mpeg"
    image = polled(dialect, body, previous=dialect.job_for_id("img_1"))
    assert image.artifacts[0].media_type is None


def test_the_extension_wins_over_the_kind(dialect: TheRouter) -> None:
    body = {**SUCCEEDED, "unsigned_urls": ["https://s3.example/t/out.wav?sig=1"]}
    job = polled(dialect, body, previous=dialect.job_for_id("aud_1", kind="speech"))
    assert job.artifacts[0].media_type == "audio/wav"


@pytest.mark.parametrize(
    ("job_id", "kind"), [("img_1", "image"), ("vid_1", "video"), ("aud_1", None), ("x_1", None)]
)
def test_kind_is_read_from_the_id_prefix(dialect: TheRouter, job_id: str, kind: str | None) -> None:
    previous = JobData(id=job_id, provider="therouter", status=JobStatus.QUEUED, raw_status="")
    job = polled(dialect, {**SUBMITTED, "id": job_id, "status": "in_progress"}, previous=previous)
    assert job.kind == kind


def test_poll_keeps_what_the_body_leaves_out(dialect: TheRouter) -> None:
    previous = submitted(dialect)
    job = polled(dialect, {"id": JOB_ID, "status": "in_progress"}, previous=previous)
    assert job.model == "openai/gpt-image-2"
    assert job.created_at == previous.created_at
    assert job.expires_at == previous.expires_at
    assert job.poll_url == previous.poll_url


def test_poll_without_id_keeps_the_polled_id(dialect: TheRouter) -> None:
    job = polled(dialect, {"status": "in_progress"})
    assert job.id == JOB_ID


def test_failed_with_error_object(dialect: TheRouter) -> None:
    body = {
        **SUBMITTED,
        "status": "failed",
        "error": {"message": "upstream refused the prompt", "code": "content_policy"},
    }
    job = polled(dialect, body)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.message == "upstream refused the prompt"
    assert job.error.code == "content_policy"
    assert job.artifacts == []


def test_failed_with_error_message_only(dialect: TheRouter) -> None:
    job = polled(dialect, {**SUBMITTED, "status": "failed", "error": {"message": "boom"}})
    assert job.error is not None
    assert job.error.message == "boom"
    assert job.error.code is None


# ----------------------------------------------------------------------- malformed answers


def test_malformed_json_is_a_protocol_error(dialect: TheRouter) -> None:
    with pytest.raises(ProtocolError, match="not valid JSON"):
        dialect.parse_poll(respond(200, content=b"{not json"), previous=dialect.job_for_id(JOB_ID))
    with pytest.raises(ProtocolError, match="not a JSON object"):
        dialect.parse_submit(respond(202, [SUBMITTED], method="POST"), kind="image", model="m")


def test_poll_without_status_is_a_protocol_error(dialect: TheRouter) -> None:
    with pytest.raises(ProtocolError) as caught:
        polled(dialect, {"id": JOB_ID})
    assert caught.value.field == "status"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": 3}, "status"),
        ({"unsigned_urls": "https://s3.example/a.png"}, "unsigned_urls"),
        ({"unsigned_urls": [S3_URL, 7]}, "unsigned_urls[1]"),
        ({"unsigned_urls": None, "result": {"data": [{"b64_json": "AAAA"}]}}, "result.data[0].url"),
        ({"unsigned_urls": None, "result": {"data": "x"}}, "data"),
        ({"usage": [9]}, "usage"),
        ({"usage": {"cost_credits": "nine"}}, "cost_credits"),
        ({"completed_at": "yesterday"}, "completed_at"),
        ({"model": ["a"]}, "model"),
    ],
)
def test_wrong_types_are_protocol_errors(
    dialect: TheRouter, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        polled(dialect, {**SUCCEEDED, **change})
    assert caught.value.field == field
    assert caught.value.provider == "therouter"


# ------------------------------------------------------------------------ cancel, content


def test_cancel_request(dialect: TheRouter) -> None:
    request = dialect.build_cancel(submitted(dialect))
    assert request.method == "POST"
    assert request.url == f"{API}/v1/jobs/{JOB_ID}/cancel"
    assert request.read() == b""


def test_cancel_answer_with_a_job_body(dialect: TheRouter) -> None:
    previous = submitted(dialect)
    response = respond(200, {**SUBMITTED, "status": "cancelled"}, method="POST")
    job = dialect.parse_cancel(response, previous=previous)
    assert job.status is JobStatus.CANCELLED
    assert job.done


@pytest.mark.parametrize("response_body", [b"", b'{"ok": true}'])
def test_cancel_answer_without_a_job_body_keeps_the_job(
    dialect: TheRouter, response_body: bytes
) -> None:
    previous = submitted(dialect)
    response = respond(202, content=response_body, method="POST")
    assert dialect.parse_cancel(response, previous=previous) is previous


def test_cancel_refused(dialect: TheRouter) -> None:
    response = respond(409, {"error": {"message": "job already finished"}}, method="POST")
    with pytest.raises(APIError, match="job already finished") as caught:
        dialect.parse_cancel(response, previous=submitted(dialect))
    assert caught.value.status_code == 409


@pytest.mark.parametrize(
    ("index", "url"),
    [(0, f"{API}/v1/jobs/{JOB_ID}/content"), (3, f"{API}/v1/jobs/{JOB_ID}/content?index=3")],
)
def test_content_request(dialect: TheRouter, index: int, url: str) -> None:
    request = dialect.build_content(submitted(dialect), Artifact(url=S3_URL, index=index))
    assert request is not None
    assert request.method == "GET"
    assert request.url == url
