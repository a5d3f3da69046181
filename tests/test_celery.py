"""mediajobs.celery on real parts: a Redis server, ``celery worker`` processes, the served fake.

Jobs last seconds on the fake's clock (``Scenario.seconds_per_step``); the workers poll them
with a short fixed policy, each poll a task scheduled with a ``countdown``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery, signature

import mediajobs as mj
import mediajobs.celery as mjc
from celery_support import API_KEY, Monitor, producer, wait_until, worker_env, workers
from mediajobs.testing import FakeProvider, FakeServer, Scenario
from redis_server import redis_url

__all__ = ["redis_url"]

pytestmark = pytest.mark.e2e


@pytest.fixture
def broker(redis_url: str) -> str:
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    return redis_url


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer(FakeProvider()) as server:
        yield server


@pytest.fixture
def app(broker: str) -> Iterator[Celery]:
    app = producer(broker)
    yield app
    app.close()


def lasting(server: FakeServer, model: str, seconds: float, **changes: object) -> None:
    """Jobs of ``model`` run for ``seconds`` on the fake's clock, then end as ``changes`` say."""
    scenario = Scenario(steps=("running",), seconds_per_step=seconds).merged(changes)
    server.fake.script(scenario, model=model, times=None)


def enqueue(dest: Path, model: str, **extra: object):  # type: ignore[no-untyped-def]
    return mjc.run_job.delay(
        provider="openrouter",
        kind="video",
        model=model,
        prompt="a lighthouse",
        dest_dir=str(dest),
        **extra,
    )


def test_one_job_round_trips_through_json_and_no_key_reaches_the_broker(
    app: Celery, broker: str, fake: FakeServer, tmp_path: Path
) -> None:
    lasting(fake, "m-short", 3.0)
    with Monitor(broker) as monitor, workers(worker_env(broker, fake.base_url, poll=0.3)):
        result = enqueue(tmp_path, "m-short", seconds=4).get(timeout=60)
    assert json.loads(json.dumps(result)) == result
    with mj.Client("openrouter", api_key="unused") as client:
        job = client.job_from_dict(result["job"])
    assert job.status is mj.JobStatus.SUCCEEDED
    assert [Path(p).name for p in result["files"]] == [f"{job.id}_0.mp4"]
    assert Path(result["files"][0]).stat().st_size == 4096
    assert fake.fake.submissions == 1
    assert fake.fake.jobs[job.id].polls >= 2, "polled until done, each poll its own task"
    assert monitor.commands, "the monitor saw the broker's traffic"
    assert not [c for c in monitor.commands if API_KEY in c]
    assert not [c for c in monitor.commands if API_KEY[-16:] in c]


def test_fifty_jobs_on_one_worker_of_two_processes_finish_in_about_the_longest_jobs_time(
    app: Celery, broker: str, fake: FakeServer, tmp_path: Path
) -> None:
    lengths = [5 + 15 * i / 49 for i in range(50)]  # 5 s to 20 s
    for i, seconds in enumerate(lengths):
        lasting(fake, f"m-{i}", seconds)
    with workers(worker_env(broker, fake.base_url, poll=1.0), concurrency=2):
        started = time.monotonic()
        results = [enqueue(tmp_path, f"m-{i}") for i in range(50)]
        done = [r.get(timeout=100) for r in results]
        elapsed = time.monotonic() - started
    assert len(done) == 50
    assert all(d["job"]["status"] == "succeeded" for d in done)
    assert len({f for d in done for f in d["files"]}) == 50
    assert fake.fake.submissions == 50
    # Two processes that slept through each job would need sum(lengths) / 2 seconds.
    assert elapsed < sum(lengths) / 4


def test_a_worker_killed_mid_run_loses_nothing_and_submits_nothing_twice(
    app: Celery, broker: str, fake: FakeServer, tmp_path: Path
) -> None:
    for i in range(12):
        lasting(fake, f"k-{i}", 4 + i % 4)
    out, store = tmp_path / "out", str(tmp_path / "jobs.db")
    env = worker_env(broker, fake.base_url, poll=0.5, visibility=10, store=store)
    with workers(env, concurrency=2) as (first,):
        results = [enqueue(out, f"k-{i}") for i in range(12)]
        wait_until(lambda: fake.fake.submissions >= 4, 30, "a third of the jobs submitted")
        first.kill()
        in_flight = [r for r in results if not r.ready()]
        assert in_flight, "the worker died with jobs rendering"
    with workers(env, concurrency=2):
        done = [r.get(timeout=90) for r in results]
    assert all(d["job"]["status"] == "succeeded" for d in done)
    ids = [d["job"]["id"] for d in done]
    assert len(set(ids)) == 12
    assert fake.fake.submissions == 12, "one job per run_job, whatever was redelivered"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        f"{job_id}_0.mp4" for job_id in ids
    )
    with mj.Client("openrouter", api_key="k", store=store) as client:
        stored = client.jobs()
    assert sorted(job.id for job in stored) == sorted(ids)
    assert all(job.key.startswith("celery-") and len(job.files) == 1 for job in stored)


