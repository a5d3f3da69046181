"""Generate many images at once with the async client, downloading each as it completes.

Against the fake provider: ``mediajobs serve-fake`` in one terminal, then
``python examples/batch_async.py --base-url http://127.0.0.1:8000 --api-key test-key``.
"""

from __future__ import annotations

import argparse
from contextlib import aclosing

import anyio

import mediajobs as mj

PROMPTS = [f"a watercolor lighthouse, variation {i}" for i in range(20)]


async def main(base_url: str | None, api_key: str | None) -> None:
    async with mj.AsyncClient("therouter", api_key=api_key, base_url=base_url) as client:
        jobs = [
            await client.submit("image", model="openai/gpt-image-2", prompt=prompt)
            for prompt in PROMPTS
        ]
        async with aclosing(client.as_completed(jobs, timeout=1800)) as finished:
            async for job in finished:
                if job.status is mj.JobStatus.SUCCEEDED:
                    paths = await job.download("out/", overwrite=True)
                    print(job.id, "->", *paths)
                else:
                    print(job.id, job.status, job.error)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url")
    parser.add_argument("--api-key")
    args = parser.parse_args()
    anyio.run(main, args.base_url, args.api_key)
