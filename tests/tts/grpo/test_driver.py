"""The driver's in-flight rollout bookkeeping (tts/grpo/driver.py), without Ray: groups arrive from stream threads,
a stream's failure reaches the driver's thread, and all-equal groups are recognised."""

from __future__ import annotations

import time

import pytest

from tts.grpo.driver import Rollout, all_equal


def test_streams_fill_groups_and_their_error_reaches_the_waiting_thread():
    rollout = Rollout(prompts=["p0", "p1", "p2"])

    def stream(ks):
        for k in ks:
            time.sleep(0.01)
            rollout.groups[k] = [f"g{k}"]

    rollout.start(stream, [0, 2])
    rollout.start(stream, [1])
    assert rollout.wait_generated() == {0: ["g0"], 1: ["g1"], 2: ["g2"]}

    failing = Rollout(prompts=["p0"])
    failing.start(lambda: (_ for _ in ()).throw(RuntimeError("worker 0 failed twice")))
    with pytest.raises(RuntimeError, match="worker 0 failed twice"):
        failing.wait_generated()


def test_timed_records_when_the_last_score_finished():
    rollout = Rollout(prompts=["p0"])
    before = rollout.scored_at
    assert rollout.timed(lambda x: x + 1, 1) == 2 and rollout.scored_at > before


def test_all_equal_groups_carry_no_signal():
    rec = lambda total: {"rewards": {"total": total}}  # noqa: E731
    assert all_equal([rec(0.5), rec(0.5)]) and not all_equal([rec(0.5), rec(0.6)])


def test_word_credit_gives_the_misheard_words_tokens_their_own_advantage():
    """learner.word_credit on a word-synchronous policy: the codes of the word one completion got wrong (ASR heard
    another) get less than that completion's sequence advantage; its other words keep it."""
    import shutil

    from tts.grpo.config import GRPOConfig
    from tts.grpo.dataset import Prompt
    from tts.grpo.driver import GRPOJob
    from tts.prompts import encode_words
    from tts.rollout import Completion
    from tts.speechlm import EMBEDDED_SPEECHLM, load_speechlm

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not on PATH")
    _, tokenizer, layout = load_speechlm(EMBEDDED_SPEECHLM)
    text = "My sister took the train."
    words = encode_words(tokenizer, layout, text)  # maɪ sɪstɚ tʊk ðə tɹeɪn
    code = layout.audio_offset
    # word 0 is in the prompt; each completion: two codes per word, then the next word's tokens, then the end
    tokens = [t for w in words[1:] for t in ([code, code + 1] + w)] + [code, code + 1, layout.speech_end_id]
    prompt = Prompt("p", text, "en", [0], None, words)
    job = object.__new__(GRPOJob)
    job.layout, job.cfg = layout, GRPOConfig()
    job.cfg.learner.word_credit = 0.5
    records = [{"transcript": text}, {"transcript": "My brother took the train."}]
    group = [Completion(tokens, [0.0] * len(tokens), "stop"), Completion(tokens, [0.0] * len(tokens), "stop")]
    adv = job._word_credit([(prompt, group, records)], [0.1, -0.1])
    word = job._sync(prompt).word_of(tokens)
    for k, sequence in enumerate((0.1, -0.1)):
        assert len(adv[k]) == len(tokens)
        for a, w in zip(adv[k], word):
            expected = sequence + (0.5 * (0.5 if k == 0 else -0.5) if w == 1 else 0.0)  # "sister": 1 of 2 heard
            assert a == pytest.approx(expected), (k, w)
    job.cfg.learner.word_credit = 0.0
    assert job._word_credit([(prompt, group, records)], [0.1, -0.1]) == [[0.1] * len(tokens), [-0.1] * len(tokens)]
