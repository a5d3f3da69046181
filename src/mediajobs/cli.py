"""The ``mediajobs`` command: submit, watch, download and cancel jobs from a shell.

Run ``mediajobs --help`` for the commands; ``docs/cli.md`` has examples. Importing this module
is cheap: rich (the ``cli`` extra), the fake provider and uvicorn are imported only by the
commands that draw or serve, and every command works without rich, writing plain lines.

Stdout carries results (a job, its files, a model list) and nothing else; live status lines,
progress bars and error messages go to stderr. With ``--json`` stdout carries exactly one
JSON object per job (or one error object) and nothing else.
"""

# Lazy imports are the point of this module: rich, uvicorn and the fake load only when used.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import re
import shlex
import socket
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from ._client import Client
from ._exceptions import (
    APIConnectionError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    JobError,
    MediaJobsError,
    NotFoundError,
    UnsupportedError,
    WaitTimeoutError,
)
from ._models import KINDS, JobStatus
from ._policy import PollPolicy, RetryPolicy
from ._version import __version__
from .dialects import DIALECTS

FAKE_API_KEY = "test-key"
"""The key the fake provider accepts by default (``FakeProvider(api_key=...)``)."""

if TYPE_CHECKING:
    from ._batch import BatchProgress, LineResult
    from ._client import Job
    from ._store import StoredJob
    from .testing import FakeServer

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_JOB_FAILED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "build_parser",
    "exit_code_for",
    "main",
]

EXIT_OK = 0
"""The command did what was asked."""
EXIT_JOB_FAILED = 1
"""The job failed, was cancelled or expired (:class:`~mediajobs.JobError`)."""
EXIT_USAGE = 2
"""Bad arguments, missing key or provider, or an operation the provider lacks."""
EXIT_TIMEOUT = 3
"""``--timeout`` passed before the job finished; it keeps running at the provider."""
EXIT_API_ERROR = 4
"""The provider refused, the network failed, an answer was malformed or a download broke."""
EXIT_INTERNAL = 70
"""An unexpected error: a bug in mediajobs (the traceback is printed)."""
EXIT_INTERRUPTED = 130
"""Interrupted with Ctrl-C."""

ENV_PROVIDER = "MEDIAJOBS_PROVIDER"
ENV_BASE_URL = "MEDIAJOBS_BASE_URL"
ENV_POLL_INTERVAL = "MEDIAJOBS_POLL_INTERVAL"
ENV_RETRIES = "MEDIAJOBS_RETRIES"

DEMO_DIR = "mediajobs-demo"
DEMO_ARTIFACT_SIZE = 256 * 1024
DEMO_POLL = PollPolicy(initial=0.2, factor=1.5, max_interval=0.5, jitter=0.0)
DEFAULT_MODELS: dict[tuple[str, str], str] = {
    ("therouter", "image"): "openai/gpt-image-1",
    ("worldrouter", "image"): "gpt-image-2",
    ("openrouter", "video"): "google/veo-3.1",
    ("onerouter", "video"): "bytedance/seedance",
}
"""(provider, kind) → the model ``submit`` uses without ``--model``; also the demo's jobs."""
DEMO_PROMPTS: dict[str, str] = {
    "therouter": "a lighthouse at dawn, watercolor",
    "worldrouter": "a red fox in fresh snow",
    "openrouter": "waves rolling onto a beach",
    "onerouter": "a paper boat drifting down a stream",
}

_EPILOG = f"""\
global options may come before or after the command.

environment:
  {ENV_PROVIDER}      provider when --provider is not given
  {ENV_BASE_URL}      base URL when --base-url is not given
  {ENV_POLL_INTERVAL} poll interval in seconds when --poll-interval is not given
  {ENV_RETRIES}       retries of a failed request when --retries is not given
  THEROUTER_API_KEY, WORLDROUTER_API_KEY, OPENROUTER_API_KEY, ONEROUTER_API_KEY
                          the key when --api-key is not given (preferred: argv is visible
                          to other users of the machine)

exit codes:
  {EXIT_OK}    success
  {EXIT_JOB_FAILED}    the job failed, was cancelled or expired
  {EXIT_USAGE}    usage error, missing key or provider, unsupported kind or operation
  {EXIT_TIMEOUT}    --timeout passed first (the job keeps running: `mediajobs wait ID`)
  {EXIT_API_ERROR}    API, connection, protocol or download error
  {EXIT_INTERNAL}   internal error (a bug: please report it)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)

Try `mediajobs demo`: four jobs on the built-in fake provider, no key and no network.
"""

_GLOBAL_DEFAULTS: dict[str, Any] = {
    "provider": None,
    "api_key": None,
    "base_url": None,
    "json": False,
    "verbose": False,
    "poll_interval": None,
    "retries": None,
}


# ----------------------------------------------------------------------------- parser


def _param(text: str) -> tuple[str, Any]:
    """Parse ``--param key=value``; the value is JSON when it parses, else the string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if key in ("model", "prompt", "kind"):
        raise argparse.ArgumentTypeError(f"use --{key}, not --param {key}=...")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def _seconds(text: str) -> float:
    """Parse a non-negative number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def _count(text: str) -> int:
    """Parse a non-negative whole number."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def _global_options() -> argparse.ArgumentParser:
    """The options every command accepts, before or after the command name."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("global options")
    # SUPPRESS keeps a value given before the command from being reset by the subparser.
    default = argparse.SUPPRESS
    group.add_argument(
        "--provider",
        choices=sorted(DIALECTS),
        default=default,
        help=f"the router (default: ${ENV_PROVIDER})",
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        default=default,
        help="API key (default: the provider's variable, e.g. $OPENROUTER_API_KEY)",
    )
    group.add_argument(
        "--base-url",
        metavar="URL",
        default=default,
        help=f"replace the provider's hosts, e.g. a fake server (default: ${ENV_BASE_URL})",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default,
        help="machine output: one JSON object per job (or error) on stdout",
    )
    group.add_argument(
        "--poll-interval",
        metavar="S",
        type=_seconds,
        default=default,
        help=f"poll every S seconds instead of the provider's backoff (${ENV_POLL_INTERVAL})",
    )
    group.add_argument(
        "--retries",
        metavar="N",
        type=_count,
        default=default,
        help="retry a failed status poll or download N times, with backoff "
        f"(default {RetryPolicy().max_attempts - 1}; ${ENV_RETRIES}; 0: fail at the first error)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="log HTTP requests (URLs without query strings), status changes and error "
        "causes to stderr",
    )
    return parent


