"""FakeProvider: one stateful fake speaking the wire shapes of all four providers.

Pure request → response: :meth:`FakeProvider.handle` takes an ``httpx.Request`` and returns an
``httpx.Response``, with no sockets. :meth:`FakeProvider.transport` plugs it into an
``httpx.Client`` or ``httpx.AsyncClient``; :class:`~mediajobs.testing.FakeServer` serves it over
real HTTP. Wire facts: docs/providers.md; where a provider left something open the fake picks
one documented-looking shape.
"""

from __future__ import annotations

import abc
import dataclasses
import email.parser
import email.policy
import http
import json
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar

import httpx

from ._scenario import Scenario, presets_in
from ._storage import ArtifactBody, UrlSigner, artifact_response, extension_for, s3_error

__all__ = [
    "DEFAULT_API_ORIGIN",
    "DEFAULT_STORAGE_ORIGIN",
    "FakeArtifact",
    "FakeClock",
    "FakeJob",
    "FakeProvider",
    "RecordedRequest",
]

DEFAULT_API_ORIGIN = "http://api.fake.mediajobs.test"
"""The API origin of an in-process fake: the ``base_url`` to give a client."""
DEFAULT_STORAGE_ORIGIN = "http://storage.fake.mediajobs.test"
"""The storage origin of an in-process fake, where pre-signed URLs point."""

_TERMINAL = frozenset({"succeeded", "failed", "cancelled", "expired"})
_KIND_MEDIA = {
    "image": "image/png",
    "image_edit": "image/png",
    "video": "video/mp4",
    "speech": "audio/mpeg",
    "transcription": "application/json",
}
_MAX_IN_MEMORY = 64 * 1024 * 1024
_URL_TTL_REPORTED = 7 * 24 * 3600


class FakeClock:
    """A hand-driven clock for ``FakeProvider(clock=...)``: time moves only on :meth:`advance`.

    Args:
        start: The initial reading, in seconds.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        """Return the current reading."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward.

        Args:
            seconds: How far.
        """
        self.now += seconds


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, as tests assert on it. Credentials are redacted."""

    method: str
    """The HTTP method."""
    url: str
    """The full URL."""
    host: str
    """The URL's host."""
    path: str
    """The URL's path."""
    query: Mapping[str, str]
    """The query parameters."""
    origin: str
    """``"api"`` or ``"storage"``: which of the fake's origins was asked."""
    provider: str | None
    """The provider whose route matched (for storage, the job's provider); ``None`` if none."""
    job_id: str | None
    """The job concerned, when there is one."""
    authorized: bool
    """Whether the request carried an ``Authorization`` header (right or wrong)."""
    auth_header: str | None
    """The redacted ``Authorization`` form: ``"Bearer ***"``, ``"raw ***"`` or ``None``."""
    idempotency_key: str | None
    """The ``Idempotency-Key`` header."""
    user_agent: str | None
    """The ``User-Agent`` header."""
    json: Any
    """The parsed JSON body, or ``None``."""
    form: Mapping[str, str]
    """Text fields of a multipart body."""
    files: Mapping[str, int]
    """File fields of a multipart body: field name → size in bytes."""
    range: str | None
    """The ``Range`` header."""
    headers: Mapping[str, str]
    """All headers, lower-cased names, ``authorization`` redacted."""
    at: float
    """The fake's clock when the request arrived."""
    status: int | None
    """The status answered; ``None`` when the connection was cut without an answer."""


@dataclasses.dataclass(frozen=True)
class FakeArtifact:
    """One output of a fake job; its bytes are generated on demand."""

    job_id: str
    """The job it belongs to."""
    index: int
    """Its position (0-based)."""
    size: int
    """Its length in bytes."""
    content_type: str
    """The media type it is served with."""

    @property
    def extension(self) -> str:
        """The extension of its storage path (``.png``, ``.mp4``...)."""
        return extension_for(self.content_type)

    def body(self) -> ArtifactBody:
        """Return the generator of its bytes."""
        return ArtifactBody(f"{self.job_id}/{self.index}", self.size, self.content_type)


