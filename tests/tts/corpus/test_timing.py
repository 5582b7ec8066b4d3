"""Phoneme timing of espeak-ng corpus rows (tts/corpus/timing.py): the events of each row's voice, checked against
its audio, mapped onto a front end's words; `tts-align corpus timings` writes them into the manifest."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tts.base.manifest import read_manifest, write_manifest
from tts.corpus.generate import CorpusConfig, generate
from tts.corpus.timing import add_timings, char_times, phoneme_events, word_starts
from tts.front_end import FrontEnd


@pytest.fixture(scope="module")
def rows(corpus):
    return [r for r in read_manifest(corpus) if r.language == "en"][:4]


def test_each_row_gets_its_voices_phonemes_within_its_audio(rows):
    events = phoneme_events(rows)
    assert all(e is not None for e in events)
    for row, ev in zip(rows, events):
        starts = [t for _, t in ev]
        assert starts == sorted(starts) and 0.0 <= starts[0] < 0.5 and starts[-1] < row.duration
        assert all(isinstance(ipa, str) for ipa, _ in ev) and len(ev) > len(row.text.split())
    # a rendering that does not match the audio, or a voice that is not a corpus voice, gets no timing
    off = [dataclasses.replace(rows[0], duration=rows[0].duration + 1.0), dataclasses.replace(rows[0], speaker="x")]
    assert phoneme_events(off) == [None, None]


def test_word_starts_follow_the_front_ends_words(rows):
    (events,) = phoneme_events(rows[:1])
    words = FrontEnd("phonemes").apply_batch([rows[0].text])[0].split()
    starts = word_starts(words, events)
    assert len(starts) == len(words) and starts == sorted(starts) and starts[0] < starts[-1] < rows[0].duration
    assert word_starts(["zzzz", "qqqq"], events) is None  # nothing alike: no timing rather than a wrong one
    assert char_times("", events) is None and char_times("ab", []) is None
    assert char_times("ab", [("a", 0.1), ("b", 0.3)]) == [0.1, 0.3]
    assert char_times("axb", [("a", 0.1), ("b", 0.3)]) == [0.1, 0.3, 0.3]  # unmatched: the next matched one's


def test_corpus_timings_are_written_into_the_manifest(tmp_path):
    summary = generate(CorpusConfig(out_dir=str(tmp_path / "c"), sentences={"en": 6}, workers=1, timings=True))
    manifest = tmp_path / "c" / "manifest.jsonl"
    rows = read_manifest(manifest)
    assert summary["untimed"] == [] and all(r.phonemes and r.phonemes[0][1] < r.duration for r in rows)
    plain = tmp_path / "c" / "plain.jsonl"  # beside the audio: the rows' paths stay valid
    write_manifest(plain, [dataclasses.replace(r, phonemes=None) for r in rows])
    assert "phonemes" not in json.loads(plain.read_text().splitlines()[0])  # no key when there is no timing
    out = add_timings(plain)
    assert out["timed"] == out["rows"] == len(rows) and read_manifest(plain, check_files=False)[0].phonemes
