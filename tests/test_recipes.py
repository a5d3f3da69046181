"""The recipes of docs/recipes.md and the store examples of docs/migrating.md, run as written.

The FastAPI application is served by FastAPI's ``TestClient`` (on asyncio and on trio); the
Django management command is written into a scratch project and run by ``python -m django`` with
a minimal settings module, against the served fake.
Their blocks are marked not-run for the page-by-page check of tests/test_docs_examples.py: an
application module and a project file, run here instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

import mediajobs as mj
from mediajobs._store import idempotency_key_for
from mediajobs.testing import FakeProvider, FakeServer, Scenario
from test_docs_examples import (
    ROOT,
    Block,
    Reader,
    compile_block,
    python_blocks,
    reader,
    run_page,
)

__all__ = ["reader"]  # the fixture, imported for the tests below

RECIPES = ROOT / "docs" / "recipes.md"
MIGRATING = ROOT / "docs" / "migrating.md"


def block_after(page: Path, text: str) -> Block:
    """The first python block after the line of ``page`` that starts with ``text``."""
    lines = page.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(text)) + 1
    return next(block for block in python_blocks(page) if block.line > start)


def test_recipe_blocks_are_found() -> None:
    app = block_after(RECIPES, "## FastAPI")
    command = block_after(RECIPES, "The command, in")
    assert "app = FastAPI(" in app.source
    assert "class Command(BaseCommand)" in command.source
    assert app.not_run and command.not_run


# ------------------------------------------------------------------------------ FastAPI


def _test_client_class() -> Any:
    """FastAPI's ``TestClient`` (Starlette asks for a fork of httpx it may not find: that is
    about the test client's own HTTP library, not the recipe)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    return TestClient


def _fastapi_app() -> Any:
    namespace: dict[str, Any] = {"__name__": "recipe_app"}
    exec(compile_block(block_after(RECIPES, "## FastAPI")), namespace)
    return namespace["app"]


def _wait_for_files(http: Any, job_id: str) -> dict[str, Any]:
    """Ask the status endpoint until the background task has downloaded the job's files."""
    for _ in range(2000):
        answer = http.get(f"/videos/{job_id}")
        assert answer.status_code == 200, answer.text
        status: dict[str, Any] = answer.json()
        if status["files"]:
            return status
        time.sleep(0.005)
    raise AssertionError(f"no files for {job_id}: {status}")


def _assert_downloaded(reader: Reader, status: dict[str, Any]) -> None:
    assert status["status"] == "succeeded"
    assert status["error"] is None
    [path] = [Path(p) for p in status["files"]]
    assert path.parent.resolve() == (reader.cwd / "renders").resolve()
    assert path.read_bytes() == reader.fake.artifact_bytes(status["id"], 0)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_fastapi_recipe_submits_once_per_request_id(reader: Reader, backend: str) -> None:
    TestClient = _test_client_class()

    with TestClient(_fastapi_app(), backend=backend) as http:
        request = {"prompt": "a paper boat", "request_id": "r-1"}
        first = http.post("/videos", json=request)
        retried = http.post("/videos", json=request)
        other = http.post("/videos", json={"prompt": "a paper boat", "request_id": "r-2"})
        assert first.status_code == retried.status_code == other.status_code == 202
        assert retried.json()["id"] == first.json()["id"]
        assert other.json()["id"] != first.json()["id"]
        assert reader.fake.submissions == 2

        for answer in (first, other):
            _assert_downloaded(reader, _wait_for_files(http, answer.json()["id"]))
        assert http.get("/videos/vj_unknown0000000000000000").status_code == 404


def test_fastapi_recipe_refused_submit_is_a_422(reader: Reader) -> None:
    TestClient = _test_client_class()

    reader.fake.script(Scenario(submit_status=400))
    with TestClient(_fastapi_app()) as http:
        answer = http.post("/videos", json={"prompt": "a paper boat", "request_id": "r-1"})
    assert answer.status_code == 422
    assert reader.fake.submissions == 0


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_fastapi_recipe_takes_up_jobs_left_running_at_start_up(
    reader: Reader, backend: str
) -> None:
    TestClient = _test_client_class()

    with mj.Client("openrouter", store="jobs.db") as client:  # a previous process
        running = client.submit("video", model="openai/sora-2-pro", prompt="a", key="videos/r-0")
        finished = client.submit("video", model="openai/sora-2-pro", prompt="b", key="videos/r-1")
        finished.wait()  # ... but not downloaded
    assert not running.done

    with TestClient(_fastapi_app(), backend=backend) as http:
        for job in (running, finished):
            _assert_downloaded(reader, _wait_for_files(http, job.id))
    assert reader.fake.submissions == 2


