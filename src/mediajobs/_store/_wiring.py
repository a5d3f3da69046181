"""How a client uses its job store: the recorder of the flows' facts, and what handles show.

:class:`StoreRecorder` is the client's recorder (``_drivers.Recorder``) when it has a store.
It turns each :class:`~mediajobs._steps.Record` event into a store call and answers what the
flows ask: whether a submit may be sent (:class:`~mediajobs._steps.Claim`) and which state a
failed submit was kept in. Its calls block on the database. One writer thread per store writes
what is queued, a transaction per group: async clients queue their facts and are woken from
that thread once per group (:meth:`StoreRecorder.acall`), with no worker thread per fact.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError, StoreError
from .._models import JobData, JobStatus
from .._steps import (
    Claim,
    Event,
    FileWritten,
    StatusSeen,
    SubmitAccepted,
    SubmitFailed,
    SubmitIntent,
)
from ._jobstore import JobStore
from ._records import SUBMIT_FAILED, SUBMIT_UNKNOWN, StoredJob, submit_error_state

if TYPE_CHECKING:
    import anyio

__all__ = [
    "JobInfo",
    "StoreRecorder",
    "generated_key",
    "open_store",
    "recorder_for",
    "statuses_of",
]

_ASK_AGAIN = 0.2
"""Seconds between two looks at a key another sender holds."""
_OBSERVATIONS = (StatusSeen, FileWritten)
"""Events committed without waiting for the disk flush (see ``JobStore.record_status``)."""
_FOLLOW = 0.05
"""Seconds a recorder call waiting for another thread's group commit checks it is still led."""
_IDLE = 2.0
"""Seconds the writer thread waits for more observations before it ends (until the next)."""
_LINGER = 0.2
"""Seconds the writer thread lets observations gather before it writes them, unless a fact
someone waits for (a submit's, a flush) arrives: fewer, larger transactions."""
_GATHER = 0.020
"""Seconds the writer thread lets facts someone waits for gather, when the last group held
several (concurrent submits): a commit then serves more of them (a one-at-a-time submit is
written at once)."""
_HASH_CHUNK = 1 << 20
_RECORDERS: weakref.WeakKeyDictionary[JobStore, StoreRecorder] = weakref.WeakKeyDictionary()
_RECORDERS_LOCK = threading.Lock()


def generated_key() -> str:
    """Return a fresh key for a submit recorded without one.

    Returns:
        ``"auto-"`` followed by 32 hex digits.
    """
    return "auto-" + uuid.uuid4().hex


def open_store(store: Any) -> tuple[JobStore, bool]:
    """Resolve a client's ``store=`` argument.

    Args:
        store: A path, a ``postgresql://`` URL, or a :class:`JobStore`.

    Returns:
        The store and whether the client opened it (and so closes it).

    Raises:
        ConfigurationError: If the argument is none of those.
    """
    if isinstance(store, JobStore):
        return store, False
    if isinstance(store, (str, os.PathLike)):
        return JobStore(store), True
    raise ConfigurationError(
        f"store must be a path, a postgresql:// URL or a JobStore, not {type(store).__name__}"
    )


def statuses_of(status: Any) -> list[str] | None:
    """Normalize the ``status`` argument of ``client.jobs()``: one status or several.

    Args:
        status: ``None``, a status (``JobStatus`` or string) or a sequence of them.

    Returns:
        ``None`` for every accepted job, else the statuses as strings.

    Raises:
        ConfigurationError: If a sequence mixes ``"submit_unknown"`` with job statuses or
            names an unknown status.
    """
    if status is None:
        return None
    if isinstance(status, str):
        wanted = [status]
    elif isinstance(status, Iterable):
        wanted = [str(s) for s in status]
    else:
        raise ConfigurationError(f"status must be a string or a list, not {status!r}")
    for name in wanted:
        if name != SUBMIT_UNKNOWN and name not in JobStatus._value2member_map_:
            raise ConfigurationError(f"unknown job status {name!r}")
    if SUBMIT_UNKNOWN in wanted and len(set(wanted)) > 1:
        raise ConfigurationError("status='submit_unknown' cannot be combined with job statuses")
    return list(dict.fromkeys(wanted))


