from __future__ import annotations

import pytest

from hostile import hostile  # noqa: F401  (the fixture, for every test module)
from mediajobs.dialects import base


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _forget_warned_statuses() -> None:
    base._warned_statuses.clear()