def test_migrating_page_store_examples_run(reader: Reader) -> None:
    ran = run_page(MIGRATING, reader, None, also=lambda block: "store=" in (block.not_run or ""))
    assert sum('store="jobs.db"' in block.source for block in ran) == 2
    # The key was submitted twice; the provider saw it once.
    assert reader.fake.submits_with_key(idempotency_key_for("openrouter", "boats/1")) == 1
    # The job was left queued; the resuming block waited for it and downloaded it.
    with mj.JobStore(reader.cwd / "jobs.db") as store:
        stored = store.get("openrouter", key="boats/1")
    assert stored is not None and stored.job_id is not None
    [video] = (reader.cwd / "videos").glob(f"{stored.job_id}_0.*")
    assert video.read_bytes() == reader.fake.artifact_bytes(stored.job_id, 0)


# ------------------------------------------------------------------------------- Django


SETTINGS = """\
import mediajobs as mj

SECRET_KEY = "recipe-tests"
USE_TZ = True
INSTALLED_APPS = ["renders"]
MEDIAJOBS = {{
    "provider": "therouter",
    "store": {store!r},
    "base_url": {base_url!r},
    "poll": mj.PollPolicy.fixed(0.01),
    "retry": mj.RetryPolicy(initial=0.01, max_delay=0.05),
}}
"""


def _django_project(root: Path, server: FakeServer) -> None:
    commands = root / "renders" / "management" / "commands"
    commands.mkdir(parents=True)
    for package in (commands, commands.parent, commands.parent.parent):
        (package / "__init__.py").write_text("", encoding="utf-8")
    command = block_after(RECIPES, "The command, in")
    (commands / "render_batch.py").write_text(command.source, encoding="utf-8")
    settings = SETTINGS.format(store=str(root / "mediajobs.db"), base_url=server.base_url)
    (root / "recipe_settings.py").write_text(settings, encoding="utf-8")


def _render_batch(root: Path, fake: FakeProvider) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "THEROUTER_API_KEY": fake.api_key, "PYTHONPATH": _pythonpath(root)}
    argv = [sys.executable, "-m", "django", "render_batch", "covers.jsonl", "--out", "covers"]
    argv += ["--settings", "recipe_settings"]
    return subprocess.run(
        argv, cwd=root, env=env, capture_output=True, text=True, timeout=100, check=False
    )


def _pythonpath(root: Path) -> str:
    parts = [str(root), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return os.pathsep.join(part for part in parts if part)


LINES = [
    {"key": "covers/1", "kind": "image", "model": "openai/gpt-image-2", "prompt": "a lighthouse"},
    {
        "key": "covers/2",
        "kind": "image",
        "model": "openai/gpt-image-2",
        "prompt": "a harbour",
        "n": 2,
    },
]


def test_django_command_renders_a_batch_once(
    tmp_path: Path, fake_provider: FakeProvider, fake_server: FakeServer
) -> None:
    _django_project(tmp_path, fake_server)
    (tmp_path / "covers.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in LINES), encoding="utf-8"
    )
    first = _render_batch(tmp_path, fake_provider)
    assert first.returncode == 0, first.stderr
    assert fake_provider.submissions == 2
    written = sorted((tmp_path / "covers").iterdir())
    assert len(written) == 3
    by_id = {job.id: job for job in fake_provider.jobs.values()}
    for path in written:
        job_id, index = path.stem.rsplit("_", 1)
        assert path.read_bytes() == fake_provider.artifact_bytes(job_id, int(index))
        assert job_id in by_id
    reported = [line.split(": ", 1) for line in first.stdout.splitlines()]
    assert sorted(key for key, _ in reported) == ["covers/1", "covers/2", "covers/2"]
    assert sorted(Path(path) for _, path in reported) == written
    served = {job.id: job.bytes_served for job in fake_provider.jobs.values()}

    again = _render_batch(tmp_path, fake_provider)
    assert again.returncode == 0, again.stderr
    assert fake_provider.submissions == 2  # every key was found in the store
    assert {job.id: job.bytes_served for job in fake_provider.jobs.values()} == served
    assert sorted(again.stdout.splitlines()) == sorted(first.stdout.splitlines())


def test_django_command_reports_failed_jobs(
    tmp_path: Path, fake_provider: FakeProvider, fake_server: FakeServer
) -> None:
    _django_project(tmp_path, fake_server)
    fake_provider.script(Scenario(outcome="failed"), model="broken-model")
    lines = [LINES[0], {**LINES[0], "key": "covers/broken", "model": "broken-model"}]
    (tmp_path / "covers.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8"
    )
    result = _render_batch(tmp_path, fake_provider)
    assert result.returncode == 1
    assert "CommandError: 1 of 2 jobs did not succeed" in result.stderr
    assert "covers/broken: failed" in result.stderr
    assert result.stdout.startswith("covers/1: ")
