"""What a fake job does: the :class:`Scenario` value and the named presets.

A scenario is chosen once per submitted job (see :meth:`FakeProvider.script`) and then decides
everything about that job: how its status progresses, how it ends, what its artifacts are and
which failures the fake injects on the way.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from types import MappingProxyType
from typing import Any, Literal

__all__ = ["MALFORMED_PLACES", "PRESETS", "WEBHOOK_FAULTS", "Scenario", "presets_in"]

MALFORMED_PLACES = frozenset({"submit", "submit_fields", "poll", "poll_fields", "content"})
"""The places :attr:`Scenario.malformed` can break."""

WEBHOOK_FAULTS = frozenset(
    {"duplicate", "out_of_order", "bad_signature", "stale_timestamp", "lost"}
)
"""The faults :attr:`Scenario.webhook_faults` can inject."""

_PRESET_TOKEN = re.compile(r"(?<![\w-])fake:([a-z][a-z0-9-]*)")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """The script one fake job follows, from submit to download.

    Statuses are written in the normalized vocabulary (``"queued"``, ``"running"``,
    ``"succeeded"``, ``"failed"``, ``"cancelled"``, ``"expired"``) and translated to each
    provider's raw words (OpenRouter ``pending``, OneRouter ``processing``...). Any other string
    is sent verbatim, which is how an unknown raw status is simulated.
    """

    steps: Sequence[str] = ("queued", "running")
    """Statuses shown, in order, before the outcome."""
    polls_per_step: int = 1
    """How many status polls each step lasts (used unless ``seconds_per_step`` is set)."""
    seconds_per_step: float | None = None
    """How long each step lasts on the fake's clock, counted from the submit."""
    outcome: str = "succeeded"
    """The final status; a non-normalized string is an unknown raw status that stays forever."""
    error_message: str = "The fake provider failed this job on purpose."
    """The message of a failed job."""
    error_code: str = "generation_failed"
    """The error code of a failed job, where the provider sends one."""
    raw_statuses: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Overrides of the normalized → raw translation, e.g. ``{"failed": "error"}`` (OneRouter)."""
    artifact_count: int | None = None
    """How many artifacts a success has; ``None``: the request's ``n`` if any, else 1."""
    artifact_size: int = 4096
    """Bytes per artifact, generated on the fly: any size costs no memory."""
    content_type: str | None = None
    """Artifact media type; ``None``: by kind (``image/png``, ``video/mp4``, ``audio/mpeg``,
    ``application/json`` for transcriptions) or by WorldRouter's ``output_format``."""
    cost: float | None = 0.05
    """The cost reported on success, in each provider's usage shape."""
    poll_errors: Mapping[int, int] = dataclasses.field(default_factory=dict)
    """Poll number (1-based, counting every poll) → HTTP status sent instead of the job."""
    download_errors: Mapping[int, int] = dataclasses.field(default_factory=dict)
    """Download number (1-based, per job, over all its artifacts) → HTTP status sent instead."""
    retry_after: str | None = None
    """``Retry-After`` sent with injected errors (``poll_errors``, ``submit_status``...)."""
    poll_retry_after: str | None = None
    """``Retry-After`` sent on normal poll answers: a server hint for the next poll."""
    submit_status: int | None = None
    """Answer the submit with this error status and create no job."""
    submit_drop_after_record: bool = False
    """Create and record the job, then cut the connection without answering."""
    drop_download_after: int | None = None
    """Cut each artifact's first download after this many body bytes; retries then succeed."""
    ignore_range: bool = False
    """Storage ignores ``Range`` and always sends the whole body with 200."""
    expired_urls: bool = False
    """The first pre-signed URLs a job hands out are already expired (storage answers 403)."""
    url_ttl: int = 7 * 24 * 3600
    """Lifetime of pre-signed URLs, in seconds."""
    malformed: AbstractSet[str] = frozenset()
    """Where to answer garbage: ``"submit"`` / ``"poll"`` (invalid JSON), ``"submit_fields"`` /
    ``"poll_fields"`` (JSON without the required fields), ``"content"`` (an HTML page instead of
    the bytes; TheRouter's ``content_url`` redirects without ``Location``)."""
    envelope_error: int | None = None
    """OneRouter: every poll answers HTTP 200 with this envelope ``code``."""
    onerouter_http_errors: bool = False
    """OneRouter: send injected errors as real HTTP statuses instead of envelope codes."""
    therouter_shape: Literal["unsigned_urls", "result_data"] = "unsigned_urls"
    """TheRouter success shape: ``unsigned_urls[]`` or ``result.data[].url``."""
    therouter_iso_expires_at: bool = False
    """TheRouter: send ``expires_at`` as an ISO string instead of a unix time."""
    onerouter_shape: Literal["outputs", "urls_video"] = "outputs"
    """OneRouter success shape: ``outputs[]`` or ``urls.video``."""
    relative_polling_url: bool = False
    """OpenRouter: send ``polling_url`` relative (``/api/v1/videos/<id>``)."""
    openrouter_shape: Literal["unsigned_urls", "signed_urls"] = "unsigned_urls"
    """OpenRouter success shape: ``unsigned_urls[]`` only (they need the key), or the newer
    answer that adds ``urls[]`` (pre-signed storage URLs that need no key) and ``expires_at``."""
    webhook_faults: AbstractSet[str] = frozenset()
    """OpenRouter webhooks of a fake with a ``webhook_secret``: faults of this job's terminal
    delivery, any of ``"duplicate"`` (sent twice), ``"out_of_order"`` (a stale ``in_progress``
    event follows), ``"bad_signature"``, ``"stale_timestamp"`` and ``"lost"`` (never sent)."""

    def __post_init__(self) -> None:
        freeze = object.__setattr__
        freeze(self, "steps", tuple(self.steps))
        freeze(self, "malformed", frozenset(self.malformed))
        freeze(self, "webhook_faults", frozenset(self.webhook_faults))
        for name in ("raw_statuses", "poll_errors", "download_errors"):
            freeze(self, name, MappingProxyType(dict(getattr(self, name))))
        if self.polls_per_step < 1:
            raise ValueError("polls_per_step must be at least 1")
        if self.seconds_per_step is not None and self.seconds_per_step <= 0:
            raise ValueError("seconds_per_step must be positive")
        if self.artifact_size < 0 or (self.artifact_count is not None and self.artifact_count < 0):
            raise ValueError("artifact_size and artifact_count cannot be negative")
        if unknown := self.malformed - MALFORMED_PLACES:
            raise ValueError(f"unknown malformed places: {sorted(unknown)}")
        if unknown := self.webhook_faults - WEBHOOK_FAULTS:
            raise ValueError(f"unknown webhook faults: {sorted(unknown)}")
        if self.therouter_shape not in ("unsigned_urls", "result_data"):
            raise ValueError(f"unknown therouter_shape: {self.therouter_shape!r}")
        if self.onerouter_shape not in ("outputs", "urls_video"):
            raise ValueError(f"unknown onerouter_shape: {self.onerouter_shape!r}")
        if self.openrouter_shape not in ("unsigned_urls", "signed_urls"):
            raise ValueError(f"unknown openrouter_shape: {self.openrouter_shape!r}")

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> Scenario:
        """Build a scenario from JSON-like data (the ``X-Fake-Scenario`` header's form).

        Args:
            fields: Field names to values; lists become tuples or sets and the keys of
                ``poll_errors`` / ``download_errors`` may be strings.

        Returns:
            A scenario with the other fields at their defaults.

        Raises:
            ValueError: On an unknown field or an invalid value.
        """
        return cls().merged(fields)

    @classmethod
    def from_preset(cls, name: str) -> Scenario:
        """Return the named preset (see :data:`PRESETS`).

        Args:
            name: A preset name such as ``"fail"`` or ``"slow"``.

        Returns:
            The default scenario with the preset applied.

        Raises:
            ValueError: If no preset has that name.
        """
        return cls().merged(_preset(name))

    def merged(self, changes: Mapping[str, Any]) -> Scenario:
        """Return a copy with some fields replaced, coercing JSON-like values.

        Args:
            changes: Field names to new values.

        Returns:
            The new scenario.

        Raises:
            ValueError: On an unknown field or an invalid value.
        """
        known = {f.name for f in dataclasses.fields(self)}
        if unknown := set(changes) - known:
            raise ValueError(f"unknown scenario fields: {sorted(unknown)}")
        coerced = dict(changes)
        for name in ("poll_errors", "download_errors"):
            if name in coerced:
                coerced[name] = {int(k): int(v) for k, v in dict(coerced[name]).items()}
        try:
            return dataclasses.replace(self, **coerced)
        except TypeError as exc:
            raise ValueError(str(exc)) from exc

    def with_presets(self, names: Iterable[str]) -> Scenario:
        """Return a copy with named presets applied in order.

        Args:
            names: Preset names.

        Returns:
            The new scenario.

        Raises:
            ValueError: If a name is not a preset.
        """
        scenario = self
        for name in names:
            scenario = scenario.merged(_preset(name))
        return scenario

    @classmethod
    def from_header(cls, value: str, base: Scenario | None = None) -> Scenario:
        """Parse an ``X-Fake-Scenario`` header: a JSON object of fields.

        Args:
            value: The header value.
            base: The scenario whose fields the header overrides (default: the defaults).

        Returns:
            The scenario.

        Raises:
            ValueError: If the value is not a JSON object of known fields.
        """
        try:
            fields = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from exc
        if not isinstance(fields, dict):
            raise ValueError("must be a JSON object of scenario fields")
        return (base or cls()).merged(fields)


PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "fail": {"outcome": "failed"},
        "cancel": {"outcome": "cancelled"},
        "expire": {"outcome": "expired"},
        "unknown": {"outcome": "mystery_state"},
        "slow": {"steps": ("queued", "running"), "seconds_per_step": 2.0},
        "flaky": {
            "poll_errors": {1: 503, 2: 429},
            "retry_after": "1",
            "drop_download_after": 1024,
        },
        "big": {"artifact_size": 64 * 1024 * 1024},
        "many": {"artifact_count": 3},
        "expired-urls": {"expired_urls": True},
        "signed-urls": {"openrouter_shape": "signed_urls"},
        "malformed": {"malformed": frozenset({"poll"})},
    }
)
"""Named scenario changes, selectable from a prompt or model with ``fake:<name>``."""


def _preset(name: str) -> Mapping[str, Any]:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset fake:{name} (known: {', '.join(PRESETS)})") from None


def presets_in(texts: Iterable[str]) -> list[str]:
    """Find the ``fake:<name>`` tokens in some request texts (prompt, model...).

    Args:
        texts: The texts to scan.

    Returns:
        Preset names in order of appearance (unknown names included, to be reported).
    """
    return [m.group(1) for text in texts for m in _PRESET_TOKEN.finditer(text)]
