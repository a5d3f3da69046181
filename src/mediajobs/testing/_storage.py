"""The fake storage origin: deterministic artifact bytes, pre-signed URLs, Range and S3 errors."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from xml.sax.saxutils import escape

import httpx

__all__ = [
    "ArtifactBody",
    "ArtifactStream",
    "StreamEnd",
    "UrlSigner",
    "artifact_response",
    "extension_for",
    "s3_error",
]

_BLOCK = 64 * 1024
_HEX = bytes.maketrans(bytes(range(256)), bytes(b"0123456789abcdef"[i & 15] for i in range(256)))
_JSON_PREFIX = b'{"text": "'
_JSON_SUFFIX = b'"}'

_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "audio/mpeg": ".mp3",
    "audio/wav": ".wav",
    "application/json": ".json",
    "text/plain": ".txt",
}


def extension_for(content_type: str) -> str:
    """Return the file extension storage paths use for a media type (``.bin`` if unknown).

    Args:
        content_type: The media type.

    Returns:
        The extension with its dot.
    """
    return _EXTENSIONS.get(content_type.partition(";")[0].strip().lower(), ".bin")


_Segment = tuple[int, Callable[[int, int], Iterator[bytes]]]
StreamEnd = Callable[[int, bool], None]
"""``on_end(sent, complete)`` of an :class:`ArtifactStream`."""


class ArtifactBody:
    """The bytes of one artifact, generated from a seed on demand, never held in memory.

    Binary media types get pseudo-random bytes; ``text/*`` gets hex digits and
    ``application/json`` a ``{"text": "<hex digits>"}`` document of exactly ``size`` bytes.

    Args:
        seed: What makes the bytes unique (the job id and index).
        size: The length in bytes.
        content_type: The media type the bytes are served as.
    """

    def __init__(self, seed: str, size: int, content_type: str) -> None:
        self.seed = seed
        self.size = size
        self.content_type = content_type
        self._textual = content_type.startswith("text/") or content_type == "application/json"
        wrapper = len(_JSON_PREFIX) + len(_JSON_SUFFIX)
        if content_type == "application/json" and size >= wrapper:
            self._segments: list[_Segment] = [
                (len(_JSON_PREFIX), _constant(_JSON_PREFIX)),
                (size - wrapper, self._random),
                (len(_JSON_SUFFIX), _constant(_JSON_SUFFIX)),
            ]
        else:
            self._segments = [(size, self._random)]

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        """Yield the bytes in ``[start, end)`` in chunks of at most 64 KiB.

        Args:
            start: The first offset.
            end: The offset after the last byte.

        Yields:
            Consecutive chunks.
        """
        offset = 0
        for length, produce in self._segments:
            low, high = max(start, offset), min(end, offset + length)
            if low < high:
                yield from produce(low - offset, high - offset)
            offset += length

    def read(self) -> bytes:
        """Return all the bytes (mind the size)."""
        return b"".join(self.iter_range(0, self.size))

    def sha256(self) -> str:
        """Return the hex SHA-256 of all the bytes, computed by streaming."""
        digest = hashlib.sha256()
        for chunk in self.iter_range(0, self.size):
            digest.update(chunk)
        return digest.hexdigest()

    def _random(self, start: int, end: int) -> Iterator[bytes]:
        for block in range(start // _BLOCK, (end + _BLOCK - 1) // _BLOCK):
            base = block * _BLOCK
            data = hashlib.shake_256(f"{self.seed}:{block}".encode()).digest(_BLOCK)
            chunk = data[max(start - base, 0) : min(end - base, _BLOCK)]
            yield chunk.translate(_HEX) if self._textual else chunk


def _constant(data: bytes) -> Callable[[int, int], Iterator[bytes]]:
    def produce(start: int, end: int) -> Iterator[bytes]:
        yield data[start:end]

    return produce


class ArtifactStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body streaming part of an artifact, for sync and async clients alike.

    Args:
        body: The artifact.
        start: The first offset to send.
        end: The offset after the last byte to send.
        request: The request answered (carried by the simulated connection error).
        drop_after: Cut the connection after this many bytes (``None``: never).
        on_end: Called once the body stops, however it stops, with the bytes sent and whether
            that was all of them (a client that hangs up early leaves it ``False``).
    """

    def __init__(
        self,
        body: ArtifactBody,
        start: int,
        end: int,
        *,
        request: httpx.Request,
        drop_after: int | None = None,
        on_end: StreamEnd | None = None,
    ) -> None:
        self._body = body
        self._start = start
        self._end = end
        self._request = request
        self._drop_after = drop_after
        self._on_end = on_end

    def __iter__(self) -> Iterator[bytes]:
        """Yield the chunks, raising ``httpx.RemoteProtocolError`` where the drop is."""
        limit = self._drop_after
        sent = 0
        try:
            for chunk in self._body.iter_range(self._start, self._end):
                if limit is not None and sent + len(chunk) > limit:
                    if limit > sent:
                        part, sent = chunk[: limit - sent], limit
                        yield part
                    raise httpx.RemoteProtocolError(
                        "peer closed connection without sending complete message body: "
                        f"received {limit} bytes, expected {self._end - self._start}",
                        request=self._request,
                    )
                sent += len(chunk)
                yield chunk
        finally:
            if self._on_end is not None:
                self._on_end(sent, sent == self._end - self._start)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Yield the same chunks as :meth:`__iter__`, for async clients."""
        for chunk in self:
            yield chunk


class UrlSigner:
    """Makes and checks pre-signed storage URLs: ``?X-Expires=<unix>&X-Signature=<hmac hex>``.

    Args:
        secret: The HMAC key (random by default).
    """

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def sign(self, origin: str, path: str, expires: int) -> str:
        """Return the pre-signed URL of a storage path.

        Args:
            origin: The storage origin (scheme, host, port).
            path: The object's path, starting with ``/``.
            expires: Unix time after which the URL stops working.

        Returns:
            The absolute URL.
        """
        return f"{origin}{path}?X-Expires={expires}&X-Signature={self._signature(path, expires)}"

    def check(self, path: str, query: Mapping[str, str], now: float) -> httpx.Response | None:
        """Verify a request's signature and expiry.

        Args:
            path: The requested path.
            query: The query parameters.
            now: The current unix time.

        Returns:
            ``None`` when the URL is valid, else the S3 error response to send.
        """
        expires, signature = query.get("X-Expires", ""), query.get("X-Signature", "")
        if not expires.isdigit() or not signature:
            return s3_error(403, "AccessDenied", "Query-string authentication is required", path)
        if not hmac.compare_digest(signature, self._signature(path, int(expires))):
            return s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
                path,
            )
        if int(expires) < now:
            return s3_error(403, "AccessDenied", "Request has expired", path)
        return None

    def _signature(self, path: str, expires: int) -> str:
        message = f"{path}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


def s3_error(
    status: int, code: str, message: str, resource: str, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """Return an S3-style XML error response.

    Args:
        status: The HTTP status.
        code: The S3 error code (``AccessDenied``, ``InvalidArgument``...).
        message: The human-readable message.
        resource: The requested path.
        headers: Extra headers.

    Returns:
        The response.
    """
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{secrets.token_hex(8).upper()}"
        "</RequestId></Error>"
    )
    return httpx.Response(
        status,
        headers={"Content-Type": "application/xml", **(headers or {})},
        content=body.encode(),
    )


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Return ``(start, end)`` for a single ``bytes=`` range, ``(-1, -1)`` if unsatisfiable.

    ``None`` means the header is ignored (malformed or several ranges), as S3 does.
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()):
        return None
    if not first:  # suffix range: the last N bytes
        length = min(int(last), size)
        return (size - length, size) if length else (-1, -1)
    start = int(first)
    end = min(int(last) + 1, size) if last.isdigit() else size
    if start >= size or (last and int(last) < start):
        return (-1, -1)
    return (start, end)


def artifact_response(
    body: ArtifactBody,
    request: httpx.Request,
    *,
    ignore_range: bool = False,
    drop_after: int | None = None,
    on_end: StreamEnd | None = None,
) -> httpx.Response:
    """Serve an artifact: 200 or 206 for ``Range``, always with Content-Length and Content-Type.

    Args:
        body: The artifact.
        request: The GET or HEAD request.
        ignore_range: Send the whole body with 200 whatever ``Range`` says.
        drop_after: Cut the connection after this many body bytes.
        on_end: Told how the body stream ended (see :class:`ArtifactStream`).

    Returns:
        The streaming response (416 for an unsatisfiable range).
    """
    size = body.size
    start, end, status = 0, size, 200
    headers = {"Content-Type": body.content_type, "Accept-Ranges": "bytes"}
    range_header = request.headers.get("Range")
    if range_header and not ignore_range:
        span = _parse_range(range_header, size)
        if span == (-1, -1):
            return s3_error(
                416,
                "InvalidRange",
                "The requested range is not satisfiable",
                request.url.path,
                {"Content-Range": f"bytes */{size}"},
            )
        if span is not None:
            start, end, status = span[0], span[1], 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return httpx.Response(status, headers=headers)
    stream = ArtifactStream(body, start, end, request=request, drop_after=drop_after, on_end=on_end)
    return httpx.Response(status, headers=headers, stream=stream)
