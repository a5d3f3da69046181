"""The official OpenRouter TypeScript SDK runs a whole video job against the fake server.

``tests/js`` pins the SDK; ``npm ci --prefix tests/js`` installs it (CI does). Without node or
the installed SDK the test is skipped locally and fails in CI (``CI`` set).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Literal

import pytest

from mediajobs.testing import FakeProvider, FakeServer, Scenario

pytest.importorskip("uvicorn")
pytestmark = pytest.mark.e2e

JS = Path(__file__).parent / "js"
PINNED = json.loads((JS / "package.json").read_text())["dependencies"]["@openrouter/sdk"]


def _node() -> str:
    node = shutil.which("node")
    installed = JS / "node_modules" / "@openrouter" / "sdk" / "package.json"
    problem = None
    if node is None:
        problem = "node is not installed"
    elif not installed.exists():
        problem = "the SDK is not installed: npm ci --prefix tests/js"
    elif json.loads(installed.read_text())["version"] != PINNED:
        problem = f"tests/js/node_modules holds another SDK version than {PINNED}: npm ci"
    if problem is None and node is not None:
        return node
    if os.environ.get("CI"):
        pytest.fail(f"OpenRouter SDK check cannot run in CI: {problem}")
    pytest.skip(problem or "")


@pytest.mark.parametrize("shape", ["unsigned_urls", "signed_urls"])
def test_the_official_sdk_runs_a_video_job_with_any_key(
    shape: Literal["unsigned_urls", "signed_urls"],
) -> None:
    node = _node()
    fake = FakeProvider(scenario=Scenario(artifact_size=300_000, openrouter_shape=shape))
    with FakeServer(fake) as server:
        result = subprocess.run(
            [node, str(JS / "lifecycle.mjs"), server.base_url, "sk-or-v1-an-arbitrary-key"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (job,) = fake.jobs.values()
    assert report["id"] == job.id
    assert report["statuses"][0] == "pending"
    assert report["statuses"][-1] == "completed"
    assert "google/veo-3.1" in report["models"]
    assert (report["bytes"], report["sha256"]) == (300_000, fake.artifact_sha256(job.id))
    content = [r for r in fake.requests if r.path.endswith("/content")]
    assert [(r.auth_header, r.status, r.query.get("index")) for r in content] == [
        ("Bearer ***", 200, "0")
    ]
