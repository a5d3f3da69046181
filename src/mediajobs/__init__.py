"""mediajobs: submit, wait for and download long media-generation jobs on AI routers.

One typed sync and async client for TheRouter, WorldRouter, OpenRouter and OneRouter::

    import mediajobs as mj

    with mj.Client("openrouter") as client:
        job = client.submit("video", model="bytedance/seedance-2.0", prompt="a kitten")
        job.wait()
        paths = job.download("out/")
"""

from __future__ import annotations

from ._client import AsyncClient, AsyncJob, Client, Job
from ._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
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
    UnsupportedError,
    WaitTimeoutError,
)
from ._models import Artifact, JobData, JobErrorInfo, JobStatus, ModelInfo
from ._policy import PollPolicy, RetryPolicy
from ._types import Kind, ProviderName
from ._version import __version__
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
    "UnknownStatusWarning",
    "UnsupportedError",
    "WaitTimeoutError",
    "__version__",
]
