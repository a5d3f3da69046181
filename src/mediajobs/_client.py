"""``Client`` and ``AsyncClient``: thin drivers around the lifecycle flows.

Each client owns (or borrows) an httpx client, runs the steps a flow yields — send, sleep,
notify — and wraps snapshots in job handles. All decisions live in ``_flows.py``.
"""

from __future__ import annotations

import inspect
import math
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar

import anyio
import httpx

from . import _download
from ._config import check_api_key
from ._exceptions import ConfigurationError, JobError, MediaJobsError, WaitTimeoutError
from ._flows import (
    Flow,
    ManyWait,
    Notify,
    Send,
    Settings,
    Sleep,
    cancel_flow,
    models_flow,
    raise_for_outcome,
    refresh_flow,
    submit_flow,
    wait_flow,
)
from ._inputs import read_inputs
from ._models import Artifact, JobData, JobErrorInfo, JobStatus
from ._policy import PollPolicy, RetryPolicy
from ._version import __version__
from .dialects import DIALECTS, Dialect

__all__ = ["AsyncClient", "AsyncJob", "Client", "Job"]

T = TypeVar("T")
C = TypeVar("C", bound="_BaseClient")

DEFAULT_TIMEOUT = 60.0
"""Seconds any single request may take."""
DEFAULT_WAIT_TIMEOUT = 3600.0
"""Seconds a wait may take in all unless told otherwise: long enough for slow video models,
short enough that a stuck job never hangs a program forever."""
_GRACE = 1.0
"""Seconds polls in flight may still take once a job of an ``as_completed`` round finished."""
DEFAULT_CONCURRENCY = 32
"""Requests in flight at once when waiting on many jobs or downloading several files."""

OnUpdate = Callable[[Any], Any]
OnProgress = Callable[[int, int | None], Any]


# --------------------------------------------------------------------------- drivers


def run_sync(flow: Flow[T], http: httpx.Client, on_update: OnUpdate | None = None) -> T:
    """Drive a flow with blocking I/O.

    Args:
        flow: The flow.
        http: The httpx client that sends its requests.
        on_update: Called with each :class:`~mediajobs._flows.Notify` snapshot.

    Returns:
        The flow's result.

    Raises:
        MediaJobsError: Whatever the flow raises.
    """
    value: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                step = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            value = error = None
            if isinstance(step, Send):
                try:
                    value = http.send(step.request, stream=step.stream)
                except httpx.HTTPError as exc:
                    error = exc
            elif isinstance(step, Sleep):
                if step.seconds > 0:
                    time.sleep(step.seconds)
            elif isinstance(step, Notify) and on_update is not None:
                on_update(step.job)
    finally:
        flow.close()


async def run_async(flow: Flow[T], http: httpx.AsyncClient, on_update: OnUpdate | None = None) -> T:
    """Drive a flow with async I/O (asyncio or trio, through anyio).

    Args:
        flow: The flow.
        http: The httpx client that sends its requests.
        on_update: Called with each snapshot; awaited if it returns an awaitable.

    Returns:
        The flow's result.

    Raises:
        MediaJobsError: Whatever the flow raises.
    """
    value: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                step = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            value = error = None
            if isinstance(step, Send):
                try:
                    value = await http.send(step.request, stream=step.stream)
                except httpx.HTTPError as exc:
                    error = exc
            elif isinstance(step, Sleep):
                await anyio.sleep(step.seconds)
            elif isinstance(step, Notify) and on_update is not None:
                result = on_update(step.job)
                if inspect.isawaitable(result):
                    await result
    finally:
        flow.close()


# ------------------------------------------------------------------------ job handles


