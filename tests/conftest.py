from __future__ import annotations

import os

import pytest
from hypothesis import settings

from hostile import hostile  # noqa: F401  (the fixture, for every test module)
from mediajobs.dialects import base

# Property-based tests: a bounded run by default (CI), a long one on demand with
# MEDIAJOBS_FUZZ=long. Examples are slow-ish (a client per example), so no per-example deadline.
settings.register_profile("ci", max_examples=250, deadline=None, print_blob=True)
settings.register_profile("long", max_examples=4_000, deadline=None, print_blob=True)
settings.load_profile("long" if os.environ.get("MEDIAJOBS_FUZZ") == "long" else "ci")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _forget_warned_statuses() -> None:
    base._warned_statuses.clear()
