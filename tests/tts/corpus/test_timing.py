"""Phoneme timing of espeak-ng corpus rows (tts/corpus/timing.py): the events of each row's voice, checked against
its audio, mapped onto a front end's words; `tts-align corpus timings` writes them into the manifest."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from tts.base.manifest import read_manifest, write_manifest
from tts.corpus.generate import CorpusConfig, generate
from tts.corpus.timing import add_timings, asr_events, char_times, phoneme_events, word_starts
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
    own = [["x", 0.5]]  # a row timed where it was made (the markup corpus) keeps its timing
    write_manifest(plain, [dataclasses.replace(rows[0], phonemes=own), *rows[1:]])
    assert add_timings(plain)["by"] == {"kept": len(rows), "espeak": 0, "asr": 0}
    assert read_manifest(plain, check_files=False)[0].phonemes == own


def test_asr_events_give_each_transcript_word_the_start_it_was_heard_at():
    text = "The cat - sat on the mat."
    ipa = ["ðə", "kæt", "", "sæt", "ɑːn", "ðə", "mæt"]
    heard = [("The", 0.1), ("cat", 0.4), ("sat", 0.8), ("on", 1.1), ("the", 1.2), ("mat.", 1.5)]
    assert asr_events(text, heard, ipa) == [
        ["ðə", 0.1],
        ["kæt", 0.4],
        ["sæt", 0.8],
        ["ɑːn", 1.1],
        ["ðə", 1.2],
        ["mæt", 1.5],
    ]  # the dash has nothing to say: left out
    unheard = [h for h in heard if h[0] != "sat"]  # a word not heard starts with the next heard one
    assert asr_events(text, unheard, ipa)[2] == ["sæt", 1.1]
    assert asr_events(text, heard[:-1], ipa)[-1] == ["mæt", 1.2]  # ... or, at the end, with the last one
    assert asr_events(text, [("dog", 0.1), ("ran", 0.5)], ipa) is None  # not what was said: no timing
    assert asr_events(text, [], ipa) is None
    with pytest.raises(ValueError, match="6 IPA words for the 7 words"):
        asr_events(text, heard, ipa[:-1])


def test_recordings_no_corpus_voice_made_are_timed_by_asr(tmp_path, corpus, rows):
    """Rows whose voice espeak-ng cannot re-render (a user's recordings) get Whisper's word starts, close to where
    espeak-ng says the words start; an unreadable file is named, and the other rows are still written."""
    from rewards.asr import FasterWhisperASR

    root = Path(corpus).parent
    foreign = [dataclasses.replace(r, speaker="someone", wav=str(r.wav_path(root))) for r in rows[:2]]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not audio")
    foreign.append(dataclasses.replace(rows[2], id="broken", speaker="someone", wav=str(broken)))
    manifest = write_manifest(tmp_path / "foreign.jsonl", foreign)
    assert add_timings(manifest, asr=None)["untimed"] == [r.id for r in foreign]  # without ASR: untimed
    out = add_timings(manifest, asr=FasterWhisperASR())
    assert (
        out["by"] == {"kept": 0, "espeak": 0, "asr": 2}
        and out["untimed"] == ["broken"]
        and "broken" in out["unreadable"]
    )
    front = FrontEnd("phonemes")
    for row, espeak in zip(read_manifest(manifest, check_files=False), phoneme_events(rows[:2])):
        words = front.apply(row.text).split()
        heard, spoken = word_starts(words, row.phonemes), word_starts(words, espeak)
        assert len(heard) == len(words) and np.mean(np.abs(np.subtract(heard, spoken))) < 0.15


def test_markup_tags_are_timed_with_the_word_after_them(tmp_path, corpus, rows):
    """A styled rendering's text has tags ("[angry] ...", "... [sigh] ..."): they have nothing to phonemise; the
    words around them are timed and the tag takes the next word's start in the word-synchronous layout."""

    class Heard:
        def word_times(self, wave, language):
            return [(w, 0.3 * k) for k, w in enumerate(row.text.split())]

    row = rows[0]
    text = f"[angry] {' '.join(row.text.split()[:2])} [sigh] {' '.join(row.text.split()[2:])}"
    styled = dataclasses.replace(
        row, id="styled", speaker="someone", text=text, wav=str(row.wav_path(Path(corpus).parent))
    )
    manifest = write_manifest(tmp_path / "styled.jsonl", [styled])
    assert add_timings(manifest, asr=Heard())["by"]["asr"] == 1
    events = read_manifest(manifest, check_files=False)[0].phonemes
    assert len(events) == len(row.text.split()) and not any("[" in ipa for ipa, _ in events)
    words = FrontEnd("phonemes").apply(text).split()
    starts = word_starts(words, events)
    assert words[0] == "[angry]" and starts[0] == starts[1]  # the tag starts with the word after it
    sigh = words.index("[sigh]")  # espeak-ng may join words, so its index is the front end's
    assert 0 < sigh < len(words) - 1 and starts[sigh] == starts[sigh + 1] > starts[0]
