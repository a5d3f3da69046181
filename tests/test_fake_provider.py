"""The in-process fake: raw HTTP against FakeProvider.handle, checking every wire shape."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from mediajobs.testing import (
    DEFAULT_API_ORIGIN,
    DEFAULT_STORAGE_ORIGIN,
    FakeClock,
    FakeProvider,
    Scenario,
)

BEARER = {"Authorization": "Bearer test-key"}
SUBMIT = {
    "therouter": "/v1/images/generations?async=true",
    "worldrouter": "/v1/images/generation_tasks",
    "openrouter": "/api/v1/videos",
    "onerouter": "/v1/images/generations",
}
PROVIDERS = sorted(SUBMIT)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> FakeProvider:
    return FakeProvider(clock=clock)


@pytest.fixture
def api(fake: FakeProvider) -> Iterator[httpx.Client]:
    with httpx.Client(
        transport=fake.transport(), base_url=fake.api_origin, headers=BEARER
    ) as client:
        yield client


@pytest.fixture
def anon(fake: FakeProvider) -> Iterator[httpx.Client]:
    """A client without credentials, as downloads from storage must be."""
    with httpx.Client(transport=fake.transport()) as client:
        yield client


def submit(
    api: httpx.Client,
    provider: str,
    *,
    prompt: str = "a red fox",
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> httpx.Response:
    body: dict[str, Any] = {"model": "test-model", **fields}
    if provider == "onerouter":
        body["content"] = [{"type": "text", "text": prompt}]
    else:
        body["prompt"] = prompt
    return api.post(SUBMIT[provider], json=body, headers=headers)


def data(provider: str, response: httpx.Response) -> dict[str, Any]:
    """The job object of an answer (OneRouter wraps it in an envelope)."""
    payload: dict[str, Any] = response.json()
    return payload["data"] if provider == "onerouter" else payload


def job_id(provider: str, response: httpx.Response) -> str:
    body = data(provider, response)
    return str(body.get("task_id") or body["id"])


def poll(api: httpx.Client, fake: FakeProvider, jid: str) -> httpx.Response:
    return api.get(fake.jobs[jid].poll_path)


def statuses(api: httpx.Client, fake: FakeProvider, provider: str, jid: str, n: int) -> list[str]:
    return [data(provider, poll(api, fake, jid))["status"] for _ in range(n)]


def no_nulls(value: Any) -> bool:
    if isinstance(value, dict):
        return all(v is not None and no_nulls(v) for v in value.values())
    if isinstance(value, list):
        return all(no_nulls(v) for v in value)
    return True


# ------------------------------------------------------------------------------- TheRouter


@pytest.mark.parametrize(
    ("path", "prefix", "obj"),
    [
        ("/v1/images/generations?async=true", "img_", "image_job"),
        ("/v1/videos", "vid_", "video_job"),
        ("/v1/audio/speech?async=true", "aud_", "audio_job"),
    ],
)
def test_therouter_submit_shape(
    api: httpx.Client, fake: FakeProvider, path: str, prefix: str, obj: str
) -> None:
    response = api.post(path, json={"model": "m", "prompt": "p"})
    assert response.status_code == 202
    body = response.json()
    assert body["id"].startswith(prefix)
    assert body["object"] == obj
    assert body["status"] == "queued"
    assert body["polling_url"] == f"{DEFAULT_API_ORIGIN}/v1/jobs/{body['id']}"
    assert isinstance(body["created_at"], int)
    assert body["expires_at"] == body["created_at"] + 7 * 24 * 3600


def test_therouter_iso_expires_at(api: httpx.Client, fake: FakeProvider) -> None:
    fake.scenario = Scenario(therouter_iso_expires_at=True)
    expires = submit(api, "therouter").json()["expires_at"]
    assert isinstance(expires, str)
    assert expires.endswith("Z")


@pytest.mark.parametrize(
    ("path", "files", "kind"),
    [
        (
            "/v1/images/edits?async=true",
            {"image": ("in.png", b"\x89PNG" * 10, "image/png")},
            "image_edit",
        ),
        (
            "/v1/audio/transcriptions?async=true",
            {"file": ("a.mp3", b"ID3" * 7, "audio/mpeg")},
            "transcription",
        ),
    ],
)
def test_therouter_multipart_submits_are_parsed(
    api: httpx.Client, fake: FakeProvider, path: str, files: Any, kind: str
) -> None:
    response = api.post(path, data={"model": "m", "prompt": "make it blue"}, files=files)
    assert response.status_code == 202
    recorded = fake.requests[-1]
    assert recorded.form == {"model": "m", "prompt": "make it blue"}
    ((name, (_, content, _)),) = files.items()
    assert recorded.files == {name: len(content)}
    assert fake.jobs[response.json()["id"]].kind == kind


def test_therouter_multipart_without_file_is_400(api: httpx.Client) -> None:
    response = api.post("/v1/images/edits?async=true", data={"model": "m", "prompt": "x"})
    assert response.status_code == 400
    assert "image" in response.json()["error"]["message"]


def test_therouter_requires_async_query(api: httpx.Client) -> None:
    response = api.post("/v1/audio/speech", json={"model": "m", "input": "hi"})
    assert response.status_code == 400
    assert "async=true" in response.json()["error"]["message"]


def test_therouter_progression_and_success_shape(api: httpx.Client, fake: FakeProvider) -> None:
    jid = submit(api, "therouter", n=2).json()["id"]
    assert statuses(api, fake, "therouter", jid, 2) == ["queued", "in_progress"]
    body = poll(api, fake, jid).json()
    assert body["status"] == "succeeded"
    assert body["error"] is None
    assert isinstance(body["completed_at"], int)
    assert body["content_url"] == f"{DEFAULT_API_ORIGIN}/v1/jobs/{jid}/content"
    assert body["image_count"] == 2
    assert [url.split("?")[0] for url in body["unsigned_urls"]] == [
        f"{DEFAULT_STORAGE_ORIGIN}/therouter-media/{jid}/{i}.png" for i in range(2)
    ]
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "cost_credits"}
    assert fake.jobs[jid].polls == 3


def test_therouter_result_data_shape(
    api: httpx.Client, fake: FakeProvider, anon: httpx.Client
) -> None:
    fake.scenario = Scenario(steps=(), therouter_shape="result_data")
    jid = submit(api, "therouter").json()["id"]
    body = poll(api, fake, jid).json()
    assert "unsigned_urls" not in body
    (item,) = body["result"]["data"]
    assert anon.get(item["url"]).content == fake.artifact_bytes(jid, 0)


def test_therouter_failure_is_an_error_object(api: httpx.Client, fake: FakeProvider) -> None:
    fake.scenario = Scenario(steps=(), outcome="failed", error_message="nsfw", error_code="policy")
    jid = submit(api, "therouter").json()["id"]
    body = poll(api, fake, jid).json()
    assert (body["status"], body["error"]) == ("failed", {"message": "nsfw", "code": "policy"})
    assert "unsigned_urls" not in body


def test_therouter_cancel(api: httpx.Client, fake: FakeProvider) -> None:
    fake.scenario = Scenario(steps=("queued", "running"), polls_per_step=10)
    jid = submit(api, "therouter").json()["id"]
    cancelled = api.post(f"/v1/jobs/{jid}/cancel")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert poll(api, fake, jid).json()["status"] == "cancelled"
    again = api.post(f"/v1/jobs/{jid}/cancel")
    assert again.status_code == 409


def test_therouter_content_redirects_to_a_fresh_presigned_url(
    api: httpx.Client, fake: FakeProvider, anon: httpx.Client
) -> None:
    fake.scenario = Scenario(steps=(), artifact_count=2)
    jid = submit(api, "therouter").json()["id"]
    assert api.get(f"/v1/jobs/{jid}/content").status_code == 400  # not polled to success yet
    poll(api, fake, jid)
    redirect = api.get(f"/v1/jobs/{jid}/content", params={"index": 1})
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert location.startswith(f"{DEFAULT_STORAGE_ORIGIN}/therouter-media/{jid}/1.png?X-Expires=")
    assert anon.get(location).content == fake.artifact_bytes(jid, 1)
    assert api.get(f"/v1/jobs/{jid}/content", params={"index": 2}).status_code == 404
    assert anon.get(f"{DEFAULT_API_ORIGIN}/v1/jobs/{jid}/content").status_code == 401


# ------------------------------------------------------------------------------ WorldRouter


def test_worldrouter_image_task(api: httpx.Client, fake: FakeProvider, anon: httpx.Client) -> None:
    response = submit(api, "worldrouter", n=2, output_format="webp")
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("imgtask_")
    assert body["task_id"] == body["id"]
    assert body["object"] == "image.generation_task"
    assert isinstance(body["created"], int)
    assert body["created_at"].endswith("+00:00")
    assert body["status"] == "queued"
    jid = body["id"]
    assert fake.jobs[jid].poll_path == f"/v1/images/generation_tasks/{jid}"
    assert statuses(api, fake, "worldrouter", jid, 3) == ["queued", "in_progress", "completed"]
    done = poll(api, fake, jid).json()
    assert set(done["usage"]) == {"input_tokens", "output_tokens", "total_tokens"}
    urls = [item["url"] for item in done["data"]]
    assert len(urls) == 2
    assert all(".webp?" in url for url in urls)
    assert anon.get(urls[1]).headers["Content-Type"] == "image/webp"


def test_worldrouter_failure_and_response_format(api: httpx.Client, fake: FakeProvider) -> None:
    assert submit(api, "worldrouter", response_format="b64_json").status_code == 400
    fake.scenario = Scenario(steps=(), outcome="failed")
    jid = submit(api, "worldrouter").json()["id"]
    error = poll(api, fake, jid).json()["error"]
    assert set(error) == {"code", "message"}


def test_worldrouter_video_route(api: httpx.Client, fake: FakeProvider) -> None:
    fake.scenario = Scenario(steps=("running",))
    body = api.post(
        "/v1/videos/generations", json={"model": "grok-video", "prompt": "p", "duration": 5}
    ).json()
    jid = body["task_id"]
    assert api.get(f"/v1/videos/generations/{jid}").json()["status"] == "in_progress"
    done = api.get(f"/v1/videos/generations/{jid}").json()
    assert done["status"] == "succeeded"
    assert ".mp4?" in done["content"]["video_url"]
    assert api.get(f"/v1/images/generation_tasks/{jid}").status_code == 404


# ------------------------------------------------------------------------------- OpenRouter


def test_openrouter_video_lifecycle(
    api: httpx.Client, fake: FakeProvider, anon: httpx.Client
) -> None:
    response = submit(api, "openrouter", duration=8)
    assert response.status_code == 202
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"id", "polling_url", "status", "generation_id"}
    assert body["status"] == "pending"
    jid = body["id"]
    assert body["polling_url"] == f"{DEFAULT_API_ORIGIN}/api/v1/videos/{jid}"
    assert api.get(f"/api/v1/videos/{jid}/content", params={"index": 0}).status_code == 400
    assert statuses(api, fake, "openrouter", jid, 2) == ["pending", "in_progress"]
    done = api.get(f"/api/v1/videos/{jid}").json()
    assert no_nulls(done)
    assert done["status"] == "completed"
    assert done["unsigned_urls"] == [f"{DEFAULT_API_ORIGIN}/api/v1/videos/{jid}/content?index=0"]
    assert done["usage"] == {"cost": 0.05, "is_byok": False}
    assert "error" not in done

    denied = anon.get(done["unsigned_urls"][0])
    assert denied.status_code == 401
    assert denied.json() == {"error": {"code": 401, "message": denied.json()["error"]["message"]}}
    video = api.get(done["unsigned_urls"][0], headers={"Accept": "application/octet-stream"})
    assert video.headers["Content-Type"] == "video/mp4"
    assert video.content == fake.artifact_bytes(jid, 0)


@pytest.mark.parametrize("outcome", ["failed", "cancelled", "expired"])
def test_openrouter_error_is_a_string(api: httpx.Client, fake: FakeProvider, outcome: str) -> None:
    fake.scenario = Scenario(steps=(), outcome=outcome)
    jid = submit(api, "openrouter").json()["id"]
    done = api.get(f"/api/v1/videos/{jid}").json()
    assert done["status"] == outcome
    assert isinstance(done["error"], str)
    assert no_nulls(done)


def test_openrouter_signed_urls_need_no_key_and_expire(
    api: httpx.Client, fake: FakeProvider, anon: httpx.Client
) -> None:
    fake.scenario = Scenario(steps=(), openrouter_shape="signed_urls", artifact_count=2)
    jid = submit(api, "openrouter").json()["id"]
    done = api.get(f"/api/v1/videos/{jid}").json()
    assert done["status"] == "completed"
    assert no_nulls(done)
    signed, unsigned = done["urls"], done["unsigned_urls"]
    assert len(signed) == len(unsigned) == 2
    expires = datetime.fromisoformat(done["expires_at"].replace("Z", "+00:00"))
    assert expires > datetime.now(timezone.utc) + timedelta(days=6)
    for index, url in enumerate(signed):
        assert url.startswith(f"{DEFAULT_STORAGE_ORIGIN}/openrouter-media/{jid}/{index}.mp4?")
        video = anon.get(url)  # no key needed
        assert (video.status_code, video.headers["Content-Type"]) == (200, "video/mp4")
        assert video.content == fake.artifact_bytes(jid, index)
        # the unsigned twin serves the same bytes, with the key only
        assert anon.get(unsigned[index]).status_code == 401
        assert api.get(unsigned[index]).content == video.content
    # the storage verifies the signature and refuses credentials
    tampered = signed[0].replace("X-Signature=", "X-Signature=0")
    assert anon.get(tampered).status_code == 403
    assert api.get(signed[0]).status_code == 400


def test_openrouter_expired_signed_urls_leave_the_unsigned_ones(
    api: httpx.Client, fake: FakeProvider, anon: httpx.Client
) -> None:
    fake.scenario = Scenario.from_preset("signed-urls").merged({"expired_urls": True, "steps": ()})
    jid = submit(api, "openrouter").json()["id"]
    stale = api.get(f"/api/v1/videos/{jid}").json()
    refused = anon.get(stale["urls"][0])
    assert (refused.status_code, b"Request has expired" in refused.content) == (403, True)
    assert api.get(stale["unsigned_urls"][0]).content == fake.artifact_bytes(jid, 0)
    fresh = api.get(f"/api/v1/videos/{jid}").json()["urls"][0]
    assert anon.get(fresh).content == fake.artifact_bytes(jid, 0)


def test_openrouter_default_shape_has_no_signed_urls(api: httpx.Client, fake: FakeProvider) -> None:
    fake.scenario = Scenario(steps=())
    jid = submit(api, "openrouter").json()["id"]
    assert set(api.get(f"/api/v1/videos/{jid}").json()) == {
        "id",
        "polling_url",
        "status",
        "generation_id",
        "unsigned_urls",
        "usage",
    }
    with pytest.raises(ValueError, match="openrouter_shape"):
        Scenario(openrouter_shape="both")  # type: ignore[arg-type]


def test_openrouter_relative_polling_url(api: httpx.Client, fake: FakeProvider) -> None:
    fake.scenario = Scenario(relative_polling_url=True)
    body = submit(api, "openrouter").json()
    assert body["polling_url"] == f"/api/v1/videos/{body['id']}"


def test_openrouter_validation_errors(api: httpx.Client) -> None:
    bad = api.post("/api/v1/videos", json={"prompt": "no model"})
    assert bad.status_code == 400
    assert set(bad.json()["error"]) == {"code", "message"}
    assert submit(api, "openrouter", duration="8").status_code == 400
    assert submit(api, "openrouter", callback_url="http://plain").status_code == 400


def test_openrouter_job_keeps_its_callback_url(api: httpx.Client, fake: FakeProvider) -> None:
    hook = "https://app.example/hooks/video"
    with_hook = submit(api, "openrouter", callback_url=hook).json()["id"]
    without = submit(api, "openrouter").json()["id"]
    assert (fake.jobs[with_hook].callback_url, fake.jobs[without].callback_url) == (hook, None)


def test_openrouter_models(api: httpx.Client) -> None:
    response = api.get("/api/v1/videos/models")
    assert response.status_code == 200
    models = response.json()["data"]
    assert models
    for model in models:
        assert isinstance(model["id"], str)
        assert isinstance(model["canonical_slug"], str)
        assert isinstance(model["created"], int)
        assert all(isinstance(p, str) for p in model["allowed_passthrough_parameters"])
        for key in ("generate_audio", "seed", "creativity", "upscale_factor"):
            assert key in model
        for key in ("durations", "resolutions", "aspect_ratios", "frame_images", "sizes"):
            assert f"supported_{key}" in model
        assert all(isinstance(v, str) for v in model["pricing_skus"].values())


# -------------------------------------------------------------------------------- OneRouter


def test_onerouter_video_task(api: httpx.Client, fake: FakeProvider, anon: httpx.Client) -> None:
    response = submit(api, "onerouter", headers={"Authorization": "test-key"}, duration=5)
    assert response.status_code == 200
    envelope = response.json()
    assert (envelope["code"], envelope["message"]) == (200, "success")
    task = envelope["data"]
    assert task["task_id"].startswith("cgt-")
    assert (task["object"], task["status"]) == ("video", "created")
    assert task["urls"] == {"get": f"{DEFAULT_API_ORIGIN}/v1/videos/tasks/{task['task_id']}"}
    assert len(task["created_at"]) == len("2024-01-01 12:00:00.00")
    jid = task["task_id"]
    first = api.get(f"/v1/videos/tasks/{jid}").json()["data"]
    assert (first["status"], first["fail_reason"], first["start_time"]) == ("created", "", 0)
    assert first["outputs"] == []
    assert api.get(f"/v1/videos/tasks/{jid}").json()["data"]["status"] == "processing"
    done = api.get(f"/v1/videos/tasks/{jid}").json()["data"]
    assert done["status"] == "completed"
    assert done["fail_reason"] == ""
    assert done["submit_time"] <= done["start_time"] <= done["finish_time"]
    assert done["cost"] == {"total_cost": 0.05}
    (url,) = done["outputs"]
    assert anon.get(url).content == fake.artifact_bytes(jid, 0)


@pytest.mark.parametrize(
    ("model", "extra", "kind"),
    [
        ("bytedance/seedance", {}, "video"),
        ("kling-v2", {}, "video"),
        ("gpt-image-2", {}, "image"),
        ("gpt-image-2", {"duration": 4}, "video"),
    ],
)
def test_onerouter_object_rule(
    api: httpx.Client, model: str, extra: dict[str, Any], kind: str
) -> None:
    task = submit(api, "onerouter", model=model, **extra).json()["data"]
    assert task["object"] == kind
    key = "get" if kind == "video" else "query"
    assert task["urls"][key].endswith(f"/v1/{kind}s/tasks/{task['task_id']}")


def test_onerouter_image_task_is_polled_on_the_image_path(api: httpx.Client) -> None:
    jid = submit(api, "onerouter", model="gpt-image-2").json()["data"]["task_id"]
    assert api.get(f"/v1/images/tasks/{jid}").json()["code"] == 200
    wrong = api.get(f"/v1/videos/tasks/{jid}")
    assert (wrong.status_code, wrong.json()["code"]) == (200, 404)


def test_onerouter_failure_and_shapes(api: httpx.Client, fake: FakeProvider) -> None:
    fake.scenario = Scenario(steps=(), outcome="failed", raw_statuses={"failed": "error"})
    jid = submit(api, "onerouter", model="veo").json()["data"]["task_id"]
    failed = poll(api, fake, jid).json()["data"]
    assert (failed["status"], failed["fail_reason"]) == ("error", fake.scenario.error_message)
    fake.scenario = Scenario(steps=(), onerouter_shape="urls_video")
    jid = submit(api, "onerouter", model="veo").json()["data"]["task_id"]
    done = poll(api, fake, jid).json()["data"]
    assert done["outputs"] == []
    assert done["urls"]["video"].startswith(DEFAULT_STORAGE_ORIGIN)


def test_onerouter_envelope_errors(api: httpx.Client, fake: FakeProvider) -> None:
    fake.scenario = Scenario(envelope_error=500)
    jid = submit(api, "onerouter", model="veo").json()["data"]["task_id"]
    for _ in range(2):
        answer = poll(api, fake, jid)
        assert answer.status_code == 200
        assert answer.json() == {"code": 500, "message": answer.json()["message"], "data": None}


def test_onerouter_injected_errors_are_envelopes_unless_asked(
    api: httpx.Client, fake: FakeProvider
) -> None:
    fake.scenario = Scenario(poll_errors={1: 503}, retry_after="2")
    jid = submit(api, "onerouter", model="veo").json()["data"]["task_id"]
    answer = poll(api, fake, jid)
    assert (answer.status_code, answer.json()["code"]) == (200, 503)
    assert answer.headers["Retry-After"] == "2"
    fake.scenario = Scenario(poll_errors={1: 502}, onerouter_http_errors=True)
    jid = submit(api, "onerouter", model="veo").json()["data"]["task_id"]
    answer = poll(api, fake, jid)
    assert (answer.status_code, answer.json()["code"]) == (502, 502)


def test_images_generations_without_async_is_onerouter(api: httpx.Client) -> None:
    answer = api.post("/v1/images/generations", json={"model": "m", "prompt": "p"})
    assert answer.status_code == 200
    assert answer.json()["code"] == 400
    assert "async=true" in answer.json()["message"]


# ------------------------------------------------------------------------------------ auth


def rejected(provider: str, answer: httpx.Response) -> bool:
    """Whether an answer is the provider's own 401 shape."""
    body = answer.json()
    if provider == "onerouter":
        return (answer.status_code, body["code"], body["data"]) == (200, 401, None)
    if provider == "openrouter":
        return (answer.status_code, body["error"]["code"]) == (401, 401)
    return answer.status_code == 401 and body["error"]["code"] == "invalid_api_key"


