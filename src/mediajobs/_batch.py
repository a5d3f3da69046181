"""Batch runs: many jobs from a JSON Lines file, submitted, waited for and downloaded, resumably.

A batch is a file of job specs, one JSON object a line. Every line gets a key (its own
``"key"``, else a digest of the line) and is run by an :class:`~mediajobs.AsyncClient` with a
job store, which records each submit before its request leaves (with the Idempotency-Key
derived from provider + key), the job id once accepted, every status seen and every file once
renamed into place. Running the same batch again therefore picks up where an interrupted run
stopped:

- a line whose job is recorded sends no submit; one whose submit outcome is unknown (the
  answer was lost, the process died in flight) is sent again with the **same**
  Idempotency-Key and reported as re-sent;
- a job recorded as terminal is not polled again;
- an artifact whose recorded file still exists with the recorded size and SHA-256 is not
  downloaded again; part files of killed downloads (``.<stem>.part-<hex>``) are deleted first.

:func:`read_batch` validates a whole file before anything is sent; :class:`BatchRunner` runs it
(asyncio or trio).
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

import anyio
import anyio.to_thread

from ._exceptions import (
    ConfigurationError,
    MediaJobsError,
    StoreError,
    UnsupportedError,
    WaitTimeoutError,
)
from ._files import remove_abandoned_parts
from ._models import KINDS, JobStatus
from ._steps import StatusSeen
from ._store import SUBMIT_FAILED, JobStore, spec_key, submit_error_state

if TYPE_CHECKING:
    from ._client import AsyncClient
    from ._drivers import Recorder
    from ._jobs import AsyncJob
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
    if not isinstance(spec.get("labels", {}), dict):
        raise ConfigurationError(f"{where}: labels must be a JSON object")
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

    A part file a live download holds (another process writing into the same directory) is
    left alone; see :func:`~mediajobs._files.remove_abandoned_parts`.

    Args:
        directory: The output directory (only its own entries are looked at).

    Returns:
        The files deleted.
    """
    return remove_abandoned_parts(directory, None)


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


