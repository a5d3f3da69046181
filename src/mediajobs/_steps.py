"""The step vocabulary: everything a flow may ask of a driver, and the facts it records.

A flow is a generator that yields steps and returns a value; it never performs I/O. The two
drivers in ``_drivers.py`` (``run_sync`` and ``run_async``) execute every step kind below and
send the step's result back into the flow (or throw its failure into it):

========================  =========================================  ======================
step                      the driver                                  resumes the flow with
========================  =========================================  ======================
:class:`Send`             sends the request (``stream``: body unread)  ``httpx.Response``
:class:`Consume`          copies or skims a streamed body, closes it   :class:`Consumed`
:class:`Sleep`            sleeps (ends early when its job is woken)    ``None``
:class:`Notify`           calls the caller's ``on_update``             ``None``
:class:`Report`           reports download progress                    ``None``
:class:`Refresh`          re-reads the job (fresh artifact URLs)       ``JobData``
:class:`Record`           hands a durable fact to the recorder         ``None``
:class:`Blocking`         runs a blocking file operation               its result
:class:`Gather`           runs sub-flows concurrently                  finished outcomes
========================  =========================================  ======================

Flows carry the caller's job handle (``Job``, ``AsyncJob``) through, or a bare
:class:`~mediajobs.JobData` when driven by hand: :func:`data_of` reads a snapshot from either
and :func:`updated` stores a new one, so the errors a flow raises already carry the handle.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import httpx

from ._models import JobData

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "Blocking",
    "Consume",
    "Consumed",
    "Event",
    "FileWritten",
    "Flow",
    "Gather",
    "Handle",
    "Notify",
    "ProgressLike",
    "Record",
    "Refresh",
    "Report",
    "Send",
    "Sink",
    "Sleep",
    "StatusSeen",
    "Step",
    "SubmitAccepted",
    "SubmitIntent",
    "data_of",
    "updated",
]

T = TypeVar("T")


class Handle(Protocol):
    """A job handle as flows see it: a snapshot that can be replaced."""

    @property
    def data(self) -> JobData:
        """The latest snapshot."""

    def _update(self, data: JobData) -> None: ...


H = TypeVar("H", bound="JobData | Handle")


def data_of(job: JobData | Handle) -> JobData:
    """Return the latest snapshot of a handle or a bare snapshot.

    Args:
        job: A job handle or a :class:`~mediajobs.JobData`.

    Returns:
        The snapshot.
    """
    return job if isinstance(job, JobData) else job.data


def updated(job: H, data: JobData) -> H:
    """Store a new snapshot: into the handle (returned), or as the new bare snapshot.

    Args:
        job: A job handle or a bare snapshot.
        data: The new snapshot.

    Returns:
        The same handle, updated; or ``data`` itself for a bare snapshot.
    """
    if isinstance(job, JobData):
        return cast(H, data)
    job._update(data)
    return job


# ------------------------------------------------------------------------ events


@dataclass(frozen=True)
class SubmitIntent:
    """A submit is about to leave: recorded before its request is sent.

    Attributes:
        provider: The provider's name.
        kind: The job kind.
        model: The model.
        prompt: The prompt.
        idempotency_key: The key every attempt of this submit carries.
    """

    provider: str
    kind: str
    model: str
    prompt: str | None
    idempotency_key: str


@dataclass(frozen=True)
class SubmitAccepted:
    """The provider accepted a submit.

    Attributes:
        job: The new job's first snapshot.
        idempotency_key: The submit's key.
    """

    job: JobData
    idempotency_key: str


@dataclass(frozen=True)
class StatusSeen:
    """A poll observed a status change.

    Attributes:
        job: The new snapshot.
    """

    job: JobData


@dataclass(frozen=True)
class FileWritten:
    """A downloaded artifact reached its final name.

    Attributes:
        job: The job's snapshot.
        index: The artifact's index.
        path: The file.
        size: Its size in bytes.
        sha256: The hex SHA-256 of its content.
    """

    job: JobData
    index: int
    path: Path
    size: int
    sha256: str


Event = SubmitIntent | SubmitAccepted | StatusSeen | FileWritten


# ------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class Send:
    """Send this request; resume with the ``httpx.Response`` (or throw the httpx error).

    Attributes:
        request: The request, complete with headers, credentials and timeout.
        stream: Leave the body unread (the flow follows with :class:`Consume`); redirects are
            never followed by the driver either way.
    """

    request: httpx.Request
    stream: bool = False


class Sink(Protocol):
    """Where a :class:`Consume` step writes an artifact's bytes (a part file)."""

    def rewind(self, offset: int) -> None:
        """Cut the file at ``offset`` and write from there."""

    def write(self, chunk: bytes) -> None:
        """Append a chunk."""


