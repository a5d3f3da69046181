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

import contextlib
import dataclasses
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeAlias, TypeVar, overload

import anyio
import httpx

from ._artifact import download_flow
from ._config import check_api_key, check_extra_headers, request_timeout
from ._drivers import OnProgress, Recorder, Runtime, Wakeups, run_async, run_sync
from ._exceptions import ConfigurationError, MediaJobsError
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
from ._policy import PollPolicy, RetryPolicy
from ._settings import Settings
from ._status import is_newer
from ._steps import Event, Flow, StatusSeen
from ._types import Kind, ProviderName
from ._version import __version__

if TYPE_CHECKING:
    # Loaded on first use: the pydantic models and the dialects come in when a client is made.
    from ._models import JobData, ModelInfo
    from .dialects import Dialect

if TYPE_CHECKING:
    from ._models import JobStatus
    from ._store import JobStore, StoredJob
    from ._store._wiring import JobInfo, StoreRecorder
    from ._webhooks import SeenDeliveries, WebhookEvent

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
WEBHOOK_POLL = PollPolicy(initial=60.0, factor=1.5, max_interval=600.0, jitter=0.1)
"""The default poll policy of a client given ``webhook_secret=``: webhooks end the waits, and
polls are only a safety net for lost deliveries (after 1 minute, then 1.5x longer each time,
at most every 10 minutes)."""