class BatchRunner:
    """Run a validated batch on an async client with a job store.

    The client records everything (its ``store=``): each keyed submit before it is sent,
    job ids, statuses and files; a key it already holds sends nothing, an unknown outcome is
    re-sent with the same Idempotency-Key, and a download skips the files still intact.

    Args:
        client: The client, with a store (its provider runs every line).
        out_dir: Where the files go (must exist and be writable).
        concurrency: Submits and downloads in flight at once.
        timeout: Seconds for waiting on all jobs (``None``: no deadline).
        on_change: Called (in the event loop) with the progress after every change.

    Raises:
        ConfigurationError: If the client has no store.
    """

    def __init__(
        self,
        client: AsyncClient,
        out_dir: Path,
        *,
        concurrency: int = 8,
        timeout: float | None = None,
        on_change: Callable[[BatchProgress], None] | None = None,
    ) -> None:
        if client.store is None:
            raise ConfigurationError("a batch needs a client with a job store (store=...)")
        self.client = client
        self.store: JobStore = client.store
        self.out_dir = out_dir
        self.timeout = timeout
        self._limit = anyio.Semaphore(max(concurrency, 1))
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
        """
        first: dict[str, BatchLine] = {}
        for line in lines:
            first.setdefault(line.key, line)
            self._results.setdefault(line.key, LineResult(line.key, [])).lines.append(line.number)
        self._progress = BatchProgress(total=len(first))
        self._progress.statuses["submitting"] = len(first)
        self._changed()
        recorder = self.client._recorder
        self.client._recorder = self._observer(recorder)
        try:
            await anyio.to_thread.run_sync(clean_part_files, self.out_dir)
            handles: list[AsyncJob] = []
            async with anyio.create_task_group() as group:
                for line in first.values():
                    group.start_soon(self._submit_one, line, handles)
            await self._wait_and_download(handles)
        finally:
            self.client._recorder = recorder
        return list(self._results.values())

    # -- progress

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self._progress)

    def _set_status(self, result: LineResult, status: str) -> None:
        if result.status == status:
            return
        counts = self._progress.statuses
        counts["submitting" if result.status == "pending" else result.status] -= 1
        counts[status] += 1
        result.status = status
        self._changed()

    def _observer(self, recorder: Recorder | None) -> Recorder:
        """The client's recorder, also telling the progress display of every status seen."""

        async def observe(event: Event) -> Any:
            answer = recorder(event) if recorder is not None else None
            if inspect.isawaitable(answer):
                answer = await answer
            if isinstance(event, StatusSeen):
                result = self._by_job.get(event.job.id)
                if result is not None:
                    self._set_status(result, event.job.status.value)
            return answer

        return observe

    # -- submitting

    async def _submit_one(self, line: BatchLine, handles: list[AsyncJob]) -> None:
        result = self._results[line.key]
        provider = self.client.provider
        async with self._limit:
            # An earlier run's submit without a job id (answer lost, sender killed) is re-sent.
            earlier = await anyio.to_thread.run_sync(lambda: self.store.get(provider, key=line.key))
            result.resent = (
                earlier is not None and earlier.job_id is None and earlier.state != SUBMIT_FAILED
            )
            try:
                job = await self.client.submit(
                    line.kind, model=line.model, prompt=line.prompt, key=line.key, **line.params
                )
            except StoreError:
                raise
            except (ConfigurationError, UnsupportedError) as exc:  # refused here: nothing sent
                self._failed(result, exc, SUBMIT_FAILED)
                return
            except MediaJobsError as exc:
                self._failed(result, exc, submit_error_state(exc))
                return
        result.job_id = job.id
        self._by_job[job.id] = result
        self._set_status(result, job.status.value)
        handles.append(job)

    def _failed(self, result: LineResult, exc: MediaJobsError, state: str) -> None:
        result.error = str(exc)
        result.exception = exc
        self._set_status(result, state)

    # -- waiting and downloading

    async def _wait_and_download(self, handles: list[AsyncJob]) -> None:
        async with anyio.create_task_group() as group:
            try:
                waits = cast(
                    "AsyncGenerator[AsyncJob, None]",
                    self.client.as_completed(handles, timeout=self.timeout),
                )
                async with contextlib.aclosing(waits) as finished:
                    async for job in finished:
                        self._finished(job, group)
            except WaitTimeoutError as exc:
                for job in exc.pending:
                    result = self._by_job[job.id]
                    result.error = f"still {job.status.value} when the timeout passed"
                    result.exception = exc

    def _finished(self, job: AsyncJob, group: anyio.abc.TaskGroup) -> None:
        result = self._by_job[job.id]
        self._set_status(result, job.status.value)
        if job.status is JobStatus.SUCCEEDED:
            group.start_soon(self._download, job, result)
        elif job.error is not None:
            result.error = job.error.message
        else:
            result.error = f"the job ended {job.status.value}"

    async def _download(self, job: AsyncJob, result: LineResult) -> None:
        fetched = [0]

        def on_progress(done: int, total: int | None) -> None:
            self._progress.bytes += max(done - fetched[0], 0)
            fetched[0] = done
            self._changed()

        async with self._limit:
            try:
                if not job.artifacts:  # e.g. a replayed submit's answer: success, no files yet
                    job = await self.client.get(job)
                # Files recorded and still intact are kept; a file left unrecorded by a killed
                # run (renamed, not yet recorded) cannot be trusted and is replaced.
                result.files = await self.client.download(
                    job, self.out_dir, overwrite=True, on_progress=on_progress
                )
            except StoreError:
                raise
            except MediaJobsError as exc:
                result.error = str(exc)
                result.exception = exc
                return
        result.downloaded_now = fetched[0] > 0
        self._progress.files += len(result.files)
        self._changed()
