"""``benchmarks/bench_poll_policy.py --plot``: the chart of the polling comparison."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from mediajobs import PollPolicy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench_poll_policy as bench


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _png_text(path: Path) -> dict[str, str]:
    """The PNG's ``tEXt`` chunks."""
    data, found, at = path.read_bytes(), {}, 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            found[key.decode("latin-1")] = value.decode("latin-1")
        at += 12 + length
    return found


CHART = Path(__file__).resolve().parent.parent / "docs" / "images" / "poll-policies.png"
EVEN = bench.Even(2.0, 60.0)


def test_plot_writes_a_png_chart_with_its_figures(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the bench extra is not installed")
    path = tmp_path / "charts" / "poll.png"
    bench.plot(path, EVEN, PollPolicy())
    assert _png_size(path) == (11 * 120, 5 * 120)
    summary = _png_text(path)["Description"]
    assert summary == bench.chart_summary(EVEN, PollPolicy())
    assert "default (initial=4.8, factor=1.025, max_interval=10, jitter=0.1)" in summary
    assert "6.435 polls/job, lag/length 14.62%" in summary


def test_chart_summary_changes_with_the_policy() -> None:
    fixed = bench.chart_summary(EVEN, PollPolicy.fixed(5.0))
    assert fixed.startswith("default (fixed 5 s): 6.690 polls/job")
    assert fixed != bench.chart_summary(EVEN, PollPolicy())


def test_plot_without_matplotlib_says_which_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SystemExit, match=r"\.\[bench\]"):
        bench.plot(tmp_path / "poll.png", bench.Even(2.0, 60.0), PollPolicy())
    assert not (tmp_path / "poll.png").exists()


def test_committed_chart_shows_the_current_default() -> None:
    assert _png_size(CHART) == (11 * 120, 5 * 120)
    assert _png_text(CHART)["Description"] == bench.chart_summary(EVEN, PollPolicy()), (
        "docs/images/poll-policies.png is stale: run "
        "python benchmarks/bench_poll_policy.py --plot docs/images/poll-policies.png"
    )
