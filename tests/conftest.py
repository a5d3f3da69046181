from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from pg_cluster import postgres_server, store_target

# Property tests: "ci" (the default) keeps them quick; MEDIAJOBS_FUZZ=long runs many more.
for _name, _examples in (("ci", 40), ("long", 2_000)):
    settings.register_profile(
        _name,
        max_examples=_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
settings.load_profile("long" if os.environ.get("MEDIAJOBS_FUZZ") == "long" else "ci")

__all__ = ["postgres_server", "store_target"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
