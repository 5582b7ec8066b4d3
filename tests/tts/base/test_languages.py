"""Tests for the one table of language codes (tts/base/languages.py)."""

from __future__ import annotations

from tts.base.languages import CER_LANGUAGES, LANGUAGES, TABLE, Language

CORPUS = {"en", "de", "fr", "es", "it", "pt", "nl", "pl", "zh", "ja", "ko"}


def test_corpus_languages():
    assert set(LANGUAGES) == CORPUS
    for code, lang in LANGUAGES.items():
        assert isinstance(lang, Language)
        assert lang.code == code and lang.name and lang.espeak_voice
    assert LANGUAGES["en"].espeak_voice == "en-us"
    assert LANGUAGES["zh"].espeak_voice == "cmn-latn-pinyin"


def test_cer_languages():
    assert CER_LANGUAGES == {"zh", "ja", "ko", "th", "yue"}
    assert {code for code in LANGUAGES if code in CER_LANGUAGES} == {"zh", "ja", "ko"}
    assert CER_LANGUAGES == {lang.code for lang in TABLE if lang.cer}


def test_table():
    codes = [lang.code for lang in TABLE]
    assert len(codes) == len(set(codes))
    assert all(lang.name for lang in TABLE)
    # languages scored by CER without a corpus voice are known, but not corpus languages
    assert {lang.code for lang in TABLE if lang.espeak_voice is None} == {"th", "yue"}
    assert set(codes) == CORPUS | CER_LANGUAGES
