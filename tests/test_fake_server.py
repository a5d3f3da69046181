"""The fake over real loopback sockets: uvicorn in a thread, two origins, real TCP drops."""

# The plugin's fixtures are imported so this file runs without the installed entry point too.
# ruff: noqa: F811

from __future__ import annotations

import hashlib
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import mediajobs.testing
from mediajobs.testing import DEFAULT_API_ORIGIN, FakeProvider, FakeServer, Scenario
from mediajobs.testing.pytest_plugin import fake_provider, fake_server  # noqa: F401

pytest.importorskip("uvicorn")
pytestmark = pytest.mark.e2e

BEARER = {"Authorization": "Bearer test-key"}
AUTH = "Authorization: Bearer test-key"


@pytest.fixture
def api(fake_server: FakeServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake_server.base_url, headers=BEARER, timeout=10) as client:
        yield client


def test_start_and_stop() -> None:
    fake = FakeProvider()
    with FakeServer(fake) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.storage_url != server.base_url
        assert (fake.api_origin, fake.storage_origin) == (server.base_url, server.storage_url)
        with httpx.Client(headers=BEARER) as client:
            assert client.get(f"{server.base_url}/api/v1/videos/models").status_code == 200
            unsigned = client.get(f"{server.storage_url}/x/y/0.png")
            assert unsigned.status_code == 400  # credentials sent to storage
    assert fake.api_origin == DEFAULT_API_ORIGIN
    with pytest.raises(RuntimeError):
        _ = server.base_url
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{fake.requests[0].url}", timeout=2)


def test_openrouter_video_flow(fake_provider: FakeProvider, api: httpx.Client) -> None:
    fake_provider.scenario = Scenario(artifact_size=300_000)
    submitted = api.post("/api/v1/videos", json={"model": "google/veo-3.1", "prompt": "waves"})
    assert submitted.status_code == 202
    job = submitted.json()
    polling_url = job["polling_url"]
    assert polling_url.startswith(fake_provider.api_origin)
    assert fake_provider.api_origin.startswith("http://127.0.0.1:")
    while (body := api.get(polling_url).json())["status"] != "completed":
        assert body["status"] in ("pending", "in_progress")
    video = api.get(body["unsigned_urls"][0])
    assert video.headers["Content-Type"] == "video/mp4"
    assert video.headers["Content-Length"] == "300000"
    digest = hashlib.sha256(video.content).hexdigest()
    assert digest == fake_provider.artifact_sha256(job["id"], 0)


def test_therouter_redirect_drops_credentials(
    fake_provider: FakeProvider, fake_server: FakeServer, api: httpx.Client
) -> None:
    fake_provider.scenario = Scenario(steps=(), expired_urls=True)
    jid = api.post("/v1/videos", json={"model": "m", "prompt": "p"}).json()["id"]
    expired = api.get(f"/v1/jobs/{jid}").json()["unsigned_urls"][0]
    assert httpx.get(expired).status_code == 403
    answer = api.get(f"/v1/jobs/{jid}/content", follow_redirects=True)
    assert answer.status_code == 200
    assert [r.status_code for r in answer.history] == [302]
    assert str(answer.url).startswith(fake_server.storage_url)
    assert "Authorization" not in answer.request.headers
    assert answer.content == fake_provider.artifact_bytes(jid, 0)
    storage = [r for r in fake_provider.requests if r.origin == "storage"]
    assert [(r.authorized, r.status) for r in storage] == [(False, 403), (False, 200)]


def test_dropped_download_is_an_error_then_resumes(
    fake_provider: FakeProvider, api: httpx.Client
) -> None:
    fake_provider.scenario = Scenario(
        steps=(), artifact_size=1_000_000, drop_download_after=300_000
    )
    jid = api.post("/v1/images/generation_tasks", json={"model": "m", "prompt": "p"}).json()["id"]
    url = api.get(f"/v1/images/generation_tasks/{jid}").json()["data"][0]["url"]
    received = bytearray()
    with httpx.Client(timeout=10) as anon:
        with anon.stream("GET", url) as response:
            assert response.headers["Content-Length"] == "1000000"
            try:
                for chunk in response.iter_bytes():
                    received += chunk
            except httpx.RemoteProtocolError:
                pass
        assert len(received) == 300_000
        rest = anon.get(url, headers={"Range": f"bytes={len(received)}-"})
    assert rest.status_code == 206
    assert hashlib.sha256(received + rest.content).hexdigest() == fake_provider.artifact_sha256(jid)


def test_submit_cut_without_answer(fake_provider: FakeProvider, api: httpx.Client) -> None:
    fake_provider.scenario = Scenario(submit_drop_after_record=True)
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/api/v1/videos", json={"model": "m"})
    assert len(fake_provider.jobs) == 1
    assert fake_provider.requests[-1].status is None


