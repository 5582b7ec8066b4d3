"""The markups set and its measurements: every tag against the neutral rendering of the same text and voice.
Measured on real espeak-ng renderings of the corpus styles (what a model that learned the tags should produce)
and on a model that ignores its tags (every rendering neutral)."""

from __future__ import annotations

import numpy as np

from evals.markups import NEUTRAL, SEP, markup_effects, markup_items, markup_markdown
from evals.meta import EvalItem
from tts.base.audio import save_audio
from tts.base.layout import MARKUP_TAGS
from tts.corpus.styles import Style, nonverbal, render
from tts.corpus.voices import speakers_for

SR = 16000
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


def test_effects_of_tags_that_work_meet_the_goals_and_ignored_tags_do_not(tmp_path):
    speaker = speakers_for("en", "en-us")[0]
    marked = [
        it for it in markup_items(items(), 2) if it.id.rpartition(SEP)[2] in (NEUTRAL, "sad", "whispering", "laugh")
    ]
    works, ignored = tmp_path / "works", tmp_path / "ignored"
    for d in (works, ignored):
        d.mkdir()
    for it in marked:
        base, _, name = it.id.rpartition(SEP)
        text = TEXTS[int(base[1:])]
        neutral = render(speaker, text, Style(), SR)
        write(ignored, it.id, neutral)
        if name == "laugh":
            wave = np.concatenate([neutral, nonverbal(speaker, "[laugh]", SR)])
        elif name == NEUTRAL:
            wave = neutral
        else:
            wave = render(speaker, text, f"[{name}]", SR)
        write(works, it.id, wave)
    good, bad = markup_effects(marked, works), markup_effects(marked, ignored)
    assert good["prompts"] == 2 and good["tags"]["[sad]"]["n"] == 2 and good["tags"]["[sad]"]["unmeasured"] == 0
    assert (
        good["tags"]["[whispering]"]["voiced_fraction"] < 0.2 < good["tags"]["[whispering]"]["neutral_voiced_fraction"]
    )
    assert good["goals"]["[whispering] voiced fraction <= 0.2"] and good["goals"]["[sad] slower than neutral"]
    assert good["goals"]["[sad] lower-pitched than neutral"] and good["goals"]["[laugh] audible (+0.2 s)"]
    assert good["goals"]["[cough] audible (+0.2 s)"] is None  # not rendered here
    assert not any(bad["goals"][g] for g in ("[whispering] voiced fraction <= 0.2", "[sad] slower than neutral"))
    assert bad["tags"]["[laugh]"]["extra_s"] == 0.0 and not bad["goals"]["[laugh] audible (+0.2 s)"]
    md = markup_markdown(good)
    assert "| [sad] | 2 | 0 |" in md and "| [whispering] voiced fraction <= 0.2 | yes |" in md


def test_missing_or_silent_renderings_are_counted_unmeasured(tmp_path):
    marked = [it for it in markup_items(items(1), 1) if it.id.endswith(("neutral", "sad"))]
    write(tmp_path, marked[1].id, np.zeros(SR, np.float32))  # neutral missing, [sad] silent
    e = markup_effects(marked, tmp_path)["tags"]["[sad]"]
    assert e["n"] == 1 and e["unmeasured"] == 1 and e["duration_ratio"] is None
