"""Artifact downloads: streamed, atomic, resumable, with credentials scoped to each hop.

Three layers, so that the blocking and the async client share every decision:

* **Pure decisions** -- naming (:func:`extension_for`, :func:`safe_stem`, :func:`target_in`),
  the checks made before any byte moves (:func:`check_job`), reading ``Content-Range``
  (:func:`body_span`) and aggregating progress (:class:`Progress`).
* **One flow per artifact** (:func:`artifact_flow`), a generator in the style of ``_flows.py``.
  It yields :class:`~mediajobs._flows.Send` (open a streamed response), :class:`Consume` (copy
  or skim its body, then close it), :class:`~mediajobs._flows.Sleep` and :class:`RefreshJob`,
  and decides everything else: redirects (each hop passes through ``Settings.prepare``, so the
  key goes only to the provider's API hosts and never follows a redirect to storage), retries
  within the :class:`~mediajobs.RetryPolicy`, ``Range`` resume or restart from zero, the one
  refresh of a refused (expired) URL, and the ``Content-Length`` check.
* **Two small drivers** run those steps: :func:`download_sync` (a thread per artifact, up to
  ``concurrency``) and :func:`download_async` (an anyio task group and ``CapacityLimiter``,
  so asyncio and trio alike). Only the byte-copy loop and step dispatch exist twice.

Files are written to ``.<job id>_<index>.part-<random>`` in ``dest_dir``, flushed and fsynced,
and renamed to ``<job id>_<index><ext>`` only once *every* artifact of the call is complete:
a failure or a cancellation anywhere leaves neither a final file nor a temporary one.

Errors: every failure of a download surfaces as :class:`~mediajobs.DownloadError` whose
``url`` has no query string (pre-signed URLs carry their signature there). What caused it --
the :class:`~mediajobs.APIError` for an HTTP status, the
:class:`~mediajobs.APIConnectionError` for a network failure, the ``OSError`` for a disk
failure -- is chained as ``__cause__``. A job that did not succeed raises its
:class:`~mediajobs.JobError`; a job still running raises ``DownloadError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import mimetypes
import os
import posixpath
import re
import secrets
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, cast
from urllib.parse import unquote

import anyio
import anyio.to_thread
import httpx

from ._exceptions import APIError, DownloadError, MediaJobsError, error_class_for_status
from ._flows import RETRYABLE_STATUS, Send, Settings, Sleep, raise_for_outcome, translate
from ._models import Artifact, JobData, JobStatus
from ._policy import parse_retry_after

__all__ = [
    "Consume",
    "Consumed",
    "Fetched",
    "Progress",
    "RefreshJob",
    "artifact_flow",
    "body_span",
    "check_job",
    "download_async",
    "download_sync",
    "extension_for",
    "safe_stem",
    "safe_url",
    "target_in",
]

log = logging.getLogger("mediajobs")

OnProgress = Callable[[int, int | None], Any]

MAX_REDIRECTS = 10
"""Redirect hops followed for one request."""
PROGRESS_INTERVAL = 0.1
"""Seconds between two progress reports, except for the first, the last, and a new total."""
_SNIPPET = 2000  # bytes of an error body kept for the error message
_SKIM_LIMIT = 64 * 1024  # bytes of an error body read at most
_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
_EXTENSION = re.compile(r"\.[a-z0-9]{1,10}")
_URL_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_MAX_STEM = 120
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)", re.IGNORECASE)

# Extensions where ``mimetypes`` is missing, platform-dependent or odd (``.jpe``, ``.mpga``).
_EXTENSIONS: dict[str, str] = {
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/pjpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/avif": ".avif",
    "image/heic": ".heic",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/wav": ".wav",
    "audio/wave": ".wav",
    "audio/x-wav": ".wav",
    "audio/vnd.wave": ".wav",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/flac": ".flac",
    "audio/x-flac": ".flac",
    "audio/aac": ".aac",
    "audio/mp4": ".m4a",
    "audio/webm": ".weba",
    "application/json": ".json",
    "text/plain": ".txt",
    "text/vtt": ".vtt",
    "application/x-subrip": ".srt",
}
# Types that say nothing about the bytes: the URL's suffix is a better guess.
_GENERIC_TYPES = frozenset(
    {"application/octet-stream", "binary/octet-stream", "application/binary", "application/unknown"}
)


# ----------------------------------------------------------------------------- naming


def extension_for(
    content_type: str | None, url: str | None = None, media_type: str | None = None
) -> str:
    r"""Choose a file extension for an artifact.

    The answer's ``Content-Type`` wins; a generic one (``application/octet-stream``) or none
    falls back to the URL path's suffix when it is short and alphanumeric, then to the media
    type the provider announced for the artifact, then to ``.bin``. Whatever the inputs, the
    result matches ``\.[a-z0-9]{1,10}``: it can never carry a path separator.

    Args:
        content_type: The ``Content-Type`` header of the answer that carried the bytes.
        url: The URL the bytes came from (after redirects).
        media_type: The provider's announced type for the artifact, if any.

    Returns:
        The extension, with its dot.
    """
    for kind in (content_type, None, media_type):
        if kind is None:
            suffix = _url_suffix(url)
            if suffix:
                return suffix
            continue
        found = _type_extension(kind)
        if found:
            return found
    return ".bin"


def _type_extension(content_type: str) -> str | None:
    essence = content_type.split(";", 1)[0].strip().lower()
    if not essence or essence in _GENERIC_TYPES:
        return None
    found = _EXTENSIONS.get(essence) or mimetypes.guess_extension(essence, strict=False)
    if found and _EXTENSION.fullmatch(found.lower()):
        return found.lower()
    return None


def _url_suffix(url: str | None) -> str | None:
    if not url:
        return None
    try:
        path = unquote(httpx.URL(url).path)
    except (httpx.InvalidURL, TypeError):
        return None
    suffix = posixpath.splitext(posixpath.basename(path.replace("\\", "/")))[1]
    if _URL_SUFFIX.fullmatch(suffix):
        return suffix.lower()
    return None


def safe_stem(job_id: str, index: int) -> str:
    """Return the file name stem ``<job id>_<index>``, made safe for any file system.

    Characters outside ``A-Z a-z 0-9 . _ -`` become ``_``, leading dots are dropped (no hidden
    files, no ``..``) and the id is cut to a sane length. When the id had to change, a short
    hash of the original is added so that two odd ids cannot share a name.

    Args:
        job_id: The provider's job id, as sent.
        index: The artifact's index.

    Returns:
        The stem: a single path component, never empty, never starting with a dot.
    """
    cleaned = _UNSAFE_CHARS.sub("_", job_id).lstrip(".")[:_MAX_STEM]
    if cleaned != job_id:
        digest = hashlib.sha256(job_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cleaned = f"{cleaned or 'job'}-{digest}"
    return f"{cleaned}_{index}"


def target_in(directory: Path, name: str) -> Path:
    """Join a file name to a (resolved) directory, refusing anything that would leave it.

    Args:
        directory: The destination directory, already resolved.
        name: The file name.

    Returns:
        ``directory / name``.

    Raises:
        DownloadError: If the name is not one plain path component.
    """
    separators = {"/", "\\", "\0", os.sep, os.altsep or "/"}
    if name in ("", ".", "..") or any(sep in name for sep in separators):
        raise DownloadError(f"refusing the unsafe file name {name!r}")
    target = directory / name
    if target.parent != directory:
        raise DownloadError(f"refusing the unsafe file name {name!r}")
    return target


def safe_url(url: str | httpx.URL) -> str:
    """Return a URL fit for messages and logs: no user info, no query, no fragment.

    Args:
        url: The URL.

    Returns:
        ``scheme://host[:port]/path``.
    """
    try:
        parsed = httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError):
        return "<unreadable URL>"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


# ------------------------------------------------------------------------ checks


def check_job(job: JobData, wrap: Callable[[JobData], Any] = lambda d: d) -> None:
    """Refuse to download a job that has not succeeded or has nothing to download.

    Args:
        job: The latest snapshot.
        wrap: Turns the snapshot into the handle stored on a :class:`~mediajobs.JobError`.

    Raises:
        JobFailedError: The job failed.
        JobCancelledError: The job was cancelled.
        JobExpiredError: The job expired.
        DownloadError: The job is still queued or running, or succeeded without artifacts.
    """
    if job.status is JobStatus.SUCCEEDED:
        if not job.artifacts:
            raise DownloadError(f"{job.provider} job {job.id} succeeded but has no artifacts")
        return
    raise_for_outcome(job, wrap)
    raise DownloadError(
        f"{job.provider} job {job.id} has not finished (status: {job.status.value}); "
        "wait for it before downloading"
    )


def _prepare_dir(dest_dir: str | os.PathLike[str]) -> Path:
    path = Path(dest_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise DownloadError(f"{path} exists and is not a directory") from exc
    except OSError as exc:
        raise DownloadError(f"cannot create the directory {path}: {exc.strerror or exc}") from exc
    if not path.is_dir():
        raise DownloadError(f"{path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise DownloadError(f"the directory {path} is not writable")
    return path.resolve()


def _stems(job: JobData) -> list[str]:
    indexes = [artifact.index for artifact in job.artifacts]
    if len(set(indexes)) != len(indexes) or min(indexes) < 0:
        indexes = list(range(len(indexes)))  # a provider bug must not make two files one
    return [safe_stem(job.id, index) for index in indexes]


def _refuse_existing(directory: Path, stems: Sequence[str]) -> None:
    # The extension is known only once the answer arrives, so any "<stem>.<ext>" counts.
    patterns = [re.compile(re.escape(stem) + r"\.[A-Za-z0-9]{1,10}") for stem in stems]
    try:
        names = os.listdir(directory)
    except OSError as exc:
        raise DownloadError(f"cannot list {directory}: {exc.strerror or exc}") from exc
    clashes = sorted(n for n in names if any(p.fullmatch(n) for p in patterns))
    if clashes:
        raise DownloadError(
            f"{directory / clashes[0]} already exists; pass overwrite=True to replace it"
        )


# ----------------------------------------------------------------------- progress


class Progress:
    """Aggregates the bytes of every artifact of one call into ``(done, total)`` reports.

    ``total`` is the sum of the artifacts' sizes once every size is known, ``None`` before.
    ``done`` counts bytes on disk, so a download restarted from zero moves it back. Reports
    are throttled to one per :data:`PROGRESS_INTERVAL`, except the first, any change of the
    total, and the last. Not thread-safe: the drivers call it under their own lock.

    Args:
        count: How many artifacts.
        clock: A monotonic clock.
        interval: The least time between two throttled reports.
    """

    def __init__(
        self,
        count: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self._done = [0] * count
        self._sizes: list[int | None] = [None] * count
        self._clock = clock
        self._interval = interval
        self._last_time: float | None = None
        self._last: tuple[int, int | None] | None = None

    @property
    def total(self) -> int | None:
        """The sum of every artifact's size, or ``None`` while one is unknown."""
        if any(size is None for size in self._sizes):
            return None
        return sum(size for size in self._sizes if size is not None)

    def update(self, key: int, done: int, size: int | None = None) -> tuple[int, int | None] | None:
        """Record one artifact's progress.

        Args:
            key: The artifact's position.
            done: Its bytes on disk.
            size: Its full size, when known.

        Returns:
            The report to make now, or ``None`` when throttled.
        """
        self._done[key] = done
        if size is not None:
            self._sizes[key] = size
        report = (sum(self._done), self.total)
        now = self._clock()
        new_total = self._last is None or report[1] != self._last[1]
        if new_total or self._last_time is None or now - self._last_time >= self._interval:
            return self._made(report, now)
        return None

    def final(self) -> tuple[int, int | None] | None:
        """Return the closing report (``done == total``), unless it was the last one made.

        Returns:
            The report, or ``None``.
        """
        done = sum(self._done)
        report = (done, done)
        return None if report == self._last else self._made(report, self._clock())

    def _made(self, report: tuple[int, int | None], now: float) -> tuple[int, int | None]:
        self._last, self._last_time = report, now
        return report


