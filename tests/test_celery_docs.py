"""docs/celery.md's walkthrough runs as written: Redis, the fake, a worker killed mid-run.

The page's files (``<!-- not-run: saved as NAME ... -->`` blocks) are written to a scratch
directory and its ``bash`` blocks run there, in order, as one script, with two changes only:
the ports (6379, 8123) become free ones, and the tools on ``PATH`` are this interpreter's.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from redis_server import free_port, require_redis_server
from test_docs_examples import extract_blocks

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "celery.md"
SAVED_AS = re.compile(r"saved as (\S+)")

pytestmark = pytest.mark.e2e


def walkthrough() -> tuple[dict[str, str], str]:
    blocks = extract_blocks(PAGE)
    start = next(i for i, b in enumerate(blocks) if b.not_run and SAVED_AS.search(b.not_run))
    files = {}
    script = []
    for block in blocks[start:]:
        if block.not_run and (saved := SAVED_AS.search(block.not_run)):
            files[saved.group(1)] = block.source
        elif block.language == "bash":
            script.append(block.source)
    return files, "\n".join(script)


def free_pair() -> int:
    """A port whose next one is free too (the fake's storage origin)."""
    for _ in range(50):
        port = free_port()
        with contextlib.suppress(OSError), socket.socket() as sock:
            sock.bind(("127.0.0.1", port + 1))
            return port
    raise RuntimeError("no two free ports in a row")


def test_the_walkthrough_runs_as_written_and_every_file_arrives_once(tmp_path: Path) -> None:
    require_redis_server()
    files, script = walkthrough()
    assert set(files) == {"tasks.py", "enqueue.py", "collect.py"}
    assert "kill -9" in script
    redis_port, fake_port = free_port(), free_pair()

    def ports(text: str) -> str:
        return text.replace("6379", str(redis_port)).replace("8123", str(fake_port))

    for name, source in files.items():
        (tmp_path / name).write_text(ports(source))
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    run = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", ports(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = run.communicate(timeout=110)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, 9)
        subprocess.run(
            ["redis-cli", "-p", str(redis_port), "shutdown", "nosave"],
            capture_output=True,
            check=False,
        )
    logs = "".join(p.read_text() for p in sorted(tmp_path.glob("*.log")))
    assert run.returncode == 0, output + logs
    assert "20 jobs done, 20 files, 20 distinct" in output, output + logs
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(written) == 20
    assert len({name.rsplit("_", 1)[0] for name in written}) == 20
