"""Run jobs on a Celery cluster: submit, wait and download, with no worker asleep meanwhile.

Install the extra (``pip install "mediajobs[celery]"``) and import this module in the worker's
app module (or list it in ``imports``); the tasks are registered with ``shared_task``, so any
Celery app picks them up::

    from celery import Celery
    import mediajobs.celery

    app = Celery("tasks", broker="redis://127.0.0.1:6379/0", backend="redis://127.0.0.1:6379/0")
    mediajobs.celery.configure("openrouter", store="/shared/jobs.db")

    # anywhere that can reach the broker:
    result = mediajobs.celery.run_job.delay(
        provider="openrouter", kind="video", model="google/veo-3.1", prompt="a lighthouse",
        dest_dir="/shared/out",
    )
    result.get()  # {"job": {...}, "files": ["/shared/out/<id>_0.mp4"]}

A job is a sequence of short tasks, all under the id of the :func:`run_job` call, each
replacing itself with the next (``Task.replace``): :func:`submit_job` sends the job,
:func:`poll_job` reads its status once and schedules the next poll with the poll policy's delay
(or the server's ``Retry-After``) as a ``countdown``, and :func:`download_job` writes the
files and returns the result. Between two polls the job is a message in the broker, not a
sleeping worker.

Every step may run twice (``acks_late``: a worker killed mid-task has its task delivered
again) without doing its work twice: the submit carries a key derived from the ``run_job``
task id, so a repeated submit returns the first job (from the job store when one is
configured, else through the provider's ``Idempotency-Key``); polls only read; a download finds
the files already written and returns them.

API keys never travel in messages: workers build their clients from :func:`configure` (or the
provider's environment variable), and messages carry only the job's description and data.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

try:
    from celery import Task, shared_task
except ImportError as exc:  # pragma: no cover - exercised without the extra only
    from ._exceptions import ConfigurationError

    raise ConfigurationError(
        'mediajobs.celery needs Celery: pip install "mediajobs[celery]"'
    ) from exc

from . import _exceptions
from ._client import Client, Job
from ._exceptions import ConfigurationError, MediaJobsError, outcome_error, wait_timeout_error
from ._flows import observe, poll_flow
from ._models import JobData
from ._naming import safe_stem
from ._steps import Flow

__all__ = [
    "configure",
    "download_job",
    "finish_from_webhook",
    "poll_job",
    "portable_error",
    "run_job",
    "submit_job",
]

_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
}
"""Every task may run again after a worker dies: each is idempotent, so ask for redelivery."""


class _JobTask(Task):  # type: ignore[misc] # Celery is untyped
    """A task whose arguments are checked to be JSON values before anything is sent."""

    def apply_async(
        self, args: Any = None, kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> Any:
        try:
            json.dumps([list(args or ()), dict(kwargs or {})])
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"{self.name}: arguments must be JSON values (input files as paths): {exc}"
            ) from None
        return super().apply_async(args, kwargs, **options)


def _task(name: str) -> Callable[[Callable[..., Any]], Any]:
    """Register a function as a shared task named ``name``, with :data:`_TASK_OPTIONS`."""
    decorator: Callable[[Callable[..., Any]], Any] = shared_task(
        name=name, base=_JobTask, **_TASK_OPTIONS
    )
    return decorator


# --------------------------------------------------------------------------- worker clients

_lock = threading.Lock()
_settings: dict[str, dict[str, Any]] = {}
_clients: dict[str, Client] = {}
_clients_pid = os.getpid()


def configure(provider: str, **client_kwargs: Any) -> None:
    """Set the arguments this process's tasks build their ``provider`` client with.

    Call it in the worker's Celery app module, once per provider the workers serve. A provider
    never configured gets ``Client(provider)``: its key from the environment. Each worker
    process builds its client on first use (after the pool forks) and keeps it.

    Args:
        provider: The provider's name (``"openrouter"``...), as passed to :func:`run_job`.
        **client_kwargs: :class:`~mediajobs.Client` arguments: ``api_key``, ``base_url``,
            ``poll``, ``retry``, ``store``, ``wait_timeout``... They stay in this process;
            nothing of them is put in a message.

    Raises:
        ConfigurationError: If an argument is not one ``Client`` takes.
    """
    accepted = inspect.signature(Client).parameters
    unknown = sorted(set(client_kwargs) - set(accepted))
    if unknown:
        raise ConfigurationError(f"configure({provider!r}): Client takes no {', '.join(unknown)}")
    with _lock:
        _settings[provider] = dict(client_kwargs)
        old = _clients.pop(provider, None)
    if old is not None:
        old.close()


def _client(provider: str) -> Client:
    """Return this process's client for ``provider``, built on first use."""
    global _clients_pid  # noqa: PLW0603 - one client cache per process
    with _lock:
        if os.getpid() != _clients_pid:  # a forked pool child: the parent's sockets are not ours
            _clients.clear()
            _clients_pid = os.getpid()
        client = _clients.get(provider)
        if client is None:
            client = _clients[provider] = Client(provider, **_settings.get(provider, {}))
        return client


