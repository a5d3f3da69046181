"""``Client`` and ``AsyncClient``: configuration, an httpx client, and one driver each.

Every method builds a flow (``_flows.py``, ``_artifact.py``), runs it with the client's driver
(``_drivers.py``: :func:`run_sync` or :func:`run_async`) and returns what the flow returned.
The flows decide everything, raise every outcome, and keep the caller's job handle current;
the clients only choose which flow, and own the httpx client. The job handles are in
``_jobs.py``.

The module is longer than most because it holds the public surface twice, once per client,
each method with its full docstring (what users read in their editor); the code of any method
is one or two lines.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar

import httpx

from ._artifact import download_flow
from ._config import check_api_key
from ._drivers import OnProgress, Recorder, Runtime, Wakeups, run_async, run_sync
from ._exceptions import ConfigurationError
from ._files import ArtifactFiles
from ._flows import (
    ManyWait,
    cancel_flow,
    models_flow,
    poll_round,
    refresh_flow,
    submit_flow,
    wait_flow,
)
from ._inputs import read_inputs
from ._jobs import AsyncJob, Job
from ._models import JobData, ModelInfo
from ._policy import PollPolicy, RetryPolicy
from ._settings import Settings
from ._steps import Flow
from ._types import Kind, ProviderName
from ._version import __version__
from .dialects import DIALECTS, Dialect

__all__ = ["AsyncClient", "AsyncJob", "Client", "Job", "JobKind", "ProviderName"]

T = TypeVar("T")
J = TypeVar("J", Job, AsyncJob)

JobKind = Kind
"""The job kinds of the built-in providers (a custom dialect may offer others)."""

DEFAULT_TIMEOUT = 60.0
"""Seconds any single request may take."""
DEFAULT_WAIT_TIMEOUT = 3600.0
"""Seconds a wait may take in all unless told otherwise: long enough for slow video models,
short enough that a stuck job never hangs a program forever."""
DEFAULT_CONCURRENCY = 32
"""Requests in flight at once when waiting on many jobs or downloading several files."""

JobRef = str | JobData | Job | AsyncJob


class _BaseClient(Generic[J]):
    """Configuration shared by both clients, and the choice of flow for every method."""

    _job_class: type[J]

    def __init__(
        self,
        provider: ProviderName | str | Dialect,
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
            clock=time.monotonic,
            random=random.Random().random,  # noqa: S311 - jitter, not cryptography
            concurrency=max_concurrency,
        )
        self._concurrency = max_concurrency
        self._recorder: Recorder | None = None
        """Receives every durable fact the flows record (submits, statuses, files)."""
        self._wakeups = Wakeups()
        """Ends the sleeps of waits on a job that is known to have changed."""

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

    def _runtime(self, **callbacks: Any) -> Runtime:
        return Runtime(
            self._http,
            recorder=self._recorder,
            concurrency=self._concurrency,
            wakeups=self._wakeups,
            **callbacks,
        )

    _http: Any

    def _handle(self, job: JobRef, kind: str | None = None) -> J:
        if isinstance(job, self._job_class) and job._client is self:
            return job
        if isinstance(job, (Job, AsyncJob)):
            data = job.data
        elif isinstance(job, JobData):
            data = job
        else:
            data = self._settings.dialect.job_for_id(job, kind=kind)
        return self._job_class(data, self)  # type: ignore[arg-type]

    # Each method's flow, shared by both clients.

    def _submit(
        self, kind: str, model: str, prompt: str | None, params: Mapping[str, Any]
    ) -> Flow[JobData]:
        self._settings.dialect.check_kind(kind)
        payload = read_inputs(params, self._settings.dialect.file_params)
        return submit_flow(
            self._settings,
            kind,
            model=model,
            prompt=prompt,
            params=payload,
            idempotency_key=uuid.uuid4().hex,
        )

    def _many(
        self, jobs: Iterable[JobRef], timeout: float | None, poll: PollPolicy | None
    ) -> ManyWait[J]:
        return ManyWait(self._settings, [self._handle(j) for j in jobs], timeout=timeout, poll=poll)

    def job_from_dict(self, data: Mapping[str, Any]) -> J:
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
        return self._handle(snapshot)


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


class Client(_BaseClient[Job]):
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
        provider: ProviderName | str | Dialect,
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

    def _run(self, flow: Flow[T], **callbacks: Any) -> T:
        return run_sync(flow, self._runtime(**callbacks))

    def submit(
        self, kind: JobKind | str, *, model: str, prompt: str | None = None, **params: Any
    ) -> Job:
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
        return Job(self._run(self._submit(kind, model, prompt, params)), self)

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
        return self._run(refresh_flow(self._settings, self._handle(job, kind)))

    def wait(
        self,
        job: JobRef,
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        on_update: Callable[[Job], object] | None = None,
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
        flow = wait_flow(self._settings, self._handle(job, kind), timeout=timeout, poll=poll)
        return self._run(flow, on_update=on_update)

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
        return self._run(cancel_flow(self._settings, self._handle(job, kind)))

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
        handle = self._handle(job, kind)
        files = ArtifactFiles(dest_dir, overwrite=overwrite)
        try:
            return self._run(
                download_flow(self._settings, handle, files),
                on_progress=on_progress,
                refresh=lambda: self.get(handle).data,
            )
        finally:
            files.cleanup()

    def models(self) -> list[ModelInfo]:
        """List the provider's models (OpenRouter video models).

        Returns:
            The model entries, typed (each keeps the entry as sent in ``raw``).

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
        retried without delaying the others. Polling happens only while the caller asks for
        the next job, so nothing runs between two jobs handed out, and ``break`` returns at once
        (a poll still waiting for its answer is abandoned: it ends by its own timeout and its
        answer is discarded).

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
        many = self._many(jobs, timeout, poll)
        while True:
            for index in many.drain_finished():
                yield many.results[index]
            if not many.pending:
                return
            self._run(poll_round(many))

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
        many = self._many(jobs, timeout, poll)
        while many.pending:  # one round for the whole wait: nothing is handed out mid-way
            self._run(poll_round(many, until_first=False))
        return many.results


