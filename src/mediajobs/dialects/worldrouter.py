"""WorldRouter: asynchronous image tasks, and Grok-style video generations.

Wire (docs/providers.md): ``POST /v1/images/generation_tasks`` answers 200 with a task body
(``task_id``/``id``, ``status``, ``created`` in unix seconds, ``created_at`` in ISO); the task is
read at ``GET /v1/images/generation_tasks/{task_id}`` until ``completed`` (with ``data[].url``)
or ``failed`` (with an error object or string). Video is created at
``POST /v1/videos/generations`` and read at ``GET /v1/videos/generations/{task_id}`` until
``succeeded`` (with ``content.video_url``). The status route must match the create route, so
each snapshot records its route (``"image"`` or ``"video"``) in :attr:`JobData.route`.

A stored task id does not tell its route: :meth:`WorldRouter.job_for_id` reads an image task
unless told ``kind="video"``, and :meth:`WorldRouter.fallback_kinds` names the video route as
the one to try when the image route answers 404.

A submit body without ``status`` is taken as ``queued`` (the task is accepted; its id must
not be lost), while a poll body without ``status`` is a protocol error.
There is no cancel and no listing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from .._exceptions import ProtocolError, UnsupportedError
from .._models import Artifact, JobData, JobStatus
from .._policy import PollPolicy
from .base import Dialect, is_input_file, media_type_of

__all__ = ["WorldRouter"]

_ROUTES: dict[str, str] = {
    "image": "/v1/images/generation_tasks",
    "video": "/v1/videos/generations",
}
"""Route (= kind) → create path; a task's status is read at ``<create path>/{task_id}``."""


