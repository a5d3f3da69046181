"""The CLI never strands a paid job: bad ``--out`` is refused before the submit, every error
names its job, and every hint is a command that runs as printed.

Subprocess tests against the fake served on loopback (``cli_support`` runs ``python -m
mediajobs``); a few in-process tests cover what a subprocess cannot reach deterministically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import mediajobs as mj_pkg
from cli_support import KEY, clean_env, json_out, mj, run, suggested
from mediajobs import cli
from mediajobs._exceptions import error_class_for_status
from mediajobs.testing import FakeProvider, FakeServer, Scenario

PYTHON_ADVICE = ("client.", "overwrite=True", "api_key=", "wait(")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(FakeProvider(api_key=KEY)) as running:
        yield running


def no_python_advice(text: str) -> None:
    for phrase in PYTHON_ADVICE:
        assert phrase not in text, text


def submitted_id(server: FakeServer, provider: str, kind: str, model: str, prompt: str) -> str:
    """Submit a job to the served fake in-process (quicker than a CLI run); its id."""
    with mj_pkg.Client(provider, api_key=KEY, base_url=server.base_url) as client:
        return client.submit(kind, model=model, prompt=prompt).id


def fast_env() -> dict[str, str]:
    """Lets a suggested command (which repeats no poll interval) finish quickly."""
    return clean_env(MEDIAJOBS_POLL_INTERVAL="0.05")


# ----------------------------------------------------------------------- --out before the submit


def _existing_file(tmp: Path) -> Path:
    (tmp / "taken").write_text("x")
    return tmp / "taken"


def _below_a_file(tmp: Path) -> Path:
    (tmp / "taken").write_text("x")
    return tmp / "taken" / "out"


def _read_only(tmp: Path) -> Path:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    locked = tmp / "locked"
    locked.mkdir(mode=0o500)
    return locked


def _proc(tmp: Path) -> Path:
    # A directory nobody can create files in, root included (permission bits do not stop root).
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc")
    return Path("/proc")


@pytest.mark.e2e
@pytest.mark.parametrize("make_out", [_existing_file, _below_a_file, _read_only, _proc])
def test_submit_refuses_a_bad_out_before_submitting(
    server: FakeServer, tmp_path: Path, make_out: Callable[[Path], Path]
) -> None:
    out = make_out(tmp_path)
    before = len(server.fake.jobs)
    submit = ["submit", "video", "--model", "google/veo-3.1", "--prompt", "hi", "--out", str(out)]
    result = mj(server, "openrouter", *submit)
    assert result.returncode == 2, result.stderr
    assert f"error: --out {out}:" in result.stderr
    assert len(server.fake.jobs) == before  # nothing was submitted, nothing paid for

    as_json = mj(server, "openrouter", "--json", *submit)
    assert as_json.returncode == 2
    error = json_out(as_json)["error"]
    assert error["type"] == "ConfigurationError"
    assert error["job_id"] is None
    assert error["provider"] == "openrouter"
    assert len(server.fake.jobs) == before


@pytest.mark.e2e
def test_submit_creates_a_missing_out(server: FakeServer, tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper"
    submit = ["submit", "image", "--model", "m", "--prompt", "hi", "--out", str(out)]
    result = mj(server, "therouter", *submit)
    assert result.returncode == 0, result.stderr
    assert len(list(out.iterdir())) == 1


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["wait", "download"])
def test_wait_and_download_refuse_a_bad_out_before_polling(
    server: FakeServer, tmp_path: Path, command: str
) -> None:
    job_id = submitted_id(server, "therouter", "video", "m", "hi")
    result = mj(server, "therouter", command, job_id, "--out", str(_existing_file(tmp_path)))
    assert result.returncode == 2, result.stderr
    assert job_id in result.stderr
    assert server.fake.jobs[job_id].polls == 0  # refused before the first status request


# ----------------------------------------------------------------------- errors name their job


@pytest.mark.e2e
def test_errors_name_the_job_in_text_and_json(server: FakeServer) -> None:
    missing = mj(server, "openrouter", "status", "vj_nosuchjob")
    assert missing.returncode == 4
    assert "vj_nosuchjob" in missing.stderr
    assert "hint:" not in missing.stderr  # no resume for a job that does not exist

    as_json = json_out(mj(server, "openrouter", "--json", "wait", "vj_nosuchjob"))["error"]
    assert as_json["type"] == "NotFoundError"
    assert as_json["job_id"] == "vj_nosuchjob"
    assert as_json["provider"] == "openrouter"
    assert as_json["resume"] is None

    job_id = submitted_id(server, "onerouter", "video", "bytedance/seedance", "fake:fail")
    waited = mj(server, "onerouter", "--json", "wait", job_id, "--kind", "video")
    error = json_out(waited)["error"]
    assert (error["type"], error["job_id"], error["provider"]) == (
        "JobFailedError",
        job_id,
        "onerouter",
    )
    assert error["resume"] is None  # a failed job has nothing to resume


@pytest.mark.e2e
def test_timeout_hint_resumes_with_the_same_options(server: FakeServer, tmp_path: Path) -> None:
    out = tmp_path / "my videos"  # a space: the hint must quote it
    submit = ["submit", "video", "--model", "m", "--prompt", "hi", "--timeout", "0"]
    result = mj(server, "worldrouter", *submit, "--out", str(out), "--overwrite")
    assert result.returncode == 3, result.stderr
    no_python_advice(result.stderr)
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    job_id = line.split(" job ")[1].split()[0]
    argv = suggested(result.stderr)
    assert argv[:4] == ["--provider", "worldrouter", "wait", job_id]
    for option in (["--kind", "video"], ["--base-url", server.base_url], ["--out", str(out)]):
        assert " ".join(option) in " ".join(argv)
    assert "--overwrite" in argv

    # The hint as printed (no key: the base URL is loopback) finishes the job.
    resumed = run(*argv, env=fast_env())
    assert resumed.returncode == 0, resumed.stderr
    assert [p.name for p in out.iterdir()] == [f"{job_id}_0.mp4"]

    as_json = mj(server, "worldrouter", "--json", *submit, "--wait")
    error = json_out(as_json)["error"]
    assert error["type"] == "WaitTimeoutError"
    assert error["job_id"] == error["job"]["id"]
    assert error["resume"].startswith(f"mediajobs --provider worldrouter wait {error['job_id']} ")
    no_python_advice(error["message"])


@pytest.mark.e2e
def test_download_failure_after_success_suggests_download(
    server: FakeServer, tmp_path: Path
) -> None:
    # The first artifact request answers 500 and --retries 0 gives up at once: the paid job
    # succeeded but its file is not on disk.
    server.fake.script(Scenario(download_errors={1: 500}), model="download-fails-once")
    submit = ["submit", "image", "--model", "download-fails-once", "--prompt", "hi"]
    result = mj(server, "therouter", "--retries", "0", *submit, "--out", str(tmp_path))
    assert result.returncode == 4, result.stderr
    assert "the job succeeded; download its files with `" in result.stderr
    argv = suggested(result.stderr)
    assert argv[2] == "download"
    assert ["--out", str(tmp_path)] == argv[argv.index("--out") : argv.index("--out") + 2]

    resumed = run(*argv)
    assert resumed.returncode == 0, resumed.stderr
    job_id = argv[3]
    assert (tmp_path / f"{job_id}_0.png").is_file()


@pytest.mark.e2e
def test_existing_file_suggests_overwrite_flag(server: FakeServer, tmp_path: Path) -> None:
    fast = mj_pkg.PollPolicy.fixed(0.05)
    with mj_pkg.Client("therouter", api_key=KEY, base_url=server.base_url, poll=fast) as client:
        job_id = client.submit("image", model="m", prompt="hi").wait().id
    earlier = tmp_path / f"{job_id}_0.png"
    earlier.write_bytes(b"an earlier download")
    again = mj(server, "therouter", "download", job_id, "--out", str(tmp_path))
    assert again.returncode == 4
    no_python_advice(again.stderr)
    assert "pass --overwrite to replace it" in again.stderr
    argv = suggested(again.stderr)
    assert argv[2:4] == ["download", job_id]
    assert argv[-1] == "--overwrite"
    assert run(*argv).returncode == 0
    assert hashlib.sha256(earlier.read_bytes()).hexdigest() == server.fake.artifact_sha256(job_id)


@pytest.mark.e2e
def test_missing_key_names_the_flag_not_the_argument(tmp_path: Path) -> None:
    result = run("--provider", "therouter", "--base-url", "https://example.invalid", "models")
    assert result.returncode == 2
    assert "pass --api-key KEY or set THEROUTER_API_KEY" in result.stderr
    no_python_advice(result.stderr)


# ----------------------------------------------------------------------- Ctrl-C


def _interrupt(command: list[str]) -> tuple[int, str, str]:
    """Start the command, press Ctrl-C once it reports the job queued; its code, out, err."""
    with subprocess.Popen(
        [sys.executable, "-m", "mediajobs", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    ) as proc:
        assert proc.stderr is not None
        assert proc.stdout is not None
        seen = ""
        while "status: queued" not in seen:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, seen
            seen += line
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        return proc.returncode, out, seen + err


@pytest.mark.e2e
def test_interrupt_with_json_prints_a_json_error(server: FakeServer, tmp_path: Path) -> None:
    command = ["--json", "--provider", "onerouter", "--base-url", server.base_url]
    command += ["--api-key", KEY, "submit", "image", "--model", "m", "--prompt", "fake:slow"]
    command += ["--out", str(tmp_path)]
    code, out, err = _interrupt(command)
    assert code == 130
    assert "Traceback" not in err
    (line,) = out.splitlines()
    error = json.loads(line)["error"]
    assert error["type"] == "KeyboardInterrupt"
    assert error["exit_code"] == 130
    assert error["provider"] == "onerouter"
    assert error["job_id"] in error["message"]
    assert error["resume"] == (
        f"mediajobs --provider onerouter wait {error['job_id']} --kind image "
        f"--base-url {server.base_url} --out {tmp_path}"
    )


# ----------------------------------------------------------------------- 409


def test_409_is_a_conflict_error() -> None:
    assert error_class_for_status(409) is mj_pkg.ConflictError
    assert issubclass(mj_pkg.ConflictError, mj_pkg.APIError)


@pytest.mark.e2e
def test_cancelling_twice_is_a_conflict(server: FakeServer) -> None:
    job_id = submitted_id(server, "therouter", "video", "m", "fake:slow")
    with mj_pkg.Client("therouter", api_key=KEY, base_url=server.base_url) as client:
        assert client.cancel(job_id).status is mj_pkg.JobStatus.CANCELLED
    again = mj(server, "therouter", "cancel", job_id)
    assert again.returncode == 4
    assert "409" in again.stderr
    assert job_id in again.stderr
    status = suggested(again.stderr)
    assert status[2:4] == ["status", job_id]
    shown = run(*status)
    assert shown.returncode == 0, shown.stderr
    assert "cancelled" in shown.stdout

    error = json_out(mj(server, "therouter", "--json", "cancel", job_id))["error"]
    assert (error["type"], error["job_id"]) == ("ConflictError", job_id)


# ----------------------------------------------------------------------- serve-fake


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.e2e
def test_serve_fake_names_the_busy_port(busy_port: int) -> None:
    result = run("serve-fake", "--port", str(busy_port), timeout=20)
    assert result.returncode == 2
    assert f"port {busy_port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port 0" in result.stderr
    assert "Traceback" not in result.stderr

    storage = run("serve-fake", "--port", "0", "--storage-port", str(busy_port), timeout=20)
    assert storage.returncode == 2
    assert f"storage port {busy_port}" in storage.stderr


# ----------------------------------------------------------------------- logging


@pytest.mark.e2e
def test_verbose_logs_requests_without_signatures_or_key(
    server: FakeServer, tmp_path: Path
) -> None:
    submit = ["submit", "image", "--model", "m", "--prompt", "hi", "--out", str(tmp_path)]
    result = mj(server, "therouter", "-v", *submit)
    assert result.returncode == 0, result.stderr
    storage = [x for x in result.stderr.splitlines() if server.storage_url in x]
    assert storage, result.stderr  # the pre-signed download is logged...
    assert all("?***" in line for line in storage)  # ...without its query string
    assert "Signature" not in result.stderr
    assert "X-Expires" not in result.stderr
    assert KEY not in result.stderr
    assert "DEBUG mediajobs:" in result.stderr  # the library's own debug lines


@pytest.mark.e2e
def test_library_warnings_are_one_line(server: FakeServer) -> None:
    server.fake.script(Scenario(steps=(), outcome="mystery_state"), model="unknown-at-once")
    job_id = submitted_id(server, "therouter", "video", "unknown-at-once", "hi")
    result = mj(server, "therouter", "status", job_id)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "warning: therouter sent unknown job status 'mystery_state'; treating it as still running"
    ]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.e2e
def test_status_on_a_dead_port_fails_with_the_job_named() -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}"
    args = ["--provider", "openrouter", "--base-url", base_url, "--retries", "0"]
    result = run(*args, "status", "vj_dead")
    assert result.returncode == 4
    assert "vj_dead" in result.stderr
    error = json_out(run("--json", *args, "status", "vj_dead"))["error"]
    assert (error["type"], error["job_id"]) == ("APIConnectionError", "vj_dead")


@pytest.mark.e2e
def test_status_on_a_dead_port_says_it_is_retrying() -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}"
    result = run(
        "--provider", "openrouter", "--base-url", base_url, "--retries", "1", "status", "x"
    )
    assert result.returncode == 4
    before_error = result.stderr.split("error: ")[0]
    assert "retrying" in before_error.lower()


def test_without_verbose_mediajobs_notices_show_concisely(
    capsys: pytest.CaptureFixture[str],
) -> None:
    redact = cli._Redactor(["sk-secret-key-123"])
    restore = cli._configure_logging(False, redact)
    log = logging.getLogger("mediajobs")
    try:
        log.debug("status changed: running")
        log.info("retrying GET %s in %.1fs", httpx.URL("https://h/x?X-Signature=abc"), 1.0)
        log.warning("polling failed with key %s", "sk-secret-key-123")
        logging.getLogger("httpx").info("HTTP Request: GET https://h/x")
    finally:
        restore()
    log.warning("after restore")
    assert capsys.readouterr().err.splitlines() == [
        "retrying GET https://h/x?*** in 1.0s",
        "warning: polling failed with key ***",
    ]
    assert not any(isinstance(h, cli._StderrHandler) for h in log.handlers)


def test_verbose_shows_debug_and_http_lines(capsys: pytest.CaptureFixture[str]) -> None:
    restore = cli._configure_logging(True, cli._Redactor([]))
    try:
        logging.getLogger("mediajobs").debug("openrouter job vj_1: queued -> running")
        logging.getLogger("httpx").info(
            'HTTP Request: %s %s "%s"', "GET", httpx.URL("http://s/a.png?sig=1&cred=2"), "200 OK"
        )
    finally:
        restore()
    assert capsys.readouterr().err.splitlines() == [
        "DEBUG mediajobs: openrouter job vj_1: queued -> running",
        'INFO httpx: HTTP Request: GET http://s/a.png?*** "200 OK"',
    ]


def test_strip_queries_keeps_the_rest() -> None:
    text = "GET https://cdn.example/v/1.mp4?X-Amz-Signature=s&X-Amz-Credential=c#frag done"
    assert cli._strip_queries(text) == "GET https://cdn.example/v/1.mp4?***#frag done"
    assert cli._strip_queries("no url? fine") == "no url? fine"


# ----------------------------------------------------------------------- resume rules


def _output(*argv: str) -> cli._Output:
    return cli._Output(cli._parse(list(argv)))


def test_resume_names_the_right_verb() -> None:
    out = _output("--provider", "therouter", "submit", "video", "--model", "m", "--out", "a b")
    assert out.resume() is None  # nothing accepted yet
    out.concern("therouter", "vid_1", "video")
    assert out.resume() == (
        "wait",
        "mediajobs --provider therouter wait vid_1 --kind video --out 'a b'",
    )
    out.status = mj_pkg.JobStatus.SUCCEEDED
    assert out.resume() == (
        "download",
        "mediajobs --provider therouter download vid_1 --kind video --out 'a b'",
    )
    out.status = mj_pkg.JobStatus.FAILED
    assert out.resume() is None

    waited = _output("--provider", "therouter", "submit", "video", "--model", "m", "--wait")
    waited.concern("therouter", "vid_2", "video")
    waited.status = mj_pkg.JobStatus.SUCCEEDED
    assert waited.resume() is None  # succeeded and nothing to download

    assert _output("--provider", "therouter", "status", "vid_3").resume() is None


def test_interrupt_during_submit_warns_of_a_possible_job(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _output("--json", "--provider", "openrouter", "submit", "video", "--model", "m")
    out.concern("openrouter")
    out.submitting = True
    out.interrupted(130)
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["job_id"] is None
    assert "may have created the job" in error["message"]
    assert error["exit_code"] == 130


def test_bad_retries_variable_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEDIAJOBS_RETRIES", "many")
    code = cli.main(["--json", "--provider", "openrouter", "--api-key", KEY, "status", "vj_1"])
    assert code == 2
    assert "MEDIAJOBS_RETRIES" in json.loads(capsys.readouterr().out)["error"]["message"]