@dataclasses.dataclass
class FakeJob:
    """The fake's state of one job."""

    id: str
    """The job (task) id the provider answered."""
    provider: str
    """``"therouter"``, ``"worldrouter"``, ``"openrouter"`` or ``"onerouter"``."""
    kind: str
    """``"image"``, ``"image_edit"``, ``"video"``, ``"speech"`` or ``"transcription"``."""
    model: str
    """The model asked for."""
    scenario: Scenario
    """The script it follows."""
    artifacts: tuple[FakeArtifact, ...]
    """Its outputs (served once it succeeds)."""
    poll_path: str
    """The path its status is polled at."""
    created: float
    """The fake's clock at submit."""
    created_unix: float
    """Wall time at submit."""
    status: str = "queued"
    """The normalized status last shown (or the unknown raw outcome)."""
    raw_status: str = ""
    """The provider's word for it."""
    polls: int = 0
    """Status polls received, errors included."""
    answered: int = 0
    """Status polls answered with the job."""
    downloads: int = 0
    """Artifact downloads received (storage and OpenRouter content)."""
    cancelled: bool = False
    """Whether it was cancelled."""
    started_unix: float | None = None
    """Wall time it was first shown past its first step."""
    finished_unix: float | None = None
    """Wall time it was first shown terminal."""
    url_issues: int = 0
    """How many times pre-signed URLs were handed out."""
    dropped: set[int] = dataclasses.field(default_factory=set)
    """Artifacts whose download was already cut once."""

    @property
    def prompt_tokens(self) -> int:
        """A made-up token count for usage fields."""
        return 8 + len(self.artifacts)


@dataclasses.dataclass
class _Incoming:
    request: httpx.Request
    query: dict[str, str]
    json: Any = None
    invalid_json: bool = False
    form: dict[str, str] = dataclasses.field(default_factory=dict)
    files: dict[str, int] = dataclasses.field(default_factory=dict)
    origin: str = "api"
    provider: str | None = None
    job_id: str | None = None

    @classmethod
    def parse(cls, request: httpx.Request) -> _Incoming:
        incoming = cls(request, dict(request.url.params))
        content_type = request.headers.get("Content-Type", "")
        body = request.content
        if content_type.startswith("multipart/form-data"):
            incoming.form, incoming.files = _parse_multipart(content_type, body)
        elif body:
            try:
                incoming.json = json.loads(body)
            except ValueError:
                incoming.invalid_json = True
        return incoming

    @property
    def path(self) -> str:
        return self.request.url.path

    @property
    def fields(self) -> dict[str, Any]:
        return self.json if isinstance(self.json, dict) else dict(self.form)

    def texts(self) -> list[str]:
        """Strings a ``fake:<preset>`` may hide in: prompt, input, model, content texts."""
        fields = self.fields
        found = [fields.get(key) for key in ("prompt", "input", "model")]
        content = fields.get("content")
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict):
                found.append(part.get("text"))
        return [text for text in found if isinstance(text, str)]


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, int]]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    form: dict[str, str] = {}
    files: dict[str, int] = {}
    for part in message.iter_parts() if message.is_multipart() else ():
        name = str(part.get_param("name", header="content-disposition") or "")
        payload = part.get_payload(decode=True)
        payload = payload if isinstance(payload, bytes) else b""
        if part.get_filename() is None:
            form[name] = payload.decode("utf-8", "replace")
        else:
            files[name] = len(payload)
    return form, files


def _redact(value: str | None) -> str | None:
    if value is None:
        return None
    scheme, space, _ = value.strip().partition(" ")
    return f"{scheme} ***" if space else "raw ***"


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _utc(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, timezone.utc)


# --------------------------------------------------------------------------- provider wires


_OPENAI_CODES = {  # TheRouter and WorldRouter error codes, OpenAI style
    400: "invalid_request",
    401: "invalid_api_key",
    402: "insufficient_credits",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    429: "rate_limit_exceeded",
}


