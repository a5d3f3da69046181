"""Download of a large artifact: mediajobs ``job.download()`` vs ``curl -o``, same storage object.

    python benchmarks/bench_download.py                  # 1 GiB, one round
    python benchmarks/bench_download.py --size-mib 256 --rounds 3

The fake provider is served over loopback by uvicorn in its own process. One TheRouter video
job that succeeds at once is created with an ``X-Fake-Scenario`` header (``artifact_size``);
its pre-signed URL points at the fake's storage origin, which streams the bytes (generated
on the fly, never held in memory).

Each download runs in a fresh child process, so its baseline is clean:
  curl              ``curl -sS -o FILE URL`` on the pre-signed URL read by the parent
  raw httpx         ``httpx.stream("GET", URL)`` + ``iter_bytes()`` into a file, same URL
  raw httpx + fsync the same, then ``os.fsync`` (what mediajobs does before its rename)
  mediajobs sync    ``Client.get(job_id).download(dir)`` (a fresh URL for the same object)
  mediajobs async   ``AsyncClient.get(job_id)`` then ``await job.download(dir)``

Reported: wall seconds and MB/s (10^6 bytes) for the transfer; each process's peak RSS
(Linux ``VmHWM``: the Python children read their own, curl's is sampled every 5 ms while it
runs); for the Python children also the growth of that peak over the RSS measured just
before the download started (after imports and the status read). mediajobs
also flushes and fsyncs the file and renames it into place; curl and the plain raw loop do not.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

PROVIDER = "therouter"
AUTH = {"Authorization": f"Bearer {common.API_KEY}"}


# ----------------------------------------------------------------------------- child side


def child(args: argparse.Namespace) -> dict[str, Any]:
    dest = Path(args.dest)
    if args.variant in ("raw", "raw-fsync"):
        gc.collect()
        base = common.rss_now()
        cpu = common.cpu_seconds()
        start = time.perf_counter()
        with (
            httpx.stream("GET", args.url, timeout=60.0) as response,
            (dest / "raw.bin").open("wb") as out,
        ):
            response.raise_for_status()
            for chunk in response.iter_bytes():
                out.write(chunk)
            if args.variant == "raw-fsync":
                out.flush()
                os.fsync(out.fileno())
        seconds = time.perf_counter() - start
        return {
            "cpu": common.cpu_seconds() - cpu,
            "seconds": seconds,
            "base_rss": base,
            "peak_rss": common.peak_rss(),
            "max_rss": common.peak_rss(),
        }

    import mediajobs as mj

    if args.variant == "mediajobs-sync":
        with mj.Client(PROVIDER, api_key=common.API_KEY, base_url=args.base_url) as client:
            job = client.get(args.job_id)
            gc.collect()
            base = common.rss_now()
            cpu = common.cpu_seconds()
            start = time.perf_counter()
            paths = job.download(dest)
            seconds = time.perf_counter() - start
            cpu = common.cpu_seconds() - cpu
    else:

        async def run() -> tuple[float, float, int, list[Path]]:
            async with mj.AsyncClient(
                PROVIDER, api_key=common.API_KEY, base_url=args.base_url
            ) as client:
                job = await client.get(args.job_id)
                gc.collect()
                base = common.rss_now()
                cpu = common.cpu_seconds()
                start = time.perf_counter()
                paths = await job.download(dest)
                seconds = time.perf_counter() - start
                return seconds, common.cpu_seconds() - cpu, base, paths

        seconds, cpu, base, paths = asyncio.run(run())
    size = sum(p.stat().st_size for p in paths)
    peak = common.peak_rss()
    return {
        "seconds": seconds,
        "cpu": cpu,
        "base_rss": base,
        "peak_rss": peak,
        "max_rss": peak,
        "size": size,
    }


# ----------------------------------------------------------------------------- parent side


def create_job(base_url: str, size: int) -> tuple[str, str]:
    """Create a succeeded video job with one artifact of ``size`` bytes; return (id, URL)."""
    scenario = {"steps": [], "artifact_size": size, "content_type": "video/mp4"}
    with httpx.Client(base_url=base_url, headers=AUTH) as http:
        submitted = http.post(
            "/v1/videos",
            json={"model": "bench-video", "prompt": "a long take"},
            headers={"X-Fake-Scenario": json.dumps(scenario)},
        )
        submitted.raise_for_status()
        job_id = str(submitted.json()["id"])
        polled = http.get(f"/v1/jobs/{job_id}")
        polled.raise_for_status()
        body = polled.json()
    if body["status"] != "succeeded":
        raise RuntimeError(f"the fake job is {body['status']}, expected succeeded")
    return job_id, str(body["unsigned_urls"][0])


def run_curl(url: str, dest: Path, size: int) -> dict[str, Any] | str:
    curl = shutil.which("curl")
    if curl is None:
        return "curl is not installed: row skipped"
    result = common.run_child_rusage([curl, "-sS", "-o", str(dest / "curl.bin"), url], 600)
    written = (dest / "curl.bin").stat().st_size
    if result["returncode"] != 0 or written != size:
        return f"curl failed (exit {result['returncode']}, {written} bytes)"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=float, default=1024.0, help="artifact size in MiB")
    parser.add_argument("--rounds", type=int, default=1, help="downloads per variant")
    parser.add_argument("--dir", default=None, help="where files go (default: a temp dir)")
    parser.add_argument(
        "--server-defaults", action="store_true", help="serve the fake without the workarounds"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--job-id", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--dest", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)), flush=True)
        return

    size = int(args.size_mib * 2**20)
    print(f"# bench_download: {common.machine_summary()}")
    print(f"# one {size} byte artifact ({args.size_mib:g} MiB), {args.rounds} round(s)")
    variants = ["curl", "raw", "raw-fsync", "mediajobs-sync", "mediajobs-async"]
    labels = {
        "curl": "curl -o",
        "raw": "raw httpx stream",
        "raw-fsync": "raw httpx stream + fsync",
        "mediajobs-sync": "mediajobs Client",
        "mediajobs-async": "mediajobs AsyncClient",
    }
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    notes: list[str] = []
    parent = Path(args.dir) if args.dir else None
    with common.ServedFake(server_defaults=args.server_defaults) as server:
        job_id, url = create_job(server.base_url, size)
        for round_no in range(args.rounds):
            for variant in variants:
                dest = Path(tempfile.mkdtemp(prefix="mj-bench-dl-", dir=parent))
                print(f"  round {round_no + 1}: {variant}...", file=sys.stderr, flush=True)
                try:
                    if variant == "curl":
                        outcome = run_curl(url, dest, size)
                        if isinstance(outcome, str):
                            notes.append(outcome)
                            continue
                        results[variant].append(outcome)
                        continue
                    argv = [
                        sys.executable,
                        __file__,
                        "--child",
                        "--variant",
                        variant,
                        "--base-url",
                        server.base_url,
                        "--job-id",
                        job_id,
                        "--url",
                        url,
                        "--dest",
                        str(dest),
                    ]
                    child_result = common.run_child(argv, timeout=900)
                    results[variant].append(dict(child_result.data))
                finally:
                    shutil.rmtree(dest, ignore_errors=True)

    rows: list[list[object]] = []
    for variant in variants:
        runs = results[variant]
        if not runs:
            continue
        seconds = common.median([r["seconds"] for r in runs])
        cpu = common.median([r["cpu"] for r in runs])
        max_rss = max(r["max_rss"] for r in runs)
        growth = max(r["peak_rss"] - r["base_rss"] for r in runs) if "base_rss" in runs[0] else None
        rows.append(
            [
                labels[variant],
                f"{seconds:.2f}",
                f"{size / seconds / 1e6:.0f}",
                f"{cpu:.2f}",
                common.mib(max_rss),
                "-" if growth is None else common.mib(growth),
            ]
        )
    print()
    common.print_table(
        [
            "client",
            "seconds",
            "MB/s",
            "CPU s",
            "peak RSS MiB (whole process)",
            "peak RSS growth MiB",
        ],
        rows,
    )
    for note in notes:
        print(f"\nNOTE: {note}")


if __name__ == "__main__":
    main()
