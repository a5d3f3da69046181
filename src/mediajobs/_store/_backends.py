"""The two databases behind the job store: SQLite (stdlib) and PostgreSQL (psycopg 3).

A backend hands out transactions (:class:`Tx`) over pooled connections; the store's SQL is
written once with ``?`` placeholders and runs on both. Every write is one transaction.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

from .._exceptions import ConfigurationError, StoreError

if TYPE_CHECKING:
    import sqlite3

__all__ = ["Backend", "PostgresBackend", "SQLiteBackend", "Tx", "backend_for"]

C = TypeVar("C")

_MAX_IDLE = 8
_abandoned: list[Any] = []
"""Connections inherited over ``fork``: kept referenced so the child never closes the
parent's connection (a PostgreSQL connection closed in the child ends the parent's session)."""
_FORK_AWARE: list[weakref.WeakSet[Any]] = [weakref.WeakSet(), weakref.WeakSet()]
"""Backends, then pools: their locks are taken before a ``fork`` and fresh in the child.

Taking a backend's write lock first means no other thread is inside an SQLite write
transaction when the process forks: the child's SQLite would otherwise believe its process
still holds the database's write lock (SQLite keeps per-process lock state), and its first
write would wait forever."""


def _before_fork() -> None:
    for owners in _FORK_AWARE:
        for owner in list(owners):
            owner.before_fork()


def _after_fork_in_parent() -> None:
    for owners in reversed(_FORK_AWARE):
        for owner in list(owners):
            owner.after_fork_in_parent()


def _after_fork_in_child() -> None:
    for owners in _FORK_AWARE:
        for owner in list(owners):
            owner.forked()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


class Tx:
    """One open transaction: run ``?``-placeholder SQL on it.

    Args:
        cursor: The DB-API cursor.
        convert: Turns ``?`` placeholders into the driver's.
        returning: Whether :meth:`insert` asks for the new row's id with ``RETURNING``
            (PostgreSQL) rather than reading the cursor's ``lastrowid`` (SQLite).
    """

    __slots__ = ("_convert", "_cursor", "_returning")

    def __init__(
        self, cursor: Any, convert: Callable[[str], str], *, returning: bool = False
    ) -> None:
        self._cursor = cursor
        self._convert = convert
        self._returning = returning

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement.

        Args:
            sql: The statement, with ``?`` placeholders.
            params: Their values.

        Returns:
            The number of rows it changed (for ``INSERT``/``UPDATE``/``DELETE``).
        """
        self._cursor.execute(self._convert(sql), tuple(params))
        return int(self._cursor.rowcount)

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        """Run an ``INSERT`` of one row into a table with an ``id`` key; return the row's id.

        Args:
            sql: The statement, with ``?`` placeholders (it may skip the row, e.g.
                ``ON CONFLICT DO NOTHING``).
            params: Their values.

        Returns:
            The new row's ``id``, or ``None`` when no row was inserted.
        """
        if self._returning:
            self._cursor.execute(self._convert(sql + " RETURNING id"), tuple(params))
            row = self._cursor.fetchone()
            return None if row is None else int(row[0])
        self._cursor.execute(self._convert(sql), tuple(params))
        return int(self._cursor.lastrowid) if self._cursor.rowcount == 1 else None

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """Run a query and return its first row.

        Args:
            sql: The query, with ``?`` placeholders.
            params: Their values.

        Returns:
            The first row, or ``None``.
        """
        self._cursor.execute(self._convert(sql), tuple(params))
        row = self._cursor.fetchone()
        return tuple(row) if row is not None else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query and return all its rows.

        Args:
            sql: The query, with ``?`` placeholders.
            params: Their values.

        Returns:
            The rows.
        """
        self._cursor.execute(self._convert(sql), tuple(params))
        return [tuple(row) for row in self._cursor.fetchall()]


class _Pool(Generic[C]):
    """Idle connections for reuse by any thread; one connection serves one thread at a time."""

    def __init__(self, connect: Callable[[], C], close: Callable[[C], None]) -> None:
        self._connect = connect
        self._close = close
        self._idle: list[C] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.closed = False
        _FORK_AWARE[1].add(self)

    def before_fork(self) -> None:
        """Hold the lock across a ``fork`` (no other thread is then changing the pool)."""
        self._lock.acquire()

    def after_fork_in_parent(self) -> None:
        """Release what :meth:`before_fork` took."""
        self._lock.release()

    def forked(self) -> None:
        """In a forked child: a fresh lock (the inherited connections are dropped on use)."""
        self._lock = threading.Lock()

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            _abandoned.extend(self._idle)
            self._idle = []
            self._pid = os.getpid()

    def acquire(self) -> C:
        with self._lock:
            if self.closed:
                raise StoreError("the job store is closed")
            self._check_fork()
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def release(self, conn: C, *, broken: bool = False) -> None:
        with self._lock:
            if self._pid != os.getpid():
                _abandoned.append(conn)
                return
            if not (self.closed or broken) and len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
        with contextlib.suppress(Exception):
            self._close(conn)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._check_fork()
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                self._close(conn)


class Backend(ABC):
    """A database the store runs on."""

    kind: str
    """``"sqlite"`` or ``"postgres"``: selects the dialect of the schema's DDL."""
    json_updates: bool = False
    """Whether one ``UPDATE ... FROM json_each(?)`` may update many rows (SQLite 3.38+)."""
    description: str
    """The store's target as safe to show (no password)."""

    @abstractmethod
    def transaction(
        self, *, write: bool, durable: bool = True
    ) -> contextlib.AbstractContextManager[Tx]:
        """Open one transaction, committed when the block ends without error.

        Args:
            write: Whether it writes (SQLite then takes the write lock up front).
            durable: Whether the commit must survive a power loss (it always survives a
                killed process); ``False`` skips the wait for the disk flush.

        Returns:
            A context manager yielding the :class:`Tx`.
        """

    @abstractmethod
    def migration_lock(self, tx: Tx) -> None:
        """Inside a write transaction, serialize schema migrations across processes.

        Args:
            tx: The transaction.
        """

    @abstractmethod
    def close(self) -> None:
        """Close every idle connection; later calls raise :class:`StoreError`."""


