from __future__ import annotations

from datetime import datetime, timezone

import pytest

import mediajobs as mj
from mediajobs._policy import parse_retry_after


def test_poll_backoff_grows_to_cap_without_jitter() -> None:
    policy = mj.PollPolicy(initial=1.0, factor=2.0, max_interval=5.0, jitter=0.0)
    assert [policy.next_delay(n) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_poll_jitter_stays_within_bounds() -> None:
    policy = mj.PollPolicy(initial=4.0, factor=1.0, max_interval=4.0, jitter=0.25)
    assert policy.next_delay(0, rand=0.0) == pytest.approx(3.0)
    assert policy.next_delay(0, rand=0.5) == pytest.approx(4.0)
    assert policy.next_delay(0, rand=0.999999) == pytest.approx(5.0, rel=1e-5)
    delays = {policy.next_delay(0) for _ in range(50)}
    assert len(delays) > 1
    assert all(3.0 <= d <= 5.0 for d in delays)


def test_poll_server_hint_replaces_delay_and_is_capped() -> None:
    policy = mj.PollPolicy(initial=1.0, max_interval=2.0, max_hint=30.0)
    assert policy.next_delay(0, hint=7.0) == 7.0
    assert policy.next_delay(9, hint=0.0) == 0.0
    assert policy.next_delay(0, hint=500.0) == 30.0


def test_poll_fixed() -> None:
    policy = mj.PollPolicy.fixed(1.5)
    assert {policy.next_delay(n) for n in range(10)} == {1.5}


@pytest.mark.parametrize(
    "kwargs",
    [{"initial": -1}, {"factor": 0.5}, {"jitter": 2}, {"max_interval": -1}],
)
def test_poll_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        mj.PollPolicy(**kwargs)


def test_retry_backoff_exponential_capped() -> None:
    policy = mj.RetryPolicy(initial=0.5, max_delay=3.0, jitter=0.0)
    assert [policy.next_delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_retry_after_honoured_and_capped() -> None:
    policy = mj.RetryPolicy(max_retry_after=60.0)
    assert policy.next_delay(1, hint=12.0) == 12.0
    assert policy.next_delay(1, hint=3600.0) == 60.0


def test_retry_policy_validation() -> None:
    with pytest.raises(ValueError):
        mj.RetryPolicy(max_attempts=0)
    assert mj.RetryPolicy.none().max_attempts == 1


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Sun, 22 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sun, 22 Nov 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("nan") is None
