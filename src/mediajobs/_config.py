r"""Checks made once, when a client is built, so that bad settings fail early and clearly.

A key read from a file often ends with a line break, and one from a CRLF ``.env`` file with
``\r``; a key pasted from a document may carry a typographic quote. Such a key cannot go into
an HTTP header, and the libraries underneath would say so in messages that quote the whole
header -- the key included. Refusing it here, with a message that names the problem but never
the key, keeps it out of every later error, warning and log line.
"""

from __future__ import annotations

import unicodedata

from ._exceptions import ConfigurationError

__all__ = ["check_api_key"]

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
