"""Literal types for the names users pass: providers and job kinds."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["KINDS", "PROVIDER_NAMES", "Kind", "ProviderName"]

ProviderName = Literal["therouter", "worldrouter", "openrouter", "onerouter"]
"""The built-in providers' names, as given to ``Client(provider)``."""

Kind = Literal["image", "image_edit", "video", "speech", "transcription"]
"""The job kinds, as given to ``client.submit(kind, ...)``."""

PROVIDER_NAMES: tuple[ProviderName, ...] = get_args(ProviderName)
"""Every :data:`ProviderName`, in declaration order."""

KINDS: tuple[Kind, ...] = get_args(Kind)
"""Every :data:`Kind`, in declaration order."""
