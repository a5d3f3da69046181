"""Batch runs: many jobs from a JSON Lines file, submitted, waited for and downloaded, resumably.

A batch is a file of job specs, one JSON object a line. Every line gets a key (its own
``"key"``, else a digest of the line) and everything that happens to it is recorded in a
:class:`~mediajobs._store.JobStore` before and after it happens: the submit before its
request leaves (with the Idempotency-Key derived from provider + key), the job id once
accepted, every status seen, every file once renamed into place. Running the same batch
again therefore picks up where an interrupted run stopped:

- a line whose job is recorded sends no submit; one whose submit outcome is unknown (the
  answer was lost, the process died in flight) is sent again with the **same**
  Idempotency-Key and reported as re-sent;
- a job recorded as terminal is not polled again;
- an artifact whose recorded file still exists with the recorded size and SHA-256 is not
  downloaded again; part files of killed downloads (``.<stem>.part-<hex>``) are deleted first.

:func:`read_batch` validates a whole file before anything is sent; :class:`BatchRunner`
runs it on an :class:`~mediajobs.AsyncClient` (asyncio or trio).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

import anyio
import anyio.to_thread

from ._exceptions import (
    ConfigurationError,
    DownloadError,
    JobError,
    MediaJobsError,
    UnsupportedError,
    WaitTimeoutError,
)
from ._flows import submit_flow
from ._inputs import read_inputs
from ._jobs import AsyncJob
from ._models import KINDS, JobData, JobStatus
from ._steps import FileWritten, StatusSeen
from ._store import SUBMIT_FAILED, JobStore, StoredFile, StoredJob, spec_key, submit_error_state

if TYPE_CHECKING:
    from ._client import AsyncClient
    from ._steps import Event

__all__ = [
    "BatchLine",
    "BatchProgress",
    "BatchRunner",
    "check_kinds",
    "LineResult",
    "clean_part_files",
    "lock_directory",
    "read_batch",
]

SUBMITTING_WAIT = 30.0
"""Seconds a run waits for another live process to finish submitting a key it also holds."""
_SUBMITTING_POLL = 0.2
_PART_FILE = re.compile(r"\..+\.part-[0-9a-f]{8}")
"""The name the download engine gives a file being written (see ``_files._Part``)."""
_HASH_CHUNK = 1 << 20
LOCK_NAME = ".mediajobs.lock"
"""The file in the output directory that keeps two batch runs from writing there at once."""


@dataclass(frozen=True)
class BatchLine:
    """One job of a batch file, validated."""

    number: int
    """Its 1-based line number in the file."""
    key: str
    """Its key: the line's ``"key"``, else :func:`~mediajobs._store.spec_key` of the line."""
    kind: str
    """The job kind."""
    model: str
    """The model."""
    prompt: str | None
    """The prompt."""
    params: dict[str, Any]
    """The other fields, passed to the provider as they are."""

    @property
    def spec(self) -> dict[str, Any]:
        """The job the line asks for (everything but the key)."""
        return {"kind": self.kind, "model": self.model, "prompt": self.prompt, **self.params}


@dataclass
class LineResult:
    """What became of one key of a batch (shared by identical lines)."""

    key: str
    """The key."""
    lines: list[int]
    """The line numbers that name this job."""
    status: str = "pending"
    """A job status, or ``submit_failed`` / ``submit_unknown`` when no job id is known."""
    job_id: str | None = None
    """The provider's job id."""
    files: list[Path] = field(default_factory=list)
    """The downloaded files, in artifact order."""
    error: str | None = None
    """Why the line did not succeed."""
    resent: bool = False
    """Whether its submit was sent again after an earlier run lost the answer."""
    downloaded_now: bool = False
    """Whether this run downloaded its files (``False``: they were complete already)."""
    exception: BaseException | None = field(default=None, repr=False)
    """The error that is not a job outcome (refused submit, network, download), if any."""

    @property
    def succeeded(self) -> bool:
        """Whether the job succeeded and its files are in place."""
        return self.status == JobStatus.SUCCEEDED.value and self.error is None

    def to_json(self, line: int) -> dict[str, Any]:
        """The ``--json`` object for one line of the file.

        Args:
            line: The line number.

        Returns:
            ``line``, ``key``, ``status``, ``id``, ``files``, ``error``, ``resent``.
        """
        return {
            "line": line,
            "key": self.key,
            "status": self.status,
            "id": self.job_id,
            "files": [str(p) for p in self.files],
            "error": self.error,
            "resent": self.resent,
        }


