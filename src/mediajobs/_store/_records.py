"""What the job store holds, and the pure helpers that shape it (keys, recordable params)."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Final, Literal

from .._exceptions import APIConnectionError, APIError, ConfigurationError
from .._models import JobStatus

__all__ = [
    "ACCEPTED",
    "SUBMITTING",
    "SUBMIT_FAILED",
    "SUBMIT_UNKNOWN",
    "StoredFile",
    "StoredJob",
    "SubmitState",
    "canonical_json",
    "check_labels",
    "idempotency_key_for",
    "recordable_params",
    "spec_key",
    "submit_error_state",
]

SubmitState = Literal["submitting", "submit_unknown", "submit_failed", "accepted"]
"""Where a record's submit stands.

``submitting``: recorded, the request is (or was about to be) sent; ``submit_unknown``: the
request may have reached the provider but no answer came back; ``submit_failed``: the provider
refused it (no job, the key may be submitted again); ``accepted``: the provider returned a job id.
"""

SUBMITTING: Final = "submitting"
SUBMIT_UNKNOWN: Final = "submit_unknown"
SUBMIT_FAILED: Final = "submit_failed"
ACCEPTED: Final = "accepted"

_IDEMPOTENCY_NAMESPACE = b"mediajobs idempotency-key v1"
_SPEC_NAMESPACE = b"mediajobs spec-key v1"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredFile:
    """One downloaded artifact file, as recorded when the download finished."""

    index: int
    """The artifact's index in the job."""
    path: str
    """Where the file was written (as the downloading process saw it)."""
    size: int
    """Its size in bytes."""
    sha256: str
    """The hex SHA-256 of its content."""


@dataclass(frozen=True)
class StoredJob:
    """One record of the store: a submit, its job once accepted, and the files downloaded."""

    provider: str
    """The provider's name."""
    key: str
    """The caller's stable name for the job (unique per provider within a store)."""
    idempotency_key: str
    """The ``Idempotency-Key`` header its submit carries (see :func:`idempotency_key_for`)."""
    state: SubmitState
    """Where the submit stands: ``submitting``, ``submit_unknown``, ``submit_failed``,
    ``accepted``."""
    job_id: str | None
    """The provider's job id once accepted, else ``None``."""
    status: JobStatus | None
    """The last status recorded (never earlier than one recorded before), or ``None``."""
    kind: str | None
    """What was asked for (``"video"``, …)."""
    model: str | None
    """The model asked for."""
    prompt: str | None
    """The prompt."""
    params: dict[str, Any]
    """The other parameters; input files appear as ``{"name", "sha256"}`` only."""
    labels: dict[str, Any]
    """The caller's labels, as first recorded."""
    job: dict[str, Any] | None
    """The job's last recorded snapshot (``job.to_dict()``), once accepted."""
    files: tuple[StoredFile, ...]
    """The files recorded for its artifacts, by index."""
    error: str | None
    """Why the submit failed or is unknown (``submit_failed``, ``submit_unknown``)."""
    attempts: int
    """How many times its submit request was (or was about to be) sent."""
    created_at: datetime
    """When the record was made (re-made when a refused submit is sent again), UTC."""
    updated_at: datetime
    """When it last changed, UTC."""

    @property
    def artifact_count(self) -> int:
        """The number of artifacts in the last snapshot (0 before the job succeeded)."""
        if not self.job:
            return 0
        artifacts = self.job.get("artifacts") or []
        return len(artifacts) if isinstance(artifacts, list) else 0

    @property
    def downloaded(self) -> bool:
        """Whether the job succeeded and every artifact has a recorded file."""
        if self.status is not JobStatus.SUCCEEDED:
            return False
        recorded = {f.index for f in self.files}
        return all(i in recorded for i in range(self.artifact_count))


def submit_error_state(error: BaseException) -> Literal["submit_failed", "submit_unknown"]:
    """Classify a failed submit: surely refused, or possibly accepted by the provider.

    ``submit_failed`` (no job exists, the key may be sent again): an error answer the
    provider gives before creating anything (4xx except 409, whose usual meaning with an
    Idempotency-Key is "a request with this key is in flight"), or a connection that never
    opened. ``submit_unknown`` (never re-sent silently): 5xx and 409 answers, a connection cut or
    timed out after the request may have left, an unreadable answer, and any other interruption.

    Args:
        error: What the submit raised.

    Returns:
        The state to record.
    """
    if isinstance(error, APIError):
        refused = 400 <= error.status_code < 500 and error.status_code != 409
        return SUBMIT_FAILED if refused else SUBMIT_UNKNOWN
    if isinstance(error, APIConnectionError) and error.unsent:
        return SUBMIT_FAILED
    return SUBMIT_UNKNOWN


def idempotency_key_for(provider: str, key: str) -> str:
    """Derive the ``Idempotency-Key`` header of a keyed submit.

    It depends on the provider's name and the key only, so every process (and every store)
    sends the same header for the same job: a re-sent submit is recognisable by a provider
    that honours the header.

    Args:
        provider: The provider's name.
        key: The caller's key for the job.

    Returns:
        ``"mj-"`` followed by 48 lowercase hex digits (51 ASCII characters).
    """
    digest = hashlib.sha256(_IDEMPOTENCY_NAMESPACE)
    for part in (provider, key):
        encoded = part.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
    return "mj-" + digest.hexdigest()[:48]


