"""Benchmark inputs: seed-tts-eval meta.lst (4 and 5 fields, relative paths), JSONL rows, corpus manifests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from evals.meta import EvalItem, MetaError, load_items, read_jsonl, read_meta_lst, spread, write_meta_lst


def wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(1600, np.float32), 16000)
    return path


@pytest.fixture
def seedtts(tmp_path):
    """seed-tts-eval's layout: en/meta.lst, prompt-wavs/, wavs/ (ground truth)."""
    root = tmp_path / "seedtts_testset" / "en"
    for name in ("prompt-wavs/p1.wav", "prompt-wavs/p2.wav", "wavs/u2.wav"):
        wav(root / name)
    (root / "meta.lst").write_text(
        "u1|Prompt one.|prompt-wavs/p1.wav|Target one.\n\nu2|Prompt two.|prompt-wavs/p2.wav|Target two.|wavs/u2.wav\n"
    )
    return root / "meta.lst"


def test_meta_lst_with_and_without_ground_truth(seedtts):
    items = read_meta_lst(seedtts)
    root = seedtts.parent.resolve()
    assert items == [
        EvalItem("u1", "Prompt one.", str(root / "prompt-wavs/p1.wav"), "Target one.", "en", None),
        EvalItem("u2", "Prompt two.", str(root / "prompt-wavs/p2.wav"), "Target two.", "en", str(root / "wavs/u2.wav")),
    ]


def test_write_then_read_gives_the_same_items(seedtts, tmp_path):
    items = read_meta_lst(seedtts)
    out = write_meta_lst(tmp_path / "copy" / "en" / "meta.lst", items)
    assert "|../../seedtts_testset/en/prompt-wavs/p1.wav|" in out.read_text()  # relative to the new file
    assert read_meta_lst(out) == items
    with pytest.raises(MetaError, match="contains '\\|'"):
        write_meta_lst(tmp_path / "x" / "meta.lst", [EvalItem("a|b", "p", items[0].prompt_wav, "t", "en")])


def test_language_comes_from_the_directory_or_the_caller(seedtts, tmp_path):
    odd = tmp_path / "set" / "meta.lst"
    odd.parent.mkdir()
    odd.write_text(
        seedtts.read_text()
        .replace("prompt-wavs/", "../seedtts_testset/en/prompt-wavs/")
        .replace("wavs/u2", "../seedtts_testset/en/wavs/u2")
    )
    with pytest.raises(MetaError, match="cannot tell the language .* pass --language"):
        read_meta_lst(odd)
    assert {it.language for it in read_meta_lst(odd, "de")} == {"de"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("u1|p|prompt-wavs/p1.wav", "expected utt\\|prompt_text\\|prompt_wav\\|target_text\\[\\|gt_wav\\], got 3"),
        ("u1|p|prompt-wavs/nope.wav|t", "prompt_wav .*nope.wav does not exist"),
        ("u1|p|prompt-wavs/p1.wav|t|wavs/nope.wav", "gt_wav .*nope.wav does not exist"),
        ("u1|p|prompt-wavs/p1.wav|  ", "empty target_text"),
    ],
)
def test_bad_rows_name_file_and_line(seedtts, line, message):
    seedtts.write_text("u0|p|prompt-wavs/p1.wav|t\n" + line + "\n")
    with pytest.raises(MetaError, match=f"meta.lst:2: .*{message}"):
        read_meta_lst(seedtts)


def test_jsonl_eval_rows(tmp_path):
    wav(tmp_path / "p.wav")
    path = tmp_path / "set.jsonl"
    row = {"id": "x", "language": "zh", "prompt_text": "你好", "prompt_wav": "p.wav", "target_text": "再见"}
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n")
    assert read_jsonl(path) == [EvalItem("x", "你好", str((tmp_path / "p.wav").resolve()), "再见", "zh")]
    path.write_text(json.dumps({k: v for k, v in row.items() if k != "language"}) + "\n")
    with pytest.raises(MetaError, match="set.jsonl:1: missing field\\(s\\) \\['language'\\]"):
        read_jsonl(path)
    path.write_text("{not json\n")
    with pytest.raises(MetaError, match="set.jsonl:1: not valid JSON"):
        read_jsonl(path)


def test_corpus_manifest_becomes_cloning_items_of_its_test_split(tmp_path):
    rows = []
    for k, (spk, split) in enumerate([("s1", "test"), ("s1", "test"), ("s2", "test"), ("s1", "train")]):
        wav(tmp_path / f"w{k}.wav")
        rows.append(
            {
                "id": f"{spk}_{k}",
                "text": f"Sentence {k}.",
                "language": "en",
                "speaker": spk,
                "wav": f"w{k}.wav",
                "duration": 0.1,
                "sample_rate": 16000,
                "split": split,
            }
        )
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    items = read_jsonl(manifest)
    # s2 has a single test utterance (no prompt of its own voice); train rows are never benchmark rows
    assert [(it.id, it.prompt_text, it.target_text) for it in items] == [
        ("s1_0", "Sentence 1.", "Sentence 0."),
        ("s1_1", "Sentence 0.", "Sentence 1."),
    ]
    assert items[0].gt_wav == str((tmp_path / "w0.wav").resolve())


def test_limit_spreads_evenly_and_ids_must_be_unique(seedtts, tmp_path):
    assert spread(10, 3) == [0, 4, 9] and spread(3, 0) == [0, 1, 2] and spread(3, 5) == [0, 1, 2]
    assert [it.id for it in load_items([str(seedtts)], limit=1)] == ["u1"]
    with pytest.raises(MetaError, match="appear more than once"):
        load_items([str(seedtts), str(seedtts)])
    with pytest.raises(ValueError, match="no benchmark input"):
        load_items([])
    with pytest.raises(FileNotFoundError, match="no such meta.lst"):
        load_items([str(tmp_path / "en" / "meta.lst")])
