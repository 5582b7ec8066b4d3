"""The markups set and its measurements: every tag against the neutral rendering of the same text and voice.
Measured on real espeak-ng renderings of the corpus styles (what a model that learned the tags should produce)
and on a model that ignores its tags (every rendering neutral)."""

from __future__ import annotations

import numpy as np
import pytest

from evals.markups import (
    NEUTRAL,
    NO_SOUND,
    SEP,
    SPEECH,
    SoundIdentifier,
    embedded_word_times,
    goals,
    markup_effects,
    markup_items,
    markup_markdown,
    sentence_rate,
    sound_starts,
)
from evals.meta import EvalItem
from tts.base.audio import save_audio
from tts.base.layout import MARKUP_TAGS, NONVERBAL_TAGS
from tts.corpus.styles import Style, nonverbal, render
from tts.corpus.voices import MAX_EN_SPEAKERS, speakers_for

SR = 16000
VOICES = speakers_for("en", "en-us", MAX_EN_SPEAKERS)
HELD_OUT = next(v for v in VOICES if v.held_out)  # the eval sets' voices; the identifier never hears them


@pytest.fixture(scope="module")
def built() -> SoundIdentifier:
    return SoundIdentifier.build(voices=[v for v in VOICES if not v.held_out][::3])  # 8 training voices


@pytest.fixture
def identifier(built):
    """What markup_effects takes: a maker, called only where a non-verbal is measured."""
    return lambda: built


@pytest.fixture(scope="module")
def timer():
    """What markup_effects takes for word timing: a maker of the embedded Whisper's `word_times`."""
    times = embedded_word_times()
    return lambda: times


TEXTS = ("The old man walked to the market.", "My sister will call you tomorrow.")


def items(n: int = 2) -> list[EvalItem]:
    return [EvalItem(f"u{k}", "A prompt.", "/p.wav", TEXTS[k], "en") for k in range(n)]


def test_each_prompt_is_rendered_neutral_and_under_every_tag():
    marked = markup_items(items(), 2)
    assert len(marked) == 2 * (1 + len(MARKUP_TAGS)) and all(it.gt_wav is None for it in marked)
    by_id = {it.id: it.target_text for it in marked}
    assert by_id[f"u0{SEP}{NEUTRAL}"] == TEXTS[0]
    assert by_id[f"u0{SEP}sad"] == f"[sad] {TEXTS[0]}"  # a style colours what follows it
    assert by_id[f"u1{SEP}laugh"] == f"{TEXTS[1]} [laugh]"  # a non-verbal sits where it sounds


def write(wav_dir, uid: str, wave: np.ndarray) -> None:
    save_audio(wav_dir / f"{uid}.wav", wave, SR)


def test_the_identifier_names_non_verbals_of_a_voice_it_never_heard_and_the_end_of_speech(built):
    heard = {tag: built.identify(nonverbal(HELD_OUT, tag, SR), SR) for tag in NONVERBAL_TAGS}
    assert sum(h == tag for tag, h in heard.items()) >= len(NONVERBAL_TAGS) - 1, heard
    spoken = render(HELD_OUT, "Please bring the yellow chair inside.", Style(), SR)
    assert built.identify(spoken[-int(0.6 * SR) :], SR) == SPEECH


