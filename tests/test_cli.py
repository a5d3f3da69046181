"""The ``mediajobs`` command, run as a subprocess against the fake provider served on loopback.

Jobs choose their fate from the prompt (``fake:fail``, ``fake:slow``: the fake's presets), and
``--poll-interval 0.05`` keeps every wait short.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_support import KEY, KEY_VARS, clean_env, json_out, mj, run
from mediajobs import (
    APIConnectionError,
    AuthenticationError,
    ConfigurationError,
    DownloadError,
    JobCancelledError,
    JobFailedError,
    ProtocolError,
    UnsupportedError,
    WaitTimeoutError,
    cli,
)
from mediajobs.testing import FakeProvider, FakeServer


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(FakeProvider(api_key=KEY)) as running:
        yield running


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------- end to end


@pytest.mark.e2e
def test_submit_wait_out_downloads_the_video(server: FakeServer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    submit = ["submit", "video", "--model", "google/veo-3.1", "--prompt", "hi", "--wait"]
    result = mj(server, "openrouter", *submit, "--out", str(out))
    assert result.returncode == 0, result.stderr
    files = list(out.iterdir())
    assert len(files) == 1
    assert files[0].suffix == ".mp4"
    job_id = files[0].name.rsplit("_", 1)[0]
    assert sha256(files[0]) == server.fake.artifact_sha256(job_id)
    assert f"saved       {files[0]}" in result.stdout
    # Not a terminal: the live status comes as plain lines on stderr.
    assert "status: running" in result.stderr
    assert "status: succeeded" in result.stderr


@pytest.mark.e2e
def test_json_status_wait_download_by_id(server: FakeServer, tmp_path: Path) -> None:
    submitted = json_out(
        mj(
            server,
            "therouter",
            "--json",
            "submit",
            "image",
            "--model",
            "m",
            "--prompt",
            "cat",
            "--param",
            "n=2",
            "--param",
            "size=1024x1024",
        )
    )
    job_id = submitted["id"]
    assert submitted["status"] == "queued"
    assert server.fake.jobs[job_id].artifacts[1]  # n=2 reached the provider as a number

    # Global options after the command work too.
    status = run(
        "status",
        job_id,
        "--json",
        "--provider",
        "therouter",
        env=clean_env(MEDIAJOBS_BASE_URL=server.base_url, THEROUTER_API_KEY=KEY),
    )
    assert status.returncode == 0, status.stderr
    assert json_out(status)["id"] == job_id

    waited = json_out(mj(server, "therouter", "--json", "wait", job_id))
    assert waited["status"] == "succeeded"
    assert "paths" not in waited

    result = mj(server, "therouter", "--json", "download", job_id, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    paths = [Path(p) for p in json_out(result)["paths"]]
    assert [p.name for p in paths] == [f"{job_id}_0.png", f"{job_id}_1.png"]
    for index, path in enumerate(paths):
        assert sha256(path) == server.fake.artifact_sha256(job_id, index)

    again = mj(server, "therouter", "download", job_id, "--out", str(tmp_path))
    assert again.returncode == 4
    assert again.stderr.startswith("error: ")
    assert (
        mj(
            server, "therouter", "download", job_id, "--out", str(tmp_path), "--overwrite"
        ).returncode
        == 0
    )


@pytest.mark.e2e
def test_wait_with_out_downloads(server: FakeServer, tmp_path: Path) -> None:
    submit = ["submit", "image", "--model", "gpt-image-2", "--prompt", "x"]
    job_id = json_out(mj(server, "worldrouter", "--json", *submit))["id"]
    result = mj(
        server, "worldrouter", "--json", "wait", job_id, "--kind", "image", "--out", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    (path,) = json_out(result)["paths"]
    assert sha256(Path(path)) == server.fake.artifact_sha256(job_id)


@pytest.mark.e2e
def test_ids_without_kind_are_found_on_either_route(server: FakeServer, tmp_path: Path) -> None:
    submit = ["submit", "video", "--model", "grok-imagine-video", "--prompt", "x"]
    job_id = json_out(mj(server, "worldrouter", "--json", *submit))["id"]
    status = mj(server, "worldrouter", "--json", "status", job_id)
    assert status.returncode == 0, status.stderr
    assert json_out(status)["id"] == job_id
    assert json_out(status)["kind"] == "video"
    result = mj(server, "worldrouter", "--json", "wait", job_id, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (path,) = json_out(result)["paths"]
    assert sha256(Path(path)) == server.fake.artifact_sha256(job_id)


@pytest.mark.e2e
def test_cancel_by_id(server: FakeServer) -> None:
    submit = ["submit", "video", "--model", "m", "--prompt", "fake:slow"]
    job_id = json_out(mj(server, "therouter", "--json", *submit))["id"]
    result = mj(server, "therouter", "--json", "cancel", job_id)
    assert result.returncode == 0, result.stderr
    assert json_out(result)["status"] == "cancelled"
    waited = mj(server, "therouter", "--json", "wait", job_id)
    assert waited.returncode == 1
    assert json_out(waited)["error"]["type"] == "JobCancelledError"


@pytest.mark.e2e
def test_failed_job_exits_1(server: FakeServer) -> None:
    result = mj(
        server,
        "onerouter",
        "submit",
        "video",
        "--model",
        "bytedance/seedance",
        "--prompt",
        "fake:fail",
        "--wait",
    )
    assert result.returncode == 1
    assert "failed this job on purpose" in result.stderr
    assert "Traceback" not in result.stderr

    as_json = mj(
        server,
        "onerouter",
        "--json",
        "submit",
        "video",
        "--model",
        "bytedance/seedance",
        "--prompt",
        "fake:fail",
        "--wait",
    )
    assert as_json.returncode == 1
    error = json_out(as_json)["error"]
    assert error["type"] == "JobFailedError"
    assert error["job"]["status"] == "failed"
    assert error["exit_code"] == 1


@pytest.mark.e2e
def test_timeout_exits_3(server: FakeServer) -> None:
    result = mj(
        server,
        "openrouter",
        "submit",
        "video",
        "--model",
        "google/veo-3.1",
        "--prompt",
        "fake:slow",
        "--wait",
        "--timeout",
        "0.3",
    )
    assert result.returncode == 3
    assert "mediajobs --provider openrouter wait vj_" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.e2e
def test_interrupt_exits_130_and_names_the_job(server: FakeServer) -> None:
    command = [sys.executable, "-m", "mediajobs", "--provider", "worldrouter"]
    command += ["--base-url", server.base_url, "--api-key", KEY]
    command += ["submit", "video", "--model", "grok-video", "--prompt", "fake:slow", "--wait"]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=clean_env()) as proc:
        assert proc.stderr is not None
        while "status: queued" not in proc.stderr.readline():
            assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(timeout=10) == 130
    assert "keeps running" in rest
    assert "mediajobs --provider worldrouter wait " in rest
    assert "--kind video" in rest
    assert f"--base-url {server.base_url}" in rest  # the resumed wait finds the same server
    assert "Traceback" not in rest


@pytest.mark.e2e
def test_wrong_key_exits_4_without_showing_it(server: FakeServer) -> None:
    secret = "sk-wrong-0123456789abcdef"
    result = run(
        "--provider", "openrouter", "--base-url", server.base_url, "--api-key", secret, "models"
    )
    assert result.returncode == 4
    assert "401" in result.stderr
    assert secret not in result.stdout + result.stderr

    as_json = run(
        "--json",
        "--provider",
        "openrouter",
        "--base-url",
        server.base_url,
        "--api-key",
        secret,
        "status",
        "vj_123",
    )
    assert as_json.returncode == 4
    assert json_out(as_json)["error"]["type"] == "AuthenticationError"
    assert secret not in as_json.stdout + as_json.stderr


@pytest.mark.e2e
def test_models(server: FakeServer) -> None:
    result = mj(server, "openrouter", "models")
    assert result.returncode == 0, result.stderr
    assert "google/veo-3.1" in result.stdout
    listed = json_out(mj(server, "openrouter", "--json", "models"))["models"]
    assert {m["id"] for m in listed} >= {"google/veo-3.1", "bytedance/seedance-2.0"}


@pytest.mark.e2e
def test_serve_fake_walkthrough(tmp_path: Path) -> None:
    """The two-terminal flow of docs/cli.md: serve-fake, then submit against the printed URL."""
    serve = [sys.executable, "-m", "mediajobs", "serve-fake", "--port", "0"]
    with subprocess.Popen(serve, stdout=subprocess.PIPE, text=True, env=clean_env()) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            match = re.match(r"mediajobs fake provider at (http://127\.0\.0\.1:\d+) \(", first)
            assert match, first
            base_url = match.group(1)
            assert f"--base-url {base_url} and --api-key test-key" in proc.stdout.readline()
            # The exact command of the walkthrough (no key needed for a loopback base URL);
            # the variable only makes it poll faster.
            command = (
                "submit video --provider openrouter --base-url {} --prompt hi --wait --out out/"
            )
            fast = clean_env(MEDIAJOBS_POLL_INTERVAL="0.05")
            result = run(*command.format(base_url).split(), cwd=tmp_path, env=fast)
            assert result.returncode == 0, result.stderr
            (video,) = (tmp_path / "out").iterdir()
            assert video.suffix == ".mp4"
            assert video.stat().st_size > 0
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    assert code == 0


@pytest.mark.e2e
def test_loopback_base_url_needs_no_key_but_others_do() -> None:
    from mediajobs import cli
    from mediajobs.testing import FakeProvider

    assert FakeProvider().api_key == cli.FAKE_API_KEY
    assert cli._fake_key_for("openrouter", "http://127.0.0.1:8000") == cli.FAKE_API_KEY
    assert cli._fake_key_for("openrouter", "http://localhost:8000") == cli.FAKE_API_KEY
    assert cli._fake_key_for("openrouter", "https://openrouter.ai") is None
    assert cli._fake_key_for("openrouter", None) is None


@pytest.mark.e2e
def test_demo_runs_offline_and_reruns(tmp_path: Path) -> None:
    result = run("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    saved = re.findall(r"saved +(\S+) \((\d+\.\d) KB\)", result.stdout)
    assert len(saved) == 4
    for path, _ in saved:
        assert (tmp_path / path).is_file()
        assert (tmp_path / path).parent == tmp_path / "mediajobs-demo"
    assert "demo done: 4 jobs succeeded" in result.stdout
    assert "demo batch: 3 of 3 jobs" in result.stdout
    assert "the same batch again: 0 requests sent, 0 files downloaded" in result.stdout
    assert "status: running" in result.stderr

    fast = clean_env(MEDIAJOBS_POLL_INTERVAL="0.01")
    again = run("--json", "demo", "--out", "elsewhere", cwd=tmp_path, env=fast)
    assert again.returncode == 0, again.stderr
    *jobs, batch = [json.loads(line) for line in again.stdout.splitlines()]
    assert [j["provider"] for j in jobs] == ["therouter", "worldrouter", "openrouter", "onerouter"]
    assert all(j["status"] == "succeeded" and len(j["paths"]) == 1 for j in jobs)
    assert len([p for p in (tmp_path / "elsewhere").iterdir() if p.is_file()]) == 4
    # The small batch: three jobs, then the same batch again sends and downloads nothing.
    assert [j["status"] for j in batch["jobs"]] == ["succeeded"] * 3
    assert all(Path(j["files"][0]).is_file() for j in batch["jobs"])
    assert batch["rerun"] == {"requests": 0, "downloads": 0}


# ----------------------------------------------------------------------- usage errors


@pytest.mark.e2e
def test_usage_and_configuration_errors_exit_2(server: FakeServer) -> None:
    usage = run("submit", "video", "--param", "novalue")
    assert usage.returncode == 2
    assert "usage:" in usage.stderr

    # a loopback base URL gets the fake's key; any other host needs a real one
    no_key = run("--provider", "openrouter", "--base-url", "https://example.invalid", "models")
    assert no_key.returncode == 2
    assert "OPENROUTER_API_KEY" in no_key.stderr
    assert "Traceback" not in no_key.stderr


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ``cli.main`` in this process with no provider settings in the environment."""
    for name in [*KEY_VARS, "MEDIAJOBS_PROVIDER", "MEDIAJOBS_BASE_URL"]:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("in_process")