class _JobView(Generic[C]):
    """What both job handles show: the latest snapshot's fields."""

    __slots__ = ("_client", "_data")

    def __init__(self, data: JobData, client: C) -> None:
        self._data = data
        self._client = client

    @property
    def data(self) -> JobData:
        """The latest immutable snapshot."""
        return self._data

    @property
    def id(self) -> str:
        """The provider's job id."""
        return self._data.id

    @property
    def provider(self) -> str:
        """The provider's name."""
        return self._data.provider

    @property
    def status(self) -> JobStatus:
        """The normalized status."""
        return self._data.status

    @property
    def raw_status(self) -> str:
        """The status as the provider sent it."""
        return self._data.raw_status

    @property
    def done(self) -> bool:
        """Whether the job is in a terminal state."""
        return self._data.status.is_terminal

    @property
    def kind(self) -> str | None:
        """The job kind, when known."""
        return self._data.kind

    @property
    def model(self) -> str | None:
        """The model, when known."""
        return self._data.model

    @property
    def artifacts(self) -> list[Artifact]:
        """The outputs (after success)."""
        return self._data.artifacts

    @property
    def error(self) -> JobErrorInfo | None:
        """Why the job failed, if it did."""
        return self._data.error

    @property
    def cost(self) -> float | None:
        """The reported cost, if any."""
        return self._data.cost

    @property
    def usage(self) -> dict[str, Any]:
        """Usage figures as reported."""
        return self._data.usage

    @property
    def created_at(self) -> datetime | None:
        """Creation time (aware)."""
        return self._data.created_at

    @property
    def completed_at(self) -> datetime | None:
        """Completion time (aware)."""
        return self._data.completed_at

    @property
    def expires_at(self) -> datetime | None:
        """Expiry time (aware)."""
        return self._data.expires_at

    @property
    def raw(self) -> dict[str, Any]:
        """The provider's last payload."""
        return self._data.raw

    def to_dict(self) -> dict[str, Any]:
        """Return the job's data as JSON-ready values (see ``client.job_from_dict``).

        Returns:
            A dictionary that round-trips through ``json``.
        """
        return self._data.model_dump(mode="json")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(id={self.id!r}, provider={self.provider!r}, "
            f"status={self.status.value!r})"
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _JobView):
            return bool(self._data == other._data)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class Job(_JobView["Client"]):
    """A job handle from :class:`Client`; its methods update it in place and return it."""

    __slots__ = ()

    def refresh(self) -> Job:
        """Read the job's current state from the provider.

        Returns:
            This job, updated.

        Raises:
            APIError: When the provider answers with an error.
            APIConnectionError: When the network fails beyond retries.
            ProtocolError: When the answer is not in the documented shape.
        """
        return self._client.get(self)

    def wait(
        self,
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        on_update: Callable[[Job], Any] | None = None,
    ) -> Job:
        """Poll until the job is terminal.

        Args:
            timeout: Seconds for the whole wait (default: the client's ``wait_timeout``).
            poll: A poll policy for this wait (default: the client's).
            on_update: Called with this job on every status change.

        Returns:
            This job, succeeded.

        Raises:
            JobFailedError: The job failed.
            JobCancelledError: The job was cancelled.
            JobExpiredError: The job expired.
            WaitTimeoutError: The deadline passed first (the job keeps running).
            APIError: When the provider answers with an error.
            APIConnectionError: When the network fails beyond retries.
        """
        return self._client.wait(self, timeout=timeout, poll=poll, on_update=on_update)

    def cancel(self) -> Job:
        """Cancel the job.

        Returns:
            This job, updated.

        Raises:
            UnsupportedError: Where the provider has no cancel.
            APIError: When the provider refuses.
        """
        return self._client.cancel(self)

    def download(
        self,
        dest_dir: str | os.PathLike[str],
        *,
        on_progress: OnProgress | None = None,
        overwrite: bool = False,
    ) -> list[Path]:
        """Download every artifact into ``dest_dir`` as ``<job id>_<index><ext>``.

        Args:
            dest_dir: The directory (created if missing).
            on_progress: Called with ``(done_bytes, total_bytes_or_None)`` as bytes arrive.
            overwrite: Replace existing files instead of refusing.

        Returns:
            The paths written, one per artifact, in artifact order.

        Raises:
            DownloadError: When an artifact cannot be fetched completely or written.
            JobError: When the job did not succeed.
        """
        return self._client.download(self, dest_dir, on_progress=on_progress, overwrite=overwrite)


