r"""Checks made once, when a client is built, so that bad settings fail early and clearly.

A key read from a file often ends with a line break, and one from a CRLF ``.env`` file with
``\r``; a key pasted from a document may carry a typographic quote. Such a key cannot go into
an HTTP header, and the libraries underneath would say so in messages that quote the whole
header -- the key included. Refusing it here, with a message that names the problem but never
the key, keeps it out of every later error, warning and log line.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping

import httpx

from ._exceptions import ConfigurationError

__all__ = ["RESERVED_HEADERS", "check_api_key", "check_extra_headers", "request_timeout"]

RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "idempotency-key",
        "content-length",
        "content-type",
        "host",
        "transfer-encoding",
    }
)
"""Headers mediajobs sets itself, which ``extra_headers=`` may not replace."""

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VALUE = re.compile(r"[\t\x20-\x7e]*")

_NAMES = {
    "\n": "a line break (\\n)",
    "\r": "a carriage return (\\r)",
    "\t": "a tab",
    " ": "a space",
}


def _describe(char: str) -> str:
    if char in _NAMES:
        return _NAMES[char]
    code = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    if not char.isascii():
        return f"the non-ASCII character {code}" + (f" ({name.lower()})" if name else "")
    return f"the control character {code}"


def check_api_key(key: object, *, source: str) -> str:
    """Return an API key that can be sent in an HTTP header exactly as it is.

    A key is accepted when it is a non-empty string of visible ASCII characters (``!`` to
    ``~``): no space, no line break, no control or non-ASCII character anywhere. The message
    of a refusal says what is wrong and where, never what the key is.

    Args:
        key: The key as given (an argument or an environment variable's value).
        source: Where it came from, for the message (``"api_key"`` or a variable's name).

    Returns:
        The key, unchanged.

    Raises:
        ConfigurationError: If the key is not a string, is empty, or holds a character that
            cannot be sent as it is.
    """
    if not isinstance(key, str):
        kind = type(key).__name__
        raise ConfigurationError(f"the API key from {source} must be a str, not {kind}")
    if not key:
        raise ConfigurationError(f"the API key from {source} is empty")
    for position, char in enumerate(key):
        if not "!" <= char <= "~":
            where = (
                "ends with"
                if key[position:].strip() == "" and position > 0
                else f"has, at position {position} of {len(key)},"
            )
            raise ConfigurationError(
                f"the API key from {source} {where} {_describe(char)}; API keys are visible "
                "ASCII only (strip the key when reading it from a file or a .env file)"
            )
    return key


def request_timeout(value: object, name: str) -> httpx.Timeout:
    """Check the time a single request may take: seconds, or an ``httpx.Timeout``.

    Args:
        value: A finite number of seconds > 0, or an ``httpx.Timeout`` whose parts are each
            ``None`` (no limit) or such a number.
        name: How the caller calls it in messages.

    Returns:
        The timeout as an ``httpx.Timeout``.

    Raises:
        ConfigurationError: For anything else.
    """
    if isinstance(value, httpx.Timeout):
        for part, seconds in value.as_dict().items():
            if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
                raise ConfigurationError(
                    f"{name}: the {part} timeout must be None or a finite number of seconds > 0"
                )
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(
            f"{name} must be a number of seconds or an httpx.Timeout, got {type(value).__name__}"
        )
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return httpx.Timeout(float(value))


def check_extra_headers(headers: object) -> dict[str, str]:
    """Check the headers of one call (``submit(..., extra_headers=...)``).

    Names must be HTTP tokens and values visible ASCII (spaces and tabs allowed, no line
    breaks); the headers mediajobs sets itself (:data:`RESERVED_HEADERS`) are refused. A
    message names the header, never its value.

    Args:
        headers: A mapping of header names to values.

    Returns:
        The headers as a plain dictionary.

    Raises:
        ConfigurationError: If it is not such a mapping, or a header cannot be sent as given.
    """
    if not isinstance(headers, Mapping):
        raise ConfigurationError(
            f"extra_headers must be a mapping of names to values, got {type(headers).__name__}"
        )
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ConfigurationError(f"extra_headers: {name!r} is not a valid header name")
        if name.lower() in RESERVED_HEADERS:
            raise ConfigurationError(f"extra_headers: {name} is set by mediajobs itself")
        if not isinstance(value, str) or not _VALUE.fullmatch(value):
            raise ConfigurationError(
                f"extra_headers: the value of {name} must be a str of visible ASCII characters"
            )
        checked[name] = value
    return checked
