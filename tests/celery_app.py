"""The Celery app the tests' workers run: ``celery -A celery_app worker`` (``tests`` on the path).

Everything comes from the environment the test gives the worker: the broker
(``MEDIAJOBS_TEST_BROKER``, also the result backend), the fake provider's URL
(``MEDIAJOBS_TEST_BASE_URL``), the poll interval in seconds (``MEDIAJOBS_TEST_POLL``; unset:
the provider's default policy), an ``X-Fake-Scenario`` sent with every submit
(``MEDIAJOBS_TEST_SCENARIO``, optional), a job store shared by the workers
(``MEDIAJOBS_TEST_STORE``, optional) and the broker's visibility timeout
(``MEDIAJOBS_TEST_VISIBILITY``). The API key is the ordinary
``OPENROUTER_API_KEY`` variable of the worker, read by the client, never by a message.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from celery import Celery

import mediajobs as mj
import mediajobs.celery
from celery_support import JSON_ONLY

broker = os.environ["MEDIAJOBS_TEST_BROKER"]
app = Celery("mediajobs_tests", broker=broker, backend=broker)
app.conf.update(
    JSON_ONLY,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_transport_options={
        # A killed worker's tasks come back once they are this old...
        "visibility_timeout": float(os.environ.get("MEDIAJOBS_TEST_VISIBILITY", "3600")),
        # ...at the next sweep for them: every second here (kombu's default: 100 s).
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    },
    worker_hijack_root_logger=False,
)

client: dict[str, Any] = {
    "base_url": os.environ["MEDIAJOBS_TEST_BASE_URL"],
    "retry": mj.RetryPolicy(initial=0.05, max_delay=0.2),
}
if "MEDIAJOBS_TEST_POLL" in os.environ:
    poll = float(os.environ["MEDIAJOBS_TEST_POLL"])
    client["poll"] = mj.PollPolicy(initial=poll, factor=1.0, max_interval=poll, jitter=0.1)
if "MEDIAJOBS_TEST_SCENARIO" in os.environ:
    client["headers"] = {"X-Fake-Scenario": os.environ["MEDIAJOBS_TEST_SCENARIO"]}
if "MEDIAJOBS_TEST_STORE" in os.environ:
    client["store"] = os.environ["MEDIAJOBS_TEST_STORE"]
mediajobs.celery.configure("openrouter", **client)


@app.task(name="tests.checksum")
def checksum(result: dict[str, Any]) -> dict[str, str]:
    """A pipeline step after run_job: the SHA-256 of every file it wrote."""
    return {path: hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in result["files"]}