JobRef: TypeAlias = "str | JobData | Job | AsyncJob"


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
        timeout: float | httpx.Timeout | None = None,
        headers: Mapping[str, str] | None = None,
        wait_timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        webhook_secret: str | Sequence[str] | None = None,
        store: str | os.PathLike[str] | JobStore | None = None,
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
        secrets = _webhook_secrets(dialect, webhook_secret)
        if poll is None and webhook_secret is not None:
            poll = WEBHOOK_POLL
        merged = {"User-Agent": f"mediajobs/{__version__}"}
        merged.update(headers or {})
        self._settings = Settings(
            dialect=dialect,
            api_key=key,
            headers=merged,
            timeout=request_timeout(DEFAULT_TIMEOUT if timeout is None else timeout, "timeout"),
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
        self._webhook_secrets = secrets
        self._webhook_dedupe: SeenDeliveries | None = None
        """Remembers delivery ids (an in-memory LRU from the first delivery on; a shared job
        store may be put here instead: anything with ``seen(id) -> bool``)."""
        self._webhook_recorder: Callable[[Event], object] | None = None
        """Receives a :class:`StatusSeen` for every job a verified webhook moved forward
        (called synchronously, on the thread that called ``parse_webhook``)."""
        self._store: JobStore | None = None
        self._owns_store = False
        self._store_recorder: StoreRecorder | None = None
        if store is not None:
            from ._store._wiring import open_store, recorder_for  # noqa: PLC0415 - sqlite

            self._store, self._owns_store = open_store(store)
            self._store_recorder = recorder_for(self._store)
            # Webhooks: deliveries are de-duplicated across every process sharing the store,
            # and the statuses they bring are recorded like polled ones.
            self._webhook_dedupe = _StoreDeliveries(self._store, dialect.name)
            self._webhook_recorder = self._store_recorder

    @property
    def store(self) -> JobStore | None:
        """The client's job store (``None``: nothing is recorded)."""
        return self._store

    def _close_store(self) -> None:
        if self._owns_store and self._store is not None:
            self._store.close()

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
        from ._models import JobData  # noqa: PLC0415 - loaded with the dialect, see above

        if isinstance(job, self._job_class) and job._client is self:
            return job
        if isinstance(job, (Job, AsyncJob)):
            return self._job_class(
                job.data,
                self,  # type: ignore[arg-type]
                key=job._key,
                labels=job._labels,
                files=job._files,
            )
        if isinstance(job, JobData):
            data = job
        else:
            data = self._settings.dialect.job_for_id(job, kind=kind)
        return self._job_class(data, self)  # type: ignore[arg-type]

    def _lookup(self, handles: Sequence[J]) -> None:
        """Attach what the store knows (key, labels, files) to handles that lack a key."""
        if self._store_recorder is None:
            return
        missing = [h for h in handles if h._key is None]
        if not missing:
            return
        found = self._store_recorder.info(self.provider, [h.id for h in missing])
        for handle in missing:
            info = found.get(handle.id)
            if info is not None:
                _attach(handle, info)

    def _downloaded(self, handle: J, paths: list[Path]) -> list[Path]:
        handle._files = list(paths)
        return paths

    def _known_files(self, dest_dir: str | os.PathLike[str]) -> Any:
        recorder = self._store_recorder
        if recorder is None:
            return None
        directory = Path(dest_dir)
        return lambda data: recorder.verified_files(data, directory)

    # Each method's flow, shared by both clients.

    def _submit(
        self,
        kind: str,
        model: str,
        prompt: str | None,
        params: Mapping[str, Any],
        *,
        key: str | None,
        labels: Mapping[str, Any] | None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> tuple[Flow[JobData], str | None, dict[str, Any]]:
        settings = self._settings
        settings.dialect.check_kind(kind)
        headers = None if extra_headers is None else check_extra_headers(extra_headers)
        if timeout is not None:
            settings = dataclasses.replace(settings, timeout=request_timeout(timeout, "timeout"))
        payload = read_inputs(params, settings.dialect.file_params)
        header = uuid.uuid4().hex
        given: dict[str, Any] = {}
        if key is not None or labels is not None or self._store is not None:
            from ._store._records import check_labels, idempotency_key_for  # noqa: PLC0415
            from ._store._wiring import generated_key  # noqa: PLC0415

            given = check_labels(labels)
            if key is None and self._store is not None:
                key = generated_key()
            if key is not None:
                if not isinstance(key, str) or not key:
                    raise ConfigurationError(f"key must be a non-empty string, not {key!r}")
                header = idempotency_key_for(self.provider, key)
        flow = submit_flow(
            settings,
            kind,
            model=model,
            prompt=prompt,
            params=payload,
            idempotency_key=header,
            extra_headers=headers,
            key=key,
            labels=given,
        )
        return flow, key, given

    def _submitted(self, data: JobData, key: str | None, labels: dict[str, Any]) -> J:
        info = self._store_recorder.take(data.id) if self._store_recorder is not None else None
        if info is not None:
            key, labels = info.key, info.labels
        files = info.files if info is not None else None
        return self._job_class(data, self, key=key, labels=labels, files=files)  # type: ignore[arg-type]

    def _listed(
        self, status: Any, labels: Mapping[str, Any] | None, downloaded: bool | None
    ) -> Any:
        """The body of ``jobs()``: records from the store, as handles (or unknown submits)."""
        from ._models import JobData  # noqa: PLC0415 - loaded with the dialect
        from ._store._wiring import JobInfo, statuses_of  # noqa: PLC0415

        recorder = self._store_recorder
        if recorder is None:
            raise ConfigurationError("this client has no job store: pass store= to list jobs")
        statuses = statuses_of(status)
        records = recorder.jobs(self.provider, statuses, labels, downloaded)
        if statuses == ["submit_unknown"]:
            return records
        handles: list[J] = []
        for record in records:
            if record.job is None:  # pragma: no cover - an accepted record has a snapshot
                continue
            handle = self._job_class(JobData.model_validate(record.job), self)  # type: ignore[arg-type]
            _attach(handle, JobInfo.of(record))
            handles.append(handle)
        return handles

    def _many(
        self, jobs: Iterable[JobRef], timeout: float | None, poll: PollPolicy | None
    ) -> ManyWait[J]:
        return ManyWait(self._settings, [self._handle(j) for j in jobs], timeout=timeout, poll=poll)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent[J]:
        """Verify a webhook delivery, update the job and wake every wait on it at once.

        The signature is checked with ``webhook_secret`` (see the client's arguments). The
        event's job is read like a status poll; when it moves the job forward, every
        ``wait()``, ``as_completed()`` and ``wait_all()`` of this client waiting on it takes
        this snapshot at once, without a request. A stale event (``running`` after
        ``succeeded``) changes nothing: ``event.job`` then shows the newer state already known.
        A plain (non-async) method on both clients: call it from any thread or task.

        Args:
            body: The raw request body, exactly as received (never re-serialized JSON).
            headers: The request headers (any mapping; names are case-insensitive).

        Returns:
            The event; ``event.duplicate`` is ``True`` when its delivery id was seen before.

        Raises:
            WebhookVerificationError: For a missing or bad signature, a timestamp outside
                300 s, a malformed body, another provider's delivery, or a provider that
                sends no webhooks (``reason`` says which).
        """
        from ._webhooks import DeliveryDeduplicator, WebhookEvent, parse_event  # noqa: PLC0415

        now = time.time()
        data = parse_event(self.dialect, body, headers, self._webhook_secrets, now)
        if self._webhook_dedupe is None:
            self._webhook_dedupe = DeliveryDeduplicator()
        duplicate = self._webhook_dedupe.seen(data.id)
        snapshot = self._pushed(data.job)
        return WebhookEvent(
            type=data.type,
            id=data.id,
            job=self._handle(snapshot),
            duplicate=duplicate,
            received_at=datetime.fromtimestamp(now, timezone.utc),
        )

    def _pushed(self, job: JobData) -> JobData:
        """Take a verified snapshot: wake the waits if it moves the job forward."""
        known = self._wakeups.latest(job.id)
        if known is not None and not is_newer(known.status, job.status):
            return known  # a repeat or a late event: nothing new
        self._wakeups.wake(job.id, job)
        if self._webhook_recorder is not None:
            self._webhook_recorder(StatusSeen(job))
        return job

    def job_from_dict(self, data: Mapping[str, Any]) -> J:
        """Rebuild a job handle from ``job.to_dict()`` output.

        Args:
            data: The dictionary.

        Returns:
            A job handle bound to this client.

        Raises:
            ConfigurationError: If the data is malformed or belongs to another provider.
        """
        from ._models import JobData  # noqa: PLC0415 - loaded with the dialect, see above

        try:
            snapshot = JobData.model_validate(dict(data))
        except ValueError as exc:
            raise ConfigurationError(f"not a mediajobs job: {exc}") from exc
        if snapshot.provider != self.provider:
            raise ConfigurationError(
                f"job {snapshot.id} belongs to {snapshot.provider}, not {self.provider}"
            )
        return self._handle(snapshot)


def _webhook_secrets(dialect: Dialect, secret: str | Sequence[str] | None) -> tuple[str, ...]:
    """Return the webhook secrets: the argument's, else ``<PROVIDER>_WEBHOOK_SECRET``'s."""
    if secret is None:
        from ._webhooks import secret_env_var  # noqa: PLC0415

        value = os.environ.get(secret_env_var(dialect.name))
        return (value,) if value else ()
    if dialect.webhook_format is None:
        raise ConfigurationError(f"{dialect.name} sends no webhooks: webhook_secret does not apply")
    secrets = (secret,) if isinstance(secret, str) else tuple(secret)
    if not secrets or not all(isinstance(item, str) and item for item in secrets):
        raise ConfigurationError("webhook_secret must be a non-empty string or a list of them")
    return secrets


class _StoreDeliveries:
    """Webhook delivery ids remembered in a job store (``seen(id)``, across processes)."""

    def __init__(self, store: JobStore, provider: str) -> None:
        self._store = store
        self._provider = provider

    def seen(self, delivery_id: str) -> bool:
        return self._store.seen_event(self._provider, delivery_id)


def _attach(handle: Job | AsyncJob, info: JobInfo) -> None:
    handle._key = info.key
    handle._labels = info.labels
    handle._files = info.files


def _resolve_dialect(provider: str | Dialect, base_url: str | None) -> Dialect:
    from .dialects import DIALECTS, Dialect  # noqa: PLC0415 - the dialects load on first use

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
        timeout: Seconds any single request may take (default 60), or an ``httpx.Timeout``
            to set connect, read, write and pool apart (``httpx.Timeout(None)``: no limit).
            Not the wait deadline: that is ``wait_timeout``, and a wait cuts each request's
            time to what is left of it.
        http_client: An ``httpx.Client`` to use (not closed by this client).
        headers: Extra headers for every API request.
        wait_timeout: Default seconds for a whole wait (default 3600; ``None``: no deadline).
        max_concurrency: Requests in flight at once for many-job waits and downloads.
        webhook_secret: The signing secret of the provider's webhooks (several while one is
            rotated), for :meth:`parse_webhook`; without it, ``<PROVIDER>_WEBHOOK_SECRET`` is
            read. Given here, it also makes the default poll policy :data:`WEBHOOK_POLL`
            (polls only as a safety net, from 1 minute on).
        store: A job store that records every submit, status change and downloaded file: a
            path (SQLite), a ``postgresql://`` URL, or a :class:`~mediajobs.JobStore` (shared,
            not closed by this client). ``None``: nothing is recorded.

    Raises:
        ConfigurationError: Without a key, with an unknown provider, a bad base URL or a bad
            timeout, with a ``webhook_secret`` for a provider that sends no webhooks, or with
            a ``store`` that is neither a path, a URL nor a ``JobStore``.
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
        timeout: float | httpx.Timeout | None = None,
        http_client: httpx.Client | None = None,
        headers: Mapping[str, str] | None = None,
        wait_timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        webhook_secret: str | Sequence[str] | None = None,
        store: str | os.PathLike[str] | JobStore | None = None,
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
            webhook_secret=webhook_secret,
            store=store,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(limits=self._limits(), follow_redirects=False)
        if self._store_recorder is not None:
            self._recorder = self._store_recorder

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
        """Close the underlying httpx client and store (unless they were passed in).

        Raises:
            StoreError: If the store fails to close.
        """
        try:
            if self._owns_http:
                self._http.close()
        finally:
            self._close_store()

    def _run(self, flow: Flow[T], **callbacks: Any) -> T:
        result = run_sync(flow, self._runtime(**callbacks))
        if self._store_recorder is not None and self._store_recorder.pending():
            self._store_recorder.flush()  # the call's observations are recorded when it returns
        return result

    def _bound(self, job: JobRef, kind: str | None = None) -> Job:
        handle = self._handle(job, kind)
        self._lookup([handle])
        return handle

    def submit(
        self,
        kind: JobKind | str,
        *,
        model: str,
        prompt: str | None = None,
        key: str | None = None,
        labels: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        **params: Any,
    ) -> Job:
        """Create a job.

        With a store, the submit is recorded before its request is sent, and a ``key`` the
        store already holds with a job sends nothing and returns that job (its labels as first
        recorded); a ``key`` whose earlier submit has an unknown outcome is sent again with the
        same ``Idempotency-Key``.

        Args:
            kind: ``"image"``, ``"image_edit"``, ``"video"``, ``"speech"`` or ``"transcription"``.
            model: The model.
            prompt: The prompt.
            key: Your stable name for this job, unique per provider; the ``Idempotency-Key``
                header is derived from the provider and the key only (else it is random).
            labels: Names and JSON scalar values to find the job by (``jobs(labels=...)``).
            extra_headers: Headers for this submit only, beside the client's ``headers``
                (sent to the provider's API hosts only; ``Authorization``,
                ``Idempotency-Key`` and the body's headers are refused).
            timeout: Seconds (or an ``httpx.Timeout``) each request of this submit may take,
                instead of the client's ``timeout``.
            **params: Provider parameters, passed as they are; ``image=``/``file=`` accept a
                path, bytes or a binary file object. ``extra_headers`` and ``timeout`` are
                this method's own and never reach the provider.

        Returns:
            The new job (usually queued), or the one ``key`` already names.

        Raises:
            ConfigurationError: For unusable ``extra_headers`` or ``timeout`` (before any
                request).
            UnsupportedError: If the provider does not offer ``kind`` (before any request).
            ConfigurationError: If ``key`` is empty or ``labels`` are not JSON scalars.
            APIError: When the provider refuses the job.
            APIConnectionError: When the network fails (retried only if the job cannot exist);
                with a store, a failure that leaves the outcome unknown says so.
            ProtocolError: When the answer is not in the documented shape.
            StoreError: When the store cannot record the submit.
        """
        flow, key, given = self._submit(
            kind,
            model,
            prompt,
            params,
            key=key,
            labels=labels,
            extra_headers=extra_headers,
            timeout=timeout,
        )
        try:
            data = self._run(flow)
        except BaseException:
            if self._store_recorder is not None:
                with contextlib.suppress(MediaJobsError):  # the first failure is the news
                    self._store_recorder.interrupted(self.provider, key)
            raise
        return self._submitted(data, key, given)

    def get(self, job: JobRef, *, kind: str | None = None) -> Job:
        """Read a job's current state.

        Args:
            job: A job handle or a stored job id.
            kind: The job kind, for an id whose status route depends on it; without it, a
                404 from the likelier route is followed by one read on the other.

        Returns:
            The job handle, updated (a new one for an id).

        Raises:
            NotFoundError: When no status route of the provider knows the job.
            APIError: When the provider answers with an error.
            APIConnectionError: When the network fails beyond retries.
            ProtocolError: When the answer is not in the documented shape.
        """
        return self._run(refresh_flow(self._settings, self._bound(job, kind)))

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
            kind: The job kind, for an id whose status route depends on it; without it, a
                404 from the likelier route is followed by one read on the other.

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
        flow = wait_flow(self._settings, self._bound(job, kind), timeout=timeout, poll=poll)
        return self._run(flow, on_update=on_update)

    def cancel(self, job: JobRef, *, kind: str | None = None) -> Job:
        """Cancel a job.

        Args:
            job: A job handle or a stored job id.
            kind: The job kind, for an id whose route depends on it; without it, a 404
                from the likelier route is followed by one request on the other.

        Returns:
            The job, updated.

        Raises:
            UnsupportedError: Where the provider has no cancel.
            APIError: When the provider refuses.
        """
        return self._run(cancel_flow(self._settings, self._bound(job, kind)))

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
            kind: The job kind, for an id whose route depends on it; without it, a 404
                from the likelier route is followed by one request on the other.

        Returns:
            The paths written, in artifact order.

        Raises:
            DownloadError: When an artifact cannot be fetched completely or written.
            JobError: When the job did not succeed.
        """
        handle = self._bound(job, kind)
        files = ArtifactFiles(dest_dir, overwrite=overwrite)
        try:
            paths = self._run(
                download_flow(self._settings, handle, files, known=self._known_files(dest_dir)),
                on_progress=on_progress,
                refresh=lambda: self.get(handle).data,
            )
        finally:
            files.cleanup()
        return self._downloaded(handle, paths)

    @overload
    def jobs(  # type: ignore[overload-overlap]
        self,
        *,
        status: Literal["submit_unknown"],
        labels: Mapping[str, Any] | None = None,
        downloaded: bool | None = None,
    ) -> list[StoredJob]: ...

    @overload
    def jobs(
        self,
        *,
        status: JobStatus | str | Sequence[JobStatus | str] | None = None,
        labels: Mapping[str, Any] | None = None,
        downloaded: bool | None = None,
    ) -> list[Job]: ...

    def jobs(
        self,
        *,
        status: JobStatus | str | Sequence[JobStatus | str] | None = None,
        labels: Mapping[str, Any] | None = None,
        downloaded: bool | None = None,
    ) -> list[Job] | list[StoredJob]:
        """List this provider's jobs from the store, newest first; no request is sent.

        Args:
            status: A job status (``"succeeded"``, :class:`~mediajobs.JobStatus`, …) or a
                list of them; ``None``: every accepted job. ``"submit_unknown"`` (alone) lists
                the submits whose outcome is unknown instead: :class:`~mediajobs.StoredJob`
                records (``.key``, ``.labels``, ``.kind``, ``.model``; no job id), to submit
                again by key.
            labels: Only jobs whose labels include all of these.
            downloaded: ``True``: only succeeded jobs with a recorded file for every artifact;
                ``False``: the others.

        Returns:
            Job handles (with ``key``, ``labels`` and ``files``), or records for
            ``"submit_unknown"``.

        Raises:
            ConfigurationError: Without a store, or with an unknown status or bad labels.
            StoreError: If the store cannot be read.
        """
        listed: list[Job] | list[StoredJob] = self._listed(status, labels, downloaded)
        return listed

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
        self._lookup(many.results)
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
        self._lookup(many.results)
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
        timeout: Seconds any single request may take (default 60), or an ``httpx.Timeout``
            to set connect, read, write and pool apart (``httpx.Timeout(None)``: no limit).
            Not the wait deadline: that is ``wait_timeout``, and a wait cuts each request's
            time to what is left of it.
        http_client: An ``httpx.AsyncClient`` to use (not closed by this client).
        headers: Extra headers for every API request.
        wait_timeout: Default seconds for a whole wait (default 3600; ``None``: no deadline).
        max_concurrency: Requests in flight at once for many-job waits and downloads.
        webhook_secret: The signing secret of the provider's webhooks (several while one is
            rotated), for :meth:`parse_webhook`; without it, ``<PROVIDER>_WEBHOOK_SECRET`` is
            read. Given here, it also makes the default poll policy :data:`WEBHOOK_POLL`
            (polls only as a safety net, from 1 minute on).
        store: A job store that records every submit, status change and downloaded file: a
            path (SQLite), a ``postgresql://`` URL, or a :class:`~mediajobs.JobStore` (shared,
            not closed by this client). ``None``: nothing is recorded.

    Raises:
        ConfigurationError: Without a key, with an unknown provider, a bad base URL or a bad
            timeout, with a ``webhook_secret`` for a provider that sends no webhooks, or with
            a ``store`` that is neither a path, a URL nor a ``JobStore``.
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
        timeout: float | httpx.Timeout | None = None,
        http_client: httpx.AsyncClient | None = None,
        headers: Mapping[str, str] | None = None,
        wait_timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        webhook_secret: str | Sequence[str] | None = None,
        store: str | os.PathLike[str] | JobStore | None = None,
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
            webhook_secret=webhook_secret,
            store=store,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(limits=self._limits(), follow_redirects=False)
        if self._store_recorder is not None:
            self._recorder = self._store_recorder.acall

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
        """Close the underlying httpx client and store (unless they were passed in).

        Raises:
            StoreError: If the store fails to close.
        """
        try:
            if self._owns_http:
                await self._http.aclose()
        finally:
            if self._owns_store:
                from anyio import to_thread  # noqa: PLC0415 - only with a store

                with anyio.CancelScope(shield=True):
                    await to_thread.run_sync(self._close_store)

    async def _run(self, flow: Flow[T], **callbacks: Any) -> T:
        result = await run_async(flow, self._runtime(**callbacks))
        recorder = self._store_recorder
        if recorder is not None and recorder.pending():
            await recorder.aflush()  # the call's observations are recorded when it returns
        return result

    async def _bound_all(self, handles: list[AsyncJob]) -> list[AsyncJob]:
        if self._store_recorder is not None and any(h._key is None for h in handles):
            from anyio import to_thread  # noqa: PLC0415 - only with a store

            await to_thread.run_sync(self._lookup, handles)
        return handles

    async def _bound(self, job: JobRef, kind: str | None = None) -> AsyncJob:
        (handle,) = await self._bound_all([self._handle(job, kind)])
        return handle

    async def submit(
        self,
        kind: JobKind | str,
        *,
        model: str,
        prompt: str | None = None,
        key: str | None = None,
        labels: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        **params: Any,
    ) -> AsyncJob:
        """Create a job.

        With a store, the submit is recorded before its request is sent, and a ``key`` the
        store already holds with a job sends nothing and returns that job (its labels as first
        recorded); a ``key`` whose earlier submit has an unknown outcome is sent again with the
        same ``Idempotency-Key``.

        Args:
            kind: ``"image"``, ``"image_edit"``, ``"video"``, ``"speech"`` or ``"transcription"``.
            model: The model.
            prompt: The prompt.
            key: Your stable name for this job, unique per provider; the ``Idempotency-Key``
                header is derived from the provider and the key only (else it is random).
            labels: Names and JSON scalar values to find the job by (``jobs(labels=...)``).
            extra_headers: Headers for this submit only, beside the client's ``headers``
                (sent to the provider's API hosts only; ``Authorization``,
                ``Idempotency-Key`` and the body's headers are refused).
            timeout: Seconds (or an ``httpx.Timeout``) each request of this submit may take,
                instead of the client's ``timeout``.
            **params: Provider parameters, passed as they are; ``image=``/``file=`` accept a
                path, bytes or a binary file object. ``extra_headers`` and ``timeout`` are
                this method's own and never reach the provider.

        Returns:
            The new job (usually queued), or the one ``key`` already names.

        Raises:
            ConfigurationError: For unusable ``extra_headers`` or ``timeout`` (before any
                request).
            UnsupportedError: If the provider does not offer ``kind`` (before any request).
            ConfigurationError: If ``key`` is empty or ``labels`` are not JSON scalars.
            APIError: When the provider refuses the job.
            APIConnectionError: When the network fails (retried only if the job cannot exist);
                with a store, a failure that leaves the outcome unknown says so.
            ProtocolError: When the answer is not in the documented shape.
            StoreError: When the store cannot record the submit.
        """
        flow, key, given = self._submit(
            kind,
            model,
            prompt,
            params,
            key=key,
            labels=labels,
            extra_headers=extra_headers,
            timeout=timeout,
        )
        try:
            data = await self._run(flow)
        except BaseException:
            recorder = self._store_recorder
            if recorder is not None and recorder.sending(self.provider, key):
                from anyio import to_thread  # noqa: PLC0415 - only with a store

                with anyio.CancelScope(shield=True), contextlib.suppress(MediaJobsError):
                    await to_thread.run_sync(recorder.interrupted, self.provider, key)
            raise
        return self._submitted(data, key, given)

    async def get(self, job: JobRef, *, kind: str | None = None) -> AsyncJob:
        """Read a job's current state.

        Args:
            job: A job handle or a stored job id.
            kind: The job kind, for an id whose status route depends on it; without it, a
                404 from the likelier route is followed by one read on the other.

        Returns:
            The job handle, updated (a new one for an id).

        Raises:
            NotFoundError: When no status route of the provider knows the job.
            APIError: When the provider answers with an error.
            APIConnectionError: When the network fails beyond retries.
            ProtocolError: When the answer is not in the documented shape.
        """
        return await self._run(refresh_flow(self._settings, await self._bound(job, kind)))

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
            kind: The job kind, for an id whose status route depends on it; without it, a
                404 from the likelier route is followed by one read on the other.

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
        handle = await self._bound(job, kind)
        flow = wait_flow(self._settings, handle, timeout=timeout, poll=poll)
        return await self._run(flow, on_update=on_update)

    async def cancel(self, job: JobRef, *, kind: str | None = None) -> AsyncJob:
        """Cancel a job.

        Args:
            job: A job handle or a stored job id.
            kind: The job kind, for an id whose route depends on it; without it, a 404
                from the likelier route is followed by one request on the other.

        Returns:
            The job, updated.

        Raises:
            UnsupportedError: Where the provider has no cancel.
            APIError: When the provider refuses.
        """
        return await self._run(cancel_flow(self._settings, await self._bound(job, kind)))

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
            kind: The job kind, for an id whose route depends on it; without it, a 404
                from the likelier route is followed by one request on the other.

        Returns:
            The paths written, in artifact order.

        Raises:
            DownloadError: When an artifact cannot be fetched completely or written.
            JobError: When the job did not succeed.
        """
        handle = await self._bound(job, kind)
        files = ArtifactFiles(dest_dir, overwrite=overwrite)

        async def refresh() -> JobData:
            return (await self.get(handle)).data

        try:
            paths = await self._run(
                download_flow(self._settings, handle, files, known=self._known_files(dest_dir)),
                on_progress=on_progress,
                refresh=refresh,
            )
        finally:
            files.cleanup()
        return self._downloaded(handle, paths)

    @overload
    async def jobs(  # type: ignore[overload-overlap]
        self,
        *,
        status: Literal["submit_unknown"],
        labels: Mapping[str, Any] | None = None,
        downloaded: bool | None = None,
    ) -> list[StoredJob]: ...

    @overload
    async def jobs(
        self,
        *,
        status: JobStatus | str | Sequence[JobStatus | str] | None = None,
        labels: Mapping[str, Any] | None = None,
        downloaded: bool | None = None,
    ) -> list[AsyncJob]: ...

    async def jobs(
        self,
        *,
        status: JobStatus | str | Sequence[JobStatus | str] | None = None,
        labels: Mapping[str, Any] | None = None,
        downloaded: bool | None = None,
    ) -> list[AsyncJob] | list[StoredJob]:
        """List this provider's jobs from the store, newest first; no request is sent.

        Args:
            status: A job status (``"succeeded"``, :class:`~mediajobs.JobStatus`, …) or a
                list of them; ``None``: every accepted job. ``"submit_unknown"`` (alone) lists
                the submits whose outcome is unknown instead: :class:`~mediajobs.StoredJob`
                records (``.key``, ``.labels``, ``.kind``, ``.model``; no job id), to submit
                again by key.
            labels: Only jobs whose labels include all of these.
            downloaded: ``True``: only succeeded jobs with a recorded file for every artifact;
                ``False``: the others.

        Returns:
            Job handles (with ``key``, ``labels`` and ``files``), or records for
            ``"submit_unknown"``.

        Raises:
            ConfigurationError: Without a store, or with an unknown status or bad labels.
            StoreError: If the store cannot be read.
        """
        from anyio import to_thread  # noqa: PLC0415 - 6 ms to import

        listed: list[AsyncJob] | list[StoredJob] = await to_thread.run_sync(
            self._listed, status, labels, downloaded
        )
        return listed

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
        await self._bound_all(many.results)
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
        await self._bound_all(many.results)
        while many.pending:  # one round for the whole wait: nothing is handed out mid-way
            await self._run(poll_round(many, until_first=False))
        return many.results
