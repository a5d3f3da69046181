"""Shared helpers for the benchmarks: the served fake in a subprocess, measurements, tables.

Nothing here asserts anything about time; the scripts only print what they measured.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

API_KEY = "test-key"
"""The only key the fake provider accepts."""

_SERVER_CODE = """
import json
import socket
import sys

import uvicorn

from mediajobs.testing import _server, serve

if "--server-defaults" not in sys.argv:
    # Two workarounds for the fake server as shipped (see docs/performance.md, "Defects"):
    # 1. mediajobs/testing/_server.py _listen() creates the listening socket without
    #    IPPROTO_TCP, so asyncio never sets TCP_NODELAY on accepted connections and every
    #    response on a reused keep-alive connection waits ~40 ms for a delayed ACK.
    #    On Linux an accepted socket inherits TCP_NODELAY from the listening socket.
    _original_listen = _server._listen

    def _listen(host, port):
        sock = _original_listen(host, port)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    _server._listen = _listen

    # 2. uvicorn closes idle keep-alive connections after 5 s, exactly httpx's default
    #    keepalive_expiry: a request sent on a connection the server is closing fails with
    #    ReadError, and a submit (a paid POST) is rightly not retried.
    class _Config(uvicorn.Config):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("timeout_keep_alive", 30)
            super().__init__(*args, **kwargs)

    uvicorn.Config = _Config


def ready(server):
    print(json.dumps({"base_url": server.base_url, "storage_url": server.storage_url}), flush=True)


serve("127.0.0.1", 0, on_ready=ready)
"""


# ----------------------------------------------------------------------------- machine


def machine_summary() -> str:
    """One line describing the machine: cores, CPU model, RAM, Python, OS."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} cores, {model}, {ram:.1f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.platform(terse=True)}"
    )


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise the soft open-files limit towards ``wanted`` (up to the hard limit).

    Returns:
        The soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ----------------------------------------------------------------------------- memory / CPU


def rss_now() -> int:
    """The current resident set size of this process, in bytes."""
    return int(psutil.Process().memory_info().rss)


def _vm_hwm(pid: int | str = "self") -> int | None:
    """``VmHWM`` (peak RSS of the current program image) from /proc, in bytes."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def peak_rss() -> int:
    """The peak resident set size of this process so far, in bytes.

    Linux ``VmHWM`` is used rather than ``ru_maxrss``: after ``exec`` the latter still
    includes the RSS of the parent that forked us (the kernel carries the old image's
    high-water mark over), which would hide a child's own, smaller peak.
    """
    hwm = _vm_hwm()
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_seconds() -> float:
    """CPU seconds (user + system) this process used so far, all threads."""
    return time.process_time()


# ----------------------------------------------------------------------------- served fake


class ServedFake:
    """The fake provider served over loopback HTTP by uvicorn, in a separate process.

    The client under measurement then runs alone in its own process: its CPU and memory
    figures do not include the server's. Scenarios are chosen per submit with the
    ``X-Fake-Scenario`` header (see docs/testing.md), which needs no Python in the server.
    """

    def __init__(self, *, server_defaults: bool = False, startup_timeout: float = 30.0) -> None:
        self._server_defaults = server_defaults
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.storage_url = ""

    def __enter__(self) -> ServedFake:
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _SERVER_CODE,
                *(["--server-defaults"] if self._server_defaults else []),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + self._startup_timeout
        line = ""
        while time.monotonic() < deadline and not line:
            line = self._proc.stdout.readline()
            if self._proc.poll() is not None:
                break
        if not line:
            self.__exit__(None, None, None)
            raise RuntimeError("the fake server did not start")
        origins = json.loads(line)
        self.base_url = origins["base_url"]
        self.storage_url = origins["storage_url"]
        return self

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def cpu_seconds(self) -> float:
        """CPU seconds the server process used so far."""
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def __exit__(self, *exc_info: object) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        self._proc = None


# ----------------------------------------------------------------------------- children


@dataclass
class ChildResult:
    """What a measured child process reported, plus the kernel's accounting of it."""

    data: dict[str, Any]
    """The JSON object the child printed last on stdout."""
    max_rss: int
    """The child's ``ru_maxrss`` in bytes (includes this parent's RSS at fork time)."""
    cpu: float
    """The child's user + system CPU seconds (``wait4`` rusage)."""
    wall: float
    """Wall seconds from start to exit."""


def _wait4(
    proc: subprocess.Popen[Any], timeout: float, *, sample: bool = False
) -> tuple[int, Any, int | None]:
    """Wait for a child with ``wait4``, killing it after ``timeout``.

    Args:
        proc: The child.
        timeout: Seconds before it is killed.
        sample: Read its ``VmHWM`` every 5 ms (else check on it every 50 ms, nearly idle).

    Returns:
        Its exit code, its rusage and the last ``VmHWM`` sampled while it ran (its own peak
        RSS; ``ru_maxrss`` would include this parent's RSS at fork time), if sampled.
    """
    deadline = time.monotonic() + timeout
    hwm: int | None = None
    while True:
        now_hwm = _vm_hwm(proc.pid) if sample else None
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage, hwm
        if now_hwm is not None:
            hwm = max(hwm or 0, now_hwm)
        if time.monotonic() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            raise RuntimeError(f"{proc.args!r} timed out after {timeout:g}s")
        time.sleep(0.005 if sample else 0.05)


def run_child_rusage(argv: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run any command; return its wall seconds, peak RSS (bytes, sampled) and exit code."""
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv))
    code, usage, hwm = _wait4(proc, timeout, sample=True)
    return {
        "seconds": time.perf_counter() - start,
        "cpu": usage.ru_utime + usage.ru_stime,
        "max_rss": hwm if hwm is not None else usage.ru_maxrss * 1024,
        "returncode": code,
    }


def run_child(argv: Sequence[str], *, timeout: float) -> ChildResult:
    """Run a command, wait for it with ``wait4`` (its own rusage) and parse its last JSON line.

    Args:
        argv: The command.
        timeout: Seconds before it is killed.

    Returns:
        The child's report.

    Raises:
        RuntimeError: If it fails, times out or prints no JSON.
    """
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out)
        code, usage, _ = _wait4(proc, timeout)
        wall = time.perf_counter() - start
        out.seek(0)
        lines = [line for line in out.read().splitlines() if line.startswith("{")]
    if code != 0 or not lines:
        raise RuntimeError(f"child {list(argv)} failed with exit code {code}")
    cpu = usage.ru_utime + usage.ru_stime
    return ChildResult(json.loads(lines[-1]), usage.ru_maxrss * 1024, cpu, wall)


# ----------------------------------------------------------------------------- output


def mib(n: float) -> str:
    """Bytes as MiB with one decimal."""
    return f"{n / 2**20:.1f}"


def median(values: Sequence[float]) -> float:
    """The median (of a non-empty sequence)."""
    return float(statistics.median(values))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a Markdown table, columns padded so it also reads well in a terminal."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print(line(row))


@contextlib.contextmanager
def timed(label: str) -> Iterator[None]:
    """Print how long a block took (progress output for long runs) on stderr."""
    start = time.perf_counter()
    yield
    print(f"  [{label}: {time.perf_counter() - start:.1f}s]", file=sys.stderr, flush=True)
