"""Downloads: streaming, atomic files, resume, refresh, credential scoping, names, progress.

Most tests run the same scenario on the blocking client and on the async client under asyncio
and trio (the ``mode`` fixture), against ``httpx.MockTransport`` handlers written here for
precise failure injection. The flow decisions are also driven by hand, without any client.
"""

from __future__ import annotations

import _thread
import errno
import gzip
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import mediajobs as mj
from mediajobs import _download
from mediajobs._download import (
    Consume,
    Consumed,
    Fetched,
    Progress,
    RefreshJob,
    artifact_flow,
    body_span,
    extension_for,
    safe_stem,
    safe_url,
    target_in,
)
from mediajobs._flows import Send, Settings, Sleep
from mediajobs.dialects import TheRouter

API = "http://api.test"
STORE = "http://storage.test"
KEY = "sk-download-secret"
DATA = bytes(range(256)) * 40  # 10 240 bytes


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["sync", "asyncio", "trio"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------- a scripted server


class Gate:
    """Lets a body go on only once ``parties`` bodies have started (proves concurrency)."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self._barrier = threading.Barrier(parties, timeout=10)
        self._arrived = 0
        self._event: anyio.Event | None = None

    def wait(self) -> None:
        self._barrier.wait()

    async def await_(self) -> None:
        if self._event is None:
            self._event = anyio.Event()
        self._arrived += 1
        if self._arrived >= self.parties:
            self._event.set()
        with anyio.fail_after(10):
            await self._event.wait()


class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body in chunks that may stop early, fail, or hang (for cancellation)."""

    def __init__(
        self,
        data: bytes,
        *,
        chunk: int = 1024,
        error: type[Exception] | None = None,
        hang: bool = False,
        delay: float = 0.0,
        gate: Gate | None = None,
        on_start: Callable[[], None] | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self.data = data
        self.chunk = chunk
        self.error = error
        self.hang = hang
        self.delay = delay
        self.gate = gate
        self.on_start = on_start
        self.on_end = on_end

    def _pieces(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), self.chunk):
            yield self.data[start : start + self.chunk]

    def __iter__(self) -> Iterator[bytes]:
        if self.on_start:
            self.on_start()
        if self.gate:
            self.gate.wait()
        for piece in self._pieces():
            yield piece
            if self.delay:
                threading.Event().wait(self.delay)
        if self.on_end:
            self.on_end()
        if self.hang:
            threading.Event().wait(30)
        if self.error:
            raise self.error("peer closed the connection")

    async def __aiter__(self) -> Any:
        if self.on_start:
            self.on_start()
        if self.gate:
            await self.gate.await_()
        for piece in self._pieces():
            yield piece
            await anyio.sleep(self.delay)
        if self.on_end:
            self.on_end()
        if self.hang:
            await anyio.sleep_forever()
        if self.error:
            raise self.error("peer closed the connection")


Responder = Callable[[httpx.Request], httpx.Response]


def serve(
    data: bytes,
    content_type: str | None = "image/png",
    *,
    ranges: bool = True,
    cut: int | None = None,
    error: type[Exception] | None = httpx.ReadError,
    etag: str | None = '"v1"',
    headers: dict[str, str] | None = None,
    **body: Any,
) -> Responder:
    """Serve ``data`` (honouring ``Range`` if ``ranges``); with ``cut``, stop after that many
    bytes of the body and raise ``error`` (or end cleanly when ``error`` is None)."""

    def respond(request: httpx.Request) -> httpx.Response:
        start = 0
        wanted = request.headers.get("range")
        if ranges and wanted:
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
        part = data[start:]
        extra = dict(headers or {})
        if content_type:
            extra["Content-Type"] = content_type
        if etag:
            extra["ETag"] = etag
        extra["Content-Length"] = str(len(part))
        status = 200
        if ranges and wanted:
            if start >= len(data):
                return httpx.Response(416, headers={"Content-Range": f"bytes */{len(data)}"})
            status = 206
            extra["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        sent = part if cut is None else part[:cut]
        failing = error if cut is not None else None
        return httpx.Response(status, headers=extra, stream=Body(sent, error=failing, **body))

    return respond


def status(code: int, body: bytes = b"", **headers: str) -> Responder:
    return lambda request: httpx.Response(code, headers=headers, content=body)


def redirect(location: str, code: int = 302) -> Responder:
    return status(code, Location=location)


@dataclass
class Server:
    """Routes ``METHOD URL-without-query`` to responders used in turn (the last one sticks)."""

    routes: dict[str, list[Responder]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, url: str, *responders: Responder, method: str = "GET") -> Server:
        self.routes[f"{method} {httpx.URL(url).copy_with(query=None)}"] = list(responders)
        return self

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            key = f"{request.method} {request.url.copy_with(query=None)}"
            queue = self.routes.get(key)
            if not queue:
                return httpx.Response(404, json={"error": {"message": f"no route {key}"}})
            responder = queue.pop(0) if len(queue) > 1 else queue[0]
        return responder(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def seen(self, url_start: str) -> list[httpx.Request]:
        return [r for r in self.requests if str(r.url).startswith(url_start)]


def job_dict(
    provider: str,
    urls: list[str],
    *,
    job_id: str = "job_1",
    status_: str = "succeeded",
    media_types: list[str | None] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    types = media_types or [None] * len(urls)
    return {
        "id": job_id,
        "provider": provider,
        "status": status_,
        "raw_status": status_,
        "kind": extra.pop("kind", "image"),
        "artifacts": [
            {"url": url, "index": index, "media_type": kind}
            for index, (url, kind) in enumerate(zip(urls, types, strict=True))
        ],
        **extra,
    }


RETRY = mj.RetryPolicy(initial=0.001, max_attempts=3)
POLL = mj.PollPolicy.fixed(0.001)


def run_download(
    mode: str,
    provider: str,
    server: Server,
    job: dict[str, Any],
    dest: Path,
    *,
    max_concurrency: int = 32,
    via_client: bool = False,
    **kwargs: Any,
) -> list[Path]:
    """Download ``job`` with the blocking client, or the async one on asyncio or trio."""
    options: dict[str, Any] = {
        "api_key": KEY,
        "base_url": API,
        "retry": RETRY,
        "poll": POLL,
        "max_concurrency": max_concurrency,
    }
    if mode == "sync":
        with httpx.Client(transport=server.transport()) as http:
            client = mj.Client(provider, http_client=http, **options)
            handle = client.job_from_dict(job)
            if via_client:
                return client.download(
                    job["id"] if job["status"] == "queued" else handle, dest, **kwargs
                )
            result: list[Path] = handle.download(dest, **kwargs)
            return result

    async def main() -> list[Path]:
        async with httpx.AsyncClient(transport=server.transport()) as http:
            client = mj.AsyncClient(provider, http_client=http, **options)
            handle = client.job_from_dict(job)
            if via_client:
                ref = job["id"] if job["status"] == "queued" else handle
                return await client.download(ref, dest, **kwargs)
            paths: list[Path] = await handle.download(dest, **kwargs)
            return paths

    return anyio.run(main, backend=mode)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------------- pure: names


@pytest.mark.parametrize(
    ("content_type", "url", "media_type", "expected"),
    [
        ("image/jpeg", None, None, ".jpg"),
        ("image/png; charset=binary", None, None, ".png"),
        ("IMAGE/WEBP", None, None, ".webp"),
        ("audio/mpeg", None, None, ".mp3"),
        ("audio/wav", None, None, ".wav"),
        ("video/mp4", f"{STORE}/x.bin", None, ".mp4"),
        ("application/json", None, None, ".json"),
        ("text/plain; charset=utf-8", None, None, ".txt"),
        ("application/octet-stream", f"{STORE}/a/b/clip.MOV?sig=1", None, ".mov"),
        (None, f"{STORE}/a/b/out.webm", None, ".webm"),
        (None, f"{STORE}/content", "video/mp4", ".mp4"),
        (None, f"{STORE}/content", None, ".bin"),
        ("nonsense/../../x", f"{STORE}/a/..%2F..%2Fetc%2Fpasswd", None, ".bin"),
        (None, f"{STORE}/evil.sh%2F..%2F..%2Fx", None, ".bin"),
        (None, f"{STORE}/name.with_a_very_long_suffix", None, ".bin"),
        (None, f"{STORE}/dir.d/file", None, ".bin"),
        ("", "", None, ".bin"),
    ],
)
def test_extension_comes_from_content_type_then_url_then_bin(
    content_type: str | None, url: str | None, media_type: str | None, expected: str
) -> None:
    assert extension_for(content_type, url, media_type) == expected


@pytest.mark.parametrize(
    "job_id",
    ["../../etc/passwd", "a/b", "..", ".", "", "a\\..\\b", "nul\x00byte", "/abs", "ü-ñ", "x" * 500],
)
def test_odd_job_ids_make_one_safe_path_component(tmp_path: Path, job_id: str) -> None:
    stem = safe_stem(job_id, 3)
    assert stem.endswith("_3")
    assert not stem.startswith(".")
    assert all(sep not in stem for sep in ("/", "\\", "\0"))
    assert len(stem) < 160
    assert target_in(tmp_path.resolve(), stem + ".png").parent == tmp_path.resolve()


def test_safe_ids_are_kept_and_odd_ones_do_not_collide() -> None:
    assert safe_stem("vid_abc-123.x", 0) == "vid_abc-123.x_0"
    assert safe_stem("a/b", 0) != safe_stem("a_b", 0)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "..\\x", "a\x00b", "../x"])
def test_target_in_refuses_anything_but_a_plain_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(mj.DownloadError):
        target_in(tmp_path, name)


def test_safe_url_drops_query_fragment_and_user_info() -> None:
    url = "https://user:pw@bucket.s3.test:8443/a/b.mp4?X-Amz-Signature=abc#frag"
    assert safe_url(url) == "https://bucket.s3.test:8443/a/b.mp4"


# ------------------------------------------------------------- pure: ranges and progress


def test_body_span_decisions() -> None:
    plain = httpx.Headers({"Content-Length": "100"})
    assert body_span(200, plain, have=40, total=100) == _download._Span(0, 100, 100)
    partial = httpx.Headers({"Content-Length": "60", "Content-Range": "bytes 40-99/100"})
    assert body_span(206, partial, have=40, total=100) == _download._Span(40, 100, 100)
    # a partial answer for another range, a wrong length, a changed size: unusable
    assert body_span(206, partial, have=30, total=100) is None
    bad_length = httpx.Headers({"Content-Length": "10", "Content-Range": "bytes 40-99/100"})
    assert body_span(206, bad_length, have=40, total=100) is None
    assert body_span(206, partial, have=40, total=120) is None
    assert body_span(206, httpx.Headers({}), have=40, total=100) is None
    unknown = httpx.Headers({"Content-Range": "bytes 40-99/*"})
    assert body_span(206, unknown, have=40, total=None) == _download._Span(40, 100, None)


def test_progress_aggregates_throttles_and_closes() -> None:
    now = [0.0]
    progress = Progress(2, clock=lambda: now[0], interval=1.0)
    assert progress.update(0, 0, 100) == (0, None)  # first report
    assert progress.update(0, 10, 100) is None  # throttled
    assert progress.update(1, 5, 50) == (15, 150)  # the total became known
    assert progress.update(1, 6, 50) is None
    now[0] = 2.0
    assert progress.update(0, 100, 100) == (106, 150)
    assert progress.update(1, 50, 50) is None
    assert progress.final() == (150, 150)
    assert progress.final() is None


# ------------------------------------------------------------ pure: the flow by hand


def _settings(retry: mj.RetryPolicy | None = None) -> Settings:
    return Settings(
        dialect=TheRouter(API),
        api_key=KEY,
        headers={"User-Agent": "mediajobs/test"},
        timeout=30.0,
        poll=POLL,
        retry=retry or mj.RetryPolicy(max_attempts=3, initial=1.0, jitter=0.0),
        wait_timeout=None,
    )


def _job(urls: list[str]) -> mj.JobData:
    return mj.JobData.model_validate(job_dict("therouter", urls))


def test_flow_resumes_with_range_and_if_range_then_checks_length() -> None:
    job = _job([f"{STORE}/a.png?sig=1"])
    flow = artifact_flow(_settings(), job, job.artifacts[0])
    step = next(flow)
    assert isinstance(step, Send)
    assert step.stream
    assert "authorization" not in step.request.headers
    assert step.request.headers["accept-encoding"] == "identity"
    first = httpx.Response(
        200, headers={"Content-Length": "100", "ETag": '"e1"'}, request=step.request
    )
    consume = flow.send(first)
    assert isinstance(consume, Consume)
    assert consume.offset == 0
    assert consume.size == 100
    sleep = flow.send(Consumed(written=40, received=40, error=httpx.ReadError("drop")))
    assert sleep == Sleep(1.0)
    again = flow.send(None)
    assert isinstance(again, Send)
    assert again.request.headers["range"] == "bytes=40-"
    assert again.request.headers["if-range"] == '"e1"'
    partial = httpx.Response(
        206,
        headers={"Content-Length": "60", "Content-Range": "bytes 40-99/100"},
        request=again.request,
    )
    consume = flow.send(partial)
    assert isinstance(consume, Consume)
    assert consume.offset == 40
    with pytest.raises(StopIteration) as stop:
        flow.send(Consumed(written=60, received=60))
    assert stop.value.value == Fetched(None, f"{STORE}/a.png?sig=1", 100)


def test_flow_honours_retry_after_and_gives_up_without_progress() -> None:
    job = _job([f"{STORE}/a.png?sig=1"])
    flow = artifact_flow(_settings(), job, job.artifacts[0])
    step = next(flow)
    sleeps = []
    for _ in range(2):
        busy = httpx.Response(503, headers={"Retry-After": "7"}, request=step.request)
        assert isinstance(flow.send(busy), Consume)
        sleep = flow.send(Consumed(written=0, received=0))
        sleeps.append(sleep)
        step = flow.send(None)
    assert sleeps == [Sleep(7.0), Sleep(7.0)]
    busy = httpx.Response(503, request=step.request)
    flow.send(busy)
    with pytest.raises(mj.DownloadError, match="gave up after 3 attempts") as caught:
        flow.send(Consumed(written=0, received=0))
    assert isinstance(caught.value.__cause__, mj.ServerError)
    assert caught.value.url == f"{STORE}/a.png"


def test_flow_counts_attempts_afresh_after_progress() -> None:
    job = _job([f"{STORE}/a.png"])
    flow = artifact_flow(
        _settings(mj.RetryPolicy(max_attempts=2, initial=0.001)), job, job.artifacts[0]
    )
    step = next(flow)
    for have in (10, 20, 30, 40):  # every attempt gets further: never gives up
        headers = {
            "Content-Length": str(100 - have + 10),
            "Content-Range": f"bytes {have - 10}-99/100",
        }
        answer = httpx.Response(206 if have > 10 else 200, headers=headers, request=step.request)
        if have == 10:
            answer = httpx.Response(200, headers={"Content-Length": "100"}, request=step.request)
        assert isinstance(flow.send(answer), Consume)
        assert isinstance(flow.send(Consumed(10, 10, error=httpx.ReadError("x"))), Sleep)
        step = flow.send(None)
        assert step.request.headers["range"] == f"bytes={have}-"


def test_flow_follows_redirects_with_the_key_only_on_api_hosts() -> None:
    job = _job([f"{API}/v1/jobs/job_1/content"])
    flow = artifact_flow(_settings(), job, job.artifacts[0])
    step = next(flow)
    assert step.request.headers["authorization"] == f"Bearer {KEY}"
    moved = httpx.Response(302, headers={"Location": f"{STORE}/f.png?sig=2"}, request=step.request)
    assert flow.send(moved) == Consume(moved)
    hop = flow.send(Consumed(0, 0))
    assert isinstance(hop, Send)
    assert str(hop.request.url) == f"{STORE}/f.png?sig=2"
    assert "authorization" not in hop.request.headers
    assert hop.request.headers["user-agent"] == "mediajobs/test"


def test_flow_refreshes_a_refused_url_once_through_the_job() -> None:
    job = mj.JobData.model_validate(job_dict("worldrouter", [f"{STORE}/old.png"]))
    settings = Settings(**{**_settings().__dict__, "dialect": mj.Dialect()})
    flow = artifact_flow(settings, job, job.artifacts[0])
    step = next(flow)
    flow.send(httpx.Response(403, request=step.request))
    assert flow.send(Consumed(0, 0)) == RefreshJob()
    fresh = mj.JobData.model_validate(job_dict("worldrouter", [f"{STORE}/new.png"]))
    step = flow.send(fresh)
    assert str(step.request.url) == f"{STORE}/new.png"
    flow.send(httpx.Response(403, request=step.request))
    with pytest.raises(mj.DownloadError, match="even with a fresh URL"):
        flow.send(Consumed(0, 0))


# ---------------------------------------------------------------- clients: happy paths


def test_downloads_every_artifact_with_exact_bytes(mode: str, tmp_path: Path) -> None:
    blobs = [DATA, DATA[::-1] * 3, b"\x00" * 5000]
    server = (
        Server()
        .on(f"{STORE}/o/0", serve(blobs[0], "image/png"))
        .on(f"{STORE}/o/1", serve(blobs[1], "image/jpeg; charset=binary"))
        .on(f"{STORE}/o/2.webp", serve(blobs[2], None))
    )
    urls = [f"{STORE}/o/0?X-Amz-Signature=s0", f"{STORE}/o/1?sig=s1", f"{STORE}/o/2.webp?sig=s2"]
    reports: list[tuple[int, int | None]] = []
    dest = tmp_path / "new" / "dir"
    paths = run_download(
        mode,
        "therouter",
        server,
        job_dict("therouter", urls),
        dest,
        on_progress=lambda done, total: reports.append((done, total)),
    )
    assert [p.name for p in paths] == ["job_1_0.png", "job_1_1.jpg", "job_1_2.webp"]
    assert all(p.parent == dest.resolve() for p in paths)
    assert [sha(p.read_bytes()) for p in paths] == [sha(b) for b in blobs]
    assert files_under(dest) == sorted(p.name for p in paths)  # no temp file left
    total = sum(map(len, blobs))
    assert reports[-1] == (total, total)
    assert all(t in (None, total) for _, t in reports)
    assert all(done <= total for done, _ in reports)
    assert [d for d, _ in reports] == sorted(d for d, _ in reports)
    for request in server.requests:
        assert "authorization" not in request.headers  # storage hosts get no key


@pytest.mark.parametrize("provider", ["therouter", "worldrouter", "openrouter", "onerouter"])
def test_storage_hosts_never_get_the_key(mode: str, tmp_path: Path, provider: str) -> None:
    server = Server().on(f"{STORE}/v.mp4", serve(DATA, "video/mp4"))
    job = job_dict(provider, [f"{STORE}/v.mp4?token=t"], kind="video")
    run_download(mode, provider, server, job, tmp_path)
    (request,) = server.requests
    assert "authorization" not in request.headers
    assert KEY not in str(request.headers)
    assert request.headers["user-agent"].startswith("mediajobs/")


def test_openrouter_content_urls_carry_the_key(mode: str, tmp_path: Path) -> None:
    url = f"{API}/api/v1/videos/job_1/content?index=0"
    server = Server().on(url, serve(DATA, "video/mp4"))
    job = job_dict("openrouter", [url], media_types=["video/mp4"], kind="video")
    (path,) = run_download(mode, "openrouter", server, job, tmp_path, via_client=True)
    assert path.name == "job_1_0.mp4"
    assert sha(path.read_bytes()) == sha(DATA)
    (request,) = server.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_a_stored_job_id_is_read_then_downloaded(mode: str, tmp_path: Path) -> None:
    content = f"{API}/api/v1/videos/vid-9/content?index=0"
    body = {"id": "vid-9", "polling_url": "/api/v1/videos/vid-9", "status": "completed"}
    server = (
        Server()
        .on(
            f"{API}/api/v1/videos/vid-9",
            lambda r: httpx.Response(200, json={**body, "unsigned_urls": [content]}),
        )
        .on(content, serve(DATA, "video/mp4"))
    )
    stored = job_dict("openrouter", [], job_id="vid-9", status_="queued")
    (path,) = run_download(mode, "openrouter", server, stored, tmp_path, via_client=True)
    assert path.name == "vid-9_0.mp4"
    assert path.read_bytes() == DATA
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.requests)


def test_a_long_error_body_is_read_but_not_kept(mode: str, tmp_path: Path) -> None:
    url = f"{API}/api/v1/videos/job_1/content?index=0"
    noise = b"x" * 20_000
    server = Server().on(url, lambda r: httpx.Response(400, stream=Body(noise, chunk=1000)))
    with pytest.raises(mj.DownloadError, match="HTTP 400") as caught:
        run_download(mode, "openrouter", server, job_dict("openrouter", [url]), tmp_path)
    cause = caught.value.__cause__
    assert isinstance(cause, mj.BadRequestError)
    assert len(cause.body) <= 2000
    assert len(str(caught.value)) < 500


def test_onerouter_api_host_gets_its_raw_key(mode: str, tmp_path: Path) -> None:
    url = f"{API}/files/out.png"
    server = Server().on(url, serve(DATA, "image/png"))
    run_download(mode, "onerouter", server, job_dict("onerouter", [url]), tmp_path)
    assert server.requests[0].headers["authorization"] == KEY


def test_content_encoded_bodies_are_stored_decoded(mode: str, tmp_path: Path) -> None:
    packed = gzip.compress(DATA)
    server = Server().on(
        f"{STORE}/t.json",
        status(200, packed, **{"Content-Encoding": "gzip", "Content-Type": "application/json"}),
    )
    (path,) = run_download(
        mode, "therouter", server, job_dict("therouter", [f"{STORE}/t.json"]), tmp_path
    )
    assert path.read_bytes() == DATA
    assert path.suffix == ".json"


# --------------------------------------------------------------- resume and restart


@pytest.mark.parametrize(
    "error", [httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout, None]
)
def test_a_dropped_body_is_resumed_with_range(
    mode: str, tmp_path: Path, error: type[Exception] | None
) -> None:
    url = f"{STORE}/v.mp4"
    server = Server().on(
        url, serve(DATA, "video/mp4", cut=4000, error=error), serve(DATA, "video/mp4")
    )
    reports: list[tuple[int, int | None]] = []
    (path,) = run_download(
        mode,
        "therouter",
        server,
        job_dict("therouter", [url + "?sig=x"]),
        tmp_path,
        on_progress=lambda d, t: reports.append((d, t)),
    )
    assert sha(path.read_bytes()) == sha(DATA)
    first, second = server.requests
    assert "range" not in first.headers
    assert second.headers["range"] == "bytes=4000-"
    assert second.headers["if-range"] == '"v1"'
    assert reports[-1] == (len(DATA), len(DATA))
    assert files_under(tmp_path) == ["job_1_0.mp4"]


def test_a_server_ignoring_range_restarts_from_zero(mode: str, tmp_path: Path) -> None:
    url = f"{STORE}/v.mp4"
    server = Server().on(
        url, serve(DATA, "video/mp4", cut=4000), serve(DATA, "video/mp4", ranges=False)
    )
    (path,) = run_download(mode, "therouter", server, job_dict("therouter", [url]), tmp_path)
    assert path.read_bytes() == DATA  # not the first 4000 bytes twice
    assert server.requests[1].headers["range"] == "bytes=4000-"


def test_a_drop_after_the_last_byte_ends_with_416(mode: str, tmp_path: Path) -> None:
    url = f"{STORE}/v.mp4"
    server = Server().on(url, serve(DATA, "video/mp4", cut=len(DATA)), serve(DATA, "video/mp4"))
    (path,) = run_download(mode, "therouter", server, job_dict("therouter", [url]), tmp_path)
    assert path.read_bytes() == DATA
    assert len(server.requests) == 2


def test_a_changed_resource_restarts_through_if_range(mode: str, tmp_path: Path) -> None:
    url = f"{STORE}/v.mp4"
    newer = DATA[::-1]

    def changed(request: httpx.Request) -> httpx.Response:
        assert request.headers["if-range"] == '"v1"'
        return serve(newer, "video/mp4", etag='"v2"', ranges=False)(request)

    server = Server().on(url, serve(DATA, "video/mp4", cut=4000), changed)
    (path,) = run_download(mode, "therouter", server, job_dict("therouter", [url]), tmp_path)
    assert path.read_bytes() == newer


def test_retries_are_bounded_and_leave_nothing(mode: str, tmp_path: Path) -> None:
    url = f"{STORE}/v.mp4"
    server = Server().on(url, serve(DATA, "video/mp4", cut=0))
    with pytest.raises(mj.DownloadError, match="gave up after 3 attempts") as caught:
        run_download(
            mode, "therouter", server, job_dict("therouter", [url + "?sig=SECRET"]), tmp_path
        )
    assert len(server.requests) == 3
    assert caught.value.url == url
    assert "SECRET" not in str(caught.value)
    assert "sig=" not in str(caught.value)
    assert isinstance(caught.value.__cause__, mj.APIConnectionError)
    assert files_under(tmp_path) == []


def test_transient_statuses_are_retried(mode: str, tmp_path: Path) -> None:
    url = f"{STORE}/v.mp4"
    server = Server().on(url, status(503, **{"Retry-After": "0"}), status(429), serve(DATA))
    (path,) = run_download(mode, "therouter", server, job_dict("therouter", [url]), tmp_path)
    assert path.read_bytes() == DATA
    assert len(server.requests) == 3


def test_a_short_body_without_retries_left_is_an_error(mode: str, tmp_path: Path) -> None:
    url = f"{STORE}/v.mp4"
    server = Server().on(url, serve(DATA, cut=100, error=None, ranges=False))
    with pytest.raises(mj.DownloadError, match=r"ended after 100 of 10240 bytes"):
        run_download(mode, "therouter", server, job_dict("therouter", [url]), tmp_path)
    assert files_under(tmp_path) == []


def test_a_client_error_is_not_retried(mode: str, tmp_path: Path) -> None:
    url = f"{STORE}/gone.png"
    server = Server().on(url, status(404, b"<Error><Signature>SECRET</Signature></Error>"))
    with pytest.raises(mj.DownloadError, match="HTTP 404") as caught:
        run_download(mode, "therouter", server, job_dict("therouter", [url + "?sig=x"]), tmp_path)
    assert len(server.requests) == 1
    assert isinstance(caught.value.__cause__, mj.NotFoundError)
    assert "SECRET" not in str(caught.value)
    assert "SECRET" not in str(caught.value.__cause__)
    assert files_under(tmp_path) == []


# ------------------------------------------------------- expired URLs and redirects


def test_expired_url_is_refreshed_through_the_content_route(mode: str, tmp_path: Path) -> None:
    content = f"{API}/v1/jobs/job_1/content"
    server = (
        Server()
        .on(f"{STORE}/old.png", status(403, b"<Error>Request has expired</Error>"))
        .on(content, redirect(f"{STORE}/fresh.png?X-Amz-Signature=new"))
        .on(f"{STORE}/fresh.png", serve(DATA, "image/png"))
    )
    job = job_dict("therouter", [f"{STORE}/old.png?X-Amz-Signature=old"], content_url=content)
    (path,) = run_download(mode, "therouter", server, job, tmp_path)
    assert sha(path.read_bytes()) == sha(DATA)
    old, via_api, fresh = server.requests
    assert "authorization" not in old.headers
    assert via_api.headers["authorization"] == f"Bearer {KEY}"
    assert "authorization" not in fresh.headers
    assert fresh.url.params["X-Amz-Signature"] == "new"


def test_expired_url_is_refreshed_by_rereading_the_job(mode: str, tmp_path: Path) -> None:
    poll = f"{API}/v1/images/generation_tasks/job_1"
    body = {"id": "job_1", "status": "completed", "data": [{"url": f"{STORE}/fresh.png"}]}
    server = (
        Server()
        .on(f"{STORE}/old.png", status(403))
        .on(poll, lambda request: httpx.Response(200, json=body))
        .on(f"{STORE}/fresh.png", serve(DATA, "image/png"))
    )
    (path,) = run_download(
        mode, "worldrouter", server, job_dict("worldrouter", [f"{STORE}/old.png"]), tmp_path
    )
    assert path.read_bytes() == DATA
    assert [str(r.url) for r in server.requests] == [f"{STORE}/old.png", poll, f"{STORE}/fresh.png"]
    assert server.requests[1].headers["authorization"] == f"Bearer {KEY}"
    assert "authorization" not in server.requests[2].headers


def test_a_url_refused_again_after_refresh_is_an_error(mode: str, tmp_path: Path) -> None:
    content = f"{API}/v1/jobs/job_1/content"
    server = (
        Server()
        .on(f"{STORE}/old.png", status(403))
        .on(content, redirect(f"{STORE}/still.png?sig=again"))
        .on(f"{STORE}/still.png", status(403))
    )
    job = job_dict("therouter", [f"{STORE}/old.png?sig=first"])
    with pytest.raises(mj.DownloadError, match="even with a fresh URL") as caught:
        run_download(mode, "therouter", server, job, tmp_path)
    assert isinstance(caught.value.__cause__, mj.PermissionDeniedError)
    assert "sig=" not in str(caught.value)
    assert len(server.requests) == 3  # old, content route (-> 302), fresh: refreshed once
    assert files_under(tmp_path) == []


def test_a_cross_origin_redirect_drops_the_key(mode: str, tmp_path: Path) -> None:
    content = f"{API}/api/v1/videos/job_1/content?index=0"
    server = (
        Server()
        .on(content, redirect(f"{API}/api/v1/videos/job_1/content2", 307))
        .on(f"{API}/api/v1/videos/job_1/content2", redirect(f"{STORE}/v.mp4?sig=x"))
        .on(f"{STORE}/v.mp4", serve(DATA, "video/mp4"))
    )
    job = job_dict("openrouter", [content], kind="video")
    (path,) = run_download(mode, "openrouter", server, job, tmp_path)
    assert path.read_bytes() == DATA
    first, same_origin, storage = server.requests
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert same_origin.headers["authorization"] == f"Bearer {KEY}"
    assert "authorization" not in storage.headers


def test_redirect_loops_and_odd_schemes_are_errors(mode: str, tmp_path: Path) -> None:
    loop = Server().on(f"{STORE}/a", redirect(f"{STORE}/a"))
    with pytest.raises(mj.DownloadError, match="redirects"):
        run_download(mode, "therouter", loop, job_dict("therouter", [f"{STORE}/a"]), tmp_path)
    odd = Server().on(f"{STORE}/a", redirect("file:///etc/passwd"))
    with pytest.raises(mj.DownloadError, match="unusable redirect"):
        run_download(mode, "therouter", odd, job_dict("therouter", [f"{STORE}/a"]), tmp_path)
    assert files_under(tmp_path) == []


# ----------------------------------------------------------------- names and files


def test_nothing_a_server_sends_escapes_dest_dir(mode: str, tmp_path: Path) -> None:
    hostile = {"Content-Disposition": 'attachment; filename="../../pwned.sh"'}
    server = (
        Server()
        .on(f"{STORE}/a/..%2F..%2Fevil.sh", serve(DATA, "x/../../y", headers=hostile))
        .on(f"{STORE}/b", serve(DATA, "image/png", headers=hostile))
    )
    dest = tmp_path / "out"
    job = job_dict(
        "therouter",
        [f"{STORE}/a/..%2F..%2Fevil.sh", f"{STORE}/b"],
        job_id="../../x\\..\\y\x00z/..",
    )
    paths = run_download(mode, "therouter", server, job, dest)
    assert files_under(tmp_path) == sorted(f"out/{p.name}" for p in paths)
    for path in paths:
        assert path.parent == dest.resolve()
        assert not path.name.startswith(".")
    assert paths[1].suffix == ".png"


def test_existing_files_are_kept_unless_overwrite(mode: str, tmp_path: Path) -> None:
    url = f"{STORE}/a.png"
    server = Server().on(url, serve(DATA, "image/png"))
    (tmp_path / "job_1_0.png").write_bytes(b"mine")
    with pytest.raises(mj.DownloadError, match="already exists"):
        run_download(mode, "therouter", server, job_dict("therouter", [url]), tmp_path)
    assert server.requests == []  # refused before any request
    assert (tmp_path / "job_1_0.png").read_bytes() == b"mine"
    (path,) = run_download(
        mode, "therouter", server, job_dict("therouter", [url]), tmp_path, overwrite=True
    )
    assert path.read_bytes() == DATA
    assert files_under(tmp_path) == ["job_1_0.png"]


def test_an_unusable_destination_is_a_clear_error(mode: str, tmp_path: Path) -> None:
    server = Server().on(f"{STORE}/a.png", serve(DATA))
    job = job_dict("therouter", [f"{STORE}/a.png"])
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    with pytest.raises(mj.DownloadError, match="not a directory"):
        run_download(mode, "therouter", server, job, blocker)
    with pytest.raises(mj.DownloadError, match="cannot create the directory"):
        run_download(mode, "therouter", server, job, blocker / "sub")
    assert server.requests == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_destination_is_a_clear_error(mode: str, tmp_path: Path) -> None:
    server = Server().on(f"{STORE}/a.png", serve(DATA))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(mj.DownloadError, match="not writable"):
            run_download(
                mode, "therouter", server, job_dict("therouter", [f"{STORE}/a.png"]), locked
            )
    finally:
        locked.chmod(0o700)


# Abandoning a body mid-way leaves httpx's nested async generators unfinished; trio closes
# them itself and says so with a ResourceWarning. The files are what this test is about.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_disk_error_mid_write_leaves_nothing(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_init = _download._Part.__init__
    calls = [0]

    class FullDisk:
        def __init__(self, file: Any) -> None:
            self.file = file

        def __getattr__(self, name: str) -> Any:
            return getattr(self.file, name)

        def write(self, chunk: bytes) -> int:
            calls[0] += 1
            if calls[0] == 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            return int(self.file.write(chunk))

    def init(self: Any, *args: Any) -> None:
        real_init(self, *args)
        self._file = FullDisk(self._file)

    monkeypatch.setattr(_download._Part, "__init__", init)
    urls = [f"{STORE}/a.png", f"{STORE}/b.png"]
    server = Server().on(urls[0], serve(DATA)).on(urls[1], serve(DATA))
    with pytest.raises(mj.DownloadError, match="No space left") as caught:
        run_download(mode, "therouter", server, job_dict("therouter", urls), tmp_path)
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.errno == errno.ENOSPC
    assert files_under(tmp_path) == []


def test_one_failed_artifact_leaves_no_file_of_the_call(mode: str, tmp_path: Path) -> None:
    urls = [f"{STORE}/ok.png", f"{STORE}/bad.png"]
    server = Server().on(urls[0], serve(DATA)).on(urls[1], status(404))
    with pytest.raises(mj.DownloadError, match="HTTP 404"):
        run_download(mode, "therouter", server, job_dict("therouter", urls), tmp_path)
    assert files_under(tmp_path) == []


# ------------------------------------------------------------------ job states


def test_jobs_that_did_not_succeed_raise(mode: str, tmp_path: Path) -> None:
    server = Server()
    failed = job_dict("therouter", [], status_="failed", error={"message": "nsfw"})
    with pytest.raises(mj.JobFailedError, match="nsfw") as caught:
        run_download(mode, "therouter", server, failed, tmp_path)
    assert caught.value.job.id == "job_1"
    expired = job_dict("therouter", [], status_="expired")
    with pytest.raises(mj.JobExpiredError):
        run_download(mode, "therouter", server, expired, tmp_path)
    empty = job_dict("therouter", [])
    with pytest.raises(mj.DownloadError, match="no artifacts"):
        run_download(mode, "therouter", server, empty, tmp_path)
    assert server.requests == []


def test_a_running_job_is_read_once_then_refused(mode: str, tmp_path: Path) -> None:
    poll = f"{API}/v1/jobs/job_1"
    server = Server().on(
        poll, lambda r: httpx.Response(200, json={"id": "job_1", "status": "in_progress"})
    )
    running = job_dict("therouter", [], status_="running")
    with pytest.raises(mj.DownloadError, match="has not finished"):
        run_download(mode, "therouter", server, running, tmp_path)
    assert [str(r.url) for r in server.requests] == [poll]


# --------------------------------------------------------- concurrency and progress


def test_artifacts_download_concurrently_with_aggregated_progress(
    mode: str, tmp_path: Path
) -> None:
    gate = Gate(2)  # the first two bodies wait for each other: only concurrency passes
    blobs = [DATA * (i + 1) for i in range(4)]
    urls = [f"{STORE}/{i}.png" for i in range(4)]
    server = Server()
    for i, (url, blob) in enumerate(zip(urls, blobs, strict=True)):
        server.on(url, serve(blob, gate=gate if i < 2 else None, chunk=512))
    reports: list[tuple[int, int | None]] = []
    threads: set[str] = set()

    def on_progress(done: int, total: int | None) -> None:
        threads.add(threading.current_thread().name)
        reports.append((done, total))

    paths = run_download(
        mode, "therouter", server, job_dict("therouter", urls), tmp_path, on_progress=on_progress
    )
    assert [sha(p.read_bytes()) for p in paths] == [sha(b) for b in blobs]
    total = sum(map(len, blobs))
    assert reports[0][1] is None  # sizes still unknown at the start
    assert reports[-1] == (total, total)
    assert {t for _, t in reports} <= {None, total}
    if mode != "sync":
        assert len(threads) == 1  # async: called from the event loop thread only


def test_concurrency_is_bounded(mode: str, tmp_path: Path) -> None:
    active = [0]
    peak = [0]
    lock = threading.Lock()

    def start() -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])

    def end() -> None:
        with lock:
            active[0] -= 1

    urls = [f"{STORE}/{i}.png" for i in range(6)]
    server = Server()
    for url in urls:
        server.on(url, serve(DATA, chunk=256, on_start=start, on_end=end))
    paths = run_download(
        mode, "therouter", server, job_dict("therouter", urls), tmp_path, max_concurrency=2
    )
    assert len(paths) == 6
    assert 1 <= peak[0] <= 2