class ProgressLike(Protocol):
    """Aggregates the progress of a download call (``_artifact.Progress``)."""

    def update(self, key: int, done: int, size: int | None = None) -> tuple[int, int | None] | None:
        """Record one artifact's progress; return the report to make now, if any."""

    def final(self) -> tuple[int, int | None] | None:
        """Return the closing report, if any."""


@dataclass(frozen=True)
class Consume:
    """Read an open response's body, then close it; resume with :class:`Consumed`.

    Attributes:
        response: The streamed response (from a ``Send`` step).
        sink: Write the body there, from ``offset`` on (the file is cut there first);
            ``None``: write nothing.
        offset: Where the body starts in the artifact.
        size: The artifact's full size when known (for progress).
        limit: Without a sink, keep at most this many bytes of the body (error bodies);
            0 closes the response unread.
        key: The artifact's position, for progress reports.
        progress: Where the call's progress is aggregated, when the caller wants it.
    """

    response: httpx.Response
    sink: Sink | None = None
    offset: int = 0
    size: int | None = None
    limit: int = 0
    key: int = 0
    progress: ProgressLike | None = None


@dataclass(frozen=True)
class Consumed:
    """How a :class:`Consume` step ended.

    Attributes:
        written: Body bytes written to the sink (after content decoding).
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
class Sleep:
    """Sleep this many seconds, then resume with ``None``.

    Attributes:
        seconds: The delay.
        wake: A job id: the sleep ends early when that job is woken (a webhook arrived).
    """

    seconds: float
    wake: str | None = None


@dataclass(frozen=True)
class Notify:
    """Tell the caller's ``on_update`` about a status change, then resume with ``None``.

    Attributes:
        job: The job (the caller's handle, already updated).
    """

    job: Any


@dataclass(frozen=True)
class Report:
    """Report download progress of one artifact (or the closing report); resume with ``None``.

    Attributes:
        key: The artifact's position; ``None`` for the closing report of the call.
        done: Its bytes on disk.
        size: Its full size, when known.
        progress: Where the call's progress is aggregated.
    """

    key: int | None
    done: int = 0
    size: int | None = None
    progress: ProgressLike | None = None


@dataclass(frozen=True)
class Refresh:
    """Re-read the job for fresh artifact URLs; resume with the new ``JobData``.

    One re-read serves every artifact of a download call.
    """


@dataclass(frozen=True)
class Record:
    """Hand a durable fact to the recorder (a no-op without one); resume with ``None``.

    Attributes:
        event: The fact.
    """

    event: Event


@dataclass(frozen=True)
class Blocking:
    """Run a blocking file operation (on a worker thread under async); resume with its result.

    Attributes:
        call: The operation.
    """

    call: Callable[[], Any]


@dataclass(frozen=True)
class Gather:
    """Start sub-flows concurrently, then wait for outcomes.

    The sub-flows run beside those started by earlier ``Gather`` steps of the same run; the
    driver resumes the flow with the ``(key, outcome)`` pairs of every sub-flow that finished
    (at least one), or with an empty list once ``timeout`` seconds passed. An outcome is the
    sub-flow's result or the exception it raised. Sub-flows still running when the flow ends
    are cancelled.

    Attributes:
        start: ``(key, flow)`` pairs to start now.
        timeout: The longest wait for an outcome, in seconds (``None``: no limit).
    """

    start: Sequence[tuple[int, Generator[Step, Any, Any]]] = ()
    timeout: float | None = None


Step = Send | Consume | Sleep | Notify | Report | Refresh | Record | Blocking | Gather
Flow = Generator[Step, Any, T]
