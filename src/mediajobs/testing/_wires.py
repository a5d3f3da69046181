"""Per-provider wire shapes of the fake: auth, error bodies, job bodies, status words, routes.

Each :class:`Wire` subclass speaks one provider as docs/providers.md describes it; where a
provider left something open the fake picks one documented-looking shape. The routing table at
the end maps the API origin's paths to a provider and an action.
"""

from __future__ import annotations

import abc
import re
import secrets
import string
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from ._scenario import Scenario
from ._state import (
    KIND_MEDIA,
    TERMINAL,
    URL_TTL_REPORTED,
    FakeArtifact,
    FakeJob,
    Incoming,
    phrase,
    utc,
)

if TYPE_CHECKING:
    from ._fake import FakeProvider

__all__ = ["WIRES", "OpenRouterWire", "Wire", "route"]

_OPENAI_CODES = {  # TheRouter and WorldRouter error codes, OpenAI style
    400: "invalid_request",
    401: "invalid_api_key",
    402: "insufficient_credits",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    429: "rate_limit_exceeded",
}


class Wire(abc.ABC):
    """One provider's wire shape: auth, error bodies, job bodies, status words."""

    name: ClassVar[str]
    statuses: ClassVar[Mapping[str, str]]
    submit_code: ClassVar[int] = 200
    required: ClassVar[tuple[str, ...]] = ("id", "status")

    def __init__(self, fake: FakeProvider) -> None:
        self.fake = fake

    def authenticate(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries a key the fake accepts (``Bearer <key>``)."""
        return self.fake.accepts(bearer_key(header))

    def raw(self, job: FakeJob, stage: str) -> str:
        return job.scenario.raw_statuses.get(stage) or self.statuses.get(stage, stage)

    def ok(self, status: int, body: dict[str, Any], headers: Mapping[str, str]) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    def error(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        return httpx.Response(status, json=self.error_body(status, message), headers=headers)

    def injected(self, scenario: Scenario, status: int) -> httpx.Response:
        headers = {"Retry-After": scenario.retry_after} if scenario.retry_after else {}
        return self.error(status, f"{phrase(status)} (injected by the fake provider)", headers)

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        code = _OPENAI_CODES.get(status, "server_error" if status >= 500 else "invalid_request")
        kind = "server_error" if status >= 500 else "invalid_request_error"
        return {"error": {"message": message, "type": kind, "code": code}}

    def strip(self, body: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in body.items() if key not in self.required}

    def validate(self, kind: str, incoming: Incoming) -> str | None:
        if incoming.invalid_json:
            return "The request body is not valid JSON."
        if not isinstance(incoming.fields.get("model"), str):
            return "'model' is required."
        return None

    def kind_of(self, kind: str, incoming: Incoming) -> str:
        return kind

    @abc.abstractmethod
    def new_id(self, kind: str) -> str:
        """Provider-specific: see the subclasses."""

    @abc.abstractmethod
    def poll_path(self, job_id: str, kind: str) -> str:
        """Provider-specific: see the subclasses."""

    def media_type(self, kind: str, fields: Mapping[str, Any]) -> str:
        return KIND_MEDIA[kind]

    def before_poll(self, job: FakeJob) -> httpx.Response | None:
        return None

    @abc.abstractmethod
    def submit_body(self, job: FakeJob) -> dict[str, Any]:
        """Provider-specific: see the subclasses."""

    @abc.abstractmethod
    def job_body(self, job: FakeJob) -> dict[str, Any]:
        """Provider-specific: see the subclasses."""

    def content(self, job: FakeJob, incoming: Incoming) -> httpx.Response:
        return self.error(404, f"No route for {incoming.request.method} {incoming.path}")

    def artifact_at(self, job: FakeJob, incoming: Incoming) -> FakeArtifact | httpx.Response:
        """The artifact ``?index=N`` names, or the error to answer."""
        if job.status != "succeeded":
            return self.error(400, f"Job {job.id} is not completed (status: {job.raw_status}).")
        index = incoming.query.get("index", "0")
        if not index.isdigit() or int(index) >= len(job.artifacts):
            return self.error(404, f"Job {job.id} has no artifact at index {index}.")
        return job.artifacts[int(index)]


class TheRouterWire(Wire):
    name = "therouter"
    statuses: ClassVar[Mapping[str, str]] = {"running": "in_progress"}
    submit_code = 202
    required = ("id", "status", "polling_url")
    _prefixes: ClassVar[Mapping[str, str]] = {
        "image": "img",
        "image_edit": "img",
        "video": "vid",
        "speech": "aud",
        "transcription": "aud",
    }
    _objects: ClassVar[Mapping[str, str]] = {
        "img": "image_job",
        "vid": "video_job",
        "aud": "audio_job",
    }
    _files: ClassVar[Mapping[str, str]] = {"image_edit": "image", "transcription": "file"}

    def validate(self, kind: str, incoming: Incoming) -> str | None:
        if kind != "video" and incoming.query.get("async") != "true":
            return "This fake serves asynchronous jobs only: add ?async=true."
        file_field = self._files.get(kind)
        if file_field and file_field not in incoming.files:
            return f"A multipart file field '{file_field}' is required."
        return super().validate(kind, incoming)

    def new_id(self, kind: str) -> str:
        return f"{self._prefixes[kind]}_{secrets.token_hex(12)}"

    def poll_path(self, job_id: str, kind: str) -> str:
        return f"/v1/jobs/{job_id}"

    def submit_body(self, job: FakeJob) -> dict[str, Any]:
        created = int(job.created_unix)
        expires = created + URL_TTL_REPORTED
        return {
            "id": job.id,
            "object": self._objects[job.id.split("_")[0]],
            "status": job.raw_status,
            "model": job.model,
            "created_at": created,
            "polling_url": f"{self.fake.api_origin}{job.poll_path}",
            "expires_at": utc(expires).strftime("%Y-%m-%dT%H:%M:%SZ")
            if job.scenario.therouter_iso_expires_at
            else expires,
        }

    def job_body(self, job: FakeJob) -> dict[str, Any]:
        body = {**self.submit_body(job), "error": None}
        if job.status == "succeeded":
            urls = self.fake._signed_urls(job)
            body["completed_at"] = int(job.finished_unix or job.created_unix)
            body["content_url"] = f"{self.fake.api_origin}/v1/jobs/{job.id}/content"
            if job.scenario.therouter_shape == "result_data":
                body["result"] = {"data": [{"url": url} for url in urls]}
            else:
                body["unsigned_urls"] = urls
            if job.kind in ("image", "image_edit"):
                body["image_count"] = len(urls)
            body["usage"] = {
                "prompt_tokens": job.prompt_tokens,
                "completion_tokens": 0,
                "cost_credits": job.scenario.cost,
            }
        elif job.status in TERMINAL:
            body["error"] = {"message": _failure_message(job), "code": _failure_code(job)}
        return body

    def content(self, job: FakeJob, incoming: Incoming) -> httpx.Response:
        artifact = self.artifact_at(job, incoming)
        if isinstance(artifact, httpx.Response):
            return artifact
        if "content" in job.scenario.malformed:
            return httpx.Response(302)
        return httpx.Response(302, headers={"Location": self.fake._signed_url(job, artifact)})


class WorldRouterWire(Wire):
    name = "worldrouter"
    statuses: ClassVar[Mapping[str, str]] = {"running": "in_progress", "succeeded": "completed"}
    required = ("id", "task_id", "status")
    _formats: ClassVar[Mapping[str, str]] = {
        "png": "image/png",
        "jpeg": "image/jpeg",
        "jpg": "image/jpeg",
        "webp": "image/webp",
    }

    def raw(self, job: FakeJob, stage: str) -> str:
        if job.kind == "video" and stage == "succeeded":
            return job.scenario.raw_statuses.get(stage, "succeeded")
        return super().raw(job, stage)

    def validate(self, kind: str, incoming: Incoming) -> str | None:
        if problem := super().validate(kind, incoming):
            return problem
        if incoming.fields.get("response_format", "url") != "url":
            return "'response_format' must be 'url' for generation tasks."
        if not isinstance(incoming.fields.get("prompt"), str):
            return "'prompt' is required."
        return None

    def new_id(self, kind: str) -> str:
        return f"{'vid' if kind == 'video' else 'img'}task_{secrets.token_hex(12)}"

    def poll_path(self, job_id: str, kind: str) -> str:
        route = "videos/generations" if kind == "video" else "images/generation_tasks"
        return f"/v1/{route}/{job_id}"

    def media_type(self, kind: str, fields: Mapping[str, Any]) -> str:
        return self._formats.get(str(fields.get("output_format")), KIND_MEDIA[kind])

    def submit_body(self, job: FakeJob) -> dict[str, Any]:
        created = int(job.created_unix)
        return {
            "id": job.id,
            "object": f"{'video' if job.kind == 'video' else 'image'}.generation_task",
            "created": created,
            "task_id": job.id,
            "status": job.raw_status,
            "model": job.model,
            "created_at": utc(created).isoformat(),
        }

    def job_body(self, job: FakeJob) -> dict[str, Any]:
        body = self.submit_body(job)
        if job.status == "succeeded":
            urls = self.fake._signed_urls(job)
            if job.kind == "video":
                body["content"] = {"video_url": urls[0] if urls else None}
            else:
                body["data"] = [{"url": url} for url in urls]
            tokens = job.prompt_tokens
            body["usage"] = {"input_tokens": tokens, "output_tokens": 0, "total_tokens": tokens}
        elif job.status in TERMINAL:
            body["error"] = {"code": _failure_code(job), "message": _failure_message(job)}
        return body


def _callback_ok(url: str) -> bool:
    """OpenRouter's rule (``https://``), relaxed for loopback receivers of tests."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    if parsed.scheme == "https" and parsed.host:
        return True
    return parsed.scheme == "http" and parsed.host in ("127.0.0.1", "localhost", "::1")


class OpenRouterWire(Wire):
    name = "openrouter"
    statuses: ClassVar[Mapping[str, str]] = {
        "queued": "pending",
        "running": "in_progress",
        "succeeded": "completed",
    }
    submit_code = 202
    required = ("id", "status", "polling_url")

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"error": {"code": status, "message": message}}

    def validate(self, kind: str, incoming: Incoming) -> str | None:
        if problem := super().validate(kind, incoming):
            return problem
        fields = incoming.fields
        duration = fields.get("duration")
        if duration is not None and (
            isinstance(duration, bool) or not isinstance(duration, int) or not 1 <= duration <= 60
        ):
            return "'duration' must be an integer number of seconds between 1 and 60."
        callback = fields.get("callback_url")
        if callback is not None and not _callback_ok(str(callback)):
            return "'callback_url' must be an https URL (or http:// on loopback, for tests)."
        return None

    def new_id(self, kind: str) -> str:
        return f"vj_{secrets.token_hex(12)}"

    def poll_path(self, job_id: str, kind: str) -> str:
        return f"/api/v1/videos/{job_id}"

    def submit_body(self, job: FakeJob) -> dict[str, Any]:
        relative = job.scenario.relative_polling_url
        return {
            "id": job.id,
            "polling_url": job.poll_path if relative else f"{self.fake.api_origin}{job.poll_path}",
            "status": job.raw_status,
            "generation_id": f"gen-{int(job.created_unix)}-{job.id[3:15]}",
        }

    def job_body(self, job: FakeJob) -> dict[str, Any]:
        body = self.submit_body(job)
        if job.status == "succeeded":
            base = f"{self.fake.api_origin}{job.poll_path}/content"
            if job.scenario.openrouter_shape == "signed_urls":
                body["urls"] = self.fake._signed_urls(job)
                stored_until = (job.finished_unix or job.created_unix) + URL_TTL_REPORTED
                body["expires_at"] = utc(stored_until).strftime("%Y-%m-%dT%H:%M:%SZ")
            body["unsigned_urls"] = [f"{base}?index={a.index}" for a in job.artifacts]
            body["usage"] = {"cost": job.scenario.cost, "is_byok": False}
        elif job.status in TERMINAL:
            body["error"] = _failure_message(job)
        return body

    def content(self, job: FakeJob, incoming: Incoming) -> httpx.Response:
        artifact = self.artifact_at(job, incoming)
        if isinstance(artifact, httpx.Response):
            return artifact
        return self.fake._serve_artifact(
            job, artifact, incoming, lambda status: self.injected(job.scenario, status)
        )

    def models(self) -> httpx.Response:
        return httpx.Response(200, json={"data": _OPENROUTER_MODELS})