@dataclass
class BatchProgress:
    """Counts a progress display draws, updated as the run goes."""

    total: int
    """Distinct jobs in the batch."""
    statuses: Counter[str] = field(default_factory=Counter)
    """Jobs per current status (``submitting`` before an id is known)."""
    files: int = 0
    """Files in place (downloaded now or verified from an earlier run)."""
    bytes: int = 0
    """Bytes downloaded by this run."""


def read_batch(path: Path) -> list[BatchLine]:
    """Read and validate a whole batch file before anything is sent.

    Blank lines are skipped. Identical specs (with or without the same explicit key) name
    one job; one key given to two different specs is an error.

    Args:
        path: The JSON Lines file.

    Returns:
        The lines, in file order (several may share a key).

    Raises:
        ConfigurationError: If the file cannot be read or a line is malformed (the message
            names the file and line).
        UnsupportedError: If a line asks for a kind the provider does not offer.
    """
    try:
        with path.open(encoding="utf-8") as handle:
            return _read_lines(handle, str(path))
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read it: {exc.strerror or exc}") from None


def _read_lines(handle: TextIO, name: str) -> list[BatchLine]:
    lines: list[BatchLine] = []
    first: dict[str, BatchLine] = {}
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        where = f"{name}:{number}"
        line = _parse_line(text, number, where)
        earlier = first.setdefault(line.key, line)
        if earlier.spec != line.spec:
            raise ConfigurationError(
                f"{where}: key {line.key!r} already names a different job on line {earlier.number}"
            )
        lines.append(line)
    if not lines:
        raise ConfigurationError(f"{name}: no jobs in the file")
    return lines


def check_kinds(lines: Sequence[BatchLine], check: Callable[[str], None], name: str) -> None:
    """Make sure the provider offers every line's kind, before anything is sent.

    Args:
        lines: The lines.
        check: The dialect's ``check_kind``.
        name: The file's name, for messages.

    Raises:
        UnsupportedError: For the first line whose kind the provider lacks (file and line named).
    """
    for line in lines:
        try:
            check(line.kind)
        except UnsupportedError as exc:
            raise UnsupportedError(f"{name}:{line.number}: {exc}") from None


def _parse_line(text: str, number: int, where: str) -> BatchLine:
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{where}: not JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(spec, dict):
        raise ConfigurationError(f"{where}: a line must be a JSON object")
    key = spec.pop("key", None)
    kind, model, prompt = spec.get("kind"), spec.get("model"), spec.get("prompt")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise ConfigurationError(f"{where}: key must be a non-empty string")
    if kind not in KINDS:
        raise ConfigurationError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if not isinstance(model, str) or not model.strip():
        raise ConfigurationError(f"{where}: model must be a non-empty string")
    if prompt is not None and not isinstance(prompt, str):
        raise ConfigurationError(f"{where}: prompt must be a string")
    try:
        default_key = spec_key(spec) if key is None else key
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    params = {k: v for k, v in spec.items() if k not in ("kind", "model", "prompt")}
    return BatchLine(
        number=number, key=default_key, kind=kind, model=model, prompt=prompt, params=params
    )


