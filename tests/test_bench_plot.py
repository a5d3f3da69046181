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


def test_plot_writes_a_png_chart(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the bench extra is not installed")
    path = tmp_path / "charts" / "poll.png"
    bench.plot(path, bench.Even(2.0, 60.0), PollPolicy())
    assert _png_size(path) == (11 * 120, 5 * 120)


def test_plot_without_matplotlib_says_which_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SystemExit, match=r"\.\[bench\]"):
        bench.plot(tmp_path / "poll.png", bench.Even(2.0, 60.0), PollPolicy())
    assert not (tmp_path / "poll.png").exists()


def test_committed_chart_is_a_chart_of_the_same_size() -> None:
    chart = Path(__file__).resolve().parent.parent / "docs" / "images" / "poll-policies.png"
    assert _png_size(chart) == (11 * 120, 5 * 120)
