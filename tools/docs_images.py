"""Generate the documentation's diagrams as SVG files, from the dialects' status tables.

    python tools/docs_images.py          # write docs/images/*.svg
    python tools/docs_images.py --check  # exit 1 if a committed file differs from what it gives

The pages show images committed to the repository, so that the site reads offline (no diagram
library is fetched from a CDN). Each status box of ``job-statuses.svg`` lists the raw words that
every dialect's literal ``status_table`` maps to it; the test suite regenerates the files and
compares, so a table changed without running this script fails the tests.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from mediajobs import JobStatus
from mediajobs.dialects import DIALECTS

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"

DISPLAY_NAMES = {
    "therouter": "TheRouter",
    "worldrouter": "WorldRouter",
    "openrouter": "OpenRouter",
    "onerouter": "OneRouter",
}
"""How the pages spell each provider."""

WAITING = (JobStatus.QUEUED, JobStatus.RUNNING)
TERMINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED)
OUTCOMES = {
    JobStatus.SUCCEEDED: ["wait() returns the job,", "download() writes the files"],
    JobStatus.FAILED: ["wait() raises JobFailedError"],
    JobStatus.CANCELLED: ["wait() raises JobCancelledError"],
    JobStatus.EXPIRED: ["wait() raises JobExpiredError"],
}
"""What a wait does on each terminal status."""

FONT = "13px"
FONT_FAMILY = "Helvetica, Arial, sans-serif"
CHAR = 7.2
"""Width of a character at 13 px, a little more than the average, so that text always fits."""
LINE = 18
PAD = 10
GAP = 14
INK = "#263238"
EDGE = "#546e7a"
FILLS = {
    JobStatus.QUEUED: "#eceff1",
    JobStatus.RUNNING: "#e3f2fd",
    JobStatus.SUCCEEDED: "#e8f5e9",
    JobStatus.FAILED: "#ffebee",
    JobStatus.CANCELLED: "#fff8e1",
    JobStatus.EXPIRED: "#fff8e1",
}


def raw_words() -> dict[JobStatus, list[tuple[str, list[str]]]]:
    """For each normalized status, each provider's raw words for it, in table order."""
    mapping: dict[JobStatus, list[tuple[str, list[str]]]] = {status: [] for status in JobStatus}
    for name, dialect in DIALECTS.items():
        for status in JobStatus:
            words = [raw for raw, seen in dialect.status_table.items() if seen is status]
            if words:
                mapping[status].append((DISPLAY_NAMES.get(name, name), words))
    return mapping


@dataclass
class Box:
    """A status box: a bold heading and lines of text, placed at (x, y)."""

    status: JobStatus
    lines: list[str]
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0

    @property
    def height(self) -> float:
        """The box's height: padding, the heading and one line per text line."""
        return PAD * 2 + LINE * (1 + len(self.lines))

    def natural_width(self) -> float:
        """The width the box's longest line needs."""
        widest = max([len(self.status.value) * (CHAR + 0.6), *(len(t) * CHAR for t in self.lines)])
        return widest + 2 * PAD


def _text(x: float, y: float, content: str, *, bold: bool = False, anchor: str = "start") -> str:
    weight = ' font-weight="bold"' if bold else ""
    return f'<text x="{x:g}" y="{y:g}" text-anchor="{anchor}"{weight}>{escape(content)}</text>'


def _box(box: Box) -> list[str]:
    out = [
        f'<g class="status" data-status="{box.status.value}">',
        f'<rect x="{box.x:g}" y="{box.y:g}" width="{box.width:g}" height="{box.height:g}" '
        f'rx="6" fill="{FILLS[box.status]}" stroke="{EDGE}"/>',
        _text(box.x + PAD, box.y + PAD + 13, box.status.value, bold=True),
    ]
    for i, line in enumerate(box.lines, 1):
        out.append(_text(box.x + PAD, box.y + PAD + 13 + i * LINE, line))
    out.append("</g>")
    return out


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    return (
        f'<line x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}" stroke="{EDGE}" '
        'stroke-width="1.5" marker-end="url(#arrow)"/>'
    )


