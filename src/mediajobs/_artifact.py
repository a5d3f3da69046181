"""Artifact downloads as flows: streamed, resumable, with credentials scoped to each hop.

Pure decisions and generators in the style of ``_flows.py``; the bytes are moved by the
drivers (``_drivers.py``: the :class:`~mediajobs._steps.Consume` step) into part files
(``_files.py``), and names come from ``_naming.py``.

* :func:`artifact_flow` downloads one artifact. It yields ``Send`` (open a streamed response),
  ``Consume`` (copy or skim its body, then close it), ``Sleep`` and ``Refresh``, and decides
  everything else: redirects (each hop passes through ``Settings.prepare``, so the key goes only
  to the provider's API hosts and never follows a redirect to storage), retries through the one
  retry rule, ``Range`` resume or restart from zero, the one switch from a signed URL to its
  keyed fallback URL, the one refresh of a refused (expired) URL, and the ``Content-Length``
  check.
* :func:`download_flow` is one ``download`` call: the job's checks (its outcome raised here,
  with the caller's handle), the part files, every artifact concurrently (``Gather``), the
  atomic commit, and a :class:`~mediajobs._steps.FileWritten` record per file.

The module keeps one artifact's decisions together (redirects, ranges, resume, refresh, length
checks, retries): they share the cursor's state, and reading them in one place is the point.

Errors: every failure of a download surfaces as :class:`~mediajobs.DownloadError` whose
``url`` has no query string (pre-signed URLs carry their signature there). What caused it --
the :class:`~mediajobs.APIError` for an HTTP status, the
:class:`~mediajobs.APIConnectionError` for a network failure, the ``OSError`` for a disk
failure -- is chained as ``__cause__``. A job that did not succeed raises its
:class:`~mediajobs.JobError`; a job still running raises ``DownloadError``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import httpx

from ._exceptions import (
    APIConnectionError,
    APIError,
    DownloadError,
    MediaJobsError,
    error_class_for_status,
    outcome_error,
    translate,
)
from ._flows import refresh_flow
from ._naming import safe_stem, safe_url
from ._policy import parse_retry_after
from ._retry import RETRYABLE_STATUS, RetryRule
from ._settings import Settings
from ._status import JobStatus
from ._steps import (
    Blocking,
    Consume,
    Consumed,
    FileWritten,
    Flow,
    Gather,
    H,
    Record,
    Refresh,
    Report,
    Send,
    Sink,
    Sleep,
    _Value,
    data_of,
)

if TYPE_CHECKING:
    from pathlib import Path

    from ._models import Artifact, JobData

__all__ = [
    "MAX_REDIRECTS",
    "PROGRESS_INTERVAL",
    "Fetched",
    "Files",
    "Progress",
    "artifact_flow",
    "body_span",
    "check_job",
    "download_flow",
    "stems_of",
]

log = logging.getLogger("mediajobs")

MAX_REDIRECTS = 10
"""Redirect hops followed for one request."""
PROGRESS_INTERVAL = 0.1
"""Seconds between two progress reports, except for the first, the last, and a new total."""
_SNIPPET = 2000  # bytes of an error body kept for the error message
_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)", re.IGNORECASE)


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
        clock: Callable[[], float],
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


# ----------------------------------------------------------------- one artifact


class Fetched(_Value):
    """What a finished artifact flow knows about the bytes it stored.

    Attributes:
        content_type: The ``Content-Type`` of the answer that carried them.
        url: Where they came from, after redirects (for the extension fallback).
        size: How many bytes were stored.
    """

    __slots__ = ("content_type", "size", "url")

    def __init__(self, content_type: str | None, url: str, size: int) -> None:
        self.content_type = content_type
        self.url = url
        self.size = size


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


class _SourceFailedError(_RefusedError):
    """Internal: 403 or 404 from a URL whose artifact has a fallback URL still untried."""


class _Cursor:
    """Where one artifact's download stands; owned by its flow."""

    def __init__(
        self,
        job: JobData,
        artifact: Artifact,
        *,
        sink: Sink | None,
        key: int,
        progress: Progress | None,
    ) -> None:
        self.job = job
        self.artifact = artifact
        self.sink = sink  # the part file
        self.key = key  # the artifact's position in the call
        self.progress = progress
        self.via_content = False  # ask dialect.build_content instead of artifact.url
        self.have = 0  # bytes of the file known good
        self.total: int | None = None  # the artifact's full size, once an answer said
        self.validator: str | None = None  # strong ETag or Last-Modified, for If-Range
        self.ranges = True  # False once resuming is pointless (encoded body, bad Content-Range)
        self.refreshed = False
        self.fell_back = False  # the artifact's fallback URL has been taken
        self.content_type: str | None = None
        self.url = artifact.url  # the URL of the last hop, for errors

    def restart(self) -> None:
        self.have = 0

    def may_fall_back(self) -> bool:
        return self.artifact.fallback_url is not None and not self.fell_back

    def fall_back(self, reason: str) -> None:
        """Take the artifact's fallback URL: another source, so start again from byte 0."""
        fallback = self.artifact.fallback_url
        log.debug("%s: %s; trying its fallback URL", self.describe(), reason)
        self.artifact = self.artifact.model_copy(update={"url": fallback, "fallback_url": None})
        self.fell_back = True
        self.via_content = False
        self.validator = None
        self.total = None
        self.ranges = True
        self.restart()

    def describe(self) -> str:
        return f"{self.job.provider} job {self.job.id} artifact {self.artifact.index}"

    def fail(self, reason: str) -> DownloadError:
        return DownloadError(f"{self.describe()}: {reason}", url=safe_url(self.url))

    def first_request(self, settings: Settings) -> httpx.Request:
        if self.via_content:
            request = settings.dialect.build_content(self.job, self.artifact)
            if request is not None:
                return request
        try:
            return httpx.Request("GET", self.artifact.url)
        except httpx.InvalidURL:  # a job rebuilt from a dict is not checked as answers are
            raise self.fail("not a URL") from None

    def hop_headers(self) -> dict[str, str]:
        # identity: Range offsets and Content-Length then count the bytes written to disk.
        headers = {"Accept-Encoding": "identity"}
        if self.have > 0 and self.ranges:
            headers["Range"] = f"bytes={self.have}-"
            if self.validator:
                headers["If-Range"] = self.validator
        return headers


