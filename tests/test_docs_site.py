"""The documentation site: generated images up to date, and nothing loaded from the network.

The diagrams are SVG files made by ``tools/docs_images.py`` from the dialects' status tables; the
site is built with ``mkdocs build --strict`` and every page is searched for assets (scripts,
stylesheets, images, frames) on another host: the built folder must read offline.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pytest

from mediajobs import JobStatus
from mediajobs.dialects import DIALECTS

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
SVG = "{http://www.w3.org/2000/svg}"


def _tool() -> ModuleType:
    """``tools/docs_images.py``, imported once."""
    name = "_mediajobs_docs_images"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / "docs_images.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _expected() -> set[tuple[str, str, str]]:
    return {
        (name, raw, status.value)
        for name, dialect in DIALECTS.items()
        for raw, status in dialect.status_table.items()
    }


# ------------------------------------------------------------------------------- images


def test_committed_images_are_what_the_tables_give() -> None:
    assert _tool().stale() == []


def test_a_changed_status_table_makes_the_images_stale(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tool = _tool()
    tool.write(tmp_path)
    assert tool.stale(tmp_path) == []
    dialect = DIALECTS["onerouter"]
    monkeypatch.setattr(
        dialect, "status_table", {**dialect.status_table, "rendering": JobStatus.RUNNING}
    )
    assert tool.stale(tmp_path) == ["job-statuses.svg"]


def test_the_check_command_reports_stale_images(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tool = _tool()
    assert tool.main(["--check"]) == 0
    monkeypatch.setattr(DIALECTS["openrouter"], "status_table", {"pending": JobStatus.QUEUED})
    assert tool.main(["--check"]) == 1
    assert "out of date: job-statuses.svg" in capsys.readouterr().out


def test_status_image_lists_each_dialects_words_under_its_status() -> None:
    names = {"TheRouter": "therouter", "WorldRouter": "worldrouter"}
    names |= {"OpenRouter": "openrouter", "OneRouter": "onerouter"}
    tree = ET.parse(IMAGES / "job-statuses.svg")
    shown = set()
    boxes = [g for g in tree.iter(f"{SVG}g") if g.get("class") == "status"]
    assert sorted(g.get("data-status") for g in boxes) == sorted(s.value for s in JobStatus)
    for box in boxes:
        heading, *lines = [t.text or "" for t in box.iter(f"{SVG}text")]
        assert heading == box.get("data-status")
        for line in lines:
            provider, words = line.split(": ")
            shown |= {(names[provider], raw, heading) for raw in words.split(", ")}
    assert shown == _expected()


def test_lifecycle_image_names_every_status_and_outcome() -> None:
    texts = [t.text for t in ET.parse(IMAGES / "job-lifecycle.svg").iter(f"{SVG}text")]
    assert {s.value for s in JobStatus} <= set(texts)
    for error in ("JobFailedError", "JobCancelledError", "JobExpiredError"):
        assert any(error in (t or "") for t in texts)


def test_providers_page_shows_the_images_and_its_table_matches_the_dialects() -> None:
    text = (ROOT / "docs" / "providers.md").read_text(encoding="utf-8")
    assert "](images/job-lifecycle.svg)" in text
    assert "](images/job-statuses.svg)" in text
    table = text[text.index("| normalized | TheRouter") :].split("\n\n")[0].splitlines()[2:]
    providers = ["therouter", "worldrouter", "openrouter", "onerouter"]
    rows = set()
    for row in table:
        status, *cells = (cell.strip() for cell in row.strip("|").split("|"))
        for provider, cell in zip(providers, cells, strict=True):
            rows |= {(provider, raw, status.strip("`")) for raw in re.findall(r"`(\w+)`", cell)}
    assert rows == _expected()


# --------------------------------------------------------------------------------- site


class _Assets(HTMLParser):
    """Collects the URLs a page loads by itself (not the links a reader may follow)."""

    LOADING_RELS = frozenset(
        {"stylesheet", "preload", "modulepreload", "prefetch", "preconnect", "dns-prefetch"}
        | {"icon", "apple-touch-icon", "manifest"}
    )

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in {"script", "img", "iframe", "source", "audio", "video", "embed"}:
            self.urls += [values[a] for a in ("src", "data-src") if a in values]
            self.urls += [part.split()[0] for part in values.get("srcset", "").split(",") if part]
        elif tag == "object" and "data" in values:
            self.urls.append(values["data"])
        elif tag == "link" and self.LOADING_RELS & set(values.get("rel", "").split()):
            self.urls.append(values.get("href", ""))


def external_assets(html: str) -> list[str]:
    """The URLs on another host that an HTML page or stylesheet loads by itself."""
    parser = _Assets()
    parser.feed(html)
    urls = parser.urls + re.findall(r"""url\(\s*['"]?([^'")\s]+)""", html)
    urls += re.findall(r"""@import\s+['"]([^'"]+)""", html)
    return [url for url in urls if re.match(r"(?i)(https?:)?//", url.strip())]


def test_external_assets_are_found() -> None:
    page = (
        '<link rel="canonical" href="https://example.org/"><a href="https://example.org/">x</a>'
        '<script src="assets/app.js"></script><script src="https://cdn.example/mermaid.js">'
        '</script><link rel="stylesheet" href="//fonts.example/css"><img src="images/a.svg">'
        '<img srcset="a.png 1x, https://img.example/b.png 2x"><style>@import "https://x.example/c";'
        "body{background:url(https://x.example/bg.png)}</style>"
    )
    assert external_assets(page) == [
        "https://cdn.example/mermaid.js",
        "//fonts.example/css",
        "https://img.example/b.png",
        "https://x.example/bg.png",
        "https://x.example/c",
    ]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    pytest.importorskip("material", reason="the docs extra is not installed")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    return out


def test_built_site_loads_nothing_from_another_host(site: Path) -> None:
    files = [*site.rglob("*.html"), *site.rglob("*.css")]
    assert any(f.name == "providers.html" for f in files)
    found = {
        str(f.relative_to(site)): urls
        for f in files
        if (urls := external_assets(f.read_text(encoding="utf-8", errors="replace")))
    }
    assert found == {}


def test_built_site_has_the_images_and_pages_as_files(site: Path) -> None:
    providers = (site / "providers.html").read_text(encoding="utf-8")
    for name in ("job-lifecycle.svg", "job-statuses.svg"):
        assert f'src="images/{name}"' in providers
        assert (site / "images" / name).read_bytes() == (IMAGES / name).read_bytes()
    assert "mermaid" not in providers
    # Links between pages name files, so the folder reads from the disk too.
    assert 'href="guide.html"' in (site / "index.html").read_text(encoding="utf-8")
