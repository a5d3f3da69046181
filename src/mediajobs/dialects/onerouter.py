"""OneRouter's async image and video tasks.

Both kinds are created with ``POST /v1/images/generations`` on the image host; a video task is
read with ``GET /v1/videos/tasks/{task_id}`` on the video host, an image task with
``GET /v1/images/tasks/{task_id}`` on the image host. Every answer is HTTP 200 wrapping an
envelope ``{code, message, data}`` whose ``code`` acts as the real status:
:meth:`OneRouter.raise_for_status` reads it exactly as it reads an HTTP status. The key is
sent raw, without ``Bearer`` (see docs/providers.md, "OneRouter").

A stored task id does not tell its kind: :meth:`OneRouter.job_for_id` reads a video task
unless told ``kind="image"``, and :meth:`OneRouter.fallback_kinds` names the image route as
the one to try when the video route answers 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from .._exceptions import error_class_for_status
from .._models import Artifact, JobData, JobStatus
from .._policy import PollPolicy
from .base import Dialect, load_json

__all__ = ["OneRouter"]

_ROUTES: Mapping[str, tuple[str, str]] = {
    "video": ("video", "/v1/videos/tasks/"),
    "image": ("api", "/v1/images/tasks/"),
}
"""Task kind (the ``object`` field) → (host role, status path prefix)."""

_DEFAULT_ROUTE = "video"
"""The route of a stored id whose kind is unknown: the documented async surface is video."""


class OneRouter(Dialect):
    """OneRouter: image and video tasks, raw-key auth, two hosts, envelope errors, no cancel.

    An envelope ``code`` of 0 or 2xx means success (0 is the other common "ok" convention of
    envelope APIs); any other code raises the :class:`~mediajobs.APIError` subclass an HTTP
    status of that value would, with ``status_code`` set to the code.
    """

    name: ClassVar[str] = "onerouter"
    env_var: ClassVar[str] = "ONEROUTER_API_KEY"
    kinds: ClassVar[frozenset[str]] = frozenset(_ROUTES)
    default_hosts: ClassVar[Mapping[str, str]] = {
        "api": "https://image.onerouter.pro",
        "video": "https://video.onerouter.pro",
    }
    default_poll: ClassVar[PollPolicy] = PollPolicy()
    status_table: ClassVar[Mapping[str, JobStatus]] = {
        "created": JobStatus.QUEUED,
        "in_progress": JobStatus.RUNNING,
        "processing": JobStatus.RUNNING,
        "running": JobStatus.RUNNING,
        "completed": JobStatus.SUCCEEDED,
        "succeeded": JobStatus.SUCCEEDED,
        "failed": JobStatus.FAILED,
        "error": JobStatus.FAILED,
        "cancelled": JobStatus.CANCELLED,
        "expired": JobStatus.EXPIRED,
    }
    file_params: ClassVar[frozenset[str]] = frozenset()
    supports_cancel: ClassVar[bool] = False

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """Return ``Authorization: <key>``, the raw key OneRouter's docs send.

        Args:
            api_key: The key.

        Returns:
            The headers.
        """
        return {"Authorization": api_key}

    def raise_for_status(self, response: httpx.Response) -> None:
        """Raise for an error HTTP status, then for an error ``code`` in the envelope.

        Bodies that are not JSON objects carry no envelope and pass here (the ``parse_*``
        methods then report them as malformed); an unread (streamed) body is not read.

        Args:
            response: The response (body read).

        Raises:
            APIError: The subclass chosen by the HTTP status or else the envelope ``code``,
                with ``status_code`` set to that value and the envelope ``message``.
        """
        super().raise_for_status(response)
        try:
            body = load_json(response.content)
        except (ValueError, httpx.ResponseNotRead):
            return
        code = body.get("code") if isinstance(body, dict) else None
        if not isinstance(code, int) or isinstance(code, bool) or code == 0 or 200 <= code < 300:
            return
        message = body.get("message") or "error"
        raise error_class_for_status(code)(
            f"{self.name} answered code {code}: {message}",
            status_code=code,
            body=body,
            response=response,
            provider=self.name,
        )

    def build_submit(
        self, kind: str, *, model: str, prompt: str | None, params: Mapping[str, Any]
    ) -> httpx.Request:
        """Build ``POST /v1/images/generations`` (for video too) on the image host.

        The body is ``{model, content: [{type: "text", text: prompt}], **params}``; a
        ``content`` list given in ``params`` (image references, say) follows the text part.

        Args:
            kind: ``"image"`` or ``"video"``.
            model: The model, e.g. ``"bytedance/seedance"``.
            prompt: The prompt; no text part when ``None``.
            params: Further fields (``resolution``, ``ratio``, ``duration``, …), as is.

        Returns:
            The request, without credentials.

        Raises:
            UnsupportedError: If the kind is neither image nor video.
        """
        self.check_kind(kind)
        body: dict[str, Any] = {"model": model, **params}
        if prompt is not None:
            body["content"] = [{"type": "text", "text": prompt}, *params.get("content", [])]
        return httpx.Request("POST", self.url("/v1/images/generations"), json=body)

    def parse_submit(self, response: httpx.Response, *, kind: str, model: str) -> JobData:
        """Parse ``data: {task_id, object, model, status, urls: {get|query}, created_at}``.

        Args:
            response: The response (body read).
            kind: The kind that was submitted (the route unless ``object`` says otherwise).
            model: The model that was submitted.

        Returns:
            The job's first snapshot.

        Raises:
            APIError: For an error HTTP status or envelope code.
            ProtocolError: For a body not in the documented shape; it carries the task id in
                ``job_id`` when the id could be read.
        """
        data = self._data(response)
        with self.reading_job(self.job_id(data, "task_id")):
            return self._job(data, kind=kind, model=model, route=kind, poll_url=None)

    def build_poll(self, job: JobData) -> httpx.Request:
        """Build ``GET`` of the task's ``urls.get``, or of the status route of its kind.

        The server's URL is used only when it is on an API host; otherwise the route is
        rebuilt from the id, so the key never goes to a host it does not belong to.

        Args:
            job: The last snapshot.

        Returns:
            The request, without credentials.
        """
        role, prefix = _ROUTES[_route(job.route, job.kind)]
        return self.get_request(job.poll_url, prefix + quote(job.id, safe=""), role)

    def parse_poll(self, response: httpx.Response, *, previous: JobData) -> JobData:
        """Parse ``data: {status, fail_reason, outputs | urls.video, *_time, cost?}``.

        Args:
            response: The response (body read).
            previous: The snapshot the poll was built from (kind, model, route and poll URL
                carry over).

        Returns:
            The new snapshot.

        Raises:
            APIError: For an error HTTP status or envelope code.
            ProtocolError: For a body not in the documented shape.
        """
        return self._job(
            self._data(response),
            kind=previous.kind,
            model=previous.model,
            route=previous.route,
            poll_url=previous.poll_url,
        )

    def job_for_id(
        self, job_id: str, *, kind: str | None = None, model: str | None = None
    ) -> JobData:
        """Return a placeholder snapshot for a stored task id.

        The kind picks the status route; without one the video route is assumed, so pass
        ``kind="image"`` for image tasks.

        Args:
            job_id: The task id.
            kind: ``"image"`` or ``"video"``, when known.
            model: The model, when known.

        Returns:
            A queued snapshot with an empty ``raw``.

        Raises:
            ConfigurationError: If the id is empty.
            UnsupportedError: If the kind is neither image nor video.
        """
        if kind is not None:
            self.check_kind(kind)
        job = super().job_for_id(job_id, kind=kind, model=model)
        return job.model_copy(update={"route": _route(kind)})

    def fallback_kinds(self, kind: str | None) -> tuple[str, ...]:
        """Return ``("image",)`` for a task id of unknown kind, read first as a video task.

        Args:
            kind: The kind the placeholder was built with.

        Returns:
            ``("image",)`` when ``kind`` is ``None``, else nothing.
        """
        return ("image",) if kind is None else ()

    def _data(self, response: httpx.Response) -> dict[str, Any]:
        self.raise_for_status(response)
        return self.field(self.json_object(response), "data", dict)

    def _job(
        self,
        data: Mapping[str, Any],
        *,
        kind: str | None,
        model: str | None,
        route: str | None,
        poll_url: str | None,
    ) -> JobData:
        task_id = self.job_id(data, "task_id")
        raw_status = self.field(data, "status", str)
        task_object = self.field(data, "object", str, default=None)
        if task_object in _ROUTES:
            kind = route = task_object
        route = _route(route, kind)
        role = _ROUTES[route][0]
        urls = self.field(data, "urls", dict, default={})
        link = self.field(urls, "get", str, default=None) or self.field(
            urls, "query", str, default=None
        )
        cost = self.field(data, "cost", dict, default={})
        return JobData(
            id=task_id,
            provider=self.name,
            status=self.normalize_status(raw_status),
            raw_status=raw_status,
            kind=kind,
            model=self.field(data, "model", str, default=model),
            artifacts=[
                Artifact(url=self.resolve(url, role, field=where), index=index)
                for index, (where, url) in enumerate(self._outputs(data, urls))
            ],
            error=self.error_info(data.get("fail_reason")),
            cost=self.field(cost, "total_cost", float, default=None),
            usage=cost,
            created_at=self.time_field(data, "created_at") or self.time_field(data, "submit_time"),
            completed_at=self.time_field(data, "finish_time"),
            poll_url=self.resolve(link, role, field="urls.get") if link else poll_url,
            route=route,
            raw=dict(data),
        )

    def _outputs(self, data: Mapping[str, Any], urls: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Return ``(field, URL)`` of each output: ``outputs[]``, else ``urls.video``."""
        outputs = self.list_field(data, "outputs", str)
        if outputs:
            return [(f"outputs[{index}]", url) for index, url in enumerate(outputs)]
        video = self.field(urls, "video", str, default=None)
        return [("urls.video", video)] if video else []


def _route(*candidates: str | None) -> str:
    """Return the first candidate that names a status route, else the default route."""
    return next((c for c in candidates if c is not None and c in _ROUTES), _DEFAULT_ROUTE)
