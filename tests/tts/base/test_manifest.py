"""Tests for JSONL speech manifests (tts/base/manifest.py)."""

from __future__ import annotations

import json

import pytest

from tts.base.manifest import ManifestError, Utterance, iter_manifest, read_manifest, write_manifest


def utt(i: int, split: str = "train", **kw) -> Utterance:
    fields = dict(
        id=f"u{i}",
        text=f"sentence number {i}",
        language="en",
        speaker="en_00",
        wav=f"wavs/u{i}.wav",
        duration=1.25,
        sample_rate=16000,
        split=split,
        tags=["a"],
    )
    fields.update(kw)
    return Utterance(**fields)


def touch_wavs(root, rows):
    for r in rows:
        p = root / r.wav
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"RIFF")


def good_line(i: int, split: str = "train") -> str:
    return json.dumps(
        {
            "id": f"u{i}",
            "text": f"sentence {i}",
            "language": "en",
            "speaker": "s",
            "wav": f"wavs/u{i}.wav",
            "split": split,
        }
    )


@pytest.fixture
def root(tmp_path):
    (tmp_path / "wavs").mkdir()
    for i in range(10):
        (tmp_path / "wavs" / f"u{i}.wav").write_bytes(b"RIFF")
    return tmp_path


def test_round_trip(tmp_path):
    rows = [utt(0), utt(1, "val", text="Grüße, 你好", tags=[]), utt(2, "test", duration=0.5, sample_rate=24000)]
    touch_wavs(tmp_path, rows)
    path = write_manifest(tmp_path / "manifest.jsonl", rows)
    assert path.is_file()
    assert "你好" in path.read_text(encoding="utf-8")  # not \u-escaped
    assert read_manifest(path) == rows


def test_wav_path_is_relative_to_manifest(tmp_path):
    rows = [utt(0)]
    (tmp_path / "corpus").mkdir()
    touch_wavs(tmp_path / "corpus", rows)
    path = write_manifest(tmp_path / "corpus" / "manifest.jsonl", rows)
    (row,) = read_manifest(path)
    assert row.wav_path(path.parent) == (tmp_path / "corpus" / "wavs" / "u0.wav").resolve()


def test_split_filter(tmp_path):
    rows = [utt(0), utt(1, "val"), utt(2, "test"), utt(3), utt(4, "test")]
    touch_wavs(tmp_path, rows)
    path = write_manifest(tmp_path / "m.jsonl", rows)
    assert [r.id for r in read_manifest(path, "train")] == ["u0", "u3"]
    assert [r.id for r in read_manifest(path, "val")] == ["u1"]
    assert [r.id for r in read_manifest(path, "test")] == ["u2", "u4"]
    assert len(read_manifest(path)) == 5


def test_optional_fields_default(root):
    path = root / "m.jsonl"
    path.write_text(
        json.dumps(
            {"id": "u0", "text": "hi there", "language": "en", "speaker": "s", "wav": "wavs/u0.wav", "extra": "ignored"}
        )
        + "\n"
    )
    (row,) = read_manifest(path)
    assert row == Utterance("u0", "hi there", "en", "s", "wavs/u0.wav", 0.0, 0, "train", [])


BAD_ROWS = {
    "bad_json": ('{"id": "u1", "text": ', "not valid JSON"),
    "not_object": ("[1, 2, 3]", "expected a JSON object"),
    "missing_field": (
        json.dumps({"id": "u1", "text": "t", "language": "en", "speaker": "s"}),
        "missing field(s) ['wav']",
    ),
    "empty_text": (
        json.dumps({"id": "u1", "text": "   ", "language": "en", "speaker": "s", "wav": "wavs/u1.wav"}),
        "empty transcript for 'u1'",
    ),
    "bad_split": (
        json.dumps({"id": "u1", "text": "t", "language": "en", "speaker": "s", "wav": "wavs/u1.wav", "split": "dev"}),
        "split must be one of ('train', 'val', 'test'), got 'dev'",
    ),
    "missing_wav": (
        json.dumps({"id": "u1", "text": "t", "language": "en", "speaker": "s", "wav": "wavs/gone.wav"}),
        "u1: audio file wavs/gone.wav does not exist",
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD_ROWS))
def test_bad_row_raises_naming_file_and_line(root, kind):
    line, expected = BAD_ROWS[kind]
    path = root / "m.jsonl"
    path.write_text("\n".join([good_line(0), "", line, good_line(2)]) + "\n")  # bad row on line 3
    with pytest.raises(ManifestError) as err:
        read_manifest(path)
    assert str(err.value).startswith(f"{path}:3: ")
    assert expected in str(err.value)


