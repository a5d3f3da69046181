"""mediajobs: submit, wait for and download long media-generation jobs on AI routers.

One typed sync and async client for TheRouter, WorldRouter, OpenRouter and OneRouter::

    import mediajobs as mj

    with mj.Client("openrouter") as client:
        job = client.submit("video", model="bytedance/seedance-2.0", prompt="a kitten")
        job.wait()
        paths = job.download("out/")
"""

from __future__ import annotations

import typing as _typing

from ._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    DownloadError,
    JobCancelledError,
    JobError,
    JobExpiredError,
    JobFailedError,
    MediaJobsError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    ServerError,
    StoreError,
    UnsupportedError,
    WaitTimeoutError,
    WebhookVerificationError,
)
from ._version import __version__

# The errors are imported now (they cost nothing); the other public names load on first use
# (PEP 562), so ``import mediajobs`` stays cheap until a client, a model or a policy is touched:
# a program (or a CLI) that imports mediajobs and exits early does not pay for httpx, pydantic
# and the dialects.
_LAZY: dict[str, str] = {
    **dict.fromkeys(("AsyncClient", "AsyncJob", "Client", "Job"), "_client"),
    **dict.fromkeys(("Artifact", "JobData", "JobErrorInfo", "ModelInfo"), "_models"),
    "JobStatus": "_status",
    **dict.fromkeys(("Kind", "ProviderName"), "_types"),
    **dict.fromkeys(("PollPolicy", "RetryPolicy"), "_policy"),
    **dict.fromkeys(("Dialect", "UnknownStatusWarning"), "dialects"),
    **dict.fromkeys(("JobStore", "StoredFile", "StoredJob"), "_store"),
    "WebhookEvent": "_webhooks",
}

if _typing.TYPE_CHECKING:
    from ._client import AsyncClient, AsyncJob, Client, Job
    from ._models import Artifact, JobData, JobErrorInfo, ModelInfo
    from ._policy import PollPolicy, RetryPolicy
    from ._status import JobStatus
    from ._store import JobStore, StoredFile, StoredJob
    from ._types import Kind, ProviderName
    from ._webhooks import WebhookEvent
    from .dialects import Dialect, UnknownStatusWarning

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "Artifact",
    "AsyncClient",
    "AsyncJob",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "Dialect",
    "DownloadError",
    "Job",
    "JobCancelledError",
    "JobData",
    "JobError",
    "JobErrorInfo",
    "JobExpiredError",
    "JobFailedError",
    "JobStatus",
    "JobStore",
    "Kind",
    "MediaJobsError",
    "ModelInfo",
    "NotFoundError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PollPolicy",
    "ProtocolError",
    "ProviderName",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "StoreError",
    "StoredFile",
    "StoredJob",
    "UnknownStatusWarning",
    "UnsupportedError",
    "WaitTimeoutError",
    "WebhookEvent",
    "WebhookVerificationError",
    "__version__",
]


def __getattr__(name: str) -> _typing.Any:
    """Import a public name on first use.

    Args:
        name: The attribute.

    Returns:
        Its value (cached in the module from then on).

    Raises:
        AttributeError: For a name mediajobs does not export.
    """
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mediajobs' has no attribute {name!r}")
    from importlib import import_module  # noqa: PLC0415 - keeps this module's import tiny

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