class WorldRouter(Dialect):
    """The dialect of WorldRouter (``https://inference-api.worldrouter.ai``).

    Image tasks and video generations, both as JSON; input files are refused (image URLs
    left as strings pass through like any other parameter).
    """

    name = "worldrouter"
    env_var = "WORLDROUTER_API_KEY"
    kinds = frozenset(_ROUTES)
    default_hosts: ClassVar[Mapping[str, str]] = {"api": "https://inference-api.worldrouter.ai"}
    default_poll = PollPolicy()
    # WorldRouter documents queued, in_progress, completed, failed (and succeeded for video);
    # running, cancelled and expired: the rows every provider shares (docs/providers.md).
    status_table: ClassVar[Mapping[str, JobStatus]] = {
        "queued": JobStatus.QUEUED,
        "in_progress": JobStatus.RUNNING,
        "running": JobStatus.RUNNING,
        "completed": JobStatus.SUCCEEDED,  # image tasks
        "succeeded": JobStatus.SUCCEEDED,  # video generations
        "failed": JobStatus.FAILED,
        "cancelled": JobStatus.CANCELLED,
        "expired": JobStatus.EXPIRED,
    }

    def build_submit(
        self, kind: str, *, model: str, prompt: str | None, params: Mapping[str, Any]
    ) -> httpx.Request:
        """Build the JSON request that creates an image task or a video generation.

        Args:
            kind: ``"image"`` or ``"video"``.
            model: The model.
            prompt: The prompt, if any.
            params: Extra parameters, passed through (unsupported ones are ignored upstream).

        Returns:
            The request, without credentials.

        Raises:
            UnsupportedError: If the kind is not offered, or an input file (not a URL) is given.
        """
        self.check_kind(kind)
        files = sorted(
            name for name in self.file_params.intersection(params) if is_input_file(params[name])
        )
        if files:
            raise UnsupportedError(f"{self.name} takes no input files (got {', '.join(files)})")
        body: dict[str, Any] = {"model": model}
        if prompt is not None:
            body["prompt"] = prompt
        body.update(params)
        return httpx.Request("POST", self.url(_ROUTES[kind]), json=body)

    def build_poll(self, job: JobData) -> httpx.Request:
        """Build the request that reads a task on the route it was created on.

        Args:
            job: The last snapshot.

        Returns:
            The request, without credentials.
        """
        path = f"{_ROUTES[_route_of(job)]}/{quote(job.id, safe='')}"
        return httpx.Request("GET", self.url(path))

    def parse_submit(self, response: httpx.Response, *, kind: str, model: str) -> JobData:
        """Turn the submit response (200, or any 2xx) into the task's first snapshot.

        Args:
            response: The response (body read).
            kind: The kind that was submitted.
            model: The model that was submitted.

        Returns:
            The job; ``queued`` when the body gives no status.

        Raises:
            APIError: For an error status.
            ProtocolError: For a body not in the documented shape (no ``task_id`` or ``id``);
                it carries the task id in ``job_id`` when the id could be read.
        """
        self.raise_for_status(response)
        data = self.json_object(response)
        job_id = self.job_id(data, "task_id" if data.get("task_id") is not None else "id")
        with self.reading_job(job_id):
            accepted = self.job_for_id(job_id, kind=kind, model=model)
            raw_status = self.field(data, "status", str, default="queued")
            return self._snapshot(data, accepted, raw_status)

    def parse_poll(self, response: httpx.Response, *, previous: JobData) -> JobData:
        """Turn a task status response into a new snapshot.

        Args:
            response: The response (body read).
            previous: The snapshot the poll was built from (its route carries over).

        Returns:
            The job.

        Raises:
            APIError: For an error status.
            ProtocolError: For a body not in the documented shape (``status`` missing, or a
                finished task without output URLs).
        """
        self.raise_for_status(response)
        data = self.json_object(response)
        return self._snapshot(data, previous, self.field(data, "status", str))

    def job_for_id(
        self, job_id: str, *, kind: str | None = None, model: str | None = None
    ) -> JobData:
        """Return a placeholder snapshot for a stored task id.

        Args:
            job_id: The task id.
            kind: ``"video"`` for a video generation; anything else reads an image task.
            model: The model, when known.

        Returns:
            A queued snapshot with an empty ``raw``, its route chosen by ``kind``.

        Raises:
            ConfigurationError: If the id is empty.
        """
        placeholder = super().job_for_id(job_id, kind=kind, model=model)
        return placeholder.model_copy(update={"route": _route_of(placeholder)})

    def fallback_kinds(self, kind: str | None) -> tuple[str, ...]:
        """Return ``("video",)`` for a task id of unknown kind, read first as an image task.

        Args:
            kind: The kind the placeholder was built with.

        Returns:
            ``("video",)`` when ``kind`` is ``None``, else nothing.
        """
        return ("video",) if kind is None else ()

    def _snapshot(self, data: dict[str, Any], previous: JobData, raw_status: str) -> JobData:
        """Read a task body; what the body leaves out carries over from ``previous``."""
        status = self.normalize_status(raw_status)
        route = _route_of(previous)
        urls = self._output_urls(data, route)
        if status is JobStatus.SUCCEEDED and not urls:
            where = "content.video_url" if route == "video" else "data"
            raise ProtocolError("a finished task lists no output", provider=self.name, field=where)
        default_type = "video/mp4" if route == "video" else None
        return JobData(
            id=previous.id,
            provider=self.name,
            status=status,
            raw_status=raw_status,
            kind=previous.kind or route,
            model=self.field(data, "model", str, default=previous.model),
            artifacts=[
                Artifact(url=url, index=index, media_type=media_type_of(url, default_type))
                for index, url in enumerate(urls)
            ],
            error=self.error_info(data.get("error")),
            usage=self.field(data, "usage", dict, default={}),
            created_at=(
                self.time_field(data, "created_at")
                or self.time_field(data, "created")
                or previous.created_at
            ),
            completed_at=self.time_field(data, "completed_at"),
            route=route,
            raw=data,
        )

    def _output_urls(self, data: Mapping[str, Any], route: str) -> list[str]:
        """Read the output URLs: ``content.video_url`` for video, ``data[].url`` for images."""
        if route == "video":
            content = self.field(data, "content", dict, default={})
            video_url = self.field(content, "video_url", str, default=None)
            return [self.resolve(video_url, field="content.video_url")] if video_url else []
        entries: list[Any] = self.field(data, "data", list, default=[])
        urls = []
        for index, entry in enumerate(entries):
            url = entry.get("url") if isinstance(entry, dict) else None
            if not isinstance(url, str) or not url:
                raise ProtocolError(
                    "expected a URL", provider=self.name, field=f"data[{index}].url"
                )
            urls.append(self.resolve(url, field=f"data[{index}].url"))
        return urls


def _route_of(job: JobData) -> str:
    """Return the route a task lives on: its recorded route, else the one its kind implies."""
    if job.route is not None and job.route in _ROUTES:
        return job.route
    return "video" if job.kind == "video" else "image"