def spec_key(spec: Mapping[str, Any]) -> str:
    """Give a job spec (one batch line) without a ``key`` its default key.

    The key is a digest of the spec's canonical JSON (keys sorted, no spaces), so equal specs
    get the same key whatever their key order or formatting: re-running a batch finds the
    jobs of its earlier run, and two identical lines name one job.

    Args:
        spec: The decoded line: ``kind``, ``model``, ``prompt`` and the other params.

    Returns:
        ``"spec-"`` followed by 40 lowercase hex digits.

    Raises:
        ConfigurationError: If the spec holds something JSON cannot represent.
    """
    digest = hashlib.sha256(_SPEC_NAMESPACE + b"\0" + canonical_json(dict(spec)).encode())
    return "spec-" + digest.hexdigest()[:40]


def canonical_json(value: Any) -> str:
    """Dump JSON-safe data canonically: sorted keys, no spaces, UTF-8, no NaN.

    Args:
        value: The data.

    Returns:
        The JSON text.

    Raises:
        ConfigurationError: If the data is not JSON-safe (non-string keys, NaN, sets, …).
    """
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"not JSON-safe: {exc}") from exc


def check_labels(labels: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate labels: string names, JSON scalar values.

    Args:
        labels: The caller's labels, or ``None``.

    Returns:
        A plain dict copy.

    Raises:
        ConfigurationError: If a name is not a string or a value not a JSON scalar.
    """
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise ConfigurationError(f"labels must be a mapping, not {type(labels).__name__}")
    out: dict[str, Any] = {}
    for name, value in labels.items():
        if not isinstance(name, str):
            raise ConfigurationError(f"label names must be strings, not {name!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigurationError(f"label {name!r} is not a finite number")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise ConfigurationError(
                f"label {name!r} must be a string, number, boolean or None, "
                f"not {type(value).__name__}"
            )
        out[name] = value
    return out


def recordable_params(
    params: Mapping[str, Any], file_params: Collection[str] = ()
) -> dict[str, Any]:
    """Turn a submit's params into what the store records: JSON-safe, files as digests.

    Input files are recorded as ``{"name": ..., "sha256": ...}``, never their content:
    ``bytes``, ``(filename, bytes[, content_type])`` tuples (the form the client reads inputs
    into), :class:`os.PathLike` paths, seekable binary file objects (read, then put back where
    they were) and, for the parameters named in ``file_params``, string paths. URLs and other
    strings stay as they are; a ``data:`` URI in a file parameter is recorded as a digest.

    Args:
        params: The submit's parameters (without ``kind``, ``model``, ``prompt``).
        file_params: The parameter names that carry input files for this provider.

    Returns:
        A new JSON-safe dict.

    Raises:
        ConfigurationError: If a value is neither JSON-safe nor a file, or a file cannot be read.
    """
    files = frozenset(file_params)
    out: dict[str, Any] = {}
    for name, value in params.items():
        if not isinstance(name, str):
            raise ConfigurationError(f"parameter names must be strings, not {name!r}")
        out[name] = _recordable(name, value, is_file=name in files)
    return out


def _recordable(name: str, value: Any, *, is_file: bool) -> Any:
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigurationError(f"{name}= is not a finite number")
        return value
    if isinstance(value, Enum):
        return _recordable(name, value.value, is_file=is_file)
    if isinstance(value, str):
        if not is_file or "://" in value:
            return value
        if value.startswith("data:"):
            return _digest("data-uri", value.encode())
        return _file_digest(name, Path(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _digest(name, bytes(value))
    if isinstance(value, os.PathLike):
        return _file_digest(name, Path(os.fspath(value)))
    if (
        isinstance(value, tuple)
        and len(value) in (2, 3)
        and isinstance(value[1], (bytes, bytearray))
    ):
        return _digest(str(value[0]), bytes(value[1]))
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigurationError(f"{name}= has a non-string key {k!r}")
            out[k] = _recordable(f"{name}.{k}", v, is_file=False)
        return out
    if isinstance(value, (list, tuple)):
        return [_recordable(name, item, is_file=is_file) for item in value]
    if callable(getattr(value, "read", None)):
        return _stream_digest(name, value)
    raise ConfigurationError(f"{name}= cannot be recorded: {type(value).__name__} is not JSON-safe")


def _digest(filename: str, content: bytes) -> dict[str, str]:
    return {"name": filename, "sha256": hashlib.sha256(content).hexdigest()}


def _file_digest(name: str, path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as handle:
            digest = _hash_stream(handle)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {name}={str(path)!r}: {exc.strerror}") from exc
    return {"name": path.name, "sha256": digest}


def _stream_digest(name: str, handle: Any) -> dict[str, str]:
    try:
        position = handle.tell()
        digest = _hash_stream(handle)
        handle.seek(position)
    except (OSError, AttributeError, ValueError) as exc:
        raise ConfigurationError(
            f"{name}= must be a seekable binary file object to be recorded"
        ) from exc
    filename = Path(str(getattr(handle, "name", name))).name
    return {"name": filename, "sha256": digest}


def _hash_stream(handle: Any) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(_CHUNK):
        if not isinstance(chunk, (bytes, bytearray)):
            raise ConfigurationError("input files must be opened in binary mode ('rb')")
        digest.update(chunk)
    return digest.hexdigest()