class _Wire(abc.ABC):
    """One provider's wire shape: auth, error bodies, job bodies, status words."""

    name: ClassVar[str]
    statuses: ClassVar[Mapping[str, str]]
    submit_code: ClassVar[int] = 200
    required: ClassVar[tuple[str, ...]] = ("id", "status")

    def __init__(self, fake: FakeProvider) -> None:
        self.fake = fake

    def authenticate(self, header: str | None) -> bool:
        return header == f"Bearer {self.fake.api_key}"

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
        return self.error(status, f"{_phrase(status)} (injected by the fake provider)", headers)

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        code = _OPENAI_CODES.get(status, "server_error" if status >= 500 else "invalid_request")
        kind = "server_error" if status >= 500 else "invalid_request_error"
        return {"error": {"message": message, "type": kind, "code": code}}

    def strip(self, body: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in body.items() if key not in self.required}

    def validate(self, kind: str, incoming: _Incoming) -> str | None:
        if incoming.invalid_json:
            return "The request body is not valid JSON."
        if not isinstance(incoming.fields.get("model"), str):
            return "'model' is required."
        return None

    def kind_of(self, kind: str, incoming: _Incoming) -> str:
        return kind

    @abc.abstractmethod
    def new_id(self, kind: str) -> str:
        """Provider-specific: see the subclasses."""

    @abc.abstractmethod
    def poll_path(self, job_id: str, kind: str) -> str:
        """Provider-specific: see the subclasses."""

    def media_type(self, kind: str, fields: Mapping[str, Any]) -> str:
        return _KIND_MEDIA[kind]

    def before_poll(self, job: FakeJob) -> httpx.Response | None:
        return None

    @abc.abstractmethod
    def submit_body(self, job: FakeJob) -> dict[str, Any]:
        """Provider-specific: see the subclasses."""

    @abc.abstractmethod
    def job_body(self, job: FakeJob) -> dict[str, Any]:
        """Provider-specific: see the subclasses."""

    def content(self, job: FakeJob, incoming: _Incoming) -> httpx.Response:
        return self.error(404, f"No route for {incoming.request.method} {incoming.path}")

    def artifact_at(self, job: FakeJob, incoming: _Incoming) -> FakeArtifact | httpx.Response:
        """The artifact ``?index=N`` names, or the error to answer."""
        if job.status != "succeeded":
            return self.error(400, f"Job {job.id} is not completed (status: {job.raw_status}).")
        index = incoming.query.get("index", "0")
        if not index.isdigit() or int(index) >= len(job.artifacts):
            return self.error(404, f"Job {job.id} has no artifact at index {index}.")
        return job.artifacts[int(index)]