class _Span(_Value):
    """Where a 2xx body goes: it starts at ``offset``, should end at ``end`` (exclusive)."""

    __slots__ = ("end", "offset", "total")

    def __init__(self, offset: int, end: int | None, total: int | None) -> None:
        self.offset = offset
        self.end = end
        self.total = total


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


def _open(settings: Settings, cursor: _Cursor) -> Flow[httpx.Response]:
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
        except httpx.InvalidURL:  # httpx parses every Location, even one not followed
            raise cursor.fail("unusable redirect (not a URL)") from None
        except httpx.HTTPError as exc:
            failure = translate(exc, request)
            raise _RetryableError(failure.message, failure) from None
        location = response.headers.get("location")
        if response.status_code not in _REDIRECT_STATUS or not location:
            return response
        yield Consume(response, key=cursor.key, progress=cursor.progress)
        target = _redirect_target(request.url, location)
        if target is None:
            raise cursor.fail(f"unusable redirect (HTTP {response.status_code})")
        request = httpx.Request("GET", target)
    raise cursor.fail(f"more than {MAX_REDIRECTS} redirects")


def _attempt(settings: Settings, cursor: _Cursor) -> Flow[Fetched | None]:
    """One attempt: open, check the answer, copy the body, check its length.

    Returns ``None`` when the answer was a whole part of the file that ends before the size
    it announced (a CDN capping its answers): the rest is to be asked for at once.
    """
    response = yield from _open(settings, cursor)
    status = response.status_code
    if status == 416 and cursor.have > 0:
        yield Consume(response, key=cursor.key, progress=cursor.progress)
        parsed = _content_range(response.headers.get("content-range"))
        if parsed is not None and parsed[2] == cursor.have and cursor.total in (None, cursor.have):
            return Fetched(cursor.content_type, str(response.url), cursor.have)  # had it all
        cursor.restart()
        raise _RetryableError("the server refused the byte range")
    if not 200 <= status < 300:
        consumed: Consumed = yield Consume(
            response, limit=_SNIPPET, key=cursor.key, progress=cursor.progress
        )
        error = _api_error(settings, response, consumed.snippet)
        if status in (403, 404) and cursor.may_fall_back():
            raise _SourceFailedError(error)
        if status == 403:
            raise _RefusedError(error)
        if status in RETRYABLE_STATUS:
            hint = parse_retry_after(response.headers.get("retry-after"))
            raise _RetryableError(error.message, error, hint)
        raise cursor.fail(error.message) from error
    span = body_span(status, response.headers, have=cursor.have, total=cursor.total)
    if span is None:
        yield Consume(response, key=cursor.key, progress=cursor.progress)
        cursor.restart()
        cursor.ranges = False
        raise _RetryableError(f"unusable partial answer ({response.headers.get('content-range')})")
    validator = _validator(response.headers) if span.offset and cursor.validator else None
    if validator is not None and validator != cursor.validator:
        # If-Range was sent: a 206 naming another version (a lying cache) must not be spliced
        # onto what we have. Start the file again. (A 206 naming none is taken at its word.)
        yield Consume(response, key=cursor.key, progress=cursor.progress)
        cursor.restart()
        raise _RetryableError("the resumed answer is of another version of the file")
    if span.offset == 0:
        if cursor.have:
            log.debug("%s: no resume from %s, restarting", cursor.describe(), safe_url(cursor.url))
        cursor.validator = _validator(response.headers)
    cursor.total = span.total
    cursor.content_type = response.headers.get("content-type") or cursor.content_type
    encoded = _encoded(response.headers)
    consumed = yield Consume(
        response,
        sink=cursor.sink,
        offset=span.offset,
        size=None if encoded else span.total,
        key=cursor.key,
        progress=cursor.progress,
    )
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
    if not encoded and cursor.total is not None and cursor.have < cursor.total:
        # A 206 ending before the total it names is a part, never the end of the file.
        if cursor.ranges:
            return None
        cursor.restart()
        raise _RetryableError(f"the answer ended at byte {cursor.have} of {cursor.total}")
    return Fetched(cursor.content_type, str(response.url), cursor.have)


