"""The files of a download: the destination directory, part files, and the final rename.

Each artifact is written to ``.<stem>.part-<random>`` in the destination directory (its
SHA-256 computed as the bytes go by), flushed and fsynced, and renamed to ``<stem><ext>`` only
once *every* artifact of the call is complete: a failure or a cancellation anywhere leaves
neither a final file nor a temporary one (:meth:`ArtifactFiles.cleanup`).

A process killed mid-download cannot clean up, so each part file is held under an advisory
lock (``flock``) until it is renamed or deleted; the kernel drops the lock when its process
dies. A later download of the same artifacts deletes the part files nobody holds (where
``fcntl`` exists: Linux, macOS), and never one that another live download is writing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from ._exceptions import DownloadError
from ._naming import extension_for, safe_url

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: part files of killed downloads stay
    fcntl = None  # type: ignore[assignment]

__all__ = ["ArtifactFiles", "target_in"]


def target_in(directory: Path, name: str) -> Path:
    """Join a file name to a (resolved) directory, refusing anything that would leave it.

    Args:
        directory: The destination directory, already resolved.
        name: The file name.

    Returns:
        ``directory / name``.

    Raises:
        DownloadError: If the name is not one plain path component.
    """
    separators = {"/", "\\", "\0", os.sep, os.altsep or "/"}
    if name in ("", ".", "..") or any(sep in name for sep in separators):
        raise DownloadError(f"refusing the unsafe file name {name!r}")
    target = directory / name
    if target.parent != directory:
        raise DownloadError(f"refusing the unsafe file name {name!r}")
    return target


def _prepare_dir(dest_dir: str | os.PathLike[str]) -> Path:
    path = Path(dest_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise DownloadError(f"{path} exists and is not a directory") from exc
    except OSError as exc:
        raise DownloadError(f"cannot create the directory {path}: {exc.strerror or exc}") from exc
    if not path.is_dir():
        raise DownloadError(f"{path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise DownloadError(f"the directory {path} is not writable")
    return path.resolve()


def _refuse_existing(directory: Path, stems: Sequence[str]) -> None:
    # The extension is known only once the answer arrives, so any "<stem>.<ext>" counts.
    patterns = [re.compile(re.escape(stem) + r"\.[A-Za-z0-9]{1,10}") for stem in stems]
    try:
        names = os.listdir(directory)
    except OSError as exc:
        raise DownloadError(f"cannot list {directory}: {exc.strerror or exc}") from exc
    clashes = sorted(n for n in names if any(p.fullmatch(n) for p in patterns))
    if clashes:
        raise DownloadError(
            f"{directory / clashes[0]} already exists; pass overwrite=True to replace it"
        )


class _Part:
    """A temporary file in the destination directory that becomes the artifact on commit."""

    def __init__(self, directory: Path, stem: str, url: str) -> None:
        self._url = url
        self._hash = hashlib.sha256()
        self.size = 0
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        for _ in range(10):
            self.path = directory / f".{stem}.part-{secrets.token_hex(4)}"
            try:
                fd = os.open(self.path, flags, 0o666)  # the umask applies, as for any new file
            except FileExistsError:
                continue
            except OSError as exc:
                raise self._error("cannot create a file in", exc, directory) from exc
            break
        else:
            raise DownloadError(f"cannot create a temporary file in {directory}", url=url)
        self._lock = _hold(fd)
        self._file: IO[bytes] | None = os.fdopen(fd, "wb")

    def _error(self, what: str, exc: OSError, where: Path | None = None) -> DownloadError:
        return DownloadError(f"{what} {where or self.path}: {exc.strerror or exc}", url=self._url)

    def rewind(self, offset: int) -> None:
        """Cut the file at ``offset`` and write from there (the digest follows)."""
        assert self._file is not None
        try:
            self._file.seek(offset)
            self._file.truncate()
            if offset != self.size:  # a resume continues the digest; anything else redoes it
                self._hash = hashlib.sha256()
                self._file.flush()
                with open(self.path, "rb") as done:
                    while chunk := done.read(1 << 20):
                        self._hash.update(chunk)
                self.size = offset
        except OSError as exc:
            raise self._error("cannot write", exc) from exc

    def write(self, chunk: bytes) -> None:
        """Append a chunk."""
        assert self._file is not None
        try:
            self._file.write(chunk)
        except OSError as exc:
            raise self._error("cannot write", exc) from exc
        self._hash.update(chunk)
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        """The hex SHA-256 of what was written."""
        return self._hash.hexdigest()

    def finish(self) -> None:
        """Flush, fsync and close the file."""
        assert self._file is not None
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as exc:
            raise self._error("cannot write", exc) from exc
        self._file = None

    def release(self) -> None:
        """Drop the file's lock: it has been renamed or deleted (never raises)."""
        if self._lock is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock)
            self._lock = None

    def discard(self) -> None:
        """Close and delete the file (never raises)."""
        with contextlib.suppress(OSError):
            if self._file is not None:
                self._file.close()
        self._file = None
        with contextlib.suppress(OSError):
            self.path.unlink()
        self.release()


