from __future__ import annotations

import ast
import inspect
import math
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mediajobs as mj
from mediajobs import _policy
from mediajobs._policy import DEFAULT_MIN_DELAY, check_timeout, parse_retry_after
from mediajobs.dialects import DIALECTS

MID = 0.5
"""``rand`` at the jitter's midpoint: the nominal delay."""


# --- the schedule ------------------------------------------------------------------------------


def test_poll_backoff_grows_to_cap_without_jitter() -> None:
    policy = mj.PollPolicy(initial=1.0, factor=2.0, max_interval=5.0, jitter=0.0)
    assert [policy.next_delay(n, rand=MID) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_poll_jitter_is_placed_by_rand() -> None:
    policy = mj.PollPolicy(initial=4.0, factor=1.0, max_interval=4.0, jitter=0.25)
    assert policy.next_delay(0, rand=0.0) == pytest.approx(3.0)
    assert policy.next_delay(0, rand=MID) == pytest.approx(4.0)
    assert policy.next_delay(0, rand=0.999999) == pytest.approx(5.0, rel=1e-5)
    assert policy.next_delay(3, rand=0.25) == pytest.approx(3.5)


def test_poll_fixed() -> None:
    policy = mj.PollPolicy.fixed(1.5)
    assert {policy.next_delay(n, rand=r) for n in range(10) for r in (0.0, 0.7)} == {1.5}


def test_defaults_first_poll_and_steady_interval() -> None:
    policy = mj.PollPolicy()
    assert policy.next_delay(0, rand=MID) == pytest.approx(4.8)
    assert policy.next_delay(1, rand=MID) == pytest.approx(4.8 * 1.025)
    assert policy.next_delay(10**9, rand=MID) == 10.0
    assert policy.floor == DEFAULT_MIN_DELAY
    assert mj.RetryPolicy().next_delay(1, rand=MID) == 0.5
    assert mj.RetryPolicy().next_delay(10**9, rand=MID) == 30.0


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_every_dialect_polls_within_its_guidance(name: str) -> None:
    """A steady interval of 10 s: inside TheRouter's 5-10 s and OpenRouter's 10-30 s."""
    policy = DIALECTS[name].default_poll
    assert policy.next_delay(200, rand=MID) == policy.max_interval == 10.0


def test_retry_backoff_exponential_capped() -> None:
    policy = mj.RetryPolicy(initial=0.5, max_delay=3.0, jitter=0.0)
    assert [policy.next_delay(n, rand=MID) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.next_delay(0, rand=MID) == 0.5  # "no attempt yet" counts as the first


def test_huge_attempt_counts_do_not_overflow() -> None:
    poll = mj.PollPolicy(initial=1.0, factor=1e6, max_interval=60.0, jitter=0.0)
    retry = mj.RetryPolicy(initial=1e-3, max_delay=1e6, jitter=0.0)
    assert poll.next_delay(10**12, rand=MID) == 60.0
    assert retry.next_delay(10**12, rand=MID) == 1e6
    assert poll.next_delay(-5, rand=MID) == 1.0


# --- server hints and floors -------------------------------------------------------------------


def test_poll_server_hint_replaces_delay_and_is_capped() -> None:
    policy = mj.PollPolicy(initial=1.0, max_interval=2.0, max_hint=30.0)
    assert policy.next_delay(0, hint=7.0, rand=0.0) == 7.0  # not jittered
    assert policy.next_delay(0, hint=500.0, rand=MID) == 30.0
    assert policy.next_delay(0, hint=math.inf, rand=MID) == 30.0


@pytest.mark.parametrize("hint", [0.0, -3.0, -math.inf, 1e-9])
def test_poll_hint_below_the_floor_is_raised_to_it(hint: float) -> None:
    assert mj.PollPolicy().next_delay(7, hint=hint, rand=MID) == DEFAULT_MIN_DELAY
    policy = mj.PollPolicy(initial=2.0, max_interval=8.0, min_interval=1.25)
    assert policy.next_delay(0, hint=hint, rand=MID) == 1.25


def test_a_zero_hint_on_every_poll_cannot_make_a_busy_loop() -> None:
    policy = mj.PollPolicy()
    elapsed, polls = 0.0, 0
    while elapsed < 2.0:
        elapsed += policy.next_delay(polls, hint=0.0, rand=MID)
        polls += 1
    assert polls == 4  # every 0.5 s, where an unfloored zero hint gave thousands


def test_a_hint_that_is_not_a_number_is_ignored() -> None:
    policy = mj.PollPolicy(initial=3.0, factor=1.0, max_interval=3.0, jitter=0.0)
    assert policy.next_delay(0, hint=math.nan, rand=MID) == 3.0
    retry = mj.RetryPolicy(initial=2.0, jitter=0.0)
    assert retry.next_delay(1, hint=math.nan, rand=MID) == 2.0


def test_retry_after_honoured_capped_and_floored() -> None:
    policy = mj.RetryPolicy(max_retry_after=60.0)
    assert policy.next_delay(1, hint=12.0, rand=MID) == 12.0
    assert policy.next_delay(1, hint=3600.0, rand=MID) == 60.0
    assert policy.next_delay(1, hint=0.0, rand=MID) == DEFAULT_MIN_DELAY
    assert policy.next_delay(1, hint=-1.0, rand=MID) == DEFAULT_MIN_DELAY
    assert mj.RetryPolicy(min_delay=2.0).next_delay(1, hint=0.0, rand=MID) == 2.0


def test_full_jitter_never_reaches_zero() -> None:
    poll = mj.PollPolicy(initial=2.0, factor=1.0, max_interval=2.0, jitter=1.0)
    retry = mj.RetryPolicy(initial=2.0, jitter=1.0)
    assert poll.next_delay(0, rand=0.0) == DEFAULT_MIN_DELAY
    assert retry.next_delay(1, rand=0.0) == DEFAULT_MIN_DELAY


def test_the_default_floor_never_exceeds_the_first_delay() -> None:
    """A policy built for fast polling keeps its pace: the floor is ``initial`` when lower."""
    fast = mj.PollPolicy.fixed(0.05)
    assert fast.floor == 0.05
    assert fast.next_delay(0, hint=0.0, rand=MID) == 0.05
    assert mj.RetryPolicy(initial=0.01).floor == 0.01
    assert mj.PollPolicy(initial=0.2, max_interval=0.5, min_interval=0.3).floor == 0.3


# --- randomness is the caller's ----------------------------------------------------------------


@pytest.mark.parametrize("cls", [mj.PollPolicy, mj.RetryPolicy])
def test_rand_is_a_required_keyword(cls: type[Any]) -> None:
    parameter = inspect.signature(cls.next_delay).parameters["rand"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert parameter.default is inspect.Parameter.empty
    with pytest.raises(TypeError):
        cls().next_delay(1)


def test_the_policy_module_draws_no_random_numbers() -> None:
    tree = ast.parse(inspect.getsource(_policy))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not imported & {"random", "secrets", "os"}


@pytest.mark.parametrize("rand", [math.nan, -0.1, 1.5, math.inf])
def test_rand_outside_the_unit_interval_is_refused(rand: float) -> None:
    with pytest.raises(mj.ConfigurationError, match="rand"):
        mj.PollPolicy().next_delay(0, rand=rand)
    with pytest.raises(mj.ConfigurationError, match="rand"):
        mj.RetryPolicy().next_delay(1, rand=rand)


# --- validation --------------------------------------------------------------------------------

NOT_FINITE = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        *[
            ({name: bad}, name)
            for name in ("initial", "factor", "max_interval")
            for bad in NOT_FINITE
        ],
        *[
            ({name: bad}, name)
            for name in ("jitter", "max_hint", "min_interval")
            for bad in NOT_FINITE
        ],
        ({"initial": 0}, "initial"),
        ({"initial": -1}, "initial"),
        ({"factor": 0.5}, "factor"),
        ({"max_interval": 1.0}, "max_interval"),  # below the default initial
        ({"jitter": 2}, "jitter"),
        ({"jitter": -0.1}, "jitter"),
        ({"max_hint": 0}, "max_hint"),
        ({"min_interval": 0}, "min_interval"),
        ({"min_interval": 11.0}, "min_interval"),  # above max_interval
        ({"initial": "2"}, "initial"),
        ({"factor": None}, "factor"),
        ({"jitter": True}, "jitter"),
    ],
)
def test_poll_policy_rejects_bad_settings(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(mj.ConfigurationError, match=rf"PollPolicy\.{field} must be"):
        mj.PollPolicy(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        *[({name: bad}, name) for name in ("initial", "max_delay", "jitter") for bad in NOT_FINITE],
        *[({name: bad}, name) for name in ("max_retry_after", "min_delay") for bad in NOT_FINITE],
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"initial": 0}, "initial"),
        ({"max_delay": 0.1}, "max_delay"),  # below the default initial
        ({"jitter": 1.5}, "jitter"),
        ({"max_retry_after": -1}, "max_retry_after"),
        ({"min_delay": 0}, "min_delay"),
        ({"min_delay": 31.0}, "min_delay"),  # above max_delay
    ],
)
def test_retry_policy_rejects_bad_settings(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(mj.ConfigurationError, match=rf"RetryPolicy\.{field} must be"):
        mj.RetryPolicy(**kwargs)


@pytest.mark.parametrize("interval", [0, -1.0, math.nan, math.inf])
def test_fixed_rejects_a_bad_interval(interval: float) -> None:
    with pytest.raises(mj.ConfigurationError, match="interval"):
        mj.PollPolicy.fixed(interval)


def test_validation_errors_are_mediajobs_errors_that_say_what_was_given() -> None:
    with pytest.raises(mj.MediaJobsError) as info:
        mj.PollPolicy(initial=math.nan)
    assert str(info.value) == "PollPolicy.initial must be finite, got nan"
    with pytest.raises(mj.MediaJobsError) as info:
        mj.RetryPolicy(max_attempts=0)
    assert str(info.value) == "RetryPolicy.max_attempts must be an int >= 1, got 0"
    assert mj.RetryPolicy.none().max_attempts == 1


def test_replace_revalidates() -> None:
    with pytest.raises(mj.ConfigurationError, match="initial"):
        replace(mj.PollPolicy(), initial=-1.0)


@pytest.mark.parametrize("value", [1, 0.25, 3600.0, None])
def test_check_timeout_accepts_positive_seconds_or_none(value: float | None) -> None:
    checked = check_timeout(value, "timeout")
    assert checked == value
    assert checked is None or type(checked) is float


@pytest.mark.parametrize("value", [0, -1.0, math.nan, math.inf, -math.inf, "10", True])
def test_check_timeout_refuses_anything_else(value: object) -> None:
    with pytest.raises(mj.ConfigurationError, match=r"^wait_timeout must be"):
        check_timeout(value, "wait_timeout")


# --- properties of every valid schedule --------------------------------------------------------

SETTINGS = settings(database=None, deadline=None)
"""No example database in the work tree, and no per-example deadline on a busy machine."""

seconds = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False)
unit = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


