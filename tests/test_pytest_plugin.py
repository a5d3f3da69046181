"""The pytest plugin's fixtures, run the way users run them: the examples of docs/testing.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mediajobs import PollPolicy, RetryPolicy

pytest_plugins = ["pytester"]

DOCS = Path(__file__).parents[1] / "docs" / "testing.md"


def fixture_examples() -> list[str]:
    """The python blocks of docs/testing.md that are tests using the client fixtures."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    return [b for b in blocks if "fake_client" in b or "fake_async_client" in b]


def test_the_docs_show_sync_and_async_fixture_examples() -> None:
    examples = fixture_examples()
    assert any("fake_client," in e for e in examples)
    assert any("fake_async_client," in e for e in examples)


@pytest.mark.parametrize("index", range(len(fixture_examples())))
def test_documented_fixture_example_passes(pytester: pytest.Pytester, index: int) -> None:
    example = fixture_examples()[index]
    pytester.makepyfile(test_example=example)
    result = pytester.runpytest("-W", "error")  # the plugin comes from its entry point
    tests = len(re.findall(r"^(?:async )?def test_", example, re.MULTILINE))
    backends = 2 if "anyio_backend" in example else 1
    parametrized = re.search(r'parametrize\("fake_provider_name", \[(.*?)\]\)', example)
    extra = parametrized.group(1).count(",") if parametrized else 0
    result.assert_outcomes(passed=(tests + extra) * backends)


def test_the_fixture_policies_sleep_a_millisecond_at_most(
    fake_poll_policy: PollPolicy, fake_retry_policy: RetryPolicy
) -> None:
    for attempt in range(10):
        assert fake_poll_policy.next_delay(attempt, rand=0.5) <= 0.001
        assert fake_poll_policy.next_delay(attempt, hint=30, rand=0.5) <= 0.001
        assert fake_retry_policy.next_delay(attempt + 1, rand=0.5) <= 0.001
        assert fake_retry_policy.next_delay(attempt + 1, hint=30, rand=0.5) <= 0.001
    assert fake_retry_policy.max_attempts > 1
