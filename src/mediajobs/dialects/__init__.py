"""Provider dialects: pure translators between each router's wire shape and the job model."""

from __future__ import annotations

from .base import Dialect, UnknownStatusWarning
from .onerouter import OneRouter
from .openrouter import OpenRouter
from .therouter import TheRouter
from .worldrouter import WorldRouter

__all__ = [
    "DIALECTS",
    "Dialect",
    "OneRouter",
    "OpenRouter",
    "TheRouter",
    "UnknownStatusWarning",
    "WorldRouter",
]

DIALECTS: dict[str, type[Dialect]] = {
    "therouter": TheRouter,
    "worldrouter": WorldRouter,
    "openrouter": OpenRouter,
    "onerouter": OneRouter,
}
"""Built-in dialects by provider name."""