def test_progress_callbacks_never_overlap(mode: str, tmp_path: Path) -> None:
    inside = [0]
    overlaps = [0]
    urls = [f"{STORE}/{i}.png" for i in range(4)]
    server = Server()
    for url in urls:
        server.on(url, serve(DATA * 4, chunk=128))

    def on_progress(done: int, total: int | None) -> None:
        inside[0] += 1
        if inside[0] > 1:
            overlaps[0] += 1
        threading.Event().wait(0.001)
        inside[0] -= 1

    run_download(
        mode, "therouter", server, job_dict("therouter", urls), tmp_path, on_progress=on_progress
    )
    assert overlaps[0] == 0


def test_async_progress_callbacks_may_be_coroutines(tmp_path: Path) -> None:
    server = Server().on(f"{STORE}/a.png", serve(DATA))
    reports: list[tuple[int, int | None]] = []

    async def on_progress(done: int, total: int | None) -> None:
        await anyio.lowlevel.checkpoint()
        reports.append((done, total))

    run_download(
        "trio",
        "therouter",
        server,
        job_dict("therouter", [f"{STORE}/a.png"]),
        tmp_path,
        on_progress=on_progress,
    )
    assert reports[-1] == (len(DATA), len(DATA))


# ------------------------------------------------------------------ cancellation


