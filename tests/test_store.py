"""The job store: every operation, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timezone
from pathlib import Path
from typing import Any

import anyio
import pytest

import mediajobs as mj
from mediajobs._store import SCHEMA_VERSION, idempotency_key_for
from mediajobs._store._owner import current_owner

P = "openrouter"


def snap(job_id: str, status: str, artifacts: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "id": job_id,
        "provider": P,
        "status": status,
        "raw_status": status.upper(),
        "artifacts": [{"url": f"https://x/{i}", "index": i} for i in range(artifacts)],
        **extra,
    }


@pytest.fixture
def store(store_target: str) -> Any:
    with mj.JobStore(store_target) as s:
        yield s


def accepted(store: mj.JobStore, key: str, job_id: str, **kw: Any) -> mj.StoredJob:
    store.begin_submit(P, key, kind="video", model="m", **kw)
    return store.mark_accepted(P, key, snap(job_id, "queued"))


def test_begin_submit_records_the_intent_once(store: mj.JobStore) -> None:
    rec, created = store.begin_submit(
        P, "k1", kind="video", model="m1", prompt="a cat", params={"size": "720p"},
        labels={"run": "r1", "n": 3},
    )  # fmt: skip
    assert created
    assert (rec.state, rec.job_id, rec.status, rec.attempts) == ("submitting", None, None, 1)
    assert (rec.kind, rec.model, rec.prompt) == ("video", "m1", "a cat")
    assert rec.params == {"size": "720p"}
    assert rec.labels == {"run": "r1", "n": 3}
    assert rec.idempotency_key == idempotency_key_for(P, "k1")
    assert rec.created_at.tzinfo is timezone.utc and rec.created_at == rec.updated_at

    again, created = store.begin_submit(P, "k1", kind="image", model="m2", labels={"run": "r2"})
    assert not created
    assert again == rec  # unchanged: labels and spec stay as first recorded

    other, created = store.begin_submit("therouter", "k1", kind="image", model="m2")
    assert created and other.provider == "therouter" and other.kind == "image"
    assert other.idempotency_key != rec.idempotency_key


def test_accepted_job_and_lookups(store: mj.JobStore) -> None:
    store.begin_submit(P, "k1", kind="video", model="m")
    assert store.jobs(P) == []  # no job id yet
    rec = store.mark_accepted(P, "k1", snap("job-1", "queued"))
    assert (rec.state, rec.job_id, rec.status) == ("accepted", "job-1", mj.JobStatus.QUEUED)
    assert rec.job is not None and rec.job["raw_status"] == "QUEUED"
    assert store.get(P, key="k1") == rec == store.get(P, job_id="job-1")
    assert store.get(P, key="nope") is None
    assert store.get("therouter", job_id="job-1") is None
    assert [j.key for j in store.jobs(P)] == ["k1"]
    assert [j.key for j in store.jobs(P, status="queued")] == ["k1"]
    assert store.jobs(P, status=mj.JobStatus.RUNNING) == []


def test_file_contents_never_reach_the_store(store_target: str, tmp_path: Path) -> None:
    secret_bytes = b"PRIVATE-PIXELS-" * 50
    with mj.JobStore(store_target) as store:
        rec, _ = store.begin_submit(
            P, "k1", params={"image": secret_bytes, "mask": ("m.png", b"M")}
        )
        assert rec.params == {
            "image": {"name": "image", "sha256": hashlib.sha256(secret_bytes).hexdigest()},
            "mask": {"name": "m.png", "sha256": hashlib.sha256(b"M").hexdigest()},
        }
        data = mj.JobData(id="job-1", provider=P, status=mj.JobStatus.RUNNING, raw_status="r")
        assert store.mark_accepted(P, "k1", data).job == data.model_dump(mode="json")
    if not store_target.startswith("postgresql://"):
        for file in Path(store_target).parent.glob("jobs.db*"):
            assert b"PRIVATE-PIXELS" not in file.read_bytes()


def test_accept_conflicts_are_store_errors(store: mj.JobStore) -> None:
    accepted(store, "k1", "job-1")
    store.begin_submit(P, "k2")
    with pytest.raises(mj.StoreError, match="already recorded under key 'k1'"):
        store.mark_accepted(P, "k2", snap("job-1", "queued"))
    assert store.get(P, key="k2").state == "submitting"  # type: ignore[union-attr]
    with pytest.raises(mj.StoreError, match="no openrouter submit"):
        store.mark_accepted(P, "missing", snap("job-9", "queued"))
    with pytest.raises(mj.StoreError, match="status"):
        store.mark_accepted(P, "k2", snap("job-2", "exploded"))
    with pytest.raises(mj.StoreError, match="'id'"):
        store.mark_accepted(P, "k2", {"status": "queued"})


def test_status_never_moves_backwards(store: mj.JobStore) -> None:
    accepted(store, "k1", "job-1")
    assert store.record_status(P, "job-1", snap("job-1", "running", progress=10))
    assert not store.record_status(P, "job-1", snap("job-1", "running", progress=50))
    assert not store.record_status(P, "job-1", snap("job-1", "queued"))
    assert store.get(P, job_id="job-1").status is mj.JobStatus.RUNNING  # type: ignore[union-attr]
    assert store.record_status(P, "job-1", snap("job-1", "succeeded", artifacts=2))
    for later in ("running", "queued", "failed", "succeeded"):
        assert not store.record_status(P, "job-1", snap("job-1", later))
    rec = store.get(P, job_id="job-1")
    assert rec is not None and rec.status is mj.JobStatus.SUCCEEDED
    assert rec.job is not None and len(rec.job["artifacts"]) == 2
    assert not store.record_status(P, "unknown-job", snap("unknown-job", "running"))


def test_accept_after_a_later_status_keeps_the_later_one(store: mj.JobStore) -> None:
    store.begin_submit(P, "k1")
    rec = store.mark_accepted(P, "k1", snap("job-1", "running"))
    assert rec.status is mj.JobStatus.RUNNING
    store.record_status(P, "job-1", snap("job-1", "failed"))
    rec = store.mark_accepted(P, "k1", snap("job-1", "queued"))  # e.g. a re-sent submit's answer
    assert rec.status is mj.JobStatus.FAILED


def test_submit_unknown_is_listed_and_resent_once(store: mj.JobStore) -> None:
    store.begin_submit(P, "k1", kind="video", model="m", labels={"batch": "b"})
    accepted(store, "k2", "job-2")
    assert store.mark_unknown(P, "k1", "connection dropped after the request was sent")
    assert not store.mark_unknown(P, "k2", "too late")  # an accepted record is never touched
    [unknown] = store.jobs(P, status="submit_unknown")
    assert (unknown.key, unknown.job_id, unknown.state) == ("k1", None, "submit_unknown")
    assert (unknown.kind, unknown.model, unknown.labels) == ("video", "m", {"batch": "b"})
    assert unknown.error == "connection dropped after the request was sent"
    assert [j.key for j in store.jobs(P)] == ["k2"]

    assert store.claim_resend(P, "k1")
    assert not store.claim_resend(P, "k1")  # now "submitting", freshly: someone is sending
    assert not store.claim_resend(P, "k2")
    assert not store.claim_resend(P, "missing")
    rec = store.get(P, key="k1")
    assert rec is not None and (rec.state, rec.attempts) == ("submitting", 2)
    assert rec.idempotency_key == unknown.idempotency_key
    assert store.mark_accepted(P, "k1", snap("job-1", "queued")).state == "accepted"
    assert store.jobs(P, status="submit_unknown") == []


def test_a_stale_submitting_record_can_be_claimed(store: mj.JobStore) -> None:
    store.begin_submit(P, "k1")
    assert not store.claim_resend(P, "k1")  # its process may still be sending
    assert [j.key for j in store.jobs(P, status="submitting")] == ["k1"]
    assert store.claim_resend(P, "k1", stale_after=-1)
    assert store.get(P, key="k1").attempts == 2  # type: ignore[union-attr]


def test_who_sent_a_submitting_record_decides_when_it_can_be_claimed(store_target: str) -> None:
    host, boot, _ = current_owner().split(" ")
    others = {
        "elsewhere": f"other-host {boot} 1",  # another machine: only time tells
        "rebooted": f"{host} not-{boot} {os.getpid()}",  # this machine, an earlier boot
        "unknown": None,  # written by an older mediajobs
        "garbled": "???",
    }
    with mj.JobStore(store_target) as store:
        for key in others:
            store.begin_submit(P, key)
    for key, owner in others.items():
        raw_sql(store_target, ["UPDATE mediajobs_jobs SET owner = ? WHERE key = ?"], [(owner, key)])
    with mj.JobStore(store_target) as store:
        store.begin_submit(P, "ours")  # this live process is sending it
        store.begin_submit(P, "lost")
        store.mark_unknown(P, "lost", "connection reset")
        gone = {j.key for j in store.jobs(P, status="submit_unknown")}
        assert gone == ({"lost", "rebooted"} if boot else {"lost"})
        assert len(store.jobs(P, status="submit_unknown", limit=1)) == 1
        claimed = {key for key in others if store.claim_resend(P, key)}
        assert claimed == ({"rebooted"} if boot else set())
        # Once stale, any of them (the one just claimed too: a claim is not a lease forever).
        assert all(store.claim_resend(P, key, stale_after=-1) for key in others)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_sender_that_ended_but_was_not_reaped_is_dead() -> None:
    from mediajobs._store._owner import owner_is_dead

    host, boot, _ = current_owner().split(" ")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # ended, not yet waited for: a zombie
            with contextlib.suppress(OSError):
                if Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
                    break
            time.sleep(0.01)
        assert owner_is_dead(f"{host} {boot} {child.pid}")
    finally:
        child.wait()
    assert owner_is_dead(f"{host} {boot} {child.pid}")  # reaped: gone
    assert not owner_is_dead(f"{host} {boot} {os.getpid()}")


def test_rejected_submit_is_kept_and_can_be_submitted_again(store: mj.JobStore) -> None:
    store.begin_submit(P, "k1", model="bad-model", params={"n": 9}, labels={"a": 1, "b": 2})
    assert store.mark_rejected(P, "k1", "400: unknown model")
    [failed] = store.jobs(P, status="submit_failed")
    assert (failed.state, failed.error, failed.job_id) == (
        "submit_failed",
        "400: unknown model",
        None,
    )
    assert not store.claim_resend(P, "k1")  # refused: resending the same thing is pointless
    rec, created = store.begin_submit(P, "k1", model="good-model", params={"n": 1}, labels={"a": 5})
    assert created
    assert (rec.state, rec.model, rec.params, rec.labels) == (
        "submitting",
        "good-model",
        {"n": 1},
        {"a": 5},
    )
    assert (rec.attempts, rec.error) == (2, None)
    assert rec.idempotency_key == failed.idempotency_key
    store.mark_accepted(P, "k1", snap("job-1", "queued"))
    assert [j.key for j in store.jobs(P, labels={"a": 5})] == ["k1"]
    assert store.jobs(P, labels={"b": 2}) == []  # the first attempt's labels are gone
    assert not store.mark_rejected(P, "k1", "late")  # accepted: never touched


def test_files_and_the_downloaded_filter(store: mj.JobStore, tmp_path: Path) -> None:
    for key, job_id in (("two", "j2"), ("none", "j0"), ("failed", "jf"), ("running", "jr")):
        accepted(store, key, job_id)
    store.record_status(P, "j2", snap("j2", "succeeded", artifacts=2))
    store.record_status(P, "j0", snap("j0", "succeeded", artifacts=0))
    store.record_status(P, "jf", snap("jf", "failed"))
    store.record_status(P, "jr", snap("jr", "running"))

    def keys(**kw: Any) -> set[str]:
        return {j.key for j in store.jobs(P, **kw)}

    assert keys(downloaded=True) == {"none"}
    assert keys(downloaded=False) == {"two", "failed", "running"}
    assert store.record_file(P, "j2", 1, tmp_path / "j2_1.mp4", 10, "aa" * 32)
    assert keys(downloaded=True) == {"none"}
    assert store.record_file(P, "j2", 0, str(tmp_path / "old.mp4"), 5, "bb" * 32)
    assert store.record_file(P, "j2", 0, str(tmp_path / "j2_0.mp4"), 7, "cc" * 32)  # replaces
    assert keys(downloaded=True) == {"none", "two"}
    assert keys(downloaded=False) == {"failed", "running"}
    rec = store.get(P, job_id="j2")
    assert rec is not None and rec.downloaded
    assert rec.files == (
        mj.StoredFile(0, str(tmp_path / "j2_0.mp4"), 7, "cc" * 32),
        mj.StoredFile(1, str(tmp_path / "j2_1.mp4"), 10, "aa" * 32),
    )
    assert not store.record_file(P, "no-such-job", 0, "x", 1, "dd")
    assert [j.key for j in store.jobs(P, downloaded=True, status="succeeded", labels={})] == [
        "none", "two",
    ]  # fmt: skip


def test_labels_filter_is_a_subset_match(store: mj.JobStore) -> None:
    accepted(store, "a", "ja", labels={"run": "r1", "shard": 1, "ok": True})
    accepted(store, "b", "jb", labels={"run": "r1", "shard": "1"})
    accepted(store, "c", "jc", labels={"run": "r2"})
    accepted(store, "d", "jd")

    def keys(labels: dict[str, Any]) -> list[str]:
        return sorted(j.key for j in store.jobs(P, labels=labels))

    assert keys({"run": "r1"}) == ["a", "b"]
    assert keys({"run": "r1", "shard": 1}) == ["a"]
    assert keys({"shard": "1"}) == ["b"]
    assert keys({"ok": True}) == ["a"]
    assert keys({"run": "r1", "missing": None}) == []
    assert keys({}) == ["a", "b", "c", "d"]


def test_listing_is_newest_first(store: mj.JobStore) -> None:
    for i in range(5):
        accepted(store, f"k{i}", f"j{i}")
    assert [j.key for j in store.jobs(P)] == ["k4", "k3", "k2", "k1", "k0"]
    assert [j.key for j in store.jobs(P, limit=2)] == ["k4", "k3"]
    assert store.jobs("therouter") == []
    store.begin_submit("therouter", "t0")
    store.mark_accepted("therouter", "t0", snap("t-job", "queued"))
    assert [(j.provider, j.key) for j in store.jobs(None, limit=3)] == [
        ("therouter", "t0"), (P, "k4"), (P, "k3"),
    ]  # fmt: skip


def test_seen_event_deduplicates_and_prunes(store_target: str) -> None:
    with mj.JobStore(store_target) as first:
        assert not first.seen_event(P, "evt-1")
        assert first.seen_event(P, "evt-1")
        assert not first.seen_event("therouter", "evt-1")
    with mj.JobStore(store_target) as second:
        assert second.seen_event(P, "evt-1")  # across store instances (and processes)
        # A fresh instance prunes on its first call; retention 0 drops every earlier id.
    with mj.JobStore(store_target) as third:
        assert not third.seen_event(P, "evt-2", retention=0)
        assert not third.seen_event(P, "evt-1")


def test_forget(store: mj.JobStore) -> None:
    accepted(store, "k1", "j1", labels={"x": "y"})
    store.record_file(P, "j1", 0, "f", 1, "aa")
    assert store.forget(P, "k1")
    assert not store.forget(P, "k1")
    assert store.get(P, key="k1") is None and store.jobs(P, labels={"x": "y"}) == []
    rec, created = store.begin_submit(P, "k1")
    assert created and rec.files == ()


def test_records_survive_reopening(store_target: str) -> None:
    with mj.JobStore(store_target) as s:
        accepted(s, "k1", "j1", labels={"x": 1}, params={"image": {"name": "a.png", "sha256": "0"}})
        s.record_status(P, "j1", snap("j1", "succeeded", artifacts=1))
        s.record_file(P, "j1", 0, "/out/j1_0.png", 3, "ab")
        before = s.get(P, key="k1")
    with mj.JobStore(store_target) as s:
        assert s.get(P, key="k1") == before
        assert before is not None and before.downloaded


def test_bad_inputs_raise_typed_errors(store: mj.JobStore) -> None:
    with pytest.raises(mj.ConfigurationError):
        store.get(P)
    with pytest.raises(mj.ConfigurationError):
        store.get(P, key="a", job_id="b")
    with pytest.raises(mj.ConfigurationError, match="status"):
        store.jobs(P, status="exploded")
    with pytest.raises(mj.ConfigurationError, match="label"):
        store.jobs(P, labels={"a": [1]})
    with pytest.raises(mj.ConfigurationError, match="label"):
        store.begin_submit(P, "k", labels={1: "a"})  # type: ignore[dict-item]
    with pytest.raises(mj.ConfigurationError, match="JSON"):
        store.begin_submit(P, "k", params={"a": {1, 2}})
    with pytest.raises(mj.ConfigurationError, match="key"):
        store.begin_submit(P, "")
    with pytest.raises(mj.StoreError, match="status"):
        store.record_status(P, "j", {"id": "j", "status": None})
    assert store.get(P, key="k") is None  # nothing half-written


def test_closed_store_raises(store_target: str) -> None:
    store = mj.JobStore(store_target)
    store.begin_submit(P, "k1")
    store.close()
    with pytest.raises(mj.StoreError, match="closed"):
        store.get(P, key="k1")
    with mj.JobStore(store_target) as s:
        assert s.get(P, key="k1") is not None
    with pytest.raises(mj.StoreError, match="closed"):
        s.jobs(P)


def test_many_threads_at_once(store: mj.JobStore) -> None:
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(15):
                key, job_id = f"t{t}-{i}", f"job-{t}-{i}"
                _, created = store.begin_submit(P, key, labels={"thread": t})
                assert created
                store.mark_accepted(P, key, snap(job_id, "queued"))
                store.record_status(P, job_id, snap(job_id, "succeeded", artifacts=1))
                store.record_file(P, job_id, 0, f"/out/{job_id}", 1, "ab")
                assert store.get(P, key=key).downloaded  # type: ignore[union-attr]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.jobs(P, downloaded=True)) == 12 * 15
    assert len(store.jobs(P, labels={"thread": 3})) == 15


@pytest.mark.anyio
async def test_calls_through_worker_threads(store: mj.JobStore) -> None:
    async def one(i: int) -> None:
        await anyio.to_thread.run_sync(lambda: accepted(store, f"k{i}", f"j{i}"))

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(one, i)
    jobs = await anyio.to_thread.run_sync(lambda: store.jobs(P))
    assert sorted(j.key for j in jobs) == sorted(f"k{i}" for i in range(20))


# -- schema versions -------------------------------------------------------------------------

V1_DDL = [
    """CREATE TABLE mediajobs_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE mediajobs_jobs (
        id {id}, provider TEXT NOT NULL, key TEXT NOT NULL, idempotency_key TEXT NOT NULL,
        state TEXT NOT NULL, job_id TEXT, status TEXT, kind TEXT, model TEXT, prompt TEXT,
        params TEXT NOT NULL, labels TEXT NOT NULL, job TEXT, error TEXT,
        created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
        UNIQUE (provider, key), UNIQUE (provider, job_id))""",
    """CREATE TABLE mediajobs_files (
        job BIGINT NOT NULL REFERENCES mediajobs_jobs (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL, path TEXT NOT NULL, size BIGINT NOT NULL, sha256 TEXT NOT NULL,
        recorded_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (job, idx))""",
    "INSERT INTO mediajobs_meta VALUES ('schema_version', '1')",
]


def raw_sql(
    target: str, statements: list[str], params: list[tuple[Any, ...]] | None = None
) -> list[Any]:
    """Run statements on the store's database directly, as an older mediajobs would have."""
    params = params or [()] * len(statements)
    out: list[Any] = []
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            for sql, p in zip(statements, params):
                cur = conn.execute(
                    sql.replace("?", "%s").replace("{id}", "BIGSERIAL PRIMARY KEY"), p
                )
                out.append(cur.fetchall() if cur.description else None)
        return out
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        for sql, p in zip(statements, params):
            cur = conn.execute(sql.replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT"), p)
            out.append(cur.fetchall())
    finally:
        conn.close()
    return out


def test_a_version_1_store_is_migrated(store_target: str) -> None:
    job = snap("job-1", "succeeded", artifacts=2)
    raw_sql(
        store_target,
        [
            *V1_DDL,
            "INSERT INTO mediajobs_jobs (provider, key, idempotency_key, state, job_id, status, "
            "kind, model, prompt, params, labels, job, created_at, updated_at) "
            "VALUES (?, ?, ?, 'accepted', 'job-1', 'succeeded', 'video', 'm', NULL, '{}', ?, ?, 1.5, 2.5)",
            "INSERT INTO mediajobs_files VALUES (1, 0, '/out/a', 1, 'aa', 3.0)",
        ],
        [()] * len(V1_DDL)
        + [
            (
                P,
                "old",
                idempotency_key_for(P, "old"),
                json.dumps({"run": "r1", "n": 2}),
                json.dumps(job),
            ),
            (),
        ],
    )
    with mj.JobStore(store_target) as s:
        rec = s.get(P, key="old")
        assert rec is not None and (rec.job_id, rec.attempts, rec.created_at.timestamp()) == (
            "job-1",
            1,
            1.5,
        )
        assert [j.key for j in s.jobs(P, labels={"run": "r1", "n": 2})] == ["old"]  # backfilled
        assert s.jobs(P, downloaded=True) == []  # two artifacts, one file: counts backfilled
        s.record_file(P, "job-1", 1, "/out/b", 1, "bb")
        assert [j.key for j in s.jobs(P, downloaded=True)] == ["old"]
        assert not s.seen_event(P, "e1")  # the new table exists
    [[version]] = raw_sql(store_target, ["SELECT value FROM mediajobs_meta"])[0]
    assert int(version) == SCHEMA_VERSION == 2
    with mj.JobStore(store_target) as s:  # migrating again is a no-op
        assert len(s.jobs(P)) == 1


def test_a_store_from_a_newer_version_is_refused(store_target: str) -> None:
    with mj.JobStore(store_target) as s:
        s.begin_submit(P, "k1")
    raw_sql(store_target, [f"UPDATE mediajobs_meta SET value = '{SCHEMA_VERSION + 1}'"])
    with mj.JobStore(store_target) as s, pytest.raises(mj.StoreError, match="upgrade mediajobs"):
        s.get(P, key="k1")


# -- SQLite specifics ------------------------------------------------------------------------


def test_sqlite_file_is_created_with_wal_and_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "jobs.db"
    store = mj.JobStore(path)
    assert not path.exists()  # nothing touched before first use
    assert store.kind == "sqlite" and repr(store) == f"JobStore({str(path)!r})"
    store.begin_submit(P, "k")
    conn = store._backend._pool.acquire()  # type: ignore[attr-defined]
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    finally:
        store._backend._pool.release(conn)  # type: ignore[attr-defined]
    store.close()


def test_sqlite_corrupt_file_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    path.write_bytes(b"this is not a database, just some bytes" * 100)
    with mj.JobStore(path) as s, pytest.raises(mj.StoreError, match=r"jobs\.db"):
        s.jobs(P)


@pytest.mark.parametrize("target", ["", "   ", "ftp://host/db", "mysql://u@h/db"])
def test_bad_targets(target: str) -> None:
    with pytest.raises(mj.ConfigurationError):
        mj.JobStore(target)


def test_bad_target_types_and_timeouts(tmp_path: Path) -> None:
    with pytest.raises(mj.ConfigurationError):
        mj.JobStore(3)  # type: ignore[arg-type]
    with pytest.raises(mj.ConfigurationError):
        mj.JobStore(tmp_path / "x.db", timeout=0)


# -- PostgreSQL specifics --------------------------------------------------------------------


def test_postgres_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(mj.ConfigurationError, match=r"mediajobs\[postgres\]"):
        mj.JobStore("postgresql://u@127.0.0.1/db")


def test_postgres_password_never_shown() -> None:
    secret = "s3cr3t-pw"
    store = mj.JobStore(
        f"postgres://user:{secret}@127.0.0.1:1/db?password={secret}&sslmode=disable"
    )
    assert store.kind == "postgres"
    assert secret not in repr(store) and "user:***@127.0.0.1:1" in repr(store)
    with pytest.raises(mj.StoreError) as info:
        store.jobs(P)
    assert secret not in str(info.value) and secret not in repr(info.value)
    assert info.value.__suppress_context__  # the driver's own message stays out of tracebacks
    store.close()


def test_postgres_lost_connection_is_a_store_error_and_recovers(postgres_server: str) -> None:
    import psycopg

    from pg_cluster import postgres_schema_url

    with postgres_schema_url(postgres_server) as url, mj.JobStore(url) as s:
        s.begin_submit(P, "k1")
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(mj.StoreError):
            s.get(P, key="k1")
        assert s.get(P, key="k1") is not None  # the broken connection was dropped


def test_missing_postgres_binaries_skip_locally_and_fail_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pg_cluster

    monkeypatch.setattr(pg_cluster, "find_pg_bin", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        pg_cluster.require_pg_bin()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install"):
        pg_cluster.require_pg_bin()


def test_stores_opened_at_once_on_a_new_sqlite_file_all_open(tmp_path: Path) -> None:
    # Switching a new file to WAL while another connection does the same can fail with
    # "database is locked" without SQLite's busy handler ever waiting (seen between two
    # processes submitting at once on a new store): opening retries until the timeout.
    failures: list[BaseException] = []
    for trial in range(40):
        path = tmp_path / f"race{trial}.db"
        stores = [mj.JobStore(path) for _ in range(3)]
        start = threading.Barrier(len(stores))

        def open_and_write(store: mj.JobStore, name: str) -> None:
            start.wait()
            try:
                store.begin_submit(P, name)
            except BaseException as exc:
                failures.append(exc)

        threads = [
            threading.Thread(target=open_and_write, args=(store, f"k{i}"))
            for i, store in enumerate(stores)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        with stores[0] as store:
            assert sorted(r.key for r in store.jobs(P, status="submitting")) == ["k0", "k1", "k2"]
        for store in stores[1:]:
            store.close()
