"""Which process is sending a submit, and whether that process is gone.

A record in ``submitting`` names its sender (host, boot, process id). Another process may
re-send it at once when it can tell the sender is dead: same host and the process is gone, or
the machine has rebooted since. Otherwise (another host, or a live process that may have taken
the id) only time tells: the record counts as abandoned once it is stale.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

__all__ = ["current_owner", "owner_is_dead"]

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@functools.lru_cache(maxsize=1)
def _host_and_boot() -> tuple[str, str]:
    try:
        boot = _BOOT_ID.read_text().strip()
    except OSError:
        boot = ""
    return socket.gethostname(), boot


def current_owner() -> str:
    """Name this process as a record's sender.

    Returns:
        ``"<host> <boot id> <pid>"`` (the boot id is empty where the system has none).
    """
    host, boot = _host_and_boot()
    return f"{host} {boot} {os.getpid()}"


def owner_is_dead(owner: str | None) -> bool:
    """Tell whether a record's sender surely no longer runs.

    Args:
        owner: What :func:`current_owner` returned in the sender, or ``None`` (unknown).

    Returns:
        ``True`` only when certain: same host, and it rebooted since or the process is gone
        (or has ended and awaits being reaped).
    """
    if not owner:
        return False
    try:
        host, boot, pid_text = owner.split(" ")
        pid = int(pid_text)
    except ValueError:
        return False
    my_host, my_boot = _host_and_boot()
    if host != my_host:
        return False
    if boot and my_boot and boot != my_boot:
        return True
    if pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """Tell whether a process has ended but was not reaped (Linux; ``False`` elsewhere).

    A worker killed with its parent (``kill -9`` of a whole process group) is handed to the
    system's first process, which in containers often never reaps it: it stays a zombie that
    signals still reach, yet it runs no more.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] in ("Z", "X")
