"""Artifact downloads, by their former module name.

The download is built from layers: names (``_naming.py``), the pure flows (``_artifact.py``),
the part files and the atomic rename (``_files.py``), and the two drivers that move the bytes
(``_drivers.py``). This module gathers their names for code that imports them from here.
"""

from __future__ import annotations

from ._artifact import (
    MAX_REDIRECTS,
    PROGRESS_INTERVAL,
    Fetched,
    Progress,
    _Span,
    artifact_flow,
    body_span,
    check_job,
    download_flow,
)
from ._files import ArtifactFiles, _Part, target_in
from ._naming import extension_for, safe_stem, safe_url
from ._steps import Consume, Consumed, Refresh

RefreshJob = Refresh
"""The former name of :class:`~mediajobs._steps.Refresh`."""

__all__ = [
    "MAX_REDIRECTS",
    "PROGRESS_INTERVAL",
    "ArtifactFiles",
    "Consume",
    "Consumed",
    "Fetched",
    "Progress",
    "RefreshJob",
    "_Part",
    "_Span",
    "artifact_flow",
    "body_span",
    "check_job",
    "download_flow",
    "extension_for",
    "safe_stem",
    "safe_url",
    "target_in",
]
