"""The one job model: normalized status, artifacts, errors and times.

Every dialect turns its provider's payloads into :class:`JobData`; the handles users hold
(``Job``, ``AsyncJob``) wrap it together with a client.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic_core import PydanticSerializationError, to_json

from ._status import JobStatus
from ._types import KINDS

__all__ = [
    "KINDS",
    "Artifact",
    "JobData",
    "JobErrorInfo",
    "JobKind",
    "JobStatus",
    "ModelInfo",
    "parse_time",
]

JobKind = str
"""One of ``"image"``, ``"image_edit"``, ``"video"``, ``"speech"``, ``"transcription"``."""

_SURROGATE = re.compile("[\ud800-\udfff]")


def _scrub(value: Any) -> Any:
    """Return ``value`` with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, Enum):
        return value
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, BaseModel):
        return value.model_copy(
            update={name: _scrub(getattr(value, name)) for name in type(value).model_fields}
        )
    if isinstance(value, dict):
        return {_scrub(key): _scrub(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub(item) for item in value)
    return value


def _writable(dumped: Any) -> bool:
    """Tell whether JSON-mode output holds no lone surrogate (checked by pydantic's encoder)."""
    try:
        to_json(dumped)
    except PydanticSerializationError:
        return False
    return True


class _Frozen(BaseModel):
    """Base of the data models: frozen, and always writable as JSON.

    A provider may send a lone surrogate (U+D800 to U+DFFF, unpaired) in a JSON string, which
    Python decodes but no UTF-8 encoder can write. Such characters are kept as received in memory;
    in JSON mode (``model_dump(mode="json")``, ``job.to_dict()``) they become U+FFFD, so a
    snapshot can always be stored and sent on.

    Validators and serializers are built on first use (``defer_build``), not at import.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        try:
            dumped = handler(self)
        except UnicodeEncodeError:  # a surrogate in a dictionary key
            if not info.mode_is_json():
                raise
            dumped = handler(_scrub(self))
        if info.mode_is_json() and not _writable(dumped):
            return _scrub(dumped)
        return dumped


class Artifact(_Frozen):
    """One output file of a job."""

    url: str
    """Where the bytes are: a provider content URL or a pre-signed storage URL."""
    index: int
    """The artifact's position among the job's outputs (0-based)."""
    media_type: str | None = None
    """The MIME type when the provider says or the URL implies it."""
    fallback_url: str | None = None
    """A second source of the same bytes, tried when ``url`` fails (403, 404, or a
    connection error after retries). Set when ``url`` is a signed storage URL that needs no
    credentials and the provider also offers a content route on its API host that needs the
    key (OpenRouter's ``urls[i]`` beside ``unsigned_urls[i]``); ``None`` otherwise."""


class JobErrorInfo(_Frozen):
    """Why a job failed, as the provider put it."""

    message: str
    """The provider's message."""
    code: str | None = None
    """The provider's error code, when it gave one."""


class JobData(_Frozen):
    """An immutable snapshot of a job, normalized across providers."""

    id: str
    """The provider's job id."""
    provider: str
    """The provider's name (``"openrouter"``, …)."""
    status: JobStatus
    """The normalized status."""
    raw_status: str
    """The status string exactly as the provider sent it."""
    kind: str | None = None
    """What was asked for (``"video"``, …), when known."""
    model: str | None = None
    """The model, when known."""
    artifacts: list[Artifact] = Field(default_factory=list)
    """The outputs, once the job has succeeded."""
    error: JobErrorInfo | None = None
    """Why the job failed, when it did."""
    cost: float | None = None
    """What the job cost, in the provider's unit, when reported."""
    usage: dict[str, Any] = Field(default_factory=dict)
    """Usage figures as the provider reported them."""
    created_at: datetime | None = None
    """When the job was created (timezone-aware)."""
    completed_at: datetime | None = None
    """When the job finished (timezone-aware)."""
    expires_at: datetime | None = None
    """When the job or its outputs expire (timezone-aware)."""
    poll_url: str | None = None
    """The absolute URL its status is read from."""
    content_url: str | None = None
    """A provider URL that answers with (or redirects to) fresh artifact URLs, if any."""
    route: str | None = None
    """Dialect-private routing hint (which status route matches the create route)."""
    raw: dict[str, Any] = Field(default_factory=dict)
    """The provider's last payload, as received."""

    def model_post_init(self, context: Any, /) -> None:
        """Share one "fields set" record among all snapshots.

        pydantic keeps a per-instance set of the fields given explicitly, used only by
        ``exclude_unset``; for ten thousand jobs that set would be most of their memory. A
        snapshot is always complete, so all of them share the set of every field name
        (``model_copy`` copies it before changing it).
        """
        object.__setattr__(self, "__pydantic_fields_set__", _ALL_FIELDS)

    @property
    def done(self) -> bool:
        """Whether the status is terminal."""
        return self.status.is_terminal


_ALL_FIELDS: set[str] = set(JobData.model_fields)


class ModelInfo(_Frozen):
    """One entry of a provider's model listing (``client.models()``).

    The typed fields hold what the provider's listing states; a value it leaves out (or sends
    as ``null``) is an empty tuple or ``None``. Everything else the entry carries (pricing,
    flags) stays in :attr:`raw`.
    """

    id: str
    """The model id, as passed to ``client.submit(..., model=...)``."""
    name: str | None = None
    """The human-readable name, when given."""
    kinds: tuple[str, ...] = ()
    """The job kinds the model serves (``"video"``, …)."""
    durations: tuple[int, ...] = ()
    """Supported output durations in seconds."""
    resolutions: tuple[str, ...] = ()
    """Supported resolutions (``"720p"``, …)."""
    aspect_ratios: tuple[str, ...] = ()
    """Supported aspect ratios (``"16:9"``, …)."""
    sizes: tuple[str, ...] = ()
    """Supported sizes as ``"WxH"``."""
    raw: dict[str, Any] = Field(default_factory=dict)
    """The entry exactly as the provider sent it."""


_NAIVE_SPACE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")


def parse_time(value: Any) -> datetime | None:
    """Parse any time format the providers send into a timezone-aware ``datetime``.

    Accepts unix seconds (int, float or digit string; milliseconds when the number is too large
    for seconds), ISO 8601 with ``Z`` or an offset, and ``YYYY-MM-DD HH:MM:SS[.ff]`` without a
    zone (taken as UTC). ``None``, ``""`` and ``0`` mean "not set".

    Args:
        value: The raw value.

    Returns:
        The aware datetime in UTC, or ``None`` when unset.

    Raises:
        ValueError: When the value is in none of these formats.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if value is None or (isinstance(value, (str, int, float)) and value in ("", 0)):
        return None
    if isinstance(value, str):
        return _parse_text(value)
    if isinstance(value, (int, float)):
        return _from_unix(float(value))
    raise ValueError(f"not a time: {value!r}")


@functools.lru_cache(maxsize=1024)
def _from_unix(seconds: float) -> datetime:
    if seconds > 1e11:  # milliseconds
        seconds /= 1000.0
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=seconds)


@functools.lru_cache(maxsize=1024)
def _parse_text(value: str) -> datetime:
    """Parse a non-empty time string (cached: every poll of a job repeats its times).

    Raises:
        ValueError: When the text is in none of the formats :func:`parse_time` accepts.
    """
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return _from_unix(float(text))
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if _NAIVE_SPACE.match(text):
        text = text.replace(" ", "T", 1)
    # Python 3.10's fromisoformat accepts only 3 or 6 fraction digits: normalize to 6.
    text = re.sub(r"\.(\d+)", lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)