def test_a_failed_job_fails_the_task_with_a_typed_error(
    app: Celery, broker: str, fake: FakeServer, tmp_path: Path
) -> None:
    lasting(fake, "m-bad", 0.5, outcome="failed")
    with workers(worker_env(broker, fake.base_url, poll=0.3)):
        failing = enqueue(tmp_path, "m-bad")
        unsupported = mjc.run_job.delay(
            provider="openrouter", kind="speech", model="m", prompt="hi", dest_dir=str(tmp_path)
        )
        with pytest.raises(mj.JobFailedError) as failed:
            failing.get(timeout=60)
        with pytest.raises(mj.UnsupportedError):
            unsupported.get(timeout=60)
    error = failed.value
    assert isinstance(error, mj.JobError)
    assert error.job["status"] == "failed"
    assert error.job["id"] in str(error)
    assert "on purpose" in str(error)
    assert failing.state == "FAILURE"
    assert list(tmp_path.iterdir()) == []


def test_a_chain_after_run_job_gets_its_result_and_a_given_key_submits_once(
    app: Celery, broker: str, fake: FakeServer, tmp_path: Path
) -> None:
    lasting(fake, "m-chain", 0.5)
    run = mjc.run_job.s(
        provider="openrouter", kind="video", model="m-chain", prompt="p", dest_dir=str(tmp_path),
        key="catalog-item-7",
    )  # fmt: skip
    with workers(worker_env(broker, fake.base_url, poll=0.3)):
        sums = (run | signature("tests.checksum")).apply_async().get(timeout=60)
        again = enqueue(tmp_path, "m-chain", key="catalog-item-7").get(timeout=60)
    [(path, digest)] = sums.items()
    assert Path(path).parent == tmp_path
    assert again["files"] == [path]
    assert fake.fake.submissions == 1
    assert fake.fake.replays == 1
    assert len(digest) == 64


def test_finish_from_webhook_downloads_at_once_and_the_run_completes_with_those_files(
    app: Celery, broker: str, fake: FakeServer, tmp_path: Path
) -> None:
    lasting(fake, "m-hook", 0.2)
    # The first poll comes 6 s after the submit; the webhook's download does not wait for it.
    with workers(worker_env(broker, fake.base_url, poll=6.0)):
        result = enqueue(tmp_path, "m-hook")
        wait_until(lambda: fake.fake.submissions == 1, 30, "the submit")
        time.sleep(0.3)
        job_id = next(iter(fake.fake.jobs))
        with mj.Client("openrouter", api_key="k", base_url=fake.base_url) as client:
            event = type("Event", (), {"job": client.get(job_id)})()
        early = mjc.finish_from_webhook(event, tmp_path).get(timeout=30)
        assert not result.ready(), "the run is still waiting for its poll"
        polls_then = fake.fake.jobs[job_id].polls
        done = result.get(timeout=60)
    assert [Path(p).name for p in early["files"]] == [f"{job_id}_0.mp4"]
    assert done["files"] == early["files"]
    assert fake.fake.jobs[job_id].polls > polls_then, "the run saw the job done by its own poll"
    downloads = [r for r in fake.fake.requests if r.path.endswith("/content")]
    assert len(downloads) == 1, "the run found the file the webhook's download wrote"


def test_errors_cross_the_json_result_backend_with_their_type_and_job() -> None:
    backend = Celery("t", backend="cache+memory://").backend
    with mj.Client("openrouter", api_key="k") as client:
        job = client.job_from_dict(
            {"id": "vid_1", "provider": "openrouter", "status": "failed", "raw_status": "failed"}
        )
    sent = mjc.portable_error(mj.JobFailedError("openrouter job vid_1 failed", job=job))
    wire = json.loads(json.dumps(backend.prepare_exception(sent, "json")))
    back = backend.exception_to_python(wire)
    assert isinstance(back, mj.JobFailedError)
    assert back.job["id"] == "vid_1"
    assert str(back) == "openrouter job vid_1 failed"

    api = mj.RateLimitError(
        "slow down", status_code=429, body={"error": "x"}, provider="openrouter"
    )
    back = backend.exception_to_python(
        json.loads(json.dumps(backend.prepare_exception(mjc.portable_error(api), "json")))
    )
    assert isinstance(back, mj.RateLimitError)
    assert (back.status_code, back.body, back.provider, back.response) == (
        429,
        {"error": "x"},
        "openrouter",
        None,
    )


def test_configure_refuses_arguments_a_client_does_not_take() -> None:
    with pytest.raises(mj.ConfigurationError, match="api_keys"):
        mjc.configure("openrouter", api_keys="x")


def test_without_celery_the_module_says_which_extra_to_install() -> None:
    code = (
        "import sys; sys.modules['celery'] = None\n"
        "import mediajobs as mj\n"
        "try:\n"
        "    import mediajobs.celery\n"
        "except mj.ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert 'pip install "mediajobs[celery]"' in out.stdout


def test_arguments_that_are_not_json_are_refused_before_anything_is_sent() -> None:
    app = Celery("refuse", broker="memory://", backend="cache+memory://")
    app.set_current()
    try:
        with pytest.raises(mj.ConfigurationError, match="JSON values"):
            mjc.run_job.delay(
                provider="openrouter", kind="image_edit", model="m", prompt="p",
                dest_dir="out", image=b"\x89PNG",
            )  # fmt: skip
    finally:
        app.close()
