"""What every built-in dialect does alike: error statuses, unknown statuses, base URLs."""

from __future__ import annotations

import warnings
from typing import Any

import httpx
import pytest

import mediajobs as mj
from mediajobs._exceptions import error_class_for_status
from mediajobs.dialects import DIALECTS, Dialect

BASE = "http://127.0.0.1:8123"


def body_for(provider: str, status: str) -> dict[str, Any]:
    """A minimal poll answer in the provider's own shape."""
    if provider == "onerouter":
        return {"code": 200, "message": "ok", "data": {"task_id": "t1", "status": status}}
    if provider == "openrouter":
        return {"id": "t1", "polling_url": "/api/v1/videos/t1", "status": status}
    return {"id": "t1", "status": status}


def error_body(provider: str, code: int) -> dict[str, Any]:
    if provider == "onerouter":
        return {"code": code, "message": f"boom {code}", "data": None}
    return {"error": {"code": code, "message": f"boom {code}"}}


def poll(dialect: Dialect, status_code: int, body: dict[str, Any]) -> mj.JobData:
    previous = dialect.job_for_id("t1")
    request = dialect.build_poll(previous)
    return dialect.parse_poll(
        httpx.Response(status_code, json=body, request=request), previous=previous
    )


PROVIDERS = sorted(DIALECTS)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("code", [400, 401, 402, 403, 404, 422, 429, 500, 502, 503])
def test_error_statuses_raise_the_matching_class(provider: str, code: int) -> None:
    dialect = DIALECTS[provider]()
    body = error_body(provider, code)
    with pytest.raises(mj.APIError) as info:
        poll(dialect, code, body)
    assert type(info.value) is error_class_for_status(code)
    assert info.value.status_code == code
    assert info.value.provider == provider
    assert f"boom {code}" in str(info.value)
    kind = sorted(dialect.kinds)[0]
    request = dialect.build_submit(kind, model="m", prompt="p", params={})
    with pytest.raises(error_class_for_status(code)) as on_submit:
        dialect.parse_submit(httpx.Response(code, json=body, request=request), kind=kind, model="m")
    assert on_submit.value.body == body


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unknown_status_runs_on_and_warns_once(provider: str) -> None:
    dialect = DIALECTS[provider]()
    with pytest.warns(mj.UnknownStatusWarning, match="upscaling") as record:
        first = poll(dialect, 200, body_for(provider, "upscaling"))
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        second = poll(dialect, 200, body_for(provider, "upscaling"))
    assert len(record) == 1
    assert again == []
    for job in (first, second):
        assert job.status is mj.JobStatus.RUNNING
        assert job.raw_status == "upscaling"
        assert not job.done


@pytest.mark.parametrize("provider", PROVIDERS)
def test_base_url_replaces_every_host(provider: str) -> None:
    dialect = DIALECTS[provider](BASE)
    kind = sorted(dialect.kinds)[0]
    requests = [
        dialect.build_submit(kind, model="m", prompt="p", params={}),
        dialect.build_poll(dialect.job_for_id("t1")),
    ]
    assert {str(r.url.copy_with(path="/", query=None)) for r in requests} == {f"{BASE}/"}
    assert all(dialect.is_api_url(r.url) for r in requests)
    assert not dialect.is_api_url("https://storage.googleapis.com/bucket/x.mp4")