# ----------------------------------------------------------------- the artifact flow


@dataclass(frozen=True)
class Consume:
    """Read an open response's body, then close it; resume the flow with :class:`Consumed`.

    Attributes:
        response: The streamed response (from a ``Send`` step).
        offset: Write the body into the artifact's file from this byte on (the file is cut
            there first); ``None``: write nothing.
        size: The artifact's full size when known (for progress).
        limit: With ``offset=None``, keep at most this many bytes of the body (error bodies);
            0 closes the response unread.
    """

    response: httpx.Response
    offset: int | None = None
    size: int | None = None
    limit: int = 0


@dataclass(frozen=True)
class Consumed:
    """How a :class:`Consume` step ended.

    Attributes:
        written: Body bytes written to the file (after content decoding).
        received: Bytes received on the wire (before content decoding); ``None`` when the
            transport handed over a body already in memory (nothing can be lost then).
        snippet: The start of the body, when asked for with ``limit``.
        error: The network failure that cut the body short, if one did.
    """

    written: int
    received: int | None
    snippet: bytes = b""
    error: httpx.HTTPError | None = None


@dataclass(frozen=True)
class RefreshJob:
    """Re-read the job for fresh artifact URLs; resume with the new ``JobData``."""


@dataclass(frozen=True)
class Fetched:
    """What a finished artifact flow knows about the bytes it stored.

    Attributes:
        content_type: The ``Content-Type`` of the answer that carried them.
        url: Where they came from, after redirects (for the extension fallback).
        size: How many bytes were stored.
    """

    content_type: str | None
    url: str
    size: int