def lifecycle_svg(title: str, lines: dict[JobStatus, list[str]], *, start: bool) -> str:
    """One diagram: submit, the waiting statuses in a group, arrows to the four terminal ones.

    Args:
        title: The image's accessible title.
        lines: The text lines under each status's heading.
        start: Whether to draw the "submit accepted" entry on the left.

    Returns:
        The SVG document.
    """
    margin, group_pad, label_h = 16.0, 14.0, 22.0
    left = [Box(s, lines.get(s, [])) for s in WAITING]
    right = [Box(s, lines.get(s, [])) for s in TERMINAL]
    start_w = 150.0 if start else 0.0

    label = "not terminal: wait() polls"
    inner = max([len(label) * CHAR, *(b.natural_width() for b in left)])
    group_x = margin + start_w
    group_w = inner + 2 * group_pad
    left_h = sum(b.height for b in left) + 30 * (len(left) - 1)
    group_h = label_h + left_h + 2 * group_pad
    right_w = max(b.natural_width() for b in right)
    right_h = sum(b.height for b in right) + GAP * (len(right) - 1)
    right_x = group_x + group_w + 80
    height = max(group_h, right_h) + 2 * margin
    width = right_x + right_w + margin

    group_y = (height - group_h) / 2
    y = group_y + label_h + group_pad
    for box in left:
        box.x, box.y, box.width = group_x + group_pad, y, inner
        y += box.height + 30
    y = (height - right_h) / 2
    for box in right:
        box.x, box.y, box.width = right_x, y, right_w
        y += box.height + GAP

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}" role="img" aria-labelledby="title" '
        f'font-family={quoteattr(FONT_FAMILY)} font-size="{FONT}" fill="{INK}">',
        f'<title id="title">{escape(title)}</title>',
        "<defs>",
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        f'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{EDGE}"/></marker>',
        "</defs>",
        f'<rect width="{width:g}" height="{height:g}" rx="8" fill="#ffffff"/>',
        f'<rect x="{group_x:g}" y="{group_y:g}" width="{group_w:g}" height="{group_h:g}" '
        f'rx="8" fill="none" stroke="{EDGE}" stroke-dasharray="5 4"/>',
        _text(group_x + group_pad, group_y + 18, label),
    ]
    first, second = left
    centre = first.x + first.width / 2
    out.append(_arrow(centre, first.y + first.height, centre, second.y))
    if start:
        cy = first.y + first.height / 2
        out += [
            f'<circle cx="{margin + 8:g}" cy="{cy:g}" r="7" fill="{INK}"/>',
            _text(margin + 2, cy - 10, "submit accepted"),
            _arrow(margin + 15, cy, first.x, cy),
        ]
    fan_x, fan_y = group_x + group_w, group_y + group_h / 2
    for box in right:
        out.append(_arrow(fan_x, fan_y, box.x, box.y + box.height / 2))
    for box in [*left, *right]:
        out += _box(box)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def images() -> dict[str, str]:
    """Every generated image, by file name."""
    mapping = raw_words()
    statuses = {
        status: [f"{provider}: {', '.join(words)}" for provider, words in mapping[status]]
        for status in JobStatus
    }
    return {
        "job-lifecycle.svg": lifecycle_svg(
            "Job lifecycle: queued, running, then one of four terminal statuses",
            {status: OUTCOMES[status] for status in TERMINAL},
            start=True,
        ),
        "job-statuses.svg": lifecycle_svg(
            "Each provider's raw status words and the normalized status they map to",
            statuses,
            start=False,
        ),
    }


def stale(directory: Path = IMAGES) -> list[str]:
    """Names of the images whose committed file differs from what the tables give now."""
    found = []
    for name, text in images().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            found.append(name)
    return found


def write(directory: Path = IMAGES) -> list[Path]:
    """Write every image into ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in images().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Write or check the images; the exit status for a shell."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        names = stale()
        _report(f"out of date: {name} (run python tools/docs_images.py)" for name in names)
        return 1 if names else 0
    _report(str(path.relative_to(ROOT)) for path in write())
    return 0


def _report(lines: Iterable[str]) -> None:
    for line in lines:
        sys.stdout.write(line + "\n")


if __name__ == "__main__":
    sys.exit(main())
