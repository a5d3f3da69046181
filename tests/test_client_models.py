"""``client.models()`` returns typed ``mj.ModelInfo`` entries, on both clients."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

import mediajobs as mj
from mediajobs.testing import FakeProvider


@pytest.fixture(params=["sync", "asyncio", "trio"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def models(mode: str, fake: FakeProvider, provider: str) -> Any:
    options: dict[str, Any] = {"api_key": fake.api_key, "base_url": fake.api_origin}
    if mode == "sync":
        with mj.Client(
            provider, http_client=httpx.Client(transport=fake.transport()), **options
        ) as client:
            return client.models()

    async def main() -> Any:
        async with mj.AsyncClient(
            provider, http_client=httpx.AsyncClient(transport=fake.transport()), **options
        ) as client:
            return await client.models()

    return anyio.run(main, backend=mode)


def test_openrouter_models_are_typed_entries(mode: str) -> None:
    fake = FakeProvider()
    entries = models(mode, fake, "openrouter")
    assert [type(entry) for entry in entries] == [mj.ModelInfo, mj.ModelInfo]
    veo = entries[0]
    assert veo.id == "google/veo-3.1" and veo.name == "Google: Veo 3.1"
    assert veo.kinds == ("video",)
    assert veo.durations == (4, 6, 8)
    assert veo.resolutions == ("720p", "1080p")
    assert veo.aspect_ratios == ("16:9", "9:16")
    assert veo.sizes == ()  # sent as null
    assert veo.raw["pricing_skus"] == {"per_second_720p": "0.40", "per_second_1080p": "0.50"}
    assert entries[1].sizes == ("1280x720", "720x1280")
    (request,) = fake.requests
    assert request.path == "/api/v1/videos/models" and request.authorized


@pytest.mark.parametrize("provider", ["therouter", "worldrouter", "onerouter"])
def test_providers_without_a_listing_refuse_before_any_request(mode: str, provider: str) -> None:
    fake = FakeProvider()
    with pytest.raises(mj.UnsupportedError, match="no model listing"):
        models(mode, fake, provider)
    assert fake.requests == []