def _refresh(settings: Settings, cursor: _Cursor) -> Flow[None]:
    """Get a fresh URL for a refused artifact: the provider's content route, else the job."""
    cursor.refreshed = True
    if not cursor.via_content and settings.dialect.build_content(cursor.job, cursor.artifact):
        cursor.via_content = True
    else:
        try:
            fresh: JobData = yield Refresh()
        except MediaJobsError as exc:
            raise cursor.fail(f"refused, and the job could not be re-read: {exc}") from exc
        match = [a for a in fresh.artifacts if a.index == cursor.artifact.index]
        if fresh.status is not JobStatus.SUCCEEDED or not match:
            raise cursor.fail("refused, and the job no longer lists the artifact")
        cursor.job, cursor.artifact, cursor.via_content = fresh, match[0], False
    if cursor.validator is None:
        cursor.restart()  # nothing proves the fresh URL serves the same bytes


def artifact_flow(
    settings: Settings,
    job: JobData,
    artifact: Artifact,
    *,
    sink: Sink | None = None,
    key: int = 0,
    progress: Progress | None = None,
) -> Flow[Fetched]:
    """Download one artifact into its part file, as steps for a driver.

    Transient failures (connection errors, timeouts, 408/429/5xx, a body cut short) go through
    the one :class:`~mediajobs._retry.RetryRule`, counting attempts *without progress*:
    ``max_attempts`` attempts in a row that add no new bytes end the download, while an attempt
    that got further than any before starts the count afresh (a long video over a flaky link
    still finishes; a server that never sends a byte is given up on). The delay is the policy's
    backoff with jitter, or ``Retry-After``. A ``403`` is taken for an expired pre-signed URL
    and refreshed once. A ``206`` that ends before the size it names (some CDNs cap their
    answers) is followed at once by a request for the rest, so a short file never counts as
    complete; a ``206`` of another version than the bytes already stored (its ``ETag``
    differs) restarts the file.

    An artifact with a :attr:`~mediajobs.Artifact.fallback_url` (a signed URL, sent without
    credentials, beside a keyed route on the API host) switches to that URL once, from byte 0,
    when its URL answers 403 or 404 or keeps failing to connect until the retries run out;
    the fallback URL then gets the key, as every API URL does, and nothing else changes.

    Args:
        settings: The client's settings.
        job: The job (for refreshing).
        artifact: The artifact.
        sink: The part file the body goes to.
        key: The artifact's position in the call (for progress).
        progress: The call's progress aggregation.

    Returns:
        What was stored.

    Raises:
        DownloadError: When the artifact cannot be fetched completely.
    """
    cursor = _Cursor(job, artifact, sink=sink, key=key, progress=progress)
    rule = RetryRule(
        settings.retry, clock=settings.clock, random=settings.random, retryable=lambda _: True
    )
    failures = 0
    best = 0
    while True:
        try:
            fetched = yield from _attempt(settings, cursor)
            if fetched is not None:
                return fetched
            log.debug("%s: partial answer, asking for the rest", cursor.describe())
        except _RetryableError as retry:
            if cursor.have > best:
                best, failures = cursor.have, 0
            failures += 1
            message = f"{retry.reason} (gave up after {failures} attempts without progress)"
            failure = cursor.fail(message)
            failure.__cause__ = retry.cause
            what = cursor.describe()
            try:
                delay = rule.delay(
                    failure, failures, what=what, hint=retry.hint, reason=retry.reason
                )
            except DownloadError:
                if not (cursor.may_fall_back() and isinstance(retry.cause, APIConnectionError)):
                    raise
                cursor.fall_back(f"{retry.reason} after {failures} attempts")
                best = failures = 0
                continue
            yield Sleep(delay)
        except _SourceFailedError as failed:
            cursor.fall_back(failed.error.message)
        except _RefusedError as refused:
            if cursor.refreshed:
                message = f"{refused.error.message}, even with a fresh URL"
                raise cursor.fail(message) from refused.error
            log.debug("%s: refused, refreshing its URL", cursor.describe())
            yield from _refresh(settings, cursor)