_OPENROUTER_MODELS = [
    {
        "id": "google/veo-3.1",
        "canonical_slug": "google/veo-3.1-20251015",
        "name": "Google: Veo 3.1",
        "created": 1760486400,
        "description": "Text and image to video with native audio (served by the fake).",
        "allowed_passthrough_parameters": ["negative_prompt", "person_generation"],
        "supported_durations": [4, 6, 8],
        "supported_resolutions": ["720p", "1080p"],
        "supported_aspect_ratios": ["16:9", "9:16"],
        "supported_frame_images": ["first_frame", "last_frame"],
        "supported_sizes": None,
        "generate_audio": True,
        "seed": True,
        "creativity": None,
        "upscale_factor": None,
        "pricing_skus": {"per_second_720p": "0.40", "per_second_1080p": "0.50"},
    },
    {
        "id": "bytedance/seedance-2.0",
        "canonical_slug": "bytedance/seedance-2.0",
        "name": "ByteDance: Seedance 2.0",
        "created": 1770000000,
        "description": "Fast text and image to video (served by the fake).",
        "allowed_passthrough_parameters": ["camera_fixed"],
        "supported_durations": [5, 10],
        "supported_resolutions": ["480p", "720p", "1080p"],
        "supported_aspect_ratios": ["16:9", "9:16", "1:1"],
        "supported_frame_images": ["first_frame"],
        "supported_sizes": ["1280x720", "720x1280"],
        "generate_audio": False,
        "seed": True,
        "creativity": None,
        "upscale_factor": None,
        "pricing_skus": {"per_second": "0.05"},
    },
]