class JobInfo:
    """What a job handle shows from the store: its key, labels and recorded files.

    Args:
        key: The record's key.
        labels: Its labels.
        files: The recorded files' paths, by artifact index.
    """

    __slots__ = ("files", "key", "labels")

    def __init__(self, key: str | None, labels: Mapping[str, Any], files: Sequence[Path]) -> None:
        self.key = key
        self.labels = dict(labels)
        self.files = list(files)

    @classmethod
    def of(cls, record: StoredJob) -> JobInfo:
        """Read a record's key, labels and files.

        Args:
            record: The record.

        Returns:
            The info.
        """
        files = [Path(f.path) for f in sorted(record.files, key=lambda f: f.index)]
        return cls(record.key, record.labels, files)


class _Pending:
    """One event waiting for its group's commit (``None``: a barrier that writes nothing).

    A thread waiting for the item has its ``done`` event set once it is written; an item
    queued from async code carries its event loop's mailbox and an event of that loop, which
    the mailbox sets. Observations nobody waits for have neither: a flush waits for a barrier
    queued after them (groups are written in queue order).
    """

    __slots__ = ("done", "error", "event", "finished", "mailbox", "ready", "result")

    def __init__(
        self,
        event: Event | None,
        *,
        waited: bool = False,
        mailbox: _Mailbox | None = None,
        ready: anyio.Event | None = None,
    ) -> None:
        self.event = event
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = False
        self.done = threading.Event() if waited else None
        self.mailbox = mailbox
        self.ready = ready

    def finish(self) -> None:
        """Mark the item written (its result or error is set)."""
        self.finished = True
        if self.done is not None:
            self.done.set()


