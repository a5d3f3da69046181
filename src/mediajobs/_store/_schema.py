"""The store's tables, versioned, and the migrations that bring any older store up to date.

The version lives in ``mediajobs_meta`` (``schema_version``). Opening a store runs every
missing step in one write transaction under a lock every other opening process waits on
(SQLite's write lock, a PostgreSQL advisory lock), so two processes opening an old or new
store at once migrate it exactly once. DDL is transactional on both databases: a process
killed mid-migration leaves the store at its previous version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .._exceptions import StoreError
from ._backends import Backend, Tx

__all__ = ["SCHEMA_VERSION", "migrate"]

SCHEMA_VERSION = 2
"""The version this code reads and writes."""

_ID = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgres": "BIGSERIAL PRIMARY KEY"}

_V1 = [
    """CREATE TABLE mediajobs_jobs (
        id {id},
        provider TEXT NOT NULL,
        key TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        state TEXT NOT NULL,
        job_id TEXT,
        status TEXT,
        kind TEXT,
        model TEXT,
        prompt TEXT,
        params TEXT NOT NULL,
        labels TEXT NOT NULL,
        job TEXT,
        error TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        UNIQUE (provider, key),
        UNIQUE (provider, job_id)
    )""",
    """CREATE TABLE mediajobs_files (
        job BIGINT NOT NULL REFERENCES mediajobs_jobs (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        path TEXT NOT NULL,
        size BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        recorded_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (job, idx)
    )""",
]
"""Version 1: submits, jobs and files; labels only as JSON text."""

_V2 = [
    "ALTER TABLE mediajobs_jobs ADD COLUMN artifact_count INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE mediajobs_jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE mediajobs_jobs ADD COLUMN owner TEXT",
    """CREATE TABLE mediajobs_labels (
        job BIGINT NOT NULL REFERENCES mediajobs_jobs (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (job, name)
    )""",
    "CREATE INDEX mediajobs_labels_by_value ON mediajobs_labels (name, value)",
    """CREATE TABLE mediajobs_events (
        provider TEXT NOT NULL,
        event_id TEXT NOT NULL,
        seen_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (provider, event_id)
    )""",
    "CREATE INDEX mediajobs_events_by_age ON mediajobs_events (seen_at)",
    "CREATE INDEX mediajobs_jobs_newest ON mediajobs_jobs (provider, created_at, id)",
    "CREATE INDEX mediajobs_jobs_by_status ON mediajobs_jobs (provider, status)",
]
"""Version 2: indexed labels (the ``labels=`` filter), artifact counts (``downloaded=``),
submit attempts and senders, webhook event ids, listing indexes."""


def _backfill_v2(tx: Tx) -> None:
    """Fill version 2's label rows and artifact counts from version 1's JSON columns."""
    for row_id, labels, job in tx.all("SELECT id, labels, job FROM mediajobs_jobs"):
        for name, value in json.loads(labels or "{}").items():
            tx.execute(
                "INSERT INTO mediajobs_labels (job, name, value) VALUES (?, ?, ?)",
                (row_id, name, label_value(value)),
            )
        artifacts = (json.loads(job).get("artifacts") or []) if job else []
        tx.execute(
            "UPDATE mediajobs_jobs SET artifact_count = ? WHERE id = ?", (len(artifacts), row_id)
        )


_STEPS: list[tuple[list[str], Callable[[Tx], None] | None]] = [
    (_V1, None),
    (_V2, _backfill_v2),
]


def label_value(value: Any) -> str:
    """Encode a label value for the ``mediajobs_labels`` table (its canonical JSON).

    Args:
        value: A JSON scalar.

    Returns:
        Its JSON text, so ``3`` and ``"3"`` stay distinct.
    """
    return json.dumps(value, ensure_ascii=False)


def migrate(backend: Backend) -> int:
    """Bring the store's schema to :data:`SCHEMA_VERSION`, creating it when empty.

    Args:
        backend: The store's database.

    Returns:
        The version the store had before (0 for a new store).

    Raises:
        StoreError: If the store was written by a newer mediajobs (a later schema version), or
            the database fails.
    """
    with backend.transaction(write=True) as tx:
        backend.migration_lock(tx)
        tx.execute(
            "CREATE TABLE IF NOT EXISTS mediajobs_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        row = tx.one("SELECT value FROM mediajobs_meta WHERE name = 'schema_version'")
        before = int(row[0]) if row else 0
        if before > SCHEMA_VERSION:
            raise StoreError(
                f"the job store {backend.description} has schema version {before}; this "
                f"mediajobs reads up to {SCHEMA_VERSION}: upgrade mediajobs"
            )
        for statements, backfill in _STEPS[before:]:
            for statement in statements:
                tx.execute(statement.format(id=_ID[backend.kind]))
            if backfill is not None:
                backfill(tx)
        if before < SCHEMA_VERSION:
            tx.execute(
                "INSERT INTO mediajobs_meta (name, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )
    return before
