"""The dialect interface: how one provider's wire shape maps onto the one job model.

A dialect is pure (sans-I/O): it builds ``httpx.Request`` values and turns ``httpx.Response``
values into :class:`~mediajobs.JobData`. It never sends, sleeps, reads files or adds
credentials; the lifecycle flows do that, asking :meth:`Dialect.is_api_url` where the key may go.

To add a provider without forking, subclass :class:`Dialect` and pass an instance as
``provider=`` to a client (``tests/test_custom_dialect.py`` shows a complete one).

Whatever a server sends, the parsing entry points (``parse_submit``, ``parse_poll``,
``parse_cancel``, ``parse_models``, in built-in and custom dialects alike) raise only
:class:`~mediajobs.APIError` or :class:`~mediajobs.ProtocolError`: the helpers here check
types, nesting depth (:data:`MAX_JSON_DEPTH`), ids and URLs, and any other exception a body
provokes is turned into a ``ProtocolError`` at the entry point.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import json
import math
import posixpath
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, NoReturn, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx

from .._exceptions import (
    ConfigurationError,
    MediaJobsError,
    ProtocolError,
    UnsupportedError,
    error_class_for_status,
)
from .._models import Artifact, JobData, JobErrorInfo, JobStatus, ModelInfo, parse_time
from .._policy import PollPolicy
from .._webhook_formats import WebhookFormat

__all__ = [
    "EXTENSION_MEDIA_TYPES",
    "MAX_JSON_DEPTH",
    "Dialect",
    "UnknownStatusWarning",
    "is_input_file",
    "load_json",
    "media_type_of",
    "origin_of",
]

T = TypeVar("T")
D = TypeVar("D", bound="Dialect")

MAX_JSON_DEPTH = 64
"""The deepest nesting of arrays and objects a response body may have.

The providers' bodies are a few levels deep; a deeper one is refused as a
:class:`~mediajobs.ProtocolError` (an error body is then kept as text), so no later step
(serializing a snapshot, redacting an error body) can exhaust the stack on it."""

_MAX_WARNED_STATUSES = 64
"""Distinct unknown statuses one dialect instance warns about; later ones pass silently."""

_PARSERS = ("parse_submit", "parse_poll", "parse_cancel", "parse_models")
"""The parsing entry points guarded in every subclass (see :meth:`Dialect.__init_subclass__`)."""

_MISSING = object()


EXTENSION_MEDIA_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".opus": "audio/opus",
    ".aac": "audio/aac",
    ".flac": "audio/flac",
    ".json": "application/json",
    ".txt": "text/plain",
    ".srt": "application/x-subrip",
    ".vtt": "text/vtt",
}
"""Media type by URL extension, for the formats the providers' models produce."""


def media_type_of(url: str, default: str | None = None) -> str | None:
    """Guess an artifact's media type from its URL's extension.

    Args:
        url: The artifact URL (the query string is ignored).
        default: Returned when the extension is unknown.

    Returns:
        The media type, or ``default``.
    """
    extension = posixpath.splitext(urlsplit(url).path)[1].lower()
    return EXTENSION_MEDIA_TYPES.get(extension, default)


def is_input_file(value: Any) -> bool:
    """Tell whether a parameter holds read input files (tuples), not a URL left as a string.

    Args:
        value: The parameter's value.

    Returns:
        ``True`` for a ``(filename, bytes, content_type)`` tuple or a non-empty list of them.
    """
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(isinstance(item, tuple) for item in items)