@st.composite
def poll_policies(draw: st.DrawFn) -> mj.PollPolicy:
    initial = draw(seconds)
    cap = draw(st.floats(min_value=initial, max_value=initial * 1e3))
    floor = draw(st.none() | st.floats(min_value=1e-3, max_value=cap))
    return mj.PollPolicy(
        initial=initial,
        factor=draw(st.floats(min_value=1.0, max_value=1e3)),
        max_interval=cap,
        jitter=draw(unit),
        max_hint=draw(seconds),
        min_interval=floor,
    )


@st.composite
def retry_policies(draw: st.DrawFn) -> mj.RetryPolicy:
    initial = draw(seconds)
    cap = draw(st.floats(min_value=initial, max_value=initial * 1e3))
    return mj.RetryPolicy(
        max_attempts=draw(st.integers(min_value=1, max_value=20)),
        initial=initial,
        max_delay=cap,
        jitter=draw(unit),
        max_retry_after=draw(seconds),
        min_delay=draw(st.none() | st.floats(min_value=1e-3, max_value=cap)),
    )


attempts = st.integers(min_value=0, max_value=10**6)
hints = st.none() | st.floats()  # nan and both infinities included


policies = poll_policies() | retry_policies()


def ceiling(policy: mj.PollPolicy | mj.RetryPolicy) -> float:
    """The longest delay a policy may return: its jittered cap, its hint cap, or its floor."""
    if isinstance(policy, mj.PollPolicy):
        cap, hint_cap = policy.max_interval, policy.max_hint
    else:
        cap, hint_cap = policy.max_delay, policy.max_retry_after
    return max(cap * (1 + policy.jitter), hint_cap, policy.floor)