_VIDEO_MODEL_WORDS = ("seedance", "video", "kling", "veo", "sora")


class OneRouterWire(Wire):
    name = "onerouter"
    statuses: ClassVar[Mapping[str, str]] = {
        "queued": "created",
        "running": "processing",
        "succeeded": "completed",
    }
    required = ("task_id", "status")

    def authenticate(self, header: str | None) -> bool:
        """Like the others, but the raw key (``Authorization: <key>``) is accepted too."""
        raw = header.strip() if header is not None else ""
        key = bearer_key(header) if raw.partition(" ")[0] == "Bearer" else raw
        return self.fake.accepts(key if key and " " not in key else None)

    def ok(self, status: int, body: dict[str, Any], headers: Mapping[str, str]) -> httpx.Response:
        envelope = {"code": 200, "message": "success", "data": body}
        return httpx.Response(status, json=envelope, headers=headers)

    def error(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        return httpx.Response(200, json=self.error_body(status, message), headers=headers)

    def injected(self, scenario: Scenario, status: int) -> httpx.Response:
        answer = super().injected(scenario, status)
        if scenario.onerouter_http_errors:
            answer.status_code = status
        return answer

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"code": status, "message": message, "data": None}

    def validate(self, kind: str, incoming: Incoming) -> str | None:
        if problem := super().validate(kind, incoming):
            return problem
        content = incoming.fields.get("content")
        parts = [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []
        if not any(p.get("type") == "text" and isinstance(p.get("text"), str) for p in parts):
            hint = " (TheRouter requests need ?async=true)" if "prompt" in incoming.fields else ""
            return f"'content' must hold a text part{hint}."
        return None

    def kind_of(self, kind: str, incoming: Incoming) -> str:
        fields = incoming.fields
        model = str(fields.get("model", "")).lower()
        is_video = "duration" in fields or any(word in model for word in _VIDEO_MODEL_WORDS)
        return "video" if is_video else "image"

    def new_id(self, kind: str) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
        tail = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        return f"cgt-{stamp}-{tail}"

    def poll_path(self, job_id: str, kind: str) -> str:
        return f"/v1/{kind}s/tasks/{job_id}"

    def before_poll(self, job: FakeJob) -> httpx.Response | None:
        code = job.scenario.envelope_error
        if code is None:
            return None
        return self.error(code, f"{phrase(code)} (envelope error injected by the fake provider)")

    def _urls(self, job: FakeJob) -> dict[str, str]:
        return {"get" if job.kind == "video" else "query": f"{self.fake.api_origin}{job.poll_path}"}

    def submit_body(self, job: FakeJob) -> dict[str, Any]:
        created = utc(job.created_unix)
        return {
            "task_id": job.id,
            "object": job.kind,
            "model": job.model,
            "status": job.raw_status,
            "urls": self._urls(job),
            "created_at": f"{created:%Y-%m-%d %H:%M:%S}.{created.microsecond // 10000:02d}",
        }

    def job_body(self, job: FakeJob) -> dict[str, Any]:
        body = self.submit_body(job)
        body.update(
            fail_reason=_failure_message(job) if job.status == "failed" else "",
            submit_time=int(job.created_unix),
            start_time=int(job.started_unix or 0),
            finish_time=int(job.finished_unix or 0),
            outputs=[],
        )
        if job.status == "succeeded":
            urls = self.fake._signed_urls(job)
            if job.scenario.onerouter_shape == "urls_video":
                body["urls"]["video"] = urls[0] if urls else ""
            else:
                body["outputs"] = urls
            body["cost"] = {"total_cost": job.scenario.cost}
        return body


def _failure_message(job: FakeJob) -> str:
    if job.status == "cancelled":
        return "The job was cancelled."
    if job.status == "expired":
        return "The job expired before it completed."
    return job.scenario.error_message


def _failure_code(job: FakeJob) -> str:
    return job.scenario.error_code if job.status == "failed" else job.status


# --------------------------------------------------------------------------- routing

_ID = r"(?P<id>[^/]+)"
_ROUTES: tuple[tuple[str, re.Pattern[str], str, str, str], ...] = tuple(
    (method, re.compile(path), provider, action, kind)
    for method, path, provider, action, kind in (
        ("POST", "/v1/images/generations", "therouter", "submit", "image"),
        ("POST", "/v1/images/edits", "therouter", "submit", "image_edit"),
        ("POST", "/v1/videos", "therouter", "submit", "video"),
        ("POST", "/v1/audio/speech", "therouter", "submit", "speech"),
        ("POST", "/v1/audio/transcriptions", "therouter", "submit", "transcription"),
        ("GET", f"/v1/jobs/{_ID}", "therouter", "poll", ""),
        ("GET", f"/v1/jobs/{_ID}/content", "therouter", "content", ""),
        ("POST", f"/v1/jobs/{_ID}/cancel", "therouter", "cancel", ""),
        ("POST", "/v1/images/generation_tasks", "worldrouter", "submit", "image"),
        ("GET", f"/v1/images/generation_tasks/{_ID}", "worldrouter", "poll", ""),
        ("POST", "/v1/videos/generations", "worldrouter", "submit", "video"),
        ("GET", f"/v1/videos/generations/{_ID}", "worldrouter", "poll", ""),
        ("POST", "/api/v1/videos", "openrouter", "submit", "video"),
        ("GET", "/api/v1/videos/models", "openrouter", "models", ""),
        ("GET", f"/api/v1/videos/{_ID}", "openrouter", "poll", ""),
        ("GET", f"/api/v1/videos/{_ID}/content", "openrouter", "content", ""),
        ("GET", f"/v1/videos/tasks/{_ID}", "onerouter", "poll", ""),
        ("GET", f"/v1/images/tasks/{_ID}", "onerouter", "poll", ""),
    )
)


def route(incoming: Incoming) -> tuple[str, str, str, str | None] | None:
    """Find ``(provider, action, kind, job id)`` for a request to the API origin.

    ``POST /v1/images/generations`` is TheRouter's with ``?async=true`` (its dialect always
    sends it) and OneRouter's without.
    """
    method, path = incoming.request.method, incoming.path
    for route_method, pattern, provider, action, kind in _ROUTES:
        match = pattern.fullmatch(path)
        if match is None or route_method != method:
            continue
        if path == "/v1/images/generations" and incoming.query.get("async") != "true":
            return ("onerouter", action, kind, None)
        return (provider, action, kind, match.groupdict().get("id"))
    return None


def bearer_key(header: str | None) -> str | None:
    """Return the key of a well-formed ``Bearer <key>`` header, else ``None``.

    Args:
        header: The ``Authorization`` header.

    Returns:
        The non-empty key, or ``None`` when missing or malformed.
    """
    scheme, _, key = (header or "").strip().partition(" ")
    key = key.strip()
    return key if scheme == "Bearer" and key and " " not in key else None


WIRES: tuple[type[Wire], ...] = (TheRouterWire, WorldRouterWire, OpenRouterWire, OneRouterWire)
"""The wire classes, one per provider."""
