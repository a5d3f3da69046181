"""``mediajobs batch`` and ``mediajobs jobs`` as a user runs them, against the served fake."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from batch_support import write_batch
from cli_support import clean_env, mj, run
from mediajobs._store import idempotency_key_for
from mediajobs.testing import FakeProvider, FakeServer, Scenario

ROOT = Path(__file__).resolve().parent.parent


def objects(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def batch(
    server: FakeServer, file: Path, out: Path, *more: str, provider: str = "openrouter"
) -> subprocess.CompletedProcess[str]:
    return mj(server, provider, "batch", str(file), "--out", str(out), *more)


def test_malformed_line_stops_before_any_request(
    tmp_path: Path, fake_server: FakeServer, fake_provider: FakeProvider
) -> None:
    file = tmp_path / "jobs.jsonl"
    file.write_text('{"kind": "video", "model": "m"}\n{"kind": "video"\n', encoding="utf-8")
    result = batch(fake_server, file, tmp_path / "out", "--json")
    assert result.returncode == 2
    (error,) = objects(result.stdout)
    assert "jobs.jsonl:2: not JSON" in error["error"]["message"]
    assert fake_provider.requests == []
    assert not (tmp_path / "out").exists()


def test_unsupported_kind_names_its_line(
    tmp_path: Path, fake_server: FakeServer, fake_provider: FakeProvider
) -> None:
    file = tmp_path / "jobs.jsonl"
    file.write_text('{"kind": "video", "model": "m"}\n{"kind": "speech", "model": "m"}\n')
    result = batch(fake_server, file, tmp_path / "out")
    assert result.returncode == 2
    assert "jobs.jsonl:2:" in result.stderr
    assert fake_provider.requests == []


def test_unwritable_out_stops_before_any_request(
    tmp_path: Path, fake_server: FakeServer, fake_provider: FakeProvider
) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("a file, not a directory")
    result = batch(fake_server, write_batch(tmp_path / "j.jsonl", "openrouter", 2), blocker)
    assert result.returncode == 2
    assert "--out" in result.stderr
    assert fake_provider.requests == []


def test_json_results_exit_codes_and_rerun(
    tmp_path: Path, fake_server: FakeServer, fake_provider: FakeProvider
) -> None:
    fake_provider.script(Scenario(outcome="failed"), model="bad")
    file = tmp_path / "jobs.jsonl"
    lines = [
        {"key": "a", "kind": "video", "model": "m", "prompt": "a"},
        {"kind": "video", "model": "m", "prompt": "b"},
        {"key": "a", "kind": "video", "model": "m", "prompt": "a"},
        {"key": "c", "kind": "video", "model": "bad", "prompt": "c"},
    ]
    file.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    out = tmp_path / "out"
    result = batch(fake_server, file, out, "--json")
    assert result.returncode == 1, result.stderr
    first = objects(result.stdout)
    assert [r["line"] for r in first] == [1, 2, 3, 4]
    assert first[0]["id"] == first[2]["id"]
    assert [r["status"] for r in first] == ["succeeded", "succeeded", "succeeded", "failed"]
    assert re.search(r"^failed: c \(line 4, job \S+\): ", result.stderr, re.M)
    for entry in first[:3]:
        (path,) = entry["files"]
        assert Path(path).read_bytes() == fake_provider.artifact_bytes(entry["id"])
        assert entry["error"] is None and entry["resent"] is False
    assert fake_provider.submissions == 3
    requests = len(fake_provider.requests)

    again = batch(fake_server, file, out, "--json")
    assert again.returncode == 1
    assert objects(again.stdout) == first
    assert len(fake_provider.requests) == requests  # nothing sent at all

    listed = run("jobs", "--store", str(out / ".mediajobs.db"), "--json", env=clean_env())
    assert listed.returncode == 0, listed.stderr
    stored = {s["key"]: s for s in objects(listed.stdout)}
    assert set(stored) == {"a", "c", first[1]["key"]}
    assert stored["a"]["downloaded"] and stored["a"]["status"] == "succeeded"
    assert stored["c"]["status"] == "failed" and not stored["c"]["downloaded"]
    (recorded,) = stored["a"]["files"]
    assert recorded["sha256"] == fake_provider.artifact_sha256(first[0]["id"])
    failed = run("jobs", "--store", str(out / ".mediajobs.db"), "--status", "failed")
    assert failed.stdout.split()[:3] == ["openrouter", "c", "failed"]


def test_lost_answer_is_reported_then_resent(
    tmp_path: Path, fake_server: FakeServer, fake_provider: FakeProvider
) -> None:
    fake_provider.script(Scenario(submit_drop_after_record=True), times=1)
    file = tmp_path / "jobs.jsonl"
    file.write_text('{"key": "k", "kind": "video", "model": "m", "prompt": "p"}\n')
    out = tmp_path / "out"
    first = batch(fake_server, file, out, "--json", "--retries", "0")
    assert first.returncode == 4
    (entry,) = objects(first.stdout)
    assert (entry["status"], entry["id"], entry["resent"]) == ("submit_unknown", None, False)
    assert "run the same command again" in first.stderr or "submit_unknown" in first.stderr
    unknown = run("jobs", "--store", str(out / ".mediajobs.db"), "--status", "submit_unknown")
    assert unknown.stdout.split()[:3] == ["openrouter", "k", "submit_unknown"]

    second = batch(fake_server, file, out, "--json")
    assert second.returncode == 0, second.stderr
    (entry,) = objects(second.stdout)
    assert entry["status"] == "succeeded" and entry["resent"] is True
    assert fake_provider.submissions == 1
    assert fake_provider.submits_with_key(idempotency_key_for("openrouter", "k")) == 2


def test_refused_submit_exits_4_and_lists_the_key(
    tmp_path: Path, fake_server: FakeServer, fake_provider: FakeProvider
) -> None:
    fake_provider.script(Scenario(submit_status=402), times=1)
    file = write_batch(tmp_path / "jobs.jsonl", "therouter", 1)
    result = batch(fake_server, file, tmp_path / "out", provider="therouter")
    assert result.returncode == 4
    assert re.search(r"^submit_failed: spec-[0-9a-f]{40} \(line 1\): ", result.stderr, re.M)


def test_jobs_without_a_store_is_a_usage_error(tmp_path: Path) -> None:
    result = run("jobs", "--store", str(tmp_path / "none.db"))
    assert result.returncode == 2
    assert "no job store" in result.stderr
    assert not (tmp_path / "none.db").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.e2e
def test_walkthrough_runs_as_written(tmp_path: Path) -> None:
    """The kill-twice walkthrough of docs/batch.md, its shell commands run by bash."""
    page = (ROOT / "docs" / "batch.md").read_text(encoding="utf-8")
    section = page[page.index("## Walkthrough") :]
    script = re.search(r"```bash\n(.*?)```", section, re.S)
    assert script is not None
    # Only the port changes (8123 may be taken on this machine).
    text = script.group(1).replace("8123", str(_free_port()))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "mediajobs"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mediajobs "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    env = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        ["bash", "-c", text],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    counted, *listing, stopped = done.stdout.splitlines()
    assert counted.strip() == "20"
    assert len(listing) == 20
    assert all(
        re.fullmatch(r"openrouter  spec-\S+  succeeded  \S+  downloaded", x) for x in listing
    )
    assert stopped.startswith("fake provider stopped: 20 jobs created;")
    results = objects((tmp_path / "results.jsonl").read_text())
    assert len(results) == 20
    assert all(r["status"] == "succeeded" for r in results)
    assert len({r["id"] for r in results}) == 20
    assert not [p for p in (tmp_path / "out").iterdir() if ".part-" in p.name]


def test_timeout_exits_3_and_a_rerun_finishes(
    tmp_path: Path, fake_server: FakeServer, fake_provider: FakeProvider
) -> None:
    clock = [0.0]
    fake_provider.clock = lambda: clock[0]  # frozen: the jobs stay queued
    fake_provider.scenario = Scenario(seconds_per_step=1.0)
    file = write_batch(tmp_path / "jobs.jsonl", "openrouter", 2)
    out = tmp_path / "out"
    stalled = batch(fake_server, file, out, "--json", "--timeout", "0.3")
    assert stalled.returncode == 3, stalled.stderr
    assert [(r["status"], r["files"]) for r in objects(stalled.stdout)] == [("queued", [])] * 2
    assert all("timeout" in r["error"] for r in objects(stalled.stdout))
    clock[0] = 100.0
    done = batch(fake_server, file, out, "--json")
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in objects(done.stdout)] == ["succeeded"] * 2
    assert fake_provider.submissions == 2


def test_plain_progress_lines_are_throttled(capsys: pytest.CaptureFixture[str]) -> None:
    from mediajobs._batch import BatchProgress
    from mediajobs.cli import _BatchDisplay

    progress = BatchProgress(total=3)
    progress.statuses.update({"succeeded": 1, "running": 2})
    progress.files, progress.bytes = 1, 2048
    with _BatchDisplay(quiet=False) as display:  # stderr is not a terminal here
        display.update(progress)
        display.update(progress)  # within 5 s of the first: not printed
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["batch: 1/3 ended; 2 running, 1 succeeded; 1 files, 2.0 KB downloaded"]
