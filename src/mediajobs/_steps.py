"""The step vocabulary: everything a flow may ask of a driver, and the facts it records.

A flow is a generator that yields steps and returns a value; it never performs I/O. The two
drivers in ``_drivers.py`` (``run_sync`` and ``run_async``) execute every step kind below and
send the step's result back into the flow (or throw its failure into it):

========================  =========================================  ======================
step                      the driver                                  resumes the flow with
========================  =========================================  ======================
:class:`Send`             sends the request (``stream``: body unread)  ``httpx.Response``
:class:`Consume`          copies or skims a streamed body, closes it   :class:`Consumed`
:class:`Sleep`            sleeps (ends early when its job is woken)    a pushed snapshot/None
:class:`Notify`           calls the caller's ``on_update``             ``None``
:class:`Report`           reports download progress                    ``None``
:class:`Refresh`          re-reads the job (fresh artifact URLs)       ``JobData``
:class:`Record`           hands a durable fact to the recorder         its answer
:class:`Blocking`         runs a blocking file operation               its result
:class:`Gather`           runs sub-flows concurrently                  outcomes, pushes
========================  =========================================  ======================

Flows carry the caller's job handle (``Job``, ``AsyncJob``) through, or a bare
:class:`~mediajobs.JobData` when driven by hand: :func:`data_of` reads a snapshot from either
and :func:`updated` stores a new one, so the errors a flow raises already carry the handle.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import httpx

if TYPE_CHECKING:
    from pathlib import Path

    from ._models import JobData

__all__ = [
    "Blocking",
    "Claim",
    "Consume",
    "Consumed",
    "Event",
    "FileWritten",
    "Flow",
    "Gather",
    "Handle",
    "Notify",
    "ProgressLike",
    "Pushed",
    "Record",
    "Refresh",
    "Report",
    "Send",
    "Sink",
    "Sleep",
    "StatusSeen",
    "Step",
    "SubmitAccepted",
    "SubmitFailed",
    "SubmitIntent",
    "WakeWatch",
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
    if hasattr(job, "_update"):  # cheaper than isinstance on a pydantic model: polls add up
        return cast(Handle, job).data
    return job


def updated(job: H, data: JobData) -> H:
    """Store a new snapshot: into the handle (returned), or as the new bare snapshot.

    Args:
        job: A job handle or a bare snapshot.
        data: The new snapshot.

    Returns:
        The same handle, updated; or ``data`` itself for a bare snapshot.
    """
    if hasattr(job, "_update"):
        job._update(data)
        return job
    return cast(H, data)


class _Value:
    """A small value built on every poll: equality, hash and repr from its slots.

    Plain classes rather than dataclasses: a dataclass costs about a millisecond to create at
    import, and these are a dozen. Treat instances as immutable.
    """

    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


# ------------------------------------------------------------------------ events


class SubmitIntent(_Value):
    """A submit is about to leave: recorded before its request is sent.

    The recorder answers with a :class:`Claim` (or ``None``: send).

    Attributes:
        provider: The provider's name.
        kind: The job kind.
        model: The model.
        prompt: The prompt.
        idempotency_key: The key every attempt of this submit carries.
        key: The caller's name for the job (``None``: not named).
        params: The other params (input files already read).
        labels: The caller's labels.
        patience: Seconds a submit of the same key that another sender started may still be
            waited for before it counts as abandoned (its outcome unknown).
    """

    __slots__ = (
        "idempotency_key",
        "key",
        "kind",
        "labels",
        "model",
        "params",
        "patience",
        "prompt",
        "provider",
    )

    def __init__(  # noqa: PLR0917 - the facts of one submit
        self,
        provider: str,
        kind: str,
        model: str,
        prompt: str | None,
        idempotency_key: str,
        key: str | None = None,
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, Any] | None = None,
        patience: float = 0.0,
    ) -> None:
        self.provider = provider
        self.kind = kind
        self.model = model
        self.prompt = prompt
        self.idempotency_key = idempotency_key
        self.key = key
        self.params = params
        self.labels = labels
        self.patience = patience

    def waited(self, patience: float) -> SubmitIntent:
        """Return the same intent with less patience left.

        Args:
            patience: The seconds left.

        Returns:
            A new intent.
        """
        return SubmitIntent(
            self.provider,
            self.kind,
            self.model,
            self.prompt,
            self.idempotency_key,
            self.key,
            self.params,
            self.labels,
            patience,
        )


class Claim(_Value):
    """The recorder's answer to a :class:`SubmitIntent` (``None`` means the same as ``send``).

    Attributes:
        job: The job the key already names: the flow returns it and sends nothing.
        wait: Another sender holds the key: ask again after this many seconds.
    """

    __slots__ = ("job", "wait")

    def __init__(self, job: JobData | None = None, wait: float | None = None) -> None:
        self.job = job
        self.wait = wait


class SubmitAccepted(_Value):
    """The provider accepted a submit.

    Attributes:
        job: The new job's first snapshot.
        idempotency_key: The submit's key.
        key: The caller's name for the job (``None``: not named).
    """

    __slots__ = ("idempotency_key", "job", "key")

    def __init__(self, job: JobData, idempotency_key: str, key: str | None = None) -> None:
        self.job = job
        self.idempotency_key = idempotency_key
        self.key = key


class SubmitFailed(_Value):
    """A submit failed; the recorder answers with the state it recorded, if any.

    Attributes:
        provider: The provider's name.
        key: The caller's name for the job (``None``: not named).
        error: What the submit raised.
    """

    __slots__ = ("error", "key", "provider")

    def __init__(self, provider: str, key: str | None, error: BaseException) -> None:
        self.provider = provider
        self.key = key
        self.error = error


class StatusSeen(_Value):
    """A poll observed a status change.

    Attributes:
        job: The new snapshot.
    """

    __slots__ = ("job",)

    def __init__(self, job: JobData) -> None:
        self.job = job


class FileWritten(_Value):
    """A downloaded artifact reached its final name.

    Attributes:
        job: The job's snapshot.
        index: The artifact's index.
        path: The file.
        size: Its size in bytes.
        sha256: The hex SHA-256 of its content.
    """

    __slots__ = ("index", "job", "path", "sha256", "size")

    def __init__(self, job: JobData, index: int, path: Path, size: int, sha256: str) -> None:
        self.job = job
        self.index = index
        self.path = path
        self.size = size
        self.sha256 = sha256


Event = SubmitIntent | SubmitAccepted | SubmitFailed | StatusSeen | FileWritten


# ------------------------------------------------------------------------- steps


class Send(_Value):
    """Send this request; resume with the ``httpx.Response`` (or throw the httpx error).

    Attributes:
        request: The request, complete with headers, credentials and timeout.
        stream: Leave the body unread (the flow follows with :class:`Consume`); redirects are
            never followed by the driver either way.
    """

    __slots__ = ("request", "stream")

    def __init__(self, request: httpx.Request, stream: bool = False) -> None:
        self.request = request
        self.stream = stream


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


class Consume(_Value):
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

    __slots__ = ("key", "limit", "offset", "progress", "response", "sink", "size")

    def __init__(
        self,
        response: httpx.Response,
        *,
        sink: Sink | None = None,
        offset: int = 0,
        size: int | None = None,
        limit: int = 0,
        key: int = 0,
        progress: ProgressLike | None = None,
    ) -> None:
        self.response = response
        self.sink = sink
        self.offset = offset
        self.size = size
        self.limit = limit
        self.key = key
        self.progress = progress


class Consumed(_Value):
    """How a :class:`Consume` step ended.

    Attributes:
        written: Body bytes written to the sink (after content decoding).
        received: Bytes received on the wire (before content decoding); ``None`` when the
            transport handed over a body already in memory (nothing can be lost then).
        snippet: The start of the body, when asked for with ``limit``.
        error: The network failure that cut the body short, if one did.
    """

    __slots__ = ("error", "received", "snippet", "written")

    def __init__(
        self,
        written: int,
        received: int | None,
        snippet: bytes = b"",
        error: httpx.HTTPError | None = None,
    ) -> None:
        self.written = written
        self.received = received
        self.snippet = snippet
        self.error = error


class Sleep(_Value):
    """Sleep this many seconds, then resume with ``None``.

    With ``wake``, the sleep ends early when that job is woken (a webhook arrived), and resumes
    with the snapshot the wake carried (``None`` when it carried none: poll now). A sleep that
    starts after a terminal snapshot of its job was pushed ends at once, with that snapshot.

    Attributes:
        seconds: The delay.
        wake: A job id whose wake-up ends the sleep.
    """

    __slots__ = ("seconds", "wake")

    def __init__(self, seconds: float, wake: str | None = None) -> None:
        self.seconds = seconds
        self.wake = wake


class Notify(_Value):
    """Tell the caller's ``on_update`` about a status change, then resume with ``None``.

    Attributes:
        job: The job (the caller's handle, already updated).
    """

    __slots__ = ("job",)

    def __init__(self, job: Any) -> None:
        self.job = job


class Report(_Value):
    """Report download progress of one artifact (or the closing report); resume with ``None``.

    Attributes:
        key: The artifact's position; ``None`` for the closing report of the call.
        done: Its bytes on disk.
        size: Its full size, when known.
        progress: Where the call's progress is aggregated.
    """

    __slots__ = ("done", "key", "progress", "size")

    def __init__(
        self,
        key: int | None,
        done: int = 0,
        size: int | None = None,
        progress: ProgressLike | None = None,
    ) -> None:
        self.key = key
        self.done = done
        self.size = size
        self.progress = progress


class Refresh(_Value):
    """Re-read the job for fresh artifact URLs; resume with the new ``JobData``.

    One re-read serves every artifact of a download call.
    """

    __slots__ = ()


class Record(_Value):
    """Hand a durable fact to the recorder; resume with its answer (``None`` without one).

    Attributes:
        event: The fact.
    """

    __slots__ = ("event",)

    def __init__(self, event: Event) -> None:
        self.event = event


class Blocking(_Value):
    """Run a blocking file operation (on a worker thread under async); resume with its result.

    Attributes:
        call: The operation.
    """

    __slots__ = ("call",)

    def __init__(self, call: Callable[[], Any]) -> None:
        self.call = call


class Pushed(_Value):
    """A wake-up of a watched job, as a :class:`Gather` outcome.

    Attributes:
        job: The snapshot the wake carried (a verified webhook's), or ``None``: poll now.
    """

    __slots__ = ("job",)

    def __init__(self, job: JobData | None) -> None:
        self.job = job


class WakeWatch:
    """The jobs a many-job wait listens for, and how far it has read the wake-ups.

    Owned by the wait and updated in place: ``ids`` maps each pending job's id to its key,
    ``cursor`` is the sequence number of the last wake-up taken (drivers advance it).
    """

    __slots__ = ("cursor", "ids")

    def __init__(self, ids: dict[str, int] | None = None) -> None:
        self.ids: dict[str, int] = ids if ids is not None else {}
        self.cursor = 0


class Gather(_Value):
    """Start sub-flows concurrently, then wait for outcomes.

    The sub-flows run beside those started by earlier ``Gather`` steps of the same run; the
    driver resumes the flow with the ``(key, outcome)`` pairs of every sub-flow that finished
    (at least one), or with an empty list once ``timeout`` seconds passed. An outcome is the
    sub-flow's result or the exception it raised. Sub-flows still running when the flow ends
    are cancelled.

    With ``wake``, the wait also ends when a watched job is woken; each wake-up not taken yet
    (including those that came while no ``Gather`` was waiting) is one ``(key, Pushed(...))``
    pair among the outcomes.

    Attributes:
        start: ``(key, flow)`` pairs to start now.
        timeout: The longest wait for an outcome, in seconds (``None``: no limit).
        wake: The watched jobs, or ``None``.
    """

    __slots__ = ("start", "timeout", "wake")

    def __init__(
        self,
        start: Sequence[tuple[int, Generator[Step, Any, Any]]] = (),
        timeout: float | None = None,
        wake: WakeWatch | None = None,
    ) -> None:
        self.start = start
        self.timeout = timeout
        self.wake = wake


Step = Send | Consume | Sleep | Notify | Report | Refresh | Record | Blocking | Gather
Flow = Generator[Step, Any, T]
