"""``mediajobs batch`` throughput against the served fake, and the cost of re-running it.

    python benchmarks/bench_batch.py                    # 200 and 1,000 lines
    python benchmarks/bench_batch.py --lines 5000 --concurrency 64

The fake provider is served over loopback by uvicorn in its own process; each batch runs as
the real command (``python -m mediajobs batch``) in a child process, measured with ``wait4``
(wall, CPU). Every size runs twice on a fresh output directory: the first run submits, waits
for and downloads every job; the second is the same command on the complete batch, which
finds everything in its store, verifies every file (size and SHA-256) and sends nothing.

Jobs are OpenRouter videos of the fake's default scenario (queued, running, succeeded: three
polls) with 4 KiB artifacts, so the figures are the client's own costs: the submits, polls and
downloads it sends and what it records, not rendering time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common


def write_batch(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            # Distinct per size: the same line in two batches would be one job (one key).
            prompt = f"clip {i} of {count}"
            line = {"kind": "video", "model": "google/veo-3.1", "prompt": prompt}
            handle.write(json.dumps(line) + "\n")


def store_bytes(out: Path) -> int:
    return sum(p.stat().st_size for p in out.glob(".mediajobs.db*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--poll-interval", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=600.0, help="per child run")
    args = parser.parse_args()
    common.raise_fd_limit()

    print(common.machine_summary())
    print(
        f"\nconcurrency {args.concurrency}, poll interval {args.poll_interval:g} s, "
        "3 polls and one 4 KiB file per job\n"
    )
    rows = []
    with common.ServedFake() as fake, tempfile.TemporaryDirectory() as scratch:
        for count in args.lines:
            work = Path(scratch) / f"b{count}"
            work.mkdir()
            batch, out = work / "jobs.jsonl", work / "out"
            write_batch(batch, count)
            argv = [
                sys.executable,
                "-m",
                "mediajobs",
                "--provider",
                "openrouter",
                "--base-url",
                fake.base_url,
                "--api-key",
                common.API_KEY,
                "--poll-interval",
                str(args.poll_interval),
                "--json",
                "batch",
                str(batch),
                "--out",
                str(out),
                "--concurrency",
                str(args.concurrency),
            ]
            with common.timed(f"{count} lines"):
                first = common.run_child(argv, timeout=args.timeout)
            with common.timed(f"{count} lines, again"):
                again = common.run_child(argv, timeout=args.timeout)
            files = len(list(out.glob("*.mp4")))
            assert files == count, f"{files} files for {count} lines"
            rows.append(
                [
                    count,
                    f"{first.wall:.1f}",
                    f"{count / first.wall:.0f}",
                    f"{first.cpu:.1f}",
                    f"{1000 * first.cpu / count:.2f}",
                    f"{store_bytes(out) / count:.0f}",
                    f"{again.wall:.2f}",
                    f"{again.cpu:.2f}",
                    f"{1000 * again.cpu / count:.2f}",
                ]
            )
    common.print_table(
        [
            "lines",
            "run s",
            "jobs/s",
            "CPU s",
            "CPU ms/job",
            "store B/job",
            "re-run s",
            "re-run CPU s",
            "re-run CPU ms/job",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
