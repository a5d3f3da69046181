"""FakeProvider: one stateful fake speaking the wire shapes of all four providers.

Pure request → response: :meth:`FakeProvider.handle` takes an ``httpx.Request`` and returns an
``httpx.Response``, with no sockets. :meth:`FakeProvider.transport` plugs it into an
``httpx.Client`` or ``httpx.AsyncClient``; :class:`~mediajobs.testing.FakeServer` serves it over
real HTTP. The provider shapes live in ``_wires``, the job state in ``_state``.
"""

from __future__ import annotations

import dataclasses
import hmac
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ._scenario import Scenario, presets_in
from ._state import (
    DEFAULT_API_KEY,
    DEFAULT_API_ORIGIN,
    DEFAULT_STORAGE_ORIGIN,
    MAX_IN_MEMORY,
    TERMINAL,
    FakeArtifact,
    FakeClock,
    FakeJob,
    Incoming,
    RecordedRequest,
    phrase,
    redact,
)
from ._storage import UrlSigner, artifact_response, s3_error
from ._webhook_sender import WebhookSender
from ._wires import WIRES, OpenRouterWire, Wire, route

__all__ = [
    "DEFAULT_API_ORIGIN",
    "DEFAULT_STORAGE_ORIGIN",
    "FakeArtifact",
    "FakeClock",
    "FakeJob",
    "FakeProvider",
    "RecordedRequest",
]


@dataclasses.dataclass
class _Script:
    scenario: Scenario
    model: str | None
    provider: str | None
    remaining: int | None

    def matches(self, provider: str, model: str) -> bool:
        return (self.model is None or self.model == model) and (
            self.provider is None or self.provider == provider
        )


# --------------------------------------------------------------------------- the fake


