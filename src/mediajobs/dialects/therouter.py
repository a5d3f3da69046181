"""TheRouter: image, video and audio jobs behind one ``/v1/jobs/{id}`` polling surface.

Wire shape (docs/providers.md): a submit with ``?async=true`` answers 202 with a job body
(``id``, ``status``, ``polling_url``, times as unix seconds or ISO); ``GET /v1/jobs/{id}`` reads
any job; a succeeded job lists pre-signed ``unsigned_urls`` (or, in a second documented shape,
``result.data[].url``) and a ``content_url`` that redirects to fresh ones.

Two leniencies, both deliberate: a submit body without ``status`` is taken as ``queued`` (the
job is accepted and paid for, so its id must not be thrown away), and a poll body without
``id`` keeps the id that was polled. A poll body without ``status`` is a protocol error.

A succeeded job that lists no URLs but gives a ``content_url`` yields one artifact per output
(``image_count``, default 1), each read through ``/v1/jobs/{id}/content?index=N``; a count
above :data:`MAX_OUTPUTS` is refused as a protocol error rather than trusted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from .._exceptions import ProtocolError
from .._models import Artifact, JobData, JobStatus
from .._policy import PollPolicy
from .base import Dialect, is_input_file, media_type_of

__all__ = ["TheRouter"]

_SUBMIT_PATHS: dict[str, str] = {
    "image": "/v1/images/generations?async=true",
    "image_edit": "/v1/images/edits?async=true",
    "video": "/v1/videos",  # always asynchronous, no query needed
    "speech": "/v1/audio/speech?async=true",
    "transcription": "/v1/audio/transcriptions?async=true",
}
"""Kind → submit path. Image and audio routes stay synchronous without ``?async=true``."""

_MULTIPART_KINDS = frozenset({"image_edit", "transcription"})
"""Kinds that always go as multipart; any other kind switches to it when given a file."""

_PROMPT_FIELDS: dict[str, str] = {"speech": "input"}
"""Where the prompt goes when not in ``prompt``: the text to speak is ``input``, as on OpenAI."""

_ID_PREFIX_KINDS: dict[str, str] = {"img_": "image", "vid_": "video"}
"""Kind implied by an id prefix; ``aud_`` is left out, as it covers speech and transcription."""


_KIND_MEDIA_TYPES: dict[str, str] = {"video": "video/mp4", "speech": "audio/mpeg"}
"""Media type assumed when a URL has no known extension (the providers' default formats)."""

MAX_OUTPUTS = 100
"""The largest ``image_count`` believed: ten times the most images one request may ask for."""


class TheRouter(Dialect):
    """The dialect of TheRouter (``https://api.therouter.ai``).

    Submits go to the kind's route, always with ``?async=true`` where the route is otherwise
    synchronous; image edits and transcriptions (and any submit carrying a file) go as
    multipart. Cancel uses ``POST /v1/jobs/{id}/cancel``, a guess: TheRouter documents
    cancellation semantics but not the route.
    """

    name = "therouter"
    env_var = "THEROUTER_API_KEY"
    kinds = frozenset(_SUBMIT_PATHS)
    default_hosts: ClassVar[Mapping[str, str]] = {"api": "https://api.therouter.ai"}
    # Guidance: poll every 5-10 s; the measured default ramps from 2.5 s to that 5 s floor.
    default_poll = PollPolicy()
    status_table: ClassVar[Mapping[str, JobStatus]] = {
        "queued": JobStatus.QUEUED,
        "in_progress": JobStatus.RUNNING,
        "running": JobStatus.RUNNING,
        "succeeded": JobStatus.SUCCEEDED,
        "failed": JobStatus.FAILED,
        "cancelled": JobStatus.CANCELLED,
        "expired": JobStatus.EXPIRED,
    }
    supports_cancel = True

    # ------------------------------------------------------------------------ requests

    def build_submit(
        self, kind: str, *, model: str, prompt: str | None, params: Mapping[str, Any]
    ) -> httpx.Request:
        """Build the request that creates a job.

        The prompt goes in ``prompt``, except for speech, where it is the text to speak and
        goes in ``input`` (as on OpenAI). Multipart submits send scalar parameters as form
        fields and each file under its parameter name; a list of files goes as repeated
        ``<name>[]`` parts, the form OpenAI-compatible servers read for several images.

        Args:
            kind: The job kind.
            model: The model.
            prompt: The prompt, if any.
            params: Extra parameters; files as ``(filename, bytes, content_type)`` tuples, or
                lists of them (image URLs left as strings stay ordinary fields).

        Returns:
            The request, without credentials.

        Raises:
            UnsupportedError: If the kind is not offered.
        """
        self.check_kind(kind)
        fields: dict[str, Any] = {"model": model}
        if prompt is not None:
            fields[_PROMPT_FIELDS.get(kind, "prompt")] = prompt
        fields.update(params)
        url = self.url(_SUBMIT_PATHS[kind])
        files = {
            name: fields.pop(name)
            for name in list(fields)
            if name in self.file_params and is_input_file(fields[name])
        }
        if kind not in _MULTIPART_KINDS and not files:
            return httpx.Request("POST", url, json=fields)
        # Fields go as parts without a filename, so the body is multipart even with no file.
        parts: list[tuple[str, Any]] = [
            (name, (None, _form_value(value)))
            for name, value in fields.items()
            if value is not None
        ]
        for name, value in files.items():
            if isinstance(value, list):
                parts.extend((f"{name}[]", item) for item in value)
            else:
                parts.append((name, value))
        return httpx.Request("POST", url, files=parts)

    def build_poll(self, job: JobData) -> httpx.Request:
        """Build the request that reads a job's status.

        The server's ``polling_url`` is used when it points at TheRouter's API host (so never
        when ``base_url`` moved the client elsewhere); otherwise ``/v1/jobs/{id}``.

        Args:
            job: The last snapshot.

        Returns:
            The request, without credentials.
        """
        return self.get_request(job.poll_url, _job_path(job.id))

    def build_cancel(self, job: JobData) -> httpx.Request:
        """Build the request that cancels a job: ``POST /v1/jobs/{id}/cancel`` (a guess).

        Args:
            job: The job.

        Returns:
            The request, without credentials.
        """
        return httpx.Request("POST", self.url(_job_path(job.id) + "/cancel"))

    def build_content(self, job: JobData, artifact: Artifact) -> httpx.Request | None:
        """Build ``GET /v1/jobs/{id}/content``, which redirects to a fresh pre-signed URL.

        Args:
            job: The job.
            artifact: The artifact whose URL expired; ``?index=N`` is added for N > 0.

        Returns:
            The request, without credentials (the route needs them; the redirect must not
            get them).
        """
        return httpx.Request("GET", self._content_url(job.id, artifact.index))

    # ----------------------------------------------------------------------- responses

    def parse_submit(self, response: httpx.Response, *, kind: str, model: str) -> JobData:
        """Turn the submit response (202, or any 2xx) into the job's first snapshot.

        Args:
            response: The response (body read).
            kind: The kind that was submitted.
            model: The model that was submitted.

        Returns:
            The job; ``queued`` when the body gives no status.

        Raises:
            APIError: For an error status.
            ProtocolError: For a body not in the documented shape (``id`` missing, say); it
                carries the job id in ``job_id`` when the id could be read.
        """
        self.raise_for_status(response)
        data = self.json_object(response)
        job_id = self.job_id(data, "id")
        with self.reading_job(job_id):
            accepted = self.job_for_id(job_id, kind=kind, model=model)
            raw_status = self.field(data, "status", str, default="queued")
            return self._snapshot(data, accepted, raw_status)

    def parse_poll(self, response: httpx.Response, *, previous: JobData) -> JobData:
        """Turn a ``GET /v1/jobs/{id}`` response into a new snapshot.

        Args:
            response: The response (body read).
            previous: The snapshot the poll was built from.

        Returns:
            The job.

        Raises:
            APIError: For an error status.
            ProtocolError: For a body not in the documented shape (``status`` missing, say).
        """
        self.raise_for_status(response)
        data = self.json_object(response)
        return self._snapshot(data, previous, self.field(data, "status", str))

    def parse_cancel(self, response: httpx.Response, *, previous: JobData) -> JobData:
        """Turn the cancel response into a snapshot.

        The answer's shape is undocumented: a job body is read like a poll; anything else
        (an empty 2xx, an acknowledgement without ``status``) returns ``previous`` unchanged,
        and a refresh tells the new state.

        Args:
            response: The response (body read).
            previous: The job as it was.

        Returns:
            The job.

        Raises:
            APIError: For an error status.
            ProtocolError: For a body that is neither empty nor a JSON object.
        """
        self.raise_for_status(response)
        if not response.content.strip():
            return previous
        data = self.json_object(response)
        if data.get("status") is None:
            return previous
        return self._snapshot(data, previous, self.field(data, "status", str))

    # ------------------------------------------------------------------------- helpers

    def _snapshot(self, data: dict[str, Any], previous: JobData, raw_status: str) -> JobData:
        """Read a job body; what the body leaves out carries over from ``previous``."""
        status = self.normalize_status(raw_status)
        kind = previous.kind or _kind_from_id(previous.id)
        usage = self.field(data, "usage", dict, default={})
        polling_url = self.field(data, "polling_url", str, default=None)
        content_url = self.field(data, "content_url", str, default=None)
        urls = self._output_urls(data)
        if not urls and status is JobStatus.SUCCEEDED and content_url:
            # No URLs listed: the content route redirects to each output in turn.
            count = self.field(data, "image_count", int, default=1)
            if count > MAX_OUTPUTS:
                raise ProtocolError(
                    f"{count} outputs is more than the {MAX_OUTPUTS} believed",
                    provider=self.name,
                    field="image_count",
                )
            urls = [self._content_url(previous.id, index) for index in range(max(count, 1))]
        return JobData(
            id=previous.id,
            provider=self.name,
            status=status,
            raw_status=raw_status,
            kind=kind,
            model=self.field(data, "model", str, default=previous.model),
            artifacts=[
                Artifact(
                    url=url,
                    index=index,
                    media_type=media_type_of(url, _KIND_MEDIA_TYPES.get(kind or "")),
                )
                for index, url in enumerate(urls)
            ],
            error=self.error_info(data.get("error")),
            cost=self.field(usage, "cost_credits", float, default=None),
            usage=usage,
            created_at=self.time_field(data, "created_at") or previous.created_at,
            completed_at=self.time_field(data, "completed_at"),
            expires_at=self.time_field(data, "expires_at") or previous.expires_at,
            poll_url=(
                self.resolve(polling_url, field="polling_url") if polling_url else previous.poll_url
            ),
            content_url=(
                self.resolve(content_url, field="content_url")
                if content_url
                else previous.content_url
            ),
            route=previous.route,
            raw=data,
        )

    def _output_urls(self, data: Mapping[str, Any]) -> list[str]:
        """Read the output URLs from ``unsigned_urls[]``, else from ``result.data[].url``."""
        urls: list[Any] = self.field(data, "unsigned_urls", list, default=[])
        where = "unsigned_urls[{}]"
        if not urls:
            result = self.field(data, "result", dict, default={})
            entries: list[Any] = self.field(result, "data", list, default=[])
            urls = [entry.get("url") if isinstance(entry, dict) else None for entry in entries]
            where = "result.data[{}].url"
        for index, url in enumerate(urls):
            if not isinstance(url, str) or not url:
                raise ProtocolError("expected a URL", provider=self.name, field=where.format(index))
        return [self.resolve(url, field=where.format(index)) for index, url in enumerate(urls)]

    def _content_url(self, job_id: str, index: int) -> str:
        """Return the URL of ``GET /v1/jobs/{id}/content`` for one output."""
        query = f"?index={index}" if index > 0 else ""
        return self.url(f"{_job_path(job_id)}/content{query}")


def _job_path(job_id: str) -> str:
    """Return ``/v1/jobs/{id}`` with the id kept inside one path segment."""
    return "/v1/jobs/" + quote(job_id, safe="")


def _kind_from_id(job_id: str) -> str | None:
    """Return the kind an id's prefix implies, if it implies one."""
    return _ID_PREFIX_KINDS.get(job_id[:4])


def _form_value(value: Any) -> str:
    """Render a parameter as a multipart form field."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)