class _TheRouter(_Wire):
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

    def validate(self, kind: str, incoming: _Incoming) -> str | None:
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
        expires = created + _URL_TTL_REPORTED
        return {
            "id": job.id,
            "object": self._objects[job.id.split("_")[0]],
            "status": job.raw_status,
            "model": job.model,
            "created_at": created,
            "polling_url": f"{self.fake.api_origin}{job.poll_path}",
            "expires_at": _utc(expires).strftime("%Y-%m-%dT%H:%M:%SZ")
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
        elif job.status in _TERMINAL:
            body["error"] = {"message": _failure_message(job), "code": _failure_code(job)}
        return body

    def content(self, job: FakeJob, incoming: _Incoming) -> httpx.Response:
        artifact = self.artifact_at(job, incoming)
        if isinstance(artifact, httpx.Response):
            return artifact
        if "content" in job.scenario.malformed:
            return httpx.Response(302)
        return httpx.Response(302, headers={"Location": self.fake._signed_url(job, artifact)})


class _WorldRouter(_Wire):
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

    def validate(self, kind: str, incoming: _Incoming) -> str | None:
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
        return self._formats.get(str(fields.get("output_format")), _KIND_MEDIA[kind])

    def submit_body(self, job: FakeJob) -> dict[str, Any]:
        created = int(job.created_unix)
        return {
            "id": job.id,
            "object": f"{'video' if job.kind == 'video' else 'image'}.generation_task",
            "created": created,
            "task_id": job.id,
            "status": job.raw_status,
            "model": job.model,
            "created_at": _utc(created).isoformat(),
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
        elif job.status in _TERMINAL:
            body["error"] = {"code": _failure_code(job), "message": _failure_message(job)}
        return body


class _OpenRouter(_Wire):
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

    def validate(self, kind: str, incoming: _Incoming) -> str | None:
        if problem := super().validate(kind, incoming):
            return problem
        fields = incoming.fields
        duration = fields.get("duration")
        if duration is not None and (
            isinstance(duration, bool) or not isinstance(duration, int) or not 1 <= duration <= 60
        ):
            return "'duration' must be an integer number of seconds between 1 and 60."
        callback = fields.get("callback_url")
        if callback is not None and not str(callback).startswith("https://"):
            return "'callback_url' must be an https URL."
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
            body["unsigned_urls"] = [f"{base}?index={a.index}" for a in job.artifacts]
            body["usage"] = {"cost": job.scenario.cost, "is_byok": False}
        elif job.status in _TERMINAL:
            body["error"] = _failure_message(job)
        return body

    def content(self, job: FakeJob, incoming: _Incoming) -> httpx.Response:
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


class _OneRouter(_Wire):
    name = "onerouter"
    statuses: ClassVar[Mapping[str, str]] = {
        "queued": "created",
        "running": "processing",
        "succeeded": "completed",
    }
    required = ("task_id", "status")

    def authenticate(self, header: str | None) -> bool:
        return header in (self.fake.api_key, f"Bearer {self.fake.api_key}")

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

    def validate(self, kind: str, incoming: _Incoming) -> str | None:
        if problem := super().validate(kind, incoming):
            return problem
        content = incoming.fields.get("content")
        parts = [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []
        if not any(p.get("type") == "text" and isinstance(p.get("text"), str) for p in parts):
            hint = " (TheRouter requests need ?async=true)" if "prompt" in incoming.fields else ""
            return f"'content' must hold a text part{hint}."
        return None

    def kind_of(self, kind: str, incoming: _Incoming) -> str:
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
        return self.error(code, f"{_phrase(code)} (envelope error injected by the fake provider)")

    def _urls(self, job: FakeJob) -> dict[str, str]:
        return {"get" if job.kind == "video" else "query": f"{self.fake.api_origin}{job.poll_path}"}

    def submit_body(self, job: FakeJob) -> dict[str, Any]:
        created = _utc(job.created_unix)
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


def _route(incoming: _Incoming) -> tuple[str, str, str, str | None] | None:
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


@dataclasses.dataclass
class _Script:
    scenario: Scenario
    model: str | None
    provider: str | None
    remaining: int | None

    def matches(self, provider: str, model: str) -> bool:
        return (self.model is None or self.model == model) and (
            self.provider is None or self.provider == provider
        )


# --------------------------------------------------------------------------- the fake


class FakeProvider:
    """A stateful fake of TheRouter, WorldRouter, OpenRouter and OneRouter at once.

    Every documented route of the four providers is served from one API origin (their paths do
    not collide, except ``POST /v1/images/generations``: TheRouter's carries ``?async=true``,
    OneRouter's does not). Artifacts live on a second, storage origin behind pre-signed URLs.

    Args:
        clock: Seconds for progressions by elapsed time (default ``time.monotonic``).
        api_key: The only key accepted.
        scenario: The default scenario of new jobs.

    Example:
        >>> fake = FakeProvider()
        >>> client = httpx.Client(transport=fake.transport(), base_url=fake.api_origin)
    """

    def __init__(
        self,
        clock: Callable[[], float] | None = None,
        *,
        api_key: str = "test-key",
        scenario: Scenario | None = None,
    ) -> None:
        self.clock: Callable[[], float] = clock or time.monotonic
        self.api_key = api_key
        self.scenario: Scenario = scenario or Scenario()
        """The scenario of jobs no script claims, read at each submit."""
        self.api_origin = DEFAULT_API_ORIGIN
        """Where the API is; :class:`FakeServer` sets the real origin while serving."""
        self.storage_origin = DEFAULT_STORAGE_ORIGIN
        """Where pre-signed URLs point; :class:`FakeServer` sets the real origin while serving."""
        self.requests: list[RecordedRequest] = []
        """Every request received, in order."""
        self.jobs: dict[str, FakeJob] = {}
        """Every job created, by id."""
        self._scripts: list[_Script] = []
        self._signer = UrlSigner()
        self._lock = threading.RLock()
        self._wires: dict[str, _Wire] = {
            wire.name: wire(self) for wire in (_TheRouter, _WorldRouter, _OpenRouter, _OneRouter)
        }

    # ----------------------------------------------------------------- public API

    def script(
        self,
        scenario: Scenario,
        *,
        model: str | None = None,
        provider: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Choose the scenario of upcoming jobs.

        Scripts are tried in the order they were added; the first that matches a submit (and
        has uses left) decides its scenario, else :attr:`scenario` does. A submit answered with
        ``submit_status`` uses up a use too, so a scripted 429 is followed by a normal job.

        Args:
            scenario: The scenario.
            model: Only for submits of this model.
            provider: Only for submits to this provider.
            times: How many submits it serves (``None``: all of them).

        Raises:
            ValueError: If ``times`` is below 1.
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._scripts.append(_Script(scenario, model, provider, times))

    def transport(self) -> httpx.MockTransport:
        """Return a transport serving this fake to ``httpx.Client`` and ``httpx.AsyncClient``."""
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request as the provider whose route it matches, and record it.

        Args:
            request: The request; its host decides between the API and storage origins.

        Returns:
            The response; artifact bodies stream.

        Raises:
            httpx.RemoteProtocolError: When the scenario cuts the connection
                (``submit_drop_after_record``); a dropped download raises it while the body
                is read instead.
        """
        request.read()
        incoming = _Incoming.parse(request)
        with self._lock:
            try:
                response = self._dispatch(incoming)
            except httpx.TransportError:
                self._record(incoming, None)
                raise
            self._record(incoming, response.status_code)
        response.request = request
        return response

    def artifact_bytes(self, job_id: str, index: int = 0) -> bytes:
        """Return the bytes of a job's artifact.

        Args:
            job_id: The job.
            index: The artifact's index.

        Returns:
            The bytes the storage serves for it.

        Raises:
            KeyError: If there is no such job.
            IndexError: If the job has no such artifact.
            ValueError: If the artifact is over 64 MiB: use :meth:`artifact_sha256`.
        """
        artifact = self.jobs[job_id].artifacts[index]
        if artifact.size > _MAX_IN_MEMORY:
            raise ValueError(f"artifact of {artifact.size} bytes: compare artifact_sha256()")
        return artifact.body().read()

    def artifact_sha256(self, job_id: str, index: int = 0) -> str:
        """Return the hex SHA-256 of a job's artifact, computed by streaming.

        Args:
            job_id: The job.
            index: The artifact's index.

        Returns:
            The digest.

        Raises:
            KeyError: If there is no such job.
            IndexError: If the job has no such artifact.
        """
        return self.jobs[job_id].artifacts[index].body().sha256()

    # ----------------------------------------------------------------- helpers for the wires

    def _signed_url(self, job: FakeJob, artifact: FakeArtifact, *, expired: bool = False) -> str:
        """Return a pre-signed storage URL of an artifact.

        Args:
            job: The job.
            artifact: The artifact.
            expired: Make it already expired.

        Returns:
            The URL on :attr:`storage_origin`.
        """
        now = int(time.time())
        expires = now - 60 if expired else now + job.scenario.url_ttl
        path = f"/{job.provider}-media/{job.id}/{artifact.index}{artifact.extension}"
        return self._signer.sign(self.storage_origin, path, expires)

    def _signed_urls(self, job: FakeJob) -> list[str]:
        """Hand out pre-signed URLs of all of a job's artifacts.

        With ``expired_urls`` the first batch a job hands out is already expired.

        Args:
            job: The job.

        Returns:
            One URL per artifact.
        """
        job.url_issues += 1
        expired = job.scenario.expired_urls and job.url_issues == 1
        return [self._signed_url(job, artifact, expired=expired) for artifact in job.artifacts]

    def _serve_artifact(
        self,
        job: FakeJob,
        artifact: FakeArtifact,
        incoming: _Incoming,
        error: Callable[[int], httpx.Response],
    ) -> httpx.Response:
        """Serve an artifact's bytes, applying the job's download faults.

        Args:
            job: The job.
            artifact: The artifact.
            incoming: The GET or HEAD request.
            error: Builds the error response of an injected status.

        Returns:
            The response.
        """
        scenario = job.scenario
        job.downloads += 1
        status = scenario.download_errors.get(job.downloads)
        if status is not None:
            return error(status)
        if "content" in scenario.malformed:
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            return httpx.Response(200, headers={"Content-Type": "text/html"}, content=page)
        drop = None
        method = incoming.request.method
        first = artifact.index not in job.dropped
        if scenario.drop_download_after is not None and method == "GET" and first:
            job.dropped.add(artifact.index)
            drop = scenario.drop_download_after
        return artifact_response(
            artifact.body(), incoming.request, ignore_range=scenario.ignore_range, drop_after=drop
        )

    # ----------------------------------------------------------------- internals

    def _dispatch(self, incoming: _Incoming) -> httpx.Response:
        if _same_origin(incoming.request.url, self.storage_origin):
            incoming.origin = "storage"
            return self._storage(incoming)
        route = _route(incoming)
        if route is None:
            method = incoming.request.method
            body = {"error": {"code": 404, "message": f"No route for {method} {incoming.path}"}}
            return httpx.Response(404, json=body)
        provider, action, kind, job_id = route
        wire = self._wires[provider]
        incoming.provider, incoming.job_id = provider, job_id
        if not wire.authenticate(incoming.request.headers.get("Authorization")):
            return wire.error(401, "Invalid or missing API key.")
        if action == "submit":
            return self._submit(wire, kind, incoming)
        if action == "models" and isinstance(wire, _OpenRouter):
            return wire.models()
        job = self.jobs.get(job_id or "")
        if (
            job is None
            or job.provider != provider
            or (action == "poll" and job.poll_path != incoming.path)
        ):
            return wire.error(404, f"Job {job_id} not found.")
        if action == "poll":
            return self._poll(wire, job)
        self._advance(job)
        if action == "cancel":
            return self._cancel(wire, job)
        return wire.content(job, incoming)

    def _submit(self, wire: _Wire, kind: str, incoming: _Incoming) -> httpx.Response:
        problem = wire.validate(kind, incoming)
        if problem:
            return wire.error(400, problem)
        kind = wire.kind_of(kind, incoming)
        fields = incoming.fields
        model = str(fields["model"])
        script = next((s for s in self._scripts if s.matches(wire.name, model)), None)
        try:
            scenario = (script.scenario if script else self.scenario).with_presets(
                presets_in(incoming.texts())
            )
            header = incoming.request.headers.get("X-Fake-Scenario")
            if header is not None:
                scenario = Scenario.from_header(header, scenario)
        except ValueError as exc:
            return wire.error(400, f"Fake scenario: {exc}")
        if script is not None and script.remaining is not None:
            script.remaining -= 1
            if not script.remaining:
                self._scripts.remove(script)
        if scenario.submit_status is not None:
            return wire.injected(scenario, scenario.submit_status)
        job = self._create_job(wire, kind, model, fields, scenario)
        incoming.job_id = job.id
        if scenario.submit_drop_after_record:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=incoming.request
            )
        return self._answer(
            wire, scenario, "submit", wire.submit_body(job), status=wire.submit_code
        )

    def _create_job(
        self, wire: _Wire, kind: str, model: str, fields: dict[str, Any], scenario: Scenario
    ) -> FakeJob:
        job_id = wire.new_id(kind)
        while job_id in self.jobs:
            job_id = wire.new_id(kind)
        count = scenario.artifact_count
        if count is None:
            requested = fields.get("n")
            count = requested if isinstance(requested, int) and requested > 0 else 1
        media = scenario.content_type or wire.media_type(kind, fields)
        job = FakeJob(
            id=job_id,
            provider=wire.name,
            kind=kind,
            model=model,
            scenario=scenario,
            artifacts=tuple(
                FakeArtifact(job_id, index, scenario.artifact_size, media) for index in range(count)
            ),
            poll_path=wire.poll_path(job_id, kind),
            created=self.clock(),
            created_unix=time.time(),
        )
        job.raw_status = wire.raw(job, job.status)
        self.jobs[job_id] = job
        return job

    def _poll(self, wire: _Wire, job: FakeJob) -> httpx.Response:
        scenario = job.scenario
        job.polls += 1
        status = scenario.poll_errors.get(job.polls)
        if status is not None:
            return wire.injected(scenario, status)
        override = wire.before_poll(job)
        if override is not None:
            return override
        job.answered += 1
        self._advance(job)
        hint = {"Retry-After": scenario.poll_retry_after} if scenario.poll_retry_after else {}
        return self._answer(wire, scenario, "poll", wire.job_body(job), headers=hint)

    def _cancel(self, wire: _Wire, job: FakeJob) -> httpx.Response:
        if job.status in _TERMINAL:
            return wire.error(409, f"Job {job.id} is already {job.raw_status}.")
        job.cancelled = True
        self._advance(job)
        return wire.ok(200, wire.job_body(job), {})

    def _answer(
        self,
        wire: _Wire,
        scenario: Scenario,
        place: str,
        body: dict[str, Any],
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        if place in scenario.malformed:
            garbage = b'{"id": "unterminated'
            return httpx.Response(
                status, headers={"Content-Type": "application/json"}, content=garbage
            )
        if f"{place}_fields" in scenario.malformed:
            body = wire.strip(body)
        return wire.ok(status, body, headers or {})

    def _advance(self, job: FakeJob) -> None:
        """Bring a job's shown status up to date with its scenario and the clock."""
        stage = self._stage(job)
        if stage != job.status:
            now = time.time()
            job.started_unix = job.started_unix or now
            if stage in _TERMINAL and job.finished_unix is None:
                job.finished_unix = now
        job.status = stage
        job.raw_status = self._wires[job.provider].raw(job, stage)

    def _stage(self, job: FakeJob) -> str:
        """The job's normalized status now: polls move it on, or the clock does."""
        scenario = job.scenario
        timeline = (*scenario.steps, scenario.outcome)
        if job.cancelled:
            return "cancelled"
        if scenario.seconds_per_step is not None:
            step = int((self.clock() - job.created) // scenario.seconds_per_step)
        elif job.answered == 0:
            return "queued"
        else:
            step = (job.answered - 1) // scenario.polls_per_step
        return timeline[min(step, len(timeline) - 1)]

    def _storage(self, incoming: _Incoming) -> httpx.Response:
        request, path = incoming.request, incoming.path
        if "Authorization" in request.headers:
            return s3_error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be "
                "specified",
                path,
            )
        if request.method not in ("GET", "HEAD"):
            return s3_error(405, "MethodNotAllowed", "The method is not allowed.", path)
        denied = self._signer.check(path, incoming.query, time.time())
        if denied is not None:
            return denied
        parts = path.split("/")
        job = self.jobs.get(parts[2]) if len(parts) == 4 else None
        index = parts[-1].split(".")[0]
        if job is None or not index.isdigit() or int(index) >= len(job.artifacts):
            return s3_error(404, "NoSuchKey", "The specified key does not exist.", path)
        incoming.provider, incoming.job_id = job.provider, job.id
        scenario = job.scenario

        def error(status: int) -> httpx.Response:
            headers = {"Retry-After": scenario.retry_after} if scenario.retry_after else {}
            code = _S3_CODES.get(status, "InternalError")
            return s3_error(status, code, _phrase(status), path, headers)

        return self._serve_artifact(job, job.artifacts[int(index)], incoming, error)

    def _record(self, incoming: _Incoming, status: int | None) -> None:
        request = incoming.request
        headers = request.headers
        self.requests.append(
            RecordedRequest(
                method=request.method,
                url=str(request.url),
                host=request.url.host,
                path=request.url.path,
                query=incoming.query,
                origin=incoming.origin,
                provider=incoming.provider,
                job_id=incoming.job_id,
                authorized="Authorization" in headers,
                auth_header=_redact(headers.get("Authorization")),
                idempotency_key=headers.get("Idempotency-Key"),
                user_agent=headers.get("User-Agent"),
                json=incoming.json,
                form=incoming.form,
                files=incoming.files,
                range=headers.get("Range"),
                headers={
                    name: (_redact(value) or "") if name == "authorization" else value
                    for name, value in headers.items()
                },
                at=self.clock(),
                status=status,
            )
        )


_S3_CODES = {
    403: "AccessDenied",
    404: "NoSuchKey",
    500: "InternalError",
    503: "SlowDown",
}


def _same_origin(url: httpx.URL, origin: str) -> bool:
    other = httpx.URL(origin)
    return (url.scheme, url.host, url.port) == (other.scheme, other.host, other.port)
