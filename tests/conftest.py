from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from hostile import hostile
from pg_cluster import postgres_server, store_target

__all__ = ["hostile", "postgres_server", "store_target"]

# Property-based tests: a bounded run by default (CI), a long one on demand with
# MEDIAJOBS_FUZZ=long. Examples may build a client each, so no per-example deadline.
for _name, _examples in (("ci", 100), ("long", 4_000)):
    settings.register_profile(
        _name,
        max_examples=_examples,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
settings.load_profile("long" if os.environ.get("MEDIAJOBS_FUZZ") == "long" else "ci")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
