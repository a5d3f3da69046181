"""The fake's state and records: jobs, artifacts, recorded requests, the hand-driven clock.

Also the parsed form of an incoming request, shared by the provider wires and the fake.
"""

from __future__ import annotations

import dataclasses
import email.parser
import email.policy
import http
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import httpx

from ._scenario import Scenario
from ._storage import ArtifactBody, extension_for

__all__ = [
    "DEFAULT_API_ORIGIN",
    "DEFAULT_STORAGE_ORIGIN",
    "FakeArtifact",
    "FakeClock",
    "FakeJob",
    "RecordedRequest",
]

DEFAULT_API_KEY = "test-key"
"""The key :attr:`FakeProvider.api_key` reports when any key is accepted."""
DEFAULT_API_ORIGIN = "http://api.fake.mediajobs.test"
"""The API origin of an in-process fake: the ``base_url`` to give a client."""
DEFAULT_STORAGE_ORIGIN = "http://storage.fake.mediajobs.test"
"""The storage origin of an in-process fake, where pre-signed URLs point."""

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "expired"})
KIND_MEDIA = {
    "image": "image/png",
    "image_edit": "image/png",
    "video": "video/mp4",
    "speech": "audio/mpeg",
    "transcription": "application/json",
}
MAX_IN_MEMORY = 64 * 1024 * 1024
URL_TTL_REPORTED = 7 * 24 * 3600


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
    callback_url: str | None = None
    """The ``callback_url`` the submit asked terminal notices to be sent to, if any."""
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
    bytes_served: int = 0
    """Artifact body bytes handed to clients, over all downloads."""
    downloads_unfinished: int = 0
    """Artifact bodies that stopped before their last byte: the client hung up (the server
    stops streaming at once) or the scenario cut the connection."""
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
class Incoming:
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
    def parse(cls, request: httpx.Request) -> Incoming:
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


def redact(value: str | None) -> str | None:
    if value is None:
        return None
    scheme, space, _ = value.strip().partition(" ")
    return f"{scheme} ***" if space else "raw ***"


def phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def utc(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, timezone.utc)
