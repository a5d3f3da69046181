"""``mediajobs batch`` killed with SIGKILL at many points, then run again to completion.

Each test serves a fake in this process (it honours ``Idempotency-Key``), runs the real
command in a subprocess, kills it at a moment observed on the fake or on disk, and runs the
same command again. After that second run: every job was created once, every file is the
fake's artifact byte for byte, no part file is left, and ``mediajobs jobs`` shows every job
succeeded and downloaded.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch_support import HoldingFake, wait_until, write_batch
from cli_support import clean_env, fake_options, run
from mediajobs import JobStatus
from mediajobs._store import JobStore
from mediajobs.testing import FakeServer, Scenario

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

PROVIDERS = ["therouter", "worldrouter", "openrouter", "onerouter"]
"""Every provider for the kills whose recovery goes through its wire (submit replay, files)."""
ONE = ["openrouter"]
"""One provider for the kills whose recovery is the same for all (the store decides)."""
LINES = 3


class Clock:
    """The fake's clock: jobs progress only when a test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> HoldingFake:
    return HoldingFake(clock=clock, scenario=Scenario(artifact_size=8192))


@pytest.fixture
def server(fake: HoldingFake) -> Iterator[FakeServer]:
    with FakeServer(fake) as served:
        yield served


def command(server: FakeServer, provider: str, batch: Path, out: Path) -> list[str]:
    options = fake_options(server, provider, poll_interval="0.02")
    return [
        sys.executable,
        "-m",
        "mediajobs",
        *options,
        "--json",
        "batch",
        str(batch),
        "--out",
        str(out),
    ]


def start(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env()
    )


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(10) == -signal.SIGKILL