def _hold(fd: int) -> int | None:
    """Lock a new part file until :meth:`_Part.release` (``None``: no locks here).

    The lock belongs to the open file, which a duplicate descriptor keeps open after the
    writing one is closed (before the rename).
    """
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return os.dup(fd)
    except OSError:
        return None


def remove_abandoned_parts(directory: Path, stems: Sequence[str] | None) -> list[Path]:
    """Delete the part files of these stems that no live download holds (never raises).

    Where ``flock`` does not exist (Windows) nothing is deleted: a live download cannot be
    told from a killed one.

    Args:
        directory: The destination directory.
        stems: The artifacts' file name stems; ``None``: any artifact's.

    Returns:
        The files deleted.
    """
    if fcntl is None or (stems is not None and not stems):
        return []
    names = ".+" if stems is None else "(?:" + "|".join(re.escape(stem) for stem in stems) + ")"
    pattern = re.compile(r"\." + names + r"\.part-[0-9a-f]{8}")
    removed: list[Path] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if not pattern.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live download holds it
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            finally:
                os.close(fd)
    return removed


def _fsync_dir(directory: Path) -> None:
    # Makes the renames durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class ArtifactFiles:
    """The files of one download call: checked directory, part files, atomic commit.

    Args:
        dest_dir: The destination directory (created if missing).
        overwrite: Replace existing files instead of refusing.
    """

    def __init__(self, dest_dir: str | os.PathLike[str], *, overwrite: bool) -> None:
        self.dest_dir = dest_dir
        self.overwrite = overwrite
        self.directory = Path(dest_dir)
        self._stems: list[str] = []
        self._parts: list[_Part | None] = []

    def open(self, stems: Sequence[str], urls: Sequence[str]) -> None:
        """Check the directory, refuse clashing files, and create one part file per artifact.

        Args:
            stems: The artifacts' file name stems.
            urls: Their URLs (for error messages).

        Raises:
            DownloadError: When the directory is unusable or a file exists (without overwrite).
        """
        self.directory = _prepare_dir(self.dest_dir)
        remove_abandoned_parts(self.directory, stems)
        if not self.overwrite:
            _refuse_existing(self.directory, stems)
        self._stems = list(stems)
        for stem, url in zip(stems, urls, strict=True):
            self._parts.append(_Part(self.directory, stem, safe_url(url)))

    def part(self, key: int) -> _Part:
        """Return the part file of an artifact.

        Args:
            key: The artifact's position.

        Returns:
            Its part file.
        """
        part = self._parts[key]
        assert part is not None
        return part

    def commit(
        self, results: Sequence[tuple[str | None, str, str | None]]
    ) -> list[tuple[Path, int, str]]:
        """Rename every part file to its final name, all checks first.

        Args:
            results: Per artifact: the answer's ``Content-Type``, its URL and the announced
                media type (they choose the extension).

        Returns:
            Per artifact: the final path, the size and the SHA-256.

        Raises:
            DownloadError: When a final name exists (without overwrite) or a rename fails.
        """
        targets: list[Path] = []
        for stem, (content_type, url, media_type) in zip(self._stems, results, strict=True):
            targets.append(
                target_in(self.directory, stem + extension_for(content_type, url, media_type))
            )
        if not self.overwrite:
            for target in targets:
                if os.path.lexists(target):
                    raise DownloadError(
                        f"{target} already exists; pass overwrite=True to replace it"
                    )
        written: list[tuple[Path, int, str]] = []
        for key, target in enumerate(targets):
            part = self.part(key)
            try:
                os.replace(part.path, target)
            except OSError as exc:
                raise DownloadError(f"cannot create {target}: {exc.strerror or exc}") from exc
            part.release()
            self._parts[key] = None
            written.append((target, part.size, part.sha256))
        _fsync_dir(self.directory)
        return written

    def cleanup(self) -> None:
        """Delete every part file not committed (never raises)."""
        for key, part in enumerate(self._parts):
            if part is not None:
                part.discard()
                self._parts[key] = None