MALFORMED_AUTH = (None, "", "Bearer", "Bearer ", "Basic dGVzdA==", "Bearer two words", "test-key")


@pytest.mark.parametrize(
    ("provider", "auth"),
    [
        (provider, auth)
        for provider in PROVIDERS
        for auth in (*MALFORMED_AUTH, "Bearer wrong")
        if (provider, auth) != ("onerouter", "test-key")  # OneRouter accepts the raw key
    ],
)
def test_strict_key_rejection_shapes(clock: FakeClock, provider: str, auth: str | None) -> None:
    fake = FakeProvider(clock, api_key="test-key")
    headers = {"Authorization": auth} if auth is not None else {}
    with httpx.Client(transport=fake.transport(), base_url=fake.api_origin, headers=headers) as c:
        answer = submit(c, provider)
    assert rejected(provider, answer)
    assert not fake.jobs
    assert fake.submissions == 0
    recorded = fake.requests[-1]
    assert recorded.authorized is (auth is not None)
    assert recorded.status == answer.status_code


@pytest.mark.parametrize("provider", PROVIDERS)
def test_any_key_is_accepted_by_default(fake: FakeProvider, provider: str) -> None:
    assert not fake.strict_key
    assert fake.api_key == "test-key"  # still a key that works, for examples and the demo
    keys = ["Bearer sk-live-my-own-app-key", "Bearer x"]
    if provider == "onerouter":
        keys.append("sk-raw-key-without-scheme")
    for auth in keys:
        with httpx.Client(
            transport=fake.transport(), base_url=fake.api_origin, headers={"Authorization": auth}
        ) as client:
            answer = submit(client, provider)
            assert answer.status_code in (200, 202), auth
            jid = job_id(provider, answer)
            assert poll(client, fake, jid).status_code == 200
    assert fake.submissions == len(keys)


