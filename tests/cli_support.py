"""Helpers for the CLI tests: run ``python -m mediajobs`` as a subprocess, read its output."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from mediajobs.testing import FakeServer

KEY = "test-key"
KEY_VARS = ("THEROUTER_API_KEY", "WORLDROUTER_API_KEY", "OPENROUTER_API_KEY", "ONEROUTER_API_KEY")


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without keys or ``MEDIAJOBS_*`` settings (PYTHONPATH kept)."""
    env = {
        k: v for k, v in os.environ.items() if k not in KEY_VARS and not k.startswith("MEDIAJOBS_")
    }
    if env.get("PYTHONPATH"):
        # Absolute, so that a child run in another directory imports the same code.
        parts = env["PYTHONPATH"].split(os.pathsep)
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) if p else p for p in parts)
    env.update(extra)
    return env


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run the CLI with these arguments."""
    return subprocess.run(
        [sys.executable, "-m", "mediajobs", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def fake_options(server: FakeServer, provider: str, poll_interval: str = "0.05") -> list[str]:
    """The global options that point the CLI at the served fake, polling fast."""
    return [
        "--provider",
        provider,
        "--base-url",
        server.base_url,
        "--api-key",
        KEY,
        "--poll-interval",
        poll_interval,
    ]


def mj(
    server: FakeServer, provider: str, *args: str, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run the CLI with the global options that point it at the served fake."""
    return run(*fake_options(server, provider), *args, **kwargs)


def json_out(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The one JSON object the command printed on stdout."""
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    data: dict[str, Any] = json.loads(lines[0])
    return data


def suggested(text: str) -> list[str]:
    """The ``mediajobs ...`` command quoted in backticks in a hint, as argv after the name."""
    match = re.search(r"`(mediajobs [^`]+)`", text)
    assert match, text
    argv = shlex.split(match.group(1))
    assert argv[0] == "mediajobs"
    return argv[1:]
