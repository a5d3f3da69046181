"""pytest fixtures for testing code against the fake providers.

Registered as the ``mediajobs`` pytest plugin when mediajobs is installed; otherwise add
``pytest_plugins = ["mediajobs.testing.pytest_plugin"]`` to your top-level ``conftest.py``.

The client fixtures talk to ``fake_provider`` in-process (no sockets) and never sleep: polls
and retries follow zero-delay policies, so a whole job (submit, polls, download) takes
milliseconds. Their provider is ``fake_provider_name`` (``"openrouter"``); override that fixture,
or parametrize it, to test another. mediajobs is imported when a fixture is first used and
uvicorn only by ``fake_server``, so the plugin loads without either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, TypedDict

import pytest

if TYPE_CHECKING:
    from mediajobs import AsyncClient, Client, PollPolicy, RetryPolicy
    from mediajobs.testing import FakeProvider, FakeServer

__all__ = [
    "fake_async_client",
    "fake_client",
    "fake_poll_policy",
    "fake_provider",
    "fake_provider_name",
    "fake_retry_policy",
    "fake_server",
]


@pytest.fixture
def fake_provider() -> Iterator[FakeProvider]:
    """A fresh in-process fake of the four providers; it accepts any non-empty API key.

    Yields:
        The fake; use ``fake_provider.transport()`` and ``fake_provider.api_origin``.
    """
    from mediajobs.testing import FakeProvider  # noqa: PLC0415  (keep the plugin light)

    fake = FakeProvider()
    yield fake
    fake.close()  # its webhook sender, if it sent any


@pytest.fixture
def fake_provider_name() -> str:
    """The provider the client fixtures speak: ``"openrouter"`` unless overridden.

    Returns:
        ``"therouter"``, ``"worldrouter"``, ``"openrouter"`` or ``"onerouter"``.
    """
    return "openrouter"


@pytest.fixture
def fake_poll_policy() -> PollPolicy:
    """A poll policy that sleeps one millisecond between polls (server hints included).

    Returns:
        The policy, for clients of your own.
    """
    from mediajobs import PollPolicy  # noqa: PLC0415

    return PollPolicy(
        initial=0.001,
        factor=1.0,
        max_interval=0.001,
        jitter=0.0,
        max_hint=0.001,
        min_interval=0.001,
    )


@pytest.fixture
def fake_retry_policy() -> RetryPolicy:
    """A retry policy that retries after one millisecond (``Retry-After`` included), five attempts.

    Returns:
        The policy, for clients of your own.
    """
    from mediajobs import RetryPolicy  # noqa: PLC0415

    return RetryPolicy(
        initial=0.001, max_delay=0.001, jitter=0.0, max_retry_after=0.001, min_delay=0.001
    )


class _Wiring(TypedDict):
    api_key: str
    base_url: str
    poll: PollPolicy
    retry: RetryPolicy


def _wiring(fake: FakeProvider, poll: PollPolicy, retry: RetryPolicy) -> _Wiring:
    """The client arguments shared by the sync and async client fixtures."""
    return {"api_key": fake.api_key, "base_url": fake.api_origin, "poll": poll, "retry": retry}


@pytest.fixture
def fake_client(
    fake_provider: FakeProvider,
    fake_provider_name: str,
    fake_poll_policy: PollPolicy,
    fake_retry_policy: RetryPolicy,
) -> Iterator[Client]:
    """A blocking :class:`~mediajobs.Client` wired to ``fake_provider`` in-process.

    Args:
        fake_provider: The fake it talks to.
        fake_provider_name: The provider it speaks.
        fake_poll_policy: Its poll policy (no sleeping).
        fake_retry_policy: Its retry policy (no sleeping).

    Yields:
        The client (closed afterwards).
    """
    import httpx  # noqa: PLC0415

    from mediajobs import Client  # noqa: PLC0415

    with (
        httpx.Client(transport=fake_provider.transport()) as http,
        Client(
            fake_provider_name,
            http_client=http,
            **_wiring(fake_provider, fake_poll_policy, fake_retry_policy),
        ) as client,
    ):
        yield client


@pytest.fixture
def fake_async_client(
    fake_provider: FakeProvider,
    fake_provider_name: str,
    fake_poll_policy: PollPolicy,
    fake_retry_policy: RetryPolicy,
) -> Iterator[AsyncClient]:
    """An :class:`~mediajobs.AsyncClient` wired to ``fake_provider`` in-process.

    A plain fixture, so it works from async tests under any plugin (anyio, pytest-asyncio)
    and any backend (asyncio, trio): the in-process transport holds no sockets.

    Args:
        fake_provider: The fake it talks to.
        fake_provider_name: The provider it speaks.
        fake_poll_policy: Its poll policy (no sleeping).
        fake_retry_policy: Its retry policy (no sleeping).

    Yields:
        The client (its HTTP client closed afterwards).
    """
    import anyio  # noqa: PLC0415
    import httpx  # noqa: PLC0415

    from mediajobs import AsyncClient  # noqa: PLC0415

    http = httpx.AsyncClient(transport=fake_provider.transport())
    try:
        yield AsyncClient(
            fake_provider_name,
            http_client=http,
            **_wiring(fake_provider, fake_poll_policy, fake_retry_policy),
        )
    finally:
        anyio.run(http.aclose)


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