@SETTINGS
@given(policies, attempts, hints, unit)
def test_every_delay_is_finite_bounded_floored_and_deterministic(
    policy: mj.PollPolicy | mj.RetryPolicy, attempt: int, hint: float | None, rand: float
) -> None:
    delay = policy.next_delay(attempt, hint=hint, rand=rand)
    assert math.isfinite(delay)
    assert policy.floor <= delay <= ceiling(policy)
    assert policy.next_delay(attempt, hint=hint, rand=rand) == delay


@SETTINGS
@given(policies, attempts, unit)
def test_schedules_never_shrink(
    policy: mj.PollPolicy | mj.RetryPolicy, attempt: int, rand: float
) -> None:
    assert policy.next_delay(attempt + 1, rand=rand) >= policy.next_delay(attempt, rand=rand)
    # and a larger rand never gives a shorter delay
    higher = rand + (1.0 - rand) / 2
    assert policy.next_delay(attempt, rand=higher) >= policy.next_delay(attempt, rand=rand)


@SETTINGS
@given(policies, attempts, unit)
def test_jitter_stays_within_its_band(
    policy: mj.PollPolicy | mj.RetryPolicy, attempt: int, rand: float
) -> None:
    nominal = policy.next_delay(attempt, rand=MID)
    delay = policy.next_delay(attempt, rand=rand)
    low = max(nominal * (1 - policy.jitter), policy.floor)
    high = max(nominal * (1 + policy.jitter), policy.floor)
    assert low * (1 - 1e-12) <= delay <= high * (1 + 1e-12)


