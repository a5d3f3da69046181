"""Every example in the documentation runs, against the fake provider served on loopback.

Each ```python block of README.md and docs/**/*.md runs, page by page in one namespace (as a
reader would paste them into one session, in order), and each script in examples/ runs as
``__main__``. Pages are found by glob, so a page added later is checked without a change here.

The reader's environment is simulated, never the code: the four API-key variables hold the
fake's key, the current directory is a scratch directory, and clients built without a
``base_url`` go to the served fake (with polls and retries shortened so that a page takes
milliseconds, not the minutes a real job does). Blocks with top-level ``await`` run as in
``python -m asyncio``, on asyncio and on trio. Functions named ``test_*`` that a block defines are
called with the fixtures ``tmp_path``, ``fake_provider`` and ``fake_server``.

A block that cannot run on its own is preceded by ``<!-- not-run: reason -->``.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import re
import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

import mediajobs as mj
from mediajobs.dialects import DIALECTS
from mediajobs.testing import FakeProvider, FakeServer

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

FAST_POLL = mj.PollPolicy.fixed(0.01)
FAST_RETRY = mj.RetryPolicy(initial=0.01, max_delay=0.05)

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(?P<reason>.*?)\s*-->\s*$")
_PYTHON = {"python", "py", "python3"}


# --------------------------------------------------------------------------- extraction


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    source: str
    not_run: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def extract_blocks(page: Path) -> list[Block]:
    """Return every fenced block of a Markdown page, dedented, with its not-run marker."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE_OPEN.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        language = (opening["info"].split() or [""])[0].lower()
        closing = re.compile(rf"^{re.escape(indent)}{fence[0]}{{{len(fence)},}}\s*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        body = [
            line[len(indent) :] if line.startswith(indent) else line.lstrip()
            for line in lines[index + 1 : end]
        ]
        previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marker = _NOT_RUN.match(previous)
        blocks.append(
            Block(
                page=page,
                line=index + 1,
                language=language,
                source="\n".join(body) + "\n",
                not_run=marker["reason"] if marker else None,
            )
        )
        index = end + 1
    return blocks


def python_blocks(page: Path) -> list[Block]:
    return [block for block in extract_blocks(page) if block.language in _PYTHON]


def compile_block(block: Block) -> Any:
    """Compile a block as a module that may use top-level ``await``."""
    return compile(
        block.source, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )


def is_async(code: Any) -> bool:
    return bool(code.co_flags & inspect.CO_COROUTINE)


def _awaits(block: Block) -> bool:
    """Whether a block uses top-level ``await``; a block that does not compile fails later."""
    try:
        return is_async(compile_block(block))
    except SyntaxError:
        return False


def _page_params() -> list[Any]:
    params = []
    for page in PAGES:
        runnable = [b for b in python_blocks(page) if b.not_run is None]
        if not runnable:
            continue
        name = str(page.relative_to(ROOT))
        backends = ["asyncio", "trio"] if any(_awaits(b) for b in runnable) else [None]
        params += [
            pytest.param(page, backend, id=name if backend is None else f"{name}-{backend}")
            for backend in backends
        ]
    return params


# -------------------------------------------------------------------------- environment


@dataclass
class Reader:
    """The simulated reader's machine: keys set, a scratch directory, the fake served."""

    fake: FakeProvider
    server: FakeServer
    cwd: Path
    tmp_root: Path
    outputs: dict[str, str] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)

    def known_job_ids(self) -> set[str]:
        return set(self.fake.jobs)

    def fixture(self, name: str) -> Any:
        if name == "tmp_path":
            path = self.tmp_root / f"tmp_path_{len(list(self.tmp_root.iterdir()))}"
            path.mkdir()
            return path
        if name == "fake_provider":
            return self.fake
        if name == "fake_server":
            return self.server
        raise AssertionError(f"no fixture {name!r} for examples in the docs")


