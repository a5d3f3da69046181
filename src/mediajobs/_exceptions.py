"""The mediajobs error tree.

Every failure a user can meet is one of these. Dialects raise ``APIError`` and
``ProtocolError`` for what providers answer; everything else is built here, once: httpx failures
(:func:`translate`, :func:`unusable_redirect`), job outcomes (:func:`outcome_error`), wait
deadlines (:func:`wait_timeout_error`) and calls on a closed client (:func:`closed_error`)::

    MediaJobsError
    ├── ConfigurationError        missing key, bad base URL, closed client
    ├── UnsupportedError          kind or operation the provider lacks
    ├── APIError                  .status_code, .body, .response
    │   ├── BadRequestError       400, 422
    │   ├── AuthenticationError   401
    │   ├── PaymentRequiredError  402
    │   ├── PermissionDeniedError 403
    │   ├── NotFoundError         404
    │   ├── ConflictError         409
    │   ├── RateLimitError        429
    │   └── ServerError           5xx
    ├── APIConnectionError        network failure
    │   └── APITimeoutError
    ├── ProtocolError             a response not in the provider's documented shape
    ├── JobError                  .job
    │   ├── JobFailedError
    │   ├── JobCancelledError
    │   └── JobExpiredError
    ├── WaitTimeoutError          .job
    ├── DownloadError             incomplete or unreadable artifact
    ├── WebhookVerificationError  .reason: a webhook delivery that cannot be trusted
    └── StoreError                the job store cannot read or write

No message or ``repr`` carries the API key: request headers are never formatted into a
message, and response bodies pass through :func:`redact` before they are kept.

Every error pickles (to cross a process boundary, e.g. out of a ``ProcessPoolExecutor``
worker) without secrets and without a client: the pickled copy of ``APIError.response``
keeps the status, the headers (``Set-Cookie`` aside) and its request's method and URL (no
user info, no query), but neither the request's headers (credentials) nor the raw body
(``.body`` is the redacted one); job handles on ``JobError.job`` and
``WaitTimeoutError.job``/``.pending`` travel as their :class:`~mediajobs.JobData`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:  # this module stays cheap to import: ``import mediajobs`` loads it eagerly
    import httpx

    from ._models import JobData

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "DownloadError",
    "JobCancelledError",
    "JobError",
    "JobExpiredError",
    "JobFailedError",
    "MediaJobsError",
    "NotFoundError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "ServerError",
    "StoreError",
    "UnsupportedError",
    "WaitTimeoutError",
    "WebhookVerificationError",
    "closed_error",
    "error_class_for_status",
    "outcome_error",
    "translate",
    "unusable_redirect",
    "wait_timeout_error",
]

J = TypeVar("J")
"""The job type an error carries: the handle the caller holds (``Job`` or ``AsyncJob``)."""


class MediaJobsError(Exception):
    """Base class of every error mediajobs raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The default rebuilds with cls(*args), which keyword-only context cannot survive;
        # the attributes travel as data instead, made portable (no key, no client).
        state = {name: _portable(value) for name, value in vars(self).items()}
        return (_restore, (type(self), self.args, state))