def test_effects_of_tags_that_work_meet_the_goals_and_ignored_or_wrong_tags_do_not(tmp_path, identifier, timer):
    speaker = HELD_OUT
    marked = [
        it
        for it in markup_items(items(), 2)
        if it.id.rpartition(SEP)[2] in (NEUTRAL, "sad", "whispering", "laugh", "cough")
    ]
    works, ignored, wrong = tmp_path / "works", tmp_path / "ignored", tmp_path / "wrong"
    for d in (works, ignored, wrong):
        d.mkdir()
    for it in marked:
        base, _, name = it.id.rpartition(SEP)
        text = TEXTS[int(base[1:])]
        neutral = render(speaker, text, Style(), SR)
        write(ignored, it.id, neutral)
        if name in ("laugh", "cough"):
            wave = np.concatenate([neutral, nonverbal(speaker, f"[{name}]", SR)])
            # a model that writes some audio for the tag, but not the named sound: a spoken word
            write(wrong, it.id, np.concatenate([neutral, render(speaker, name, Style(), SR)]))
        elif name == NEUTRAL:
            wave = neutral
            write(wrong, it.id, wave)
        else:
            wave = render(speaker, text, f"[{name}]", SR)
        write(works, it.id, wave)
    good, bad = markup_effects(marked, works, identifier, timer), markup_effects(marked, ignored, identifier, timer)
    wrong_items = [it for it in marked if it.id.endswith(("neutral", "laugh", "cough"))]
    misheard = markup_effects(wrong_items, wrong, identifier, timer)
    assert good["prompts"] == 2 and good["tags"]["[sad]"]["n"] == 2 and good["tags"]["[sad]"]["unmeasured"] == 0
    assert (
        good["tags"]["[whispering]"]["voiced_fraction"] < 0.2 < good["tags"]["[whispering]"]["neutral_voiced_fraction"]
    )
    assert good["goals"]["[whispering] voiced fraction <= 0.2"] and good["goals"]["[sad] slower than neutral"]
    assert good["goals"]["[sad] lower-pitched than neutral"] and good["tags"]["[sad]"]["rate_ratio"] < 0.9
    assert good["goals"]["[laugh] audible (+0.2 s) as itself"] and good["goals"]["[cough] audible (+0.2 s) as itself"]
    assert good["tags"]["[laugh]"]["heard"] == ["[laugh]", "[laugh]"]
    assert good["goals"]["[sigh] audible (+0.2 s) as itself"] is None  # not rendered here
    assert not any(bad["goals"][g] for g in ("[whispering] voiced fraction <= 0.2", "[sad] slower than neutral"))
    assert bad["tags"]["[laugh]"]["extra_s"] == 0.0 and not bad["goals"]["[laugh] audible (+0.2 s) as itself"]
    # extra audio that is not the named sound: audible, but not the tag
    assert misheard["tags"]["[cough]"]["extra_s"] > 0.2 and misheard["tags"]["[cough]"]["identified"] == 0.0
    assert not misheard["goals"]["[laugh] audible (+0.2 s) as itself"]
    assert not misheard["goals"]["[cough] audible (+0.2 s) as itself"]
    md = markup_markdown(good)
    assert "| [sad] | 2 | 0 |" in md and "sentence rate ratio" in md
    assert "| [whispering] voiced fraction <= 0.2 | yes |" in md
    assert "| [laugh] | 2 | 0 |" in md and md.count("| 1.00 |") >= 2  # named right: both prompts


def test_a_word_timed_rendering_is_judged_by_the_sound_where_the_model_wrote_its_tag(tmp_path, identifier, timer):
    """A rendering whose sentence runs slower than the neutral one: its last `extra_s` seconds are mostly speech,
    but synthesis timed the tag word (`sound_starts` of its rows), and from there the sound is the breath. A tag
    given no audio of its own is not its sound."""
    marked = [it for it in markup_items(items(1), 1) if it.id.rpartition(SEP)[2] in (NEUTRAL, "breathe", "sigh")]
    neutral = render(HELD_OUT, TEXTS[0], Style(), SR)
    slow = render(HELD_OUT, TEXTS[0], Style(speed=0.6), SR)
    write(tmp_path, f"u0{SEP}{NEUTRAL}", neutral)
    write(tmp_path, f"u0{SEP}breathe", np.concatenate([slow, nonverbal(HELD_OUT, "[breathe]", SR)]))
    write(tmp_path, f"u0{SEP}sigh", slow)  # the model went on past [sigh] without a sound
    rows = [
        {"id": f"u0{SEP}breathe", "words": [["The", 0.0], ["market.", 1.0], ["[breathe]", len(slow) / SR]]},
        {"id": f"u0{SEP}sigh", "words": [["The", 0.0], ["market.", 1.0], ["[sigh]", None]]},
        {"id": f"u0{SEP}{NEUTRAL}", "words": [["The", 0.0]]},
    ]
    starts = sound_starts(rows)
    assert starts == {f"u0{SEP}breathe": len(slow) / SR, f"u0{SEP}sigh": None}
    guessed = markup_effects(marked, tmp_path, identifier, timer)["tags"]
    timed = markup_effects(marked, tmp_path, identifier, timer, starts)
    assert guessed["[breathe]"]["heard"] != ["[breathe]"] and guessed["[breathe]"]["located_by_words"] == 0
    assert timed["tags"]["[breathe]"]["heard"] == ["[breathe]"] and timed["tags"]["[breathe]"]["located_by_words"] == 1
    assert timed["tags"]["[sigh]"]["heard"] == [NO_SOUND] and timed["tags"]["[sigh]"]["identified"] == 0.0
    assert "found where the model wrote the tag (its own word timing) in 2 of 2" in markup_markdown(timed)