def _submit(client: Client, spec: Mapping[str, Any]) -> Job:
    """Submit the job of ``spec``: once per key, however often this is called."""
    return client.submit(
        spec["kind"],
        model=spec["model"],
        prompt=spec["prompt"],
        key=spec["key"],
        labels=spec.get("labels"),
        **spec["params"],
    )


def _poll_once(client: Client, data: JobData) -> Flow[tuple[JobData, float | None]]:
    """Read the job once (recording a status change); return it and the server's hint."""
    new, hint = yield from poll_flow(client._settings, data)
    new, _ = yield from observe(data, new)
    return new, hint


# --------------------------------------------------------------------------- portable errors

_PORTABLE: dict[type[BaseException], type[MediaJobsError]] = {}


def _portable_class(cls: type[MediaJobsError]) -> type[MediaJobsError]:
    """A subclass of ``cls`` that Celery's JSON result backend can rebuild from its args."""

    def __init__(
        self: MediaJobsError, message: str, fields: Mapping[str, Any] | None = None
    ) -> None:
        MediaJobsError.__init__(self, message)
        values = dict(fields or {})
        if isinstance(self, _exceptions.APIError):
            self.response = None
        for name, value in values.items():
            setattr(self, name, value)
        self.args = (message, values)

    def __str__(self: MediaJobsError) -> str:
        return self.message

    name = f"Remote{cls.__name__}"
    portable = type(
        name,
        (cls,),
        {
            "__init__": __init__,
            "__str__": __str__,
            "__module__": __name__,
            "__qualname__": name,
            "__doc__": f"A :class:`~mediajobs.{cls.__name__}` raised by a task; job data as dicts.",
        },
    )
    globals()[name] = portable  # found by name when a result backend rebuilds the error
    return portable


for _name in _exceptions.__all__:
    _cls = getattr(_exceptions, _name)
    if isinstance(_cls, type) and issubclass(_cls, MediaJobsError):
        _PORTABLE[_cls] = _portable_class(_cls)


def _plain(value: Any) -> Any:
    """A JSON-ready form of an error attribute: job handles and snapshots become dicts."""
    if isinstance(value, JobData):
        return value.model_dump(mode="json")
    if hasattr(value, "to_dict") and hasattr(value, "raw_status"):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def portable_error(exc: MediaJobsError) -> MediaJobsError:
    """Return ``exc`` as an error that crosses Celery's JSON result backend intact.

    The copy is an instance of a subclass of ``exc``'s own class (so ``except
    mj.JobFailedError`` still catches it on the caller's side) whose arguments are its message
    and a dictionary of its attributes; job handles become ``job.to_dict()`` dictionaries, and
    an ``APIError``'s ``response`` is dropped.

    Args:
        exc: The error.

    Returns:
        The portable copy (``exc`` itself if it already is one).
    """
    cls = type(exc)
    if cls in _PORTABLE.values():
        return exc
    portable = _PORTABLE.get(cls)
    if portable is None:
        base = next(c for c in cls.__mro__ if c in _PORTABLE)
        portable = _PORTABLE[base]
    fields = {
        name: _plain(value)
        for name, value in vars(exc).items()
        if name not in ("message", "response") and not name.startswith("_")
    }
    return portable(exc.message, fields)  # type: ignore[call-arg]


