"""Reading the input files of a submit (``image=``, ``file=``) into bytes, before any flow runs."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._exceptions import ConfigurationError

__all__ = ["InputFile", "read_inputs"]

InputFile = tuple[str, bytes, str]
"""``(filename, content, content_type)`` as dialects receive input files."""


def read_inputs(params: Mapping[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """Replace every input-file parameter by ``(filename, bytes, content_type)``.

    A value may be a path (``str`` or ``os.PathLike``), ``bytes``, a binary file object, an
    ``(filename, bytes[, content_type])`` tuple, or a list of these. Strings that look like URLs
    or ``data:`` URIs are left alone (some providers take image URLs).

    Args:
        params: The submit's parameters.
        names: The parameter names that carry files for this provider.

    Returns:
        A new dict with file values read.

    Raises:
        ConfigurationError: If a path cannot be read or a value is of no usable type.
    """
    out = dict(params)
    for name in names & out.keys():
        value = out[name]
        if isinstance(value, list):
            out[name] = [_read_one(name, item) for item in value]
        else:
            out[name] = _read_one(name, value)
    return out


def _read_one(name: str, value: Any) -> Any:
    if isinstance(value, str) and ("://" in value or value.startswith("data:")):
        return value
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read {name}={str(path)!r}: {exc.strerror}") from exc
        return (path.name, content, _guess(path.name))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return (name, bytes(value), "application/octet-stream")
    if (
        isinstance(value, tuple)
        and len(value) in (2, 3)
        and isinstance(value[1], (bytes, bytearray))
    ):
        filename = str(value[0])
        content_type = str(value[2]) if len(value) == 3 else _guess(filename)
        return (filename, bytes(value[1]), content_type)
    read = getattr(value, "read", None)
    if callable(read):
        content = read()
        if not isinstance(content, bytes):
            raise ConfigurationError(f"{name}= must be opened in binary mode ('rb')")
        filename = Path(str(getattr(value, "name", name))).name
        return (filename, content, _guess(filename))
    raise ConfigurationError(
        f"{name}= must be a path, bytes or a binary file object, not {type(value).__name__}"
    )


def _guess(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