class _Mailbox:
    """Hands written items back to one event loop: one cross-thread call per batch.

    The writer thread delivers each group's items; the first delivery since the loop last
    drained schedules a drain in the loop (``call_soon_threadsafe`` for asyncio,
    ``run_sync_soon`` for trio), which sets every delivered item's event there.

    Args:
        loop: The loop's native token (an asyncio loop or a trio token).
        soon: The name of its thread-safe "run this callback soon" method.
    """

    __slots__ = ("_lock", "_loop", "_ready", "_soon")

    def __init__(self, loop: object, soon: str) -> None:
        self._loop = weakref.ref(loop)  # the recorder's map of mailboxes must not keep it
        self._soon = soon
        self._lock = threading.Lock()
        self._ready: list[_Pending] = []

    def deliver(self, items: list[_Pending]) -> None:
        """Hand written items to the loop (from any thread).

        Args:
            items: Items queued from this loop, now written.
        """
        with self._lock:
            idle = not self._ready
            self._ready.extend(items)
        loop = self._loop()
        if idle and loop is not None:
            with contextlib.suppress(Exception):  # the loop has ended: no one waits any more
                getattr(loop, self._soon)(self._drain)

    def _drain(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
        for item in ready:
            if item.ready is not None:
                item.ready.set()


def _after_fork_in_child() -> None:
    global _RECORDERS_LOCK  # noqa: PLW0603 - replaced: another thread may have held it
    _RECORDERS_LOCK = threading.Lock()
    for recorder in list(_RECORDERS.values()):
        recorder._start()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _raise_first(items: list[_Pending]) -> None:
    """Raise the first failure among written items, if any."""
    for item in items:
        if item.error is not None:
            raise item.error


def recorder_for(store: JobStore) -> StoreRecorder:
    """Return the one recorder of a store, shared by every client using it in this process.

    Sharing it lets one commit serve the facts of all those clients (group commit).

    Args:
        store: The store.

    Returns:
        Its recorder.
    """
    with _RECORDERS_LOCK:
        recorder = _RECORDERS.get(store)
        if recorder is None:
            recorder = _RECORDERS[store] = StoreRecorder(store)
        return recorder


class StoreRecorder:
    """Records a client's facts in a job store and answers the submit flow's questions.

    Args:
        store: The store.
    """

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._start()

    def _start(self) -> None:
        """Set up the recorder's state: on creation, and in a child process after ``fork``.

        A forked child has none of its parent's threads: a writer thread, a lock held by
        another thread, or facts queued for the parent's writer would otherwise leave the
        child's first write waiting forever. The child starts empty; what the parent had
        queued is the parent's to write.
        """
        self._lock = threading.Lock()
        self._claimed: dict[str, JobInfo] = {}
        self._sending: dict[tuple[str, str], dict[str, Any]] = {}
        """The submits this recorder let go out, not ended yet: their records' labels."""
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._posted: list[_Pending] = []
        self._writing = False
        self._wake = threading.Condition(self._queue_lock)
        self._woken = False
        self._urgent = False
        self._served = 0
        """How many waited-for facts the last group written held."""
        self._writer: threading.Thread | None = None
        self._mailboxes: weakref.WeakKeyDictionary[object, _Mailbox] = weakref.WeakKeyDictionary()

    def __call__(self, event: Event) -> Any:
        """Record one event, in one transaction with those other threads record meanwhile.

        Group commit: the first caller writes every event queued while it writes, in one
        transaction per round; the others wait for their event's outcome. One commit then
        serves many concurrent submits or polls. Should a grouped transaction fail, each of
        its events is written again on its own, so each caller gets its own outcome.

        Observations (status changes, files) are queued and the call returns at once; a
        writer thread records them with the next group, and :meth:`flush` (called when each
        client call ends) waits for them.

        Args:
            event: The fact.

        Returns:
            A :class:`Claim` for a :class:`SubmitIntent` (``None``: send), the state recorded
            for a :class:`SubmitFailed`, else ``None``.

        Raises:
            StoreError: If the database fails.
        """
        if isinstance(event, _OBSERVATIONS):
            self._post(event)
            return None
        item = _Pending(event, waited=True)
        with self._queue_lock:
            self._queue.append(item)
            self._hurry()
        self._await(item)
        if item.error is not None:
            raise item.error
        return item.result

    def _hurry(self) -> None:
        """End the writer thread's lingering: someone waits for what is queued (lock held)."""
        if not self._urgent:
            self._urgent = True
            self._wake.notify()

    def _await(self, item: _Pending) -> None:
        """Wait for an item's group to be written, leading the writing when no one does."""
        done = item.done
        if done is None:  # pragma: no cover - a programming error
            raise TypeError("only an item made with waited=True can be awaited")
        while not item.finished:
            with self._queue_lock:
                lead = not self._writing and not item.finished
                if lead:
                    self._writing = True
            if lead:
                self._lead()
            else:
                done.wait(_FOLLOW)

    def _post(self, event: Event) -> None:
        """Queue an observation; the writer thread records it with the next group."""
        item = _Pending(event)
        self._enqueue(item, posted=True)

    def _enqueue(self, item: _Pending, *, posted: bool = False) -> None:
        """Queue an item for the writer thread, waking or starting it when no one writes.

        The writer thread persists between items (it ends after ``_IDLE`` seconds without
        any), so queueing costs no thread start. Observations (``posted``) may wait up to
        ``_LINGER`` seconds for company; anything else is written at once.

        Args:
            item: The item.
            posted: Whether it is an observation (:meth:`flush` waits for it).
        """
        with self._queue_lock:
            self._queue.append(item)
            if posted:
                self._posted.append(item)
            else:
                self._hurry()
            if self._writing:
                return  # the current writer drains the queue before it stops
            self._writing = True
            if self._writer is not None:
                self._woken = True
                self._wake.notify()
                return
            self._writer = threading.Thread(
                target=self._write_posted, name="mediajobs-store", daemon=True
            )
            writer = self._writer
        writer.start()

    def _write_posted(self) -> None:
        """The writer thread: lead each round it is woken for, end when idle."""
        while True:
            try:
                self._lead(linger=True)
            except BaseException:  # ended abnormally: the next post starts another writer
                with self._queue_lock:
                    self._writer = None
                    self._woken = False
                raise
            with self._queue_lock:
                if not self._woken:
                    self._wake.wait(_IDLE)
                if not self._woken:
                    self._writer = None
                    return
                self._woken = False

    def _linger(self) -> None:
        """Let what is queued gather before the writer thread writes it.

        Observations wait up to ``_LINGER`` seconds; facts someone waits for, ``_GATHER``
        seconds when the last group served several waiters, else not at all. Called with the
        queue's lock held.
        """
        start = time.monotonic()
        while True:
            if self._urgent:
                if self._served < 2:
                    break
                deadline = start + _GATHER
            else:
                deadline = start + _LINGER
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._wake.wait(left)
        self._urgent = False

    def pending(self) -> bool:
        """Whether observations were posted since the last :meth:`flush`.

        Returns:
            ``True`` when :meth:`flush` has something to wait for.
        """
        with self._queue_lock:
            return bool(self._posted)

    def flush(self) -> None:
        """Wait until every observation posted so far is written.

        Raises:
            StoreError: The first failure among them.
        """
        posted = self._take_posted()
        self._barrier(posted)
        _raise_first(posted)

    def _take_posted(self) -> list[_Pending]:
        """Take the observations posted since the last flush (their outcomes are its to tell)."""
        with self._queue_lock:
            posted, self._posted = self._posted, []
        return posted

    def settle(self) -> None:
        """Wait until the observations posted so far are written, keeping their outcomes.

        Reads call it first, so that they see what this process observed (their failures
        are still raised by the next :meth:`flush`).
        """
        with self._queue_lock:
            posted = list(self._posted)
        self._barrier(posted)

    def _barrier(self, posted: list[_Pending]) -> None:
        """Wait until the queue up to now is written, when ``posted`` holds unwritten items."""
        if all(item.finished for item in posted):
            return
        barrier = _Pending(None, waited=True)
        with self._queue_lock:
            self._queue.append(barrier)
            self._hurry()
        self._await(barrier)

    def _lead(self, *, linger: bool = False) -> None:
        """Write what is queued, a group per transaction, until the queue is empty.

        The caller has set ``_writing``; it is cleared when the queue is found empty (under
        the lock, so no item is left without a writer) or when writing fails.

        Args:
            linger: Let each group gather first (the writer thread; see :meth:`_linger`).
        """
        try:
            while True:
                with self._queue_lock:
                    if linger and self._queue:
                        self._linger()
                    group, self._queue = self._queue, []
                    if not group:
                        self._writing = False
                        return
                self._write_group(group)
        except BaseException:
            with self._queue_lock:
                self._writing = False
            raise

    def _write_group(self, group: list[_Pending]) -> None:
        self._served = sum(
            1
            for item in group
            if item.event is not None and not isinstance(item.event, _OBSERVATIONS)
        )
        try:
            if len(group) == 1 or not self._write_together(group):
                for item in group:
                    try:
                        item.result = self._apply(item.event, careful=len(group) > 1)
                    except Exception as exc:
                        item.error = exc
                    item.finish()
        finally:  # interrupted (Ctrl-C on this thread): the others must not wait forever
            waiting: dict[_Mailbox, list[_Pending]] = {}
            for item in group:
                if not item.finished:
                    item.error = StoreError("the write was interrupted; it may be lost")
                    item.finish()
                if item.mailbox is not None:
                    waiting.setdefault(item.mailbox, []).append(item)
            for mailbox, items in waiting.items():
                mailbox.deliver(items)

    def _write_together(self, group: list[_Pending]) -> bool:
        durable = not all(
            item.event is None or isinstance(item.event, _OBSERVATIONS) for item in group
        )
        try:
            with self.store.batch(durable=durable):
                results = [
                    None if isinstance(item.event, StatusSeen) else self._apply(item.event)
                    for item in group
                ]
                statuses = [item.event.job for item in group if isinstance(item.event, StatusSeen)]
                if statuses:  # after the group's other facts (its accepted submits first)
                    self.store._record_statuses(statuses)
        except Exception:
            return False
        for item, result in zip(group, results, strict=True):
            item.result = result
            item.finish()
        return True

    def _apply(self, event: Event | None, *, careful: bool = False) -> Any:
        """Write one event; ``careful``: the slower calls whose errors name every fact."""
        if event is None:
            return None
        if isinstance(event, StatusSeen):
            job = event.job
            self.store.record_status(job.provider, job.id, job)
        elif isinstance(event, FileWritten):
            job = event.job
            self.store.record_file(
                job.provider, job.id, event.index, event.path, event.size, event.sha256
            )
        elif isinstance(event, SubmitIntent):
            return self._claim(event)
        elif isinstance(event, SubmitAccepted):
            if event.key is not None:
                self._accepted(event.job, event.key, careful=careful)
        elif isinstance(event, SubmitFailed):
            return self._failed(event)
        return None

    def _accepted(self, job: JobData, key: str, *, careful: bool) -> None:
        with self._lock:
            labels = self._sending.get((job.provider, key))
        if careful or labels is None:
            info = JobInfo.of(self.store.mark_accepted(job.provider, key, job))
        else:  # the record this recorder claimed: its labels are known, it has no files
            self.store._accept(job.provider, key, job)
            info = JobInfo(key, labels, ())
        self._sent(job.provider, key)
        self._remember(job.id, info)

    def _sent(self, provider: str, key: str) -> None:
        with self._lock:
            self._sending.pop((provider, key), None)

    def sending(self, provider: str, key: str | None) -> bool:
        """Whether this recorder let a submit of ``key`` go out that has not ended yet.

        Args:
            provider: The provider's name.
            key: The key.

        Returns:
            ``True`` between the claim and the recorded outcome.
        """
        with self._lock:
            return key is not None and (provider, key) in self._sending

    def interrupted(self, provider: str, key: str | None) -> None:
        """Keep a submit this recorder let go out, and that was interrupted, as unknown.

        The submit's call ended without an outcome (Ctrl-C, a cancelled task, a store
        failure after the answer): the request may have reached the provider.

        Args:
            provider: The provider's name.
            key: The key.

        Raises:
            StoreError: If the database fails.
        """
        if key is None or not self.sending(provider, key):
            return
        self._sent(provider, key)
        self.store.mark_unknown(provider, key, "interrupted before the answer was recorded")

    async def acall(self, event: Event) -> Any:
        """Record one event from async code, without blocking the event loop.

        The event is queued for the writer thread, which writes it with the next group and
        wakes this task once the group is committed. The wait is shielded from cancellation,
        as a write that has started cannot be taken back; a cancellation that came meanwhile
        takes effect as soon as it is written (before a submit's request would leave).

        Args:
            event: The fact.

        Returns:
            What :meth:`__call__` returns.

        Raises:
            StoreError: If the database fails.
        """
        if isinstance(event, _OBSERVATIONS):
            self._post(event)  # never waits: the client flushes when its call ends
            return None
        item = await self._written(event)
        if item.error is not None:
            raise item.error
        return item.result

    async def aflush(self) -> None:
        """:meth:`flush` from async code, without blocking the event loop.

        Raises:
            StoreError: The first failure among the observations.
        """
        posted = self._take_posted()
        if not all(item.finished for item in posted):
            await self._written(None)  # a barrier: written after every item queued before it
        _raise_first(posted)

    async def _written(self, event: Event | None) -> _Pending:
        """Queue an item for the writer thread and wait (shielded) until it is written."""
        import anyio  # noqa: PLC0415 - only for async clients

        mailbox = self._mailbox()
        if mailbox is None:  # an event loop without a thread-safe call: a worker thread
            item = _Pending(event, waited=True)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._enqueue_and_wait, item)
            await anyio.lowlevel.checkpoint_if_cancelled()
            return item
        ready = anyio.Event()
        item = _Pending(event, mailbox=mailbox, ready=ready)
        self._enqueue(item)
        with anyio.CancelScope(shield=True):
            while not item.finished:  # also checked now and then: a wake-up is never waited out
                with anyio.move_on_after(_FOLLOW * 20):
                    await ready.wait()
        await anyio.lowlevel.checkpoint_if_cancelled()  # cancelled meanwhile: stop here
        return item

    def _enqueue_and_wait(self, item: _Pending) -> None:
        self._enqueue(item)
        if item.done is not None:
            item.done.wait()

    def _mailbox(self) -> _Mailbox | None:
        """Return the current event loop's mailbox (``None``: the loop has no thread-safe call)."""
        from anyio import lowlevel  # noqa: PLC0415 - only for async clients

        native = lowlevel.current_token().native_token
        with self._lock:
            mailbox = self._mailboxes.get(native)
            if mailbox is None:
                soon = next(
                    (n for n in ("call_soon_threadsafe", "run_sync_soon") if hasattr(native, n)),
                    None,
                )
                if soon is None:
                    return None
                mailbox = self._mailboxes[native] = _Mailbox(native, soon)
        return mailbox

    def _remember(self, job_id: str, info: JobInfo) -> None:
        with self._lock:
            self._claimed[job_id] = info

    def take(self, job_id: str) -> JobInfo | None:
        """Return (once) the key, labels and files recorded for a job this recorder submitted.

        Args:
            job_id: The job's id.

        Returns:
            The info, or ``None``.
        """
        with self._lock:
            return self._claimed.pop(job_id, None)

    def _claim(self, intent: SubmitIntent) -> Claim | None:
        if intent.key is None:
            return None
        record, created, labels, _ = self.store._begin(  # a new record is not read back
            intent.provider,
            intent.key,
            idempotency_key=intent.idempotency_key,
            kind=intent.kind,
            model=intent.model,
            prompt=intent.prompt,
            params=intent.params,
            labels=intent.labels,
        )
        if record is not None and record.job_id is not None and record.job is not None:
            self._remember(record.job_id, JobInfo.of(record))
            return Claim(job=JobData.model_validate(record.job))
        if created or self.store.claim_resend(
            intent.provider, intent.key, stale_after=intent.patience
        ):
            with self._lock:
                self._sending[intent.provider, intent.key] = labels
            return None
        return Claim(wait=_ASK_AGAIN)

    def _failed(self, event: SubmitFailed) -> str | None:
        if event.key is None:
            return None
        self._sent(event.provider, event.key)
        state = submit_error_state(event.error)
        reason = str(event.error)
        if state == SUBMIT_FAILED:
            self.store.mark_rejected(event.provider, event.key, reason)
        else:
            self.store.mark_unknown(event.provider, event.key, reason)
        return state

    def info(self, provider: str, job_ids: Iterable[str]) -> dict[str, JobInfo]:
        """Look up what the store knows of some jobs.

        Args:
            provider: The provider's name.
            job_ids: The jobs' ids.

        Returns:
            The info of each job the store holds, by id.

        Raises:
            StoreError: If the database fails.
        """
        self.settle()
        found: dict[str, JobInfo] = {}
        for job_id in dict.fromkeys(job_ids):
            record = self.store.get(provider, job_id=job_id)
            if record is not None:
                found[job_id] = JobInfo.of(record)
        return found

    def verified_files(self, job: JobData, directory: Path) -> dict[int, Path]:
        """Return the recorded files of a job that are still intact in ``directory``.

        A file counts when it is where it was recorded, inside ``directory``, with the
        recorded size and SHA-256 (read again here).

        Args:
            job: The job's snapshot.
            directory: The download's destination.

        Returns:
            The intact files, by artifact index.

        Raises:
            StoreError: If the database fails.
        """
        self.settle()
        record = self.store.get(job.provider, job_id=job.id)
        if record is None:
            return {}
        try:
            where = directory.resolve()
        except OSError:
            return {}
        wanted = {artifact.index for artifact in job.artifacts}
        intact: dict[int, Path] = {}
        for stored in record.files:
            path = Path(stored.path)
            if stored.index in wanted and _intact(path, where, stored.size, stored.sha256):
                intact[stored.index] = path
        return intact

    def jobs(
        self,
        provider: str,
        statuses: list[str] | None,
        labels: Mapping[str, Any] | None,
        downloaded: bool | None,
    ) -> list[StoredJob]:
        """List a provider's records for ``client.jobs()``, newest first.

        Args:
            provider: The provider's name.
            statuses: The statuses wanted (``None``: every accepted job).
            labels: Labels every record must carry.
            downloaded: See :meth:`JobStore.jobs`.

        Returns:
            The records.

        Raises:
            StoreError: If the database fails.
        """
        self.settle()
        if statuses is None or len(statuses) == 1:
            status = None if statuses is None else statuses[0]
            return self.store.jobs(provider, status=status, labels=labels, downloaded=downloaded)
        found = [
            record
            for status in statuses
            for record in self.store.jobs(
                provider, status=status, labels=labels, downloaded=downloaded
            )
        ]
        found.sort(key=lambda r: r.created_at, reverse=True)
        return found


def _intact(path: Path, directory: Path, size: int, sha256: str) -> bool:
    try:
        if path.resolve().parent != directory or path.stat().st_size != size:
            return False
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
    except OSError:
        return False
    return digest.hexdigest() == sha256