def _restore(cls: type[MediaJobsError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """Rebuild an unpickled error without calling its ``__init__``."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


def _portable(value: Any) -> Any:
    """Return what an error attribute pickles as: no credentials, no client."""
    import httpx  # noqa: PLC0415 - pickling is rare; keep this module cheap to import

    from ._models import JobData  # noqa: PLC0415

    if isinstance(value, httpx.Response):
        return _bare_response(value)
    if isinstance(value, list):
        return [_portable(item) for item in value]
    data = getattr(value, "data", None)
    if isinstance(data, JobData) and not isinstance(value, JobData):
        return data  # a job handle: its snapshot, without the client behind it
    return value


def _bare_response(response: httpx.Response) -> httpx.Response:
    import httpx  # noqa: PLC0415 - see _portable

    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "set-cookie"]
    try:
        sent = response.request
    except RuntimeError:
        request = None
    else:
        url = sent.url.copy_with(userinfo=b"", query=None, fragment=None)
        request = httpx.Request(sent.method, url)
    return httpx.Response(response.status_code, headers=headers, request=request)


class ConfigurationError(MediaJobsError):
    """The client is misconfigured: no API key, an unknown provider or a bad base URL."""


class UnsupportedError(MediaJobsError):
    """The provider lacks this kind of job or operation (raised before any request)."""


class APIError(MediaJobsError):
    """The provider answered with an error status (or, for OneRouter, an error envelope).

    Attributes:
        status_code: The HTTP status, or OneRouter's envelope ``code``.
        body: The decoded JSON body when there was one, else the text (key redacted).
        response: The ``httpx.Response`` that carried the error, when there was one.
        provider: The provider's name.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Any = None,
        response: httpx.Response | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.response = response
        self.provider = provider

    @property
    def retry_after(self) -> str | None:
        """The raw ``Retry-After`` header of the response, if any."""
        if self.response is None:
            return None
        value: str | None = self.response.headers.get("retry-after")
        return value


class BadRequestError(APIError):
    """400 or 422: the request was refused as invalid."""


class AuthenticationError(APIError):
    """401: the API key is missing or wrong."""


class PaymentRequiredError(APIError):
    """402: not enough credits."""


class PermissionDeniedError(APIError):
    """403: the key may not do this (or a pre-signed URL has expired)."""


class NotFoundError(APIError):
    """404: no such job or route."""


class ConflictError(APIError):
    """409: the request conflicts with the job's state, e.g. cancelling a finished job."""


class RateLimitError(APIError):
    """429: too many requests."""


class ServerError(APIError):
    """5xx: the provider failed."""


class APIConnectionError(MediaJobsError):
    """The network failed: no connection, a dropped connection or a broken stream.

    Attributes:
        unsent: ``True`` when the request surely never reached the server (the connection
            was never opened), so repeating it cannot duplicate anything.
    """

    def __init__(self, message: str, *, unsent: bool = False) -> None:
        super().__init__(message)
        self.unsent = unsent


class APITimeoutError(APIConnectionError):
    """A request timed out."""


class ProtocolError(MediaJobsError):
    """A response was not in the provider's documented shape.

    Attributes:
        provider: The provider's name.
        field: The field that was missing or malformed, when one can be named.
        job_id: The job's id when known: the polled job's, or the id a submit answer named
            before the rest of it failed. Such an answer still tells which (paid) job
            exists, so it can be polled or cancelled later; ``None`` when no id was read.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        field: str | None = None,
        job_id: str | None = None,
    ) -> None:
        where = f" (field {field!r})" if field else ""
        super().__init__(f"{provider}: {message}{where}")
        self.provider = provider
        self.field = field
        self.job_id = job_id


class JobError(MediaJobsError, Generic[J]):
    """The job reached a terminal state other than success.

    ``JobError[Job]`` from :class:`~mediajobs.Client`, ``JobError[AsyncJob]`` from
    :class:`~mediajobs.AsyncClient`: ``.job`` is the very handle the caller holds.

    Attributes:
        job: The job in its final state.
    """

    def __init__(self, message: str, *, job: J) -> None:
        super().__init__(message)
        self.job = job


class JobFailedError(JobError[J]):
    """The job failed; ``job.error`` says why when the provider said."""


class JobCancelledError(JobError[J]):
    """The job was cancelled."""


class JobExpiredError(JobError[J]):
    """The job expired before it finished (or its results expired)."""


class WaitTimeoutError(MediaJobsError, Generic[J]):
    """The wait's deadline passed before the job finished.

    The job keeps running at the provider; resume with ``client.wait(job.id)``.

    Attributes:
        job: The last state seen (for many jobs: the first unfinished one).
        pending: For many jobs, every unfinished job; else ``[job]``.
    """

    def __init__(self, message: str, *, job: J, pending: list[J] | None = None) -> None:
        super().__init__(message)
        self.job = job
        self.pending = pending if pending is not None else [job]


class DownloadError(MediaJobsError):
    """An artifact could not be downloaded completely.

    Attributes:
        url: The artifact URL without its query string (signatures stay out of logs).
    """

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(f"{message} ({url})" if url else message)
        self.url = url


class WebhookVerificationError(MediaJobsError):
    """A webhook delivery was refused: unsigned, badly signed, stale or not an event.

    The message names what was wrong but never a secret or an expected signature.

    Attributes:
        reason: A short machine-readable code: ``"no_secret"``, ``"missing_signature"``,
            ``"malformed_signature"``, ``"stale_timestamp"``, ``"future_timestamp"``,
            ``"bad_signature"``, ``"malformed_body"``, ``"wrong_provider"`` or
            ``"unsupported_provider"``.
        provider: The provider whose format was expected, when known.
    """

    def __init__(self, message: str, *, reason: str, provider: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.provider = provider


class StoreError(MediaJobsError):
    """The job store could not read or write.

    Its database is unreachable, locked for too long, corrupt, full or closed, or it holds a
    record that conflicts with the write. Messages name the store without any password its
    URL carries.
    """


_STATUS_CLASSES: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_class_for_status(status_code: int) -> type[APIError]:
    """Return the :class:`APIError` subclass for an HTTP (or envelope) status.

    Args:
        status_code: The status.

    Returns:
        The most specific class; :class:`ServerError` for 5xx, :class:`APIError` otherwise.
    """
    if status_code >= 500:
        return ServerError
    return _STATUS_CLASSES.get(status_code, APIError)


# ------------------------------------------------------------------ building errors


def translate(exc: httpx.HTTPError, request: httpx.Request | None = None) -> APIConnectionError:
    """Translate an httpx failure into the mediajobs error tree.

    Args:
        exc: The httpx exception.
        request: The request that failed, if known.

    Returns:
        :class:`APITimeoutError` for timeouts, :class:`APIConnectionError` otherwise;
        ``.unsent`` tells whether the request surely never reached the server. The message names
        the method and URL without its query string; ``__cause__`` is ``exc``.
    """
    import httpx  # noqa: PLC0415 - loaded already whenever a request failed

    try:
        target = request or exc.request
        where = f"{target.method} {target.url.copy_with(query=None)}"
    except RuntimeError:
        where = "request"
    cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    unsent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    error = cls(f"{where} failed: {type(exc).__name__}: {exc}", unsent=unsent)
    error.__cause__ = exc
    return error


def unusable_redirect(provider: str, request: httpx.Request) -> ProtocolError:
    """Build the error of an answer redirecting to a ``Location`` that is not a URL.

    httpx parses the ``Location`` of every 3xx answer (even one it will not follow) and raises
    ``httpx.InvalidURL``, which is no ``httpx.HTTPError``, for ``javascript:``, ``data:`` and
    the like; such an answer is a protocol violation, and retrying it would change nothing.

    Args:
        provider: The provider's name.
        request: The request so answered.

    Returns:
        A :class:`ProtocolError` naming the request (without its query string), not the
        ``Location`` (the server's text, which may be anything).
    """
    where = f"{request.method} {request.url.copy_with(query=None)}"
    return ProtocolError(
        f"{where} answered with a redirect to something that is not a URL", provider=provider
    )


_OUTCOMES: dict[str, tuple[type[JobError[Any]], str]] = {
    "failed": (JobFailedError, "failed"),
    "cancelled": (JobCancelledError, "was cancelled"),
    "expired": (JobExpiredError, "expired"),
}


def outcome_error(job: J, data: JobData) -> JobError[J] | None:
    """Build the :class:`JobError` that matches a terminal state other than success.

    Args:
        job: What the error carries as ``.job`` (the caller's handle).
        data: The job's latest snapshot.

    Returns:
        :class:`JobFailedError`, :class:`JobCancelledError` or :class:`JobExpiredError`, or
        ``None`` when the job succeeded or has not finished.
    """
    found = _OUTCOMES.get(data.status.value)
    if found is None:
        return None
    cls, verb = found
    reason = f": {data.error.message}" if data.error else ""
    return cls(f"{data.provider} job {data.id} {verb}{reason}", job=job)


def wait_timeout_error(
    pending: Sequence[tuple[J, JobData]], timeout: float | None
) -> WaitTimeoutError[J]:
    """Build the error of a wait whose deadline passed.

    Args:
        pending: The unfinished jobs as ``(handle, snapshot)`` pairs, the first one first.
        timeout: The wait's length in seconds.

    Returns:
        The error; ``.job`` is the first unfinished job, ``.pending`` all of them.
    """
    handle, data = pending[0]
    message = (
        f"{data.provider} job {data.id} still {data.status.value} after {timeout:g}s "
        f"(it keeps running; resume with client.wait({data.id!r}))"
    )
    if len(pending) > 1:
        message = f"{len(pending)} job(s) unfinished; first: {message}"
    return WaitTimeoutError(message, job=handle, pending=[h for h, _ in pending])


def closed_error() -> ConfigurationError:
    """Build the error of a call made on a client that is closed.

    Returns:
        A :class:`ConfigurationError` saying so (its httpx client can send nothing more).
    """
    return ConfigurationError(
        "the client is closed: make calls inside its with block, or build a new client"
    )
