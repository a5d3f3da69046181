"""Clients with a job store: keyed submits, unknown outcomes, recorded statuses and files.

Each client-level test runs one body on the blocking client and on the async client under
asyncio and trio (``mode``); see ``run`` in ``test_engine.py``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import mediajobs as mj
from mediajobs._store import idempotency_key_for
from mediajobs.testing import FakeProvider, FakeServer, Scenario
from test_engine import FAST, RETRY, run

P = "therouter"
SRC = str(Path(mj.__file__).resolve().parents[1])


@pytest.fixture(params=["sync", "asyncio", "trio"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def kitten(client: Any, **kw: Any) -> Any:
    return client.submit("image", model="openai/gpt-image-2", prompt="a kitten", **kw)


def submits(fake: FakeProvider) -> int:
    return sum(1 for r in fake.requests if r.method == "POST")


# ------------------------------------------------------------------------- keyed submits


def test_a_keyed_submit_is_recorded_before_it_is_sent(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider()
    db = tmp_path / "jobs.db"
    seen: list[Any] = []

    def body(client: Any) -> Generator[Any, Any, Any]:
        real = client.store._begin  # what the recorder calls (begin_submit without reading back)

        def spy(*args: Any, **kw: Any) -> Any:
            seen.append(len(fake.requests))  # requests the fake had received at that moment
            return real(*args, **kw)

        client.store._begin = spy
        return (yield kitten(client, key="cats/1", labels={"run": "r1", "n": 2}, size="1024"))

    job = run(mode, fake, body, store=db)
    assert seen == [0]
    assert job.key == "cats/1" and job.labels == {"run": "r1", "n": 2}
    (request,) = fake.requests
    assert request.idempotency_key == idempotency_key_for(P, "cats/1")
    with mj.JobStore(db) as store:
        record = store.get(P, key="cats/1")
    assert record is not None
    assert (record.state, record.job_id, record.status) == ("accepted", job.id, mj.JobStatus.QUEUED)
    assert (record.kind, record.model, record.prompt) == ("image", "openai/gpt-image-2", "a kitten")
    assert record.params == {"size": "1024"} and record.labels == {"run": "r1", "n": 2}


def test_a_key_already_in_the_store_sends_nothing(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider()
    db = tmp_path / "jobs.db"
    first = run(mode, fake, lambda c: (yield kitten(c, key="k", labels={"v": 1})), store=db)
    before = len(fake.requests)

    def body(client: Any) -> Generator[Any, Any, Any]:
        return (yield kitten(client, key="k", labels={"v": 2}))

    again = run(mode, fake, body, store=db)  # a new client (a new process, say) on one store
    assert len(fake.requests) == before  # nothing sent
    assert again.id == first.id and again.key == "k"
    assert again.labels == {"v": 1}  # as first recorded


def test_a_key_without_a_store_derives_the_header(mode: str) -> None:
    fake = FakeProvider()
    job = run(mode, fake, lambda c: (yield kitten(c, key="k", labels={"a": "b"})))
    assert fake.requests[0].idempotency_key == idempotency_key_for(P, "k")
    assert job.key == "k" and job.labels == {"a": "b"}
    plain = run(mode, fake, lambda c: (yield kitten(c)))
    assert plain.key is None and plain.labels == {} and plain.files == []
    assert fake.requests[-1].idempotency_key != idempotency_key_for(P, "k")


def test_a_submit_without_key_is_recorded_under_a_generated_one(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider()
    job = run(mode, fake, lambda c: (yield kitten(c)), store=tmp_path / "jobs.db")
    assert job.key is not None and job.key.startswith("auto-")
    with mj.JobStore(tmp_path / "jobs.db") as store:
        record = store.get(P, job_id=job.id)
    assert record is not None and record.key == job.key
    assert fake.requests[0].idempotency_key == idempotency_key_for(P, job.key)


@pytest.mark.parametrize("bad", [{"key": ""}, {"labels": {"x": [1]}}, {"labels": {1: "x"}}])
def test_bad_keys_and_labels_are_configuration_errors(
    mode: str, tmp_path: Path, bad: dict[str, Any]
) -> None:
    fake = FakeProvider()

    def body(client: Any) -> Generator[Any, Any, Any]:
        with pytest.raises(mj.ConfigurationError):
            yield kitten(client, **bad)

    run(mode, fake, body, store=tmp_path / "jobs.db")
    assert fake.requests == []


# ------------------------------------------------------------------ unknown outcomes


def test_a_lost_answer_is_kept_unknown_and_resent_with_the_same_key(
    mode: str, tmp_path: Path
) -> None:
    fake = FakeProvider(scenario=Scenario(submit_drop_after_record=True))
    db = tmp_path / "jobs.db"

    def body(client: Any) -> Generator[Any, Any, Any]:
        with pytest.raises(mj.APIConnectionError, match=r"unknown.*submit the same key again"):
            yield kitten(client, key="k", labels={"x": 1})
        unknown = yield client.jobs(status="submit_unknown")
        assert [(r.key, r.labels, r.kind, r.job_id) for r in unknown] == [
            ("k", {"x": 1}, "image", None)
        ]
        assert (yield client.jobs()) == []
        return (yield kitten(client, key="k"))

    job = run(mode, fake, body, store=db)
    assert fake.submissions == 1  # the provider honoured the key: one job
    assert fake.submits_with_key(idempotency_key_for(P, "k")) == 2
    assert list(fake.jobs) == [job.id]
    with mj.JobStore(db) as store:
        record = store.get(P, key="k")
    assert record is not None and (record.state, record.attempts) == ("accepted", 2)


def test_a_provider_ignoring_the_key_runs_a_resent_submit_twice(tmp_path: Path) -> None:
    fake = FakeProvider(honor_idempotency=False)
    fake.script(Scenario(submit_drop_after_record=True))

    def body(client: Any) -> Generator[Any, Any, Any]:
        with pytest.raises(mj.APIConnectionError):
            yield kitten(client, key="k")
        return (yield kitten(client, key="k"))

    job = run("sync", fake, body, store=tmp_path / "jobs.db")
    assert fake.submissions == 2 and len(fake.jobs) == 2  # the caveat the docs warn about
    assert job.id in fake.jobs


def test_a_refused_submit_can_be_sent_again(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider()
    fake.script(Scenario(submit_status=400))

    def body(client: Any) -> Generator[Any, Any, Any]:
        with pytest.raises(mj.BadRequestError) as caught:
            yield kitten(client, key="k")
        assert "unknown" not in str(caught.value)
        assert (yield client.jobs(status="submit_unknown")) == []
        return (yield kitten(client, key="k"))

    job = run(mode, fake, body, store=tmp_path / "jobs.db")
    assert submits(fake) == 2 and fake.submissions == 1
    assert job.key == "k"


def test_a_key_another_sender_holds_is_waited_for(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider()
    db = tmp_path / "jobs.db"
    with mj.JobStore(db) as other:
        other.begin_submit(P, "k", kind="image", model="m")  # this process: a live sender
        snapshot = {"id": "elsewhere", "provider": P, "status": "running", "raw_status": "x"}
        timer = threading.Timer(0.3, other.mark_accepted, (P, "k", snapshot))
        timer.start()
        try:
            job = run(mode, fake, lambda c: (yield kitten(c, key="k")), store=db)
        finally:
            timer.join()
    assert job.id == "elsewhere" and job.status is mj.JobStatus.RUNNING
    assert fake.requests == []


def test_a_sender_that_never_answers_is_given_up_on(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider()
    db = tmp_path / "jobs.db"
    with mj.JobStore(db) as other:
        other.begin_submit(P, "k", kind="image", model="m")
    job = run(mode, fake, lambda c: (yield kitten(c, key="k")), store=db, timeout=0.3)
    assert submits(fake) == 1 and job.key == "k"
    assert fake.requests[0].idempotency_key == idempotency_key_for(P, "k")


# ----------------------------------------------------------- statuses, files, listing


def test_statuses_and_files_are_recorded_and_downloads_skip_intact_files(
    mode: str, tmp_path: Path
) -> None:
    fake = FakeProvider(scenario=Scenario(steps=("queued", "running"), artifact_count=2))
    db = tmp_path / "jobs.db"
    out = tmp_path / "out"

    def body(client: Any) -> Generator[Any, Any, Any]:
        job = yield kitten(client, key="k")
        yield job.wait()
        paths = yield job.download(out)
        assert job.files == paths
        gets = len(fake.requests)
        again = yield client.download(job.id, out)  # by id: the store knows its files
        assert again == paths and len(fake.requests) == gets + 1  # one status read, no bytes
        paths[1].write_bytes(b"changed")
        with pytest.raises(mj.DownloadError, match="already exists"):
            yield job.download(out)  # a changed file is never replaced silently
        repaired = yield job.download(out, overwrite=True)
        assert repaired == paths
        return job, paths

    job, paths = run(mode, fake, body, store=db)
    assert paths[1].read_bytes() == fake.artifact_bytes(job.id, 1)
    with mj.JobStore(db) as store:
        record = store.get(P, key="k")
    assert record is not None and record.status is mj.JobStatus.SUCCEEDED and record.downloaded
    assert [(f.index, Path(f.path), f.size) for f in record.files] == [
        (i, p, p.stat().st_size) for i, p in enumerate(paths)
    ]
    assert record.files[1].sha256 == hashlib.sha256(paths[1].read_bytes()).hexdigest()


def test_jobs_lists_handles_from_the_store_without_requests(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider(scenario=Scenario(steps=("queued", "running", "running")))
    fake.script(Scenario(steps=()), times=1)  # the first job succeeds at once

    def body(client: Any) -> Generator[Any, Any, Any]:
        done = yield kitten(client, key="a", labels={"run": "1"})
        yield done.wait()
        yield done.download(tmp_path / "out")
        yield kitten(client, key="b", labels={"run": "1"})
        yield kitten(client, key="c", labels={"run": "2"})
        count = len(fake.requests)
        listed = {
            "all": (yield client.jobs()),
            "ok": (yield client.jobs(status="succeeded")),
            "queued": (yield client.jobs(status=mj.JobStatus.QUEUED)),
            "both": (yield client.jobs(status=["queued", "succeeded"])),
            "run1": (yield client.jobs(labels={"run": "1"})),
            "got": (yield client.jobs(downloaded=True)),
            "not": (yield client.jobs(downloaded=False)),
        }
        assert len(fake.requests) == count
        for bad in ("nope", ["queued", "submit_unknown"]):
            with pytest.raises(mj.ConfigurationError):
                yield client.jobs(status=bad)
        return listed

    listed = run(mode, fake, body, store=tmp_path / "jobs.db")
    keys = {name: [j.key for j in jobs] for name, jobs in listed.items()}
    assert keys == {
        "all": ["c", "b", "a"],
        "ok": ["a"],
        "queued": ["c", "b"],
        "both": ["c", "b", "a"],
        "run1": ["b", "a"],
        "got": ["a"],
        "not": ["c", "b"],
    }
    (got,) = listed["got"]
    assert got.labels == {"run": "1"} and len(got.files) == 1 and got.files[0].exists()
    assert type(got) is (mj.Job if mode == "sync" else mj.AsyncJob)


def test_jobs_needs_a_store(mode: str) -> None:
    def body(client: Any) -> Generator[Any, Any, Any]:
        with pytest.raises(mj.ConfigurationError, match="store="):
            yield client.jobs()

    run(mode, FakeProvider(), body)


def test_resuming_after_a_crash_is_two_lines(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider(scenario=Scenario(steps=("queued", "running", "running")))
    fake.script(Scenario(steps=("running",)), times=1)
    db = tmp_path / "jobs.db"

    def crashed(client: Any) -> Generator[Any, Any, Any]:
        first = yield kitten(client, key="k0")
        yield client.get(first)  # seen running
        for i in (1, 2):
            yield kitten(client, key=f"k{i}")

    run(mode, fake, crashed, store=db)

    def resumed(client: Any) -> Generator[Any, Any, Any]:
        unfinished = yield client.jobs(status=["queued", "running"])
        return (yield client.wait_all(unfinished))

    jobs = run(mode, fake, resumed, store=db)
    assert sorted(j.key for j in jobs) == ["k0", "k1", "k2"]
    assert all(j.status is mj.JobStatus.SUCCEEDED for j in jobs)
    with mj.JobStore(db) as store:
        assert len(store.jobs(P, status="succeeded")) == 3


def test_a_job_read_by_id_shows_its_key_and_labels(mode: str, tmp_path: Path) -> None:
    fake = FakeProvider()
    db = tmp_path / "jobs.db"
    job = run(mode, fake, lambda c: (yield kitten(c, key="k", labels={"l": True})), store=db)

    def body(client: Any) -> Generator[Any, Any, Any]:
        got = yield client.get(job.id)
        waited = yield client.wait(job.id)
        (listed,) = yield client.wait_all([job.id])
        return got, waited, listed

    for handle in run(mode, fake, body, store=db):
        assert handle.key == "k" and handle.labels == {"l": True}


def test_the_async_client_records_off_its_event_loop(tmp_path: Path) -> None:
    fake = FakeProvider()
    threads: set[int] = set()

    async def main() -> None:
        store = mj.JobStore(tmp_path / "jobs.db")
        for name in ("record_status", "_record_statuses"):  # one status, or a group's
            real = getattr(store, name)

            def spy(*args: Any, _real: Any = real) -> Any:
                threads.add(threading.get_ident())
                return _real(*args)

            setattr(store, name, spy)
        http = httpx.AsyncClient(transport=fake.transport())
        async with mj.AsyncClient(
            P, api_key="k", base_url=fake.api_origin, poll=FAST, http_client=http, store=store
        ) as client:
            job = await kitten(client, key="k")
            await job.wait()
        store.close()
        await http.aclose()

    anyio.run(main)
    assert threads and threading.get_ident() not in threads


def test_a_shared_store_stays_open_and_an_owned_one_closes(tmp_path: Path) -> None:
    fake = FakeProvider()
    shared = mj.JobStore(tmp_path / "shared.db")
    options: dict[str, Any] = {"api_key": "k", "base_url": fake.api_origin, "retry": RETRY}
    with mj.Client(
        P, store=shared, **options, http_client=httpx.Client(transport=fake.transport())
    ):
        pass
    assert shared.jobs(P) == []  # still usable
    shared.close()
    client = mj.Client(P, store=str(tmp_path / "own.db"), **options)
    assert client.store is not None and client.store.kind == "sqlite"
    client.close()
    with pytest.raises(mj.StoreError):
        client.store.jobs(P)
    with pytest.raises(mj.ConfigurationError, match="store must be"):
        mj.Client(P, store=42, **options)  # type: ignore[arg-type]


# -------------------------------------------------------------------- PostgreSQL


def test_the_key_paths_on_both_databases(store_target: str, tmp_path: Path) -> None:
    fake = FakeProvider(scenario=Scenario(steps=("running",)))

    def body(client: Any) -> Generator[Any, Any, Any]:
        key = f"k-{type(client).__name__}"
        with pytest.raises(mj.APIConnectionError, match="unknown"):
            yield kitten(client, key=key, labels={"db": key})
        job = yield kitten(client, key=key)
        yield job.wait()
        paths = yield job.download(tmp_path)
        again = yield kitten(client, key=key)
        return job, again, paths, (yield client.jobs(downloaded=True, labels={"db": key}))

    for mode in ("sync", "asyncio"):
        fake.script(Scenario(submit_drop_after_record=True))
        job, again, paths, listed = run(mode, fake, body, store=store_target)
        assert again.id == job.id and again.status is mj.JobStatus.SUCCEEDED
        assert [j.id for j in listed] == [job.id] and listed[0].files == paths
    assert fake.submissions == 2


# ----------------------------------------------------------------- racing processes

RACER = textwrap.dedent(
    """
    import sys
    import mediajobs as mj

    db, base_url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with mj.Client("therouter", api_key="k", base_url=base_url, store=db) as client:
        for i in range(count):
            job = client.submit("image", model="openai/gpt-image-2", prompt="p", key=f"k{i}")
            print(job.key, job.id, flush=True)
    """
)


def test_two_processes_racing_on_one_store_submit_each_key_once(tmp_path: Path) -> None:
    fake = FakeProvider(honor_idempotency=False)  # only the store can prevent duplicates
    db = str(tmp_path / "jobs.db")
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with FakeServer(fake) as server:
        racers = [
            subprocess.Popen(
                [sys.executable, "-c", RACER, db, server.base_url, "8"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(2)
        ]
        outputs = [racer.communicate(timeout=60) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], [err for _, err in outputs]
    seen = [dict(line.split() for line in out.splitlines()) for out, _ in outputs]
    assert seen[0] == seen[1] and len(seen[0]) == 8  # both got the same job for every key
    assert fake.submissions == 8


# ------------------------------------------------------ answers not understood, interruptions


def test_an_answer_not_understood_that_names_a_job_keeps_it(tmp_path: Path) -> None:
    fake = FakeProvider()

    def garble(request: httpx.Request) -> httpx.Response:
        response = fake.handle(request)
        if request.method != "POST":
            return response
        return httpx.Response(200, json={**response.json(), "status": ["?"]})

    http = httpx.Client(transport=httpx.MockTransport(garble))
    options: dict[str, Any] = {"api_key": "k", "base_url": fake.api_origin, "poll": FAST}
    with mj.Client(P, http_client=http, store=tmp_path / "jobs.db", **options) as client:
        with pytest.raises(mj.ProtocolError, match="which is kept") as caught:
            kitten(client, key="k")
        job_id = caught.value.job_id
        assert job_id in fake.jobs
        count = len(fake.requests)
        again = kitten(client, key="k")  # the kept job; nothing sent
        assert again.id == job_id and len(fake.requests) == count
        assert again.wait().status is mj.JobStatus.SUCCEEDED
        assert [j.id for j in client.jobs(status="succeeded")] == [job_id]
    assert fake.submissions == 1


def test_an_interrupted_submit_is_kept_unknown(tmp_path: Path) -> None:
    fake = FakeProvider()

    def interrupt(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise KeyboardInterrupt
        return fake.handle(request)

    http = httpx.Client(transport=httpx.MockTransport(interrupt))
    with mj.Client(
        P, api_key="k", base_url=fake.api_origin, http_client=http, store=tmp_path / "j.db"
    ) as client:
        with pytest.raises(KeyboardInterrupt):
            kitten(client, key="k")
        (unknown,) = client.jobs(status="submit_unknown")
    assert unknown.key == "k" and "interrupted" in (unknown.error or "")


@pytest.mark.anyio
async def test_a_cancelled_async_submit_is_kept_unknown(tmp_path: Path) -> None:
    fake = FakeProvider()

    async def stall(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            await anyio.sleep(30)
        return fake.handle(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(stall))
    options: dict[str, Any] = {"api_key": "k", "base_url": fake.api_origin, "http_client": http}
    async with mj.AsyncClient(P, store=tmp_path / "j.db", **options) as client:
        with anyio.move_on_after(0.1):
            await kitten(client, key="k")
        (unknown,) = await client.jobs(status="submit_unknown")
        assert unknown.key == "k"
        assert await client.jobs() == []
    await http.aclose()


# --------------------------------------------------------------------------- group commit


def test_one_failing_fact_in_a_group_fails_alone(tmp_path: Path) -> None:
    from mediajobs._models import JobData
    from mediajobs._steps import SubmitAccepted, SubmitIntent
    from mediajobs._store._wiring import _Pending, recorder_for

    with mj.JobStore(tmp_path / "jobs.db") as store:
        recorder = recorder_for(store)
        assert recorder_for(store) is recorder  # one per store: clients sharing it group too
        stray = JobData(id="j9", provider=P, status=mj.JobStatus.QUEUED, raw_status="q")
        events = [
            SubmitIntent(P, "image", "m", None, "h1", "k1"),
            SubmitAccepted(stray, "h9", "never-submitted"),
            SubmitIntent(P, "image", "m", None, "h2", "k2"),
        ]
        group = [_Pending(event, waited=True) for event in events]
        recorder._queue = list(group)
        recorder._lead()  # as the first of several concurrent callers would
        assert all(item.finished and item.done and item.done.is_set() for item in group)
        assert isinstance(group[1].error, mj.StoreError)
        assert group[0].error is None and group[2].error is None
        assert {r.key for r in store.jobs(P, status="submitting")} == {"k1", "k2"}


def test_many_threads_record_at_once(tmp_path: Path) -> None:
    from mediajobs._steps import SubmitIntent
    from mediajobs._store._wiring import recorder_for

    with mj.JobStore(tmp_path / "jobs.db") as store:
        recorder = recorder_for(store)
        answers: list[Any] = []

        def submit(i: int) -> None:
            intent = SubmitIntent(P, "image", "m", None, f"h{i}", f"k{i % 10}", patience=60)
            answers.append(recorder(intent))

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(30)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sends = [a for a in answers if a is None]
        assert len(sends) == 10  # one sender per key; the others are told to wait
        assert len(store.jobs(P, status="submitting")) == 10


def test_observations_leave_the_connection_durable(tmp_path: Path) -> None:
    with mj.JobStore(tmp_path / "jobs.db") as store:
        store.begin_submit(P, "k")
        store.mark_accepted(P, "k", {"id": "j", "provider": P, "status": "queued"})
        assert store.record_status(P, "j", {"id": "j", "provider": P, "status": "running"})
        conn = store._backend._pool.acquire()  # type: ignore[attr-defined]
        try:
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again
        finally:
            store._backend._pool.release(conn)  # type: ignore[attr-defined]
