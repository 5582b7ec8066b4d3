"""evals.protocols: the seed-tts-eval protocol equals seed-tts-eval's own processing (its run_wer.py
`process_one` and average_wer.py, restated below from their published definition) on tricky pairs."""

from __future__ import annotations

import string

import jiwer
import pytest
from zhon.hanzi import punctuation as zh_punctuation

from evals.protocols import PROTOCOLS, check_protocol, seed_tts_eval_score, seed_tts_eval_text


def published(hypo: str, truth: str, lang: str) -> tuple[float, float, float, float]:
    """seed-tts-eval's process_one as published (BytedanceSpeech/seed-tts-eval, run_wer.py): punctuation deleted
    character by character except "'", "  " -> " " once, zh spaced into characters or en lower-cased, jiwer's
    measures, and the three error kinds over len(truth.split(" "))."""
    for x in zh_punctuation + string.punctuation:
        if x == "'":
            continue
        truth, hypo = truth.replace(x, ""), hypo.replace(x, "")
    truth, hypo = truth.replace("  ", " "), hypo.replace("  ", " ")
    if lang == "zh":
        truth, hypo = " ".join(list(truth)), " ".join(list(hypo))
    else:
        truth, hypo = truth.lower(), hypo.lower()
    m = jiwer.process_words(truth, hypo)
    n = len(truth.split(" "))
    return m.wer, m.substitutions / n, m.deletions / n, m.insertions / n


PAIRS = [
    ("en", "Hello, world!", "hello world"),
    ("en", "It's 5 o'clock; the cat's toy (a ball) rolled.", "its five oclock the cats toy a ball rolled"),
    ("en", "Dr. Smith paid $3.50 -- really?", "doctor smith paid three fifty really"),
    ("en", "MiXeD CaSe   words  here", "mixed case words here"),
    ("en", "The quick brown fox.", ""),
    ("en", "a b", "a b c d e f"),
    ("en", "Tab\tand newline\nstay", "tab and newline stay"),
    ("zh", "你好，世界！今天天气很好。", "你好世界今天天气很好"),
    ("zh", "他说：“我们走吧”。", "他说我们走"),
    ("zh", "数字123和English混合", "数字一二三和english混合"),
    ("zh", "《红楼梦》是一本书", "红楼梦是一本好书"),
]


@pytest.mark.parametrize("lang, truth, hypo", PAIRS)
def test_equals_the_published_processing(lang, truth, hypo):
    got = seed_tts_eval_score(hypo, truth, lang)
    expected = published(hypo, truth, lang)
    assert (got.wer, got.substitutions, got.deletions, got.insertions) == pytest.approx(expected, abs=1e-12)


def test_text_processing_details():
    assert seed_tts_eval_text("Don't STOP, now!", "en") == "don't stop now"  # apostrophe kept, case folded
    assert seed_tts_eval_text("a    b", "en") == "a  b"  # double spaces collapsed once, as published
    assert seed_tts_eval_text("你好，世界", "zh") == "你 好 世 界"
    with pytest.raises(ValueError, match="seed-tts-eval scores"):
        seed_tts_eval_text("bonjour", "fr")
    with pytest.raises(ValueError, match="empty reference"):
        seed_tts_eval_score("anything", "?!", "en")


def test_unknown_protocol_lists_the_known_ones():
    assert check_protocol("seed-tts-eval") == "seed-tts-eval" and "ours" in PROTOCOLS
    with pytest.raises(ValueError, match="unknown protocol 'seedtts'; known: ours, seed-tts-eval"):
        check_protocol("seedtts")
