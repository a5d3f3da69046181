"""mediajobs.celery on real parts: a Redis server, ``celery worker`` processes, the served fake.

Jobs last seconds on the fake's clock (``Scenario.seconds_per_step``); the workers poll them
with a short fixed policy, each poll a task scheduled with a ``countdown``.
"""

from __future__ import annotations

import json
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
    redis.Redis.from_url(redis_url).flushdb()
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
    lasting(fake, "m-short", 1.0)
    with Monitor(broker) as monitor, workers(worker_env(broker, fake.base_url, poll=0.3)):
        result = enqueue(tmp_path, "m-short", seconds=4).get(timeout=60)
    assert json.loads(json.dumps(result)) == result
    job = mj.Client("openrouter", api_key="unused").job_from_dict(result["job"])
    assert job.status is mj.JobStatus.SUCCEEDED
    assert [Path(p).name for p in result["files"]] == [f"{job.id}_0.mp4"]
    assert Path(result["files"][0]).stat().st_size == 4096
    assert fake.fake.submissions == 1
    assert fake.fake.jobs[job.id].polls >= 2, "polled until done, each poll its own task"
    assert monitor.commands, "the monitor saw the broker's traffic"
    assert not [c for c in monitor.commands if API_KEY in c]
    assert not [c for c in monitor.commands if API_KEY[-16:] in c]
