"""The framework recipes of docs/webhooks.md, run as written against signed deliveries.

Each recipe refers to ``client`` and ``on_event``; here ``client`` is a
:class:`~mediajobs.webhooks.WebhookVerifier`, whose ``parse_webhook`` has the client's
signature, and ``on_event`` records the events handed over.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import mediajobs as mj
from mediajobs.testing import webhook_event
from mediajobs.webhooks import WebhookVerifier, sign

DOCS = Path(__file__).resolve().parents[1] / "docs" / "webhooks.md"
SECRET = "whsec_recipe_secret"
JOB_ID = "vj_recipe000000000000000001"
PATH = "/hooks/openrouter"


def recipes() -> dict[str, str]:
    text = DOCS.read_text(encoding="utf-8")
    found = re.findall(r"<!-- recipe: (\w+) -->\n```python\n(.*?)```", text, re.DOTALL)
    return dict(found)


def test_every_framework_has_a_recipe() -> None:
    assert set(recipes()) == {"fastapi", "starlette", "flask", "django"}


def load(name: str) -> tuple[dict[str, Any], list[mj.WebhookEvent[mj.JobData]]]:
    events: list[mj.WebhookEvent[mj.JobData]] = []
    namespace: dict[str, Any] = {
        "__name__": f"webhook_recipe_{name}",
        "client": WebhookVerifier("openrouter", secret=SECRET),
        "on_event": events.append,
    }
    exec(compile(recipes()[name], f"docs/webhooks.md:{name}", "exec"), namespace)
    return namespace, events


def delivery() -> tuple[bytes, dict[str, str]]:
    data = {"id": JOB_ID, "status": "completed", "unsigned_urls": ["https://openrouter.ai/c"]}
    body = json.dumps(webhook_event(data)).encode()
    headers = {
        "Content-Type": "application/json",
        "X-OpenRouter-Signature": sign(body, SECRET, int(time.time())),
        "X-OpenRouter-Idempotency-Key": f"{JOB_ID}-completed",
    }
    return body, headers


def check(events: list[mj.WebhookEvent[mj.JobData]], answers: list[tuple[int, bytes]]) -> None:
    """Genuine → 204; the same again → 204 but not handed over; tampered → 400."""
    (first, _), (again, _), (tampered, text) = answers
    assert (first, again, tampered) == (204, 204, 400)
    assert b"bad_signature" in text
    assert len(events) == 1
    assert events[0].job.id == JOB_ID and events[0].job.status is mj.JobStatus.SUCCEEDED


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["fastapi", "starlette"])
async def test_asgi_framework_recipes(name: str) -> None:
    namespace, events = load(name)
    body, headers = delivery()
    transport = httpx.ASGITransport(app=namespace["app"])
    answers = []
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as http:
        for content in (body, body, body.replace(b"completed", b"complete ")):
            response = await http.post(PATH, content=content, headers=headers)
            answers.append((response.status_code, response.content))
    check(events, answers)


def test_flask_recipe() -> None:
    namespace, events = load("flask")
    body, headers = delivery()
    http = namespace["app"].test_client()
    answers = []
    for content in (body, body, body + b"\n"):
        response = http.post(PATH, data=content, headers=headers)
        answers.append((response.status_code, response.data))
    check(events, answers)


def test_django_recipe() -> None:
    from django.conf import settings

    if not settings.configured:
        settings.configure(ALLOWED_HOSTS=["testserver"], SECRET_KEY="recipe-tests", USE_TZ=True)
    from django.test import RequestFactory

    namespace, events = load("django")
    view = namespace["openrouter_webhook"]
    body, headers = delivery()
    meta = {
        "HTTP_X_OPENROUTER_SIGNATURE": headers["X-OpenRouter-Signature"],
        "HTTP_X_OPENROUTER_IDEMPOTENCY_KEY": headers["X-OpenRouter-Idempotency-Key"],
    }
    factory = RequestFactory()
    answers = []
    for content in (body, body, body + b" "):
        request = factory.post(PATH, data=content, content_type="application/json", **meta)
        response = view(request)
        answers.append((response.status_code, response.content))
    check(events, answers)
    assert view(factory.get(PATH)).status_code == 405