def _fail(exc: MediaJobsError) -> NoReturn:
    """Raise ``exc`` as a :func:`portable_error` (caused by the original)."""
    portable = portable_error(exc)
    if portable is exc:
        raise exc
    raise portable from exc


# --------------------------------------------------------------------------- the tasks


def _state(
    job: Job, spec: Mapping[str, Any], *, polls: int, deadline: float | None
) -> dict[str, Any]:
    return {
        "job": job.to_dict(),
        "dest_dir": spec["dest_dir"],
        "polls": polls,
        "deadline": deadline,
    }


@_task("mediajobs.run_job")
def run_job(
    self: Task,
    *,
    provider: str,
    kind: str,
    model: str,
    dest_dir: str,
    prompt: str | None = None,
    key: str | None = None,
    labels: Mapping[str, str] | None = None,
    **params: Any,
) -> NoReturn:
    """Submit a job, wait for it and download its files: the whole run, under this task's id.

    The task replaces itself at once with :func:`submit_job`, which is followed by
    :func:`poll_job` as often as needed and then :func:`download_job`, all under this task's
    id: its ``AsyncResult.get()`` returns ``{"job": job.to_dict(), "files": [paths]}``, and a
    ``link=`` callback receives that dictionary.

    Args:
        self: The task (bound).
        provider: The provider's name (its client comes from :func:`configure`).
        kind: The job kind.
        model: The model.
        dest_dir: Where the files go, on a volume every worker sees.
        prompt: The prompt.
        key: Your stable name for the job; default: derived from this task's id, so that
            a redelivered task never submits twice.
        labels: Labels recorded with the job (in the job store, when there is one).
        **params: Provider parameters, as for ``client.submit`` (JSON values; input files
            as paths the workers can read).

    Raises:
        JobFailedError: The job failed (``.job`` is the job's dictionary); likewise
            ``JobCancelledError``, ``JobExpiredError`` and ``WaitTimeoutError``.
        MediaJobsError: Any other failure, typed as by the client.
    """
    spec = {
        "provider": provider,
        "kind": kind,
        "model": model,
        "prompt": prompt,
        "params": params,
        "key": key or f"celery-{self.request.id}",
        "labels": dict(labels) if labels else None,
        "dest_dir": os.fspath(dest_dir),
    }
    raise self.replace(submit_job.si(spec))


@_task("mediajobs.submit_job")
def submit_job(self: Task, spec: dict[str, Any]) -> NoReturn:
    """Submit the job of a :func:`run_job` call (once per key), then schedule its first poll.

    Args:
        self: The task (bound).
        spec: What :func:`run_job` was asked.

    Raises:
        MediaJobsError: When the submit fails (as a :func:`portable_error`).
    """
    try:
        client = _client(spec["provider"])
        job = _submit(client, spec)
    except MediaJobsError as exc:
        _fail(exc)
    timeout = client._settings.wait_timeout
    deadline = None if timeout is None else time.time() + timeout
    _next_poll(self, client, _state(job, spec, polls=0, deadline=deadline), hint=None)


