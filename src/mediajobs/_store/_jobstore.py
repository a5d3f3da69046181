"""`JobStore`: the durable record of submits, jobs, status changes and downloaded files."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, cast

from .._exceptions import ConfigurationError, StoreError
from .._models import JobData, JobStatus
from ._backends import Backend, Tx, backend_for
from ._owner import current_owner, owner_is_dead
from ._records import (
    ACCEPTED,
    SUBMIT_FAILED,
    SUBMIT_UNKNOWN,
    SUBMITTING,
    StoredFile,
    StoredJob,
    SubmitState,
    canonical_json,
    check_labels,
    idempotency_key_for,
    recordable_params,
)
from ._schema import label_value, migrate

__all__ = ["JobStore"]

_COLUMNS = (
    "id, provider, key, idempotency_key, state, job_id, status, kind, model, prompt, params, "
    "labels, job, error, attempts, created_at, updated_at"
)

_RANK = (
    "(CASE WHEN status IS NULL THEN -1 WHEN status = 'queued' THEN 0 "
    "WHEN status = 'running' THEN 1 ELSE 2 END)"
)
"""SQL ranking a row's status: a status change is recorded only when it moves forward."""

# The store's SQL is assembled from constants only; every value is a bound parameter.
_ADVANCE = (
    "UPDATE mediajobs_jobs SET status = ?, job = ?, artifact_count = ?, updated_at = ? "  # noqa: S608
    f"WHERE provider = ? AND {{where}} AND {_RANK} < ?"
)

_ADVANCE_MANY = (
    "UPDATE mediajobs_jobs SET status = v.new_status, job = v.new_job, "  # noqa: S608
    "artifact_count = v.new_count, updated_at = v.at FROM (SELECT "
    "json_extract(value, '$[0]') AS for_provider, json_extract(value, '$[1]') AS for_job, "
    "json_extract(value, '$[2]') AS new_status, json_extract(value, '$[3]') AS new_job, "
    "json_extract(value, '$[4]') AS new_count, json_extract(value, '$[5]') AS at, "
    "json_extract(value, '$[6]') AS new_rank FROM json_each(?)) AS v "
    f"WHERE provider = v.for_provider AND job_id = v.for_job AND {_RANK} < v.new_rank"
)
"""SQLite: many status changes in one statement (one row of the JSON array per job)."""

_ACCEPT = (
    "UPDATE mediajobs_jobs SET state = ?, job_id = ?, error = NULL, updated_at = ?, "  # noqa: S608
    f"status = CASE WHEN {_RANK} < ? THEN ? ELSE status END, "
    f"job = CASE WHEN {_RANK} < ? THEN ? ELSE job END, "
    f"artifact_count = CASE WHEN {_RANK} < ? THEN ? ELSE artifact_count END "
    "WHERE provider = ? AND key = ?"
)
"""One statement recording an accepted submit: its job id, and its snapshot if it moves the
status forward (every ``CASE`` reads the row as it was before the update)."""

_SUBMIT_STATES = (SUBMITTING, SUBMIT_UNKNOWN, SUBMIT_FAILED)
_EVENT_RETENTION = 7 * 86400.0
_STALE_AFTER = 300.0
_PRUNE_EVERY = 3600.0
_CHUNK = 500


def _rank(status: JobStatus) -> int:
    if status is JobStatus.QUEUED:
        return 0
    if status is JobStatus.RUNNING:
        return 1
    return 2


_Snapshot = tuple[str, JobStatus, str, int]
"""A checked snapshot: job id, status, JSON text, artifact count."""


def _snapshot(job: JobData | Mapping[str, Any]) -> _Snapshot:
    """Check a ``job.to_dict()`` and return its id, status, JSON text and artifact count."""
    if isinstance(job, JobData):  # the clients' case: valid by construction, dumped in one go
        return job.id, job.status, job.model_dump_json(), len(job.artifacts)
    if not isinstance(job, Mapping):
        raise StoreError(f"a job snapshot is a job.to_dict() mapping, not {type(job).__name__}")
    job_id = job.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise StoreError("the job snapshot has no 'id'")
    try:
        status = JobStatus(job.get("status"))
    except ValueError:
        raise StoreError(f"the job snapshot's status {job.get('status')!r} is unknown") from None
    artifacts = job.get("artifacts") or []
    count = len(artifacts) if isinstance(artifacts, list) else 0
    try:
        text = canonical_json(dict(job))
    except ConfigurationError as exc:
        raise StoreError(f"the job snapshot is not JSON-safe: {exc.message}") from None
    return job_id, status, text, count


