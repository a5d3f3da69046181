"""Pure tests of the OpenRouter dialect: literal responses in, requests and job data out."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

import mediajobs as mj
from mediajobs._exceptions import (
    AuthenticationError,
    PaymentRequiredError,
    ProtocolError,
    UnsupportedError,
)
from mediajobs._models import Artifact, JobData, JobErrorInfo, JobStatus, ModelInfo
from mediajobs.dialects.openrouter import OpenRouter

API = "https://openrouter.ai"
LOCAL = "http://127.0.0.1:8123"
JOB_ID = "vid-abc123"
JOB_URL = f"{API}/api/v1/videos/{JOB_ID}"
CONTENT_0 = f"{API}/api/v1/videos/{JOB_ID}/content?index=0"
CONTENT_1 = f"{API}/api/v1/videos/{JOB_ID}/content?index=1"


@pytest.fixture
def dialect() -> OpenRouter:
    return OpenRouter()


def _response(
    status_code: int, body: Any = None, *, method: str = "GET", url: str = JOB_URL, **kw: Any
) -> httpx.Response:
    if body is not None:
        kw["json"] = body
    return httpx.Response(status_code, request=httpx.Request(method, url), **kw)


def _submitted(dialect: OpenRouter, **body: Any) -> JobData:
    payload = {"id": JOB_ID, "polling_url": JOB_URL, "status": "pending", **body}
    response = _response(202, payload, method="POST", url=f"{API}/api/v1/videos")
    return dialect.parse_submit(response, kind="video", model="google/veo-3.1")


def _polled(dialect: OpenRouter, previous: JobData | None = None, **body: Any) -> JobData:
    payload = {"id": JOB_ID, "polling_url": JOB_URL, "status": "in_progress", **body}
    return dialect.parse_poll(
        _response(200, payload), previous=previous or dialect.job_for_id(JOB_ID)
    )


# ---------------------------------------------------------------------------- class attributes


def test_identity_and_capabilities(dialect: OpenRouter) -> None:
    assert dialect.name == "openrouter"
    assert dialect.env_var == "OPENROUTER_API_KEY"
    assert dialect.kinds == frozenset({"video"})
    assert dict(dialect.default_hosts) == {"api": API}
    assert dialect.supports_cancel is False
    assert dialect.file_params == frozenset()


def test_default_poll_follows_the_10_to_30_second_guidance(dialect: OpenRouter) -> None:
    policy = dialect.default_poll
    assert 0 < policy.initial <= 10
    assert 10 <= policy.max_interval <= 30
    assert policy.next_delay(50, rand=0.5) == policy.max_interval


def test_auth_headers_use_bearer(dialect: OpenRouter) -> None:
    assert dialect.auth_headers("sk-or-1") == {"Authorization": "Bearer sk-or-1"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (CONTENT_0, True),
        (JOB_URL, True),
        ("https://openrouter.ai:443/api/v1/videos/x/content?index=0", True),
        ("https://storage.googleapis.com/bucket/video.mp4", False),
        ("http://openrouter.ai/api/v1/videos/x/content?index=0", False),
        ("https://openrouter.ai.evil.example/api/v1/videos/x", False),
    ],
)
def test_is_api_url(dialect: OpenRouter, url: str, expected: bool) -> None:
    assert dialect.is_api_url(url) is expected


# ------------------------------------------------------------------------------------ submit


def test_build_submit_sends_model_prompt_and_params_as_json(dialect: OpenRouter) -> None:
    frames = [
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,AAAA"},
            "frame_type": "first_frame",
        }
    ]
    request = dialect.build_submit(
        "video",
        model="bytedance/seedance-2.0",
        prompt="a kitten on a beach",
        params={"duration": 8, "resolution": "720p", "frame_images": frames},
    )
    assert request.method == "POST"
    assert str(request.url) == f"{API}/api/v1/videos"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "model": "bytedance/seedance-2.0",
        "prompt": "a kitten on a beach",
        "duration": 8,
        "resolution": "720p",
        "frame_images": frames,
    }
    assert "authorization" not in request.headers
    assert "user-agent" not in request.headers


def test_build_submit_leaves_out_a_missing_prompt(dialect: OpenRouter) -> None:
    request = dialect.build_submit("video", model="m", prompt=None, params={"seed": 7})
    assert json.loads(request.content) == {"model": "m", "seed": 7}


@pytest.mark.parametrize("kind", ["image", "image_edit", "speech", "transcription", "music"])
def test_build_submit_refuses_other_kinds(dialect: OpenRouter, kind: str) -> None:
    with pytest.raises(UnsupportedError, match="openrouter"):
        dialect.build_submit(kind, model="m", prompt="p", params={})


def test_parse_submit_with_absolute_polling_url(dialect: OpenRouter) -> None:
    job = _submitted(dialect, generation_id="gen-9")
    assert job.id == JOB_ID
    assert job.provider == "openrouter"
    assert job.status is JobStatus.QUEUED
    assert job.raw_status == "pending"
    assert job.kind == "video"
    assert job.model == "google/veo-3.1"
    assert job.poll_url == JOB_URL
    assert job.artifacts == []
    assert job.error is None
    assert job.cost is None
    assert (job.created_at, job.completed_at, job.expires_at) == (None, None, None)
    assert job.raw["generation_id"] == "gen-9"


def test_parse_submit_resolves_a_relative_polling_url(dialect: OpenRouter) -> None:
    job = _submitted(dialect, polling_url=f"/api/v1/videos/{JOB_ID}")
    assert job.poll_url == JOB_URL


def test_parse_submit_resolves_a_relative_polling_url_on_base_url() -> None:
    job = _submitted(OpenRouter(base_url=LOCAL), polling_url=f"/api/v1/videos/{JOB_ID}")
    assert job.poll_url == f"{LOCAL}/api/v1/videos/{JOB_ID}"


def test_parse_submit_accepts_a_missing_polling_url(dialect: OpenRouter) -> None:
    payload = {"id": JOB_ID, "status": "pending"}
    response = _response(202, payload, method="POST", url=f"{API}/api/v1/videos")
    job = dialect.parse_submit(response, kind="video", model="m")
    assert job.poll_url is None
    assert str(dialect.build_poll(job).url) == JOB_URL


# -------------------------------------------------------------------------------------- poll


def test_build_poll_uses_a_polling_url_on_the_api_host(dialect: OpenRouter) -> None:
    job = _submitted(dialect, polling_url=f"{JOB_URL}?view=full")
    request = dialect.build_poll(job)
    assert request.method == "GET"
    assert str(request.url) == f"{JOB_URL}?view=full"
    assert "authorization" not in request.headers


def test_build_poll_ignores_a_foreign_polling_url(dialect: OpenRouter) -> None:
    foreign = f"https://attacker.example/api/v1/videos/{JOB_ID}"
    job = _submitted(dialect, polling_url=foreign)
    assert job.poll_url == foreign
    assert str(dialect.build_poll(job).url) == JOB_URL


def test_base_url_replaces_the_host_everywhere() -> None:
    local = OpenRouter(base_url=LOCAL)
    submit = local.build_submit("video", model="m", prompt="p", params={})
    assert str(submit.url) == f"{LOCAL}/api/v1/videos"
    job = _submitted(local)  # the server still names openrouter.ai: not an API host here
    assert str(local.build_poll(job).url) == f"{LOCAL}/api/v1/videos/{JOB_ID}"
    assert str(local.build_models().url) == f"{LOCAL}/api/v1/videos/models"
    assert local.is_api_url(f"{LOCAL}/api/v1/videos/{JOB_ID}/content?index=0")
    assert not local.is_api_url(CONTENT_0)


def test_build_poll_from_a_stored_id_quotes_it(dialect: OpenRouter) -> None:
    assert str(dialect.build_poll(dialect.job_for_id(JOB_ID)).url) == JOB_URL
    assert str(dialect.build_poll(dialect.job_for_id("../x")).url).endswith("/api/v1/videos/..%2Fx")


def test_parse_poll_completed(dialect: OpenRouter) -> None:
    previous = _submitted(dialect)
    job = _polled(
        dialect,
        previous,
        status="completed",
        generation_id="gen-9",
        unsigned_urls=[CONTENT_0, CONTENT_1],
        usage={"cost": 0.05, "is_byok": False},
    )
    assert job.status is JobStatus.SUCCEEDED
    assert job.done
    assert job.artifacts == [
        Artifact(url=CONTENT_0, index=0, media_type="video/mp4"),
        Artifact(url=CONTENT_1, index=1, media_type="video/mp4"),
    ]
    assert all(dialect.is_api_url(a.url) for a in job.artifacts)
    assert job.cost == 0.05
    assert job.usage == {"cost": 0.05, "is_byok": False}
    assert job.error is None
    assert (job.kind, job.model) == ("video", "google/veo-3.1")
    assert job.raw["unsigned_urls"] == [CONTENT_0, CONTENT_1]


def test_parse_poll_resolves_relative_content_urls(dialect: OpenRouter) -> None:
    job = _polled(
        dialect, status="completed", unsigned_urls=[f"/api/v1/videos/{JOB_ID}/content?index=0"]
    )
    assert job.artifacts[0].url == CONTENT_0


SIGNED_0 = "https://storage.googleapis.com/or-videos/vid-abc123/0.mp4?X-Goog-Signature=ab"
SIGNED_1 = "https://storage.googleapis.com/or-videos/vid-abc123/1.mp4?X-Goog-Signature=cd"


def test_parse_poll_signed_urls_come_first_with_the_keyed_route_as_fallback(
    dialect: OpenRouter,
) -> None:
    job = _polled(
        dialect,
        status="completed",
        urls=[SIGNED_0, SIGNED_1],
        unsigned_urls=[CONTENT_0, f"/api/v1/videos/{JOB_ID}/content?index=1"],
        expires_at="2026-12-01T10:00:00Z",
    )
    assert job.artifacts == [
        Artifact(url=SIGNED_0, index=0, media_type="video/mp4", fallback_url=CONTENT_0),
        Artifact(url=SIGNED_1, index=1, media_type="video/mp4", fallback_url=CONTENT_1),
    ]
    assert not any(dialect.is_api_url(a.url) for a in job.artifacts)
    assert all(a.fallback_url and dialect.is_api_url(a.fallback_url) for a in job.artifacts)
    assert job.expires_at == datetime(2026, 12, 1, 10, tzinfo=timezone.utc)


def test_parse_poll_lists_of_different_lengths_keep_every_output(dialect: OpenRouter) -> None:
    more_signed = _polled(
        dialect, status="completed", urls=[SIGNED_0, SIGNED_1], unsigned_urls=[CONTENT_0]
    )
    assert [(a.url, a.fallback_url) for a in more_signed.artifacts] == [
        (SIGNED_0, CONTENT_0),
        (SIGNED_1, None),
    ]
    more_keyed = _polled(
        dialect, status="completed", urls=[SIGNED_0], unsigned_urls=[CONTENT_0, CONTENT_1]
    )
    assert [(a.url, a.fallback_url) for a in more_keyed.artifacts] == [
        (SIGNED_0, CONTENT_0),
        (CONTENT_1, None),
    ]


def test_parse_poll_without_signed_urls_has_no_fallback(dialect: OpenRouter) -> None:
    job = _polled(dialect, status="completed", unsigned_urls=[CONTENT_0])
    assert job.artifacts[0].fallback_url is None
    assert job.expires_at is None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"urls": SIGNED_0}, "urls"),
        ({"urls": [SIGNED_0, 7]}, "urls[1]"),
        ({"urls": ["https://[bad"]}, "urls[0]"),
        ({"expires_at": "next week"}, "expires_at"),
    ],
)
def test_parse_poll_signed_urls_out_of_shape(
    dialect: OpenRouter, extra: dict[str, Any], field: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        _polled(dialect, status="completed", unsigned_urls=[CONTENT_0], **extra)
    assert info.value.field == field


def test_signed_urls_survive_to_dict_and_job_from_dict(dialect: OpenRouter) -> None:
    job = _polled(
        dialect,
        status="completed",
        urls=[SIGNED_0],
        unsigned_urls=[CONTENT_0],
        expires_at=1796126400,
    )
    with mj.Client("openrouter", api_key="k") as client:
        handle = client.job_from_dict(job.model_dump(mode="json"))
        again = client.job_from_dict(json.loads(json.dumps(handle.to_dict())))
    assert again.artifacts == job.artifacts
    assert again.expires_at == job.expires_at == datetime.fromtimestamp(1796126400, timezone.utc)


def test_parse_poll_integer_and_null_cost(dialect: OpenRouter) -> None:
    assert _polled(dialect, status="completed", usage={"cost": 2, "is_byok": True}).cost == 2.0
    byok = _polled(dialect, status="completed", usage={"cost": None, "is_byok": True})
    assert byok.cost is None
    assert byok.usage == {"cost": None, "is_byok": True}


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("failed", JobStatus.FAILED),
        ("cancelled", JobStatus.CANCELLED),
        ("expired", JobStatus.EXPIRED),
    ],
)
def test_parse_poll_error_string(dialect: OpenRouter, raw: str, status: JobStatus) -> None:
    job = _polled(dialect, status=raw, error="content policy violation")
    assert job.status is status
    assert job.done
    assert job.error == JobErrorInfo(message="content policy violation", code=None)
    assert job.artifacts == []


def test_parse_poll_keeps_the_previous_poll_url_when_none_is_sent(dialect: OpenRouter) -> None:
    previous = _submitted(dialect, polling_url=f"{JOB_URL}?view=full")
    response = _response(200, {"id": JOB_ID, "status": "in_progress"})
    job = dialect.parse_poll(response, previous=previous)
    assert job.poll_url == f"{JOB_URL}?view=full"
    assert job.status is JobStatus.RUNNING


def test_parse_poll_keeps_kind_and_model_of_a_stored_id(dialect: OpenRouter) -> None:
    previous = dialect.job_for_id(JOB_ID, kind="video", model="kling/v2")
    job = dialect.parse_poll(_response(200, {"id": JOB_ID, "status": "pending"}), previous=previous)
    assert (job.kind, job.model) == ("video", "kling/v2")


# ----------------------------------------------------------------------------------- statuses

DOCUMENTED = {
    "pending": JobStatus.QUEUED,
    "in_progress": JobStatus.RUNNING,
    "completed": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "expired": JobStatus.EXPIRED,
}


def test_status_table_maps_every_documented_status() -> None:
    for raw, expected in DOCUMENTED.items():
        assert OpenRouter.status_table[raw] is expected, raw
    assert set(OpenRouter.status_table.values()) == set(JobStatus)


@pytest.mark.parametrize(("raw", "expected"), sorted(DOCUMENTED.items()))
def test_parse_poll_normalizes_each_status(
    dialect: OpenRouter, raw: str, expected: JobStatus
) -> None:
    job = _polled(dialect, status=raw)
    assert job.status is expected
    assert job.raw_status == raw


# ------------------------------------------------------------------------------------- errors


def test_submit_refused_for_credits(dialect: OpenRouter) -> None:
    body = {"error": {"code": 402, "message": "Insufficient credits"}}
    response = _response(402, body, method="POST", url=f"{API}/api/v1/videos")
    with pytest.raises(PaymentRequiredError, match="Insufficient credits"):
        dialect.parse_submit(response, kind="video", model="m")


@pytest.mark.parametrize(
    "content", [b"<html>gateway</html>", b"", b'["not", "an", "object"]', b'{"id": ']
)
def test_malformed_bodies_are_protocol_errors(dialect: OpenRouter, content: bytes) -> None:
    with pytest.raises(ProtocolError, match="openrouter"):
        dialect.parse_poll(_response(200, content=content), previous=dialect.job_for_id(JOB_ID))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"polling_url": JOB_URL, "status": "pending"}, "id"),
        ({"id": JOB_ID, "polling_url": JOB_URL}, "status"),
        ({"id": None, "status": "pending"}, "id"),
        ({"id": 42, "status": "pending"}, "id"),
        ({"id": JOB_ID, "status": 3}, "status"),
        ({"id": JOB_ID, "status": "pending", "polling_url": ["x"]}, "polling_url"),
        ({"id": JOB_ID, "status": "completed", "unsigned_urls": CONTENT_0}, "unsigned_urls"),
        ({"id": JOB_ID, "status": "completed", "unsigned_urls": [0]}, "unsigned_urls[0]"),
        ({"id": JOB_ID, "status": "completed", "usage": [0.05]}, "usage"),
        ({"id": JOB_ID, "status": "completed", "usage": {"cost": "0.05"}}, "cost"),
        ({"id": JOB_ID, "status": "completed", "usage": {"cost": True}}, "cost"),
    ],
)
def test_bodies_out_of_shape_name_the_field(
    dialect: OpenRouter, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        dialect.parse_poll(_response(200, body), previous=dialect.job_for_id(JOB_ID))
    assert info.value.field == field
    assert info.value.provider == "openrouter"
    with pytest.raises(ProtocolError) as info:
        dialect.parse_submit(_response(202, body, method="POST"), kind="video", model="m")
    assert info.value.field == field


# ------------------------------------------------------------------------------------ models

MODEL_ENTRY = {
    "id": "google/veo-3.1",
    "canonical_slug": "google/veo-3.1",
    "name": "Veo 3.1",
    "created": 1760000000,
    "supported_durations": [4, 6, 8],
    "supported_resolutions": ["720p", "1080p"],
    "supported_aspect_ratios": ["16:9", "9:16"],
    "supported_frame_images": ["first_frame", "last_frame"],
    "supported_sizes": None,
    "generate_audio": True,
    "seed": True,
    "creativity": None,
    "upscale_factor": None,
    "allowed_passthrough_parameters": [],
    "pricing_skus": {"per_second": "0.50"},
}


def test_build_models(dialect: OpenRouter) -> None:
    request = dialect.build_models()
    assert request.method == "GET"
    assert str(request.url) == f"{API}/api/v1/videos/models"
    assert "authorization" not in request.headers


def test_parse_models(dialect: OpenRouter) -> None:
    second = {**MODEL_ENTRY, "id": "kling/v2", "name": "Kling"}
    response = _response(200, {"data": [MODEL_ENTRY, second]}, url=f"{API}/api/v1/videos/models")
    models = dialect.parse_models(response)
    assert [m.id for m in models] == ["google/veo-3.1", "kling/v2"]
    assert models[0] == ModelInfo(
        id="google/veo-3.1",
        name="Veo 3.1",
        kinds=("video",),
        durations=(4, 6, 8),
        resolutions=("720p", "1080p"),
        aspect_ratios=("16:9", "9:16"),
        sizes=(),
        raw=MODEL_ENTRY,
    )
    assert models[1].name == "Kling"
    assert models[1].raw == second
    with pytest.raises(ValueError):
        models[0].id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({**MODEL_ENTRY, "id": None}, "data[1].id"),
        ({**MODEL_ENTRY, "name": 3}, "data[1].name"),
        ({**MODEL_ENTRY, "supported_durations": "4,6"}, "data[1].supported_durations"),
        ({**MODEL_ENTRY, "supported_durations": [4, "6"]}, "data[1].supported_durations[1]"),
        ({**MODEL_ENTRY, "supported_durations": [True]}, "data[1].supported_durations[0]"),
        ({**MODEL_ENTRY, "supported_sizes": [1280]}, "data[1].supported_sizes[0]"),
    ],
)
def test_parse_models_entry_out_of_shape_names_entry_and_field(
    dialect: OpenRouter, entry: dict[str, Any], field: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        dialect.parse_models(_response(200, {"data": [MODEL_ENTRY, entry]}))
    assert info.value.field == field


def test_parse_models_empty_list(dialect: OpenRouter) -> None:
    assert dialect.parse_models(_response(200, {"data": []})) == []


@pytest.mark.parametrize(
    "body", [{}, {"data": None}, {"data": {"id": "x"}}, {"data": ["google/veo-3.1"]}]
)
def test_parse_models_out_of_shape(dialect: OpenRouter, body: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        dialect.parse_models(_response(200, body))
    assert info.value.field == "data"


def test_parse_models_error_status(dialect: OpenRouter) -> None:
    body = {"error": {"code": 401, "message": "No auth credentials found"}}
    with pytest.raises(AuthenticationError, match="No auth credentials found"):
        dialect.parse_models(_response(401, body))


# ----------------------------------------------------------------------------------- content


def test_build_content_rebuilds_the_content_route_from_the_id(dialect: OpenRouter) -> None:
    job = dialect.job_for_id(JOB_ID)
    stale = Artifact(url="https://old-cdn.example/v.mp4?sig=1", index=1, media_type="video/mp4")
    request = dialect.build_content(job, stale)
    assert request is not None
    assert request.method == "GET"
    assert str(request.url) == CONTENT_1
    assert "authorization" not in request.headers


def test_build_content_does_not_repeat_the_refused_url(dialect: OpenRouter) -> None:
    job = dialect.job_for_id(JOB_ID)
    assert dialect.build_content(job, Artifact(url=CONTENT_0, index=0)) is None


def test_build_content_on_base_url() -> None:
    local = OpenRouter(base_url=LOCAL)
    request = local.build_content(local.job_for_id(JOB_ID), Artifact(url=CONTENT_0, index=0))
    assert request is not None
    assert str(request.url) == f"{LOCAL}/api/v1/videos/{JOB_ID}/content?index=0"