def _add_wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout", metavar="S", type=_seconds, help="give up waiting after S seconds (exit 3)"
    )


def _add_out_options(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        required=required,
        help="download the artifacts into DIR" + ("" if required else " (implies waiting)"),
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace files that already exist in DIR"
    )


def _add_kind_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kind",
        choices=KINDS,
        help="the job's kind, where the provider's status route depends on it "
        "(WorldRouter, OneRouter: image or video); optional, saves a request",
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the ``mediajobs`` argument parser.

    Returns:
        The parser; ``args.command`` names the command, ``args.handler`` runs it.
    """
    common = _global_options()
    parser = argparse.ArgumentParser(
        prog="mediajobs",
        description="Submit, watch and download long media-generation jobs on AI routers.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"mediajobs {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, handler: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common],
            epilog="Global options may come before or after the command; "
            "exit codes and environment: mediajobs --help.",
        )
        sub.set_defaults(handler=handler)
        return sub

    submit = command("submit", _cmd_submit, "create a job (and optionally wait and download)")
    submit.add_argument("kind", choices=KINDS, metavar="KIND", help=", ".join(KINDS))
    defaults = ", ".join(f"{m} ({p} {k})" for (p, k), m in DEFAULT_MODELS.items())
    submit.add_argument("--model", help=f"the model; default only for: {defaults}")
    submit.add_argument("--prompt", help="the prompt")
    submit.add_argument(
        "--param",
        metavar="KEY=VALUE",
        type=_param,
        action="append",
        default=[],
        help="a provider parameter (repeatable); VALUE is JSON when it parses, else a string",
    )
    submit.add_argument(
        "--image", metavar="PATH", type=Path, action="append", help="an input image (repeatable)"
    )
    submit.add_argument("--file", metavar="PATH", type=Path, help="an input file (audio)")
    submit.add_argument("--wait", action="store_true", help="wait until the job is finished")
    _add_wait_options(submit)
    _add_out_options(submit)

    status = command("status", _cmd_status, "show a job's current state")
    status.add_argument("id", metavar="ID", help="the job id")
    _add_kind_option(status)

    wait = command("wait", _cmd_wait, "wait for a job to finish (and optionally download)")
    wait.add_argument("id", metavar="ID", help="the job id")
    _add_kind_option(wait)
    _add_wait_options(wait)
    _add_out_options(wait)

    download = command("download", _cmd_download, "download a finished job's artifacts")
    download.add_argument("id", metavar="ID", help="the job id")
    _add_kind_option(download)
    _add_out_options(download, required=True)

    cancel = command("cancel", _cmd_cancel, "cancel a job (where the provider can)")
    cancel.add_argument("id", metavar="ID", help="the job id")
    _add_kind_option(cancel)

    command("models", _cmd_models, "list the provider's video models (OpenRouter)")

    serve = command(
        "serve-fake", _cmd_serve_fake, "serve the fake provider on loopback (testing extra)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    serve.add_argument(
        "--storage-port", type=int, help="storage port (default: port + 1; 0 picks one)"
    )
    serve.add_argument(
        "--poll-hint",
        metavar="S",
        type=_seconds,
        default=1.0,
        help="Retry-After sent with every status answer, so clients poll again after S "
        "seconds (default 1; 0 sends none)",
    )
    serve.add_argument(
        "--webhook-secret",
        metavar="S",
        help="send OpenRouter webhooks signed with S to each job's callback_url (loopback "
        "http:// is accepted); jobs then finish on their own, one step a second",
    )

    demo = command(
        "demo", _cmd_demo, "one job per provider on the built-in fake: no key, no network"
    )
    demo.add_argument(
        "--out", metavar="DIR", type=Path, default=Path(DEMO_DIR), help=f"default ./{DEMO_DIR}"
    )
    batch = command(
        "batch", _cmd_batch, "run many jobs from a JSON Lines file, resumably (--out DIR)"
    )
    batch.add_argument("file", metavar="FILE", type=Path, help="JSON Lines: one job a line")
    batch.add_argument(
        "--out", metavar="DIR", type=Path, required=True, help="download every job into DIR"
    )
    batch.add_argument(
        "--store",
        metavar="PATH",
        help=f"the job store: a file or a postgresql:// URL (default DIR/{STORE_NAME})",
    )
    batch.add_argument(
        "--concurrency",
        metavar="N",
        type=_count,
        default=8,
        help="submits and downloads in flight at once (default 8)",
    )
    _add_wait_options(batch)

    jobs = command("jobs", _cmd_jobs, "list the jobs a store holds")
    jobs.add_argument(
        "--store",
        metavar="PATH",
        help=f"the job store: a file or a postgresql:// URL (default ${ENV_STORE}, "
        f"else ./{STORE_NAME})",
    )
    jobs.add_argument(
        "--status",
        choices=[*(s.value for s in JobStatus), *_STORE_STATES],
        help="only jobs in this status (default: all)",
    )
    return parser


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    for name, value in _GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    return args


# ----------------------------------------------------------------------------- display


OnUpdate = Callable[[Any], None]
OnProgress = Callable[[int, int | None], None]


class _Display(Protocol):
    """Live decoration on stderr: a status line while waiting, a bar while downloading."""

    def watch(self, job: Job | None, label: str) -> AbstractContextManager[OnUpdate]:
        """Show the job's status until the block ends; yields the ``on_update`` callback."""

    def transfer(self, label: str) -> AbstractContextManager[OnProgress]:
        """Show download progress until the block ends; yields the ``on_progress`` callback."""


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _duration(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"


class _PlainDisplay:
    """Plain lines on stderr, for pipes, CI logs and machines without rich."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self._lock:
            print(text, file=self._stream, flush=True)

    @contextmanager
    def watch(self, job: Job | None, label: str) -> Iterator[OnUpdate]:
        start = time.monotonic()
        prefix = f"{label}: " if label else ""

        def on_update(current: Any) -> None:
            self._line(f"{prefix}status: {current.status} ({_duration(time.monotonic() - start)})")

        if job is not None:
            on_update(job)
        yield on_update

    @contextmanager
    def transfer(self, label: str) -> Iterator[OnProgress]:
        prefix = f"{label}: " if label else ""
        start = time.monotonic()
        state = {"done": 0, "shown": start}

        def on_progress(done: int, total: int | None) -> None:
            now = time.monotonic()
            state["done"] = done
            if now - state["shown"] < 2.0:  # one line every 2 s at most
                return
            state["shown"] = now
            share = f" of {_size(total)} ({100 * done // total}%)" if total else ""
            self._line(f"{prefix}downloading {_size(done)}{share}")

        yield on_progress
        elapsed = _duration(time.monotonic() - start)
        self._line(f"{prefix}downloaded {_size(state['done'])} ({elapsed})")


class _RichDisplay:
    """A spinner with elapsed time while waiting and a progress bar while downloading."""

    def __init__(self) -> None:
        from rich.console import Console

        self._console = Console(stderr=True)

    @contextmanager
    def watch(self, job: Job | None, label: str) -> Iterator[OnUpdate]:
        from rich.markup import escape
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        prefix = f"{escape(label)} " if label else ""
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self._console,
            transient=True,
        ) as progress:
            described = job.id if job is not None else "job"
            task = progress.add_task(f"{prefix}{escape(described)} waiting", total=None)

            def on_update(current: Any) -> None:
                text = f"{prefix}{escape(current.id)} [bold]{current.status}[/]"
                progress.update(task, description=text)
                elapsed = _duration(progress.tasks[0].elapsed or 0.0)
                progress.console.print(f"  {text} [dim]({elapsed})[/]", highlight=False)

            if job is not None:
                on_update(job)
            yield on_update

    @contextmanager
    def transfer(self, label: str) -> Iterator[OnProgress]:
        from rich.markup import escape
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self._console,
            transient=True,
        ) as progress:
            task = progress.add_task(escape(label or "downloading"), total=None)

            def on_progress(done: int, total: int | None) -> None:
                progress.update(task, completed=done, total=total)

            yield on_progress


def _make_display() -> _Display:
    """Rich on an interactive stderr when rich is installed, plain lines otherwise."""
    if sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
        try:
            return _RichDisplay()
        except ImportError:
            pass
    return _PlainDisplay()


# ----------------------------------------------------------------------------- redaction


_URL_QUERY = re.compile(r"""([A-Za-z][A-Za-z0-9+.-]*://[^\s?#"'<>`]*)\?[^\s#"'<>`]*""")


def _strip_queries(text: str) -> str:
    """Replace the query string of every URL in ``text`` with ``***``.

    Pre-signed artifact URLs carry their signature and credentials in the query string.
    """
    return _URL_QUERY.sub(r"\1?***", text)


class _Redactor:
    """Keeps secrets off stderr and out of logs: the API keys and URL query strings."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        found: set[str] = set()
        for secret in secrets:
            # Short values would blank out ordinary words; a real key is long.
            found.update(s for s in (secret, (secret or "").strip()) if s and len(s) >= 6)
        self._secrets = sorted(found, key=len, reverse=True)

    def keys(self, text: str) -> str:
        """Replace every API key in ``text`` with ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def __call__(self, text: str) -> str:
        """Replace every API key and every URL query string in ``text``."""
        return _strip_queries(self.keys(text))


# ----------------------------------------------------------------------------- logging


class _StderrHandler(logging.Handler):
    """Writes records to the current ``sys.stderr``, so rich can route them above its display."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # a log line must never break the command
            self.handleError(record)


class _LogFormatter(logging.Formatter):
    """One line per record, without keys or URL query strings; concise unless ``-v``."""

    def __init__(self, redact: _Redactor, *, verbose: bool) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s")
        self._redact = redact
        self._verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if not self._verbose and record.levelno >= logging.WARNING:
            text = f"warning: {text}"
        return self._redact(text)


def _configure_logging(verbose: bool, redact: _Redactor) -> Callable[[], None]:
    """Show mediajobs' notices on stderr; with ``-v`` also HTTP requests and debug lines.

    Without ``-v``: the ``mediajobs`` logger's INFO records and above (such as a request being
    retried), one plain line each. With ``-v``: its DEBUG records too (each status change),
    httpx's line per request and any library's warnings, with level and logger name. Every
    line goes through ``redact``: no API key, no URL query string (pre-signed signatures).

    Returns:
        A function that undoes the configuration.
    """
    handler = _StderrHandler()
    handler.setFormatter(_LogFormatter(redact, verbose=verbose))
    levels = {"mediajobs": logging.DEBUG, "httpx": logging.INFO} if verbose else {}
    levels.setdefault("mediajobs", logging.INFO)
    saved = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    target = logging.getLogger() if verbose else logging.getLogger("mediajobs")
    target.addHandler(handler)

    def restore() -> None:
        target.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)

    return restore


# ----------------------------------------------------------------------------- output


_RESUMABLE = frozenset({"submit", "wait", "download"})
"""Commands whose job can be picked up again by a later command."""

_PYTHON_ADVICE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\s*\(it keeps running; resume with client\.wait\([^)]*\)\)"), ""),
    (re.compile(r"\bpass overwrite=True\b"), "pass --overwrite"),
    (re.compile(r"\bpass api_key= or set\b"), "pass --api-key or set"),
)
"""The library's advice in Python terms, and what the command line says instead."""


class _Output:
    """Everything the CLI writes: results on stdout, decoration and errors on stderr.

    It also remembers the job the command is working on (provider, id, kind, last status seen),
    so that any error or interruption names the job and says how to pick it up again.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.json = bool(args.json)
        self.verbose = bool(args.verbose)
        # Belt and braces: the library never formats the key into a message; if anything
        # echoed it anyway, it would not reach the terminal.
        self.redact = _Redactor(
            [args.api_key, *(os.environ.get(cls.env_var) for cls in DIALECTS.values())]
        )
        self.display: _Display = _make_display()
        self.provider: str | None = None
        self.job_id: str | None = None
        self.kind: str | None = None
        self.status: JobStatus | None = None
        self.submitting = False
        """True while a submit request is out: an interruption then may strand a job."""
        self._command: str = args.command
        self._base_url = _base_url(args)
        self._out_dir: Path | None = getattr(args, "out", None)
        self._overwrite = bool(getattr(args, "overwrite", False))

    # -- the job at hand

    def concern(self, provider: str, job_id: str | None = None, kind: str | None = None) -> None:
        """Record the provider and job the command works on, before anything is sent."""
        self.provider = provider
        if job_id is not None:
            self.job_id = job_id
        if kind is not None:
            self.kind = kind

    def track(self, job: Any) -> None:
        """Record a job snapshot (a handle or its data) seen by the command."""
        self.concern(job.provider, job.id, job.kind)
        self.status = JobStatus(job.status)

    def resume(self, exc: BaseException | None = None) -> tuple[str, str] | None:
        """The command that picks the job up again after ``exc`` (or an interruption).

        Returns:
            ``(verb, command)``: ``wait`` for a job that may still be running, ``download`` for
            one that succeeded (with ``--out``); ``None`` when there is nothing to resume.
        """
        if self._command not in _RESUMABLE or not (self.provider and self.job_id):
            return None
        if isinstance(exc, (JobError, NotFoundError, ConfigurationError, UnsupportedError)):
            return None
        status = self.status
        if status is JobStatus.SUCCEEDED:
            if self._out_dir is None:
                return None
            verb = "download"
        elif status is not None and status.is_terminal:
            return None
        else:
            verb = "wait"
        argv = self._command_for(verb)
        if self._out_dir is not None:
            argv += ["--out", str(self._out_dir)]
        clash = isinstance(exc, MediaJobsError) and "already exists" in str(exc)
        if self._overwrite or clash:
            argv.append("--overwrite")
        return verb, shlex.join(argv)

    def _command_for(self, verb: str) -> list[str]:
        """``mediajobs VERB ID`` for the job at hand, with the options that find it again."""
        argv = ["mediajobs", "--provider", str(self.provider), verb, str(self.job_id)]
        if self.kind:
            argv += ["--kind", self.kind]
        if self._base_url:
            argv += ["--base-url", self._base_url]
        return argv

    # -- writing

    def out(self, text: str) -> None:
        """Write a result line to stdout."""
        print(self.redact.keys(text), flush=True)

    def err(self, text: str) -> None:
        """Write a message line to stderr."""
        print(self.redact(text), file=sys.stderr, flush=True)

    def emit(self, obj: Any) -> None:
        """Write one JSON document to stdout."""
        self.out(json.dumps(obj, ensure_ascii=False))

    def job(self, job: Job, paths: Sequence[Path] | None = None) -> None:
        """Show a job: its JSON object, or a summary line and the details that are set.

        Args:
            job: The job.
            paths: The files it was downloaded to, if it was.
        """
        if self.json:
            data = job.to_dict()
            if paths is not None:
                data["paths"] = [str(p) for p in paths]
            self.emit(data)
            return
        what = " ".join(x for x in (job.provider, job.kind, job.model) if x)
        lines = [f"{job.id}  {job.status}  ({what})"]
        if job.raw_status != job.status.value and (self.verbose or not job.done):
            lines.append(f"  raw status  {job.raw_status}")
        if job.error is not None:
            code = f" [{job.error.code}]" if job.error.code else ""
            lines.append(f"  error       {job.error.message}{code}")
        if job.cost is not None:
            lines.append(f"  cost        {job.cost:g}")
        for label, when in (("created", job.created_at), ("completed", job.completed_at)):
            if when is not None:
                lines.append(f"  {label:<11} {when.isoformat()}")
        if paths is not None:
            lines.extend(f"  saved       {p} ({_size(p.stat().st_size)})" for p in paths)
        else:
            for artifact in job.artifacts:
                media = f" {artifact.media_type}" if artifact.media_type else ""
                lines.append(f"  artifact    #{artifact.index}{media} {artifact.url}")
        self.out("\n".join(lines))

    def _report(
        self,
        kind: str,
        message: str,
        code: int,
        *,
        hint: str | None,
        resume: tuple[str, str] | None,
        job: Any = None,
    ) -> None:
        """Write an error: one JSON object on stdout with ``--json``, else stderr lines."""
        if not self.json:
            self.err(f"error: {message}" if kind != "KeyboardInterrupt" else f"\n{message}")
            if hint:
                self.err(f"hint: {hint}")
            return
        body: dict[str, Any] = {
            "type": kind,
            "message": self.redact(message),
            "job_id": self.job_id,
            "provider": self.provider,
        }
        if job is not None and hasattr(job, "to_dict"):
            body["job"] = job.to_dict()
        body["resume"] = resume[1] if resume else None
        body["exit_code"] = code
        self.emit({"error": body})

    def error(self, exc: BaseException, code: int) -> None:
        """Report an error: a JSON error object on stdout with ``--json``, else stderr lines.

        The message names the job it concerns; the hint (``resume`` in JSON) is the exact
        command that picks the job up again, when there is one.

        Args:
            exc: The error.
            code: The exit code it maps to.
        """
        job = getattr(exc, "job", None)
        provider = getattr(exc, "provider", None)
        if job is not None:
            self.track(job)
        elif self.provider is None and isinstance(provider, str):
            self.provider = provider
        text = str(exc)
        for pattern, replacement in _PYTHON_ADVICE:
            text = pattern.sub(replacement, text)
        if self.job_id and self.job_id not in text:
            text = f"{self.provider} job {self.job_id}: {text}"
        resume = self.resume(exc)
        hint = self._hint(exc, resume)
        self._report(type(exc).__name__, text, code, hint=hint, resume=resume, job=job)
        if self.verbose:
            cause = exc.__cause__
            while cause is not None:
                self.err(f"  caused by {type(cause).__name__}: {cause}")
                cause = cause.__cause__

    def interrupted(self, code: int) -> None:
        """Report Ctrl-C: which job keeps running and how to resume it (JSON with ``--json``)."""
        job = f"{self.provider} job {self.job_id}"
        if self.submitting:
            text = (
                "interrupted while submitting: the provider may have created the job "
                "(check before submitting again: a second submit is a second paid job)"
            )
        elif self.job_id is None:
            text = "interrupted"
        elif self.status is JobStatus.SUCCEEDED:
            text = f"interrupted; {job} succeeded"
        elif self.status is not None and self.status.is_terminal:
            text = f"interrupted; {job} is {self.status.value}"
        else:
            text = f"interrupted; {job} keeps running at the provider"
        resume = self.resume()
        hint = None
        if resume is not None:
            verb, command = resume
            action = "download its files with" if verb == "download" else "resume with"
            hint = f"{action} `{command}`"
        self._report("KeyboardInterrupt", text, code, hint=hint, resume=resume)

    def warning(self, message: Warning | str, *_where: Any, **_more: Any) -> None:
        """Show a Python warning as one line, like a logged one (``warnings.showwarning``)."""
        self.err(f"warning: {message}")

    def _hint(self, exc: BaseException, resume: tuple[str, str] | None) -> str | None:
        if resume is not None:
            verb, command = resume
            if verb == "download":
                return f"the job succeeded; download its files with `{command}`"
            return f"the job keeps running at the provider; resume with `{command}`"
        if self.submitting and isinstance(exc, APIConnectionError) and not exc.unsent:
            return (
                "the request may have reached the provider: check for the job before "
                "submitting again (a second submit is a second paid job)"
            )
        if isinstance(exc, AuthenticationError):
            cls = DIALECTS.get(self.provider or "")
            variable = cls.env_var if cls is not None else "the provider's API key variable"
            return f"check --api-key or {variable}"
        if isinstance(exc, ConflictError) and self.job_id is not None:
            status = shlex.join(self._command_for("status"))
            return f"the job's state does not allow this; `{status}` shows it"
        return None


# ----------------------------------------------------------------------------- errors


_EXIT_CODES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int], ...] = (
    (JobError, EXIT_JOB_FAILED),
    (WaitTimeoutError, EXIT_TIMEOUT),
    ((ConfigurationError, UnsupportedError), EXIT_USAGE),
    ((MediaJobsError, OSError), EXIT_API_ERROR),
    (KeyboardInterrupt, EXIT_INTERRUPTED),
)
"""Error class → exit code, most specific first (APIError, APIConnectionError, ProtocolError and
DownloadError are the remaining MediaJobsError kinds; OSError covers local file trouble)."""


def exit_code_for(exc: BaseException) -> int:
    """Return the exit code that reports an error.

    Args:
        exc: The error.

    Returns:
        1 job failed/cancelled/expired, 2 configuration or unsupported, 3 wait timeout,
        4 API/connection/protocol/download (or local I/O) error, 130 interrupted, and
        70 for anything else (a bug).
    """
    for classes, code in _EXIT_CODES:
        if isinstance(exc, classes):
            return code
    return EXIT_INTERNAL


# ----------------------------------------------------------------------------- helpers


def _base_url(args: argparse.Namespace) -> str | None:
    """``--base-url``, else the environment, else ``None`` (the provider's hosts)."""
    return args.base_url or os.environ.get(ENV_BASE_URL) or None


def _make_client(
    args: argparse.Namespace, *, provider: str | None = None, **overrides: Any
) -> Client:
    """Build the client the global options describe.

    Args:
        args: The parsed arguments.
        provider: The provider, instead of ``--provider`` or the environment.
        **overrides: Client arguments that replace the ones derived from ``args``.

    Returns:
        The client (a context manager).

    Raises:
        ConfigurationError: Without a provider or a key, or with a bad base URL or setting.
    """
    name, options = _client_options(args, provider, overrides)
    return Client(name, **options)


def _client_options(
    args: argparse.Namespace, provider: str | None, overrides: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The provider and the client arguments the global options describe (both clients).

    Raises:
        ConfigurationError: Without a provider or a key, or with a bad setting.
    """
    provider = provider or args.provider or os.environ.get(ENV_PROVIDER)
    if not provider:
        raise ConfigurationError(f"no provider: pass --provider or set {ENV_PROVIDER}")
    base_url = _base_url(args)
    api_key = args.api_key or _fake_key_for(provider, base_url)
    cls = DIALECTS.get(provider.lower())
    if not api_key and "api_key" not in overrides and cls and not os.environ.get(cls.env_var):
        raise ConfigurationError(
            f"no API key for {cls.name}: pass --api-key KEY or set {cls.env_var}"
        )
    options: dict[str, Any] = {"api_key": api_key, "base_url": base_url}
    interval = _poll_interval(args)
    if interval is not None:
        options["poll"] = PollPolicy.fixed(interval)
    retries = _setting(args.retries, ENV_RETRIES, _count)
    if retries is not None:
        options["retry"] = RetryPolicy(max_attempts=retries + 1)
    options.update(overrides)
    return provider, options


def _fake_key_for(provider: str, base_url: str | None) -> str | None:
    """The fake provider's key, when no key is configured and the base URL is on loopback.

    ``mediajobs serve-fake`` prints a loopback URL; pointing the CLI at it should need no key.
    No real provider lives on loopback, so this never sends a placeholder to one; a local
    proxy that wants a real key answers 401, which the CLI reports as usual.
    """
    cls = DIALECTS.get(provider.lower())
    if base_url is None or cls is None or os.environ.get(cls.env_var):
        return None
    try:
        host = httpx.URL(base_url).host
    except httpx.InvalidURL:
        return None
    loopback = host == "localhost" or host.startswith("127.") or host in ("::1", "[::1]")
    return FAKE_API_KEY if loopback else None


def _setting(value: Any, variable: str, parse: Callable[[str], Any]) -> Any:
    """An option's value, else the environment variable's (parsed), else ``None``.

    Raises:
        ConfigurationError: The variable holds a bad value.
    """
    if value is not None:
        return value
    text = os.environ.get(variable)
    if not text:
        return None
    try:
        return parse(text)
    except argparse.ArgumentTypeError as exc:
        raise ConfigurationError(f"{variable}: {exc}") from None


def _poll_interval(args: argparse.Namespace) -> float | None:
    """``--poll-interval``, else the environment, else ``None`` (the provider's backoff)."""
    interval = _setting(args.poll_interval, ENV_POLL_INTERVAL, _seconds)
    return None if interval is None else float(interval)


def _check_out_dir(path: Path) -> None:
    """Make sure files can be written into ``--out DIR``, creating it if needed.

    Runs before a job is submitted or waited for, so that a bad directory costs nothing.

    Raises:
        ConfigurationError: ``path`` is not a directory, cannot be created or is not writable.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigurationError(f"--out {path}: exists and is not a directory") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigurationError(f"--out {path}: cannot create the directory: {reason}") from None
    if not path.is_dir():
        raise ConfigurationError(f"--out {path}: not a directory")
    try:
        # A real write: permission bits say nothing for root, nor on read-only mounts.
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigurationError(f"--out {path}: cannot write there: {reason}") from None


def _model(client: Client, kind: str, model: str | None, out: _Output) -> str:
    """The ``--model``, else the default for this provider and kind.

    Raises:
        ConfigurationError: Without ``--model`` where there is no default.
    """
    if model:
        return model
    default = DEFAULT_MODELS.get((client.provider, kind))
    if default is None:
        raise ConfigurationError(f"--model is required for {client.provider} {kind} jobs")
    if not out.json:
        out.err(f"no --model given: using {default}")
    return default


def _wait(
    client: Client,
    out: _Output,
    job: Job | str,
    *,
    timeout: float | None,
    kind: str | None = None,
    label: str = "",
) -> Job:
    """Wait for a job with a live status line.

    Raises:
        JobError: The job did not succeed.
        WaitTimeoutError: ``timeout`` passed first.
        MediaJobsError: The provider or the network failed.
    """
    handle = job if not isinstance(job, str) else client.get(job, kind=kind)
    out.track(handle)
    with out.display.watch(handle, label) as show:

        def on_update(current: Any) -> None:
            out.track(current)
            show(current)

        done = client.wait(handle, timeout=timeout, on_update=on_update)
    out.track(done)
    return done


def _download(
    client: Client, out: _Output, job: Job, dest: Path, *, overwrite: bool, label: str = ""
) -> list[Path]:
    """Download a job's artifacts with a progress bar.

    Raises:
        DownloadError: An artifact could not be fetched or written.
        JobError: The job did not succeed.
    """
    out.track(job)
    with out.display.transfer(label) as on_progress:
        return client.download(job, dest, on_progress=on_progress, overwrite=overwrite)


def _finish(client: Client, out: _Output, args: argparse.Namespace, job: Job | str) -> int:
    """Wait for a job, download it when ``--out`` was given, and show it (submit, wait)."""
    # ``args.kind`` is the job's kind for both commands: submit's KIND, wait's --kind.
    done = _wait(client, out, job, timeout=args.timeout, kind=args.kind)
    paths = _download(client, out, done, args.out, overwrite=args.overwrite) if args.out else None
    out.job(done, paths)
    return EXIT_OK


# ----------------------------------------------------------------------------- commands


def _cmd_submit(args: argparse.Namespace, out: _Output) -> int:
    params: dict[str, Any] = dict(args.param)
    if args.image:
        params["image"] = args.image[0] if len(args.image) == 1 else list(args.image)
    if args.file:
        params["file"] = args.file
    with _make_client(args) as client:
        out.concern(client.provider, kind=args.kind)
        client.dialect.check_kind(args.kind)
        model = _model(client, args.kind, args.model, out)
        if args.out is not None:
            _check_out_dir(args.out)  # before the job is paid for
        out.submitting = True
        job = client.submit(args.kind, model=model, prompt=args.prompt, **params)
        out.submitting = False
        out.track(job)
        if not (args.wait or args.out):
            out.job(job)
            return EXIT_OK
        if not out.json:
            out.err(f"submitted {job.provider} job {job.id}")
        return _finish(client, out, args, job)


def _cmd_status(args: argparse.Namespace, out: _Output) -> int:
    with _make_client(args) as client:
        out.concern(client.provider, args.id, args.kind)
        out.job(client.get(args.id, kind=args.kind))
    return EXIT_OK


def _cmd_wait(args: argparse.Namespace, out: _Output) -> int:
    with _make_client(args) as client:
        out.concern(client.provider, args.id, args.kind)
        if args.out is not None:
            _check_out_dir(args.out)  # before the wait, not after it
        return _finish(client, out, args, args.id)


def _cmd_download(args: argparse.Namespace, out: _Output) -> int:
    with _make_client(args) as client:
        out.concern(client.provider, args.id, args.kind)
        _check_out_dir(args.out)
        job = client.get(args.id, kind=args.kind)
        paths = _download(client, out, job, args.out, overwrite=args.overwrite)
        out.job(job, paths)
    return EXIT_OK


def _cmd_cancel(args: argparse.Namespace, out: _Output) -> int:
    with _make_client(args) as client:
        out.concern(client.provider, args.id, args.kind)
        out.job(client.cancel(args.id, kind=args.kind))
    return EXIT_OK


def _cmd_models(args: argparse.Namespace, out: _Output) -> int:
    with _make_client(args) as client:
        out.concern(client.provider)
        models = [model.raw for model in client.models()]
    if out.json:
        out.emit({"models": models})
        return EXIT_OK
    for model in models:
        out.out(_model_line(model))
    return EXIT_OK


def _model_line(model: dict[str, Any]) -> str:
    facts = []
    if model.get("supported_durations"):
        facts.append("durations " + ", ".join(f"{d}s" for d in model["supported_durations"]))
    if model.get("supported_resolutions"):
        facts.append(", ".join(str(r) for r in model["supported_resolutions"]))
    line = f"{model.get('id', '?'):<28} {model.get('name') or ''}"
    return f"{line}  ({'; '.join(facts)})" if facts else line


def _port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails because something listens there."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _cmd_serve_fake(args: argparse.Namespace, out: _Output) -> int:
    try:
        import uvicorn  # noqa: F401  - only to fail early with a clear message
    except ImportError:
        raise ConfigurationError(
            "serve-fake needs uvicorn: pip install 'mediajobs[testing]'"
        ) from None
    from .testing import FakeProvider, Scenario, serve

    hint = f"{args.poll_hint:g}" if args.poll_hint else None
    # Only a key given here is enforced; otherwise the fake's own default applies.
    strict = {"api_key": args.api_key} if args.api_key else {}
    # With webhooks, jobs must finish without being polled: one step a second.
    step = 1.0 if args.webhook_secret else None
    fake = FakeProvider(
        **strict,
        scenario=Scenario(poll_retry_after=hint, seconds_per_step=step),
        webhook_secret=args.webhook_secret or None,
    )
    storage_port = args.storage_port
    if storage_port is None:
        storage_port = args.port + 1 if args.port else 0

    key_hint = "<your --api-key>" if args.api_key else fake.api_key

    def ready(server: FakeServer) -> None:
        if out.json:
            out.emit({"base_url": server.base_url, "storage_url": server.storage_url})
            return
        out.out(
            f"mediajobs fake provider at {server.base_url} (storage at {server.storage_url})\n"
            f"point a client at it with --base-url {server.base_url} and --api-key {key_hint},"
            f" e.g.\n  mediajobs submit video --provider openrouter --base-url {server.base_url}"
            f" --prompt hi --wait --out out/\n"
            "it speaks all four providers' APIs; Ctrl-C stops it"
        )

    try:
        serve(
            args.host,
            args.port,
            storage_port=storage_port,
            fake=fake,
            on_ready=ready,
        )
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        if args.port and _port_in_use(args.host, args.port):
            message = f"port {args.port} on {args.host} is already in use"
        elif storage_port and _port_in_use(args.host, storage_port):
            message = f"the storage port {storage_port} (--storage-port) is already in use"
        else:
            message = "a port is already in use"
        raise ConfigurationError(f"{message}: pass --port 0 to pick free ports") from exc
    # What a client's retries and re-runs did, visible to whoever stops the fake.
    out.err(
        f"fake provider stopped: {fake.submissions} jobs created; "
        f"{fake.replays} repeated submits answered with their first job"
    )
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace, out: _Output) -> int:
    from .testing import FakeProvider, Scenario

    fake = FakeProvider(scenario=Scenario(artifact_size=DEMO_ARTIFACT_SIZE))
    started = time.monotonic()
    if not out.json:
        out.err(
            f"mediajobs demo: {len(DEFAULT_MODELS)} jobs on the built-in fake provider "
            "(in-process: no key, no network)"
        )
    files: list[Path] = []
    poll = {} if _poll_interval(args) is not None else {"poll": DEMO_POLL}
    with httpx.Client(transport=fake.transport()) as http:
        for (provider, kind), model in DEFAULT_MODELS.items():
            with _make_client(
                args,
                provider=provider,
                api_key=fake.api_key,
                base_url=fake.api_origin,
                http_client=http,
                **poll,
            ) as client:
                job = client.submit(kind, model=model, prompt=DEMO_PROMPTS[provider])
                label = f"{provider} {kind}"
                done = _wait(client, out, job, timeout=60, label=label)
                paths = _download(client, out, done, args.out, overwrite=True, label=label)
                files.extend(paths)
                out.job(done, paths)
    if not out.json:
        total = sum(p.stat().st_size for p in files)
        out.out(
            f"demo done: {len(DEFAULT_MODELS)} jobs succeeded, {len(files)} files, {_size(total)} "
            f"in {args.out}{os.sep} ({_duration(time.monotonic() - started)})"
        )
    _demo_batch(args, out, fake, args.out / "batch", poll)
    return EXIT_OK


def _demo_batch(
    args: argparse.Namespace, out: _Output, fake: Any, directory: Path, poll: dict[str, Any]
) -> None:
    """Run a three-line batch on the in-process fake, then the same batch again (a no-op)."""
    import anyio

    from ._batch import BatchRunner, read_batch
    from ._client import AsyncClient

    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob(STORE_NAME + "*"):  # each demo starts its batch afresh
        leftover.unlink()
    file = directory / "jobs.jsonl"
    prompts = ("a kite over dunes", "rain on a window", "a city at night")
    file.write_text(
        "".join(
            json.dumps({"kind": "video", "model": "google/veo-3.1", "prompt": p}) + "\n"
            for p in prompts
        ),
        encoding="utf-8",
    )
    lines = read_batch(file)

    async def twice() -> tuple[list[LineResult], list[LineResult], int]:
        async with httpx.AsyncClient(transport=fake.transport()) as http:
            overrides = {"api_key": fake.api_key, "base_url": fake.api_origin, **poll}
            name, options = _client_options(args, "openrouter", overrides)
            store = directory / STORE_NAME
            async with AsyncClient(name, http_client=http, store=store, **options) as client:
                first = await BatchRunner(client, directory).run(lines)
                before = len(fake.requests)
                again = await BatchRunner(client, directory).run(lines)
                return first, again, len(fake.requests) - before

    first, again, sent = anyio.run(twice)
    fetched = sum(r.downloaded_now for r in again)
    if out.json:
        out.emit(
            {
                "batch": str(file),
                "jobs": [r.to_json(r.lines[0]) for r in first],
                "rerun": {"requests": sent, "downloads": fetched},
            }
        )
        return
    succeeded = sum(r.succeeded for r in first)
    out.out(
        f"demo batch: {succeeded} of {len(first)} jobs from {file} succeeded, files in "
        f"{directory}{os.sep}\nthe same batch again: {sent} requests sent, {fetched} files "
        f"downloaded (everything was recorded in {directory / STORE_NAME})"
    )


# ----------------------------------------------------------------------------- batch

STORE_NAME = ".mediajobs.db"
"""The store a batch keeps in its output directory unless ``--store`` names another."""
ENV_STORE = "MEDIAJOBS_STORE"
_ENDED = frozenset(
    {*(s.value for s in JobStatus if s.is_terminal), "submit_failed", "submit_unknown"}
)


def _progress_text(progress: BatchProgress) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(progress.statuses.items()) if n)
    return f"{counts}; {progress.files} files, {_size(progress.bytes)} downloaded"


class _BatchDisplay:
    """One live line for a whole batch: rich on an interactive stderr, else a line every 5 s."""

    def __init__(self, *, quiet: bool) -> None:
        self._quiet = quiet
        self._rich: Any = None
        self._task: Any = None
        self._shown = 0.0

    def __enter__(self) -> _BatchDisplay:
        if self._quiet or not sys.stderr.isatty() or os.environ.get("TERM") == "dumb":
            return self
        try:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )
        except ImportError:
            return self
        self._rich = Progress(
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            transient=False,
        )
        self._rich.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.__exit__(None, None, None)

    def update(self, progress: BatchProgress) -> None:
        """Redraw (rich) or print a line at most every 5 s (plain) for these counts."""
        ended = sum(n for status, n in progress.statuses.items() if status in _ENDED)
        if self._rich is not None:
            from rich.markup import escape

            if self._task is None:
                self._task = self._rich.add_task("", total=progress.total)
            description = escape(_progress_text(progress))
            self._rich.update(self._task, completed=ended, description=description)
            return
        now = time.monotonic()
        if self._quiet or now - self._shown < 5.0:
            return
        self._shown = now
        print(f"batch: {ended}/{progress.total} ended; {_progress_text(progress)}", file=sys.stderr)


def _batch_exit(results: Sequence[LineResult]) -> tuple[int, BaseException | None]:
    """The exit code of a batch: 0 all succeeded, 1 some job failed, else the CLI's codes."""
    for result in results:
        if result.exception is not None:
            return exit_code_for(result.exception), result.exception
    if all(r.succeeded for r in results):
        return EXIT_OK, None
    return EXIT_JOB_FAILED, None


def _cmd_batch(args: argparse.Namespace, out: _Output) -> int:
    import anyio

    from ._batch import BatchRunner, check_kinds, lock_directory, read_batch
    from ._client import AsyncClient

    lines = read_batch(args.file)
    provider, options = _client_options(args, None, {})
    options.setdefault("wait_timeout", args.timeout)
    options.setdefault("max_concurrency", max(args.concurrency, 1))
    store_target = args.store or args.out / STORE_NAME
    with _BatchDisplay(quiet=out.json) as display:

        async def run() -> list[LineResult]:
            async with AsyncClient(provider, store=store_target, **options) as client:
                check_kinds(lines, client.dialect.check_kind, str(args.file))
                _check_out_dir(args.out)
                with lock_directory(args.out):
                    runner = BatchRunner(
                        client,
                        args.out,
                        concurrency=args.concurrency,
                        timeout=args.timeout,
                        on_change=display.update,
                    )
                    return await runner.run(lines)

        try:
            results = anyio.run(run)
        except KeyboardInterrupt:
            if not out.json:
                out.err(
                    "hint: run the same command again to finish: nothing accepted is sent twice"
                )
            raise
    by_key = {r.key: r for r in results}
    for line in lines:
        result = by_key[line.key]
        if out.json:
            out.emit(result.to_json(line.number))
        elif line.number == result.lines[0]:
            files = " ".join(str(p) for p in result.files)
            resent = " (re-sent)" if result.resent else ""
            out.out(
                f"{result.key}  {result.status}{resent}  {result.job_id or '-'}  {files}".rstrip()
            )
    code, error = _batch_exit(results)
    problems = [r for r in results if not r.succeeded]
    for result in problems:
        where = f"line {result.lines[0]}" + (f", job {result.job_id}" if result.job_id else "")
        out.err(f"{result.status}: {result.key} ({where}): {result.error or result.status}")
    if not out.json:
        done = sum(r.succeeded for r in results)
        out.err(f"batch: {done} of {len(results)} jobs succeeded; store {store_target}")
        if error is not None and any(r.status == "submit_unknown" for r in results):
            out.err("hint: run the same command again: unknown submits are re-sent with their key")
    return code


_STORE_STATES = ("submit_unknown", "submit_failed", "submitting")


def _cmd_jobs(args: argparse.Namespace, out: _Output) -> int:
    from ._store import JobStore

    target = args.store or os.environ.get(ENV_STORE) or STORE_NAME
    if "://" not in str(target) and not Path(target).exists():
        raise ConfigurationError(f"no job store at {target}: pass --store PATH")
    provider = args.provider
    with JobStore(target) as store:
        if args.status is not None:
            records = store.jobs(provider, status=args.status)
        else:
            records = store.jobs(provider)
            records += store.jobs(provider, status="submit_unknown")
            records += store.jobs(provider, status="submit_failed")
    for record in records:
        if out.json:
            out.emit(_stored_json(record))
            continue
        status = record.status.value if record.job_id and record.status else record.state
        done = "downloaded" if record.downloaded else ""
        out.out(
            f"{record.provider}  {record.key}  {status}  {record.job_id or '-'}  {done}".rstrip()
        )
    return EXIT_OK


def _stored_json(record: StoredJob) -> dict[str, Any]:
    return {
        "provider": record.provider,
        "key": record.key,
        "state": record.state,
        "id": record.job_id,
        "status": record.status.value if record.status else record.state,
        "kind": record.kind,
        "model": record.model,
        "labels": record.labels,
        "files": [
            {"index": f.index, "path": f.path, "size": f.size, "sha256": f.sha256}
            for f in record.files
        ],
        "downloaded": record.downloaded,
        "error": record.error,
        "attempts": record.attempts,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
    }


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mediajobs`` command.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code (see :data:`EXIT_OK` and the other ``EXIT_*`` values).

    Raises:
        SystemExit: From argparse, with code 2, on a usage error (or 0 for ``--help``).
    """
    args = _parse(argv)
    out = _Output(args)
    restore_logging = _configure_logging(args.verbose, out.redact)
    try:
        with warnings.catch_warnings():  # restores showwarning afterwards
            warnings.showwarning = out.warning
            return _run(args, out)
    finally:
        restore_logging()


def _run(args: argparse.Namespace, out: _Output) -> int:
    try:
        code: int = args.handler(args, out)
    except BrokenPipeError:
        # The reader went away (`mediajobs ... | head`): stop quietly, without a second error
        # when Python flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt as exc:
        code = exit_code_for(exc)
        out.interrupted(code)
        return code
    except (MediaJobsError, OSError) as exc:
        code = exit_code_for(exc)
        out.error(exc, code)
        return code
    except Exception as exc:
        traceback.print_exc()
        out.err(f"internal error ({type(exc).__name__}): please report this bug")
        return EXIT_INTERNAL
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