def _next_poll(
    self: Task, client: Client, state: dict[str, Any], *, hint: float | None
) -> NoReturn:
    """Replace the running task with the next poll, due after the policy's delay."""
    settings = client._settings
    delay = settings.poll.next_delay(state["polls"], hint=hint, rand=settings.random())
    deadline = state["deadline"]
    if deadline is not None:
        delay = max(min(delay, deadline - time.time()), 0.0)
    raise self.replace(poll_job.si(state).set(countdown=delay))


@_task("mediajobs.poll_job")
def poll_job(self: Task, state: dict[str, Any]) -> NoReturn:
    """Read a job's status once; schedule the next poll, or the download once it succeeded.

    Args:
        self: The task (bound).
        state: The job's data, destination, poll count and deadline (wall-clock seconds).

    Raises:
        JobError: The job failed, was cancelled or expired (as a :func:`portable_error`).
        WaitTimeoutError: The client's ``wait_timeout`` passed first.
        MediaJobsError: When the status cannot be read.
    """
    try:
        client = _client(state["job"]["provider"])
        job = client.job_from_dict(state["job"])
        data, hint = client._run(_poll_once(client, job.data))
        job = Job(data, client)
        if data.done:
            error = outcome_error(job, data)
            if error is not None:
                _fail(error)
            raise self.replace(download_job.si({**state, "job": job.to_dict()}))
        deadline = state["deadline"]
        if deadline is not None and time.time() >= deadline:
            _fail(wait_timeout_error([(job, data)], client._settings.wait_timeout))
    except MediaJobsError as exc:
        _fail(exc)
    _next_poll(
        self, client, {**state, "job": job.to_dict(), "polls": state["polls"] + 1}, hint=hint
    )


def _existing_files(dest_dir: Path, job: Job) -> list[Path] | None:
    """The files an earlier run of the download wrote for every artifact, else ``None``."""
    if not job.artifacts or not dest_dir.is_dir():
        return None
    names = os.listdir(dest_dir)
    found: list[Path] = []
    for artifact in job.artifacts:
        pattern = re.compile(re.escape(safe_stem(job.id, artifact.index)) + r"\.[a-z0-9]{1,10}")
        match = sorted(n for n in names if pattern.fullmatch(n))
        if not match:
            return None
        found.append(dest_dir / match[0])
    return found


@_task("mediajobs.download_job")
def download_job(self: Task, state: dict[str, Any]) -> dict[str, Any]:
    """Download a succeeded job's files (unless a run before this one already wrote them).

    Args:
        self: The task (bound).
        state: The job's data and destination (``{"job": ..., "dest_dir": ...}``).

    Returns:
        ``{"job": job.to_dict(), "files": [paths]}``.

    Raises:
        DownloadError: When an artifact cannot be fetched completely or written.
        JobError: When the job did not succeed.
    """
    try:
        client = _client(state["job"]["provider"])
        job = client.job_from_dict(state["job"])
        dest_dir = Path(state["dest_dir"])
        files = _existing_files(dest_dir, job)
        if files is None:
            files = client.download(job, dest_dir, overwrite=True)
    except MediaJobsError as exc:
        _fail(exc)
    return {"job": job.to_dict(), "files": [os.fspath(path) for path in files]}


def finish_from_webhook(event: Any, dest_dir: str | os.PathLike[str]) -> Any:
    """Enqueue the download of a job a webhook says succeeded, without waiting for its poll.

    Call it from your webhook handler with the verified event (``client.parse_webhook``). The
    files are written at once; the job's :func:`run_job`, at its next poll, finds them there
    and completes with them (nothing is downloaded twice).

    Args:
        event: A verified :class:`~mediajobs.WebhookEvent` (or anything with a ``.job``).
        dest_dir: The directory the job's :func:`run_job` writes to.

    Returns:
        The download task's ``AsyncResult``, or ``None`` when the job did not succeed (the
        poll reports that).
    """
    job = event.job
    if job.status.value != "succeeded":
        return None
    return download_job.delay({"job": job.to_dict(), "dest_dir": os.fspath(dest_dir)})