class AsyncJob(_JobView["AsyncClient"]):
    """A job handle from :class:`AsyncClient`; its methods update it in place and return it."""

    __slots__ = ()

    async def refresh(self) -> AsyncJob:
        """Read the job's current state from the provider.

        Returns:
            This job, updated.

        Raises:
            APIError: When the provider answers with an error.
            APIConnectionError: When the network fails beyond retries.
            ProtocolError: When the answer is not in the documented shape.
        """
        return await self._client.get(self)

    async def wait(
        self,
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        on_update: Callable[[AsyncJob], Any] | None = None,
    ) -> AsyncJob:
        """Poll until the job is terminal.

        Args:
            timeout: Seconds for the whole wait (default: the client's ``wait_timeout``).
            poll: A poll policy for this wait (default: the client's).
            on_update: Called (and awaited, if async) with this job on every status change.

        Returns:
            This job, succeeded.

        Raises:
            JobFailedError: The job failed.
            JobCancelledError: The job was cancelled.
            JobExpiredError: The job expired.
            WaitTimeoutError: The deadline passed first (the job keeps running).
            APIError: When the provider answers with an error.
            APIConnectionError: When the network fails beyond retries.
        """
        return await self._client.wait(self, timeout=timeout, poll=poll, on_update=on_update)

    async def cancel(self) -> AsyncJob:
        """Cancel the job.

        Returns:
            This job, updated.

        Raises:
            UnsupportedError: Where the provider has no cancel.
            APIError: When the provider refuses.
        """
        return await self._client.cancel(self)

    async def download(
        self,
        dest_dir: str | os.PathLike[str],
        *,
        on_progress: OnProgress | None = None,
        overwrite: bool = False,
    ) -> list[Path]:
        """Download every artifact into ``dest_dir`` as ``<job id>_<index><ext>``.

        Args:
            dest_dir: The directory (created if missing).
            on_progress: Called with ``(done_bytes, total_bytes_or_None)`` as bytes arrive.
            overwrite: Replace existing files instead of refusing.

        Returns:
            The paths written, one per artifact, in artifact order.

        Raises:
            DownloadError: When an artifact cannot be fetched completely or written.
            JobError: When the job did not succeed.
        """
        return await self._client.download(
            self, dest_dir, on_progress=on_progress, overwrite=overwrite
        )


# ----------------------------------------------------------------------------- clients

JobRef = str | JobData | _JobView[Any]