@pytest.mark.parametrize(
    ("provider", "auth"),
    [
        (provider, auth)
        for provider in PROVIDERS
        for auth in MALFORMED_AUTH
        if (provider, auth) != ("onerouter", "test-key")
    ],
)
def test_any_key_mode_still_rejects_missing_or_malformed_auth(
    fake: FakeProvider, provider: str, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth is not None else {}
    with httpx.Client(transport=fake.transport(), base_url=fake.api_origin, headers=headers) as c:
        assert rejected(provider, submit(c, provider))
    assert not fake.jobs


def test_custom_api_key_is_strict(clock: FakeClock) -> None:
    fake = FakeProvider(clock, api_key="sk-other")
    assert fake.strict_key
    with httpx.Client(transport=fake.transport(), base_url=fake.api_origin) as client:
        ok = submit(client, "openrouter", headers={"Authorization": "Bearer sk-other"})
        assert ok.status_code == 202
        assert submit(client, "openrouter", headers=BEARER).status_code == 401
        raw = submit(client, "onerouter", headers={"Authorization": "sk-other"})
        assert raw.json()["code"] == 200
        assert (
            submit(client, "onerouter", headers={"Authorization": "sk-othe"}).json()["code"] == 401
        )
    with pytest.raises(ValueError, match="empty"):
        FakeProvider(api_key="")


# ----------------------------------------------------------------------------- progressions


RAW_WORDS = {
    "therouter": ("queued", "in_progress", "succeeded"),
    "worldrouter": ("queued", "in_progress", "completed"),
    "openrouter": ("pending", "in_progress", "completed"),
    "onerouter": ("created", "processing", "completed"),
}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_progression_by_polls(api: httpx.Client, fake: FakeProvider, provider: str) -> None:
    fake.scenario = Scenario(steps=("queued", "running"), polls_per_step=2)
    jid = job_id(provider, submit(api, provider))
    queued, running, done = RAW_WORDS[provider]
    assert statuses(api, fake, provider, jid, 6) == [queued, queued, running, running, done, done]
    assert fake.jobs[jid].status == "succeeded"


def test_progression_by_seconds(api: httpx.Client, fake: FakeProvider, clock: FakeClock) -> None:
    fake.scenario = Scenario(steps=("queued", "running"), seconds_per_step=10)
    jid = submit(api, "openrouter").json()["id"]
    seen = []
    for _ in range(3):
        seen += statuses(api, fake, "openrouter", jid, 2)
        clock.advance(10)
    assert seen == ["pending", "pending", "in_progress", "in_progress", "completed", "completed"]


def test_content_follows_the_clock_without_polls(
    api: httpx.Client, fake: FakeProvider, clock: FakeClock
) -> None:
    fake.scenario = Scenario(steps=("running",), seconds_per_step=5)
    jid = submit(api, "openrouter").json()["id"]
    clock.advance(5)
    assert api.get(f"/api/v1/videos/{jid}/content").status_code == 200


def test_unknown_outcome_stays_forever(api: httpx.Client, fake: FakeProvider) -> None:
    fake.scenario = Scenario.from_preset("unknown")
    jid = submit(api, "therouter").json()["id"]
    assert statuses(api, fake, "therouter", jid, 6)[2:] == ["mystery_state"] * 4


# ----------------------------------------------------------------------- injected failures


def test_poll_errors_and_hints(api: httpx.Client, fake: FakeProvider) -> None:
    fake.scenario = Scenario(poll_errors={2: 503, 3: 429}, retry_after="7", poll_retry_after="3")
    jid = submit(api, "therouter").json()["id"]
    answers = [poll(api, fake, jid) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 503, 429, 200, 200]
    assert [a.headers.get("Retry-After") for a in answers] == ["3", "7", "7", "3", "3"]
    assert [a.json().get("status") for a in answers] == [
        "queued",
        None,
        None,
        "in_progress",
        "succeeded",
    ]
    assert fake.jobs[jid].polls == 5
    assert fake.jobs[jid].answered == 3


def test_submit_status_creates_no_job_and_a_script_is_used_once(
    api: httpx.Client, fake: FakeProvider
) -> None:
    fake.script(Scenario(submit_status=429, retry_after="1"))
    limited = submit(api, "openrouter")
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
    assert not fake.jobs
    assert submit(api, "openrouter").status_code == 202
    assert len(fake.jobs) == 1


def test_scripts_match_model_and_provider(api: httpx.Client, fake: FakeProvider) -> None:
    fake.script(Scenario(outcome="failed", steps=()), model="bad-model", times=None)
    fake.script(Scenario(outcome="expired", steps=()), provider="worldrouter")
    ids = [
        job_id("therouter", submit(api, "therouter", model="bad-model")),
        job_id("therouter", submit(api, "therouter", model="bad-model")),
        job_id("therouter", submit(api, "therouter")),
        job_id("worldrouter", submit(api, "worldrouter")),
        job_id("worldrouter", submit(api, "worldrouter")),
    ]
    outcomes = [fake.jobs[jid].scenario.outcome for jid in ids]
    assert outcomes == ["failed", "failed", "succeeded", "expired", "succeeded"]
    with pytest.raises(ValueError):
        fake.script(Scenario(), times=0)


def test_submit_drop_after_record(api: httpx.Client, fake: FakeProvider) -> None:
    fake.scenario = Scenario(submit_drop_after_record=True)
    with pytest.raises(httpx.RemoteProtocolError):
        submit(api, "therouter", headers={"Idempotency-Key": "k-1"})
    (job,) = fake.jobs.values()
    recorded = fake.requests[-1]
    assert (recorded.job_id, recorded.status, recorded.idempotency_key) == (job.id, None, "k-1")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_repeated_idempotency_key_returns_the_first_job(
    api: httpx.Client, fake: FakeProvider, provider: str
) -> None:
    headers = {"Idempotency-Key": "order-7"}
    first = submit(api, provider, headers=headers)
    statuses(api, fake, provider, job_id(provider, first), 2)  # a replay shows the job as it is
    again = submit(api, provider, headers=headers)
    assert again.status_code == first.status_code
    assert again.headers["Idempotent-Replayed"] == "true"
    assert job_id(provider, again) == job_id(provider, first)
    assert data(provider, again)["status"] != data(provider, first)["status"]
    other = submit(api, provider, headers={"Idempotency-Key": "order-8"})
    unkeyed = [submit(api, provider), submit(api, provider)]
    assert len({job_id(provider, r) for r in (first, other, *unkeyed)}) == 4
    assert (fake.submissions, fake.replays, len(fake.jobs)) == (4, 1, 4)
    assert fake.submits_with_key("order-7") == 2
    assert fake.submits_with_key("order-7", provider) == 2
    assert fake.submits_with_key("order-7", "nobody") == 0
    assert fake.submits_with_key("order-8") == 1
    assert fake.requests[2].job_id == job_id(provider, first)


def test_idempotency_keys_are_per_provider(api: httpx.Client, fake: FakeProvider) -> None:
    headers = {"Idempotency-Key": "shared"}
    ids = {job_id(p, submit(api, p, headers=headers)) for p in PROVIDERS}
    assert len(ids) == len(PROVIDERS) == fake.submissions
    assert fake.submits_with_key("shared") == len(PROVIDERS)


def test_a_lost_submit_resent_with_its_key_finds_its_job(
    api: httpx.Client, fake: FakeProvider
) -> None:
    fake.script(Scenario(submit_drop_after_record=True))
    headers = {"Idempotency-Key": "k-lost"}
    with pytest.raises(httpx.RemoteProtocolError):
        submit(api, "openrouter", headers=headers)
    (lost,) = fake.jobs
    assert submit(api, "openrouter", headers=headers).json()["id"] == lost
    assert (fake.submissions, fake.replays) == (1, 1)


def test_a_rejected_submit_does_not_claim_its_key(api: httpx.Client, fake: FakeProvider) -> None:
    fake.script(Scenario(submit_status=503))
    headers = {"Idempotency-Key": "k-busy"}
    assert submit(api, "therouter", headers=headers).status_code == 503
    accepted = submit(api, "therouter", headers=headers)
    assert accepted.status_code == 202
    assert "Idempotent-Replayed" not in accepted.headers
    assert (fake.submissions, fake.replays, fake.submits_with_key("k-busy")) == (1, 0, 1)


def test_without_idempotency_a_retried_submit_is_a_second_job(clock: FakeClock) -> None:
    fake = FakeProvider(clock, honor_idempotency=False)
    with httpx.Client(transport=fake.transport(), base_url=fake.api_origin, headers=BEARER) as api:
        headers = {"Idempotency-Key": "same"}
        first = submit(api, "therouter", headers=headers).json()["id"]
        second = submit(api, "therouter", headers=headers).json()["id"]
    assert first != second
    assert len(fake.jobs) == 2
    assert (fake.submissions, fake.replays, fake.submits_with_key("same")) == (2, 0, 2)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_bodies(api: httpx.Client, fake: FakeProvider, provider: str) -> None:
    fake.scenario = Scenario(malformed=frozenset({"submit"}))
    with pytest.raises(json.JSONDecodeError):
        submit(api, provider).json()
    fake.scenario = Scenario(malformed=frozenset({"submit_fields", "poll"}))
    answer = data(provider, submit(api, provider))
    assert "status" not in answer
    assert not {"id", "task_id"} & set(answer)
    jid = list(fake.jobs)[-1]
    with pytest.raises(json.JSONDecodeError):
        poll(api, fake, jid).json()
    fake.scenario = Scenario(malformed=frozenset({"poll_fields"}))
    jid = job_id(provider, submit(api, provider))
    assert "status" not in data(provider, poll(api, fake, jid))


def test_malformed_content(api: httpx.Client, fake: FakeProvider, anon: httpx.Client) -> None:
    fake.scenario = Scenario(steps=(), malformed=frozenset({"content"}))
    jid = submit(api, "therouter").json()["id"]
    url = poll(api, fake, jid).json()["unsigned_urls"][0]
    assert anon.get(url).headers["Content-Type"] == "text/html"
    redirect = api.get(f"/v1/jobs/{jid}/content")
    assert (redirect.status_code, redirect.headers.get("Location")) == (302, None)


# ------------------------------------------------------------------------------- storage


@pytest.fixture
def stored(api: httpx.Client, fake: FakeProvider) -> tuple[str, str]:
    """A succeeded TheRouter job of 10 000 bytes: (job id, pre-signed URL)."""
    fake.scenario = Scenario(steps=(), artifact_size=10_000)
    jid = submit(api, "therouter").json()["id"]
    return jid, poll(api, fake, jid).json()["unsigned_urls"][0]


def s3_code(response: httpx.Response) -> str:
    assert response.headers["Content-Type"] == "application/xml"
    return response.text.split("<Code>")[1].split("</Code>")[0]


def test_presigned_url_checks(anon: httpx.Client, stored: tuple[str, str]) -> None:
    _, url = stored
    assert anon.get(url).status_code == 200
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert (anon.get(tampered).status_code, s3_code(anon.get(tampered))) == (
        403,
        "SignatureDoesNotMatch",
    )
    unsigned = anon.get(url.split("?")[0])
    assert (unsigned.status_code, s3_code(unsigned)) == (403, "AccessDenied")
    with_auth = anon.get(url, headers=BEARER)
    assert (with_auth.status_code, s3_code(with_auth)) == (400, "InvalidArgument")
    assert "Only one auth mechanism allowed" in with_auth.text
    assert anon.post(url).status_code == 405
    other = url.replace("/0.png?", "/5.png?")
    assert anon.get(other).status_code == 403  # the signature covers the path


def test_expired_urls_then_fresh_ones(
    api: httpx.Client, fake: FakeProvider, anon: httpx.Client
) -> None:
    fake.scenario = Scenario(steps=(), expired_urls=True)
    jid = submit(api, "worldrouter").json()["id"]
    expired = poll(api, fake, jid).json()["data"][0]["url"]
    answer = anon.get(expired)
    assert (answer.status_code, s3_code(answer)) == (403, "AccessDenied")
    assert "expired" in answer.text
    fresh = poll(api, fake, jid).json()["data"][0]["url"]
    assert anon.get(fresh).status_code == 200


def test_range_requests(anon: httpx.Client, fake: FakeProvider, stored: tuple[str, str]) -> None:
    jid, url = stored
    whole = fake.artifact_bytes(jid, 0)
    full = anon.get(url)
    assert (full.status_code, full.headers["Content-Length"]) == (200, "10000")
    assert full.headers["Content-Type"] == "image/png"
    part = anon.get(url, headers={"Range": "bytes=9000-"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == "bytes 9000-9999/10000"
    assert part.headers["Content-Length"] == "1000"
    assert part.content == whole[9000:]
    assert anon.get(url, headers={"Range": "bytes=10-19"}).content == whole[10:20]
    assert anon.get(url, headers={"Range": "bytes=-5"}).content == whole[-5:]
    beyond = anon.get(url, headers={"Range": "bytes=10000-"})
    assert (beyond.status_code, beyond.headers["Content-Range"]) == (416, "bytes */10000")
    head = anon.head(url)
    assert (head.headers["Content-Length"], head.content) == ("10000", b"")


def test_ignore_range(api: httpx.Client, fake: FakeProvider, anon: httpx.Client) -> None:
    fake.scenario = Scenario(steps=(), ignore_range=True)
    jid = submit(api, "therouter").json()["id"]
    url = poll(api, fake, jid).json()["unsigned_urls"][0]
    answer = anon.get(url, headers={"Range": "bytes=100-"})
    assert (answer.status_code, answer.content) == (200, fake.artifact_bytes(jid, 0))


def test_dropped_download_then_resume(
    api: httpx.Client, fake: FakeProvider, anon: httpx.Client
) -> None:
    fake.scenario = Scenario(steps=(), artifact_size=200_000, drop_download_after=70_000)
    jid = submit(api, "therouter").json()["id"]
    url = poll(api, fake, jid).json()["unsigned_urls"][0]
    with anon.stream("GET", url) as response:
        assert response.headers["Content-Length"] == "200000"
        received = read_until_cut(response)
    assert len(received) == 70_000
    rest = anon.get(url, headers={"Range": f"bytes={len(received)}-"})
    assert rest.status_code == 206
    digest = hashlib.sha256(received + rest.content).hexdigest()
    assert digest == fake.artifact_sha256(jid, 0)


def read_until_cut(response: httpx.Response) -> bytes:
    received = bytearray()
    try:
        for chunk in response.iter_bytes():
            received += chunk
    except httpx.RemoteProtocolError:
        return bytes(received)
    raise AssertionError("the download was not cut")


@pytest.mark.anyio
async def test_async_client_drop_and_download(fake: FakeProvider) -> None:
    fake.scenario = Scenario(steps=(), drop_download_after=10, download_errors={2: 503})
    async with httpx.AsyncClient(
        transport=fake.transport(), base_url=fake.api_origin, headers=BEARER
    ) as client:
        jid = (await client.post("/api/v1/videos", json={"model": "m"})).json()["id"]
        url = (await client.get(f"/api/v1/videos/{jid}")).json()["unsigned_urls"][0]
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(url)
        assert (await client.get(url)).status_code == 503
        answer = await client.get(url)
    assert answer.content == fake.artifact_bytes(jid, 0)


def test_download_errors_on_storage(
    api: httpx.Client, fake: FakeProvider, anon: httpx.Client
) -> None:
    fake.scenario = Scenario(steps=(), download_errors={1: 503}, retry_after="4")
    jid = submit(api, "therouter").json()["id"]
    url = poll(api, fake, jid).json()["unsigned_urls"][0]
    busy = anon.get(url)
    assert (busy.status_code, s3_code(busy), busy.headers["Retry-After"]) == (503, "SlowDown", "4")
    assert anon.get(url).status_code == 200


def test_big_artifacts_stream_without_memory(
    api: httpx.Client, fake: FakeProvider, anon: httpx.Client
) -> None:
    gib = 1024**3
    fake.scenario = Scenario(steps=(), artifact_size=gib)
    jid = submit(api, "therouter").json()["id"]
    url = poll(api, fake, jid).json()["unsigned_urls"][0]
    with anon.stream("GET", url) as response:
        assert response.headers["Content-Length"] == str(gib)
        first = next(response.iter_raw())
    assert first == b"".join(fake.jobs[jid].artifacts[0].body().iter_range(0, len(first)))
    with pytest.raises(ValueError):
        fake.artifact_bytes(jid, 0)


def test_artifact_content_types_by_kind(api: httpx.Client, fake: FakeProvider) -> None:
    fake.scenario = Scenario(steps=())
    speech = api.post("/v1/audio/speech?async=true", json={"model": "tts", "input": "hi"})
    audio = fake.jobs[speech.json()["id"]].artifacts[0]
    assert (audio.content_type, audio.extension) == ("audio/mpeg", ".mp3")
    files = {"file": ("a.wav", b"RIFF", "audio/wav")}
    text = api.post("/v1/audio/transcriptions?async=true", data={"model": "w"}, files=files)
    jid = text.json()["id"]
    assert json.loads(fake.artifact_bytes(jid, 0))["text"]
    fake.scenario = Scenario(content_type="image/jpeg")
    jid = submit(api, "therouter").json()["id"]
    assert fake.jobs[jid].artifacts[0].extension == ".jpg"


def test_artifact_bytes_are_deterministic_per_job_and_index(
    fake: FakeProvider, api: httpx.Client
) -> None:
    fake.scenario = Scenario(steps=(), artifact_count=2, artifact_size=100_000)
    jid = submit(api, "therouter").json()["id"]
    first, second = fake.artifact_bytes(jid, 0), fake.artifact_bytes(jid, 1)
    assert len(first) == 100_000
    assert first != second
    assert first == fake.artifact_bytes(jid, 0)
    assert fake.artifact_sha256(jid, 1) == hashlib.sha256(second).hexdigest()


# ------------------------------------------------------------------------------ recording


def test_requests_are_recorded_with_credentials_redacted(
    api: httpx.Client, fake: FakeProvider, anon: httpx.Client
) -> None:
    fake.scenario = Scenario(steps=())
    headers = {"Idempotency-Key": "idem-1", "User-Agent": "mediajobs/0.1.0"}
    jid = submit(api, "openrouter", headers=headers).json()["id"]
    api.get(f"/api/v1/videos/{jid}")
    anon.get(
        f"{DEFAULT_API_ORIGIN}/api/v1/videos/{jid}/content?index=0", headers={"Range": "bytes=0-9"}
    )
    with httpx.Client(transport=fake.transport(), base_url=fake.api_origin) as raw:
        raw.get(f"/v1/videos/tasks/{jid}", headers={"Authorization": "secret-raw"})
    submitted, polled, content, onerouter = fake.requests
    assert (submitted.method, submitted.path, submitted.provider) == (
        "POST",
        "/api/v1/videos",
        "openrouter",
    )
    assert (submitted.idempotency_key, submitted.user_agent) == ("idem-1", "mediajobs/0.1.0")
    assert submitted.json == {"model": "test-model", "prompt": "a red fox"}
    assert (submitted.authorized, submitted.auth_header) == (True, "Bearer ***")
    assert (polled.job_id, polled.status, polled.origin) == (jid, 200, "api")
    assert (content.authorized, content.range, content.status) == (False, "bytes=0-9", 401)
    assert (onerouter.auth_header, onerouter.status) == ("raw ***", 200)
    everything = repr(fake.requests)
    assert "test-key" not in everything
    assert "secret-raw" not in everything


def test_requests_record_the_clock_and_storage_origin(
    api: httpx.Client,
    fake: FakeProvider,
    anon: httpx.Client,
    clock: FakeClock,
    stored: tuple[str, str],
) -> None:
    clock.advance(42)
    anon.get(stored[1])
    last = fake.requests[-1]
    assert (last.origin, last.provider, last.job_id, last.at) == (
        "storage",
        "therouter",
        stored[0],
        42,
    )
    assert last.host == "storage.fake.mediajobs.test"


def test_unknown_routes_and_jobs(api: httpx.Client) -> None:
    assert api.get("/nowhere").status_code == 404
    assert api.get("/v1/jobs/img_missing").status_code == 404
    assert api.get("/api/v1/videos/vj_missing").json()["error"]["code"] == 404


# ------------------------------------------------------------------------- scenario choice


def test_presets_in_prompt_or_model(api: httpx.Client, fake: FakeProvider) -> None:
    failing = job_id("onerouter", submit(api, "onerouter", prompt="a cat fake:fail"))
    slow = job_id("therouter", submit(api, "therouter", model="m fake:slow fake:many"))
    assert fake.jobs[failing].scenario.outcome == "failed"
    assert fake.jobs[slow].scenario.seconds_per_step == 2.0
    assert len(fake.jobs[slow].artifacts) == 3
    unknown = submit(api, "openrouter", prompt="fake:nope")
    assert unknown.status_code == 400
    assert "fake:nope" in unknown.json()["error"]["message"]


def test_scenario_header(api: httpx.Client, fake: FakeProvider) -> None:
    header = json.dumps({"outcome": "expired", "steps": [], "poll_errors": {"1": 500}})
    jid = submit(api, "therouter", headers={"X-Fake-Scenario": header}).json()["id"]
    scenario = fake.jobs[jid].scenario
    assert (scenario.outcome, scenario.steps, dict(scenario.poll_errors)) == (
        "expired",
        (),
        {1: 500},
    )
    assert poll(api, fake, jid).status_code == 500
    assert poll(api, fake, jid).json()["status"] == "expired"
    for bad in ("not json", "[1]", '{"bogus": 1}', '{"polls_per_step": 0}'):
        answer = submit(api, "therouter", headers={"X-Fake-Scenario": bad})
        assert answer.status_code == 400, bad


def test_scenario_values() -> None:
    scenario = Scenario(steps=["queued"], malformed={"poll"}, poll_errors={1: 503})
    assert scenario.steps == ("queued",)
    assert scenario.malformed == frozenset({"poll"})
    with pytest.raises(TypeError):
        scenario.poll_errors[2] = 500  # type: ignore[index]
    for bad in (
        {"polls_per_step": 0},
        {"seconds_per_step": 0},
        {"artifact_size": -1},
        {"malformed": {"everywhere"}},
        {"therouter_shape": "other"},
    ):
        with pytest.raises(ValueError):
            Scenario.from_dict(bad)
    assert Scenario.from_preset("flaky").poll_errors == {1: 503, 2: 429}
    with pytest.raises(ValueError):
        Scenario.from_preset("nope")
