"""What importing mediajobs loads: the client stack without the pydantic models or dialects."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def modules_after(code: str) -> set[str]:
    """Run ``code`` in a fresh interpreter and return the names in ``sys.modules`` after it."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_client_class_loads_no_models_or_dialects() -> None:
    loaded = modules_after(
        "import mediajobs\n"
        "mediajobs.Client, mediajobs.AsyncClient, mediajobs.Job, mediajobs.JobStatus"
    )
    assert "mediajobs._client" in loaded
    assert "mediajobs._models" not in loaded
    assert "pydantic.main" not in loaded
    assert not {m for m in loaded if m.startswith("mediajobs.dialects")}


def test_a_client_loads_the_models_with_its_dialect() -> None:
    loaded = modules_after("import mediajobs\nmediajobs.Client('therouter', api_key='k').close()")
    assert {"mediajobs._models", "mediajobs.dialects.therouter", "pydantic.main"} <= loaded


def test_job_status_is_the_same_class_everywhere() -> None:
    import mediajobs as mj
    from mediajobs import _models, _status

    assert mj.JobStatus is _models.JobStatus is _status.JobStatus
    assert mj.JobStatus.SUCCEEDED.is_terminal
    assert not mj.JobStatus.RUNNING.is_terminal