def test_bad_rows_skipped_and_counted_with_errors_list(root):
    kinds = sorted(BAD_ROWS)
    lines = [good_line(0)] + [BAD_ROWS[k][0] for k in kinds] + [good_line(1, "val"), good_line(2, "test")]
    path = root / "m.jsonl"
    path.write_text("\n".join(lines) + "\n")
    errors: list[str] = []
    rows = read_manifest(path, errors=errors)
    assert [r.id for r in rows] == ["u0", "u1", "u2"]
    assert len(errors) == len(kinds)
    for lineno, (kind, msg) in enumerate(zip(kinds, errors), start=2):
        assert msg.startswith(f"{path}:{lineno}: ")
        assert BAD_ROWS[kind][1] in msg


def test_errors_list_with_split_filter_still_counts_all_bad_rows(root):
    path = root / "m.jsonl"
    path.write_text("\n".join([good_line(0), BAD_ROWS["bad_json"][0], good_line(1, "val")]) + "\n")
    errors: list[str] = []
    assert [r.id for r in read_manifest(path, "val", errors=errors)] == ["u1"]
    assert len(errors) == 1 and errors[0].startswith(f"{path}:2: ")


def test_check_files_false_allows_missing_audio(tmp_path):
    path = write_manifest(tmp_path / "m.jsonl", [utt(0), utt(1)])
    with pytest.raises(ManifestError, match="does not exist"):
        read_manifest(path)
    assert [r.id for r in read_manifest(path, check_files=False)] == ["u0", "u1"]


def test_missing_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        read_manifest(tmp_path / "none.jsonl")


def test_iter_manifest_is_lazy_until_bad_row(root):
    path = root / "m.jsonl"
    path.write_text("\n".join([good_line(0), "{oops"]) + "\n")
    it = iter_manifest(path)
    assert next(it).id == "u0"
    with pytest.raises(ManifestError, match=":2: not valid JSON"):
        next(it)


def test_select_filters_and_reroots_wav_paths(tmp_path):
    from tts.base.manifest import select

    rows = [utt(0, "train"), utt(1, "test"), utt(2, "val", language="de"), utt(3, "test", speaker="en_05")]
    touch_wavs(tmp_path, rows)
    write_manifest(tmp_path / "m.jsonl", rows)
    n = select(tmp_path / "m.jsonl", tmp_path / "sub" / "en.jsonl", languages=["en"], splits=["train", "val"])
    got = read_manifest(tmp_path / "sub" / "en.jsonl")  # checks that every wav resolves from the new place
    assert n == 1 and [r.id for r in got] == [rows[0].id]
    assert got[0].wav_path(tmp_path / "sub") == rows[0].wav_path(tmp_path)
    with pytest.raises(ManifestError, match="no rows"):
        select(tmp_path / "m.jsonl", tmp_path / "x.jsonl", languages=["fr"])
    # one speaker's recordings less those an evaluation set reads: a LoRA voice's training data
    n = select(tmp_path / "m.jsonl", tmp_path / "v.jsonl", speakers=[rows[1].speaker], exclude_texts={rows[0].text})
    assert n == 2 and {r.id for r in read_manifest(tmp_path / "v.jsonl")} == {"u1", "u2"}
