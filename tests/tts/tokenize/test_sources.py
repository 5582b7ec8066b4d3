"""Input rows from JSONL manifests and seed-tts-eval meta.lst files; bad rows are returned, not raised."""

from __future__ import annotations

import json

import pytest

from tts.tokenize.sources import BAD_ROW, read_source


def test_jsonl_rows_and_bad_rows(tmp_path):
    good = {"id": "a", "text": "hello there", "language": "en", "speaker": "s1", "wav": "wavs/a.wav"}
    lines = [
        json.dumps(good),
        "",
        json.dumps(good | {"id": "b", "wav": "wavs/missing.wav"}),  # missing audio: counted later, per file
        json.dumps(good | {"id": "c", "text": " "}),  # the manifest reader rejects empty transcripts
        '{"id": "d", ',
        json.dumps({"id": "e", "text": "x"}),
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    src = read_source(tmp_path / "m.jsonl")
    assert [r["id"] for r in src.rows] == ["a", "b"] and [r["position"] for r in src.rows] == [0, 1]
    assert src.rows[0]["wav"] == str((tmp_path / "wavs/a.wav").resolve())
    assert src.rows[0] | {"wav": ""} == {
        "position": 0,
        "id": "a",
        "text": "hello there",
        "language": "en",
        "speaker": "s1",
        "wav": "",
    }
    assert [b["reason"] for b in src.bad] == [BAD_ROW] * 3 and src.rows_in == 5
    assert ":4: empty transcript" in src.bad[0]["message"] and ":5: not valid JSON" in src.bad[1]["message"]
    assert src.phonemes == {}


def test_jsonl_phoneme_timings_are_kept_by_position(tmp_path):
    row = {"id": "a", "text": "hi", "language": "en", "speaker": "s1", "wav": "wavs/a.wav"}
    timed = row | {"id": "b", "phonemes": [["h", 0.0], ["aɪ", 0.1]]}
    (tmp_path / "m.jsonl").write_text(json.dumps(row) + "\n" + json.dumps(timed) + "\n")
    assert read_source(tmp_path / "m.jsonl").phonemes == {1: [["h", 0.0], ["aɪ", 0.1]]}


def test_meta_lst_uses_ground_truth_when_present(tmp_path):
    (tmp_path / "lst").mkdir()
    lines = [
        "u1|prompt one|prompts/p1.wav|target one|gt/u1.wav",
        "u2|prompt two|prompts/p2.wav|target two",
        "",
        "u3|prompt three|prompts/p3.wav|target three|",  # empty gt_wav field: the prompt is used
        "u4|only|three",
        "|no|id|here",
    ]
    (tmp_path / "lst/meta.lst").write_text("\n".join(lines) + "\n")
    src = read_source(tmp_path / "lst/meta.lst", language="zh")
    root = (tmp_path / "lst").resolve()
    assert [(r["id"], r["text"], r["wav"]) for r in src.rows] == [
        ("u1", "target one", str(root / "gt/u1.wav")),
        ("u2", "prompt two", str(root / "prompts/p2.wav")),
        ("u3", "prompt three", str(root / "prompts/p3.wav")),
    ]
    assert {r["language"] for r in src.rows} == {"zh"} and {r["speaker"] for r in src.rows} == {""}
    assert [(b["id"], b["reason"]) for b in src.bad] == [("u4", BAD_ROW), (None, BAD_ROW)]
    assert ":5: expected utt|prompt_text|prompt_wav|target_text[|gt_wav], got 3 field(s)" in src.bad[0]["message"]
    assert src.rows_in == 5


def test_missing_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        read_source(tmp_path / "nope.jsonl")