# ------------------------------------------------------------------- the whole call


class Files(Protocol):
    """The file side of a download call (``_files.ArtifactFiles``), used through steps."""

    def open(self, stems: Sequence[str], urls: Sequence[str]) -> None:
        """Check the directory and create the part files."""

    def part(self, key: int) -> Part:
        """Return an artifact's part file."""

    def commit(
        self, results: Sequence[tuple[str | None, str, str | None]]
    ) -> list[tuple[Path, int, str]]:
        """Rename the part files; return ``(path, size, sha256)`` per artifact."""


class Part(Sink, Protocol):
    """A part file: a sink that can be made durable."""

    def finish(self) -> None:
        """Flush, fsync and close the file."""


def check_job(job: H, data: JobData) -> None:
    """Refuse to download a job that has not succeeded or has nothing to download.

    Args:
        job: What a :class:`~mediajobs.JobError` carries (the caller's handle).
        data: The latest snapshot.

    Raises:
        JobFailedError: The job failed.
        JobCancelledError: The job was cancelled.
        JobExpiredError: The job expired.
        DownloadError: The job is still queued or running, or succeeded without artifacts.
    """
    if data.status is JobStatus.SUCCEEDED:
        if not data.artifacts:
            raise DownloadError(f"{data.provider} job {data.id} succeeded but has no artifacts")
        return
    error = outcome_error(job, data)
    if error is not None:
        raise error
    raise DownloadError(
        f"{data.provider} job {data.id} has not finished (status: {data.status.value}); "
        "wait for it before downloading"
    )


