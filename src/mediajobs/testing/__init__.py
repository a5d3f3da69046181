"""Test your code against a fake of all four providers, in-process or over real HTTP.

``FakeProvider`` speaks the wire shapes of TheRouter, WorldRouter, OpenRouter and OneRouter at
once; a ``Scenario`` scripts what each job does. Use ``fake.transport()`` with any httpx client,
or ``FakeServer`` to serve it on loopback (needs the ``testing`` extra: uvicorn). The pytest
plugin gives the fixtures ``fake_provider``, ``fake_client``, ``fake_async_client`` (in-process,
no sleeping) and ``fake_server``. ``WebhookSender`` posts signed OpenRouter webhook events, with
faults (repeats, reordering, bad signatures, lost deliveries). See ``docs/testing.md``.
"""

from __future__ import annotations

from ._fake import (
    DEFAULT_API_ORIGIN,
    DEFAULT_STORAGE_ORIGIN,
    FakeArtifact,
    FakeClock,
    FakeJob,
    FakeProvider,
    RecordedRequest,
)
from ._scenario import PRESETS, Scenario
from ._server import FakeServer, serve
from ._webhook_sender import WebhookDelivery, WebhookSender, webhook_event

__all__ = [
    "DEFAULT_API_ORIGIN",
    "DEFAULT_STORAGE_ORIGIN",
    "PRESETS",
    "FakeArtifact",
    "FakeClock",
    "FakeJob",
    "FakeProvider",
    "FakeServer",
    "RecordedRequest",
    "Scenario",
    "WebhookDelivery",
    "WebhookSender",
    "serve",
    "webhook_event",
]
