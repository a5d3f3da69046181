"""OpenRouter's async video API: ``/api/v1/videos`` on ``https://openrouter.ai``.

A job is created with ``POST /api/v1/videos`` (answered 202) and read with
``GET /api/v1/videos/{id}``. Job bodies carry no timestamps; a failure reason is a plain string
in ``error``; outputs are ``unsigned_urls`` which, despite the name, are content routes on the
API host that need the Bearer key (the flows give it because :meth:`Dialect.is_api_url` says
so). Submit and poll bodies share one shape, parsed in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from .._exceptions import ProtocolError
from .._models import Artifact, JobData, JobStatus
from .._policy import PollPolicy
from .._webhook_formats import OpenRouterWebhooks, WebhookFormat
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
    webhook_format: ClassVar[WebhookFormat | None] = OpenRouterWebhooks()
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
            ProtocolError: For a body not in the documented shape.
        """
        self.raise_for_status(response)
        return self._job(self.json_object(response), kind=kind, model=model, poll_url=None)

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

    def parse_models(self, response: httpx.Response) -> list[dict[str, Any]]:
        """Parse ``{data: [{id, name, supported_durations, …}, …]}``.

        Args:
            response: The response (body read).

        Returns:
            The model entries, as sent.

        Raises:
            APIError: For an error status.
            ProtocolError: If ``data`` is missing or not a list of objects.
        """
        self.raise_for_status(response)
        entries = self.field(self.json_object(response), "data", list)
        if not all(isinstance(entry, dict) for entry in entries):
            raise ProtocolError("expected a list of objects", provider=self.name, field="data")
        return [dict(entry) for entry in entries]

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

    def _job(
        self,
        body: Mapping[str, Any],
        *,
        kind: str | None,
        model: str | None,
        poll_url: str | None,
    ) -> JobData:
        job_id = self.field(body, "id", str)
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
            poll_url=self.resolve(polling_url) if polling_url else poll_url,
            raw=dict(body),
        )

    def _artifacts(self, body: Mapping[str, Any]) -> list[Artifact]:
        urls = self.field(body, "unsigned_urls", list, default=[])
        if not all(isinstance(url, str) for url in urls):
            raise ProtocolError(
                "expected a list of strings", provider=self.name, field="unsigned_urls"
            )
        return [
            Artifact(url=self.resolve(url), index=index, media_type="video/mp4")
            for index, url in enumerate(urls)
        ]
