"""Webhook verification and parsing, with no I/O: the rejection matrix, rotation, fuzzing,
the events' job snapshots, de-duplication and the never-backwards status rule."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import warnings
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mediajobs as mj
from mediajobs import _status, _webhooks
from mediajobs.dialects import OpenRouter, TheRouter, UnknownStatusWarning
from mediajobs.testing import webhook_event
from mediajobs.webhooks import (
    REASONS,
    DeliveryDeduplicator,
    OpenRouterWebhooks,
    WebhookVerifier,
    is_newer,
    parse_event,
    secret_env_var,
    sign,
    verify_signature,
)

SECRET = "whsec_test_0123456789"
OTHER = "whsec_other_abcdef"
NOW = 1_780_000_000.0
JOB_ID = "vj_0123456789abcdef01234567"


def completed_body(**extra: Any) -> bytes:
    data = {
        "id": JOB_ID,
        "status": "completed",
        "generation_id": "gen-1",
        "model": "bytedance/seedance-2.0",
        "unsigned_urls": [f"https://openrouter.ai/api/v1/videos/{JOB_ID}/content?index=0"],
        "usage": {"cost": 0.5, "is_byok": False},
        **extra,
    }
    event = {"type": "video.generation.completed", "created_at": "2026-06-01T00:00:00.000Z"}
    return json.dumps({**event, "data": data}).encode()


def headers_for(body: bytes, secret: str = SECRET, t: float = NOW) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-OpenRouter-Signature": sign(body, secret, int(t)),
        "X-OpenRouter-Idempotency-Key": f"{JOB_ID}-completed",
    }


def refused(body: bytes, headers: Any, secrets: Any = (SECRET,), now: float = NOW) -> str:
    with pytest.raises(mj.WebhookVerificationError) as info:
        parse_event(OpenRouter(), body, headers, secrets, now)
    error = info.value
    assert error.reason in REASONS
    for secret in (SECRET, OTHER):
        assert secret not in str(error) and secret not in repr(error)
    return error.reason


# ------------------------------------------------------------------ signatures


def test_sign_is_hmac_sha256_over_timestamp_comma_raw_body() -> None:
    body = b'{"a": 1}'
    expected = hmac.new(SECRET.encode(), b'1700000000,{"a": 1}', hashlib.sha256).hexdigest()
    assert sign(body, SECRET, 1_700_000_000) == f"t=1700000000,v1={expected}"


def test_a_genuine_delivery_is_accepted_and_read_like_a_poll() -> None:
    body = completed_body()
    event = parse_event(OpenRouter(), body, headers_for(body), [SECRET], NOW)
    assert event.type == "video.generation.completed"
    assert event.id == f"{JOB_ID}-completed"
    assert event.raw_status == "completed"
    assert event.signed_at == datetime.fromtimestamp(int(NOW), tz=timezone.utc)
    job = event.job
    assert job.id == JOB_ID and job.provider == "openrouter"
    assert job.status is mj.JobStatus.SUCCEEDED and job.done
    assert job.model == "bytedance/seedance-2.0" and job.kind == "video"
    assert [a.url for a in job.artifacts] == json.loads(body)["data"]["unsigned_urls"]
    assert job.cost == 0.5
    # The same payload answered by a poll gives the same snapshot.
    data = json.loads(body)["data"]
    poll = httpx.Response(200, json=data, request=httpx.Request("GET", "https://openrouter.ai/"))
    dialect = OpenRouter()
    polled = dialect.parse_poll(poll, previous=dialect.job_for_id(JOB_ID, kind="video"))
    assert polled.model_dump(exclude={"raw"}) == job.model_dump(exclude={"raw"})


def test_a_failed_event_carries_the_error_string() -> None:
    body = json.dumps(
        {
            "type": "video.generation.failed",
            "created_at": "2026-06-01T00:00:00Z",
            "data": {"id": JOB_ID, "status": "failed", "error": "content policy"},
        }
    ).encode()
    event = parse_event(OpenRouter(), body, headers_for(body), [SECRET], NOW)
    assert event.job.status is mj.JobStatus.FAILED
    assert event.job.error == mj.JobErrorInfo(message="content policy")
    assert event.id == f"{JOB_ID}-failed"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong_secret", "bad_signature"),
        ("stale", "stale_timestamp"),
        ("future", "future_timestamp"),
        ("tampered_body", "bad_signature"),
        ("reserialized_body", "bad_signature"),
        ("missing_header", "missing_signature"),
        ("empty_header", "missing_signature"),
        ("garbled_header", "malformed_signature"),
        ("no_v1", "malformed_signature"),
        ("short_v1", "malformed_signature"),
        ("two_timestamps", "malformed_signature"),
        ("huge_timestamp", "malformed_signature"),
        ("no_secret", "no_secret"),
        ("empty_secret", "no_secret"),
        ("signed_junk", "malformed_body"),
        ("signed_list", "malformed_body"),
        ("signed_wrong_shape", "malformed_body"),
        ("signed_bad_job", "malformed_body"),
        ("other_provider", "wrong_provider"),
    ],
)
def test_rejection_matrix(case: str, reason: str) -> None:
    body = completed_body()
    headers = headers_for(body)
    secrets: list[str] = [SECRET]
    now = NOW
    if case == "wrong_secret":
        headers = headers_for(body, OTHER)
    elif case == "stale":
        now = NOW + 301
    elif case == "future":
        now = NOW - 301
    elif case == "tampered_body":
        body = body.replace(b"seedance", b"seedanc3")
    elif case == "reserialized_body":
        body = json.dumps(json.loads(body), indent=2).encode()
    elif case == "missing_header":
        del headers["X-OpenRouter-Signature"]
    elif case == "empty_header":
        headers["X-OpenRouter-Signature"] = "  "
    elif case == "garbled_header":
        headers["X-OpenRouter-Signature"] = "sha256 deadbeef"
    elif case == "no_v1":
        headers["X-OpenRouter-Signature"] = f"t={int(NOW)}"
    elif case == "short_v1":
        headers["X-OpenRouter-Signature"] = f"t={int(NOW)},v1=abc123"
    elif case == "two_timestamps":
        headers["X-OpenRouter-Signature"] += f",t={int(NOW)}"
    elif case == "huge_timestamp":
        headers["X-OpenRouter-Signature"] = "t=" + "9" * 5000 + ",v1=" + "0" * 64
    elif case == "no_secret":
        secrets = []
    elif case == "empty_secret":
        secrets = [""]
    elif case == "signed_junk":
        body = b"\xff\xfe not json"
        headers = headers_for(body)
    elif case == "signed_list":
        body = b"[1, 2, 3]"
        headers = headers_for(body)
    elif case == "signed_wrong_shape":
        body = json.dumps({"type": "video.generation.completed", "data": {"id": 7}}).encode()
        headers = headers_for(body)
    elif case == "signed_bad_job":
        body = completed_body(unsigned_urls="not-a-list")
        headers = headers_for(body)
    elif case == "other_provider":
        headers = {"Content-Type": "application/json", "X-TheRouter-Signature": "t=1,v1=00"}
    assert refused(body, headers, secrets, now) == reason


def test_the_window_edges_are_inclusive() -> None:
    body = completed_body()
    for now in (NOW - 300, NOW + 300):
        assert parse_event(OpenRouter(), body, headers_for(body), [SECRET], now).id


def test_tolerance_is_configurable() -> None:
    body = completed_body()
    with pytest.raises(mj.WebhookVerificationError) as info:
        verify_signature(
            body, headers_for(body)["X-OpenRouter-Signature"], [SECRET], now=NOW + 11, tolerance=10
        )
    assert info.value.reason == "stale_timestamp"


def test_rotation_several_v1_values_and_several_secrets() -> None:
    body = completed_body()
    t = int(NOW)
    old = sign(body, OTHER, t).split(",")[1]
    new = sign(body, SECRET, t).split(",")[1]
    # The sender signs with both secrets during a rotation; the receiver knows only one.
    assert verify_signature(body, f"t={t},{old},{new}", [SECRET], now=NOW) == t
    assert verify_signature(body, f"t={t},{new},{old}", [OTHER], now=NOW) == t
    # The receiver accepts old and new secrets; the sender uses either.
    assert verify_signature(body, f"t={t},{old}", [SECRET, OTHER], now=NOW) == t
    # Unknown schemes are ignored, whitespace and upper-case hex tolerated.
    assert (
        verify_signature(
            body, f" t={t} , v0=zz , {new.upper().replace('V1', 'v1')}", SECRET, now=NOW
        )
        == t
    )
    with pytest.raises(mj.WebhookVerificationError) as info:
        verify_signature(body, f"t={t},{old}", [SECRET], now=NOW)
    assert info.value.reason == "bad_signature"


def test_the_signature_header_is_found_in_any_case_and_header_type() -> None:
    body = completed_body()
    value = headers_for(body)["X-OpenRouter-Signature"]
    for headers in (
        {"x-openrouter-signature": value},
        httpx.Headers({"X-OPENROUTER-SIGNATURE": value}),
        [(b"x-openrouter-signature", value.encode())],
    ):
        assert parse_event(OpenRouter(), body, headers, [SECRET], NOW).job.id == JOB_ID  # type: ignore[arg-type]
    # Two different copies of the header are refused rather than picked from.
    doubled = [
        ("X-OpenRouter-Signature", value),
        ("x-openrouter-signature", sign(body, OTHER, int(NOW))),
    ]
    assert refused(body, doubled) == "malformed_signature"


def test_a_message_never_holds_the_secret_or_the_expected_digest() -> None:
    body = completed_body()
    expected = sign(body, SECRET, int(NOW)).split("v1=")[1]
    with pytest.raises(mj.WebhookVerificationError) as info:
        parse_event(OpenRouter(), body, headers_for(body, OTHER), [SECRET], NOW)
    text = f"{info.value} {info.value!r} {info.value.args}"
    assert SECRET not in text and expected not in text
    assert info.value.provider == "openrouter"
    assert isinstance(info.value, mj.MediaJobsError)


def test_providers_without_webhooks_refuse_every_delivery() -> None:
    body = completed_body()
    with pytest.raises(mj.WebhookVerificationError) as info:
        parse_event(TheRouter(), body, headers_for(body), [SECRET], NOW)
    assert info.value.reason == "unsupported_provider"


def test_a_dialect_attaches_its_own_format() -> None:
    class Signed(TheRouter):
        webhook_format = OpenRouterWebhooks()

    body = json.dumps(
        {
            "type": "job.succeeded",
            "data": {"id": "vid_1", "status": "succeeded", "unsigned_urls": []},
        }
    ).encode()
    event = parse_event(Signed(), body, headers_for(body), [SECRET], NOW)
    assert event.job.provider == "therouter" and event.job.status is mj.JobStatus.SUCCEEDED
    assert event.id == "vid_1-succeeded"


# ------------------------------------------------------------------ fuzzing

_header_text = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.builds(
        lambda t, parts: f"t={t}," + ",".join(parts),
        st.integers(min_value=-10, max_value=10**16),
        st.lists(st.from_regex(r"v[01]=[0-9a-fA-Fz]{0,70}", fullmatch=True), max_size=3),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(
                    st.sampled_from(["type", "data", "id", "status", "x"]), children, max_size=5
                )
            ),
            max_leaves=20,
        ).map(lambda value: json.dumps(value).encode()),
    ),
    header=_header_text,
    sign_it=st.booleans(),
    extra=st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=3),
)
def test_fuzz_only_verification_errors_escape(
    body: bytes, header: str | None, sign_it: bool, extra: dict[str, str]
) -> None:
    headers = dict(extra)
    if sign_it:
        headers["X-OpenRouter-Signature"] = sign(body, SECRET, int(NOW))
    elif header is not None:
        headers["X-OpenRouter-Signature"] = header
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownStatusWarning)
        outcome: mj.WebhookVerificationError | _webhooks.WebhookEventData
        try:
            outcome = parse_event(OpenRouter(), body, headers, [SECRET], NOW)
        except mj.WebhookVerificationError as exc:
            outcome = exc
    if isinstance(outcome, mj.WebhookVerificationError):
        assert outcome.reason in REASONS
        assert SECRET not in str(outcome)
    else:
        assert sign_it  # only a body signed with the secret gets through
        assert outcome.job.id == json.loads(body)["data"]["id"]


@settings(max_examples=100, deadline=None)
@given(
    job_id=st.text(min_size=1, max_size=40),
    raw=st.sampled_from(["pending", "in_progress", "completed", "failed", "cancelled", "expired"]),
    urls=st.lists(
        st.from_regex(r"https://[a-z]{1,10}\.test/[a-z0-9]{0,10}", fullmatch=True), max_size=3
    ),
    cost=st.none() | st.floats(min_value=0, max_value=1e6),
    error=st.none() | st.text(max_size=30),
    skew=st.integers(min_value=-300, max_value=300),
)
def test_property_every_signed_event_round_trips(
    job_id: str, raw: str, urls: list[str], cost: float | None, error: str | None, skew: int
) -> None:
    payload: dict[str, Any] = {"id": job_id, "status": raw, "unsigned_urls": urls}
    payload["usage"] = {"cost": cost, "is_byok": False}
    if error is not None:
        payload["error"] = error
    body = json.dumps(webhook_event(payload, created_at=NOW)).encode()
    event = parse_event(OpenRouter(), body, headers_for(body, t=NOW + skew), [OTHER, SECRET], NOW)
    assert (event.id, event.raw_status, event.type) == (
        f"{job_id}-{raw}",
        raw,
        f"video.generation.{raw}",
    )
    job = event.job
    assert job.id == job_id and job.status is OpenRouter.status_table[raw]
    if raw in {"completed", "failed", "cancelled", "expired"}:
        assert [a.url for a in job.artifacts] == urls
        assert job.cost == cost
        assert (job.error.message if job.error else None) == (error or None)
    else:  # a non-terminal event carries no outputs, usage or error
        assert (job.artifacts, job.cost, job.error) == ([], None, None)


def test_deep_nesting_and_giant_numbers_in_signed_bodies_are_malformed() -> None:
    for body in (b"[" * 100_000, b'{"type": 1' + b"9" * 5000 + b"}", b'{"data": ' * 5000):
        with pytest.raises(mj.WebhookVerificationError) as info:
            parse_event(OpenRouter(), body, headers_for(body), [SECRET], NOW)
        assert info.value.reason == "malformed_body"


# ------------------------------------------------------------------ events, verifier


def test_verifier_reads_the_secret_from_the_environment_and_dedupes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert secret_env_var("openrouter") == "OPENROUTER_WEBHOOK_SECRET"
    monkeypatch.setenv("OPENROUTER_WEBHOOK_SECRET", SECRET)
    clock = iter([NOW, NOW + 1, NOW + 2]).__next__
    dedupe = DeliveryDeduplicator()
    verifier = WebhookVerifier("openrouter", clock=clock, dedupe=dedupe)
    assert SECRET not in repr(verifier)
    body = completed_body()
    first = verifier.parse_webhook(body, headers_for(body))
    again = verifier.parse_webhook(body, headers_for(body, t=NOW + 1))
    assert (first.duplicate, again.duplicate) == (False, True)
    assert first.id == again.id == f"{JOB_ID}-completed"
    assert first.received_at == datetime.fromtimestamp(NOW, tz=timezone.utc)
    assert isinstance(first.job, mj.JobData)
    # A refused delivery is not remembered.
    with pytest.raises(mj.WebhookVerificationError):
        verifier.parse_webhook(body, headers_for(body, OTHER, t=NOW + 2))
    assert len(dedupe) == 1


def test_verifiers_sharing_a_record_of_ids_report_each_event_once() -> None:
    class SharedIds:  # what a shared job store provides: one atomic insert per id
        def __init__(self) -> None:
            self.ids: set[str] = set()
            self.lock = threading.Lock()

        def seen(self, delivery_id: str) -> bool:
            with self.lock:
                if delivery_id in self.ids:
                    return True
                self.ids.add(delivery_id)
                return False

    shared = SharedIds()
    one, two = (WebhookVerifier("openrouter", secret=SECRET, dedupe=shared) for _ in range(2))
    body = completed_body()
    assert one.parse_webhook(body, headers_for(body, t=time.time())).duplicate is False
    assert two.parse_webhook(body, headers_for(body, t=time.time())).duplicate is True
    assert shared.ids == {f"{JOB_ID}-completed"}


def test_verifier_without_a_secret_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENROUTER_WEBHOOK_SECRET", raising=False)
    body = completed_body()
    with pytest.raises(mj.WebhookVerificationError) as info:
        WebhookVerifier("openrouter").parse_webhook(body, headers_for(body))
    assert info.value.reason == "no_secret"
    with pytest.raises(mj.ConfigurationError):
        WebhookVerifier("nosuchrouter", secret=SECRET)


def test_webhook_event_is_frozen_and_swaps_its_job() -> None:
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    event: mj.WebhookEvent[str] = mj.WebhookEvent(
        type="video.generation.completed",
        id="a-completed",
        job="data",
        duplicate=False,
        received_at=at,
    )
    handle = event.with_job(42)
    assert (handle.job, handle.id, handle.type, handle.duplicate, handle.received_at) == (
        42,
        "a-completed",
        "video.generation.completed",
        False,
        at,
    )
    with pytest.raises(AttributeError):
        event.duplicate = True  # type: ignore[misc]


def test_build_event_matches_the_documented_body() -> None:
    job_body = {
        "id": JOB_ID,
        "polling_url": "https://x/api/v1/videos/1",
        "status": "completed",
        "generation_id": "gen-1",
        "unsigned_urls": ["https://x/c?index=0"],
        "usage": {"cost": None, "is_byok": False},
    }
    event = webhook_event(job_body, "succeeded", model="m", created_at=NOW)
    assert event == {
        "type": "video.generation.completed",
        "created_at": "2026-05-28T20:26:40.000Z",
        "data": {
            "id": JOB_ID,
            "status": "completed",
            "generation_id": "gen-1",
            "model": "m",
            "unsigned_urls": ["https://x/c?index=0"],
            "usage": {"cost": None, "is_byok": False},
        },
    }
    body = json.dumps(event).encode()
    assert parse_event(OpenRouter(), body, headers_for(body), [SECRET], NOW).job.done
    with pytest.raises(ValueError):
        webhook_event({"status": "completed"})


# ------------------------------------------------------------------ dedupe, ordering


def test_deduplicator_is_a_bounded_lru() -> None:
    dedupe = DeliveryDeduplicator(maxsize=3)
    assert [dedupe.seen(x) for x in "abca"] == [False, False, False, True]
    dedupe.seen("d")  # evicts "b", the least recently seen ("a" was refreshed)
    assert len(dedupe) == 3
    assert dedupe.seen("a") is True
    assert dedupe.seen("b") is False
    with pytest.raises(ValueError):
        DeliveryDeduplicator(maxsize=0)


def test_deduplicator_reports_each_id_once_across_threads() -> None:
    dedupe = DeliveryDeduplicator()
    firsts: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for n in range(500):
            if not dedupe.seen(f"id-{n}"):
                with lock:
                    firsts.append(f"id-{n}")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(firsts) == sorted(f"id-{n}" for n in range(500))


S = mj.JobStatus


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (S.QUEUED, S.RUNNING, True),
        (S.QUEUED, S.SUCCEEDED, True),
        (S.RUNNING, S.FAILED, True),
        (S.RUNNING, S.QUEUED, False),
        (S.RUNNING, S.RUNNING, False),
        (S.SUCCEEDED, S.RUNNING, False),
        (S.SUCCEEDED, S.QUEUED, False),
        (S.FAILED, S.SUCCEEDED, False),
        (S.SUCCEEDED, S.EXPIRED, False),
        (S.CANCELLED, S.CANCELLED, False),
    ],
)
def test_is_newer_never_moves_backwards(
    old: mj.JobStatus, new: mj.JobStatus, expected: bool
) -> None:
    assert is_newer(old, new) is expected


def test_is_newer_ranks_every_status() -> None:
    for old in S:
        for new in S:
            if old.is_terminal:
                assert not is_newer(old, new)
            if new is old:
                assert not is_newer(old, new)
        assert set(_status._RANK) == set(S)
