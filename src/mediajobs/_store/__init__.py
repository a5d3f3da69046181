"""The durable job store: submits recorded before they are sent, jobs, statuses and files.

:class:`JobStore` keeps the records in SQLite (a file path) or PostgreSQL (a
``postgresql://`` URL). The pure helpers derive a submit's ``Idempotency-Key``
(:func:`idempotency_key_for`), a batch line's default key (:func:`spec_key`) and the
recordable form of a submit's params (:func:`recordable_params`).
"""

from __future__ import annotations

from ._jobstore import JobStore
from ._records import (
    ACCEPTED,
    SUBMIT_FAILED,
    SUBMIT_UNKNOWN,
    SUBMITTING,
    StoredFile,
    StoredJob,
    SubmitState,
    idempotency_key_for,
    recordable_params,
    spec_key,
    submit_error_state,
)
from ._schema import SCHEMA_VERSION

__all__ = [
    "ACCEPTED",
    "SCHEMA_VERSION",
    "SUBMITTING",
    "SUBMIT_FAILED",
    "SUBMIT_UNKNOWN",
    "JobStore",
    "StoredFile",
    "StoredJob",
    "SubmitState",
    "idempotency_key_for",
    "recordable_params",
    "spec_key",
    "submit_error_state",
]
