"""Artifact file names: the extension of the bytes, a safe stem per artifact, a URL fit for logs.

Pure functions: nothing here touches the file system (the directory checks and the rename are in
``_files.py``).
"""

from __future__ import annotations

import hashlib
import mimetypes
import posixpath
import re
from urllib.parse import unquote

import httpx

__all__ = ["extension_for", "safe_stem", "safe_url"]

_EXTENSION = re.compile(r"\.[a-z0-9]{1,10}")
_URL_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_MAX_STEM = 120
# Extensions where ``mimetypes`` is missing, platform-dependent or odd (``.jpe``, ``.mpga``).
_EXTENSIONS: dict[str, str] = {
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/pjpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/avif": ".avif",
    "image/heic": ".heic",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/wav": ".wav",
    "audio/wave": ".wav",
    "audio/x-wav": ".wav",
    "audio/vnd.wave": ".wav",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/flac": ".flac",
    "audio/x-flac": ".flac",
    "audio/aac": ".aac",
    "audio/mp4": ".m4a",
    "audio/webm": ".weba",
    "application/json": ".json",
    "text/plain": ".txt",
    "text/vtt": ".vtt",
    "application/x-subrip": ".srt",
}
# Types that say nothing about the bytes: the URL's suffix is a better guess.
_GENERIC_TYPES = frozenset(
    {"application/octet-stream", "binary/octet-stream", "application/binary", "application/unknown"}
)


def extension_for(
    content_type: str | None, url: str | None = None, media_type: str | None = None
) -> str:
    r"""Choose a file extension for an artifact.

    The answer's ``Content-Type`` wins; a generic one (``application/octet-stream``) or none
    falls back to the URL path's suffix when it is short and alphanumeric, then to the media
    type the provider announced for the artifact, then to ``.bin``. Whatever the inputs, the
    result matches ``\.[a-z0-9]{1,10}``: it can never carry a path separator.

    Args:
        content_type: The ``Content-Type`` header of the answer that carried the bytes.
        url: The URL the bytes came from (after redirects).
        media_type: The provider's announced type for the artifact, if any.

    Returns:
        The extension, with its dot.
    """
    for kind in (content_type, None, media_type):
        if kind is None:
            suffix = _url_suffix(url)
            if suffix:
                return suffix
            continue
        found = _type_extension(kind)
        if found:
            return found
    return ".bin"


def _type_extension(content_type: str) -> str | None:
    essence = content_type.split(";", 1)[0].strip().lower()
    if not essence or essence in _GENERIC_TYPES:
        return None
    found = _EXTENSIONS.get(essence) or mimetypes.guess_extension(essence, strict=False)
    if found and _EXTENSION.fullmatch(found.lower()):
        return found.lower()
    return None


def _url_suffix(url: str | None) -> str | None:
    if not url:
        return None
    try:
        path = unquote(httpx.URL(url).path)
    except (httpx.InvalidURL, TypeError):
        return None
    suffix = posixpath.splitext(posixpath.basename(path.replace("\\", "/")))[1]
    if _URL_SUFFIX.fullmatch(suffix):
        return suffix.lower()
    return None


def safe_stem(job_id: str, index: int) -> str:
    """Return the file name stem ``<job id>_<index>``, made safe for any file system.

    Characters outside ``A-Z a-z 0-9 . _ -`` become ``_``, leading dots are dropped (no hidden
    files, no ``..``) and the id is cut to a sane length. When the id had to change, a short
    hash of the original is added so that two odd ids cannot share a name.

    Args:
        job_id: The provider's job id, as sent.
        index: The artifact's index.

    Returns:
        The stem: a single path component, never empty, never starting with a dot.
    """
    cleaned = _UNSAFE_CHARS.sub("_", job_id).lstrip(".")[:_MAX_STEM]
    if cleaned != job_id:
        digest = hashlib.sha256(job_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cleaned = f"{cleaned or 'job'}-{digest}"
    return f"{cleaned}_{index}"


def safe_url(url: str | httpx.URL) -> str:
    """Return a URL fit for messages and logs: no user info, no query, no fragment.

    Args:
        url: The URL.

    Returns:
        ``scheme://host[:port]/path``.
    """
    try:
        parsed = httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError):
        return "<unreadable URL>"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"
