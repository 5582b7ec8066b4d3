"""Tests for ASR error rates and the embedded Whisper tiny.en (rewards/asr.py, rewards/weights.py)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import rewards.asr as asr
from rewards.asr import FasterWhisperASR, corpus_error_rate, embedded_whisper_dir, error_rate, normalise
from rewards.weights import WeightsError, package_file
from tts.corpus.generate import speak
from tts.corpus.voices import Speaker

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not on PATH")


# --- normalisation and error rates --------------------------------------------------------------------------


def test_wer_one_substitution_in_three_words():
    assert error_rate("the cat sat", "the cat sit") == pytest.approx(1 / 3)


def test_wer_counts_insertions_and_deletions():
    assert error_rate("the cat sat", "the cat") == pytest.approx(1 / 3)
    assert error_rate("the cat sat", "the big cat sat down") == pytest.approx(2 / 3)
    assert error_rate("the cat sat", "dogs run") == pytest.approx(1.0)


def test_english_normaliser_ignores_case_and_punctuation():
    assert normalise("Hello, World!", "en") == "hello world"
    assert error_rate("Hello, World!", "hello world") == 0.0


def test_english_normaliser_numbers():
    assert normalise("I have twenty five apples.", "en") == "i have 25 apples"
    assert error_rate("I have twenty five apples.", "i have 25 apples") == 0.0
    assert error_rate("It costs five dollars", "it costs $5") == 0.0


def test_basic_normaliser_for_other_word_languages():
    assert normalise("Der Hund,  läuft!", "de") == "der hund läuft"
    assert error_rate("Der Hund läuft.", "der hund rennt", "de") == pytest.approx(1 / 3)


def test_cer_for_chinese():
    assert error_rate("今天天气很好", "今天天气好", "zh") == pytest.approx(1 / 6)
    assert normalise("今天 天气，很好。", "zh") == "今天天气很好"  # punctuation and spaces do not count
    assert error_rate("今天 天气，很好。", "今天天气很好", "zh") == 0.0
    assert normalise("ＡＢＣ１", "ja") == "ABC1"  # NFKC folds full-width forms


@pytest.mark.parametrize("language", ["en", "de", "zh"])
@pytest.mark.parametrize("reference", ["", "   ", "?!."])
def test_empty_reference_raises(reference, language):
    with pytest.raises(ValueError, match="empty reference"):
        error_rate(reference, "something", language)


@pytest.mark.parametrize("language, reference", [("en", "the cat sat"), ("de", "der Hund"), ("zh", "今天天气很好")])
@pytest.mark.parametrize("hypothesis", ["", "  ", "..."])
def test_empty_hypothesis_is_total_error(language, reference, hypothesis):
    assert error_rate(reference, hypothesis, language) == 1.0


def test_corpus_error_rate_weights_by_reference_length():
    refs, hyps = ["the cat sat", "a dog ran far away"], ["the cat sit", "a dog ran far away"]
    assert corpus_error_rate(refs, hyps) == pytest.approx(1 / 8)  # not the mean of 1/3 and 0
    assert corpus_error_rate(["Hello, World!"], ["hello world"]) == 0.0
    assert corpus_error_rate(["今天天气很好", "你好"], ["今天天气好", "你好"], "zh") == pytest.approx(1 / 8)


def test_corpus_error_rate_with_an_empty_hypothesis():
    assert corpus_error_rate(["the cat sat", "a dog"], ["the cat sat", ""]) == pytest.approx(2 / 5)


# --- embedded Whisper tiny.en ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def whisper():
    return FasterWhisperASR()


def test_embedded_whisper_dir_verifies_and_locates_files():
    path = embedded_whisper_dir()
    assert path.is_dir()
    assert {p.name for p in path.iterdir()} >= set(asr.EMBEDDED_WHISPER)


def test_tampered_checksum_raises(monkeypatch):
    monkeypatch.setattr(asr, "EMBEDDED_WHISPER", {"config.json": "0" * 64})
    with pytest.raises(WeightsError, match=r"config\.json: SHA-256 .* differs from the pinned 0000000000000000"):
        embedded_whisper_dir()


def test_missing_package_raises():
    with pytest.raises(WeightsError, match="package 'no_such_weights_pkg' is not installed"):
        package_file("no_such_weights_pkg", "model/model.bin", None)


def test_custom_model_dir_without_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a CTranslate2 Whisper model directory"):
        FasterWhisperASR(model=str(tmp_path))


@needs_espeak
def test_transcribes_espeak_english(whisper):
    text = "the old man walked slowly to the market in the morning"
    wave = speak(Speaker("en_09", "en", "en-us+f3", 60, 155), text, 16000)
    hypothesis = whisper.transcribe(wave, "en")
    assert hypothesis  # Whisper returns cased, punctuated text; the normaliser handles that
    assert error_rate(text, hypothesis) <= 0.3, hypothesis


@needs_espeak
def test_likelihood_of_the_spoken_text_is_high_and_of_another_low(whisper):
    """The intelligibility reward's measurement: the same clip scored against what it says and against another
    sentence, and noise against the text; graded, so a half-right sentence lands in between."""
    text, other = "the old man walked slowly to the market", "my sister bought a warm coat for the winter"
    wave = speak(Speaker("en_09", "en", "en-us+f3", 60, 155), text, 16000)
    noise = (0.3 * np.random.default_rng(0).standard_normal(len(wave))).astype(np.float32)
    half = "the old man walked slowly to a warm coat"
    right, wrong, partly, noisy = whisper.likelihood_batch([wave, wave, wave, noise], [text, other, half, text])
    assert right > 0.5 > 0.1 > max(wrong, noisy) and wrong < partly < right
    with pytest.raises(ValueError, match="empty"):
        whisper.likelihood_batch([wave], [" "])
    # the ASR pool's path: transcripts and likelihoods from one encoder pass, the same as the two apart
    texts, likely = whisper.transcribe_and_likelihood([wave, noise], [text, text])
    assert texts == whisper.transcribe_batch([wave, noise]) and likely == pytest.approx([right, noisy], abs=1e-4)


@needs_espeak
def test_batched_transcripts_are_capped_by_clip_duration(whisper, monkeypatch):
    """A decode that loops ('I love it.' to the token limit) is cut at the clip's plausible token count, clip by
    clip; a real transcript stays whole."""
    text = "the old man walked slowly to the market in the morning"
    speech = speak(Speaker("en_09", "en", "en-us+f3", 60, 155), text, 16000)
    blip = np.zeros(8000, np.float32)  # 0.5 s
    loop = whisper._model.hf_tokenizer.encode(" I love it." * 100, add_special_tokens=False).ids

    class Looping:  # the CTranslate2 model, except that the second clip's decode loops to max_length
        def __init__(self, model):
            self.model = model

        def __getattr__(self, name):
            return getattr(self.model, name)

        def generate(self, features, prompts, **kw):
            results = self.model.generate(features, prompts, **kw)
            results[1].sequences_ids[0] = loop[: kw["max_length"] - len(prompts[1])]
            return results

    monkeypatch.setattr(whisper._model, "model", Looping(whisper._model.model))
    clean, looped = whisper.transcribe_batch([speech, blip], "en")
    assert error_rate(text, clean) <= 0.3, clean
    n = len(whisper._model.hf_tokenizer.encode(looped, add_special_tokens=False).ids)
    assert 0 < n <= asr.token_cap(len(blip)) < 20, looped


def test_english_only_model_rejects_other_languages(whisper):
    assert whisper.english_only
    with pytest.raises(ValueError, match="English-only; cannot transcribe language 'de'"):
        whisper.transcribe(np.zeros(16000, dtype=np.float32), "de")


@needs_espeak
def test_unclear_audio_gets_the_same_transcript_every_time(whisper):
    """100 ms blocks of speech in random order: at temperature 0 Whisper's decode fails its quality checks, and
    faster-whisper's default then samples at higher temperatures (6 different transcripts in 6 calls, none the
    greedy one). Rewards and evaluations must be repeatable: one greedy decode."""
    wave = speak(Speaker("a", "en", "en-us+m1", 45, 160), "The children walked to the park after lunch.", 16000)
    blocks = wave[: len(wave) // 1600 * 1600].reshape(-1, 1600)
    babble = blocks[np.random.default_rng(2).permutation(len(blocks))].ravel()
    transcripts = {whisper.transcribe(babble, "en") for _ in range(3)}
    assert len(transcripts) == 1, transcripts
