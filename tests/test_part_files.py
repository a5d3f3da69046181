"""Part files of killed downloads: deleted by the next download of the same artifacts, unless a
live download holds them (an advisory lock that the kernel drops when its process dies)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from mediajobs._files import ArtifactFiles, remove_abandoned_parts


def test_an_abandoned_part_file_of_the_same_artifact_is_deleted(tmp_path: Path) -> None:
    abandoned = tmp_path / ".job-1_0.part-0a1b2c3d"
    abandoned.write_bytes(b"half a video")
    other_job = tmp_path / ".job-2_0.part-0a1b2c3d"
    other_job.write_bytes(b"someone else's")
    not_a_part = tmp_path / "job-1_0.part-0a1b2c3d"
    not_a_part.write_bytes(b"a user's file")

    assert remove_abandoned_parts(tmp_path, ["job-1_0"]) == [abandoned]
    assert not abandoned.exists()
    assert other_job.exists() and not_a_part.exists()


def test_a_part_file_another_process_is_writing_is_kept(tmp_path: Path) -> None:
    live = tmp_path / ".job-1_0.part-00000001"
    live.write_bytes(b"being written")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
            str(live),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert remove_abandoned_parts(tmp_path, ["job-1_0"]) == []
        assert live.exists()
    finally:
        holder.kill()
        holder.communicate(timeout=10)  # reaps it and closes its pipes
    # Its process is gone, and so is its lock: now the file is abandoned.
    assert remove_abandoned_parts(tmp_path, ["job-1_0"]) == [live]


def test_a_download_in_progress_keeps_its_part_file_until_renamed(tmp_path: Path) -> None:
    files = ArtifactFiles(tmp_path, overwrite=False)
    files.open(["job-1_0"], ["http://storage.test/a.mp4"])
    part = files.part(0)
    part.write(b"data")
    part.finish()  # closed for writing, not yet renamed: still held
    assert remove_abandoned_parts(tmp_path, ["job-1_0"]) == []
    (path, size, _digest) = files.commit([("video/mp4", "http://storage.test/a.mp4", None)])[0]
    assert path.read_bytes() == b"data" and size == 4
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_new_download_deletes_what_a_killed_one_left(tmp_path: Path) -> None:
    stale = tmp_path / ".job-1_0.part-deadbeef"
    stale.write_bytes(b"from a process killed mid-download")
    files = ArtifactFiles(tmp_path, overwrite=False)
    files.open(["job-1_0"], ["http://storage.test/a.mp4"])
    try:
        assert not stale.exists()
        held = fcntl.flock  # the new part file is locked by this process
        fd = os.open(files.part(0).path, os.O_RDONLY)
        try:
            try:
                held(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = False
            except BlockingIOError:
                locked = True
        finally:
            os.close(fd)
        assert locked
    finally:
        files.cleanup()
    assert list(tmp_path.iterdir()) == []