class SQLiteBackend(Backend):
    """An SQLite file in WAL mode, ``synchronous=FULL``, shared by processes on one machine."""

    kind = "sqlite"

    def __init__(self, path: Path, *, timeout: float) -> None:
        import sqlite3  # noqa: PLC0415 - imported on use: ``import mediajobs`` stays lean

        self._sqlite = sqlite3
        self.json_updates = sqlite3.sqlite_version_info >= (3, 38)
        self.path = path
        self.description = str(path)
        self._timeout = timeout
        self._write_lock = threading.Lock()
        self._pool: _Pool[sqlite3.Connection] = _Pool(self._connect, sqlite3.Connection.close)
        self._writer: int | None = None
        """The thread inside a write transaction, if any."""
        self._held_for_fork = False
        _FORK_AWARE[0].add(self)

    def before_fork(self) -> None:
        """Wait for any write transaction of another thread to end, and hold off new ones."""
        self._held_for_fork = self._writer != threading.get_ident()
        if self._held_for_fork:
            self._write_lock.acquire()

    def after_fork_in_parent(self) -> None:
        """Let writes go on."""
        if self._held_for_fork:
            self._held_for_fork = False
            self._write_lock.release()

    def forked(self) -> None:
        """In a forked child: a fresh write lock; no thread of the child is writing."""
        self._write_lock = threading.Lock()
        self._writer = None
        self._held_for_fork = False

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._sqlite.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, self._sqlite.Error) as exc:
            raise StoreError(f"cannot open the job store {self.description}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            self._use_wal(conn)
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except self._sqlite.Error as exc:
            conn.close()
            raise StoreError(f"cannot open the job store {self.description}: {exc}") from exc
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to the WAL journal, retrying while another connection holds the file.

        Two connections switching a new file at once can get "database is locked" at once,
        without SQLite's busy handler ever waiting: retried with jitter until the timeout.
        """
        import tenacity  # noqa: PLC0415 - imported on use, as sqlite3 is

        def locked(exc: BaseException) -> bool:
            return isinstance(exc, self._sqlite.OperationalError) and "locked" in str(exc)

        for attempt in tenacity.Retrying(
            retry=tenacity.retry_if_exception(locked),
            stop=tenacity.stop_after_delay(self._timeout),
            wait=tenacity.wait_random(0.001, 0.02),
            reraise=True,
        ):
            with attempt:
                conn.execute("PRAGMA journal_mode = WAL")

    @contextlib.contextmanager
    def transaction(self, *, write: bool, durable: bool = True) -> Iterator[Tx]:
        """Open one transaction (``BEGIN IMMEDIATE`` for writes), committed at the end.

        Args:
            write: Whether it writes.
            durable: ``False``: commit with ``synchronous=NORMAL`` (the WAL is flushed at the
                next durable commit or checkpoint; a killed process still loses nothing).

        Yields:
            The transaction.

        Raises:
            StoreError: If SQLite fails (locked past the timeout, disk full, corrupt, …).
        """
        conn = self._pool.acquire()
        lock = self._write_lock if write else contextlib.nullcontext()
        relaxed = write and not durable
        try:
            with lock:
                if write:
                    self._writer = threading.get_ident()
                try:
                    if relaxed:
                        conn.execute("PRAGMA synchronous = NORMAL")
                    try:
                        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                        try:
                            yield Tx(conn.cursor(), _same)
                            conn.execute("COMMIT")
                        except BaseException:
                            if conn.in_transaction:
                                conn.rollback()
                            raise
                    finally:
                        if relaxed:
                            conn.execute("PRAGMA synchronous = FULL")
                finally:
                    if write:
                        self._writer = None
        except self._sqlite.Error as exc:
            raise StoreError(f"job store {self.description}: {exc}") from exc
        finally:
            self._pool.release(conn)

    def migration_lock(self, tx: Tx) -> None:
        """Nothing more to do: ``BEGIN IMMEDIATE`` already holds the database's write lock.

        Args:
            tx: The transaction.
        """

    def close(self) -> None:
        """Close the idle connections."""
        self._pool.close()


class PostgresBackend(Backend):
    """A PostgreSQL database reached with psycopg 3 (the ``postgres`` extra)."""

    kind = "postgres"

    def __init__(self, url: str, *, timeout: float) -> None:
        try:
            import psycopg  # noqa: PLC0415 - optional dependency, imported on use
        except ImportError as exc:
            raise ConfigurationError(
                "a postgresql:// store needs psycopg 3: pip install 'mediajobs[postgres]'"
            ) from exc
        self._psycopg = psycopg
        self._url = url
        self.description = redact_url(url)
        self._timeout = timeout
        self._pool: _Pool[Any] = _Pool(self._connect, lambda conn: conn.close())

    def _connect(self) -> Any:
        try:
            return self._psycopg.connect(
                self._url, autocommit=True, connect_timeout=max(1, round(self._timeout))
            )
        except self._psycopg.Error as exc:
            raise StoreError(
                f"cannot connect to the job store {self.description}: "
                f"{_redact_text(str(exc), self._url)}"
            ) from None

    @contextlib.contextmanager
    def transaction(self, *, write: bool, durable: bool = True) -> Iterator[Tx]:
        """Open one transaction, committed at the end.

        Args:
            write: Whether it writes (no difference on PostgreSQL).
            durable: ``False``: commit without waiting for the server's disk flush
                (``synchronous_commit = off`` for this transaction).

        Yields:
            The transaction.

        Raises:
            StoreError: If PostgreSQL fails or the connection is lost.
        """
        conn = self._pool.acquire()
        broken = False
        try:
            with conn.transaction(), conn.cursor() as cursor:
                if not durable:
                    cursor.execute("SET LOCAL synchronous_commit = off")
                yield Tx(cursor, _percent, returning=True)
        except self._psycopg.Error as exc:
            broken = conn.closed or conn.broken
            raise StoreError(
                f"job store {self.description}: {_redact_text(str(exc), self._url)}"
            ) from None
        finally:
            self._pool.release(conn, broken=broken)

    def migration_lock(self, tx: Tx) -> None:
        """Take a transaction-scoped advisory lock that every migrating process waits on.

        Args:
            tx: The transaction.
        """
        tx.one("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK_ID,))

    def close(self) -> None:
        """Close the idle connections."""
        self._pool.close()


_MIGRATION_LOCK_ID = 0x6D656469616A6F62 & 0x7FFFFFFFFFFFFFFF
"""A fixed advisory-lock id (``"mediajob"`` in ASCII) for schema migrations."""


def _same(sql: str) -> str:
    return sql


@functools.lru_cache(maxsize=256)
def _percent(sql: str) -> str:
    return sql.replace("?", "%s")


def redact_url(url: str) -> str:
    """Hide the password of a database URL.

    Args:
        url: A ``postgresql://user:password@host/db`` URL.

    Returns:
        The URL with ``***`` for its password (and for a ``password=`` query parameter).
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hostport}"
    query = "&".join(
        "password=***" if item.lower().startswith("password=") else item
        for item in parts.query.split("&")
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_text(text: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        text = text.replace(parts.password, "***")
    return text


def backend_for(target: str | os.PathLike[str], *, timeout: float) -> Backend:
    """Choose the backend for a store target.

    Args:
        target: A filesystem path (SQLite) or a ``postgresql://`` / ``postgres://`` URL.
        timeout: Seconds to wait for a lock (SQLite) or a connection (PostgreSQL).

    Returns:
        The backend; no connection is opened yet.

    Raises:
        ConfigurationError: If the target is empty or another URL scheme, or the
            ``postgres`` extra is missing for a PostgreSQL URL.
    """
    if isinstance(target, os.PathLike):
        target = os.fspath(target)
    if not isinstance(target, str):
        raise ConfigurationError(
            f"a store is a path or a postgresql:// URL, not {type(target).__name__}"
        )
    if not target or not target.strip():
        raise ConfigurationError("the store path is empty")
    scheme = target.split("://", 1)[0].lower() if "://" in target else ""
    if scheme in ("postgresql", "postgres"):
        return PostgresBackend(target, timeout=timeout)
    if scheme:
        raise ConfigurationError(
            f"unsupported store URL scheme {scheme!r}: use a file path or postgresql://"
        )
    return SQLiteBackend(Path(target).expanduser(), timeout=timeout)