DownloadStep = Send | Sleep | Consume | RefreshJob
DownloadFlow = Generator[DownloadStep, Any, Fetched]


class _RetryableError(Exception):
    """Internal: this attempt failed in a way another attempt may fix."""

    def __init__(self, reason: str, cause: BaseException | None = None, hint: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.cause = cause
        self.hint = hint


class _RefusedError(Exception):
    """Internal: 403, which on a pre-signed URL means it has expired."""

    def __init__(self, error: APIError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class _Cursor:
    """Where one artifact's download stands; owned by its flow."""

    job: JobData
    artifact: Artifact
    via_content: bool = False  # ask dialect.build_content instead of artifact.url
    have: int = 0  # bytes of the file known good
    total: int | None = None  # the artifact's full size, once an answer said
    validator: str | None = None  # strong ETag or Last-Modified, for If-Range
    ranges: bool = True  # False once resuming is pointless (encoded body, bad Content-Range)
    refreshed: bool = False
    content_type: str | None = None
    url: str = ""  # the URL of the last hop, for errors

    def restart(self) -> None:
        self.have = 0

    def describe(self) -> str:
        return f"{self.job.provider} job {self.job.id} artifact {self.artifact.index}"

    def fail(self, reason: str) -> DownloadError:
        return DownloadError(f"{self.describe()}: {reason}", url=safe_url(self.url))

    def first_request(self, settings: Settings) -> httpx.Request:
        if self.via_content:
            request = settings.dialect.build_content(self.job, self.artifact)
            if request is not None:
                return request
        return httpx.Request("GET", self.artifact.url)

    def hop_headers(self) -> dict[str, str]:
        # identity: Range offsets and Content-Length then count the bytes written to disk.
        headers = {"Accept-Encoding": "identity"}
        if self.have > 0 and self.ranges:
            headers["Range"] = f"bytes={self.have}-"
            if self.validator:
                headers["If-Range"] = self.validator
        return headers


@dataclass(frozen=True)
class _Span:
    """Where a 2xx body goes: it starts at ``offset``, should end at ``end`` (exclusive)."""

    offset: int
    end: int | None
    total: int | None


def _content_length(headers: httpx.Headers) -> int | None:
    value = headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None] | None:
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    if match is None:
        return None
    first, last, size = match.groups()
    return (
        None if first is None else int(first),
        None if last is None else int(last),
        None if size == "*" else int(size),
    )


def body_span(status: int, headers: httpx.Headers, *, have: int, total: int | None) -> _Span | None:
    """Decide where a successful answer's body goes in the artifact's file.

    A ``200`` is the whole artifact from byte 0 (so a server that ignored ``Range`` restarts
    the file). A ``206`` must start exactly at ``have`` and agree with its own
    ``Content-Length`` and with any size seen before.

    Args:
        status: The answer's status (2xx).
        headers: Its headers.
        have: The bytes already in the file.
        total: The artifact's full size, if known from an earlier answer.

    Returns:
        The span, or ``None`` when the answer cannot be used.
    """
    length = _content_length(headers)
    if status != 206:
        return _Span(0, length, length)
    parsed = _content_range(headers.get("content-range"))
    if parsed is None:
        return None
    first, last, size = parsed
    if first is None or last is None or first != have or last < first:
        return None
    if length is not None and length != last - first + 1:
        return None
    if size is not None and (last >= size or (total is not None and size != total)):
        return None
    return _Span(first, last + 1, size if size is not None else total)


def _validator(headers: httpx.Headers) -> str | None:
    etag = headers.get("etag")
    if etag and not str(etag).startswith("W/"):
        return str(etag)
    modified = headers.get("last-modified")
    return None if modified is None else str(modified)


def _encoded(headers: httpx.Headers) -> bool:
    return headers.get("content-encoding", "identity").strip().lower() not in ("", "identity")


def _api_error(settings: Settings, response: httpx.Response, snippet: bytes) -> APIError:
    status = response.status_code
    message = f"HTTP {status} {response.reason_phrase}".rstrip()
    body: str | None = None
    if settings.dialect.is_api_url(response.request.url):
        # Storage hosts' error bodies may quote the signature: only the API's are kept.
        body = settings.redact(snippet.decode("utf-8", "replace")).strip() or None
        if body:
            message += f": {body[:300]}"
    return error_class_for_status(status)(
        message,
        status_code=status,
        body=body,
        response=response,
        provider=settings.dialect.name,
    )


def _redirect_target(url: httpx.URL, location: str) -> httpx.URL | None:
    try:
        target = url.join(location)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    return target if target.scheme in ("http", "https") and target.host else None


def _open(settings: Settings, cursor: _Cursor) -> Generator[DownloadStep, Any, httpx.Response]:
    """Send the artifact request, following redirects hop by hop.

    Every hop is a fresh request completed by ``settings.prepare``: the key goes to the
    provider's API hosts and to nothing else, whatever the previous hop was.
    """
    request = cursor.first_request(settings)
    for _ in range(MAX_REDIRECTS + 1):
        request.headers.update(cursor.hop_headers())
        settings.prepare(request)
        cursor.url = str(request.url)
        if request.url.scheme not in ("http", "https") or not request.url.host:
            raise cursor.fail("not an http(s) URL")
        try:
            response: httpx.Response = yield Send(request, stream=True)
        except httpx.HTTPError as exc:
            failure = translate(exc, request)
            raise _RetryableError(failure.message, failure) from None
        location = response.headers.get("location")
        if response.status_code not in _REDIRECT_STATUS or not location:
            return response
        yield Consume(response)
        target = _redirect_target(request.url, location)
        if target is None:
            raise cursor.fail(f"unusable redirect (HTTP {response.status_code})")
        request = httpx.Request("GET", target)
    raise cursor.fail(f"more than {MAX_REDIRECTS} redirects")


def _attempt(settings: Settings, cursor: _Cursor) -> Generator[DownloadStep, Any, Fetched]:
    """One attempt: open, check the answer, copy the body, check its length."""
    response = yield from _open(settings, cursor)
    status = response.status_code
    if status == 416 and cursor.have > 0:
        yield Consume(response)
        parsed = _content_range(response.headers.get("content-range"))
        if parsed is not None and parsed[2] == cursor.have and cursor.total in (None, cursor.have):
            return Fetched(cursor.content_type, str(response.url), cursor.have)  # had it all
        cursor.restart()
        raise _RetryableError("the server refused the byte range")
    if not 200 <= status < 300:
        consumed: Consumed = yield Consume(response, limit=_SNIPPET)
        error = _api_error(settings, response, consumed.snippet)
        if status == 403:
            raise _RefusedError(error)
        if status in RETRYABLE_STATUS:
            hint = parse_retry_after(response.headers.get("retry-after"))
            raise _RetryableError(error.message, error, hint)
        raise cursor.fail(error.message) from error
    span = body_span(status, response.headers, have=cursor.have, total=cursor.total)
    if span is None:
        yield Consume(response)
        cursor.restart()
        cursor.ranges = False
        raise _RetryableError(f"unusable partial answer ({response.headers.get('content-range')})")
    if span.offset == 0:
        if cursor.have:
            log.debug("%s: no resume from %s, restarting", cursor.describe(), safe_url(cursor.url))
        cursor.validator = _validator(response.headers)
    cursor.total = span.total
    cursor.content_type = response.headers.get("content-type") or cursor.content_type
    encoded = _encoded(response.headers)
    consumed = yield Consume(response, offset=span.offset, size=None if encoded else span.total)
    cursor.have = span.offset + consumed.written
    want = None if span.end is None else span.end - span.offset
    got = consumed.written
    if encoded:
        # Content-Length and Range count encoded bytes here: check those, restart on failure.
        cursor.ranges = False
        got = consumed.received if consumed.received is not None else want or 0
    if consumed.error is not None:
        failure = translate(consumed.error, response.request)
        raise _RetryableError(f"connection lost after {got} bytes: {failure.message}", failure)
    if want is not None and got < want:
        raise _RetryableError(f"the body ended after {got} of {want} bytes")
    if want is not None and got > want:
        raise cursor.fail(f"the server sent {got} bytes after announcing {want}")
    return Fetched(cursor.content_type, str(response.url), cursor.have)


def _refresh(settings: Settings, cursor: _Cursor) -> Generator[DownloadStep, Any, None]:
    """Get a fresh URL for a refused artifact: the provider's content route, else the job."""
    cursor.refreshed = True
    if not cursor.via_content and settings.dialect.build_content(cursor.job, cursor.artifact):
        cursor.via_content = True
    else:
        try:
            fresh: JobData = yield RefreshJob()
        except MediaJobsError as exc:
            raise cursor.fail(f"refused, and the job could not be re-read: {exc}") from exc
        match = [a for a in fresh.artifacts if a.index == cursor.artifact.index]
        if fresh.status is not JobStatus.SUCCEEDED or not match:
            raise cursor.fail("refused, and the job no longer lists the artifact")
        cursor.job, cursor.artifact, cursor.via_content = fresh, match[0], False
    if cursor.validator is None:
        cursor.restart()  # nothing proves the fresh URL serves the same bytes


def artifact_flow(settings: Settings, job: JobData, artifact: Artifact) -> DownloadFlow:
    """Download one artifact into its part file, as steps for a driver.

    Transient failures (connection errors, timeouts, 408/429/5xx, a body cut short) are
    retried per ``settings.retry``: ``max_attempts`` attempts in a row that add no new bytes
    end the download, while an attempt that got further than any before starts the count
    afresh (a long video over a flaky link still finishes; a server that never sends a byte
    is given up on). The delay is the policy's backoff with jitter, or ``Retry-After``. A
    ``403`` is taken for an expired pre-signed URL and refreshed once.

    This loop is the retry logic ``_flows.request_flow`` runs through tenacity, written out:
    the resume offset, the restart and the one refresh are state that its build/parse shape
    does not carry. It uses the same policy, classification and error translation.

    Args:
        settings: The client's settings.
        job: The job (for refreshing).
        artifact: The artifact.

    Returns:
        What was stored.

    Raises:
        DownloadError: When the artifact cannot be fetched completely.
    """
    cursor = _Cursor(job=job, artifact=artifact, url=artifact.url)
    policy = settings.retry
    failures = 0
    best = 0
    while True:
        try:
            return (yield from _attempt(settings, cursor))
        except _RetryableError as retry:
            if cursor.have > best:
                best, failures = cursor.have, 0
            failures += 1
            if failures >= policy.max_attempts:
                message = f"{retry.reason} (gave up after {failures} attempts without progress)"
                raise cursor.fail(message) from retry.cause
            delay = policy.next_delay(failures, hint=retry.hint)
            log.debug("%s: %s; retrying in %.2fs", cursor.describe(), retry.reason, delay)
            yield Sleep(delay)
        except _RefusedError as refused:
            if cursor.refreshed:
                message = f"{refused.error.message}, even with a fresh URL"
                raise cursor.fail(message) from refused.error
            log.debug("%s: refused, refreshing its URL", cursor.describe())
            yield from _refresh(settings, cursor)


# ---------------------------------------------------------------------- the files


class _Part:
    """A temporary file in the destination directory that becomes the artifact on commit."""

    def __init__(self, directory: Path, stem: str, url: str) -> None:
        self._url = url
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        for _ in range(10):
            self.path = directory / f".{stem}.part-{secrets.token_hex(4)}"
            try:
                fd = os.open(self.path, flags, 0o666)  # the umask applies, as for any new file
            except FileExistsError:
                continue
            except OSError as exc:
                raise self._error("cannot create a file in", exc, directory) from exc
            break
        else:
            raise DownloadError(f"cannot create a temporary file in {directory}", url=url)
        self._file: IO[bytes] | None = os.fdopen(fd, "wb")

    def _error(self, what: str, exc: OSError, where: Path | None = None) -> DownloadError:
        return DownloadError(f"{what} {where or self.path}: {exc.strerror or exc}", url=self._url)

    def rewind(self, offset: int) -> None:
        """Cut the file at ``offset`` and write from there."""
        assert self._file is not None
        try:
            self._file.seek(offset)
            self._file.truncate()
        except OSError as exc:
            raise self._error("cannot write", exc) from exc

    def write(self, chunk: bytes) -> None:
        """Append a chunk."""
        assert self._file is not None
        try:
            self._file.write(chunk)
        except OSError as exc:
            raise self._error("cannot write", exc) from exc

    def finish(self) -> None:
        """Flush, fsync and close the file."""
        assert self._file is not None
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as exc:
            raise self._error("cannot write", exc) from exc
        self._file = None

    def discard(self) -> None:
        """Close and delete the file (never raises)."""
        with contextlib.suppress(OSError):
            if self._file is not None:
                self._file.close()
        self._file = None
        with contextlib.suppress(OSError):
            self.path.unlink()


@dataclass
class _Item:
    position: int
    artifact: Artifact
    stem: str
    part: _Part | None = None
    fetched: Fetched | None = None


class _HasData(Protocol):
    @property
    def data(self) -> JobData: ...


@dataclass
class _Batch:
    """One ``download`` call: its checks, its artifacts, its progress and its commit."""

    settings: Settings
    job: JobData
    directory: Path
    overwrite: bool
    items: list[_Item] = field(default_factory=list)
    progress: Progress = field(init=False)

    @classmethod
    def start(
        cls,
        settings: Settings,
        job: JobData | _HasData,
        dest_dir: str | os.PathLike[str],
        *,
        overwrite: bool,
    ) -> _Batch:
        data = job if isinstance(job, JobData) else job.data
        check_job(data, lambda _: job)
        directory = _prepare_dir(dest_dir)
        stems = _stems(data)
        if not overwrite:
            _refuse_existing(directory, stems)
        batch = cls(settings, data, directory, overwrite)
        batch.items = [
            _Item(position, artifact, stem)
            for position, (artifact, stem) in enumerate(zip(data.artifacts, stems, strict=True))
        ]
        batch.progress = Progress(len(batch.items))
        return batch

    def begin(self, item: _Item) -> tuple[DownloadFlow, _Part]:
        item.part = _Part(self.directory, item.stem, safe_url(item.artifact.url))
        return artifact_flow(self.settings, self.job, item.artifact), item.part

    def commit(self) -> list[Path]:
        """Rename every part file to its final name, all checks first."""
        targets: list[Path] = []
        for item in self.items:
            assert item.fetched is not None
            fetched = item.fetched
            extension = extension_for(fetched.content_type, fetched.url, item.artifact.media_type)
            targets.append(target_in(self.directory, item.stem + extension))
        if not self.overwrite:
            for target in targets:
                if os.path.lexists(target):
                    raise DownloadError(
                        f"{target} already exists; pass overwrite=True to replace it"
                    )
        for item, target in zip(self.items, targets, strict=True):
            assert item.part is not None
            try:
                os.replace(item.part.path, target)
            except OSError as exc:
                raise DownloadError(f"cannot create {target}: {exc.strerror or exc}") from exc
            item.part = None
        _fsync_dir(self.directory)
        return targets

    def cleanup(self) -> None:
        """Delete every part file not committed."""
        for item in self.items:
            if item.part is not None:
                item.part.discard()
                item.part = None


def _fsync_dir(directory: Path) -> None:
    # Makes the renames durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Sink:
    """One :class:`Consume` step's bookkeeping; the two copy loops differ only in iterating."""

    def __init__(self, step: Consume, part: _Part) -> None:
        self.step = step
        self.part = part
        self.written = 0
        self.snippet = bytearray()
        self.skimmed = 0
        self.error: httpx.HTTPError | None = None
        self.writing = step.offset is not None
        self.reading = self.writing or step.limit > 0
        # A body the transport handed over whole was read before we got it (httpx preloads it).
        self.in_memory = step.response.is_stream_consumed
        if step.offset is not None:
            part.rewind(step.offset)

    @property
    def done(self) -> int:
        return (self.step.offset or 0) + self.written

    def feed(self, chunk: bytes) -> bool:
        """Take a chunk; return whether to keep reading."""
        if not self.writing:
            # An error body is read to its end when small: leaving a body half-read leaves
            # httpx's async generators unfinished, which trio reports as a ResourceWarning.
            self.skimmed += len(chunk)
            self.snippet += chunk[: self.step.limit - len(self.snippet)]
            return self.skimmed < _SKIM_LIMIT
        self.part.write(chunk)
        self.written += len(chunk)
        return True

    def result(self) -> Consumed:
        received = None if self.in_memory else self.step.response.num_bytes_downloaded
        return Consumed(self.written, received, bytes(self.snippet), self.error)


class _Stepper:
    """Advances a flow with the last step's outcome; shared by both drivers."""

    def __init__(self, flow: DownloadFlow) -> None:
        self.flow = flow
        self.value: Any = None
        self.error: BaseException | None = None
        self.result: Fetched | None = None
        self.opened: list[httpx.Response] = []

    def next(self) -> DownloadStep | None:
        value, error, self.value, self.error = self.value, self.error, None, None
        try:
            return self.flow.send(value) if error is None else self.flow.throw(error)
        except StopIteration as stop:
            self.result = stop.value
            return None

    def opened_response(self, response: httpx.Response) -> httpx.Response:
        self.opened.append(response)  # closed at the end whatever happens in between
        return response


# ------------------------------------------------------------------ blocking driver


class _Stopped(Exception):
    """Internal: another artifact failed or the call was interrupted; stop quietly."""


class _SyncHooks:
    def __init__(
        self,
        progress: Progress,
        on_progress: OnProgress | None,
        refresh: Callable[[], JobData] | None,
    ) -> None:
        self.progress = progress
        self.on_progress = on_progress
        self._refresh = refresh
        self._fresh: JobData | None = None
        self._refresh_lock = threading.Lock()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.failure: BaseException | None = None

    def report(self, key: int, done: int, size: int | None) -> None:
        with self.lock:  # one report at a time, in order
            report = self.progress.update(key, done, size)
            if report is not None and self.on_progress is not None:
                self.on_progress(*report)

    def final(self) -> None:
        report = self.progress.final()
        if report is not None and self.on_progress is not None:
            self.on_progress(*report)

    def refresh(self) -> JobData:
        with self._refresh_lock:
            if self._fresh is None:  # one re-read serves every artifact of the call
                if self._refresh is None:
                    raise DownloadError("no way to re-read the job")
                self._fresh = self._refresh()
            return self._fresh

    def checkpoint(self) -> None:
        if self.stop.is_set():
            raise _Stopped

    def sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise _Stopped

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.failure is None:
                self.failure = exc
        self.stop.set()


def _consume_sync(step: Consume, part: _Part, hooks: _SyncHooks, key: int) -> Consumed:
    sink = _Sink(step, part)
    chunks = cast(Generator[bytes, None, None], step.response.iter_bytes())
    try:
        if sink.writing:
            hooks.report(key, sink.done, step.size)
        for chunk in chunks if sink.reading else ():
            hooks.checkpoint()
            if not sink.feed(chunk):
                break
            if sink.writing:
                hooks.report(key, sink.done, step.size)
    except httpx.HTTPError as exc:
        sink.error = exc
    finally:
        chunks.close()
        step.response.close()
    return sink.result()


def _fetch_sync(batch: _Batch, item: _Item, http: httpx.Client, hooks: _SyncHooks) -> None:
    hooks.checkpoint()
    flow, part = batch.begin(item)
    stepper = _Stepper(flow)
    try:
        while (step := stepper.next()) is not None:
            try:
                if isinstance(step, Send):
                    response = http.send(step.request, stream=True, follow_redirects=False)
                    stepper.value = stepper.opened_response(response)
                elif isinstance(step, Consume):
                    stepper.value = _consume_sync(step, part, hooks, item.position)
                elif isinstance(step, Sleep):
                    hooks.sleep(step.seconds)
                else:
                    stepper.value = hooks.refresh()
            except (httpx.HTTPError, MediaJobsError) as exc:
                stepper.error = exc
    finally:
        flow.close()
        for response in stepper.opened:
            response.close()
    part.finish()
    item.fetched = stepper.result
    assert item.fetched is not None
    hooks.report(item.position, item.fetched.size, item.fetched.size)


def download_sync(
    settings: Settings,
    http: httpx.Client,
    job: JobData | _HasData,
    dest_dir: str | os.PathLike[str],
    *,
    on_progress: OnProgress | None = None,
    overwrite: bool = False,
    concurrency: int = 4,
    refresh: Callable[[], JobData] | None = None,
) -> list[Path]:
    """Download every artifact of a succeeded job, several at once on threads.

    Args:
        settings: The client's settings.
        http: The httpx client.
        job: The job (a handle with ``.data``, or the data itself).
        dest_dir: The directory (created if missing).
        on_progress: Called with ``(done_bytes, total_bytes_or_None)``, one call at a time.
        overwrite: Replace existing files instead of refusing.
        concurrency: The most artifacts downloading at once.
        refresh: Re-reads the job (for fresh URLs after a 403).

    Returns:
        The files written, in artifact order.

    Raises:
        DownloadError: When an artifact cannot be fetched completely or written, when the job
            is not finished or has no artifacts, or when a file exists and ``overwrite`` is off.
        JobError: When the job failed, was cancelled or expired.
    """
    batch = _Batch.start(settings, job, dest_dir, overwrite=overwrite)
    hooks = _SyncHooks(batch.progress, on_progress, refresh)
    try:
        if len(batch.items) == 1 or concurrency <= 1:
            for item in batch.items:
                _fetch_sync(batch, item, http, hooks)
        else:
            _fetch_on_threads(batch, http, hooks, min(concurrency, len(batch.items)))
        paths = batch.commit()
        hooks.final()
        return paths
    finally:
        batch.cleanup()


def _fetch_on_threads(batch: _Batch, http: httpx.Client, hooks: _SyncHooks, workers: int) -> None:
    def work(item: _Item) -> None:
        try:
            _fetch_sync(batch, item, http, hooks)
        except _Stopped:
            pass
        except BaseException as exc:
            hooks.fail(exc)  # the others stop at their next chunk
            raise

    with ThreadPoolExecutor(workers, thread_name_prefix="mediajobs-download") as pool:
        futures = [pool.submit(work, item) for item in batch.items]
        try:
            # Short waits: a pending Ctrl-C is raised here within a tick, even where the
            # signal woke another thread.
            pending = set(futures)
            while pending and not hooks.stop.is_set():
                _, pending = wait_futures(pending, timeout=0.1, return_when=FIRST_EXCEPTION)
        except BaseException:  # KeyboardInterrupt: the workers stop, clean up, then we leave
            hooks.stop.set()
            raise
    if hooks.failure is not None:
        raise hooks.failure


# --------------------------------------------------------------------- async driver


class _AsyncHooks:
    def __init__(
        self,
        progress: Progress,
        on_progress: OnProgress | None,
        refresh: Callable[[], Awaitable[JobData]] | None,
    ) -> None:
        self.progress = progress
        self.on_progress = on_progress
        self._refresh = refresh
        self._fresh: JobData | None = None
        self._refresh_lock = anyio.Lock()
        self._report_lock = anyio.Lock()

    async def report(self, key: int, done: int, size: int | None) -> None:
        # One thread: updates are ordered; only an awaitable callback needs the lock.
        await self._call(self.progress.update(key, done, size))

    async def final(self) -> None:
        await self._call(self.progress.final())

    async def _call(self, report: tuple[int, int | None] | None) -> None:
        if report is None or self.on_progress is None:
            return
        result = self.on_progress(*report)
        if inspect.isawaitable(result):
            async with self._report_lock:
                await result

    async def refresh(self) -> JobData:
        async with self._refresh_lock:
            if self._fresh is None:
                if self._refresh is None:
                    raise DownloadError("no way to re-read the job")
                self._fresh = await self._refresh()
            return self._fresh


async def _consume_async(step: Consume, part: _Part, hooks: _AsyncHooks, key: int) -> Consumed:
    # Chunks are written with plain blocking writes: at most a socket read's worth (tens of
    # KiB) into the page cache takes microseconds, less than a hop to a worker thread would.
    # The one slow call, fsync, runs on a worker thread (see _fetch_async).
    sink = _Sink(step, part)
    chunks = cast(AsyncGenerator[bytes, None], step.response.aiter_bytes())
    try:
        if sink.writing:
            await hooks.report(key, sink.done, step.size)
        if sink.reading:
            async for chunk in chunks:
                if not sink.feed(chunk):
                    break
                if sink.writing:
                    await hooks.report(key, sink.done, step.size)
    except httpx.HTTPError as exc:
        sink.error = exc
    finally:
        with anyio.CancelScope(shield=True):
            await chunks.aclose()
            await step.response.aclose()
    return sink.result()


async def _fetch_async(
    batch: _Batch, item: _Item, http: httpx.AsyncClient, hooks: _AsyncHooks
) -> None:
    flow, part = batch.begin(item)
    stepper = _Stepper(flow)
    try:
        while (step := stepper.next()) is not None:
            try:
                if isinstance(step, Send):
                    response = await http.send(step.request, stream=True, follow_redirects=False)
                    stepper.value = stepper.opened_response(response)
                elif isinstance(step, Consume):
                    stepper.value = await _consume_async(step, part, hooks, item.position)
                elif isinstance(step, Sleep):
                    await anyio.sleep(step.seconds)
                else:
                    stepper.value = await hooks.refresh()
            except (httpx.HTTPError, MediaJobsError) as exc:
                stepper.error = exc
    finally:
        flow.close()
        with anyio.CancelScope(shield=True):
            for response in stepper.opened:
                await response.aclose()
    await anyio.to_thread.run_sync(part.finish)
    item.fetched = stepper.result
    assert item.fetched is not None
    await hooks.report(item.position, item.fetched.size, item.fetched.size)


async def download_async(
    settings: Settings,
    http: httpx.AsyncClient,
    job: JobData | _HasData,
    dest_dir: str | os.PathLike[str],
    *,
    on_progress: OnProgress | None = None,
    overwrite: bool = False,
    concurrency: int = 4,
    refresh: Callable[[], Awaitable[JobData]] | None = None,
) -> list[Path]:
    """Download every artifact of a succeeded job, several at once (asyncio or trio).

    Args:
        settings: The client's settings.
        http: The httpx client.
        job: The job (a handle with ``.data``, or the data itself).
        dest_dir: The directory (created if missing).
        on_progress: Called with ``(done_bytes, total_bytes_or_None)``; awaited if it
            returns an awaitable.
        overwrite: Replace existing files instead of refusing.
        concurrency: The most artifacts downloading at once.
        refresh: Re-reads the job (for fresh URLs after a 403).

    Returns:
        The files written, in artifact order.

    Raises:
        DownloadError: When an artifact cannot be fetched completely or written, when the job
            is not finished or has no artifacts, or when a file exists and ``overwrite`` is off.
        JobError: When the job failed, was cancelled or expired.
    """
    batch = _Batch.start(settings, job, dest_dir, overwrite=overwrite)
    hooks = _AsyncHooks(batch.progress, on_progress, refresh)
    limiter = anyio.CapacityLimiter(max(concurrency, 1))
    failures: list[Exception] = []
    try:
        async with anyio.create_task_group() as group:

            async def work(item: _Item) -> None:
                try:
                    async with limiter:
                        await _fetch_async(batch, item, http, hooks)
                except Exception as exc:  # the first failure is raised below
                    failures.append(exc)
                    group.cancel_scope.cancel()

            for item in batch.items:
                group.start_soon(work, item)
        if failures:
            raise failures[0]
        paths = batch.commit()
        await hooks.final()
        return paths
    finally:
        batch.cleanup()
