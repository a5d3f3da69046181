"""The store's pure helpers: Idempotency-Key derivation, spec keys, recordable params."""

from __future__ import annotations

import enum
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import mediajobs as mj
from mediajobs._store import (
    idempotency_key_for,
    recordable_params,
    spec_key,
    submit_error_state,
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_idempotency_key_shape_and_inputs() -> None:
    key = idempotency_key_for("openrouter", "my-app/job-1")
    assert key.startswith("mj-") and len(key) <= 64 and key.isascii()
    assert key == idempotency_key_for("openrouter", "my-app/job-1")
    assert key != idempotency_key_for("therouter", "my-app/job-1")
    assert key != idempotency_key_for("openrouter", "my-app/job-2")
    # The parts are delimited: moving characters between them changes the key.
    assert idempotency_key_for("ab", "c") != idempotency_key_for("a", "bc")
    assert idempotency_key_for("openrouter", "clé 🎬").isascii()


def test_idempotency_key_is_the_same_in_another_process() -> None:
    src = str(Path(mj.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src}
    code = "from mediajobs._store import idempotency_key_for as f; print(f('onerouter', 'k-1'))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == idempotency_key_for("onerouter", "k-1")


def test_spec_key_ignores_key_order_and_formatting() -> None:
    line_a = '{"kind": "image", "model": "m", "prompt": "a cat", "size": "1024x1024"}'
    line_b = '{"size":"1024x1024","prompt":"a cat","model":"m","kind":"image"}'
    key = spec_key(json.loads(line_a))
    assert key == spec_key(json.loads(line_b))
    assert key.startswith("spec-") and len(key) == 45 and key.isascii()
    assert key != spec_key({**json.loads(line_a), "prompt": "a dog"})
    assert spec_key({"n": 1}) != spec_key({"n": "1"})
    with pytest.raises(mj.ConfigurationError):
        spec_key({"when": object()})
    with pytest.raises(mj.ConfigurationError):
        spec_key({"x": float("nan")})


def test_files_are_recorded_as_name_and_digest(tmp_path: Path) -> None:
    png = tmp_path / "cat.png"
    png.write_bytes(b"\x89PNG cat")
    handle = io.BytesIO(b"0123456789")
    handle.name = "/somewhere/clip.wav"  # type: ignore[attr-defined]
    handle.seek(2)
    out = recordable_params(
        {
            "image": str(png),
            "mask": png,
            "file": handle,
            "reference": b"raw bytes",
            "images": [("a.jpg", b"A", "image/jpeg"), "https://example.com/b.jpg"],
            "size": "1024x1024",
            "n": 2,
            "seed": None,
            "extra": {"style": ["x", 1.5, True]},
        },
        file_params={"image", "images", "file"},
    )
    assert out == {
        "image": {"name": "cat.png", "sha256": sha(b"\x89PNG cat")},
        "mask": {"name": "cat.png", "sha256": sha(b"\x89PNG cat")},
        "file": {"name": "clip.wav", "sha256": sha(b"23456789")},
        "reference": {"name": "reference", "sha256": sha(b"raw bytes")},
        "images": [{"name": "a.jpg", "sha256": sha(b"A")}, "https://example.com/b.jpg"],
        "size": "1024x1024",
        "n": 2,
        "seed": None,
        "extra": {"style": ["x", 1.5, True]},
    }
    assert handle.tell() == 2  # put back where it was, for the request
    json.dumps(out, allow_nan=False)


def test_a_plain_string_param_is_not_a_file(tmp_path: Path) -> None:
    path = tmp_path / "prompt.txt"
    path.write_text("x")
    assert recordable_params({"style": str(path)}) == {"style": str(path)}
    data_uri = "data:image/png;base64,AAAA"
    assert recordable_params({"image": data_uri}, {"image"}) == {
        "image": {"name": "data-uri", "sha256": sha(data_uri.encode())}
    }


class Color(enum.Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"image": "/no/such/file.png"}, "cannot read image="),
        ({"a": {1, 2}}, "not JSON-safe"),
        ({"a": float("inf")}, "finite"),
        ({"a": {1: "x"}}, "non-string key"),
        ({"file": io.StringIO("text")}, "binary mode"),
    ],
)
def test_unrecordable_params_are_configuration_errors(params: dict[str, Any], match: str) -> None:
    with pytest.raises(mj.ConfigurationError, match=match):
        recordable_params(params, {"image", "file"})


def test_enums_are_recorded_by_value() -> None:
    assert recordable_params({"color": Color.RED}) == {"color": "red"}


def test_unseekable_file_objects_are_refused() -> None:
    class Pipe:
        def read(self, n: int = -1) -> bytes:
            return b""

    with pytest.raises(mj.ConfigurationError, match="seekable"):
        recordable_params({"file": Pipe()})


@pytest.mark.parametrize(
    ("error", "state"),
    [
        (mj.BadRequestError("bad", status_code=400), "submit_failed"),
        (mj.PaymentRequiredError("no credits", status_code=402), "submit_failed"),
        (mj.RateLimitError("slow down", status_code=429), "submit_failed"),
        (mj.APIError("in flight", status_code=409), "submit_unknown"),
        (mj.ServerError("oops", status_code=502), "submit_unknown"),
        (mj.APIConnectionError("refused", unsent=True), "submit_failed"),
        (mj.APIConnectionError("reset by peer"), "submit_unknown"),
        (mj.APITimeoutError("read timeout"), "submit_unknown"),
        (mj.ProtocolError("no id", provider="openrouter"), "submit_unknown"),
        (KeyboardInterrupt(), "submit_unknown"),
    ],
)
def test_submit_error_state(error: BaseException, state: str) -> None:
    assert submit_error_state(error) == state