def test_a_style_tags_own_sound_before_the_sentence_is_not_slower_speech(tmp_path, identifier, timer):
    """A model that writes some audio for `[sad]` (as a word-synchronous model does for any tag) and then the
    neutral sentence: the rendering is longer, but the sentence is not spoken slower."""
    marked = [it for it in markup_items(items(), 2) if it.id.endswith(("neutral", "sad"))]
    for it in marked:
        neutral = render(HELD_OUT, TEXTS[int(it.id.rpartition(SEP)[0][1:])], Style(), SR)
        lead = nonverbal(HELD_OUT, "[sigh]", SR) if it.id.endswith("sad") else np.zeros(0, np.float32)
        write(tmp_path, it.id, np.concatenate([lead, np.zeros(SR // 5, np.float32), neutral]))
    sad = markup_effects(marked, tmp_path, identifier, timer)
    assert sad["tags"]["[sad]"]["duration_ratio"] > 1.1  # longer, as the old check counted it
    assert 0.9 < sad["tags"]["[sad]"]["rate_ratio"] < 1.1 and not sad["goals"]["[sad] slower than neutral"]


def test_sentence_rate_counts_from_the_first_word_of_the_text_heard():
    text = TEXTS[0]
    spoken = render(HELD_OUT, text, Style(), SR)
    times = [("Hmm.", 0.1), ("The", 1.0), ("old", 1.2), ("man", 1.4), ("walked", 1.6), ("to", 1.9), ("the", 2.0)]
    wave = np.concatenate([np.zeros(SR, np.float32), spoken])
    rate = sentence_rate(wave, SR, text, lambda w: times)
    end = (len(wave) - np.flatnonzero(np.abs(wave[::-1]) > 0.01)[0]) / SR  # roughly where speech ends
    assert rate == pytest.approx(7 / (end - 1.0), rel=0.1)  # 7 words from "The" on; "Hmm." is left out
    assert sentence_rate(wave, SR, text, lambda w: [("Banana", 0.5)]) is not None  # a substitution still counts
    assert sentence_rate(wave, SR, text, lambda w: []) is None  # nothing heard: unmeasured
    # the tag's sound heard as a word before the sentence is not its start: the same rate as without the tag
    tagged = [("Said.", 0.2), *times[1:]]
    assert sentence_rate(wave, SR, f"[sad] {text}", lambda w: tagged) == pytest.approx(rate)


def test_missing_or_silent_renderings_are_counted_unmeasured(tmp_path):
    def never():
        raise AssertionError("nothing measurable: no identifier or word timing needed")

    marked = [it for it in markup_items(items(1), 1) if it.id.endswith(("neutral", "sad"))]
    write(tmp_path, marked[1].id, np.zeros(SR, np.float32))  # neutral missing, [sad] silent
    e = markup_effects(marked, tmp_path, never, never)["tags"]["[sad]"]
    assert e["n"] == 1 and e["unmeasured"] == 1 and e["duration_ratio"] is None


def test_takes_render_each_prompt_again_and_the_goals_are_judged_on_prompts_averaged_over_takes(
    tmp_path, identifier, timer
):
    """One rendering per prompt makes a tag a coin flip per prompt; with takes each prompt's share is averaged
    over its renderings first, and the interval stays over prompts (the unit the goals generalise over)."""
    marked = markup_items(items(), 2, ("[whispering]", "[laugh]"), takes=2)
    ids = [it.id for it in marked]
    assert len(ids) == len(set(ids)) == 2 * 2 * 3  # prompts x takes x (neutral + 2 tags)
    assert ids[:3] == [f"u0{SEP}{NEUTRAL}", f"u0{SEP}whispering", f"u0{SEP}laugh"]  # take 0 keeps its id
    assert f"u0{SEP}take1{SEP}whispering" in ids and f"u1{SEP}take1{SEP}{NEUTRAL}" in ids
    for it in marked:
        base, _, name = it.id.rpartition(SEP)
        text = TEXTS[int(base[1])]
        neutral = render(HELD_OUT, text, Style(), SR)
        failed = base == f"u0{SEP}take1"  # prompt u0's second take ignores its tags
        if name == "whispering" and not failed:
            wave = render(HELD_OUT, text, "[whispering]", SR)
        elif name == "laugh":
            wave = np.concatenate(
                [neutral, render(HELD_OUT, "laugh", Style(), SR) if failed else nonverbal(HELD_OUT, "[laugh]", SR)]
            )
        else:
            wave = neutral
        write(tmp_path, it.id, wave)
    tags = markup_effects(marked, tmp_path, identifier, timer)["tags"]
    whisper, laugh = tags["[whispering]"], tags["[laugh]"]
    assert whisper["n"] == 4 and whisper["prompts"] == 2 and laugh["heard"].count("[laugh]") == 3
    assert laugh["identified"] == pytest.approx(0.75) and laugh["ci95"]["identified"] == [0.5, 1.0]  # u0 0.5, u1 1
    lo, hi = whisper["ci95"]["voiced_fraction"]  # two prompt means: u0's (one take voiced) and u1's (none)
    assert lo < 0.1 < 0.2 < hi and not goals(tags)["[whispering] voiced fraction <= 0.2"]
    # a whispered take has no f0: u0's f0 ratio is its voiced take's (about 1), not lost with the other take
    assert whisper["f0_ratio"] == pytest.approx(1.0, abs=0.1)
    assert "| [laugh] | 4 (2 prompts) | 0 |" in markup_markdown({"tags": tags, "goals": {}, "prompts": 2})