class UnknownStatusWarning(UserWarning):
    """A provider sent a status no table knows; the job is treated as still running."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def load_json(content: bytes | str) -> Any:
    """Decode a JSON body, refusing what standard JSON or this package cannot carry.

    Args:
        content: The body.

    Returns:
        The decoded value.

    Raises:
        ValueError: If the body is not JSON (``NaN`` and ``Infinity`` included), holds a
            number too long to convert, or nests deeper than :data:`MAX_JSON_DEPTH`.
    """
    try:
        if isinstance(content, bytes):  # as json.loads does it
            content = content.decode(json.detect_encoding(content), "surrogatepass")
        value = _DECODER.decode(content)
    except RecursionError as exc:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from exc
    except UnicodeDecodeError as exc:  # a ValueError, but its text quotes the body
        raise ValueError(f"not UTF-8 ({exc.reason})") from exc
    if not isinstance(value, (dict, list)):
        return value
    brackets = content.count("[") + content.count("{")
    if brackets <= MAX_JSON_DEPTH:  # too few brackets to nest too deep: no walk needed
        return value
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= MAX_JSON_DEPTH:
                    raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
                pending.append((child, depth + 1))
    return value


@functools.lru_cache(maxsize=4096)
def _joined(base: str, url: str) -> tuple[str, bool]:
    """Resolve ``url`` against ``base``; tell whether httpx can request the result.

    Requestable means http(s) with a host. Cached: every poll of a job repeats its URLs.

    Raises:
        httpx.InvalidURL: For a URL httpx cannot parse (control characters, bad ports, …).
        ValueError: For one it cannot encode.
    """
    resolved = urljoin(base, url)
    parsed = _parsed(resolved)
    return resolved, parsed.scheme in ("http", "https") and bool(parsed.host)


@functools.lru_cache(maxsize=4096)
def _parsed(url: str) -> httpx.URL:
    """Parse a URL once (cached: ``httpx.URL`` values are immutable and polls repeat URLs).

    Raises:
        httpx.InvalidURL: For a URL httpx cannot parse.
        ValueError: For one it cannot encode.
    """
    return httpx.URL(url)


def _utf8(text: str) -> bool:
    """Tell whether a string can be written as UTF-8 (it holds no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _guarded(method: Callable[..., T]) -> Callable[..., T]:
    """Wrap a parsing entry point so only ``APIError``/``ProtocolError`` leave it."""

    @functools.wraps(method)
    def guarded(self: Dialect, *args: Any, **kwargs: Any) -> T:
        try:  # reading_job's rule, without a context manager on every poll
            return method(self, *args, **kwargs)
        except Exception as exc:
            previous = kwargs.get("previous")
            self._reraise(exc, previous.id if isinstance(previous, JobData) else None)

    guarded.__dict__["_mediajobs_guarded"] = True
    return guarded


def origin_of(url: str | httpx.URL) -> tuple[str, str, int | None]:
    """Return the ``(scheme, host, port)`` origin of a URL, with default ports made explicit.

    Args:
        url: The URL.

    Returns:
        The origin triple.
    """
    parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
    return (parsed.scheme, parsed.host, port)


class Dialect:
    """Base class of the provider dialects.

    Subclasses set the class attributes and implement :meth:`build_submit`,
    :meth:`parse_submit`, :meth:`build_poll` and :meth:`parse_poll`; the rest has working
    defaults.

    Attributes:
        name: The provider's name, used in errors and ``Job.provider``.
        env_var: The environment variable holding the API key.
        kinds: The job kinds the provider offers.
        default_hosts: Role name → origin (scheme + host) of every host the provider uses.
        default_poll: The default :class:`~mediajobs.PollPolicy` (from provider guidance).
        status_table: Raw status → normalized status, a literal table.
        webhook_format: How the provider signs and shapes its webhooks
            (:class:`~mediajobs.webhooks.WebhookFormat`), or ``None`` when it sends none.
        file_params: Submit parameters that carry input files (read by the client).
        supports_cancel: Whether :meth:`build_cancel` is implemented. A subclass that does
            not set it gets ``True`` exactly when it (or a base) overrides ``build_cancel``.
    """

    name: ClassVar[str] = "custom"
    env_var: ClassVar[str] = "MEDIAJOBS_API_KEY"
    kinds: ClassVar[frozenset[str]] = frozenset()
    default_hosts: ClassVar[Mapping[str, str]] = {}
    default_poll: ClassVar[PollPolicy] = PollPolicy()
    status_table: ClassVar[Mapping[str, JobStatus]] = {}
    file_params: ClassVar[frozenset[str]] = frozenset({"image", "file", "mask"})
    webhook_format: ClassVar[WebhookFormat | None] = None
    supports_cancel: ClassVar[bool] = False

    _init_args: tuple[tuple[Any, ...], dict[str, Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Guard a subclass's parsing entry points and keep ``supports_cancel`` accurate.

        Each of ``parse_submit``, ``parse_poll``, ``parse_cancel`` and ``parse_models`` the
        subclass defines is wrapped (see :meth:`reading_job`) so that any exception other than
        a :class:`~mediajobs.MediaJobsError` or a warning becomes a
        :class:`~mediajobs.ProtocolError`, with the polled job's id when there is one.

        Args:
            **kwargs: Passed on to ``object.__init_subclass__``.
        """
        super().__init_subclass__(**kwargs)
        for name in _PARSERS:
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "_mediajobs_guarded", False):
                setattr(cls, name, _guarded(method))
        if "supports_cancel" not in cls.__dict__:
            cls.supports_cancel = cls.build_cancel is not Dialect.build_cancel

    def __new__(cls: type[D], *args: Any, **kwargs: Any) -> D:
        """Create the instance, remembering its constructor arguments for :meth:`with_base_url`.

        Args:
            *args: The constructor's positional arguments.
            **kwargs: The constructor's keyword arguments.

        Returns:
            The new, uninitialized instance.
        """
        self = super().__new__(cls)
        self._init_args = (args, kwargs)
        return self

    def __init__(self, base_url: str | None = None) -> None:
        """Create the dialect.

        Args:
            base_url: Scheme + host (+ port) replacing every default host of the provider.

        Raises:
            ConfigurationError: If ``base_url`` is not an absolute http(s) URL.
        """
        self._set_base_url(base_url)
        self._warned_statuses: set[str] = set()

    def _set_base_url(self, base_url: str | None) -> None:
        self.base_url = _check_base_url(base_url) if base_url is not None else None
        self.hosts: dict[str, str] = {
            role: (self.base_url or origin) for role, origin in self.default_hosts.items()
        }
        self._api_origins = {origin_of(h) for h in self.hosts.values()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def with_base_url(self: D, base_url: str | None) -> D:
        """Return a copy of this dialect whose hosts are all replaced by ``base_url``.

        The copy is made by calling the class again with the arguments this instance was
        created with and ``base_url`` replaced, so a subclass's ``__init__`` runs and what it
        derives from the hosts follows them. A subclass whose ``__init__`` takes no
        ``base_url`` is copied instead and only its hosts are replaced.

        Args:
            base_url: The new base URL, or ``None`` to keep this one's hosts.

        Returns:
            The dialect (``self`` when ``base_url`` is ``None``).

        Raises:
            ConfigurationError: If ``base_url`` is malformed.
        """
        if base_url is None:
            return self
        args, kwargs = getattr(self, "_init_args", ((), {}))
        signature = inspect.signature(type(self).__init__)
        if "base_url" in signature.parameters:
            try:
                bound = signature.bind(self, *args, **kwargs)
            except TypeError:
                pass
            else:
                bound.arguments["base_url"] = base_url
                return type(self)(*bound.args[1:], **bound.kwargs)
        clone = copy.copy(self)
        clone._set_base_url(base_url)
        clone._warned_statuses = set()
        return clone

    # ----------------------------------------------------------------- URLs and credentials

    def url(self, path: str, role: str = "api") -> str:
        """Return the absolute URL of a documented path on one of the provider's hosts.

        Args:
            path: The path (with query, if any), starting with ``/``.
            role: Which host (a key of :attr:`default_hosts`).

        Returns:
            The URL.
        """
        return self.hosts[role].rstrip("/") + path

    def resolve(self, url: str, role: str = "api", *, field: str | None = None) -> str:
        """Resolve a server-given URL (absolute or relative) against a host, checking it.

        Args:
            url: The URL as the server sent it.
            role: The host relative URLs are resolved against.
            field: The field the URL came from, named in the error.

        Returns:
            The absolute URL.

        Raises:
            ProtocolError: If the result is not a well-formed http(s) URL with a host (bad
                brackets, control characters, unencodable characters, another scheme).
        """
        try:
            resolved, requestable = _joined(self.hosts[role].rstrip("/") + "/", url)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise ProtocolError(
                f"malformed URL {_short(url)}", provider=self.name, field=field
            ) from exc
        if not requestable:
            raise ProtocolError(
                f"expected an http(s) URL, got {_short(url)}", provider=self.name, field=field
            )
        return resolved

    def get_request(self, server_url: str | None, path: str, role: str = "api") -> httpx.Request:
        """Build a GET of a server-given URL when it is on an API host, else of ``path``.

        Servers hand out polling URLs; following them keeps relative and moved routes working,
        but only API hosts may receive the key, so any other URL (or none) falls back to the
        documented route.

        Args:
            server_url: The absolute URL the server gave, if any.
            path: The documented path to use otherwise.
            role: The host ``path`` is on.

        Returns:
            The request, without credentials.
        """
        if server_url:
            try:
                url = _parsed(server_url)
            except (httpx.InvalidURL, ValueError):
                pass  # a stored snapshot may hold anything: use the documented route
            else:
                if self.is_api_url(url):
                    return httpx.Request("GET", url)
        return httpx.Request("GET", _parsed(self.url(path, role)))

    def is_api_url(self, url: str | httpx.URL) -> bool:
        """Tell whether a URL is on one of the provider's own API hosts (the key may go there).

        Args:
            url: The URL.

        Returns:
            ``True`` for the provider's API origins, ``False`` for storage and anything else.
        """
        return origin_of(url) in self._api_origins

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """Return the headers that carry the key to an API host.

        Args:
            api_key: The key.

        Returns:
            The headers (``Authorization: Bearer <key>`` by default).
        """
        return {"Authorization": f"Bearer {api_key}"}

    # ------------------------------------------------------------------------ operations

    def check_kind(self, kind: str) -> None:
        """Refuse a kind the provider does not offer.

        Args:
            kind: The job kind.

        Raises:
            UnsupportedError: If the provider does not offer it.
        """
        if kind not in self.kinds:
            offered = ", ".join(sorted(self.kinds)) or "none"
            raise UnsupportedError(
                f"{self.name} does not offer {kind!r} jobs (it offers: {offered})"
            )

    def build_submit(
        self, kind: str, *, model: str, prompt: str | None, params: Mapping[str, Any]
    ) -> httpx.Request:
        """Build the request that creates a job.

        Args:
            kind: The job kind (already checked).
            model: The model.
            prompt: The prompt, if any.
            params: Extra parameters, passed through; input files arrive as
                ``(filename, bytes, content_type)`` tuples.

        Returns:
            The request, without credentials.

        Raises:
            UnsupportedError: If the kind is not offered.
        """
        raise UnsupportedError(f"{self.name} cannot submit jobs")

    def parse_submit(self, response: httpx.Response, *, kind: str, model: str) -> JobData:
        """Turn the submit response into the job's first snapshot.

        Args:
            response: The response (body read).
            kind: The kind that was submitted.
            model: The model that was submitted.

        Returns:
            The job.

        Raises:
            APIError: For an error status (or error envelope).
            ProtocolError: For a body not in the documented shape.
        """
        raise UnsupportedError(f"{self.name} cannot submit jobs")

    def build_poll(self, job: JobData) -> httpx.Request:
        """Build the request that reads a job's status.

        Args:
            job: The last snapshot.

        Returns:
            The request, without credentials.
        """
        raise UnsupportedError(f"{self.name} cannot read job status")

    def parse_poll(self, response: httpx.Response, *, previous: JobData) -> JobData:
        """Turn a status response into a new snapshot.

        Args:
            response: The response (body read).
            previous: The snapshot the poll was built from (kind, model and route carry over).

        Returns:
            The job.

        Raises:
            APIError: For an error status (or error envelope).
            ProtocolError: For a body not in the documented shape.
        """
        raise UnsupportedError(f"{self.name} cannot read job status")

    def build_cancel(self, job: JobData) -> httpx.Request:
        """Build the request that cancels a job.

        Args:
            job: The job.

        Returns:
            The request.

        Raises:
            UnsupportedError: Where the provider has no cancel (the default).
        """
        raise UnsupportedError(f"{self.name} has no way to cancel a job")

    def parse_cancel(self, response: httpx.Response, *, previous: JobData) -> JobData:
        """Turn the cancel response into a snapshot (by default, like a poll).

        Args:
            response: The response (body read).
            previous: The job as it was.

        Returns:
            The job.

        Raises:
            APIError: For an error status.
            ProtocolError: For a body not in the documented shape.
        """
        return self.parse_poll(response, previous=previous)

    def job_for_id(
        self, job_id: str, *, kind: str | None = None, model: str | None = None
    ) -> JobData:
        """Return a placeholder snapshot for a stored job id, enough to poll it.

        Args:
            job_id: The provider's id.
            kind: The kind, when known (it picks the status route for some providers).
            model: The model, when known.

        Returns:
            A queued snapshot with an empty ``raw``.

        Raises:
            ConfigurationError: If the id is empty or not writable as UTF-8.
        """
        if not job_id or not isinstance(job_id, str) or not _utf8(job_id):
            raise ConfigurationError("a job id must be a non-empty UTF-8 string")
        return JobData(
            id=job_id,
            provider=self.name,
            status=JobStatus.QUEUED,
            raw_status="",
            kind=kind,
            model=model,
        )

    def fallback_kinds(self, kind: str | None) -> tuple[str, ...]:
        """Return the kinds whose status route to try when a stored id's first route says 404.

        Some providers read each kind of job on its own route, and a stored id does not say
        which. :meth:`job_for_id` without a kind picks the likelier route; when that answers
        404, the caller may rebuild the placeholder with ``job_for_id(id, kind=k)`` for each
        ``k`` returned here, in order (for the built-in dialects, at most one).

        Args:
            kind: The kind the placeholder was built with (``None`` when unknown).

        Returns:
            The kinds to try next; empty when the kind was known or every kind shares one
            status route (the default).
        """
        return ()

    def build_models(self) -> httpx.Request:
        """Build the request that lists models.

        Returns:
            The request.

        Raises:
            UnsupportedError: Where the provider has no model listing (the default).
        """
        raise UnsupportedError(f"{self.name} has no model listing")

    def parse_models(self, response: httpx.Response) -> list[ModelInfo]:
        """Turn the models response into a list of model entries.

        Args:
            response: The response (body read).

        Returns:
            The entries, typed (each keeps the entry as sent in ``raw``).

        Raises:
            UnsupportedError: Where the provider has no model listing.
        """
        raise UnsupportedError(f"{self.name} has no model listing")

    def build_content(self, job: JobData, artifact: Artifact) -> httpx.Request | None:
        """Build a request that yields fresh bytes for an artifact whose URL has expired.

        Args:
            job: The job.
            artifact: The artifact whose URL was refused.

        Returns:
            A request to a provider route that answers (or redirects to) fresh bytes, or
            ``None`` when the only way is to re-read the job (``refresh()``).
        """
        return None

    # ----------------------------------------------------------------------- helpers

    def normalize_status(self, raw: str) -> JobStatus:
        """Map a raw status through :attr:`status_table`.

        An unknown status is treated as running (the wait's deadline still applies) and warned
        about with :class:`UnknownStatusWarning` once per value and dialect instance (that is,
        per client), for the first few dozen distinct values.

        Args:
            raw: The status as sent.

        Returns:
            The normalized status.
        """
        status = self.status_table.get(raw)
        if status is None:
            status = self.status_table.get(raw.lower()) if isinstance(raw, str) else None
        if status is not None:
            return status
        warned = self._warned_statuses
        if raw not in warned and len(warned) < _MAX_WARNED_STATUSES:
            warned.add(raw)
            warnings.warn(
                f"{self.name} sent unknown job status {_short(raw)}; treating it as still running",
                UnknownStatusWarning,
                stacklevel=2,
            )
        return JobStatus.RUNNING

    def raise_for_status(self, response: httpx.Response) -> None:
        """Raise the matching :class:`~mediajobs.APIError` for a non-2xx response.

        Args:
            response: The response (body read).

        Raises:
            APIError: The subclass chosen by status, with the provider's message.
        """
        if 200 <= response.status_code < 300:
            return
        body = _body_of(response)
        message = _error_message(body) or response.reason_phrase or "error"
        cls = error_class_for_status(response.status_code)
        raise cls(
            f"{self.name} answered {response.status_code}: {message}",
            status_code=response.status_code,
            body=body,
            response=response,
            provider=self.name,
        )

    def json_object(self, response: httpx.Response) -> dict[str, Any]:
        """Decode a response body that must be a JSON object.

        Args:
            response: The response (body read).

        Returns:
            The object.

        Raises:
            ProtocolError: If the body is not a JSON object.
        """
        try:
            data = load_json(response.content)
        except ValueError as exc:
            raise ProtocolError(
                f"response to {response.request.method} {_path(response)} is not valid JSON"
                f" ({_short(str(exc))})",
                provider=self.name,
            ) from exc
        if not isinstance(data, dict):
            raise ProtocolError(
                f"response to {response.request.method} {_path(response)} is not a JSON object",
                provider=self.name,
            )
        return data

    def field(
        self, data: Mapping[str, Any], name: str, kind: type[T], *, default: Any = _MISSING
    ) -> T:
        """Read a field of a payload, checking its type.

        Args:
            data: The payload.
            name: The field name.
            kind: The expected type (``int`` accepts no ``bool``; ``float`` accepts ``int``).
            default: Returned when the field is absent or ``null``; without it, absence is an
                error.

        Returns:
            The value.

        Raises:
            ProtocolError: If the field is absent (and no default), has the wrong type, or
                is a float that is not finite or an int too large for one.
        """
        value = data.get(name) if type(data) is dict or isinstance(data, Mapping) else None
        if value is None:
            if default is not _MISSING:
                return default  # type: ignore[no-any-return]
            raise ProtocolError("missing field", provider=self.name, field=name)
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise ProtocolError("expected a finite number", provider=self.name, field=name)
            return number  # type: ignore[return-value]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ProtocolError(
                f"expected {kind.__name__}, got {type(value).__name__}",
                provider=self.name,
                field=name,
            )
        return value

    def list_field(self, data: Mapping[str, Any], name: str, kind: type[T]) -> tuple[T, ...]:
        """Read an optional list field whose items all have one type.

        Args:
            data: The payload.
            name: The field name.
            kind: The items' type (``int`` accepts no ``bool``).

        Returns:
            The items; empty when the field is absent or ``null``.

        Raises:
            ProtocolError: If the field is not a list or an item has another type.
        """
        items: list[Any] = self.field(data, name, list, default=[])
        for index, item in enumerate(items):
            if not isinstance(item, kind) or (kind is int and isinstance(item, bool)):
                raise ProtocolError(
                    f"expected {kind.__name__}, got {type(item).__name__}",
                    provider=self.name,
                    field=f"{name}[{index}]",
                )
        return tuple(items)

    def job_id(self, data: Mapping[str, Any], name: str) -> str:
        """Read a job id: a non-empty string that can be written as UTF-8.

        Args:
            data: The payload.
            name: The field name.

        Returns:
            The id.

        Raises:
            ProtocolError: If the id is absent, empty, not a string or holds a lone
                surrogate (it could go neither into a URL nor into a file name).
        """
        value = self.field(data, name, str)
        if not value or not _utf8(value):
            raise ProtocolError(f"unusable job id {_short(value)}", provider=self.name, field=name)
        return value

    @contextlib.contextmanager
    def reading_job(self, job_id: str | None) -> Iterator[None]:
        """Attach a job id to any failure of the block, as :attr:`ProtocolError.job_id`.

        A submit answer that names the new job but is otherwise out of shape must not lose the
        id: the job exists (and may be paid for). Use it around the rest of ``parse_submit``
        once the id is read. Any exception but a :class:`~mediajobs.MediaJobsError` (or a
        warning the warning filters turned into an error) becomes a ``ProtocolError``.

        Args:
            job_id: The id read so far, if any.

        Yields:
            Nothing.

        Raises:
            ProtocolError: For any failure in the block other than an ``APIError``.
        """
        try:
            yield
        except Exception as exc:
            self._reraise(exc, job_id)

    def _reraise(self, exc: Exception, job_id: str | None) -> NoReturn:
        """Raise what :meth:`reading_job` turns a failure into.

        Raises:
            ProtocolError: ``exc`` itself (given ``job_id`` if it had none), or a new one
                for any failure that is not a :class:`~mediajobs.MediaJobsError`.
            MediaJobsError: ``exc`` itself when it is one (or a warning made an error).
        """
        if isinstance(exc, ProtocolError):
            if exc.job_id is None:
                exc.job_id = job_id
            raise exc
        if isinstance(exc, (MediaJobsError, Warning)):  # a warning the filters made an error
            raise exc
        raise self.unreadable(exc, job_id=job_id) from exc

    def unreadable(self, exc: BaseException, *, job_id: str | None = None) -> ProtocolError:
        """Return the :class:`~mediajobs.ProtocolError` for an unexpected parsing failure.

        Args:
            exc: What a body provoked (a ``RecursionError``, a ``ValueError``, …).
            job_id: The job's id, when known.

        Returns:
            The error to raise (``from exc``).
        """
        return ProtocolError(
            f"unreadable response ({type(exc).__name__}: {_short(str(exc))})",
            provider=self.name,
            job_id=job_id,
        )

    def time_field(self, data: Mapping[str, Any], name: str) -> Any:
        """Read an optional time field in any format the providers use.

        Args:
            data: The payload.
            name: The field name.

        Returns:
            An aware ``datetime`` or ``None``.

        Raises:
            ProtocolError: If the value is present but unreadable.
        """
        try:
            return parse_time(data.get(name))
        except (ValueError, TypeError, OverflowError) as exc:
            raise ProtocolError(
                f"unreadable time {data.get(name)!r}", provider=self.name, field=name
            ) from exc

    def error_info(self, value: Any) -> JobErrorInfo | None:
        """Normalize a provider error (object, string, or empty) into :class:`JobErrorInfo`.

        Args:
            value: ``None``, ``""``, a string, or an object with ``message`` (and maybe ``code``).

        Returns:
            The error, or ``None`` when there is none.
        """
        if value is None or value in ("", {}):
            return None
        if isinstance(value, str):
            return JobErrorInfo(message=value)
        if isinstance(value, Mapping):
            message = value.get("message") or value.get("error") or value.get("detail")
            code = value.get("code") if value.get("code") is not None else value.get("type")
            return JobErrorInfo(
                message=str(message) if message else json.dumps(dict(value), default=str),
                code=None if code is None else str(code),
            )
        return JobErrorInfo(message=str(value))


def _check_base_url(base_url: str) -> str:
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigurationError(f"bad base_url {base_url!r}: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"bad base_url {base_url!r}: expected scheme and host, like 'http://127.0.0.1:8000'"
        )
    if url.path not in ("", "/") or url.query or url.fragment:
        raise ConfigurationError(
            f"bad base_url {base_url!r}: give scheme + host (+ port) only; paths are appended"
        )
    return str(url.copy_with(path="/")).rstrip("/")


def _path(response: httpx.Response) -> str:
    return response.request.url.path


def _short(value: Any, limit: int = 200) -> str:
    """Return ``repr(value)`` cut to ``limit`` characters, for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _body_of(response: httpx.Response) -> Any:
    try:
        return load_json(response.content)
    except ValueError:
        return _text_of(response)


def _text_of(response: httpx.Response, limit: int = 2000) -> str:
    """Return the start of a body as text, whatever charset it claims (never raising)."""
    head = response.content[: limit * 4]
    try:
        return head.decode(response.charset_encoding or "utf-8", "replace")[:limit]
    except (LookupError, UnicodeError):  # an unknown charset, or a codec that refuses anyway
        return head.decode("utf-8", "replace")[:limit]


def _error_message(body: Any) -> str | None:
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping):
            msg = err.get("message")
            return str(msg) if msg else None
        if isinstance(err, str) and err:
            return err
        msg = body.get("message") or body.get("detail")
        return str(msg) if msg else None
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return None
