"""Submit a video job on OpenRouter, wait for it and download the result.

Run against the fake provider (no key, no network): ``mediajobs serve-fake`` in one terminal,
then ``python examples/quickstart.py --base-url http://127.0.0.1:8000 --api-key test-key``.
"""

from __future__ import annotations

import argparse

import mediajobs as mj


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url")
    parser.add_argument("--api-key")
    args = parser.parse_args()
    with mj.Client("openrouter", api_key=args.api_key, base_url=args.base_url) as client:
        job = client.submit("video", model="bytedance/seedance-2.0", prompt="a kitten by the sea")
        print("submitted", job.id)
        try:
            job.wait(timeout=900, on_update=lambda j: print("status:", j.status))
        except mj.JobError as exc:
            print("the job did not succeed:", exc)
            return
        for path in job.download("out/"):
            print("saved", path, path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