class _BaseClient:
    """Configuration shared by both clients."""

    _job_class: type[_JobView[Any]]

    def __init__(
        self,
        provider: str | Dialect,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        poll: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        wait_timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        max_concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        dialect = _resolve_dialect(provider, base_url)
        key = api_key if api_key is not None else os.environ.get(dialect.env_var)
        if not key:
            raise ConfigurationError(
                f"no API key for {dialect.name}: pass api_key= or set {dialect.env_var}"
            )
        check_api_key(key, source="api_key" if api_key is not None else dialect.env_var)
        if max_concurrency < 1:
            raise ConfigurationError("max_concurrency must be >= 1")
        merged = {"User-Agent": f"mediajobs/{__version__}"}
        merged.update(headers or {})
        self._settings = Settings(
            dialect=dialect,
            api_key=key,
            headers=merged,
            timeout=DEFAULT_TIMEOUT if timeout is None else float(timeout),
            poll=poll or dialect.default_poll,
            retry=retry or RetryPolicy(),
            wait_timeout=wait_timeout,
        )
        self._concurrency = max_concurrency

    @property
    def provider(self) -> str:
        """The provider's name."""
        return self._settings.dialect.name

    @property
    def dialect(self) -> Dialect:
        """The provider dialect in use."""
        return self._settings.dialect

    def __repr__(self) -> str:
        base = self._settings.dialect.base_url
        return f"{type(self).__name__}({self.provider!r}" + (
            f", base_url={base!r})" if base else ")"
        )

    def _limits(self) -> httpx.Limits:
        return httpx.Limits(
            max_connections=self._concurrency, max_keepalive_connections=self._concurrency
        )

    def _data(self, job: JobRef, kind: str | None = None) -> JobData:
        if isinstance(job, _JobView):
            return job._data
        if isinstance(job, JobData):
            return job
        return self._settings.dialect.job_for_id(job, kind=kind)

    def _handle(self, job: JobRef, kind: str | None = None) -> Any:
        if isinstance(job, self._job_class) and job._client is self:
            return job
        return self._job_class(self._data(job, kind), self)

    def _submit_args(self, kind: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        self._settings.dialect.check_kind(kind)
        return read_inputs(params, self._settings.dialect.file_params), uuid.uuid4().hex

    def job_from_dict(self, data: Mapping[str, Any]) -> Any:
        """Rebuild a job handle from ``job.to_dict()`` output.

        Args:
            data: The dictionary.

        Returns:
            A job handle bound to this client.

        Raises:
            ConfigurationError: If the data is malformed or belongs to another provider.
        """
        try:
            snapshot = JobData.model_validate(dict(data))
        except ValueError as exc:
            raise ConfigurationError(f"not a mediajobs job: {exc}") from exc
        if snapshot.provider != self.provider:
            raise ConfigurationError(
                f"job {snapshot.id} belongs to {snapshot.provider}, not {self.provider}"
            )
        return self._job_class(snapshot, self)


def _resolve_dialect(provider: str | Dialect, base_url: str | None) -> Dialect:
    if isinstance(provider, Dialect):
        return provider.with_base_url(base_url)
    if isinstance(provider, str):
        cls = DIALECTS.get(provider.lower())
        if cls is None:
            names = ", ".join(sorted(DIALECTS))
            raise ConfigurationError(
                f"unknown provider {provider!r}; use one of {names} or a Dialect"
            )
        return cls(base_url)
    raise ConfigurationError(f"provider must be a name or a Dialect, not {type(provider).__name__}")


def _fix_error_job(exc: MediaJobsError, wrap: Callable[[JobData], Any]) -> None:
    if isinstance(exc, (JobError, WaitTimeoutError)) and isinstance(exc.job, JobData):
        exc.job = wrap(exc.job)
    if isinstance(exc, WaitTimeoutError):
        exc.pending = [wrap(j) if isinstance(j, JobData) else j for j in exc.pending]


def _into(handle: Any, new: Callable[[JobData], Any]) -> Callable[[JobData], Any]:
    """Put an error's snapshot into the caller's handle (same job) or a new handle."""

    def wrap(data: JobData) -> Any:
        if handle is not None and handle.id == data.id:
            handle._data = data
            return handle
        return new(data)

    return wrap


def _many_timeout(
    many: ManyWait, handles: list[Any], new: Callable[[JobData], Any]
) -> WaitTimeoutError:
    error = many.timeout_error()
    by_id = {h.id: h for h in handles}
    _fix_error_job(error, lambda data: by_id.get(data.id) or new(data))
    return error


def _outcome(future: Future[Any]) -> Any:
    try:
        return future.result()
    except Exception as exc:  # handed to the scheduler
        return exc


class Client(_BaseClient):
    """The blocking client.

    Args:
        provider: ``"therouter"``, ``"worldrouter"``, ``"openrouter"``, ``"onerouter"``, or a
            :class:`~mediajobs.dialects.Dialect` instance.
        api_key: The key; defaults to the provider's environment variable.
        base_url: Scheme + host (+ port) replacing every host of the provider.
        poll: Default poll policy (defaults per provider).
        retry: Retry policy for transient failures.
        timeout: Seconds any single request may take (default 60).
        http_client: An ``httpx.Client`` to use (not closed by this client).
        headers: Extra headers for every API request.
        wait_timeout: Default seconds for a whole wait (default 3600; ``None``: no deadline).
        max_concurrency: Requests in flight at once for many-job waits and downloads.

    Raises:
        ConfigurationError: Without a key, with an unknown provider or a bad base URL.
    """

    _job_class = Job

    def __init__(
        self,
        provider: str | Dialect,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        poll: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        http_client: httpx.Client | None = None,
        headers: Mapping[str, str] | None = None,
        wait_timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        max_concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        super().__init__(
            provider,
            api_key=api_key,
            base_url=base_url,
            poll=poll,
            retry=retry,
            timeout=timeout,
            headers=headers,
            wait_timeout=wait_timeout,
            max_concurrency=max_concurrency,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(limits=self._limits(), follow_redirects=False)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying httpx client (unless it was passed in)."""
        if self._owns_http:
            self._http.close()

    def _run(
        self, flow: Flow[T], on_update: OnUpdate | None = None, handle: Job | None = None
    ) -> T:
        try:
            return run_sync(flow, self._http, on_update)
        except MediaJobsError as exc:
            _fix_error_job(exc, _into(handle, lambda d: Job(d, self)))
            raise

    def submit(self, kind: str, *, model: str, prompt: str | None = None, **params: Any) -> Job:
        """Create a job.

        Args:
            kind: ``"image"``, ``"image_edit"``, ``"video"``, ``"speech"`` or ``"transcription"``.
            model: The model.
            prompt: The prompt.
            **params: Provider parameters, passed as they are; ``image=``/``file=`` accept a
                path, bytes or a binary file object.

        Returns:
            The new job (usually queued).

        Raises:
            UnsupportedError: If the provider does not offer ``kind`` (before any request).
            APIError: When the provider refuses the job.
            APIConnectionError: When the network fails (retried only if the job cannot exist).
            ProtocolError: When the answer is not in the documented shape.
        """
        payload, key = self._submit_args(kind, params)
        flow = submit_flow(
            self._settings, kind, model=model, prompt=prompt, params=payload, idempotency_key=key
        )
        return Job(self._run(flow), self)

    def get(self, job: JobRef, *, kind: str | None = None) -> Job:
        """Read a job's current state.

        Args:
            job: A job handle or a stored job id.
            kind: The job kind, for an id whose status route depends on it.

        Returns:
            The job handle, updated (a new one for an id).

        Raises:
            APIError: When the provider answers with an error.
            APIConnectionError: When the network fails beyond retries.
            ProtocolError: When the answer is not in the documented shape.
        """
        handle: Job = self._handle(job, kind)
        handle._data = self._run(refresh_flow(self._settings, handle._data), handle=handle)
        return handle

    def wait(
        self,
        job: JobRef,
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        on_update: Callable[[Job], Any] | None = None,
        kind: str | None = None,
    ) -> Job:
        """Poll a job until it is terminal (see :meth:`Job.wait`).

        Args:
            job: A job handle or a stored job id.
            timeout: Seconds for the whole wait (default: ``wait_timeout``).
            poll: A poll policy for this wait.
            on_update: Called with the job on every status change.
            kind: The job kind, for an id whose status route depends on it.

        Returns:
            The job, succeeded.

        Raises:
            JobFailedError: The job failed.
            JobCancelledError: The job was cancelled.
            JobExpiredError: The job expired.
            WaitTimeoutError: The deadline passed first.
            APIError: When the provider answers with an error.
            APIConnectionError: When the network fails beyond retries.
        """
        handle: Job = self._handle(job, kind)

        def updated(data: JobData) -> Any:
            handle._data = data
            return on_update(handle) if on_update is not None else None

        handle._data = self._run(
            wait_flow(self._settings, handle._data, timeout=timeout, poll=poll), updated, handle
        )
        raise_for_outcome(handle._data, lambda _: handle)
        return handle

    def cancel(self, job: JobRef, *, kind: str | None = None) -> Job:
        """Cancel a job.

        Args:
            job: A job handle or a stored job id.
            kind: The job kind, for an id whose route depends on it.

        Returns:
            The job, updated.

        Raises:
            UnsupportedError: Where the provider has no cancel.
            APIError: When the provider refuses.
        """
        handle: Job = self._handle(job, kind)
        handle._data = self._run(cancel_flow(self._settings, handle._data), handle=handle)
        return handle

    def download(
        self,
        job: JobRef,
        dest_dir: str | os.PathLike[str],
        *,
        on_progress: OnProgress | None = None,
        overwrite: bool = False,
        kind: str | None = None,
    ) -> list[Path]:
        """Download a succeeded job's artifacts (see :meth:`Job.download`).

        Args:
            job: A job handle or a stored job id (read first if it has no artifacts yet).
            dest_dir: The directory.
            on_progress: Called with ``(done_bytes, total_bytes_or_None)``.
            overwrite: Replace existing files instead of refusing.
            kind: The job kind, for an id whose route depends on it.

        Returns:
            The paths written, in artifact order.

        Raises:
            DownloadError: When an artifact cannot be fetched completely or written.
            JobError: When the job did not succeed.
        """
        handle: Job = self._handle(job, kind)
        if not handle.done:
            self.get(handle)
        return _download.download_sync(
            self._settings,
            self._http,
            handle,
            Path(dest_dir),
            on_progress=on_progress,
            overwrite=overwrite,
            concurrency=self._concurrency,
            refresh=lambda: self.get(handle)._data,
        )

    def models(self) -> list[dict[str, Any]]:
        """List the provider's models (OpenRouter video models).

        Returns:
            The model entries as dictionaries.

        Raises:
            UnsupportedError: Where the provider has no listing.
            APIError: When the provider answers with an error.
        """
        return self._run(models_flow(self._settings))

    def as_completed(
        self,
        jobs: Iterable[JobRef],
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
    ) -> Iterator[Job]:
        """Yield each job as soon as it is terminal (failed ones too, without raising).

        Polls run concurrently (at most ``max_concurrency`` at once) over one shared deadline;
        each job keeps its own backoff, and a job whose polls fail transiently keeps being
        retried without delaying the others.

        Args:
            jobs: Job handles or ids.
            timeout: Seconds for the whole batch (default: ``wait_timeout``).
            poll: A poll policy (default: the client's).

        Yields:
            Each job handle, updated, in completion order.

        Raises:
            WaitTimeoutError: When the deadline passes (``.pending`` lists the unfinished).
            APIError: On a non-transient error (e.g. authentication).
        """
        handles: list[Job] = [self._handle(j) for j in jobs]
        many = ManyWait(self._settings, [h._data for h in handles], timeout=timeout, poll=poll)
        with ThreadPoolExecutor(self._concurrency, thread_name_prefix="mediajobs") as pool:
            running: dict[Future[Any], int] = {}
            try:
                while True:
                    for index in many.drain_finished():
                        yield handles[index]
                    if not many.pending:
                        return
                    left = many.time_left()
                    if left is not None and left <= 0:
                        raise _many_timeout(many, handles, lambda d: Job(d, self))
                    for index, data in many.take_due(self._concurrency - len(running)):
                        running[pool.submit(run_sync, many.poll_flow(data), self._http)] = index
                    wake = many.next_wake() if len(running) < self._concurrency else None
                    waits = [w for w in (wake, left) if w is not None]
                    finished, _ = wait_futures(
                        running, timeout=min(waits) if waits else None, return_when=FIRST_COMPLETED
                    )
                    for future in finished:
                        index = running.pop(future)
                        many.record(index, _outcome(future))
                        handles[index]._data = many.results[index]
            finally:
                for future in running:
                    future.cancel()

    def wait_all(
        self,
        jobs: Iterable[JobRef],
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
    ) -> list[Job]:
        """Wait for every job to be terminal; failures are returned, not raised.

        Args:
            jobs: Job handles or ids.
            timeout: Seconds for the whole batch (default: ``wait_timeout``).
            poll: A poll policy (default: the client's).

        Returns:
            The jobs, terminal, in input order.

        Raises:
            WaitTimeoutError: When the deadline passes (``.pending`` lists the unfinished).
            APIError: On a non-transient error (e.g. authentication).
        """
        handles: list[Job] = [self._handle(j) for j in jobs]
        for _ in self.as_completed(handles, timeout=timeout, poll=poll):
            pass
        return handles


class AsyncClient(_BaseClient):
    """The async client (asyncio or trio, through anyio). Same arguments as :class:`Client`.

    Args:
        provider: ``"therouter"``, ``"worldrouter"``, ``"openrouter"``, ``"onerouter"``, or a
            :class:`~mediajobs.dialects.Dialect` instance.
        api_key: The key; defaults to the provider's environment variable.
        base_url: Scheme + host (+ port) replacing every host of the provider.
        poll: Default poll policy (defaults per provider).
        retry: Retry policy for transient failures.
        timeout: Seconds any single request may take (default 60).
        http_client: An ``httpx.AsyncClient`` to use (not closed by this client).
        headers: Extra headers for every API request.
        wait_timeout: Default seconds for a whole wait (default 3600; ``None``: no deadline).
        max_concurrency: Requests in flight at once for many-job waits and downloads.

    Raises:
        ConfigurationError: Without a key, with an unknown provider or a bad base URL.
    """

    _job_class = AsyncJob

    def __init__(
        self,
        provider: str | Dialect,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        poll: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        http_client: httpx.AsyncClient | None = None,
        headers: Mapping[str, str] | None = None,
        wait_timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        max_concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        super().__init__(
            provider,
            api_key=api_key,
            base_url=base_url,
            poll=poll,
            retry=retry,
            timeout=timeout,
            headers=headers,
            wait_timeout=wait_timeout,
            max_concurrency=max_concurrency,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(limits=self._limits(), follow_redirects=False)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying httpx client (unless it was passed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def _run(
        self, flow: Flow[T], on_update: OnUpdate | None = None, handle: AsyncJob | None = None
    ) -> T:
        try:
            return await run_async(flow, self._http, on_update)
        except MediaJobsError as exc:
            _fix_error_job(exc, _into(handle, lambda d: AsyncJob(d, self)))
            raise

    async def submit(
        self, kind: str, *, model: str, prompt: str | None = None, **params: Any
    ) -> AsyncJob:
        """Create a job.

        Args:
            kind: ``"image"``, ``"image_edit"``, ``"video"``, ``"speech"`` or ``"transcription"``.
            model: The model.
            prompt: The prompt.
            **params: Provider parameters, passed as they are; ``image=``/``file=`` accept a
                path, bytes or a binary file object.

        Returns:
            The new job (usually queued).

        Raises:
            UnsupportedError: If the provider does not offer ``kind`` (before any request).
            APIError: When the provider refuses the job.
            APIConnectionError: When the network fails (retried only if the job cannot exist).
            ProtocolError: When the answer is not in the documented shape.
        """
        payload, key = self._submit_args(kind, params)
        flow = submit_flow(
            self._settings, kind, model=model, prompt=prompt, params=payload, idempotency_key=key
        )
        return AsyncJob(await self._run(flow), self)

    async def get(self, job: JobRef, *, kind: str | None = None) -> AsyncJob:
        """Read a job's current state.

        Args:
            job: A job handle or a stored job id.
            kind: The job kind, for an id whose status route depends on it.

        Returns:
            The job handle, updated (a new one for an id).

        Raises:
            APIError: When the provider answers with an error.
            APIConnectionError: When the network fails beyond retries.
            ProtocolError: When the answer is not in the documented shape.
        """
        handle: AsyncJob = self._handle(job, kind)
        handle._data = await self._run(refresh_flow(self._settings, handle._data), handle=handle)
        return handle

    async def wait(
        self,
        job: JobRef,
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        on_update: Callable[[AsyncJob], Any] | None = None,
        kind: str | None = None,
    ) -> AsyncJob:
        """Poll a job until it is terminal (see :meth:`AsyncJob.wait`).

        Args:
            job: A job handle or a stored job id.
            timeout: Seconds for the whole wait (default: ``wait_timeout``).
            poll: A poll policy for this wait.
            on_update: Called (awaited if async) with the job on every status change.
            kind: The job kind, for an id whose status route depends on it.

        Returns:
            The job, succeeded.

        Raises:
            JobFailedError: The job failed.
            JobCancelledError: The job was cancelled.
            JobExpiredError: The job expired.
            WaitTimeoutError: The deadline passed first.
            APIError: When the provider answers with an error.
            APIConnectionError: When the network fails beyond retries.
        """
        handle: AsyncJob = self._handle(job, kind)

        def updated(data: JobData) -> Any:
            handle._data = data
            return on_update(handle) if on_update is not None else None

        handle._data = await self._run(
            wait_flow(self._settings, handle._data, timeout=timeout, poll=poll), updated, handle
        )
        raise_for_outcome(handle._data, lambda _: handle)
        return handle

    async def cancel(self, job: JobRef, *, kind: str | None = None) -> AsyncJob:
        """Cancel a job.

        Args:
            job: A job handle or a stored job id.
            kind: The job kind, for an id whose route depends on it.

        Returns:
            The job, updated.

        Raises:
            UnsupportedError: Where the provider has no cancel.
            APIError: When the provider refuses.
        """
        handle: AsyncJob = self._handle(job, kind)
        handle._data = await self._run(cancel_flow(self._settings, handle._data), handle=handle)
        return handle

    async def download(
        self,
        job: JobRef,
        dest_dir: str | os.PathLike[str],
        *,
        on_progress: OnProgress | None = None,
        overwrite: bool = False,
        kind: str | None = None,
    ) -> list[Path]:
        """Download a succeeded job's artifacts (see :meth:`AsyncJob.download`).

        Args:
            job: A job handle or a stored job id (read first if it has no artifacts yet).
            dest_dir: The directory.
            on_progress: Called with ``(done_bytes, total_bytes_or_None)``.
            overwrite: Replace existing files instead of refusing.
            kind: The job kind, for an id whose route depends on it.

        Returns:
            The paths written, in artifact order.

        Raises:
            DownloadError: When an artifact cannot be fetched completely or written.
            JobError: When the job did not succeed.
        """
        handle: AsyncJob = self._handle(job, kind)
        if not handle.done:
            await self.get(handle)

        async def refresh() -> JobData:
            return (await self.get(handle))._data

        return await _download.download_async(
            self._settings,
            self._http,
            handle,
            Path(dest_dir),
            on_progress=on_progress,
            overwrite=overwrite,
            concurrency=self._concurrency,
            refresh=refresh,
        )

    async def models(self) -> list[dict[str, Any]]:
        """List the provider's models (OpenRouter video models).

        Returns:
            The model entries as dictionaries.

        Raises:
            UnsupportedError: Where the provider has no listing.
            APIError: When the provider answers with an error.
        """
        return await self._run(models_flow(self._settings))

    async def as_completed(
        self,
        jobs: Iterable[JobRef],
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
    ) -> AsyncIterator[AsyncJob]:
        """Yield each job as soon as it is terminal (failed ones too, without raising).

        Polls run concurrently (at most ``max_concurrency`` at once) over one shared deadline;
        each job keeps its own backoff. Polling happens only while the caller awaits the next
        job, so no task outlives a ``yield`` and ``break`` leaves nothing running (under trio,
        wrap the iterator in ``contextlib.aclosing`` as trio asks of any async generator).

        Args:
            jobs: Job handles or ids.
            timeout: Seconds for the whole batch (default: ``wait_timeout``).
            poll: A poll policy (default: the client's).

        Yields:
            Each job handle, updated, in completion order.

        Raises:
            WaitTimeoutError: When the deadline passes (``.pending`` lists the unfinished).
            APIError: On a non-transient error (e.g. authentication).
        """
        handles: list[AsyncJob] = [self._handle(j) for j in jobs]
        many = ManyWait(self._settings, [h._data for h in handles], timeout=timeout, poll=poll)
        while True:
            for index in many.drain_finished():
                yield handles[index]
            if not many.pending:
                return
            left = many.time_left()
            if left is not None and left <= 0:
                raise _many_timeout(many, handles, lambda d: AsyncJob(d, self))
            await self._poll_round(many, handles)

    async def _poll_round(
        self, many: ManyWait, handles: list[AsyncJob], *, until_first: bool = True
    ) -> None:
        """Poll due jobs concurrently until one finishes (or all, ``until_first=False``).

        The round also ends when the deadline passes.

        A round runs entirely inside one ``__anext__`` of :meth:`as_completed`, so no task
        outlives a ``yield`` and leaving the loop early is always safe. Once a job has finished,
        no new poll starts; polls in flight get ``_GRACE`` seconds to land (they usually take
        milliseconds) and the rest are abandoned and repeated next round.
        """
        send, receive = anyio.create_memory_object_stream[tuple[int, Any]](math.inf)
        in_flight: set[int] = set()
        clock = self._settings.clock
        stop_at: float | None = None
        failure: MediaJobsError | None = None

        async def poll_one(index: int, data: JobData) -> None:
            try:
                outcome: Any = await run_async(many.poll_flow(data), self._http)
            except Exception as exc:  # handed to the scheduler
                outcome = exc
            send.send_nowait((index, outcome))

        async with send, receive, anyio.create_task_group() as tg:
            while many.pending and (stop_at is None or (in_flight and clock() < stop_at)):
                if stop_at is None:
                    for index, data in many.take_due(self._concurrency - len(in_flight)):
                        in_flight.add(index)
                        tg.start_soon(poll_one, index, data)
                left = many.time_left()
                if left is not None and left <= 0:
                    break
                if stop_at is not None:
                    wake: float | None = stop_at - clock()
                else:
                    wake = many.next_wake() if len(in_flight) < self._concurrency else None
                waits = [w for w in (wake, left) if w is not None]
                item: tuple[int, Any] | None = None
                with anyio.move_on_after(min(waits) if waits else math.inf):
                    item = await receive.receive()
                if item is None:
                    continue
                index, outcome = item
                in_flight.discard(index)
                try:
                    finished = many.record(index, outcome)
                except MediaJobsError as exc:
                    failure = exc
                    break
                handles[index]._data = many.results[index]
                if finished is not None and stop_at is None and until_first:
                    stop_at = clock() + _GRACE
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        for index in in_flight:
            many.requeue(index)

    async def wait_all(
        self,
        jobs: Iterable[JobRef],
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
    ) -> list[AsyncJob]:
        """Wait for every job to be terminal; failures are returned, not raised.

        Args:
            jobs: Job handles or ids.
            timeout: Seconds for the whole batch (default: ``wait_timeout``).
            poll: A poll policy (default: the client's).

        Returns:
            The jobs, terminal, in input order.

        Raises:
            WaitTimeoutError: When the deadline passes (``.pending`` lists the unfinished).
            APIError: On a non-transient error (e.g. authentication).
        """
        handles: list[AsyncJob] = [self._handle(j) for j in jobs]
        many = ManyWait(self._settings, [h._data for h in handles], timeout=timeout, poll=poll)
        while many.pending:  # one round for the whole wait: nothing is yielded mid-way
            left = many.time_left()
            if left is not None and left <= 0:
                raise _many_timeout(many, handles, lambda d: AsyncJob(d, self))
            await self._poll_round(many, handles, until_first=False)
        return handles