def clean_part_files(directory: Path) -> list[Path]:
    """Delete the part files that killed downloads left in a directory.

    Args:
        directory: The output directory (only its own entries are looked at).

    Returns:
        The files deleted.
    """
    removed: list[Path] = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if _PART_FILE.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def lock_directory(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on an output directory for the duration of a run.

    The lock is a ``flock`` on ``DIR/.mediajobs.lock``: the system releases it when the process
    ends in any way, ``kill -9`` included. Where ``flock`` does not exist, nothing is locked.

    Args:
        directory: The output directory.

    Yields:
        Nothing; the lock is held until the block ends.

    Raises:
        ConfigurationError: If another run holds the lock.
    """
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = directory / LOCK_NAME
    try:
        handle = path.open("a")
    except OSError as exc:
        raise ConfigurationError(f"cannot create {path}: {exc.strerror or exc}") from None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigurationError(
                f"another mediajobs batch is writing into {directory}; wait for it to end"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verified_files(files: Sequence[StoredFile], count: int) -> list[Path] | None:
    """The recorded files of a job's artifacts, if every one is in place and intact.

    Args:
        files: The files the store recorded.
        count: The job's artifact count.

    Returns:
        Their paths in artifact order, or ``None`` if one is missing, or its size or SHA-256
        differs from the record.
    """
    by_index = {f.index: f for f in files}
    paths: list[Path] = []
    for index in range(count):
        record = by_index.get(index)
        if record is None:
            return None
        path = Path(record.path)
        try:
            if path.stat().st_size != record.size or _sha256_of(path) != record.sha256:
                return None
        except OSError:
            return None
        paths.append(path)
    return paths


class BatchRunner:
    """Run a validated batch on an async client, recording everything in a store.

    Args:
        client: The client (its provider runs every line). Its recorder is set for the run:
            every status change and downloaded file it sees goes into ``store``.
        store: The job store.
        out_dir: Where the files go (must exist and be writable).
        concurrency: Submits and downloads in flight at once.
        timeout: Seconds for waiting on all jobs (``None``: no deadline).
        on_change: Called (in the event loop) with the progress after every change.
    """

    def __init__(
        self,
        client: AsyncClient,
        store: JobStore,
        out_dir: Path,
        *,
        concurrency: int = 8,
        timeout: float | None = None,
        on_change: Callable[[BatchProgress], None] | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.out_dir = out_dir
        self.timeout = timeout
        self._limit = anyio.Semaphore(concurrency)
        self._on_change = on_change
        self._progress = BatchProgress(total=0)
        self._results: dict[str, LineResult] = {}
        self._by_job: dict[str, LineResult] = {}

    @property
    def progress(self) -> BatchProgress:
        """The counts so far."""
        return self._progress

    async def run(self, lines: Sequence[BatchLine]) -> list[LineResult]:
        """Submit (or find again), wait for and download every job of the batch.

        Args:
            lines: The validated lines (see :func:`read_batch`).

        Returns:
            One result per distinct key, in the order keys first appear.

        Raises:
            StoreError: If the store fails (nothing can be promised without it).
            ConfigurationError: On a problem every line would share (e.g. an unusable store).
        """
        provider = self.client.provider
        first: dict[str, BatchLine] = {}
        for line in lines:
            first.setdefault(line.key, line)
            self._results.setdefault(line.key, LineResult(line.key, [])).lines.append(line.number)
        self._progress = BatchProgress(total=len(first))
        self._progress.statuses["submitting"] = len(first)
        self._changed()
        previous = self.client._recorder
        self.client._recorder = self._record
        try:
            await anyio.to_thread.run_sync(clean_part_files, self.out_dir)
            handles: list[AsyncJob] = []
            async with anyio.create_task_group() as group:
                for line in first.values():
                    group.start_soon(self._submit_one, provider, line, handles)
            await self._wait_and_download(handles)
        finally:
            self.client._recorder = previous
        return list(self._results.values())

    # -- progress

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self._progress)

    def _set_status(self, result: LineResult, status: str) -> None:
        if result.status == status:
            return
        counts = self._progress.statuses
        previous = "submitting" if result.status == "pending" else result.status
        counts[previous] -= 1
        counts[status] += 1
        result.status = status
        self._changed()

    # -- recording

    async def _record(self, event: Event) -> None:
        provider = self.client.provider
        if isinstance(event, StatusSeen):
            await anyio.to_thread.run_sync(
                self.store.record_status, provider, event.job.id, event.job
            )
            result = self._by_job.get(event.job.id)
            if result is not None:
                self._set_status(result, event.job.status.value)
        elif isinstance(event, FileWritten):
            await anyio.to_thread.run_sync(
                self.store.record_file,
                provider,
                event.job.id,
                event.index,
                event.path,
                event.size,
                event.sha256,
            )
            self._progress.files += 1
            self._changed()

    # -- submitting

    async def _submit_one(self, provider: str, line: BatchLine, handles: list[AsyncJob]) -> None:
        result = self._results[line.key]
        async with self._limit:
            record = await self._claim(provider, line, result)
            data = None if record is None else await self._send(provider, line, record, result)
        if data is None:
            return
        result.job_id = data.id
        self._by_job[data.id] = result
        self._set_status(result, data.status.value)
        handles.append(AsyncJob(data, self.client))

    async def _claim(self, provider: str, line: BatchLine, result: LineResult) -> StoredJob | None:
        """Record the intent; return the record when this run must send (or knows) the job."""
        record, created = await anyio.to_thread.run_sync(
            lambda: self.store.begin_submit(
                provider,
                line.key,
                kind=line.kind,
                model=line.model,
                prompt=line.prompt,
                params=line.params,
            )
        )
        if created or record.job_id is not None:
            return record
        # No job id: the outcome of an earlier send is unknown, or another process sends now.
        with anyio.move_on_after(SUBMITTING_WAIT):
            while True:
                if await anyio.to_thread.run_sync(self.store.claim_resend, provider, line.key):
                    result.resent = True
                    return record
                found = await anyio.to_thread.run_sync(
                    lambda: self.store.get(provider, key=line.key)
                )
                if found is not None and found.job_id is not None:
                    return found
                if found is not None and found.state == SUBMIT_FAILED:
                    result.error = found.error or "the provider refused the submit"
                    self._set_status(result, SUBMIT_FAILED)
                    return None
                await anyio.sleep(_SUBMITTING_POLL)
        result.error = (
            f"another process is still submitting key {line.key!r}; run the batch again later"
        )
        self._set_status(result, "submit_unknown")
        return None

    async def _send(
        self, provider: str, line: BatchLine, record: StoredJob, result: LineResult
    ) -> JobData | None:
        if record.job_id is not None and record.job is not None:
            return JobData.model_validate(record.job)
        settings = self.client._settings
        try:
            params = read_inputs(line.params, settings.dialect.file_params)
        except ConfigurationError as exc:  # nothing was sent: the line may be fixed and re-run
            await anyio.to_thread.run_sync(self.store.mark_rejected, provider, line.key, str(exc))
            self._failed(result, exc, SUBMIT_FAILED)
            return None
        try:
            data = await self.client._run(
                submit_flow(
                    settings,
                    line.kind,
                    model=line.model,
                    prompt=line.prompt,
                    params=params,
                    idempotency_key=record.idempotency_key,
                )
            )
        except MediaJobsError as exc:
            state = submit_error_state(exc)
            mark = self.store.mark_rejected if state == SUBMIT_FAILED else self.store.mark_unknown
            await anyio.to_thread.run_sync(mark, provider, line.key, str(exc))
            self._failed(result, exc, state)
            return None
        await anyio.to_thread.run_sync(self.store.mark_accepted, provider, line.key, data)
        return data

    def _failed(self, result: LineResult, exc: MediaJobsError, state: str) -> None:
        result.error = str(exc)
        result.exception = exc
        self._set_status(result, state)

    # -- waiting and downloading

    async def _wait_and_download(self, handles: list[AsyncJob]) -> None:
        async with anyio.create_task_group() as group:
            try:
                waits = self.client.as_completed(handles, timeout=self.timeout)
                async with contextlib.aclosing(
                    cast("AsyncGenerator[AsyncJob, None]", waits)
                ) as finished:
                    async for job in finished:
                        await self._finished(job, group)
            except WaitTimeoutError as exc:
                for job in exc.pending:
                    result = self._by_job[job.id]
                    result.error = f"still {job.status.value} when --timeout passed"
                    result.exception = exc

    async def _finished(self, job: AsyncJob, group: anyio.abc.TaskGroup) -> None:
        result = self._by_job[job.id]
        self._set_status(result, job.status.value)
        if job.status is JobStatus.SUCCEEDED:
            group.start_soon(self._download, job, result)
        elif job.error is not None:
            result.error = job.error.message
        else:
            result.error = f"the job ended {job.status.value}"

    async def _download(self, job: AsyncJob, result: LineResult) -> None:
        async with self._limit:
            provider = self.client.provider
            record = await anyio.to_thread.run_sync(lambda: self.store.get(provider, job_id=job.id))
            files = record.files if record is not None else ()
            count = len(job.artifacts)
            kept = await anyio.to_thread.run_sync(verified_files, files, count)
            if kept is not None:
                result.files = kept
                self._progress.files += len(kept)
                self._changed()
                return

            def on_progress(done: int, total: int | None) -> None:
                delta = done - seen[0]
                seen[0] = done
                self._progress.bytes += max(delta, 0)
                self._changed()

            seen = [0]
            try:
                result.files = await self.client.download(
                    job, self.out_dir, overwrite=True, on_progress=on_progress
                )
            except (DownloadError, JobError, MediaJobsError) as exc:
                result.error = str(exc)
                result.exception = exc
                return
            result.downloaded_now = True
