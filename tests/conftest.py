from __future__ import annotations

import pytest

from mediajobs.dialects import base
from pg_cluster import postgres_server, store_target

__all__ = ["postgres_server", "store_target"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _forget_warned_statuses() -> None:
    base._warned_statuses.clear()