def _time(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)


class JobStore:
    """A durable record of jobs: embedded SQLite for one machine, PostgreSQL for many.

    ``JobStore("jobs.db")`` keeps an SQLite file (created with its directory on first use;
    WAL journal, ``synchronous=FULL``: a committed write survives a killed process and a
    power cut); ``JobStore("postgresql://user@host/db")`` uses PostgreSQL tables named
    ``mediajobs_*`` (extra ``postgres``). The schema is versioned and migrated when first used.

    Every write is one transaction. One store may be used from many threads at once (for the
    async client, through worker threads) and by many processes: SQLite on one machine (not
    on a network filesystem), PostgreSQL from anywhere. Records are keyed by provider and the
    caller's key; a job id is unique per provider. No API key or header is ever stored.

    Example::

        with mj.JobStore("jobs.db") as store:
            for stored in store.jobs("openrouter", status="succeeded", downloaded=False):
                print(stored.key, stored.job_id)
    """

    def __init__(self, target: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        """Name the store; nothing is opened until it is first used.

        Args:
            target: A filesystem path (SQLite) or a ``postgresql://`` / ``postgres://`` URL.
            timeout: Seconds to wait for a lock held by another writer (SQLite) or for a
                connection (PostgreSQL) before :class:`StoreError`.

        Raises:
            ConfigurationError: If the target is neither a path nor a PostgreSQL URL, or
                psycopg is missing for a PostgreSQL URL (install ``mediajobs[postgres]``).
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigurationError(f"timeout must be a positive number, not {timeout!r}")
        self._backend: Backend = backend_for(target, timeout=float(timeout))
        self._open_lock = threading.Lock()
        self._opened = False
        self._last_prune = 0.0
        self._local = threading.local()

    @property
    def kind(self) -> str:
        """``"sqlite"`` or ``"postgres"``."""
        return self._backend.kind

    def __repr__(self) -> str:
        return f"JobStore({self._backend.description!r})"

    def __enter__(self) -> JobStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the store's connections; any later call raises :class:`StoreError`."""
        self._backend.close()

    @contextlib.contextmanager
    def batch(self, *, durable: bool = True) -> Iterator[None]:
        """Make every call of this thread inside the block one transaction (group commit).

        The block's writes are committed together when it ends, or none of them when it
        raises. Used by the clients to record many concurrent facts with one commit.

        Args:
            durable: Whether the commit waits for the disk flush (see :meth:`record_status`).

        Yields:
            Nothing.

        Raises:
            StoreError: If the database fails (nothing of the block is then recorded).
        """
        if getattr(self._local, "tx", None) is not None:
            yield
            return
        with self._tx(write=True, durable=durable) as tx:
            self._local.tx = tx
            try:
                yield
            finally:
                self._local.tx = None

    def _tx(self, *, write: bool, durable: bool = True) -> contextlib.AbstractContextManager[Tx]:
        current = getattr(self._local, "tx", None)
        if current is not None:
            return contextlib.nullcontext(current)
        if not self._opened:
            with self._open_lock:
                if not self._opened:
                    migrate(self._backend)
                    self._opened = True
        return self._backend.transaction(write=write, durable=durable)

    # -- submits -----------------------------------------------------------------------------

    def begin_submit(
        self,
        provider: str,
        key: str,
        *,
        idempotency_key: str | None = None,
        kind: str | None = None,
        model: str | None = None,
        prompt: str | None = None,
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, Any] | None = None,
    ) -> tuple[StoredJob, bool]:
        """Record a submit's intent before its request is sent; claim the key atomically.

        When no record has ``key`` yet, one is made in state ``submitting`` and
        ``created`` is ``True``: the caller sends the request. When one exists, it is
        returned unchanged with ``created=False`` (of two processes racing on one key, exactly
        one gets ``True``), except a ``submit_failed`` record (refused by the provider): that
        one is claimed again with this call's kind, model, prompt, params and labels,
        ``attempts`` + 1, and ``created=True``.

        Args:
            provider: The provider's name.
            key: The caller's stable name for the job.
            idempotency_key: The header the request carries; default
                :func:`idempotency_key_for` ``(provider, key)``.
            kind: The job kind.
            model: The model.
            prompt: The prompt.
            params: The other params; input files among them are recorded as name and digest
                (see :func:`recordable_params`, which also knows string paths).
            labels: The caller's labels (string names, JSON scalar values).

        Returns:
            ``(record, created)``.

        Raises:
            ConfigurationError: If the key is empty, or params or labels are not JSON-safe.
            StoreError: If the database fails.
        """
        existing, created, _, fresh = self._begin(
            provider,
            key,
            idempotency_key=idempotency_key,
            kind=kind,
            model=model,
            prompt=prompt,
            params=params,
            labels=labels,
        )
        return (existing if existing is not None else fresh()), created

    def _begin(
        self,
        provider: str,
        key: str,
        *,
        idempotency_key: str | None,
        kind: str | None,
        model: str | None,
        prompt: str | None,
        params: Mapping[str, Any] | None,
        labels: Mapping[str, Any] | None,
    ) -> tuple[StoredJob | None, bool, dict[str, Any], Callable[[], StoredJob]]:
        """:meth:`begin_submit`, reading nothing back for a new record.

        Returns:
            The existing record (``None``: a new one was made), whether the key was claimed,
            the labels as recorded, and a function building a new record's
            :class:`StoredJob` (for callers that want it).
        """
        _check_key(provider, key)
        labels_dict = check_labels(labels)
        params_text = canonical_json(recordable_params(params or {}))
        labels_text = canonical_json(labels_dict)
        header = idempotency_key or idempotency_key_for(provider, key)
        now = time.time()
        spec = (kind, model, prompt, params_text, labels_text)

        def fresh() -> StoredJob:
            created = _time(now)
            return StoredJob(
                provider=provider,
                key=key,
                idempotency_key=header,
                state=SUBMITTING,
                job_id=None,
                status=None,
                kind=kind,
                model=model,
                prompt=prompt,
                params=json.loads(params_text),
                labels=json.loads(labels_text),
                job=None,
                files=(),
                error=None,
                attempts=1,
                created_at=created,
                updated_at=created,
            )

        with self._tx(write=True) as tx:
            owner = current_owner()
            new_id = tx.insert(
                "INSERT INTO mediajobs_jobs (provider, key, idempotency_key, state, kind, model, "
                "prompt, params, labels, owner, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (provider, key) DO NOTHING",
                (provider, key, header, SUBMITTING, *spec, owner, now, now),
            )
            if new_id is None:  # a record exists: only a refused one is claimed again
                row_id = self._row_id(tx, provider, key)
                reclaimed = tx.execute(
                    "UPDATE mediajobs_jobs SET state = ?, idempotency_key = ?, kind = ?, "
                    "model = ?, prompt = ?, params = ?, labels = ?, owner = ?, error = NULL, "
                    "attempts = attempts + 1, created_at = ?, updated_at = ? "
                    "WHERE id = ? AND state = ?",
                    (SUBMITTING, header, *spec, owner, now, now, row_id, SUBMIT_FAILED),
                )
                if reclaimed:
                    tx.execute("DELETE FROM mediajobs_labels WHERE job = ?", (row_id,))
                    self._label(tx, row_id, labels_dict)
                record = self._load(tx, "id = ?", (row_id,))[0]
                return record, bool(reclaimed), record.labels, fresh
            self._label(tx, new_id, labels_dict)
        return None, True, labels_dict, fresh

    @staticmethod
    def _label(tx: Tx, row_id: int, labels: Mapping[str, Any]) -> None:
        for name, value in labels.items():
            tx.execute(
                "INSERT INTO mediajobs_labels (job, name, value) VALUES (?, ?, ?)",
                (row_id, name, label_value(value)),
            )

    def claim_resend(self, provider: str, key: str, *, stale_after: float = _STALE_AFTER) -> bool:
        """Claim the right to send a submit again whose outcome is unknown.

        Claimable: a ``submit_unknown`` record; a ``submitting`` one whose sending process is
        gone (it ran on this machine and has exited, or the machine rebooted since: the
        process died between recording and hearing back); and a ``submitting`` one untouched
        for ``stale_after`` seconds (e.g. sent from another machine). The record moves to
        ``submitting`` with this process as its sender and ``attempts`` + 1; the caller then
        re-sends with the record's **same** Idempotency-Key. Of processes racing to claim one
        record, exactly one wins.

        Args:
            provider: The provider's name.
            key: The record's key.
            stale_after: Seconds after which a ``submitting`` record counts as abandoned
                whoever sent it.

        Returns:
            Whether this caller won the claim (``False``: no such record, already accepted
            or refused, or another live process is sending it).

        Raises:
            StoreError: If the database fails.
        """
        now = time.time()
        with self._tx(write=True) as tx:
            row = tx.one(
                "SELECT state, owner, updated_at FROM mediajobs_jobs "
                "WHERE provider = ? AND key = ? AND job_id IS NULL",
                (provider, key),
            )
            if row is None:
                return False
            state, owner, updated_at = row
            abandoned = updated_at < now - stale_after or owner_is_dead(owner)
            if not (state == SUBMIT_UNKNOWN or (state == SUBMITTING and abandoned)):
                return False
            # Only the version read above may be claimed (PostgreSQL: a concurrent claim that
            # committed first changed the owner and time, so this one then matches nothing).
            claimed = tx.execute(
                "UPDATE mediajobs_jobs SET state = ?, owner = ?, attempts = attempts + 1, "
                "updated_at = ? WHERE provider = ? AND key = ? AND job_id IS NULL AND "
                "state = ? AND COALESCE(owner, '') = ? AND updated_at = ?",
                (SUBMITTING, current_owner(), now, provider, key, state, owner or "", updated_at),
            )
        return bool(claimed)

    def mark_accepted(self, provider: str, key: str, job: JobData | Mapping[str, Any]) -> StoredJob:
        """Record that the provider accepted the submit: its job id and first snapshot.

        Args:
            provider: The provider's name.
            key: The record's key.
            job: The job's snapshot: ``job.to_dict()`` (or its ``JobData``).

        Returns:
            The updated record.

        Raises:
            StoreError: If there is no record with this key, the job id is already recorded
                under another key, the snapshot is malformed, or the database fails.
        """
        snapshot = _snapshot(job)
        job_id = snapshot[0]
        with self._tx(write=True) as tx:
            other = tx.one(
                "SELECT key FROM mediajobs_jobs WHERE provider = ? AND job_id = ? AND key <> ?",
                (provider, job_id, key),
            )
            if other is not None:
                raise StoreError(
                    f"{provider} job {job_id!r} is already recorded under key {other[0]!r}"
                )
            self._accept_in(tx, provider, key, snapshot)
            return self._load(tx, "provider = ? AND key = ?", (provider, key))[0]

    def _accept(self, provider: str, key: str, job: JobData | Mapping[str, Any]) -> None:
        """:meth:`mark_accepted` in one statement, without reading the record back.

        It takes and raises what :meth:`mark_accepted` does, except that a job id recorded
        under another key fails on the database's unique index, without naming that key.
        """
        with self._tx(write=True) as tx:
            self._accept_in(tx, provider, key, _snapshot(job))

    @staticmethod
    def _accept_in(
        tx: Tx, provider: str, key: str, snapshot: tuple[str, JobStatus, str, int]
    ) -> None:
        job_id, status, text, count = snapshot
        rank = _rank(status)
        now = time.time()
        changed = tx.execute(
            _ACCEPT,
            (ACCEPTED, job_id, now, rank, status.value, rank, text, rank, count, provider, key),
        )
        if not changed:
            raise StoreError(f"no {provider} submit is recorded under key {key!r}")

    def mark_unknown(self, provider: str, key: str, reason: str) -> bool:
        """Record that the submit may have reached the provider but its answer was lost.

        Args:
            provider: The provider's name.
            key: The record's key.
            reason: What happened (no secrets: e.g. the error's message).

        Returns:
            Whether a ``submitting`` record changed (an accepted one is never touched).

        Raises:
            StoreError: If the database fails.
        """
        return self._end_submit(provider, key, SUBMIT_UNKNOWN, reason)

    def mark_rejected(self, provider: str, key: str, reason: str) -> bool:
        """Record that the provider refused the submit: no job was made.

        The record stays, in state ``submit_failed`` with ``reason`` (listed with
        ``status="submit_failed"``); a later :meth:`begin_submit` of the key claims it again.

        Args:
            provider: The provider's name.
            key: The record's key.
            reason: The provider's answer (e.g. the error's message).

        Returns:
            Whether a record without a job changed.

        Raises:
            StoreError: If the database fails.
        """
        return self._end_submit(provider, key, SUBMIT_FAILED, reason)

    def _end_submit(self, provider: str, key: str, state: str, reason: str) -> bool:
        with self._tx(write=True) as tx:
            return bool(
                tx.execute(
                    "UPDATE mediajobs_jobs SET state = ?, error = ?, updated_at = ? "
                    "WHERE provider = ? AND key = ? AND job_id IS NULL AND state <> ?",
                    (state, str(reason), time.time(), provider, key, SUBMIT_FAILED),
                )
            )

    # -- jobs --------------------------------------------------------------------------------

    def record_status(self, provider: str, job_id: str, job: JobData | Mapping[str, Any]) -> bool:
        """Record a status the client observed, if it moves the job forward.

        ``queued`` < ``running`` < any terminal status: a snapshot with the same or an earlier
        status than the one recorded changes nothing, so a terminal status is never replaced.

        Observations (statuses, files) are committed without waiting for the disk flush that
        submits wait for: a killed process loses none of them, and what a power loss may lose
        of the last moments is observed again by the next poll or download.

        Args:
            provider: The provider's name.
            job_id: The job's id.
            job: The job's snapshot: ``job.to_dict()`` (or its ``JobData``).

        Returns:
            Whether the record changed (``False`` also when no record has this job id).

        Raises:
            StoreError: If the snapshot is malformed or the database fails.
        """
        _, status, text, count = _snapshot(job)
        with self._tx(write=True, durable=False) as tx:
            return bool(
                tx.execute(
                    _ADVANCE.format(where="job_id = ?"),
                    (status.value, text, count, time.time(), provider, job_id, _rank(status)),
                )
            )

    def _record_statuses(self, jobs: Sequence[JobData]) -> None:
        """:meth:`record_status` for many snapshots at once (one statement on SQLite).

        Of several snapshots of one job, the furthest on is kept (the first of equals), as
        recording them one after the other would.

        Args:
            jobs: The snapshots, in the order they were observed.

        Raises:
            StoreError: If the database fails (nothing is then recorded).
        """
        furthest: dict[tuple[str, str], tuple[int, JobData]] = {}
        for job in jobs:
            rank, seen = _rank(job.status), furthest.get((job.provider, job.id))
            if seen is None or rank > seen[0]:
                furthest[job.provider, job.id] = (rank, job)
        now = time.time()
        rows = []
        for rank, job in furthest.values():
            job_id, status, text, count = _snapshot(job)
            rows.append((job.provider, job_id, status.value, text, count, now, rank))
        with self._tx(write=True, durable=False) as tx:
            if len(rows) > 1 and self._backend.json_updates:
                tx.execute(_ADVANCE_MANY, (json.dumps(rows, ensure_ascii=False),))
                return
            for provider, job_id, status_value, text, count, at, rank in rows:
                tx.execute(
                    _ADVANCE.format(where="job_id = ?"),
                    (status_value, text, count, at, provider, job_id, rank),
                )

    def record_file(  # noqa: PLR0917 - the order of a file's facts
        self,
        provider: str,
        job_id: str,
        index: int,
        path: str | os.PathLike[str],
        size: int,
        sha256: str,
    ) -> bool:
        """Record a downloaded artifact file (replacing an earlier record of that index).

        Args:
            provider: The provider's name.
            job_id: The job's id.
            index: The artifact's index.
            path: Where the file is.
            size: Its size in bytes.
            sha256: The hex SHA-256 of its content.

        Returns:
            Whether a job with this id is recorded (else nothing is written).

        Raises:
            StoreError: If the database fails.
        """
        now = time.time()
        with self._tx(write=True, durable=False) as tx:
            row = tx.one(
                "SELECT id FROM mediajobs_jobs WHERE provider = ? AND job_id = ?",
                (provider, job_id),
            )
            if row is None:
                return False
            tx.execute(
                "INSERT INTO mediajobs_files (job, idx, path, size, sha256, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job, idx) DO UPDATE SET "
                "path = excluded.path, size = excluded.size, sha256 = excluded.sha256, "
                "recorded_at = excluded.recorded_at",
                (row[0], int(index), os.fspath(path), int(size), str(sha256), now),
            )
            tx.execute("UPDATE mediajobs_jobs SET updated_at = ? WHERE id = ?", (now, row[0]))
        return True

    def get(
        self, provider: str, *, key: str | None = None, job_id: str | None = None
    ) -> StoredJob | None:
        """Read one record by its key or by its job id.

        Args:
            provider: The provider's name.
            key: The record's key.
            job_id: The job's id.

        Returns:
            The record, or ``None``.

        Raises:
            ConfigurationError: Unless exactly one of ``key`` and ``job_id`` is given.
            StoreError: If the database fails.
        """
        if (key is None) == (job_id is None):
            raise ConfigurationError("get() takes exactly one of key= and job_id=")
        column, value = ("key", key) if key is not None else ("job_id", job_id)
        with self._tx(write=False) as tx:
            found = self._load(tx, f"provider = ? AND {column} = ?", (provider, value))
        return found[0] if found else None

    def jobs(
        self,
        provider: str | None,
        *,
        status: JobStatus | str | None = None,
        labels: Mapping[str, Any] | None = None,
        downloaded: bool | None = None,
        limit: int | None = None,
    ) -> list[StoredJob]:
        """List a provider's records, newest first.

        Args:
            provider: The provider's name; ``None`` lists every provider's records.
            status: A job status (``"succeeded"``, …): accepted jobs in it. ``None``: every
                accepted job (with a job id). ``"submit_unknown"``: the submits whose outcome
                is unknown (no job id), including ``submitting`` ones whose sender is gone or
                that went stale (see :meth:`claim_resend`); ``"submitting"`` and
                ``"submit_failed"``: the records in that state.
            labels: Only records whose labels include all of these.
            downloaded: ``True``: only jobs that succeeded and have a recorded file for every
                artifact (whether the file still exists is not checked); ``False``: the others.
            limit: At most this many records.

        Returns:
            The records.

        Raises:
            ConfigurationError: If the status or labels are not valid.
            StoreError: If the database fails.
        """
        where: list[str] = []
        params: list[Any] = []
        if provider is not None:
            where.append("provider = ?")
            params.append(provider)
        unknown = status == SUBMIT_UNKNOWN
        if unknown:
            # Submits whose sender died unheard (still "submitting") are unknown too.
            where.append("state IN (?, ?) AND job_id IS NULL")
            params += [SUBMIT_UNKNOWN, SUBMITTING]
        elif status in _SUBMIT_STATES:
            where.append("state = ? AND job_id IS NULL")
            params.append(str(status))
        else:
            where.append("job_id IS NOT NULL")
            if status is not None:
                try:
                    params.append(JobStatus(status).value)
                except ValueError:
                    raise ConfigurationError(f"unknown job status {status!r}") from None
                where.append("status = ?")
        for name, value in check_labels(labels).items():
            where.append(
                "EXISTS (SELECT 1 FROM mediajobs_labels l WHERE l.job = mediajobs_jobs.id "
                "AND l.name = ? AND l.value = ?)"
            )
            params += [name, label_value(value)]
        if downloaded is not None:
            complete = (
                "(status = 'succeeded' AND (SELECT COUNT(*) FROM mediajobs_files f WHERE "
                "f.job = mediajobs_jobs.id AND f.idx >= 0 AND f.idx < artifact_count) "
                "= artifact_count)"
            )
            where.append(complete if downloaded else f"NOT {complete}")
        sql = " AND ".join(where) + " ORDER BY created_at DESC, id DESC"
        if limit is not None and not unknown:
            sql += f" LIMIT {max(0, int(limit))}"
        with self._tx(write=False) as tx:
            if not unknown:
                return self._load(tx, sql, params)
            abandoned = self._abandoned(tx, provider)
            found = self._load(tx, sql, params)
        found = [r for r in found if r.state == SUBMIT_UNKNOWN or (r.provider, r.key) in abandoned]
        return found if limit is None else found[: max(0, int(limit))]

    @staticmethod
    def _abandoned(tx: Tx, provider: str | None) -> set[tuple[str, str]]:
        """The ``submitting`` records whose sender is gone or that went stale."""
        sql = "SELECT provider, key, owner, updated_at FROM mediajobs_jobs "
        sql += "WHERE state = ? AND job_id IS NULL"
        args: list[Any] = [SUBMITTING]
        if provider is not None:
            sql += " AND provider = ?"
            args.append(provider)
        stale = time.time() - _STALE_AFTER
        return {
            (row[0], row[1]) for row in tx.all(sql, args) if row[3] < stale or owner_is_dead(row[2])
        }

    def forget(self, provider: str, key: str) -> bool:
        """Delete a record with its files and labels (the files on disk stay).

        Args:
            provider: The provider's name.
            key: The record's key.

        Returns:
            Whether there was such a record.

        Raises:
            StoreError: If the database fails.
        """
        with self._tx(write=True) as tx:
            return bool(
                tx.execute(
                    "DELETE FROM mediajobs_jobs WHERE provider = ? AND key = ?", (provider, key)
                )
            )

    # -- webhooks ----------------------------------------------------------------------------

    def seen_event(
        self, provider: str, event_id: str, *, retention: float = _EVENT_RETENTION
    ) -> bool:
        """Record a webhook delivery's id; say whether it had been recorded before.

        Ids are kept ``retention`` seconds (7 days by default; older ones are pruned at most
        once an hour per store), far longer than providers retry a delivery.

        Args:
            provider: The provider's name.
            event_id: The delivery's idempotency key.
            retention: How long ids are kept, in seconds.

        Returns:
            ``True`` when this id was already recorded (a repeated delivery).

        Raises:
            StoreError: If the database fails.
        """
        now = time.time()
        with self._tx(write=True) as tx:
            if now - self._last_prune >= _PRUNE_EVERY:
                tx.execute("DELETE FROM mediajobs_events WHERE seen_at < ?", (now - retention,))
                self._last_prune = now
            inserted = tx.execute(
                "INSERT INTO mediajobs_events (provider, event_id, seen_at) VALUES (?, ?, ?) "
                "ON CONFLICT (provider, event_id) DO NOTHING",
                (provider, str(event_id), now),
            )
        return not inserted

    # -- reading -----------------------------------------------------------------------------

    @staticmethod
    def _row_id(tx: Tx, provider: str, key: str) -> int:
        row = tx.one(
            "SELECT id FROM mediajobs_jobs WHERE provider = ? AND key = ?", (provider, key)
        )
        if row is None:  # pragma: no cover - the row was just inserted or found
            raise StoreError(f"no {provider} record under key {key!r}")
        return int(row[0])

    @staticmethod
    def _load(tx: Tx, where: str, params: Sequence[Any]) -> list[StoredJob]:
        sql = f"SELECT {_COLUMNS} FROM mediajobs_jobs WHERE {where}"  # noqa: S608
        rows = tx.all(sql, params)
        files: dict[int, list[StoredFile]] = {}
        ids = [row[0] for row in rows]
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            for job, idx, path, size, sha256 in tx.all(
                "SELECT job, idx, path, size, sha256 FROM mediajobs_files "  # noqa: S608
                f"WHERE job IN ({marks}) ORDER BY idx",
                chunk,
            ):
                files.setdefault(job, []).append(StoredFile(idx, path, size, sha256))
        return [_stored(row, files.get(row[0], [])) for row in rows]


def _stored(row: tuple[Any, ...], files: list[StoredFile]) -> StoredJob:
    (
        _row_id, provider, key, header, state, job_id, status, kind, model, prompt,
        params, labels, job, error, attempts, created_at, updated_at,
    ) = row  # fmt: skip
    return StoredJob(
        provider=provider,
        key=key,
        idempotency_key=header,
        state=cast(SubmitState, state),
        job_id=job_id,
        status=JobStatus(status) if status else None,
        kind=kind,
        model=model,
        prompt=prompt,
        params=json.loads(params),
        labels=json.loads(labels),
        job=json.loads(job) if job else None,
        files=tuple(files),
        error=error,
        attempts=int(attempts),
        created_at=_time(created_at),
        updated_at=_time(updated_at),
    )


def _check_key(provider: str, key: str) -> None:
    if not isinstance(provider, str) or not provider:
        raise ConfigurationError("the provider name must be a non-empty string")
    if not isinstance(key, str) or not key:
        raise ConfigurationError(f"a job key must be a non-empty string, not {key!r}")
