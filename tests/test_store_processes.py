"""The job store across processes: killed writers lose nothing, racing submitters claim once."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

import mediajobs as mj

SRC = str(Path(mj.__file__).resolve().parents[1])

WRITER = textwrap.dedent(
    """
    import sys
    import mediajobs as mj

    store = mj.JobStore(sys.argv[1])
    P = "openrouter"

    def snap(job_id, status, n=0):
        arts = [{"url": f"https://x/{i}", "index": i} for i in range(n)]
        return {"id": job_id, "provider": P, "status": status, "raw_status": status, "artifacts": arts}

    def ack(*parts):
        print(*parts, flush=True)

    print("ready", flush=True)
    for i in range(100000):
        key, job_id = f"k{i}", f"job-{i}"
        store.begin_submit(P, key, kind="video", model="m", params={"i": i}, labels={"i": i})
        ack("submit", key)
        store.mark_accepted(P, key, snap(job_id, "queued"))
        ack("accept", key, job_id)
        for status in ("running", "succeeded"):
            store.record_status(P, job_id, snap(job_id, status, 2 if status == "succeeded" else 0))
            ack("status", job_id, status)
        for index in (0, 1):
            store.record_file(P, job_id, index, f"/out/{job_id}_{index}", 10 + index, "ab" * 32)
            ack("file", job_id, str(index))
        store.seen_event(P, f"evt-{i}")
        ack("event", f"evt-{i}")
    """
)

RACER = textwrap.dedent(
    """
    import sys
    import mediajobs as mj

    store = mj.JobStore(sys.argv[1])
    keys = [f"key-{i}" for i in range(int(sys.argv[2]))]
    print("ready", flush=True)
    sys.stdin.readline()
    for key in keys:
        record, created = store.begin_submit("openrouter", key, kind="image", model="m")
        print(key, int(created), flush=True)
    store.close()
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    return env


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


@pytest.mark.parametrize("run", range(5))
def test_sqlite_writer_killed_at_random_points_loses_nothing(tmp_path: Path, run: int) -> None:
    rng = random.Random(run)
    path = tmp_path / "jobs.db"
    child = _spawn(WRITER, str(path))
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    acks: list[list[str]] = []
    wanted = 0 if run == 0 else rng.randint(5, 120)  # run 0: inside creating the store
    while len(acks) < wanted:
        line = child.stdout.readline()
        assert line, child.stderr.read() if child.stderr else ""
        acks.append(line.split())
    time.sleep(rng.random() * 0.02)  # land somewhere inside a later write
    child.send_signal(signal.SIGKILL)
    # Read on through the same buffered pipe (communicate() would skip what it holds).
    with child:  # closes the pipes and waits
        rest = child.stdout.read()
    acks += [line.split() for line in rest.splitlines(keepends=True) if line.endswith("\n")]
    assert child.returncode == -signal.SIGKILL

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()
    order = {"queued": 0, "running": 1, "succeeded": 2}
    with mj.JobStore(path) as store:
        for ack in acks:
            what, args = ack[0], ack[1:]
            if what == "submit":
                assert store.get("openrouter", key=args[0]) is not None, ack
            elif what == "accept":
                rec = store.get("openrouter", key=args[0])
                assert rec is not None and rec.job_id == args[1], ack
            elif what == "status":
                rec = store.get("openrouter", job_id=args[0])
                assert rec is not None and rec.status is not None, ack
                assert order[rec.status.value] >= order[args[1]], ack
            elif what == "file":
                rec = store.get("openrouter", job_id=args[0])
                assert rec is not None and int(args[1]) in {f.index for f in rec.files}, ack
            else:
                assert what == "event", ack
                assert store.seen_event("openrouter", args[0]), ack
        # The store stays writable after the crash (no lock left behind).
        store.begin_submit("openrouter", "after-crash")


def _race(target: str, n: int) -> dict[str, list[int]]:
    children = [_spawn(RACER, target, str(n)) for _ in range(2)]
    for child in children:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "ready", child.stderr.read() if child.stderr else ""
    outputs = [child.communicate("go\n", timeout=100) for child in children]
    claims: dict[str, list[int]] = {}
    for child, (out, err) in zip(children, outputs):
        assert child.returncode == 0, err
        for line in out.splitlines():
            key, created = line.split()
            claims.setdefault(key, []).append(int(created))
    return claims


def test_two_processes_racing_on_the_same_keys_claim_each_once(store_target: str) -> None:
    # Both processes open (and so create and migrate) the store at the same time too.
    n = 200
    claims = _race(store_target, n)
    assert sorted(claims) == sorted(f"key-{i}" for i in range(n))
    assert all(sorted(c) == [0, 1] for c in claims.values()), claims
    with mj.JobStore(store_target) as store:
        assert len(store.jobs("openrouter", status="submitting")) == n


def test_a_forked_child_leaves_the_parents_connections_alone(store_target: str) -> None:
    # E.g. a pre-forking worker pool whose parent used the store before forking.
    with mj.JobStore(store_target) as store:
        store.begin_submit("openrouter", "parent-1")  # the parent now holds an idle connection
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: not used here
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's coverage is not collected
            code = 1
            try:
                store.begin_submit("openrouter", "child-1")
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert store.get("openrouter", key="child-1") is not None  # the parent's connection works
        store.begin_submit("openrouter", "parent-2")
        assert len(store.jobs("openrouter", status="submitting")) == 3


HOLDER = textwrap.dedent(
    """
    import sys
    import mediajobs as mj

    store = mj.JobStore(sys.argv[1])
    store.begin_submit("openrouter", "in-flight", kind="video", model="m")
    print("recorded", flush=True)
    sys.stdin.readline()  # "sending": then the process ends without hearing back
    """
)


def test_a_submit_whose_sender_died_can_be_resent_at_once(store_target: str) -> None:
    holder = _spawn(HOLDER, store_target)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "recorded", holder.stderr and holder.stderr.read()
    with mj.JobStore(store_target) as store:
        assert not store.claim_resend("openrouter", "in-flight")  # its sender is alive
        assert store.jobs("openrouter", status="submit_unknown") == []
        holder.communicate("\n", timeout=60)  # it exits (and is reaped)
        assert holder.returncode == 0
        [unknown] = store.jobs("openrouter", status="submit_unknown")
        assert (unknown.key, unknown.state) == ("in-flight", "submitting")
        assert store.claim_resend("openrouter", "in-flight")  # no need to wait stale_after
        assert not store.claim_resend("openrouter", "in-flight")  # now ours, and we are alive
        rec = store.get("openrouter", key="in-flight")
        assert rec is not None and (rec.state, rec.attempts) == ("submitting", 2)