@pytest.mark.parametrize("count", [1, 3])
def test_keyboard_interrupt_mid_download_leaves_nothing(tmp_path: Path, count: int) -> None:
    # Ctrl-C lands in the main thread, whether it copies bytes itself or waits for workers.
    urls = [f"{STORE}/{i}.png" for i in range(count)]
    interrupted = threading.Event()

    def interrupt() -> None:
        if not interrupted.is_set():
            interrupted.set()
            _thread.interrupt_main()

    server = Server()
    for url in urls:
        server.on(url, serve(DATA, chunk=64, delay=0.005, on_start=interrupt))
    with pytest.raises(KeyboardInterrupt):
        run_download("sync", "therouter", server, job_dict("therouter", urls), tmp_path)
    assert interrupted.is_set()
    assert files_under(tmp_path) == []


def test_a_failure_stops_the_other_threads(tmp_path: Path) -> None:
    urls = [f"{STORE}/slow.png", f"{STORE}/bad.png"]
    finished = threading.Event()
    # 1280 chunks: over 6 s if never stopped
    slow = serve(DATA, chunk=8, delay=0.005, on_end=finished.set)
    server = Server().on(urls[0], slow).on(urls[1], status(404))
    with pytest.raises(mj.DownloadError, match="HTTP 404"):
        run_download("sync", "therouter", server, job_dict("therouter", urls), tmp_path)
    assert not finished.is_set()  # the slow artifact was abandoned, not read to the end
    assert files_under(tmp_path) == []