def finish(argv: list[str]) -> list[dict[str, Any]]:
    done = subprocess.run(
        argv, capture_output=True, text=True, env=clean_env(), timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def part_files(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if ".part-" in p.name)


def assert_complete(fake: HoldingFake, out: Path, results: list[dict[str, Any]]) -> None:
    assert len(results) == LINES
    assert fake.submissions == LINES  # no job was created twice
    assert {r["id"] for r in results} == set(fake.jobs)
    for result in results:
        assert result["status"] == "succeeded"
        assert result["error"] is None
        (path,) = result["files"]
        assert Path(path).read_bytes() == fake.artifact_bytes(result["id"])
    assert part_files(out) == []
    listed = run("jobs", "--store", str(out / ".mediajobs.db"), "--json", env=clean_env())
    assert listed.returncode == 0, listed.stderr
    stored = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(stored) == LINES
    assert all(s["status"] == "succeeded" and s["downloaded"] for s in stored)


def kill_while_held(fake: HoldingFake, argv: list[str], hold: str) -> list[dict[str, Any]]:
    """Run, kill the run while the fake holds a submit (``hold_before``/``hold_after``), rerun."""
    setattr(fake, hold, True)
    process = start(argv)
    wait_until(fake.held.is_set, "a held submit")
    assert fake.submissions == (1 if hold == "hold_after" else 0)
    kill(process)
    setattr(fake, hold, False)
    fake.release.set()
    results = finish(argv)
    assert any(r["resent"] for r in results)  # its sender died: sent again, same key
    return results


@pytest.mark.parametrize("provider", ONE)
def test_killed_before_the_submit_arrives(
    tmp_path: Path, server: FakeServer, fake: HoldingFake, provider: str
) -> None:
    argv = command(server, provider, write_batch(tmp_path / "b.jsonl", provider, LINES), tmp_path)
    results = kill_while_held(fake, argv, "hold_before")
    assert_complete(fake, tmp_path, results)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_killed_while_the_answer_is_held(
    tmp_path: Path, server: FakeServer, fake: HoldingFake, provider: str
) -> None:
    argv = command(server, provider, write_batch(tmp_path / "b.jsonl", provider, LINES), tmp_path)
    results = kill_while_held(fake, argv, "hold_after")
    assert fake.replays >= 1  # the re-sent submit got the job its lost answer carried
    assert_complete(fake, tmp_path, results)


@pytest.mark.parametrize("provider", ONE)
def test_killed_mid_wait(
    tmp_path: Path, server: FakeServer, fake: HoldingFake, clock: Clock, provider: str
) -> None:
    fake.scenario = Scenario(seconds_per_step=1.0, artifact_size=8192)  # stalls: clock frozen
    argv = command(server, provider, write_batch(tmp_path / "b.jsonl", provider, LINES), tmp_path)
    process = start(argv)
    # Every job accepted and polled at least once: the run is waiting.
    wait_until(lambda: fake.submissions == LINES, "every submit")
    wait_until(lambda: sum(r.method == "GET" for r in fake.requests) >= 2 * LINES, "polls")
    kill(process)
    with JobStore(tmp_path / ".mediajobs.db") as store:
        assert len(store.jobs(provider, status=JobStatus.QUEUED)) == LINES
    clock.now = 100.0  # every job is done at its next poll
    results = finish(argv)
    assert not any(r["resent"] for r in results)
    assert_complete(fake, tmp_path, results)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_killed_mid_download(
    tmp_path: Path, server: FakeServer, fake: HoldingFake, provider: str
) -> None:
    fake.scenario = Scenario(artifact_size=512 * 1024)  # done at the first poll
    fake.trickle = 0.002
    argv = command(server, provider, write_batch(tmp_path / "b.jsonl", provider, LINES), tmp_path)
    process = start(argv)
    wait_until(lambda: any(p.stat().st_size for p in part_files(tmp_path)), "a partial file")
    kill(process)
    assert part_files(tmp_path)
    with JobStore(tmp_path / ".mediajobs.db") as store:
        complete = [s.job_id for s in store.jobs(provider, downloaded=True) if s.job_id]
    served = {job_id: job.bytes_served for job_id, job in fake.jobs.items()}
    fake.trickle = None
    results = finish(argv)
    for job_id in complete:  # a file complete and recorded is not fetched again
        assert fake.jobs[job_id].bytes_served == served[job_id]
    assert_complete(fake, tmp_path, results)


# ----------------------------------------------------------------------------- sync client

SYNC_SCRIPT = """
import sys
from mediajobs import Client, PollPolicy

base_url, store, out, phase = sys.argv[1:5]
poll = PollPolicy.fixed(0.02)
with Client("openrouter", base_url=base_url, api_key="test-key", store=store, poll=poll) as client:
    if phase == "start":
        jobs = [
            client.submit("video", model="m", prompt=f"clip {i}", key=f"clip-{i}")
            for i in range(3)
        ]
    else:  # resume: everything the store holds that is not downloaded yet
        jobs = client.jobs(downloaded=False)
    for job in client.wait_all(jobs):
        client.download(job, out)
"""


def sync_run(server: FakeServer, tmp_path: Path, phase: str) -> list[str]:
    script = tmp_path / "jobs_script.py"
    script.write_text(SYNC_SCRIPT, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    store = tmp_path / "jobs.db"
    return [sys.executable, str(script), server.base_url, str(store), str(out), phase]


def assert_sync_complete(fake: HoldingFake, tmp_path: Path, stale: list[Path]) -> None:
    assert fake.submissions == LINES
    listed = run("jobs", "--store", str(tmp_path / "jobs.db"), "--json", env=clean_env())
    stored = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(s["key"] for s in stored) == [f"clip-{i}" for i in range(LINES)]
    for entry in stored:
        assert entry["status"] == "succeeded" and entry["downloaded"]
        (file,) = entry["files"]
        assert Path(file["path"]).read_bytes() == fake.artifact_bytes(entry["id"])
    # The resumed run leaves no part file of its own, and the killed process's part files are
    # gone too: nobody held their lock any more, so the resumed download deleted them.
    assert all(not path.exists() for path in stale)
    assert part_files(tmp_path / "out") == []


def test_sync_client_killed_mid_wait_then_resumed(
    tmp_path: Path, server: FakeServer, fake: HoldingFake, clock: Clock
) -> None:
    fake.scenario = Scenario(seconds_per_step=1.0, artifact_size=8192)  # stalls: clock frozen
    process = start(sync_run(server, tmp_path, "start"))
    wait_until(lambda: fake.submissions == LINES, "every submit")
    wait_until(lambda: sum(r.method == "GET" for r in fake.requests) >= 2 * LINES, "polls")
    kill(process)
    clock.now = 100.0
    resumed = subprocess.run(
        sync_run(server, tmp_path, "resume"), env=clean_env(), timeout=60, check=False
    )
    assert resumed.returncode == 0
    assert_sync_complete(fake, tmp_path, [])


def test_sync_client_killed_mid_download_then_resumed(
    tmp_path: Path, server: FakeServer, fake: HoldingFake
) -> None:
    fake.scenario = Scenario(artifact_size=512 * 1024)
    fake.trickle = 0.002
    process = start(sync_run(server, tmp_path, "start"))
    out = tmp_path / "out"
    wait_until(
        lambda: out.is_dir() and any(p.stat().st_size for p in part_files(out)), "a partial file"
    )
    kill(process)
    stale = part_files(out)
    fake.trickle = None
    resumed = subprocess.run(
        sync_run(server, tmp_path, "resume"), env=clean_env(), timeout=60, check=False
    )
    assert resumed.returncode == 0
    assert_sync_complete(fake, tmp_path, stale)


def test_ctrl_c_mid_wait_then_rerun(
    tmp_path: Path, server: FakeServer, fake: HoldingFake, clock: Clock
) -> None:
    fake.scenario = Scenario(seconds_per_step=1.0, artifact_size=8192)  # stalls: clock frozen
    argv = command(
        server, "openrouter", write_batch(tmp_path / "b.jsonl", "openrouter", LINES), tmp_path
    )
    argv.remove("--json")
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=clean_env())
    wait_until(lambda: fake.submissions == LINES, "every submit")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "run the same command again" in stderr
    clock.now = 100.0
    argv.append("--json")
    assert_complete(fake, tmp_path, finish(argv))
