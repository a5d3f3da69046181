"""The normalized job status, kept apart from the pydantic models.

Importing it costs nothing: the client stack uses it before any snapshot exists, and the
pydantic models (:mod:`mediajobs._models`) load only when a dialect builds the first one.
"""

from __future__ import annotations

import sys
from enum import Enum

__all__ = ["TERMINAL", "JobStatus", "is_newer"]

if sys.version_info >= (3, 11):  # pragma: no cover - depends on the interpreter
    from enum import StrEnum
else:  # pragma: no cover - depends on the interpreter

    class StrEnum(str, Enum):
        """``enum.StrEnum`` for Python 3.10."""

        def __str__(self) -> str:
            return str(self.value)


class JobStatus(StrEnum):
    """A job's normalized status, the same for every provider."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        """Whether the job can no longer change."""
        return self in TERMINAL


TERMINAL = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED}
)
"""The statuses a job cannot leave."""


_RANK: dict[JobStatus, int] = {
    JobStatus.QUEUED: 0,
    JobStatus.RUNNING: 1,
    JobStatus.SUCCEEDED: 2,
    JobStatus.FAILED: 2,
    JobStatus.CANCELLED: 2,
    JobStatus.EXPIRED: 2,
}


def is_newer(old: JobStatus, new: JobStatus) -> bool:
    """Tell whether ``new`` moves a job forward from ``old`` (events can arrive out of order).

    Queued < running < terminal. A terminal status is never replaced: a job finishes once, so
    a late non-terminal event, or a second, different terminal one, changes nothing.

    Args:
        old: The status already known.
        new: The status an event or poll reports.

    Returns:
        ``True`` when ``new`` should replace ``old``.
    """
    return _RANK[new] > _RANK[old]