def _client_defaults(cls: type[Any], base_url: str) -> type[Any]:
    """``cls`` with the served fake and fast polling as defaults for arguments not given."""

    class WithDefaults(cls):  # type: ignore[misc, valid-type]
        def __init__(self, provider: Any, **kwargs: Any) -> None:
            kwargs.setdefault("base_url", base_url)
            kwargs.setdefault("poll", FAST_POLL)
            kwargs.setdefault("retry", FAST_RETRY)
            super().__init__(provider, **kwargs)

    WithDefaults.__name__ = WithDefaults.__qualname__ = cls.__name__
    return WithDefaults


@pytest.fixture
def reader(
    fake_provider: FakeProvider,
    fake_server: FakeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Reader:
    for dialect in DIALECTS.values():
        monkeypatch.setenv(dialect.env_var, fake_provider.api_key)
    fake_provider.webhook_secret = "whsec_test"  # as `serve-fake --webhook-secret whsec_test`
    for variable in ("MEDIAJOBS_BASE_URL", "MEDIAJOBS_PROVIDER", "MEDIAJOBS_POLL_INTERVAL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(mj, "Client", _client_defaults(mj.Client, fake_server.base_url))
    monkeypatch.setattr(mj, "AsyncClient", _client_defaults(mj.AsyncClient, fake_server.base_url))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    monkeypatch.chdir(cwd)
    return Reader(fake=fake_provider, server=fake_server, cwd=cwd, tmp_root=fixtures)


def _run_async(function: Callable[[], Any], backend: str | None) -> None:
    async def main() -> None:
        await function()

    anyio.run(main, backend=backend or "asyncio")


def run_page(
    page: Path,
    reader: Reader,
    backend: str | None,
    *,
    also: Callable[[Block], bool] = lambda block: False,
) -> list[Block]:
    """Run a page's runnable blocks (and the marked ones ``also`` picks) in order in one
    namespace; return them."""
    namespace: dict[str, Any] = {"__name__": "__main__"}  # script-like blocks run their main
    ran = []
    for block in python_blocks(page):
        if block.not_run is not None and not also(block):
            continue
        before = len(reader.fake.requests)
        defined = set(namespace)
        stdout = io.StringIO()
        try:
            code = compile_block(block)
            with contextlib.redirect_stdout(stdout):
                if is_async(code):
                    _run_async(lambda code=code: eval(code, namespace), backend)
                else:
                    exec(code, namespace)
                for name in sorted(set(namespace) - defined):
                    test = namespace[name]
                    if name.startswith("test_") and callable(test):
                        _call_test(test, reader, backend)
        except Exception as exc:
            raise AssertionError(f"{block.where}: the example raised {exc!r}") from exc
        reader.outputs[block.where] = stdout.getvalue()
        reader.requests[block.where] = len(reader.fake.requests) - before
        ran.append(block)
    return ran


PLUGIN_CLIENT_FIXTURES = {"fake_client", "fake_async_client"}
"""Tests asking for these run under pytest itself, with the installed plugin, in
``tests/test_pytest_plugin.py`` (parametrization and marks included); here they are only defined."""


def _call_test(test: Callable[..., Any], reader: Reader, backend: str | None) -> None:
    parameters = set(inspect.signature(test).parameters)
    if parameters & PLUGIN_CLIENT_FIXTURES:
        return
    arguments = {name: reader.fixture(name) for name in parameters}
    if inspect.iscoroutinefunction(test):
        _run_async(lambda: test(**arguments), backend)
    else:
        test(**arguments)


def downloaded_files(reader: Reader) -> dict[Path, tuple[str, int]]:
    """Files under the scratch directories named ``<job id>_<index><ext>`` for a fake job."""
    found = {}
    ids = sorted(reader.known_job_ids(), key=len, reverse=True)
    for root in (reader.cwd, reader.tmp_root):
        for path in root.rglob("*"):
            job_id = next((i for i in ids if path.name.startswith(f"{i}_")), None)
            if path.is_file() and job_id is not None:
                index = path.name[len(job_id) + 1 :].split(".")[0]
                found[path] = (job_id, int(index))
    return found


def assert_downloads_are_the_artifacts(reader: Reader) -> None:
    for path, (job_id, index) in downloaded_files(reader).items():
        assert path.read_bytes() == reader.fake.artifact_bytes(job_id, index), path
    leftovers = [p for p in reader.cwd.rglob("*") if p.is_file() and ".part" in p.name]
    assert not leftovers, f"temporary files left behind: {leftovers}"


# ------------------------------------------------------------------------------- tests


def test_pages_are_found_and_markers_are_placed() -> None:
    names = {str(page.relative_to(ROOT)) for page in PAGES}
    assert {"README.md", "docs/guide.md", "docs/providers.md", "docs/index.md"} <= names
    for page in PAGES:
        text = page.read_text(encoding="utf-8").splitlines()
        markers = [i for i, line in enumerate(text) if "not-run" in line and "<!--" in line]
        marked = {b.line for b in python_blocks(page) if b.not_run is not None}
        for i in markers:
            assert _NOT_RUN.match(text[i]), f"{page}:{i + 1}: malformed marker"
            assert _NOT_RUN.match(text[i])["reason"], f"{page}:{i + 1}: a marker needs a reason"
            following = next(j for j in range(i + 1, len(text)) if text[j].strip())
            assert following + 1 in marked, f"{page}:{i + 1}: no python block right after"


def test_block_extraction_reads_indented_fences_and_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Intro\n\n```python\nx = 1\n```\n\n- item\n\n  ```python\n  if x:\n      y = 2\n  ```\n\n"
        "<!-- not-run: needs a real key -->\n```py\nboom()\n```\n\n```bash\necho hi\n```\n",
        encoding="utf-8",
    )
    blocks = extract_blocks(page)
    assert [(b.line, b.language, b.not_run) for b in blocks] == [
        (3, "python", None),
        (9, "python", None),
        (15, "py", "needs a real key"),
        (19, "bash", None),
    ]
    assert blocks[1].source == "if x:\n    y = 2\n"


@pytest.mark.parametrize(("page", "backend"), _page_params())
def test_page_examples_run(page: Path, backend: str | None, reader: Reader) -> None:
    ran = run_page(page, reader, backend)
    assert ran
    for block in ran:
        if "Client(" in block.source:
            assert reader.requests[block.where] > 0, f"{block.where} sent nothing to the provider"
    assert_downloads_are_the_artifacts(reader)


def _readme_block(heading: str) -> Block:
    text = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = text.index(heading) + 1
    return next(b for b in python_blocks(ROOT / "README.md") if b.line > start)


def test_readme_quick_start_waits_and_downloads(reader: Reader) -> None:
    run_page(ROOT / "README.md", reader, "asyncio")
    block = _readme_block("## Quick start")
    output = reader.outputs[block.where].splitlines()
    video = next(job for job in reader.fake.jobs.values() if job.provider == "openrouter")
    assert output[-2:-1] == ["succeeded"]
    saved = Path(output[-1])
    assert saved.is_file() and saved.name.startswith(f"{video.id}_0")
    assert saved.read_bytes() == reader.fake.artifact_bytes(video.id, 0)


def test_readme_many_jobs_downloads_every_image(reader: Reader) -> None:
    run_page(ROOT / "README.md", reader, "trio")
    images = [job for job in reader.fake.jobs.values() if job.provider == "therouter"]
    assert len(images) >= 2
    files = downloaded_files(reader).values()
    assert {job_id for job_id, _ in files} >= {job.id for job in images}


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_scripts_run(script: Path, reader: Reader, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = [str(script)]
    if "--base-url" in script.read_text(encoding="utf-8"):
        argv += ["--base-url", reader.server.base_url, "--api-key", reader.fake.api_key]
    monkeypatch.setattr(sys, "argv", argv)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        runpy.run_path(str(script), run_name="__main__")
    output = stdout.getvalue()

    assert reader.fake.jobs, "the example submitted nothing"
    for job_id, job in reader.fake.jobs.items():
        assert job_id in output, f"{script.name} does not report job {job_id}"
        assert job.status == "succeeded"
    files = downloaded_files(reader)
    assert {job_id for job_id, _ in files.values()} == set(reader.fake.jobs)
    for path in files:
        assert str(path.relative_to(reader.cwd)) in output
    assert_downloads_are_the_artifacts(reader)
