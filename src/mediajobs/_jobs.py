"""The job handles users hold: :class:`Job` (from ``Client``) and :class:`AsyncJob`.

A handle is the latest :class:`~mediajobs.JobData` snapshot plus the client it came from; its
methods call that client, which runs the flows and stores each new snapshot into the handle.
Handles compare and hash by ``(provider, id)`` (see :meth:`_JobView.__eq__`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._policy import PollPolicy

if TYPE_CHECKING:
    from ._client import AsyncClient, Client  # noqa: F401  (named in the base classes)
    from ._drivers import OnProgress
    from ._models import Artifact, JobData, JobErrorInfo, JobStatus

__all__ = ["AsyncJob", "Job"]

C = TypeVar("C")


class _JobView(Generic[C]):
    """What both job handles show: the latest snapshot's fields."""

    __slots__ = ("_client", "_data", "_files", "_key", "_labels")

    def __init__(
        self,
        data: JobData,
        client: C,
        *,
        key: str | None = None,
        labels: dict[str, Any] | None = None,
        files: list[Path] | None = None,
    ) -> None:
        self._data = data
        self._client = client
        self._key = key
        self._labels: dict[str, Any] = labels or {}
        self._files: list[Path] = files or []

    @property
    def data(self) -> JobData:
        """The latest immutable snapshot."""
        return self._data

    def _update(self, data: JobData) -> None:
        self._data = data

    @property
    def id(self) -> str:
        """The provider's job id."""
        return self._data.id

    @property
    def provider(self) -> str:
        """The provider's name."""
        return self._data.provider

    @property
    def key(self) -> str | None:
        """The caller's stable name for the job (``submit(key=...)``, or the store's record).

        ``None`` for a job submitted without a key and without a store, or one the client's
        store does not hold. A submit recorded without a key gets a generated ``"auto-..."`` key.
        """
        return self._key

    @property
    def labels(self) -> dict[str, Any]:
        """The caller's labels, as first recorded (a copy; empty without any)."""
        return dict(self._labels)

    @property
    def files(self) -> list[Path]:
        """The downloaded files of this job, in artifact order.

        With a store: the files it records for the job (existence not checked); without one,
        those the last ``download()`` through this handle returned.
        """
        return list(self._files)

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
        """Tell whether ``other`` is a handle of the same job: same class, provider and id.

        Two handles of one job are equal whatever snapshot each holds (one may be older), so
        handles work as set members and dictionary keys. A :class:`Job` never equals an
        :class:`AsyncJob`: they belong to different clients and their methods cannot be
        called the same way. Compare ``.data`` to compare snapshots.
        """
        if not isinstance(other, _JobView):
            return NotImplemented
        if type(self) is not type(other):
            return False
        return (self._data.provider, self._data.id) == (other._data.provider, other._data.id)

    def __hash__(self) -> int:
        """Hash by ``(provider, id)``, which never change for a handle."""
        return hash((self._data.provider, self._data.id))


class Job(_JobView["Client"]):
    """A job handle from :class:`Client`; its methods update it in place and return it.

    Handles of one job are equal and hash alike, whatever snapshot each holds: equality is by
    ``(provider, id)``, and a handle never equals an :class:`AsyncJob`.
    """

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
        on_update: Callable[[Job], object] | None = None,
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
    """A job handle from :class:`AsyncClient`; its methods update it in place and return it.

    Handles of one job are equal and hash alike, whatever snapshot each holds: equality is by
    ``(provider, id)``, and a handle never equals an :class:`Job`.
    """

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
        on_update: Callable[[AsyncJob], object] | None = None,
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