@pytest.mark.anyio
async def test_cancellation_mid_download_leaves_nothing(tmp_path: Path) -> None:
    urls = [f"{STORE}/{i}.png" for i in range(3)]
    server = Server()
    for url in urls:
        server.on(url, serve(DATA, chunk=512, hang=True))
    started = anyio.Event()

    def on_progress(done: int, total: int | None) -> None:
        if done > 0:
            started.set()

    async with httpx.AsyncClient(transport=server.transport()) as http:
        client = mj.AsyncClient(
            "therouter", api_key=KEY, base_url=API, http_client=http, retry=RETRY
        )
        job = client.job_from_dict(job_dict("therouter", urls))
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: job.download(tmp_path, on_progress=on_progress))
            await started.wait()
            group.cancel_scope.cancel()
    assert files_under(tmp_path) == []
    assert len(server.requests) == 3


@pytest.mark.anyio
async def test_a_deadline_around_a_download_leaves_nothing(tmp_path: Path) -> None:
    server = Server().on(f"{STORE}/a.png", serve(DATA, hang=True))
    async with httpx.AsyncClient(transport=server.transport()) as http:
        client = mj.AsyncClient("therouter", api_key=KEY, base_url=API, http_client=http)
        job = client.job_from_dict(job_dict("therouter", [f"{STORE}/a.png"]))
        with anyio.move_on_after(0.2) as scope:
            await job.download(tmp_path)
    assert scope.cancelled_caught
    assert files_under(tmp_path) == []
