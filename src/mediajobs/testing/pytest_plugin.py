"""pytest fixtures for testing code against the fake providers.

Registered as the ``mediajobs`` pytest plugin when mediajobs is installed; otherwise add
``pytest_plugins = ["mediajobs.testing.pytest_plugin"]`` to your top-level ``conftest.py``.
uvicorn is imported only by the ``fake_server`` fixture, so the plugin loads without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mediajobs.testing import FakeProvider, FakeServer

__all__ = ["fake_provider", "fake_server"]


@pytest.fixture
def fake_provider() -> FakeProvider:
    """A fresh in-process fake of the four providers (API key ``test-key``).

    Returns:
        The fake; use ``fake_provider.transport()`` and ``fake_provider.api_origin``.
    """
    from mediajobs.testing import FakeProvider  # noqa: PLC0415  (keep the plugin light)

    return FakeProvider()


@pytest.fixture
def fake_server(fake_provider: FakeProvider) -> Iterator[FakeServer]:
    """The ``fake_provider`` served over HTTP on two free loopback ports.

    Args:
        fake_provider: The fake to serve.

    Yields:
        The running server; ``fake_server.base_url`` is the ``base_url`` to give a client.
    """
    from mediajobs.testing import FakeServer  # noqa: PLC0415

    with FakeServer(fake_provider) as server:
        yield server
