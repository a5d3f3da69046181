from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

import mediajobs as mj
from mediajobs._models import parse_time


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1778637249, datetime(2026, 5, 13, 1, 54, 9, tzinfo=timezone.utc)),
        ("1778637249", datetime(2026, 5, 13, 1, 54, 9, tzinfo=timezone.utc)),
        (1778637249000, datetime(2026, 5, 13, 1, 54, 9, tzinfo=timezone.utc)),
        ("2026-05-15T12:00:00Z", datetime(2026, 5, 15, 12, tzinfo=timezone.utc)),
        ("2026-06-11T12:00:00+00:00", datetime(2026, 6, 11, 12, tzinfo=timezone.utc)),
        ("2026-06-11T14:00:00+02:00", datetime(2026, 6, 11, 12, tzinfo=timezone.utc)),
        ("2024-01-01 12:00:00.00", datetime(2024, 1, 1, 12, tzinfo=timezone.utc)),
        ("2024-01-01 12:00:00.5", datetime(2024, 1, 1, 12, 0, 0, 500000, tzinfo=timezone.utc)),
        ("2024-01-01 12:00:00", datetime(2024, 1, 1, 12, tzinfo=timezone.utc)),
        (None, None),
        ("", None),
        (0, None),
    ],
)
def test_parse_time_every_format(value: object, expected: datetime | None) -> None:
    parsed = parse_time(value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is not None


@pytest.mark.parametrize("value", ["yesterday", True, [1], "2024-13-45 99:00:00"])
def test_parse_time_rejects_garbage(value: object) -> None:
    with pytest.raises(ValueError):
        parse_time(value)


def test_parse_time_caches_by_value_and_type() -> None:
    # Polls repeat their times, so results are cached: 1 and True must not share an entry,
    # and a refusal must be repeated, not replaced by an earlier answer.
    first = parse_time(1)
    assert parse_time(1) == first == parse_time("1") == parse_time(1.0)
    with pytest.raises(ValueError):
        parse_time(True)
    for _ in range(2):
        with pytest.raises(ValueError):
            parse_time("2024-13-45 99:00:00")
    assert parse_time(" 2026-05-15T12:00:00Z ") == parse_time("2026-05-15T12:00:00Z")


def test_status_terminality() -> None:
    terminal = {s for s in mj.JobStatus if s.is_terminal}
    assert terminal == {
        mj.JobStatus.SUCCEEDED,
        mj.JobStatus.FAILED,
        mj.JobStatus.CANCELLED,
        mj.JobStatus.EXPIRED,
    }
    assert str(mj.JobStatus.RUNNING) == "running"
    assert mj.JobStatus("queued") is mj.JobStatus.QUEUED


def test_job_data_round_trips_through_json() -> None:
    data = mj.JobData(
        id="vid_1",
        provider="therouter",
        status=mj.JobStatus.SUCCEEDED,
        raw_status="succeeded",
        kind="video",
        model="m",
        artifacts=[
            mj.Artifact(url="https://s3.example/a.mp4?sig=1", index=0, media_type="video/mp4")
        ],
        error=None,
        cost=0.25,
        usage={"cost_credits": 0.25},
        created_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        raw={"id": "vid_1", "status": "succeeded"},
    )
    text = json.dumps(data.model_dump(mode="json"))
    again = mj.JobData.model_validate(json.loads(text))
    assert again == data
    assert again.created_at is not None and again.created_at.tzinfo is not None
    assert again.done


def test_job_data_is_frozen() -> None:
    data = mj.JobData(id="x", provider="p", status=mj.JobStatus.QUEUED, raw_status="queued")
    with pytest.raises(ValueError):
        data.id = "y"  # type: ignore[misc]


def test_lone_surrogates_anywhere_still_serialize_to_json() -> None:
    data = mj.JobData(
        id="x",
        provider="p",
        status=mj.JobStatus.FAILED,
        raw_status="odd\ud800",
        artifacts=[mj.Artifact(url="https://s.example/a", index=0, media_type="\udfff")],
        error=mj.JobErrorInfo(message="broke \ud83d"),
        usage={"n\udc00": 1},
        raw={"outer": {"in\ud800ner": ["a\udfffb", {"k": "\ud800"}]}, "ok": "fine ✓"},
    )
    dumped = data.model_dump(mode="json")
    text = json.dumps(dumped, ensure_ascii=False)
    text.encode("utf-8")  # writable as UTF-8: no surrogate left
    assert dumped["raw"] == {
        "outer": {"in\ufffdner": ["a\ufffdb", {"k": "\ufffd"}]},
        "ok": "fine ✓",
    }
    assert dumped["raw_status"] == "odd\ufffd"
    assert dumped["error"]["message"] == "broke \ufffd"
    assert dumped["artifacts"][0]["media_type"] == "\ufffd"
    assert dumped["usage"] == {"n\ufffd": 1}
    again = mj.JobData.model_validate(json.loads(text))
    assert again.raw["outer"]["in\ufffdner"] == ["a\ufffdb", {"k": "\ufffd"}]
    assert data.raw["outer"]["in\ud800ner"] == ["a\udfffb", {"k": "\ud800"}]  # kept in memory
    assert data.model_dump()["raw_status"] == "odd\ud800"  # python mode leaves values alone


def test_job_to_dict_with_a_lone_surrogate_in_a_nested_key() -> None:
    client = mj.Client("therouter", api_key="k")
    data = mj.JobData(
        id="img_1",
        provider="therouter",
        status=mj.JobStatus.QUEUED,
        raw_status="queued",
        raw={"meta": {"\ud800": 1}},
    )
    job = client.job_from_dict(data.model_dump())
    as_dict = job.to_dict()
    assert as_dict["raw"] == {"meta": {"\ufffd": 1}}
    assert client.job_from_dict(json.loads(json.dumps(as_dict))).id == "img_1"
    client.close()


def test_artifact_fallback_url_round_trips() -> None:
    artifact = mj.Artifact(
        url="https://storage.example/v.mp4?sig=1",
        index=0,
        media_type="video/mp4",
        fallback_url="https://openrouter.ai/api/v1/videos/v1/content?index=0",
    )
    assert mj.Artifact.model_validate(json.loads(json.dumps(artifact.model_dump(mode="json")))) == (
        artifact
    )
    assert mj.Artifact(url="https://x/", index=1).fallback_url is None


def test_model_info_is_frozen_and_round_trips() -> None:
    info = mj.ModelInfo(
        id="google/veo-3.1",
        name="Veo",
        kinds=("video",),
        durations=(4, 8),
        raw={"id": "google/veo-3.1", "pricing_skus": {"per_second": "0.5"}},
    )
    assert mj.ModelInfo.model_validate(json.loads(json.dumps(info.model_dump(mode="json")))) == (
        info
    )
    assert info.resolutions == () and info.sizes == ()
    with pytest.raises(ValueError):
        info.name = "other"  # type: ignore[misc]


def test_lone_surrogates_in_values_only_are_replaced_too() -> None:
    data = mj.JobData(
        id="x",
        provider="p",
        status=mj.JobStatus.QUEUED,
        raw_status="queued",
        raw={"url": "https://api.example/\ud800", "list": ["\udfff"]},
    )
    dumped = data.model_dump(mode="json")
    assert dumped["raw"] == {"url": "https://api.example/\ufffd", "list": ["\ufffd"]}
    assert "\\ud800" not in data.model_dump_json()
    data.model_dump_json().encode("utf-8")
