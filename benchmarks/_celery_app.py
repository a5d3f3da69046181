"""The Celery app of ``bench_celery.py``'s workers (``celery -A _celery_app worker``).

The broker (also the result backend) comes from ``BENCH_BROKER``, the served fake from
``BENCH_BASE_URL`` and the jobs' script from ``BENCH_SCENARIO`` (an ``X-Fake-Scenario``
value sent with every submit). Polling uses the provider's default policy.
"""

from __future__ import annotations

import os

from celery import Celery

import mediajobs.celery

broker = os.environ["BENCH_BROKER"]
app = Celery("bench", broker=broker, backend=broker)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
mediajobs.celery.configure(
    "openrouter",
    api_key="test-key",
    base_url=os.environ["BENCH_BASE_URL"],
    headers={"X-Fake-Scenario": os.environ["BENCH_SCENARIO"]},
)
