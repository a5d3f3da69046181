"""MkDocs hook: render the reST roles used in docstrings as links in the API reference.

The docstrings are Google style, but name other objects the Sphinx way (``:class:`Client```,
``:meth:`~mediajobs.Job.wait```). mkdocstrings leaves those roles as text; this hook turns each
into a cross-reference that mkdocs-autorefs resolves (or leaves as plain code when the target is
not documented), and drops the second colon of reST's ``::`` before a literal block.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|attr|exc|mod|data|obj):\s*<code>(~?)([\w.]+)</code>")
_LITERAL_BLOCK_COLON = re.compile(r"(\w)::</p>")


def identifiers(target: str) -> tuple[str, str]:
    """Return the identifier a role names, and the same object as re-exported by the package.

    Args:
        target: The role's target, e.g. ``AsyncJob.wait`` or ``mediajobs.dialects.Dialect``.

    Returns:
        The full dotted path, and the path from the package root (``mediajobs.Dialect``).
    """
    full = target if target.split(".", maxsplit=1)[0] == "mediajobs" else f"mediajobs.{target}"
    parts = full.split(".")
    first_class = next((i for i, part in enumerate(parts) if part[:1].isupper()), len(parts) - 1)
    return full, ".".join(["mediajobs", *parts[first_class:]])


def _cross_reference(match: re.Match[str]) -> str:
    short, target = match.groups()
    full, root = identifiers(target)
    title = target.rsplit(".", 1)[-1] if short else target
    return f'<autoref identifier="{full}" slug="{root}" optional><code>{title}</code></autoref>'


def on_page_content(html: str, **kwargs: Any) -> str:
    """Rewrite the roles of one page (the MkDocs ``on_page_content`` event).

    Args:
        html: The page's HTML.
        **kwargs: The event's other arguments, unused.

    Returns:
        The HTML with cross-references in place of roles.
    """
    return _LITERAL_BLOCK_COLON.sub(r"\1:</p>", _ROLE.sub(_cross_reference, html))