@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["submit", "--model", "m"],  # no KIND
        ["submit", "video", "--model", "m", "--param", "model=x"],
        ["--provider", "nowhere", "models"],
        ["wait", "x", "--timeout", "soon"],
        ["download", "x"],  # no --out
    ],
)
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(args)
    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.usefixtures("in_process")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--api-key", KEY, "models"], "MEDIAJOBS_PROVIDER"),
        (["--provider", "openrouter", "--api-key", KEY, "submit", "image"], "UnsupportedError"),
        (["--provider", "openrouter", "--api-key", KEY, "cancel", "vj_1"], "UnsupportedError"),
        (["--provider", "worldrouter", "--api-key", KEY, "models"], "UnsupportedError"),
        (["--provider", "worldrouter", "--api-key", KEY, "submit", "video"], "--model is required"),
    ],
)
def test_configuration_errors_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--json", *args]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert message in f"{error['type']}: {error['message']}"
    assert error["exit_code"] == 2


# ----------------------------------------------------------------------- in-process


def test_param_values_are_json_when_they_parse() -> None:
    assert cli._param("n=2") == ("n", 2)
    assert cli._param("size=1024x1024") == ("size", "1024x1024")
    assert cli._param('style={"a": [1, true]}') == ("style", {"a": [1, True]})
    assert cli._param("seed=007") == ("seed", "007")
    assert cli._param("empty=") == ("empty", "")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (JobFailedError("x", job=None), 1),
        (JobCancelledError("x", job=None), 1),
        (ConfigurationError("x"), 2),
        (UnsupportedError("x"), 2),
        (WaitTimeoutError("x", job=None), 3),
        (AuthenticationError("x", status_code=401), 4),
        (APIConnectionError("x"), 4),
        (ProtocolError("x", provider="p"), 4),
        (DownloadError("x"), 4),
        (KeyboardInterrupt(), 130),
        (RuntimeError("bug"), 70),
    ],
)
def test_exit_codes(error: BaseException, code: int) -> None:
    assert cli.exit_code_for(error) == code


def test_import_is_cheap() -> None:
    # httpx itself imports rich when it is installed, so compare with httpx and the bare
    # package (which loads httpx only when a client is first used).
    code = (
        "import sys, httpx, mediajobs; before = set(sys.modules); import mediajobs.cli; "
        "new = set(sys.modules) - before; "
        "print([m for m in ('rich', 'uvicorn', 'mediajobs.testing') if m in new])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_plain_display_without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.console", None)
    assert isinstance(cli._make_display(), cli._PlainDisplay)


def test_rich_display_draws(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("rich")

    class Snapshot:
        id = "job_1"
        status = "running"

    display = cli._RichDisplay()
    with display.watch(None, "demo") as on_update:
        on_update(Snapshot())
    with display.transfer("demo") as on_progress:
        on_progress(10, 100)
        on_progress(100, 100)
    assert "job_1" in capsys.readouterr().err
