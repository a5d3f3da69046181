"""Import time of ``mediajobs`` (and ``mediajobs.cli``), in fresh interpreters.

    python benchmarks/bench_import.py
    python benchmarks/bench_import.py --runs 41 --top 20

Each measurement is a new ``python -c "import X"`` process; the statements are interleaved
round by round and the median wall time is reported, beside a bare interpreter start,
``import httpx`` and the four core dependencies together (httpx, pydantic, tenacity, anyio),
which the mediajobs figures are compared with: ``import mediajobs`` alone (its public names
load on first use), ``import mediajobs; mediajobs.Client`` (the client class and the engine
behind it) and making a client, which also loads the pydantic models and the provider's
dialect and creates an ``httpx.Client`` (SSL context included), so it is compared with the
dependencies plus ``httpx.Client()`` as well. Bytecode caching is on in every child process,
as for an installed package, even when ``PYTHONDONTWRITEBYTECODE`` is set here. Then
``python -X importtime`` (median of 5) lists, for ``mediajobs._client`` (the whole client
stack) and ``mediajobs.cli``, the modules with the largest cumulative import time and how much
of it is mediajobs' own code.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
"""The children's environment: bytecode caching on, as for any installed package."""


def wall_of(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV)
    return time.perf_counter() - start


def importtime(module: str, runs: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median self and cumulative µs per module from ``-X importtime``."""
    selfs: dict[str, list[float]] = defaultdict(list)
    cumulative: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            check=True,
            capture_output=True,
            text=True,
            env=ENV,
        ).stderr
        for line in out.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, cum, name = (part.strip() for part in line[len("import time:") :].split("|"))
            selfs[name.strip()].append(float(own))
            cumulative[name.strip()].append(float(cum))
    return (
        {k: statistics.median(v) for k, v in selfs.items()},
        {k: statistics.median(v) for k, v in cumulative.items()},
    )


DEPS = "import httpx, pydantic, tenacity, anyio"
FIRST_USE = "import mediajobs; mediajobs.Client"
DEPS_CLIENT = "import httpx, pydantic, tenacity, anyio; httpx.Client()"
A_CLIENT = "import mediajobs; mediajobs.Client('therouter', api_key='k')"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="processes per statement")
    parser.add_argument("--top", type=int, default=12, help="modules to list")
    args = parser.parse_args()
    print(f"# bench_import: {common.machine_summary()}")

    statements = {
        "python -c pass": "pass",
        "import httpx": "import httpx",
        DEPS: "import httpx, pydantic, tenacity, anyio",
        "import mediajobs": "import mediajobs",
        FIRST_USE: "import mediajobs; mediajobs.Client",
        DEPS_CLIENT: DEPS_CLIENT,
        A_CLIENT: A_CLIENT,
    }
    if importlib.util.find_spec("mediajobs.cli") is not None:
        statements["import mediajobs.cli"] = "import mediajobs.cli"
    times: dict[str, list[float]] = {name: [] for name in statements}
    for code in statements.values():  # warm the file cache
        wall_of(code)
    for _ in range(args.runs):
        for name, code in statements.items():
            times[name].append(wall_of(code))
    bare = common.median(times["python -c pass"])
    rows = []
    for name in statements:
        med = common.median(times[name])
        rows.append(
            [
                name,
                f"{med * 1e3:.0f}",
                f"{min(times[name]) * 1e3:.0f}",
                "" if name == "python -c pass" else f"{(med - bare) * 1e3:.0f}",
            ]
        )
    print(f"\n## Wall time of a fresh process (median of {args.runs})\n")
    common.print_table(["statement", "median ms", "min ms", "minus bare start ms"], rows)

    def ratios(name: str, base: str) -> list[str]:
        bare_min = min(times["python -c pass"])
        return [
            name,
            f"{(common.median(times[name]) - bare) / (common.median(times[base]) - bare):.2f}",
            f"{(min(times[name]) - bare_min) / (min(times[base]) - bare_min):.2f}",
        ]

    print(f"\n## Against the core dependencies ({DEPS}, minus bare start)\n")
    common.print_table(
        ["statement", "ratio of medians", "ratio of minimums"],
        [ratios(name, DEPS) for name in ("import mediajobs", FIRST_USE, A_CLIENT)],
    )
    print(f"\n## Making a client, against the dependencies plus a client ({DEPS_CLIENT})\n")
    common.print_table(
        ["statement", "ratio of medians", "ratio of minimums"], [ratios(A_CLIENT, DEPS_CLIENT)]
    )

    startup = set(importtime("sys", 1)[0])  # what the interpreter imports anyway
    modules = ["mediajobs._client", "mediajobs.dialects.therouter"] + [
        name.split()[-1] for name in statements if name.startswith("import mediajobs.")
    ]
    for module in modules:
        selfs, cumulative = importtime(module, 5)
        selfs = {k: v for k, v in selfs.items() if k not in startup}
        total = cumulative.get(module, 0.0)
        packages: dict[str, float] = defaultdict(float)
        for name, own in selfs.items():
            packages[name.split(".")[0]] += own
        print(f"\n## python -X importtime -c 'import {module}' (median of 5 runs)\n")
        print(f"total {total / 1e3:.1f} ms (cumulative time of {module})\n")
        common.print_table(
            ["package (self time of its modules)", "ms", "share"],
            [
                [name, f"{ms / 1e3:.1f}", f"{ms / total:.0%}"]
                for name, ms in sorted(packages.items(), key=lambda kv: kv[1], reverse=True)[
                    : args.top
                ]
            ],
        )
        top = sorted(
            ((k, v) for k, v in cumulative.items() if k in selfs),
            key=lambda kv: kv[1],
            reverse=True,
        )[: args.top]
        print()
        common.print_table(
            ["module", "cumulative ms", "self ms"],
            [[name, f"{cum / 1e3:.1f}", f"{selfs[name] / 1e3:.1f}"] for name, cum in top],
        )


if __name__ == "__main__":
    main()
