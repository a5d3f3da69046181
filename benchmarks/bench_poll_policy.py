"""Polls per job and completion-detection lag of poll policies: a computation, no sleeping.

    python benchmarks/bench_poll_policy.py
    python benchmarks/bench_poll_policy.py --jobs 50000 --seed 7 --lag-target 0.15

A job's length D is unknown to the client. The client polls as ``wait_flow`` and ``ManyWait``
do: the first poll ``next_delay(0)`` after the submit, then ``next_delay(1)``,
``next_delay(2)``... The first poll at or after D sees the job done. Per job: polls = status
requests made; lag = that poll's time - D; "lag/length" = lag / D, averaged over jobs (how much
later than its own length a job is seen: 1 s matters for a 2 s job, not for a 60 s one).

Two ways of averaging over lengths spread evenly over 2-60 s:

- exact: the schedule at the jitter's midpoint (``rand=0.5``), integrated in closed form over
  the lengths (the test suite asserts the same computation);
- simulated: ``--jobs`` evenly spaced lengths, each polled with jitter drawn from a seeded
  generator (``--rtt`` seconds added per request, 0 by default).

Sections:
1. the default, the defaults it replaced, and a sweep of fixed intervals, with which of the
   two is better on which count;
2. a scan of every fixed interval from 0.25 to 15 s in 10 ms steps: which ones the default
   dominates, and whether any is as good as the default on both counts;
3. how the default was chosen: a grid over (initial, factor, max_interval) with
   ``max_interval`` inside each provider's published guidance, and what the best schedule of
   any shape can do (dynamic programming over poll times);
4. the same policies on other length distributions (log-uniform 2-60 s, 30-600 s videos).

``--plot PATH`` also writes section 1 as a PNG chart (polls/job against lag/length, exact): the
default, the defaults it replaced and the fixed intervals. It needs matplotlib (the ``bench``
extra: ``pip install -e ".[bench]"``); the tables need nothing more than the ``dev`` extra.
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

from mediajobs import PollPolicy
from mediajobs.dialects import DIALECTS

MID = 0.5
"""``rand`` at the jitter's midpoint."""

GUIDANCE: dict[str, tuple[float, float]] = {
    "therouter": (5.0, 10.0),
    "worldrouter": (5.0, 10.0),
    "openrouter": (10.0, 30.0),
    "onerouter": (5.0, 10.0),
}
"""Allowed ``max_interval`` (the steady poll interval) per provider."""

GUIDANCE_SOURCE = {
    "therouter": "published: 5-10 s",
    "worldrouter": "none published; held to 5-10 s",
    "openrouter": "published: 10-30 s",
    "onerouter": "none published; held to 5-10 s",
}

PREVIOUS = {
    "previous default (TheRouter, WorldRouter, OneRouter)": PollPolicy(
        initial=2.5, factor=1.1, max_interval=5.0, jitter=0.1
    ),
    "previous OpenRouter default": PollPolicy(
        initial=1.0, factor=1.4, max_interval=10.0, jitter=0.1
    ),
}

FIXED_SHOWN = (0.5, 1.0, 2.0, 3.0, 4.0, 4.5, 5.0, 5.25, 5.5, 5.75, 6.0, 7.0, 8.0, 10.0)
SCAN = [round(0.25 + 0.01 * i, 2) for i in range(1476)]
"""Every fixed interval from 0.25 s to 15 s, in 10 ms steps."""

GRID_INITIAL = [round(3.0 + 0.05 * i, 2) for i in range(61)]
GRID_FACTOR = [round(1.0 + 0.005 * i, 3) for i in range(21)]
GRID_MAX = (5.0, 6.0, 7.5, 10.0, 15.0, 20.0, 30.0)
JITTER_ROOM = 0.002
"""Lag/length kept below the target in the grid search, for the jitter's (small) effect."""

DP_STEP = 0.05
"""Grid of poll times, in seconds, for the best schedule of any shape."""


@dataclass(frozen=True)
class Even:
    """Job lengths spread evenly over [low, high]."""

    low: float
    high: float


def poll_times(policy: PollPolicy, until: float) -> list[float]:
    """Poll times at the jitter's midpoint, up to the first at or after ``until``."""
    times = [policy.next_delay(0, rand=MID)]
    while times[-1] < until:
        times.append(times[-1] + policy.next_delay(len(times), rand=MID))
    return times


@dataclass(frozen=True)
class Exact:
    polls: float
    rel_lag: float
    lag: float