def test_streams_a_50_mib_artifact(fake_provider: FakeProvider, api: httpx.Client) -> None:
    size = 50 * 1024 * 1024
    fake_provider.scenario = Scenario(steps=(), artifact_size=size)
    jid = api.post("/api/v1/videos", json={"model": "m"}).json()["id"]
    url = api.get(f"/api/v1/videos/{jid}").json()["unsigned_urls"][0]
    digest, total = hashlib.sha256(), 0
    with api.stream("GET", url) as response:
        assert response.headers["Content-Length"] == str(size)
        for chunk in response.iter_bytes():
            digest.update(chunk)
            total += len(chunk)
    assert total == size
    assert digest.hexdigest() == fake_provider.artifact_sha256(jid)


@pytest.mark.anyio
async def test_async_onerouter_flow(fake_provider: FakeProvider, fake_server: FakeServer) -> None:
    body = {"model": "bytedance/seedance", "content": [{"type": "text", "text": "hi"}]}
    async with httpx.AsyncClient(
        base_url=fake_server.base_url, headers={"Authorization": "test-key"}, timeout=10
    ) as client:
        task = (await client.post("/v1/images/generations", json=body)).json()["data"]
        while (data := (await client.get(task["urls"]["get"])).json()["data"])["status"] != (
            "completed"
        ):
            assert data["status"] in ("created", "processing")
        async with httpx.AsyncClient(timeout=10) as anon:
            video = await anon.get(data["outputs"][0])
    assert video.content == fake_provider.artifact_bytes(task["task_id"])


def test_serve_until_terminated(tmp_path: Path) -> None:
    code = (
        "from mediajobs.testing import serve\n"
        "serve(port=0, on_ready=lambda server: print(server.base_url, flush=True))\n"
    )
    src = Path(mediajobs.testing.__file__).parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    ) as process:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        models = httpx.get(f"{base_url}/api/v1/videos/models", headers=BEARER, timeout=5)
        assert models.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stdout.read() == ""


def wait_for(condition: Callable[[], bool], within: float = 10.0) -> bool:
    """Poll a condition until it holds or ``within`` seconds pass (a bound, not a measurement)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_an_abandoned_big_download_stops_streaming_and_stalls_nothing(
    fake_provider: FakeProvider,
    fake_server: FakeServer,
    api: httpx.Client,
    caplog: pytest.LogCaptureFixture,
    reset: bool,
) -> None:
    size = 2 * 1024**3
    fake_provider.scenario = Scenario(steps=(), artifact_size=size)
    jid = api.post("/api/v1/videos", json={"model": "m"}).json()["id"]
    url = httpx.URL(api.get(f"/api/v1/videos/{jid}").json()["unsigned_urls"][0])
    job = fake_provider.jobs[jid]
    with socket.create_connection((url.host, url.port or 80), timeout=5) as raw:
        target = url.raw_path.decode()
        raw.sendall(
            f"GET {target} HTTP/1.1\r\nHost: {url.netloc.decode()}\r\n{AUTH}\r\n\r\n".encode()
        )
        assert raw.recv(65536).startswith(b"HTTP/1.1 200")
        if reset:  # like a killed process: RST instead of FIN
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # The next request is answered within an ordinary client timeout...
    with httpx.Client(headers=BEARER, timeout=5) as client:
        assert client.get(f"{fake_server.base_url}/api/v1/videos/models").status_code == 200
    # ...and the body generator was stopped, far from the end of the 2 GiB.
    assert wait_for(lambda: job.downloads_unfinished == 1)
    assert 0 < job.bytes_served < size // 4
    assert "socket.send() raised exception" not in caplog.text


def test_stop_mid_download_gives_the_client_a_prompt_connection_error(
    capfd: pytest.CaptureFixture[str],
) -> None:
    fake = FakeProvider(scenario=Scenario(steps=(), artifact_size=2 * 1024**3))
    server = FakeServer(fake)
    server.start()
    try:
        with httpx.Client(base_url=server.base_url, headers=BEARER, timeout=5) as client:
            jid = client.post("/api/v1/videos", json={"model": "m"}).json()["id"]
            url = client.get(f"/api/v1/videos/{jid}").json()["unsigned_urls"][0]
            with client.stream("GET", url) as response:
                chunks = response.iter_raw()
                assert next(chunks)
                server.stop(grace=0.1)
                # A connection error, not a read timeout after 5 s of silence.
                with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
                    for _ in chunks:
                        pass
    finally:
        server.stop()
    assert fake.jobs[jid].downloads_unfinished == 1
    assert fake.jobs[jid].bytes_served < 2 * 1024**3
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "CancelledError" not in err
