"""A throw-away PostgreSQL server for the store's tests.

``postgres_server`` (session scope) runs ``initdb`` and ``pg_ctl`` from the Debian/Ubuntu
layout (``/usr/lib/postgresql/<version>/bin``) or ``PATH`` in a temporary directory, as the
``postgres`` user when the tests run as root, listening on a free loopback port with trust
authentication, and yields the URL of a fresh database; the cluster is stopped and removed at
the end. ``MEDIAJOBS_TEST_POSTGRES_URL`` points the tests at an existing server instead.

Without the binaries the tests skip, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

__all__ = [
    "find_pg_bin",
    "postgres_schema_url",
    "postgres_server",
    "require_pg_bin",
    "running_cluster",
    "store_target",
]


def find_pg_bin() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, newest version first."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parts[-3].split(".")],
        reverse=True,
    )
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *cmd]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(map(quote_sh, cmd))]


def quote_sh(arg: str) -> str:
    """Quote one argument for ``sh -c``."""
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def _run(cmd: list[str]) -> None:
    result = subprocess.run(_as_postgres(cmd), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({result.returncode}): {result.stderr[-2000:]}")


@contextlib.contextmanager
def running_cluster(bindir: Path, *, durable: bool = False) -> Iterator[str]:
    """Run a private server; yield the URL of its fresh ``mediajobs_test`` database.

    Args:
        bindir: Where ``initdb`` and ``pg_ctl`` are.
        durable: Keep ``fsync`` and synchronous commits on (for measurements); tests turn
            them off for speed.
    """
    import psycopg

    # As root the server runs as ``postgres``, which must reach the directory: /tmp, not a
    # private TMPDIR.
    parent = "/tmp" if os.geteuid() == 0 and os.path.isdir("/tmp") else None
    root = Path(tempfile.mkdtemp(prefix="mediajobs-pg-", dir=parent))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data, log = root / "data", root / "server.log"
    port = _free_port()
    started = False
    try:
        _run(
            [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
             "-E", "UTF8", "--locale=C", "--no-sync"]
        )  # fmt: skip
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=100"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        _run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]
        )
        started = True
        base = f"postgresql://postgres@127.0.0.1:{port}"
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE mediajobs_test")
        yield f"{base}/mediajobs_test"
    finally:
        if started:
            with contextlib.suppress(RuntimeError):
                _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Yield the URL of a database on a private PostgreSQL server (trust auth, loopback)."""
    external = os.environ.get("MEDIAJOBS_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    with running_cluster(require_pg_bin()) as url:
        yield url


def require_pg_bin() -> Path:
    """Find the server binaries; without them skip, or fail under CI (``CI`` set)."""
    bindir = find_pg_bin()
    if bindir is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) not found"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must install the postgresql package", pytrace=False)
        pytest.skip(message)
    return bindir


@contextlib.contextmanager
def postgres_schema_url(server_url: str) -> Iterator[str]:
    """Make a fresh schema on the server; yield a URL whose ``search_path`` is that schema."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in server_url else "?"
    try:
        yield f"{server_url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield a fresh store target: an SQLite path, then a PostgreSQL schema's URL."""
    if request.param == "sqlite":
        yield str(tmp_path / "jobs.db")
        return
    server = request.getfixturevalue("postgres_server")
    with postgres_schema_url(server) as url:
        yield url