def exact(times: Sequence[float], jobs: Even) -> Exact:
    """Mean polls, lag/length and lag (s), integrated over lengths uniform on [low, high].

    Jobs ending in (t0, t1] are seen at t1 after as many polls as the times up to t1.
    """
    span = jobs.high - jobs.low
    polls = rel = lag = 0.0
    before = 0.0
    for count, at in enumerate(times, 1):
        lo, hi = max(before, jobs.low), min(at, jobs.high)
        if hi > lo:
            polls += count * (hi - lo)
            rel += at * math.log(hi / lo) - (hi - lo)
            lag += (hi - lo) * (at - (hi + lo) / 2)
        before = at
        if at >= jobs.high:
            break
    return Exact(polls / span, rel / span, lag / span)


def exact_policy(policy: PollPolicy, jobs: Even) -> Exact:
    return exact(poll_times(policy, jobs.high), jobs)


@dataclass(frozen=True)
class Simulated:
    polls: float
    rel_lag: float
    lag: float
    lag_p95: float


def even_lengths(n: int, jobs: Even) -> list[float]:
    """``n`` lengths at the midpoints of ``n`` equal slices of [low, high]."""
    return [jobs.low + (jobs.high - jobs.low) * (i + 0.5) / n for i in range(n)]


def log_uniform_lengths(n: int, low: float, high: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    a, b = math.log(low), math.log(high)
    return [math.exp(rng.uniform(a, b)) for _ in range(n)]


def simulate(policy: PollPolicy, lengths: Sequence[float], rtt: float, seed: int) -> Simulated:
    """Poll each job as the library does, jitter drawn from a seeded generator."""
    rng = random.Random(seed)
    polls = 0
    lags: list[float] = []
    rel = 0.0
    for length in lengths:
        t, count = 0.0, 0
        while t < length:
            t += policy.next_delay(count, rand=rng.random()) + rtt
            count += 1
        polls += count
        lags.append(t - length)
        rel += (t - length) / length
    n = len(lengths)
    lags.sort()
    return Simulated(polls / n, rel / n, sum(lags) / n, lags[min(int(0.95 * n), n - 1)])


def describe(policy: PollPolicy) -> str:
    if policy.factor == 1.0 and policy.jitter == 0:
        return f"fixed {policy.initial:g} s"
    return (
        f"initial={policy.initial:g}, factor={policy.factor:g}, "
        f"max_interval={policy.max_interval:g}, jitter={policy.jitter:g}"
    )


def relation(other: Exact, default: Exact) -> str:
    """How ``other`` compares with the default on (polls, lag/length)."""
    fewer, quicker = other.polls < default.polls, other.rel_lag < default.rel_lag
    no_more, no_later = other.polls <= default.polls, other.rel_lag <= default.rel_lag
    if no_more and no_later:
        return "**as good or better on both**"
    if not fewer and not quicker:
        return "dominated by the default"
    return "fewer polls, later" if fewer else "sooner, more polls"


def fixed_frontier(jobs: Even) -> list[tuple[float, Exact]]:
    return [(s, exact_policy(PollPolicy.fixed(s), jobs)) for s in SCAN]


def fixed_polls_for_lag(frontier: Sequence[tuple[float, Exact]], rel_lag: float) -> float:
    """The fewest polls of a fixed interval whose lag/length is at most ``rel_lag``."""
    return min((e.polls for _, e in frontier if e.rel_lag <= rel_lag), default=math.inf)


def ranges(values: Iterable[float]) -> str:
    """``[5.1, 5.11, 5.12, 6.0]`` -> ``"5.1-5.12 s, 6 s"`` (10 ms steps)."""
    groups: list[list[float]] = []
    for v in values:
        if groups and round(v - groups[-1][-1], 2) <= 0.01:
            groups[-1].append(v)
        else:
            groups.append([v])
    if not groups:
        return "none"
    return ", ".join(f"{g[0]:g} s" if len(g) == 1 else f"{g[0]:g}-{g[-1]:g} s" for g in groups)


# --- the best schedule of any shape --------------------------------------------------------------


def best_schedule(jobs: Even, weight: float) -> tuple[list[float], Exact]:
    """Poll times on a ``DP_STEP`` grid minimizing ``polls + weight * lag/length``.

    The poll at t1 after one at t0 is made for the jobs longer than t0 and sees those ending in
    (t0, t1]; both terms add up poll by poll, so dynamic programming finds the best times.
    """
    span = jobs.high - jobs.low
    n = round(jobs.high / DP_STEP)
    grid = [i * DP_STEP for i in range(n + 1)]
    longer = [(jobs.high - max(t, jobs.low)) / span for t in grid]
    reach = round(4 * jobs.high / 10 / DP_STEP)  # no useful gap is longer than 40 % of the span
    best = [math.inf] * (n + 1)
    best[0] = 0.0
    back = [0] * (n + 1)
    for j in range(1, n + 1):
        t1 = grid[j]
        for i in range(max(0, j - reach), j):
            lo, hi = max(grid[i], jobs.low), min(t1, jobs.high)
            cost = best[i] + longer[i]
            if hi > lo:
                cost += weight * (t1 * math.log(hi / lo) - (hi - lo)) / span
            if cost < best[j]:
                best[j], back[j] = cost, i
    times: list[float] = []
    j = n
    while j > 0:
        times.append(grid[j])
        j = back[j]
    times.reverse()
    return times, exact(times, jobs)


def bound_certificate(
    jobs: Even, polls: float, rel_lag: float, weights: Iterable[float]
) -> tuple[float, float, Exact]:
    """The weight whose optimum best separates (polls, rel_lag) from every schedule.

    Every schedule on the grid has ``polls + w * lag >= V(w)``; if ``polls + w * rel_lag <
    V(w)`` for some w, no schedule on the grid reaches both. Returns (w, V(w) - target, optimum).
    """
    found: tuple[float, float, Exact] | None = None
    for w in weights:
        _, e = best_schedule(jobs, w)
        gap = e.polls + w * e.rel_lag - (polls + w * rel_lag)
        if found is None or gap > found[1]:
            found = (w, gap, e)
    assert found is not None
    return found


# --- chart ---------------------------------------------------------------------------------------

PLOT_LABELLED = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
"""Fixed intervals named on the chart."""


def chart_summary(jobs: Even, default: PollPolicy) -> str:
    """The figures a chart shows, as text: stored in the PNG so that a stale chart is found."""
    policies = [("default", default), *PREVIOUS.items()]
    return (
        "; ".join(
            f"{name} ({describe(policy)}): {e.polls:.3f} polls/job, lag/length {e.rel_lag:.2%}"
            for name, policy in policies
            for e in [exact_policy(policy, jobs)]
        )
        + f"; job lengths {jobs.low:g}-{jobs.high:g} s"
    )


def plot(path: Path, jobs: Even, default: PollPolicy) -> None:
    """Write section 1 as a PNG chart: polls/job against lag/length, exact.

    The left panel shows every fixed interval from 0.25 s to 15 s (polls on a log scale); the
    right one zooms on the default, where the choice is.

    Raises:
        SystemExit: When matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit(
            "--plot needs matplotlib: pip install -e '.[bench]' (or pip install matplotlib)"
        ) from None

    frontier = fixed_frontier(jobs)
    base = exact_policy(default, jobs)
    previous = [
        (
            name.replace("(TheRouter, WorldRouter, OneRouter)", "(TheRouter family)"),
            exact_policy(p, jobs),
        )
        for name, p in PREVIOUS.items()
    ]
    by_interval = dict(frontier)

    fig, panels = plt.subplots(1, 2, figsize=(11, 5), dpi=120, layout="constrained")
    zoom_x, zoom_y = (8.0, 20.0), (5.0, 10.0)
    for panel, named in zip(panels, (PLOT_LABELLED, FIXED_SHOWN), strict=True):
        labelled = [(s, by_interval[s]) for s in named]
        panel.plot(
            [e.rel_lag * 100 for _, e in frontier],
            [e.polls for _, e in frontier],
            color="#78909c",
            linewidth=1.5,
            label="fixed interval, 0.25-15 s",
        )
        panel.scatter(
            [e.rel_lag * 100 for _, e in labelled],
            [e.polls for _, e in labelled],
            color="#78909c",
            s=18,
            zorder=3,
        )
        for interval, e in labelled:
            panel.annotate(
                f"fixed {interval:g} s",
                (e.rel_lag * 100, e.polls),
                textcoords="offset points",
                xytext=(5, 4),
                fontsize=8,
                color="#546e7a",
                annotation_clip=True,
            )
        for (name, e), marker, colour in zip(
            previous, ("s", "D"), ("#ef6c00", "#8e24aa"), strict=True
        ):
            panel.scatter(
                [e.rel_lag * 100],
                [e.polls],
                marker=marker,
                s=55,
                color=colour,
                zorder=4,
                label=f"{name}: {e.polls:.2f} polls, {e.rel_lag:.1%}",
            )
        panel.scatter(
            [base.rel_lag * 100],
            [base.polls],
            marker="*",
            s=220,
            color="#1e88e5",
            zorder=5,
            label=f"default (every provider): {base.polls:.2f} polls, {base.rel_lag:.1%}",
        )
        panel.set_xlabel("lag/length, % (how much later than its length a job is seen)")
        panel.grid(True, color="#eceff1")
    full, zoom = panels
    full.set_yscale("log")
    full.set_ylabel("status polls per job (log scale)")
    full.set_title("Every fixed interval")
    full.add_patch(
        matplotlib.patches.Rectangle(
            (zoom_x[0], zoom_y[0]),
            zoom_x[1] - zoom_x[0],
            zoom_y[1] - zoom_y[0],
            fill=False,
            linestyle="--",
            edgecolor="#90a4ae",
        )
    )
    zoom.set_xlim(*zoom_x)
    zoom.set_ylim(*zoom_y)
    zoom.set_ylabel("status polls per job")
    zoom.set_title("Near the default (dashed box on the left)")
    zoom.legend(loc="upper right", fontsize=8)
    fig.suptitle(
        f"Polling policies on job lengths spread evenly over {jobs.low:g}-{jobs.high:g} s "
        "(exact, at the jitter's midpoint): lower left is better"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None, "Description": chart_summary(jobs, default)})
    plt.close(fig)


# --- output --------------------------------------------------------------------------------------

HEADERS = [
    "policy",
    "values",
    "polls/job",
    "lag/length",
    "lag mean s",
    "with jitter: polls/job",
    "lag/length",
    "lag mean s",
    "lag p95 s",
    "vs the default",
]


def row(name: str, policy: PollPolicy, e: Exact, s: Simulated, versus: str) -> list[object]:
    return [
        name,
        describe(policy),
        f"{e.polls:.2f}",
        f"{e.rel_lag:.1%}",
        f"{e.lag:.2f}",
        f"{s.polls:.2f}",
        f"{s.rel_lag:.1%}",
        f"{s.lag:.2f}",
        f"{s.lag_p95:.2f}",
        versus,
    ]


def section_sweep(
    jobs: Even, default: PollPolicy, lengths: Sequence[float], rtt: float, seed: int
) -> Exact:
    print(
        f"\n## 1. Default vs fixed intervals, lengths spread evenly over "
        f"{jobs.low:g}-{jobs.high:g} s\n"
    )
    base = exact_policy(default, jobs)
    policies: list[tuple[str, PollPolicy]] = [("default (every provider)", default)]
    policies += list(PREVIOUS.items())
    policies += [(f"fixed {s:g} s", PollPolicy.fixed(s)) for s in FIXED_SHOWN]
    rows = []
    for name, policy in policies:
        e = exact_policy(policy, jobs)
        versus = "" if policy is default else relation(e, base)
        rows.append(row(name, policy, e, simulate(policy, lengths, rtt, seed), versus))
    common.print_table(HEADERS, rows)
    print(
        f"\nFirst poll of the default: {default.next_delay(0, rand=MID):g} s after the submit "
        f"(±{default.jitter:.0%}); the steady interval: {default.max_interval:g} s, reached "
        f"after {_ramp(default):.0f} s of waiting."
    )
    return base


def _ramp(policy: PollPolicy) -> float:
    """Seconds of waiting before the nominal delay reaches ``max_interval``."""
    t = 0.0
    for k in itertools.count():
        delay = policy.next_delay(k, rand=MID)
        if delay >= policy.max_interval:
            return t
        t += delay
    return math.inf  # pragma: no cover - itertools.count never ends


def section_scan(jobs: Even, default: PollPolicy, frontier: Sequence[tuple[float, Exact]]) -> None:
    print(f"\n## 2. Every fixed interval {SCAN[0]:g}-{SCAN[-1]:g} s (10 ms steps), exact\n")
    base = exact_policy(default, jobs)
    as_good = [s for s, e in frontier if e.polls <= base.polls and e.rel_lag <= base.rel_lag]
    dominated = [s for s, e in frontier if e.polls >= base.polls and e.rel_lag >= base.rel_lag]
    print(f"- default: {base.polls:.3f} polls/job, lag/length {base.rel_lag:.2%}")
    print(f"- fixed intervals as good as the default on both counts: {ranges(as_good)}")
    print(
        f"- fixed intervals the default dominates (no fewer polls, no sooner): {ranges(dominated)}"
    )
    print("- every other fixed interval is a trade-off: it either polls more or sees jobs later;")
    same_lag = fixed_polls_for_lag(frontier, base.rel_lag)
    slower = [e for _, e in frontier if e.polls <= base.polls]
    same_polls = min((e.rel_lag for e in slower), default=math.inf)
    print(
        f"  to see jobs as soon, a fixed interval needs {same_lag:.3f} polls/job "
        f"({same_lag - base.polls:+.3f}); with as few polls, its lag/length is at least "
        f"{same_polls:.2%} ({(same_polls - base.rel_lag) * 100:+.2f} points)"
    )
    for name, policy in PREVIOUS.items():
        e = exact_policy(policy, jobs)
        beaten = [s for s, f in frontier if f.polls <= e.polls and f.rel_lag <= e.rel_lag]
        print(
            f"- {name}: {e.polls:.3f} polls/job, lag/length {e.rel_lag:.2%}; fixed intervals "
            f"as good on both: {ranges(beaten)}"
        )


def section_choice(
    jobs: Even, frontier: Sequence[tuple[float, Exact]], lag_target: float, polls_target: float
) -> None:
    steady = max(low for low, _ in GUIDANCE.values())
    assert all(low <= steady <= high for low, high in GUIDANCE.values())
    lag_bound, polls_bound = lag_target - JITTER_ROOM, polls_target + 0.5
    print(
        f"\n## 3. How the default was chosen (exact, {jobs.low:g}-{jobs.high:g} s)\n\n"
        f"Grid: initial {GRID_INITIAL[0]:g}-{GRID_INITIAL[-1]:g} s by 0.05, factor "
        f"{GRID_FACTOR[0]:g}-{GRID_FACTOR[-1]:g} by 0.005. Kept: lag/length <= {lag_bound:.1%} "
        f"(the {lag_target:.0%} target minus {JITTER_ROOM * 100:g} points for jitter) and at most "
        f"{polls_bound:g} polls/job; ranked by the polls saved against the fixed interval that "
        f"sees jobs as soon. max_interval={steady:g} s is the one steady interval inside every "
        "provider's guidance:\n"
    )
    videos = Even(30.0, 600.0)
    best_by_cap: dict[float, tuple[float, PollPolicy, Exact]] = {}
    found: list[tuple[float, PollPolicy, Exact]] = []
    for initial, factor, cap in itertools.product(GRID_INITIAL, GRID_FACTOR, GRID_MAX):
        if initial > cap:
            continue
        policy = PollPolicy(initial=initial, factor=factor, max_interval=cap, jitter=0.1)
        e = exact_policy(policy, jobs)
        if e.rel_lag > lag_bound or e.polls > polls_bound:
            continue
        candidate = (fixed_polls_for_lag(frontier, e.rel_lag) - e.polls, policy, e)
        if cap == steady:
            found.append(candidate)
        if cap not in best_by_cap or candidate[0] > best_by_cap[cap][0]:
            best_by_cap[cap] = candidate
    found.sort(key=lambda f: -f[0])
    common.print_table(
        ["rank", "candidate", "polls/job", "lag/length", "polls saved"],
        [
            [rank, describe(p), f"{e.polls:.3f}", f"{e.rel_lag:.2%}", f"{saved:+.3f}"]
            for rank, (saved, p, e) in enumerate(found[:5], 1)
        ],
    )
    print(
        "\nThe best for each max_interval (which providers' guidance it fits), and what it costs "
        f"on longer jobs (exact, lengths spread evenly over {videos.low:g}-{videos.high:g} s):\n"
    )
    rows: list[list[object]] = []
    for cap in sorted(best_by_cap):
        saved, policy, e = best_by_cap[cap]
        fits = [n for n, (low, high) in sorted(GUIDANCE.items()) if low <= cap <= high]
        long = exact_policy(policy, videos)
        rows.append(
            [
                f"{cap:g}",
                ", ".join(fits) or "none",
                describe(policy),
                f"{e.polls:.3f}",
                f"{e.rel_lag:.2%}",
                f"{saved:+.3f}",
                f"{long.polls:.1f}",
                f"{long.lag:.2f}",
            ]
        )
    common.print_table(
        [
            "max_interval",
            "fits",
            "best candidate",
            "polls/job",
            "lag/length",
            "polls saved",
            "30-600 s: polls/job",
            "lag mean s",
        ],
        rows,
    )
    print(
        f"\nThe best schedule of any shape (poll times on a {DP_STEP:g} s grid, dynamic "
        "programming; it may crowd polls just before the longest length, which no real policy "
        "should):\n"
    )
    rows = []
    for weight in (30.0, 33.0, 35.0, 40.0):
        times, e = best_schedule(jobs, weight)
        rows.append(
            [
                f"{weight:g}",
                f"{e.polls:.3f}",
                f"{e.rel_lag:.2%}",
                ", ".join(f"{t:g}" for t in times[:6]) + ", ...",
            ]
        )
    common.print_table(["weight of lag/length", "polls/job", "lag/length", "poll times s"], rows)
    weight, gap, e = bound_certificate(jobs, polls_target, lag_target, range(25, 46))
    verdict = "no schedule on the grid reaches both" if gap > 0 else "not excluded"
    print(
        f"\nTarget {polls_target:g} polls/job at lag/length <= {lag_target:.0%}: with weight "
        f"{weight:g}, every schedule has polls + {weight:g} x lag/length >= "
        f"{e.polls + weight * e.rel_lag:.3f}, the target would give "
        f"{polls_target + weight * lag_target:.3f}: {verdict}."
    )


def section_elsewhere(default: PollPolicy, args: argparse.Namespace) -> None:
    samples: list[tuple[str, Callable[[], list[float]]]] = [
        (
            f"log-uniform {args.min_seconds:g}-{args.max_seconds:g} s (most jobs short)",
            lambda: log_uniform_lengths(args.jobs, args.min_seconds, args.max_seconds, args.seed),
        ),
        (
            "log-uniform 30-600 s (video-like)",
            lambda: log_uniform_lengths(args.jobs, 30.0, 600.0, args.seed),
        ),
    ]
    print("\n## 4. Other lengths, simulated with jitter")
    for title, make in samples:
        print(f"\n### {title}\n")
        lengths = make()
        policies = [("default", default), *PREVIOUS.items()]
        policies += [(f"fixed {s:g} s", PollPolicy.fixed(s)) for s in (1.0, 5.0, 10.0)]
        rows = []
        for name, policy in policies:
            s = simulate(policy, lengths, args.rtt, args.seed)
            rows.append(
                [
                    name,
                    describe(policy),
                    f"{s.polls:.2f}",
                    f"{s.rel_lag:.1%}",
                    f"{s.lag:.2f}",
                    f"{s.lag_p95:.2f}",
                ]
            )
        common.print_table(
            ["policy", "values", "polls/job", "lag/length", "lag mean s", "lag p95 s"], rows
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20000, help="simulated jobs per sample")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--rtt", type=float, default=0.0, help="seconds per request (simulated)")
    parser.add_argument("--lag-target", type=float, default=0.15, help="mean lag/length target")
    parser.add_argument("--polls-target", type=float, default=6.0, help="polls/job target")
    parser.add_argument(
        "--plot", type=Path, metavar="PATH", help="also write section 1 as a PNG chart"
    )
    args = parser.parse_args()

    print(f"# bench_poll_policy: {common.machine_summary()}")
    jobs = Even(args.min_seconds, args.max_seconds)
    default = PollPolicy()
    shared = {DIALECTS[name].default_poll for name in DIALECTS}
    print(
        f"# default: {describe(default)}; the four providers' defaults "
        f"{'are all this policy' if shared == {default} else 'differ: ' + str(shared)}"
    )
    print(
        f"# simulated: {args.jobs} lengths per sample, jitter seed {args.seed}, rtt {args.rtt:g} s"
    )
    lengths = even_lengths(args.jobs, jobs)
    section_sweep(jobs, default, lengths, args.rtt, args.seed)
    frontier = fixed_frontier(jobs)
    section_scan(jobs, default, frontier)
    section_choice(jobs, frontier, args.lag_target, args.polls_target)
    section_elsewhere(default, args)
    if args.plot is not None:
        plot(args.plot, jobs, default)
        print(f"\nChart of section 1: {args.plot}")
    print("\nGuidance used for max_interval:")
    for name in sorted(GUIDANCE):
        print(f"  {name}: {GUIDANCE_SOURCE[name]}")


if __name__ == "__main__":
    main()