class AsyncClient(_BaseClient[AsyncJob]):
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
        provider: ProviderName | str | Dialect,
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

    async def _run(self, flow: Flow[T], **callbacks: Any) -> T:
        return await run_async(flow, self._runtime(**callbacks))

    async def submit(
        self, kind: JobKind | str, *, model: str, prompt: str | None = None, **params: Any
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
        return AsyncJob(await self._run(self._submit(kind, model, prompt, params)), self)

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
        return await self._run(refresh_flow(self._settings, self._handle(job, kind)))

    async def wait(
        self,
        job: JobRef,
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        on_update: Callable[[AsyncJob], object] | None = None,
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
        flow = wait_flow(self._settings, self._handle(job, kind), timeout=timeout, poll=poll)
        return await self._run(flow, on_update=on_update)

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
        return await self._run(cancel_flow(self._settings, self._handle(job, kind)))

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
        handle = self._handle(job, kind)
        files = ArtifactFiles(dest_dir, overwrite=overwrite)

        async def refresh() -> JobData:
            return (await self.get(handle)).data

        try:
            return await self._run(
                download_flow(self._settings, handle, files),
                on_progress=on_progress,
                refresh=refresh,
            )
        finally:
            files.cleanup()

    async def models(self) -> list[ModelInfo]:
        """List the provider's models (OpenRouter video models).

        Returns:
            The model entries, typed (each keeps the entry as sent in ``raw``).

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
        many = self._many(jobs, timeout, poll)
        while True:
            for index in many.drain_finished():
                yield many.results[index]
            if not many.pending:
                return
            await self._run(poll_round(many))

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
        many = self._many(jobs, timeout, poll)
        while many.pending:  # one round for the whole wait: nothing is handed out mid-way
            await self._run(poll_round(many, until_first=False))
        return many.results