# --- the default against fixed intervals (a computation, no time involved) ---------------------

SHORTEST, LONGEST = 2.0, 60.0
"""Job lengths spread evenly over 2-60 s: the distribution the default was chosen for."""


def poll_times(policy: mj.PollPolicy) -> list[float]:
    """When the polls happen, from the submit, until one at or after the longest job."""
    times = [policy.next_delay(0, rand=MID)]
    while times[-1] < LONGEST:
        times.append(times[-1] + policy.next_delay(len(times), rand=MID))
    return times


def polls_and_lag(policy: mj.PollPolicy) -> tuple[float, float]:
    """Mean polls per job and mean lag / length, integrated exactly over the even spread.

    A job of length D is seen by the first poll at or after D. Poll k is made for every job
    longer than poll k-1's time, so the mean count is the sum of those shares; over the jobs
    that end between two polls t0 < D <= t1, lag / length is t1/D - 1, whose integral is
    t1 ln(t1'/t0') - (t1' - t0') over the part inside [2, 60].
    """
    span = LONGEST - SHORTEST
    polls = lag = 0.0
    before = 0.0
    for at in poll_times(policy):
        polls += (LONGEST - max(before, SHORTEST)) / span
        low, high = max(before, SHORTEST), min(at, LONGEST)
        if high > low:
            lag += (at * math.log(high / low) - (high - low)) / span
        before = at
    return polls, lag


FIXED_SWEEP = [round(0.25 + 0.01 * i, 2) for i in range(976)]
"""Every fixed interval from 0.25 s to 10 s, in 10 ms steps."""


def fixed_as_good(polls: float, lag: float) -> list[float]:
    """The fixed intervals that need no more polls and lag no more than (polls, lag)."""
    found = []
    for interval in FIXED_SWEEP:
        fixed_polls, fixed_lag = polls_and_lag(mj.PollPolicy.fixed(interval))
        if fixed_polls <= polls and fixed_lag <= lag:
            found.append(interval)
    return found


def test_the_integration_matches_fixed_polling_in_closed_form() -> None:
    # Fixed 4 s over 2-60 s: a job in (4(k-1), 4k] takes k polls.
    polls, _ = polls_and_lag(mj.PollPolicy.fixed(4.0))
    assert polls == pytest.approx((2 * 1 + sum(4 * k for k in range(2, 16))) / 58)
    # Fixed 60 s: one poll, at 60 s, for every job; mean of 60/D - 1.
    polls, lag = polls_and_lag(mj.PollPolicy.fixed(60.0))
    assert polls == 1.0
    assert lag == pytest.approx(60 * math.log(30) / 58 - 1)


def test_default_is_pareto_better_than_every_fixed_interval() -> None:
    polls, lag = polls_and_lag(mj.PollPolicy())
    assert polls < 6.5
    assert lag <= 0.15
    assert fixed_as_good(polls, lag) == []
    # The fixed intervals nearest on each side are each worse on one count.
    fewer = polls_and_lag(mj.PollPolicy.fixed(5.5))
    quicker = polls_and_lag(mj.PollPolicy.fixed(5.0))
    assert fewer[0] < polls and fewer[1] > lag
    assert quicker[1] < lag and quicker[0] > polls


def test_previous_default_was_beaten_by_a_fixed_interval() -> None:
    """The check can fail: the 2.5 s x 1.1 (max 5 s) schedule it replaced does."""
    previous = mj.PollPolicy(initial=2.5, factor=1.1, max_interval=5.0, jitter=0.1)
    polls, lag = polls_and_lag(previous)
    assert polls > 8.5
    assert fixed_as_good(polls, lag)


# --- Retry-After parsing -----------------------------------------------------------------------


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