class FakeProvider:
    """A stateful fake of TheRouter, WorldRouter, OpenRouter and OneRouter at once.

    Every documented route of the four providers is served from one API origin (their paths do
    not collide, except ``POST /v1/images/generations``: TheRouter's carries ``?async=true``,
    OneRouter's does not). Artifacts live on a second, storage origin behind pre-signed URLs.

    Args:
        clock: Seconds for progressions by elapsed time (default ``time.monotonic``).
        api_key: The only key accepted. ``None`` (the default) accepts any non-empty key, so
            an application's own keys work; a missing or malformed ``Authorization`` header
            is still answered 401 in the provider's error shape.
        scenario: The default scenario of new jobs.
        honor_idempotency: Answer a repeated ``Idempotency-Key`` (same provider, same key)
            with the job its first submit created, creating nothing; ``False`` makes every
            submit a new job, like a provider that ignores the header.
        webhook_secret: Send OpenRouter webhooks signed with this secret: when a job
            submitted with a ``callback_url`` reaches a terminal state (noticed on the fake's
            clock, by :meth:`tick`, which :class:`FakeServer` calls continually, and on every
            request), a signed event is posted to that URL from a background thread, retried
            with backoff on non-2xx answers. :attr:`Scenario.webhook_faults` injects faults.
        webhook_backoff: The first retry delay of a refused webhook, in seconds (doubled each
            time, at most 5 s, 8 attempts in all).

    Raises:
        ValueError: If ``api_key`` is empty.

    Example:
        >>> fake = FakeProvider()
        >>> client = httpx.Client(transport=fake.transport(), base_url=fake.api_origin)
    """

    def __init__(
        self,
        clock: Callable[[], float] | None = None,
        *,
        api_key: str | None = None,
        scenario: Scenario | None = None,
        honor_idempotency: bool = True,
        webhook_secret: str | None = None,
        webhook_backoff: float = 0.2,
    ) -> None:
        if api_key is not None and not api_key:
            raise ValueError("api_key cannot be empty (None accepts any key)")
        self.clock: Callable[[], float] = clock or time.monotonic
        self.api_key: str = api_key or DEFAULT_API_KEY
        """A key the fake accepts: the one given, else ``"test-key"``."""
        self.strict_key: bool = api_key is not None
        """Whether :attr:`api_key` is the only key accepted (else any non-empty key is)."""
        self.honor_idempotency = honor_idempotency
        """Whether a repeated ``Idempotency-Key`` returns the first job (read at each submit)."""
        self.submissions = 0
        """Submits that created a job (idempotent replays and rejected submits do not count)."""
        self.replays = 0
        """Submits answered with an earlier job because their ``Idempotency-Key`` repeated."""
        self.submits_by_key: Counter[tuple[str, str]] = Counter()
        """``(provider, Idempotency-Key)`` → submits received with it that were answered with
        a job (first and replayed alike)."""
        self._idempotent: dict[tuple[str, str], str] = {}
        self.scenario: Scenario = scenario or Scenario()
        """The scenario of jobs no script claims, read at each submit."""
        self.api_origin = DEFAULT_API_ORIGIN
        """Where the API is; :class:`FakeServer` sets the real origin while serving."""
        self.storage_origin = DEFAULT_STORAGE_ORIGIN
        """Where pre-signed URLs point; :class:`FakeServer` sets the real origin while serving."""
        self.requests: list[RecordedRequest] = []
        """Every request received, in order."""
        self.jobs: dict[str, FakeJob] = {}
        """Every job created, by id."""
        self._scripts: list[_Script] = []
        self._signer = UrlSigner()
        self._lock = threading.RLock()
        self._wires: dict[str, Wire] = {wire.name: wire(self) for wire in WIRES}
        self.webhook_secret = webhook_secret
        """The secret webhooks are signed with (read at each delivery); ``None``: none sent."""
        self.webhooks: WebhookSender | None = None
        """The sender of webhooks, once one was sent: ``webhooks.deliveries`` records them."""
        self.webhook_backoff = webhook_backoff
        self._awaiting_notice: set[str] = set()

    # ----------------------------------------------------------------- public API

    def accepts(self, key: str | None) -> bool:
        """Whether a request carrying this key is let in.

        Args:
            key: The key from a well-formed ``Authorization`` header, or ``None``.

        Returns:
            ``True`` for any non-empty key, or only for :attr:`api_key` when
            :attr:`strict_key`.
        """
        if not key:
            return False
        return not self.strict_key or hmac.compare_digest(key.encode(), self.api_key.encode())

    def submits_with_key(self, idempotency_key: str, provider: str | None = None) -> int:
        """Count the submits answered with a job that carried an ``Idempotency-Key``.

        Args:
            idempotency_key: The header's value.
            provider: Only this provider's submits (default: every provider's).

        Returns:
            How many: 1 for a key used once, 3 for a first submit and two replays.
        """
        return sum(
            count
            for (name, key), count in self.submits_by_key.items()
            if key == idempotency_key and provider in (None, name)
        )

    def script(
        self,
        scenario: Scenario,
        *,
        model: str | None = None,
        provider: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Choose the scenario of upcoming jobs.

        Scripts are tried in the order they were added; the first that matches a submit (and
        has uses left) decides its scenario, else :attr:`scenario` does. A submit answered with
        ``submit_status`` uses up a use too, so a scripted 429 is followed by a normal job.

        Args:
            scenario: The scenario.
            model: Only for submits of this model.
            provider: Only for submits to this provider.
            times: How many submits it serves (``None``: all of them).

        Raises:
            ValueError: If ``times`` is below 1.
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._scripts.append(_Script(scenario, model, provider, times))

    def tick(self) -> None:
        """Bring jobs awaiting a webhook up to date with the clock; send the ones now due.

        :class:`FakeServer` calls this every few milliseconds, and every request does too; call
        it yourself after advancing a hand-driven clock of an in-process fake.
        """
        with self._lock:
            for job_id in list(self._awaiting_notice):
                self._advance(self.jobs[job_id])

    def close(self) -> None:
        """Stop the webhook sender (pending deliveries get up to 5 seconds); idempotent."""
        with self._lock:
            sender, self.webhooks = self.webhooks, None
        if sender is not None:
            sender.close()

    def transport(self) -> httpx.MockTransport:
        """Return a transport serving this fake to ``httpx.Client`` and ``httpx.AsyncClient``."""
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request as the provider whose route it matches, and record it.

        Args:
            request: The request; its host decides between the API and storage origins.

        Returns:
            The response; artifact bodies stream.

        Raises:
            httpx.RemoteProtocolError: When the scenario cuts the connection
                (``submit_drop_after_record``); a dropped download raises it while the body
                is read instead.
        """
        request.read()
        incoming = Incoming.parse(request)
        with self._lock:
            self.tick()
            try:
                response = self._dispatch(incoming)
            except httpx.TransportError:
                self._record(incoming, None)
                raise
            self._record(incoming, response.status_code)
        response.request = request
        return response

    def artifact_bytes(self, job_id: str, index: int = 0) -> bytes:
        """Return the bytes of a job's artifact.

        Args:
            job_id: The job.
            index: The artifact's index.

        Returns:
            The bytes the storage serves for it.

        Raises:
            KeyError: If there is no such job.
            IndexError: If the job has no such artifact.
            ValueError: If the artifact is over 64 MiB: use :meth:`artifact_sha256`.
        """
        artifact = self.jobs[job_id].artifacts[index]
        if artifact.size > MAX_IN_MEMORY:
            raise ValueError(f"artifact of {artifact.size} bytes: compare artifact_sha256()")
        return artifact.body().read()

    def artifact_sha256(self, job_id: str, index: int = 0) -> str:
        """Return the hex SHA-256 of a job's artifact, computed by streaming.

        Args:
            job_id: The job.
            index: The artifact's index.

        Returns:
            The digest.

        Raises:
            KeyError: If there is no such job.
            IndexError: If the job has no such artifact.
        """
        return self.jobs[job_id].artifacts[index].body().sha256()

    # ----------------------------------------------------------------- helpers for the wires

    def _signed_url(self, job: FakeJob, artifact: FakeArtifact, *, expired: bool = False) -> str:
        """Return a pre-signed storage URL of an artifact.

        Args:
            job: The job.
            artifact: The artifact.
            expired: Make it already expired.

        Returns:
            The URL on :attr:`storage_origin`.
        """
        now = int(time.time())
        expires = now - 60 if expired else now + job.scenario.url_ttl
        path = f"/{job.provider}-media/{job.id}/{artifact.index}{artifact.extension}"
        return self._signer.sign(self.storage_origin, path, expires)

    def _signed_urls(self, job: FakeJob) -> list[str]:
        """Hand out pre-signed URLs of all of a job's artifacts.

        With ``expired_urls`` the first batch a job hands out is already expired.

        Args:
            job: The job.

        Returns:
            One URL per artifact.
        """
        job.url_issues += 1
        expired = job.scenario.expired_urls and job.url_issues == 1
        return [self._signed_url(job, artifact, expired=expired) for artifact in job.artifacts]

    def _serve_artifact(
        self,
        job: FakeJob,
        artifact: FakeArtifact,
        incoming: Incoming,
        error: Callable[[int], httpx.Response],
    ) -> httpx.Response:
        """Serve an artifact's bytes, applying the job's download faults.

        Args:
            job: The job.
            artifact: The artifact.
            incoming: The GET or HEAD request.
            error: Builds the error response of an injected status.

        Returns:
            The response.
        """
        scenario = job.scenario
        job.downloads += 1
        status = scenario.download_errors.get(job.downloads)
        if status is not None:
            return error(status)
        if "content" in scenario.malformed:
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            return httpx.Response(200, headers={"Content-Type": "text/html"}, content=page)
        drop = None
        method = incoming.request.method
        first = artifact.index not in job.dropped
        if scenario.drop_download_after is not None and method == "GET" and first:
            job.dropped.add(artifact.index)
            drop = scenario.drop_download_after

        def ended(sent: int, complete: bool) -> None:
            with self._lock:
                job.bytes_served += sent
                job.downloads_unfinished += not complete

        return artifact_response(
            artifact.body(),
            incoming.request,
            ignore_range=scenario.ignore_range,
            drop_after=drop,
            on_end=ended,
        )

    # ----------------------------------------------------------------- internals

    def _dispatch(self, incoming: Incoming) -> httpx.Response:
        if _same_origin(incoming.request.url, self.storage_origin):
            incoming.origin = "storage"
            return self._storage(incoming)
        matched = route(incoming)
        if matched is None:
            method = incoming.request.method
            body = {"error": {"code": 404, "message": f"No route for {method} {incoming.path}"}}
            return httpx.Response(404, json=body)
        provider, action, kind, job_id = matched
        wire = self._wires[provider]
        incoming.provider, incoming.job_id = provider, job_id
        if not wire.authenticate(incoming.request.headers.get("Authorization")):
            return wire.error(401, "Invalid or missing API key.")
        if action == "submit":
            return self._submit(wire, kind, incoming)
        if action == "models" and isinstance(wire, OpenRouterWire):
            return wire.models()
        job = self.jobs.get(job_id or "")
        if (
            job is None
            or job.provider != provider
            or (action == "poll" and job.poll_path != incoming.path)
        ):
            return wire.error(404, f"Job {job_id} not found.")
        if action == "poll":
            return self._poll(wire, job)
        self._advance(job)
        if action == "cancel":
            return self._cancel(wire, job)
        return wire.content(job, incoming)

    def _submit(self, wire: Wire, kind: str, incoming: Incoming) -> httpx.Response:
        problem = wire.validate(kind, incoming)
        if problem:
            return wire.error(400, problem)
        kind = wire.kind_of(kind, incoming)
        fields = incoming.fields
        model = str(fields["model"])
        script = next((s for s in self._scripts if s.matches(wire.name, model)), None)
        try:
            scenario = (script.scenario if script else self.scenario).with_presets(
                presets_in(incoming.texts())
            )
            header = incoming.request.headers.get("X-Fake-Scenario")
            if header is not None:
                scenario = Scenario.from_header(header, scenario)
        except ValueError as exc:
            return wire.error(400, f"Fake scenario: {exc}")
        key = incoming.request.headers.get("Idempotency-Key")
        first = self.jobs.get(self._idempotent.get((wire.name, key or ""), ""))
        if key and self.honor_idempotency and first is not None:
            self.replays += 1
            self.submits_by_key[wire.name, key] += 1
            incoming.job_id = first.id
            body = wire.submit_body(first)
            return wire.ok(wire.submit_code, body, {"Idempotent-Replayed": "true"})
        if script is not None and script.remaining is not None:
            script.remaining -= 1
            if not script.remaining:
                self._scripts.remove(script)
        if scenario.submit_status is not None:
            return wire.injected(scenario, scenario.submit_status)
        job = self._create_job(wire, kind, model, fields, scenario)
        incoming.job_id = job.id
        self.submissions += 1
        if key:
            self.submits_by_key[wire.name, key] += 1
            self._idempotent.setdefault((wire.name, key), job.id)
        if scenario.submit_drop_after_record:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=incoming.request
            )
        return self._answer(
            wire, scenario, "submit", wire.submit_body(job), status=wire.submit_code
        )

    def _create_job(
        self, wire: Wire, kind: str, model: str, fields: dict[str, Any], scenario: Scenario
    ) -> FakeJob:
        job_id = wire.new_id(kind)
        while job_id in self.jobs:
            job_id = wire.new_id(kind)
        count = scenario.artifact_count
        if count is None:
            requested = fields.get("n")
            count = requested if isinstance(requested, int) and requested > 0 else 1
        media = scenario.content_type or wire.media_type(kind, fields)
        job = FakeJob(
            id=job_id,
            provider=wire.name,
            kind=kind,
            model=model,
            scenario=scenario,
            artifacts=tuple(
                FakeArtifact(job_id, index, scenario.artifact_size, media) for index in range(count)
            ),
            poll_path=wire.poll_path(job_id, kind),
            created=self.clock(),
            created_unix=time.time(),
            callback_url=str(fields["callback_url"]) if fields.get("callback_url") else None,
        )
        job.raw_status = wire.raw(job, job.status)
        self.jobs[job_id] = job
        if job.callback_url and isinstance(wire, OpenRouterWire):
            self._awaiting_notice.add(job_id)
        return job

    def _poll(self, wire: Wire, job: FakeJob) -> httpx.Response:
        scenario = job.scenario
        job.polls += 1
        status = scenario.poll_errors.get(job.polls)
        if status is not None:
            return wire.injected(scenario, status)
        override = wire.before_poll(job)
        if override is not None:
            return override
        job.answered += 1
        self._advance(job)
        hint = {"Retry-After": scenario.poll_retry_after} if scenario.poll_retry_after else {}
        return self._answer(wire, scenario, "poll", wire.job_body(job), headers=hint)

    def _cancel(self, wire: Wire, job: FakeJob) -> httpx.Response:
        if job.status in TERMINAL:
            return wire.error(409, f"Job {job.id} is already {job.raw_status}.")
        job.cancelled = True
        self._advance(job)
        return wire.ok(200, wire.job_body(job), {})

    def _answer(
        self,
        wire: Wire,
        scenario: Scenario,
        place: str,
        body: dict[str, Any],
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        if place in scenario.malformed:
            garbage = b'{"id": "unterminated'
            return httpx.Response(
                status, headers={"Content-Type": "application/json"}, content=garbage
            )
        if f"{place}_fields" in scenario.malformed:
            body = wire.strip(body)
        return wire.ok(status, body, headers or {})

    def _advance(self, job: FakeJob) -> None:
        """Bring a job's shown status up to date with its scenario and the clock."""
        stage = self._stage(job)
        if stage != job.status:
            now = time.time()
            job.started_unix = job.started_unix or now
            if stage in TERMINAL and job.finished_unix is None:
                job.finished_unix = now
        job.status = stage
        job.raw_status = self._wires[job.provider].raw(job, stage)
        if stage in TERMINAL and job.id in self._awaiting_notice:
            self._notify(job)

    def _notify(self, job: FakeJob) -> None:
        """Queue the signed webhook of a job that just became terminal."""
        if self.webhook_secret is None or job.callback_url is None:
            return
        self._awaiting_notice.discard(job.id)
        if self.webhooks is None or self.webhooks.secret != self.webhook_secret:
            if self.webhooks is not None:
                self.webhooks.close(timeout=0)
            self.webhooks = WebhookSender(
                self.webhook_secret, attempts=8, backoff=self.webhook_backoff, max_backoff=5.0
            )
        body = self._wires[job.provider].job_body(job)
        self.webhooks.deliver(
            body, url=job.callback_url, model=job.model, faults=job.scenario.webhook_faults
        )

    def _stage(self, job: FakeJob) -> str:
        """The job's normalized status now: polls move it on, or the clock does."""
        scenario = job.scenario
        timeline = (*scenario.steps, scenario.outcome)
        if job.cancelled:
            return "cancelled"
        if scenario.seconds_per_step is not None:
            step = int((self.clock() - job.created) // scenario.seconds_per_step)
        elif job.answered == 0:
            return "queued"
        else:
            step = (job.answered - 1) // scenario.polls_per_step
        return timeline[min(step, len(timeline) - 1)]

    def _storage(self, incoming: Incoming) -> httpx.Response:
        request, path = incoming.request, incoming.path
        if "Authorization" in request.headers:
            return s3_error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be "
                "specified",
                path,
            )
        if request.method not in ("GET", "HEAD"):
            return s3_error(405, "MethodNotAllowed", "The method is not allowed.", path)
        denied = self._signer.check(path, incoming.query, time.time())
        if denied is not None:
            return denied
        parts = path.split("/")
        job = self.jobs.get(parts[2]) if len(parts) == 4 else None
        index = parts[-1].split(".")[0]
        if job is None or not index.isdigit() or int(index) >= len(job.artifacts):
            return s3_error(404, "NoSuchKey", "The specified key does not exist.", path)
        incoming.provider, incoming.job_id = job.provider, job.id
        scenario = job.scenario

        def error(status: int) -> httpx.Response:
            headers = {"Retry-After": scenario.retry_after} if scenario.retry_after else {}
            code = _S3_CODES.get(status, "InternalError")
            return s3_error(status, code, phrase(status), path, headers)

        return self._serve_artifact(job, job.artifacts[int(index)], incoming, error)

    def _record(self, incoming: Incoming, status: int | None) -> None:
        request = incoming.request
        headers = request.headers
        self.requests.append(
            RecordedRequest(
                method=request.method,
                url=str(request.url),
                host=request.url.host,
                path=request.url.path,
                query=incoming.query,
                origin=incoming.origin,
                provider=incoming.provider,
                job_id=incoming.job_id,
                authorized="Authorization" in headers,
                auth_header=redact(headers.get("Authorization")),
                idempotency_key=headers.get("Idempotency-Key"),
                user_agent=headers.get("User-Agent"),
                json=incoming.json,
                form=incoming.form,
                files=incoming.files,
                range=headers.get("Range"),
                headers={
                    name: (redact(value) or "") if name == "authorization" else value
                    for name, value in headers.items()
                },
                at=self.clock(),
                status=status,
            )
        )


_S3_CODES = {
    403: "AccessDenied",
    404: "NoSuchKey",
    500: "InternalError",
    503: "SlowDown",
}


def _same_origin(url: httpx.URL, origin: str) -> bool:
    other = httpx.URL(origin)
    return (url.scheme, url.host, url.port) == (other.scheme, other.host, other.port)
