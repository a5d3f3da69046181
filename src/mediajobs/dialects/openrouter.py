"""OpenRouter's async video API: ``/api/v1/videos`` on ``https://openrouter.ai``.

A job is created with ``POST /api/v1/videos`` (answered 202) and read with
``GET /api/v1/videos/{id}`` (see docs/providers.md, "OpenRouter"). Job bodies carry no
creation or completion time; a failure reason is a plain string in ``error``; outputs are
``unsigned_urls`` which, despite the name, are content routes on the API host that need the
Bearer key (the flows give it because :meth:`Dialect.is_api_url` says so). Submit and poll
bodies share one shape, parsed in one place.

Newer answers may also list ``urls``, signed storage URLs that need no key, and
``expires_at``, when OpenRouter's stored copy goes away. Then artifact ``i`` has ``urls[i]`` as
its :attr:`~mediajobs.Artifact.url` and ``unsigned_urls[i]`` as its
:attr:`~mediajobs.Artifact.fallback_url`, and ``expires_at`` becomes the job's.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import zip_longest
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from .._exceptions import ProtocolError
from .._models import Artifact, JobData, JobStatus, ModelInfo
from .._policy import PollPolicy
from .base import Dialect

__all__ = ["OpenRouter"]

_VIDEOS = "/api/v1/videos"


class OpenRouter(Dialect):
    """OpenRouter: video jobs only, Bearer auth, no cancel, a video model listing.

    Input images go as URLs (``data:`` URIs allowed) inside ``frame_images`` or
    ``input_references``, passed through ``**params``; there are no file uploads, so
    :attr:`file_params` is empty.
    """

    name: ClassVar[str] = "openrouter"
    env_var: ClassVar[str] = "OPENROUTER_API_KEY"
    kinds: ClassVar[frozenset[str]] = frozenset({"video"})
    default_hosts: ClassVar[Mapping[str, str]] = {"api": "https://openrouter.ai"}
    # OpenRouter asks clients to poll every 10-30 s: a quick start for short jobs, then its
    # 10 s floor within about 24 s of waiting (docs/performance.md, "Recommended defaults").
    default_poll: ClassVar[PollPolicy] = PollPolicy()
    status_table: ClassVar[Mapping[str, JobStatus]] = {
        "pending": JobStatus.QUEUED,
        "in_progress": JobStatus.RUNNING,
        "running": JobStatus.RUNNING,
        "completed": JobStatus.SUCCEEDED,
        "failed": JobStatus.FAILED,
        "cancelled": JobStatus.CANCELLED,
        "expired": JobStatus.EXPIRED,
    }
    file_params: ClassVar[frozenset[str]] = frozenset()
    supports_cancel: ClassVar[bool] = False

    def build_submit(
        self, kind: str, *, model: str, prompt: str | None, params: Mapping[str, Any]
    ) -> httpx.Request:
        """Build ``POST /api/v1/videos`` with JSON ``{model, prompt, **params}``.

        Args:
            kind: The job kind; only ``"video"``.
            model: The model, e.g. ``"bytedance/seedance-2.0"``.
            prompt: The prompt; left out of the body when ``None``.
            params: Further fields (``duration``, ``resolution``, ``frame_images``, …), as is.

        Returns:
            The request, without credentials.

        Raises:
            UnsupportedError: If ``kind`` is not ``"video"``.
        """
        self.check_kind(kind)
        body: dict[str, Any] = {"model": model}
        if prompt is not None:
            body["prompt"] = prompt
        body.update(params)
        return httpx.Request("POST", self.url(_VIDEOS), json=body)

    def parse_submit(self, response: httpx.Response, *, kind: str, model: str) -> JobData:
        """Parse the 202 answer ``{id, polling_url, status, generation_id?}``.

        Args:
            response: The response (body read).
            kind: The kind that was submitted.
            model: The model that was submitted (the job body does not repeat it).

        Returns:
            The job's first snapshot.

        Raises:
            APIError: For an error status.
            ProtocolError: For a body not in the documented shape; it carries the job id in
                ``job_id`` when the id could be read.
        """
        self.raise_for_status(response)
        data = self.json_object(response)
        with self.reading_job(self.job_id(data, "id")):
            return self._job(data, kind=kind, model=model, poll_url=None)

    def build_poll(self, job: JobData) -> httpx.Request:
        """Build ``GET`` of the job's ``polling_url``, or of ``/api/v1/videos/{id}``.

        The server's ``polling_url`` is used only when it is on an API host; otherwise (a
        foreign host, or a client pointed elsewhere with ``base_url``) the route is rebuilt
        from the id, so the key never goes to a host it does not belong to.

        Args:
            job: The last snapshot.

        Returns:
            The request, without credentials.
        """
        return self.get_request(job.poll_url, f"{_VIDEOS}/{quote(job.id, safe='')}")

    def parse_poll(self, response: httpx.Response, *, previous: JobData) -> JobData:
        """Parse a job body (``status``, ``unsigned_urls``, ``usage``, ``error``).

        Args:
            response: The response (body read).
            previous: The snapshot the poll was built from (kind, model and poll URL carry
                over).

        Returns:
            The new snapshot.

        Raises:
            APIError: For an error status.
            ProtocolError: For a body not in the documented shape.
        """
        self.raise_for_status(response)
        return self._job(
            self.json_object(response),
            kind=previous.kind,
            model=previous.model,
            poll_url=previous.poll_url,
        )

    def build_models(self) -> httpx.Request:
        """Build ``GET /api/v1/videos/models``.

        Returns:
            The request, without credentials.
        """
        return httpx.Request("GET", self.url(f"{_VIDEOS}/models"))

    def parse_models(self, response: httpx.Response) -> list[ModelInfo]:
        """Parse ``{data: [{id, name, supported_durations, …}, …]}``.

        Args:
            response: The response (body read).

        Returns:
            One :class:`~mediajobs.ModelInfo` per entry (all of kind ``"video"``), the entry
            as sent kept in ``raw``.

        Raises:
            APIError: For an error status.
            ProtocolError: If ``data`` is missing or not a list of objects, or an entry has
                no string ``id`` or a ``supported_*`` list of the wrong type.
        """
        self.raise_for_status(response)
        entries = self.field(self.json_object(response), "data", list)
        if not all(isinstance(entry, dict) for entry in entries):
            raise ProtocolError("expected a list of objects", provider=self.name, field="data")
        models = []
        for index, entry in enumerate(entries):
            try:
                models.append(self._model_info(entry))
            except ProtocolError as exc:
                exc.field = f"data[{index}].{exc.field}"  # the entry, for code reading it
                raise
        return models

    def build_content(self, job: JobData, artifact: Artifact) -> httpx.Request | None:
        """Build ``GET /api/v1/videos/{id}/content?index=N`` on the API host.

        That route serves the bytes directly and is what the official SDK uses. When the
        artifact URL already is that route, asking again would only repeat the refusal, so
        ``None`` is returned and the job must be re-read instead.

        Args:
            job: The job.
            artifact: The artifact whose URL was refused.

        Returns:
            The request, or ``None`` when it would repeat ``artifact.url``.
        """
        url = self.url(f"{_VIDEOS}/{quote(job.id, safe='')}/content?index={artifact.index}")
        return None if url == artifact.url else httpx.Request("GET", url)

    def _model_info(self, entry: Mapping[str, Any]) -> ModelInfo:
        return ModelInfo(
            id=self.field(entry, "id", str),
            name=self.field(entry, "name", str, default=None),
            kinds=("video",),
            durations=self.list_field(entry, "supported_durations", int),
            resolutions=self.list_field(entry, "supported_resolutions", str),
            aspect_ratios=self.list_field(entry, "supported_aspect_ratios", str),
            sizes=self.list_field(entry, "supported_sizes", str),
            raw=dict(entry),
        )

    def _job(
        self,
        body: Mapping[str, Any],
        *,
        kind: str | None,
        model: str | None,
        poll_url: str | None,
    ) -> JobData:
        job_id = self.job_id(body, "id")
        raw_status = self.field(body, "status", str)
        polling_url = self.field(body, "polling_url", str, default=None)
        usage = self.field(body, "usage", dict, default={})
        return JobData(
            id=job_id,
            provider=self.name,
            status=self.normalize_status(raw_status),
            raw_status=raw_status,
            kind=kind or "video",
            model=self.field(body, "model", str, default=model),
            artifacts=self._artifacts(body),
            error=self.error_info(body.get("error")),
            cost=self.field(usage, "cost", float, default=None),
            usage=usage,
            expires_at=self.time_field(body, "expires_at"),
            poll_url=self.resolve(polling_url, field="polling_url") if polling_url else poll_url,
            raw=dict(body),
        )

    def _artifacts(self, body: Mapping[str, Any]) -> list[Artifact]:
        """Pair the signed ``urls[i]`` (no key) with the keyed ``unsigned_urls[i]``."""
        signed = self._urls(body, "urls")
        keyed = self._urls(body, "unsigned_urls")
        return [
            Artifact(
                url=url or fallback or "",
                index=index,
                media_type="video/mp4",
                fallback_url=fallback if url else None,
            )
            for index, (url, fallback) in enumerate(zip_longest(signed, keyed))
        ]

    def _urls(self, body: Mapping[str, Any], name: str) -> list[str]:
        return [
            self.resolve(url, field=f"{name}[{index}]")
            for index, url in enumerate(self.list_field(body, name, str))
        ]