def stems_of(job: JobData) -> list[str]:
    """Return each artifact's file name stem, ``<job id>_<index>``, distinct.

    Args:
        job: The job.

    Returns:
        One stem per artifact, in artifact order.
    """
    indexes = [artifact.index for artifact in job.artifacts]
    if len(set(indexes)) != len(indexes) or min(indexes) < 0:
        indexes = list(range(len(indexes)))  # a provider bug must not make two files one
    return [safe_stem(job.id, index) for index in indexes]


def _artifact_task(
    settings: Settings,
    job: JobData,
    artifact: Artifact,
    *,
    part: Part,
    key: int,
    progress: Progress,
) -> Flow[Fetched]:
    fetched = yield from artifact_flow(
        settings, job, artifact, sink=part, key=key, progress=progress
    )
    yield Blocking(part.finish)
    yield Report(key, fetched.size, fetched.size, progress)
    return fetched


def download_flow(
    settings: Settings,
    job: H,
    files: Files,
    *,
    known: Callable[[JobData], Mapping[int, Path]] | None = None,
) -> Flow[list[Path]]:
    """Download every artifact of a succeeded job, up to ``settings.concurrency`` at once.

    A job not yet terminal is read once first. Artifacts that ``known`` vouches for (files
    already downloaded and verified, by artifact index) are not fetched again; their paths are
    returned in their place. The other files are renamed to their final names only when every
    one of them is complete; each is then recorded (:class:`~mediajobs._steps.FileWritten`).
    The caller discards the part files whatever happens (``files.cleanup()``).

    Args:
        settings: The client's settings.
        job: The caller's handle, or a bare snapshot.
        files: Where the bytes go.
        known: Returns the intact files of earlier downloads (a blocking call: it may read a
            store and hash files).

    Returns:
        The files, in artifact order.

    Raises:
        DownloadError: When an artifact cannot be fetched completely or written, when the job
            is not finished or has no artifacts, or when a file exists and ``overwrite`` is off.
        JobError: When the job failed, was cancelled or expired.
    """
    data = data_of(job)
    if not data.done:
        job = yield from refresh_flow(settings, job)
        data = data_of(job)
    check_job(job, data)
    have: Mapping[int, Path] = {}
    if known is not None:
        have = yield Blocking(lambda: known(data))
    out: list[Path | None] = [have.get(a.index) for a in data.artifacts]
    todo = [pos for pos, path in enumerate(out) if path is None]
    artifacts = [data.artifacts[pos] for pos in todo]
    stems = stems_of(data)
    if artifacts:
        yield from _fetch_all(
            settings, data, artifacts, [stems[pos] for pos in todo], files, out, todo
        )
    return [path for path in out if path is not None]


def _fetch_all(  # noqa: PLR0917 - one download call's parts
    settings: Settings,
    data: JobData,
    artifacts: list[Artifact],
    stems: list[str],
    files: Files,
    out: list[Path | None],
    positions: list[int],
) -> Flow[None]:
    yield Blocking(lambda: files.open(stems, [a.url for a in artifacts]))
    progress = Progress(len(artifacts), clock=settings.clock)
    waiting = [
        (
            key,
            _artifact_task(
                settings, data, artifact, part=files.part(key), key=key, progress=progress
            ),
        )
        for key, artifact in enumerate(artifacts)
    ]
    waiting.reverse()
    fetched: dict[int, Fetched] = {}
    running = 0
    while waiting or running:
        start = [waiting.pop() for _ in range(min(settings.concurrency - running, len(waiting)))]
        running += len(start)
        for key, outcome in (yield Gather(start)):
            running -= 1
            if isinstance(outcome, BaseException):
                raise outcome
            fetched[key] = outcome
    results = [
        (fetched[key].content_type, fetched[key].url, artifact.media_type)
        for key, artifact in enumerate(artifacts)
    ]
    written: list[tuple[Path, int, str]] = yield Blocking(lambda: files.commit(results))
    yield Report(None, progress=progress)
    for pos, artifact, (path, size, digest) in zip(positions, artifacts, written, strict=True):
        yield Record(FileWritten(data, artifact.index, path, size, digest))
        out[pos] = path
