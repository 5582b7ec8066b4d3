"""WER/CER and aggregation with known answers: per-utterance mean (seed-tts-eval) vs corpus rates, failures."""

from __future__ import annotations

import pytest

from evals.metrics import aggregate, edit_counts, group
from rewards.asr import error_rate
from tts.base.languages import CER_LANGUAGES


@pytest.mark.parametrize(
    ("ref", "hyp", "language", "expected"),
    [
        ("The cat sat on the mat.", "the cat sat on mat", "en", (1, 6)),  # one deletion
        ("The cat sat on the mat.", "The dog sat on the mat and slept.", "en", (3, 6)),  # 1 sub + 2 ins
        ("The cat sat.", "", "en", (3, 3)),  # nothing heard: every word deleted
        ("下午，我的父母", "下午我的母", "zh", (1, 6)),  # punctuation dropped, one character deleted
        ("下午，我的父母", "上午我的父母", "zh", (1, 6)),  # one substitution
        ("Der Hund spielt.", "der hund spielte", "de", (1, 3)),
    ],
)
def test_edit_counts_known_answers(ref, hyp, language, expected):
    edits, length = edit_counts(ref, hyp, language, CER_LANGUAGES)
    assert (edits, length) == expected
    assert edits / length == pytest.approx(error_rate(ref, hyp, language) if hyp else 1.0)


def test_empty_reference_is_an_error():
    with pytest.raises(ValueError, match="empty reference"):
        edit_counts(" ,;: ", "x", "zh", CER_LANGUAGES)


def row(rate=None, edits=None, ref_len=None, metric="wer", failure=None, sim=0.5, ovrl=3.0, duration=2.0, **kw):
    dnsmos = None if failure else {"sig": 3.5, "bak": 4.0, "ovrl": ovrl, "p808": 3.6}
    return {
        "metric": metric,
        "error_rate": rate,
        "edits": edits,
        "ref_len": ref_len,
        "failure": failure,
        "sim": None if failure else sim,
        "dnsmos": dnsmos,
        "duration": duration,
        "language": "en",
    } | kw


def test_mean_of_utterance_rates_differs_from_corpus_rate():
    rows = [row(0.5, 1, 2), row(0.0, 0, 8)]
    s = aggregate(rows)
    assert s["wer"] == pytest.approx(0.25)  # seed-tts-eval: mean of per-utterance WER
    assert s["wer_corpus"] == pytest.approx(0.1)  # 1 edit / 10 reference words
    assert s["cer"] is None and s["n_cer"] == 0


def test_failures_are_counted_not_dropped():
    rows = [row(0.2, 1, 5, sim=0.6), row(failure="missing: x.wav", duration=None), row(0.0, 0, 4, sim=0.8)]
    s = aggregate(rows)
    assert (s["n"], s["scored"], s["failures"]) == (3, 2, 1)
    assert s["wer"] == pytest.approx(0.1)
    assert s["wer_failed_as_1"] == pytest.approx((0.2 + 1.0 + 0.0) / 3)
    assert s["sim"] == pytest.approx(0.7)
    assert s["dnsmos_ovrl"] == pytest.approx(3.0) and s["dnsmos_p808"] == pytest.approx(3.6)


def test_cer_languages_and_unmeasured_languages_stay_apart():
    rows = [row(0.5, 1, 2), row(0.25, 1, 4, metric="cer", language="zh"), row(metric=None, language="de")]
    s = aggregate(rows)
    assert (s["wer"], s["cer"], s["n_wer"], s["n_cer"]) == (0.5, 0.25, 1, 1)
    per = group(rows, lambda r: r["language"])
    assert list(per) == ["de", "en", "zh"]
    assert per["de"]["wer"] is None and per["de"]["failures"] == 0 and per["de"]["sim"] == 0.5


def test_real_time_factor_is_synthesis_time_over_audio_time():
    rows = [row(0.0, 0, 3, duration=2.0, synth_s=1.0), row(0.0, 0, 3, duration=4.0, synth_s=5.0)]
    assert aggregate(rows)["rtf"] == pytest.approx(1.0)
    assert aggregate([row(0.0, 0, 3)])["rtf"] is None  # scored wavs: no synthesis time
    assert aggregate([])["n"] == 0
