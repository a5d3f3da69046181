"""The batch runner: validation, keyed submits recorded in the store, resumable runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from mediajobs import AsyncClient, ConfigurationError, PollPolicy, UnsupportedError
from mediajobs._batch import (
    BatchLine,
    BatchRunner,
    LineResult,
    check_kinds,
    clean_part_files,
    lock_directory,
    read_batch,
)
from mediajobs._store import JobStore, idempotency_key_for, spec_key
from mediajobs.testing import FakeProvider, Scenario

pytestmark = pytest.mark.anyio

POLL = PollPolicy.fixed(0.001)


def write_lines(path: Path, *lines: dict[str, Any] | str) -> Path:
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines),
        encoding="utf-8",
    )
    return path


def video(prompt: str, **more: Any) -> dict[str, Any]:
    return {"kind": "video", "model": "m", "prompt": prompt, **more}


async def run_batch(
    fake: FakeProvider,
    lines: Sequence[BatchLine],
    out: Path,
    *,
    provider: str = "openrouter",
    store: Path | None = None,
) -> list[LineResult]:
    await anyio.Path(out).mkdir(exist_ok=True)
    async with (
        httpx.AsyncClient(transport=fake.transport()) as http,
        AsyncClient(
            provider,
            api_key="k",
            base_url=fake.api_origin,
            http_client=http,
            poll=POLL,
            store=store or out / ".mediajobs.db",
        ) as client,
    ):
        runner = BatchRunner(client, out, concurrency=3)
        results = await runner.run(lines)
        progress = runner.progress
        assert progress.total == len({line.key for line in lines})
        assert sum(progress.statuses.values()) == progress.total
        assert progress.files == sum(len(r.files) for r in results)
        return results


def bytes_served(fake: FakeProvider) -> int:
    return sum(job.bytes_served for job in fake.jobs.values())


# ----------------------------------------------------------------------------- validation


def test_read_batch_keys_and_params(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "jobs.jsonl",
        {"key": "a", "kind": "image", "model": "m", "size": "1024x1024"},
        "",
        video("hi", duration=4),
    )
    first, second = read_batch(path)
    assert (first.number, first.key, first.kind, first.prompt) == (1, "a", "image", None)
    assert first.params == {"size": "1024x1024"}
    assert second.number == 3
    assert second.key == spec_key(video("hi", duration=4))
    assert second.params == {"duration": 4}


def test_identical_lines_name_one_job(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "jobs.jsonl", video("a"), '{"prompt": "a", "model": "m", "kind": "video"}'
    )
    first, second = read_batch(path)
    assert first.key == second.key
    assert (first.number, second.number) == (1, 2)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "jobs.jsonl:2: not JSON"),
        ("[1, 2]", "jobs.jsonl:2: a line must be a JSON object"),
        ('{"model": "m"}', "jobs.jsonl:2: kind must be one of"),
        ('{"kind": "video", "model": ""}', "jobs.jsonl:2: model must be a non-empty string"),
        ('{"kind": "video", "model": "m", "prompt": 3}', "jobs.jsonl:2: prompt must be a string"),
        ('{"kind": "video", "model": "m", "key": 7}', "jobs.jsonl:2: key must be a non-empty"),
        ('{"kind": "video", "model": "m", "labels": [1]}', "jobs.jsonl:2: labels must be a JSON"),
        (
            '{"kind": "video", "model": "m", "key": "same", "prompt": "other"}',
            "jobs.jsonl:2: key 'same' already names a different job on line 1",
        ),
    ],
)
def test_malformed_lines_are_named(tmp_path: Path, line: str, message: str) -> None:
    path = write_lines(tmp_path / "jobs.jsonl", video("x", key="same"), line)
    with pytest.raises(ConfigurationError) as caught:
        read_batch(path)
    assert message in str(caught.value)


def test_empty_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no jobs in the file"):
        read_batch(write_lines(tmp_path / "empty.jsonl", "", "  "))
    with pytest.raises(ConfigurationError, match="cannot read it"):
        read_batch(tmp_path / "missing.jsonl")
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe{}\n")
    with pytest.raises(ConfigurationError, match="not UTF-8"):
        read_batch(tmp_path / "bin.jsonl")


def test_check_kinds_names_the_line(tmp_path: Path) -> None:
    lines = read_batch(
        write_lines(tmp_path / "j.jsonl", video("a"), {"kind": "speech", "model": "m"})
    )

    def check(kind: str) -> None:
        if kind == "speech":
            raise UnsupportedError("no speech here")

    with pytest.raises(UnsupportedError, match=r"j\.jsonl:2: no speech here"):
        check_kinds(lines, check, str(tmp_path / "j.jsonl"))


def test_clean_part_files_only_touches_part_files(tmp_path: Path) -> None:
    part = tmp_path / ".vj_1_0.part-0a1b2c3d"
    keep = [tmp_path / "vj_1_0.mp4", tmp_path / ".mediajobs.db", tmp_path / ".x.part-nothex!"]
    for path in [part, *keep]:
        path.write_bytes(b"x")
    assert clean_part_files(tmp_path) == [part]
    assert not part.exists()
    assert all(p.exists() for p in keep)


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_clean_part_files_leaves_a_live_download_alone(tmp_path: Path) -> None:
    import fcntl

    live, dead = tmp_path / ".vj_1_0.part-0a1b2c3d", tmp_path / ".vj_2_0.part-4e5f6a7b"
    for path in (live, dead):
        path.write_bytes(b"x")
    with live.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # as a download writing it holds it
        assert clean_part_files(tmp_path) == [dead]
    assert live.exists() and not dead.exists()


def test_directory_lock_is_exclusive(tmp_path: Path) -> None:
    with (
        lock_directory(tmp_path),
        pytest.raises(ConfigurationError, match="another mediajobs batch"),
        lock_directory(tmp_path),
    ):
        pass
    with lock_directory(tmp_path):  # released
        pass


# ----------------------------------------------------------------------------- runs


async def test_run_submits_waits_downloads_and_records(tmp_path: Path) -> None:
    fake = FakeProvider()
    fake.script(Scenario(outcome="failed"), model="bad")
    lines = read_batch(
        write_lines(
            tmp_path / "jobs.jsonl",
            video("a", key="a"),
            video("b"),
            video("a", key="a"),
            {"kind": "video", "model": "bad", "prompt": "c", "key": "c"},
        )
    )
    out = tmp_path / "out"
    results = await run_batch(fake, lines, out)
    by_key = {r.key: r for r in results}
    assert [r.key for r in results] == ["a", lines[1].key, "c"]
    assert by_key["a"].lines == [1, 3]
    assert fake.submissions == 3
    assert fake.submits_with_key(idempotency_key_for("openrouter", "a")) == 1
    for key in ("a", lines[1].key):
        result = by_key[key]
        assert result.succeeded and result.downloaded_now
        assert result.job_id is not None
        (path,) = result.files
        assert path.parent == out.resolve()
        assert path.read_bytes() == fake.artifact_bytes(result.job_id)
    failed = by_key["c"]
    assert (failed.status, failed.files) == ("failed", [])
    assert failed.error == Scenario().error_message
    with JobStore(out / ".mediajobs.db") as store:
        stored = {s.key: s for s in store.jobs("openrouter")}
        assert {k: s.status.value for k, s in stored.items() if s.status} == {
            "a": "succeeded",
            lines[1].key: "succeeded",
            "c": "failed",
        }
        assert stored["a"].downloaded and not stored["c"].downloaded
        assert stored["a"].files[0].sha256 == fake.artifact_sha256(by_key["a"].job_id or "")


async def test_rerun_of_a_complete_batch_sends_nothing_new(tmp_path: Path) -> None:
    fake = FakeProvider()
    lines = read_batch(write_lines(tmp_path / "jobs.jsonl", video("a"), video("b")))
    out = tmp_path / "out"
    first = await run_batch(fake, lines, out)
    requests = len(fake.requests)
    again = await run_batch(fake, lines, out)
    assert len(fake.requests) == requests  # no submit, no poll, no download
    assert [(r.job_id, r.files, r.status) for r in again] == [
        (r.job_id, r.files, r.status) for r in first
    ]
    assert not any(r.downloaded_now or r.resent for r in again)


async def test_damaged_or_missing_file_is_downloaded_again(tmp_path: Path) -> None:
    fake = FakeProvider()
    lines = read_batch(write_lines(tmp_path / "jobs.jsonl", video("a"), video("b")))
    out = tmp_path / "out"
    first = await run_batch(fake, lines, out)
    damaged, removed = first[0].files[0], first[1].files[0]
    damaged.write_bytes(b"x" * damaged.stat().st_size)  # same size, other content
    removed.unlink()
    served = bytes_served(fake)
    part = out / ".vj_left_0.part-deadbeef"
    part.write_bytes(b"half")
    again = await run_batch(fake, lines, out)
    assert bytes_served(fake) == served + damaged.stat().st_size + fake_size(again[1])
    assert fake.submissions == 2
    assert all(r.downloaded_now for r in again)
    for result in again:
        assert result.files[0].read_bytes() == fake.artifact_bytes(result.job_id or "")
    assert not part.exists()


def fake_size(result: LineResult) -> int:
    return result.files[0].stat().st_size


async def test_lost_submit_answer_is_resent_with_the_same_key(tmp_path: Path) -> None:
    fake = FakeProvider()
    fake.script(Scenario(submit_drop_after_record=True), model="m", times=1)
    lines = read_batch(write_lines(tmp_path / "jobs.jsonl", video("a", key="a")))
    out = tmp_path / "out"
    (first,) = await run_batch(fake, lines, out)
    assert first.status == "submit_unknown"
    assert first.job_id is None and first.exception is not None
    assert fake.submissions == 1  # the fake made the job; its answer never arrived
    with JobStore(out / ".mediajobs.db") as store:
        (unknown,) = store.jobs("openrouter", status="submit_unknown")
        assert unknown.key == "a"
    (again,) = await run_batch(fake, lines, out)
    assert again.resent and again.succeeded
    assert fake.submissions == 1
    assert fake.submits_with_key(idempotency_key_for("openrouter", "a")) == 2  # one replay
    assert again.job_id in fake.jobs


async def test_refused_submit_is_recorded_and_sent_again_next_run(tmp_path: Path) -> None:
    fake = FakeProvider()
    fake.script(Scenario(submit_status=400), times=1)
    lines = read_batch(write_lines(tmp_path / "jobs.jsonl", video("a", key="a")))
    out = tmp_path / "out"
    (first,) = await run_batch(fake, lines, out)
    assert first.status == "submit_failed"
    assert fake.submissions == 0
    (again,) = await run_batch(fake, lines, out)
    assert again.succeeded and not again.resent
    assert fake.submissions == 1


async def test_runner_needs_a_store(tmp_path: Path) -> None:
    async with AsyncClient("openrouter", api_key="k") as client:
        with pytest.raises(ConfigurationError, match="job store"):
            BatchRunner(client, tmp_path)


async def test_unreadable_input_file_is_refused_without_a_request(tmp_path: Path) -> None:
    fake = FakeProvider()
    lines = read_batch(
        write_lines(
            tmp_path / "jobs.jsonl",
            {"kind": "image_edit", "model": "m", "prompt": "p", "image": str(tmp_path / "no")},
        )
    )
    (result,) = await run_batch(fake, lines, tmp_path / "out", provider="therouter")
    assert result.status == "submit_failed"
    assert isinstance(result.exception, ConfigurationError)
    assert fake.requests == []


@pytest.mark.parametrize("provider", ["therouter", "worldrouter", "onerouter"])
async def test_other_providers(tmp_path: Path, provider: str) -> None:
    fake = FakeProvider()
    lines = read_batch(
        write_lines(
            tmp_path / "jobs.jsonl",
            {"kind": "image", "model": "m", "prompt": "a"},
            {"kind": "image", "model": "m", "prompt": "b"},
        )
    )
    results = await run_batch(fake, lines, tmp_path / "out", provider=provider)
    assert all(r.succeeded for r in results)
    for result in results:
        assert result.files[0].read_bytes() == fake.artifact_bytes(result.job_id or "")


async def test_job_known_to_the_provider_but_not_to_this_store(tmp_path: Path) -> None:
    """The same key from another store: the provider replays a finished job, files and all."""
    fake = FakeProvider()
    lines = read_batch(write_lines(tmp_path / "jobs.jsonl", video("a", key="a")))
    (first,) = await run_batch(fake, lines, tmp_path / "one")
    (second,) = await run_batch(fake, lines, tmp_path / "two")
    assert fake.submissions == 1 and fake.replays == 1
    assert second.job_id == first.job_id
    assert second.succeeded, second.error
    assert second.files[0].parent == (tmp_path / "two").resolve()
    assert second.files[0].read_bytes() == fake.artifact_bytes(first.job_id or "")


async def test_labels_of_a_line_are_recorded(tmp_path: Path) -> None:
    fake = FakeProvider()
    lines = read_batch(
        write_lines(tmp_path / "jobs.jsonl", video("a", labels={"run": 7}), video("b"))
    )
    out = tmp_path / "out"
    await run_batch(fake, lines, out)
    with JobStore(out / ".mediajobs.db") as store:
        (labelled,) = store.jobs("openrouter", labels={"run": 7})
    assert labelled.key == lines[0].key
    assert labelled.labels == {"run": 7}
    assert "labels" not in fake.requests[0].json
