"""Rollout workers (tts/rollout.py): the HF backend in this process; the vLLM CPU engine (slow) in a
subprocess, because vLLM needs the `if __name__ == "__main__"` guard."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from tts import prompts
from tts.base.layout import TokenLayout
from tts.base.weights import FlatWeights
from tts.rollout import RELOAD_LOGGER, RolloutConfig, RolloutWorker, RotaryReloadFilter
from tts.speechlm import load_speechlm


@pytest.fixture(scope="module")
def tok(policy_dir):
    return AutoTokenizer.from_pretrained(policy_dir), TokenLayout.load(policy_dir)


@pytest.fixture(scope="module")
def prompt_ids(tok):
    tokenizer, layout = tok
    enc = lambda text: prompts.encode_text(tokenizer, layout, text)  # noqa: E731
    return [
        prompts.inference(layout, enc("The cat sat on the mat."), enc("Hello there."), np.arange(12) * 5).input_ids,
        prompts.inference(layout, enc("A second sentence, without a reference.")).input_ids,
        prompts.inference(layout, enc("Short."), enc("Some words."), np.arange(30) % 64).input_ids,
    ]


def hf_worker(policy_dir, **kw) -> RolloutWorker:
    cfg = RolloutConfig(**({"backend": "hf", "group_size": 2, "max_new_tokens": 40, "temperature": 1.0} | kw))
    return RolloutWorker(str(policy_dir), cfg, seed=0)


def completion_logprobs(score, prompt: list[int], completion: list[int]) -> list[float]:
    """log p of each completion token under `score(ids)` (log p(ids[t] | ids[:t]) for t >= 1)."""
    return score(prompt + completion)[len(prompt) - 1 :]


def test_hf_generate_groups_audio_only_with_raw_logprobs(policy_dir, tok, prompt_ids):
    _, layout = tok
    worker = hf_worker(policy_dir)
    groups = worker.generate(prompt_ids, seeds=[0, 3, 4])
    assert len(groups) == 3 and all(len(g) == 2 for g in groups)
    finishes = set()
    for prompt, group in zip(prompt_ids, groups):
        for c in group:
            assert 1 <= len(c.token_ids) <= 40 and len(c.logprobs) == len(c.token_ids)
            ids = np.asarray(c.token_ids)
            assert (layout.is_audio(ids) | (ids == layout.speech_end_id)).all()
            assert (c.finish == "stop") == (c.token_ids[-1] == layout.speech_end_id)
            assert layout.speech_end_id not in c.token_ids[:-1]  # nothing after the end of speech
            if c.finish == "length":
                assert len(c.token_ids) == 40
            finishes.add(c.finish)
            # raw log-probs: the unprocessed model, not the audio-only/temperature-processed distribution
            expected = completion_logprobs(worker.sequence_logprobs, prompt, c.token_ids)
            np.testing.assert_allclose(c.logprobs, expected, atol=1e-4)
    assert finishes == {"stop", "length"}  # both ends of a completion are exercised


def test_hf_generate_is_seeded(policy_dir, prompt_ids):
    worker = hf_worker(policy_dir, temperature=0.9)
    ids = lambda groups: [[c.token_ids for c in g] for g in groups]  # noqa: E731
    a = ids(worker.generate(prompt_ids[:2], seeds=[11, 12]))
    assert a == ids(worker.generate(prompt_ids[:2], seeds=[11, 12]))
    assert a == ids(hf_worker(policy_dir, temperature=0.9).generate(prompt_ids[:2], seeds=[11, 12]))
    assert a != ids(worker.generate(prompt_ids[:2], seeds=[13, 12]))
    assert [len(g) for g in worker.generate(prompt_ids[:1], seeds=[1], n=3)] == [3]
    with pytest.raises(ValueError, match="seeds"):
        worker.generate(prompt_ids[:2], seeds=[1])


@pytest.mark.parametrize("top_k", [0, 5])
def test_hf_top_k_zero_means_off(policy_dir, prompt_ids, top_k):
    """top_k 0 samples from every allowed token (transformers would otherwise apply its default top-k of 50)."""
    worker = hf_worker(policy_dir, top_k=top_k, max_new_tokens=1, temperature=5.0)
    first = {c.token_ids[0] for c in worker.generate(prompt_ids[1:2], seeds=[0], n=300)[0]}
    if top_k == 0:
        assert 50 < len(first) <= 65  # 64 codes + <|speech_end|>, nearly flat at temperature 5
    else:
        assert len(first) == top_k


def test_min_codes_per_char_floors_every_completion(policy_dir, prompt_ids):
    """2 codes per character of "x" * 15: no completion ends before 30 codes; without the floor some do."""
    texts, seeds = ["[laugh] " + "x" * 15, "x" * 15], [0, 3]

    def shortest(**kw) -> int:
        groups = hf_worker(policy_dir, group_size=4, **kw).generate(prompt_ids[:2], seeds, texts=texts)
        return min(len(c.token_ids) - (c.finish == "stop") for g in groups for c in g)

    assert shortest() < 30
    assert shortest(min_codes_per_char=2.0) >= 30
    with pytest.raises(ValueError, match="needs 2 prompt texts, got none"):
        hf_worker(policy_dir, min_codes_per_char=2.0).generate(prompt_ids[:2], seeds)
    with pytest.raises(ValueError, match="min_codes_per_char must be >= 0"):
        RolloutConfig(min_codes_per_char=-1.0)


def perturbed(policy_dir, scale: float = 0.05, seed: int = 0):
    """The start policy with every parameter moved by noise: a learner's weights after some steps."""
    model, _, _ = load_speechlm(policy_dir)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():  # tied embeddings are one parameter: perturbed once
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return model


def model_logprobs(model, ids: list[int]) -> list[float]:
    with torch.no_grad():
        x = torch.tensor([ids])
        return model(x).logits.float().log_softmax(-1)[0, :-1].gather(-1, x[0, 1:, None]).squeeze(-1).tolist()


def test_hf_load_weights_replaces_the_policy_and_sets_version(policy_dir, prompt_ids):
    worker = hf_worker(policy_dir)
    ids = prompt_ids[0] + [worker.layout.audio_offset + k for k in (3, 1, 4, 1, 5)]
    before = np.asarray(worker.sequence_logprobs(ids))
    learner = perturbed(policy_dir)
    expected = np.asarray(model_logprobs(learner, ids))
    assert np.abs(before - expected).max() > 1e-2
    assert worker.load_weights(FlatWeights.from_state_dict(learner.state_dict(), torch.float32), version=7) == 7
    assert worker.version == worker.ping() == 7
    np.testing.assert_allclose(worker.sequence_logprobs(ids), expected, atol=1e-5)
    state = learner.state_dict()
    state["model.not_a_weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="unexpected"):
        worker.load_weights(FlatWeights.from_state_dict(state, torch.float32), version=8)


VLLM_SCRIPT = r"""
import json, sys

if __name__ == "__main__":
    import torch

    from tts.base.weights import FlatWeights
    from tts.rollout import RolloutConfig, RolloutWorker

    policy, weights, ids, prompt = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
    cfg = RolloutConfig(backend="vllm", group_size=2, max_new_tokens=12, temperature=1.0, max_model_len=512)
    worker = RolloutWorker(policy, cfg, seed=0)
    out = {"before": worker.sequence_logprobs(ids)}
    out["version"] = worker.load_weights(FlatWeights.from_state_dict(torch.load(weights), torch.float32), version=5)
    out["ping"] = worker.ping()
    out["after"] = worker.sequence_logprobs(ids)
    group = worker.generate([prompt], seeds=[0])[0]
    out["completions"] = [[c.token_ids, c.logprobs, c.finish] for c in group]
    worker.cfg.min_codes_per_char = 2.0
    out["floored"] = [len(c.token_ids) for c in worker.generate([prompt], [0], n=4, texts=["xxxxx"])[0]]
    worker.cfg.min_codes_per_char = 0.0
    # a worker's whole share in one stream: more prompt tokens than one step's budget (prefills over several
    # steps), each group yielded once, equal to the same prompt generated on its own under its seed
    many = [((prompt[k:] + prompt[:k]) * 300)[:300] + prompt for k in range(12)]  # distinct: no shared prefix
    seen = [(k, [c.token_ids for c in g]) for k, g in worker.generate_stream(many, list(range(12)), n=4)]
    alone = [c.token_ids for c in worker.generate(many[:1], [7], n=4)[0]]
    out["stream"] = {"order": [k for k, _ in seen], "same": dict(seen)[7] == alone}
    print("RESULT", json.dumps(out), flush=True)
"""


def test_reload_filter_drops_only_the_rotary_cache_warning():
    """A layer with real weights that fails to load must still be heard."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    log = logging.getLogger(RELOAD_LOGGER + ".test")
    log.addFilter(RotaryReloadFilter())
    log.addHandler(handler)
    log.warning("%s: Failed to load weights", "RotaryEmbedding")
    log.warning("%s: Failed to load weights", "QKVParallelLinear")
    assert [r.getMessage() for r in records] == ["QKVParallelLinear: Failed to load weights"]


@pytest.mark.slow
def test_vllm_weight_sync_reaches_the_engine(policy_dir, prompt_ids, tmp_path):
    """The engine scores a fixed sequence with the start policy before the sync and with the learner's weights
    after it (fp32, atol 1e-3); its sampled completions then carry the learner's raw log-probs."""
    layout = TokenLayout.load(policy_dir)
    ids = prompt_ids[0] + [layout.audio_offset + k for k in (3, 1, 4, 1, 5, 9, 2, 6)] + [layout.speech_end_id]
    start, _, _ = load_speechlm(policy_dir)
    learner = perturbed(policy_dir)
    state = {k: v for k, v in learner.state_dict().items() if k != "lm_head.weight"}  # tied: the learner sends it once
    torch.save(state, tmp_path / "weights.pt")
    script = tmp_path / "vllm_sync.py"
    script.write_text(VLLM_SCRIPT)
    res = subprocess.run(
        [sys.executable, str(script), str(policy_dir), str(tmp_path / "weights.pt"), json.dumps(ids)]
        + [json.dumps(prompt_ids[0])],
        capture_output=True,
        text=True,
        timeout=800,
    )
    lines = [line for line in res.stdout.splitlines() if line.startswith("RESULT ")]
    assert res.returncode == 0 and lines, res.stderr[-4000:]
    assert "Failed to load weights" not in res.stdout + res.stderr  # the rotary cache's warning is filtered
    out = json.loads(lines[0][len("RESULT ") :])
    expected = np.asarray(model_logprobs(learner, ids))
    np.testing.assert_allclose(out["before"], model_logprobs(start, ids), atol=1e-3)
    assert np.abs(np.asarray(out["before"]) - expected).max() > 1e-2  # the sync has something to change
    np.testing.assert_allclose(out["after"], expected, atol=1e-3)
    assert out["version"] == out["ping"] == 5
    assert len(out["completions"]) == 2
    assert min(out["floored"]) >= 10  # min_tokens: <|speech_end|> masked for 2 codes/char x 5 characters
    assert sorted(out["stream"]["order"]) == list(range(12)) and out["stream"]["same"]
    for token_ids, logprobs, finish in out["completions"]:
        arr = np.asarray(token_ids)
        assert (layout.is_audio(arr) | (arr == layout.speech_end_id)).all()
        assert (finish == "stop") == (token_ids[-1] == layout.speech_end_id)
        learner_lp = completion_logprobs(lambda x: model_logprobs(learner, x), prompt_ids[0], token_ids)
        np.testing.assert_allclose(logprobs, learner_lp, atol=1e-3)


@pytest.fixture(scope="module")
def words_policy(policy_dir, tmp_path_factory):
    """The tiny policy, declared word-synchronous (its weights never learnt the layout: the decoding rules are
    what these tests check, not what the model says)."""
    out = tmp_path_factory.mktemp("words_policy")
    shutil.copytree(policy_dir, out, dirs_exist_ok=True)
    dataclasses.replace(TokenLayout.load(out), interleave="words").save(out)
    return out


def word_sync_prompts(policy: Path) -> tuple[list[list[int]], list[list[list[int]]]]:
    tokenizer, layout = AutoTokenizer.from_pretrained(policy), TokenLayout.load(policy)
    texts = ["The cat sat on the mat.", "A second sentence, said slowly."]
    words = [prompts.encode_words(tokenizer, layout, t) for t in texts]
    ids = [
        prompts.inference(layout, [t for w in ws for t in w], first_word=ws[0], **ref).input_ids
        for ws, ref in zip(words, [{"ref_text_ids": [5, 6], "ref_codes": np.arange(10)}, {}])
    ]
    return ids, words


def check_word_sync(layout: TokenLayout, completion: list[int], finish: str, words: list[list[int]]) -> int:
    """The completion writes whole words, in order, and stops only once every word is written; returns how many
    words the model started."""
    written = [t for t in completion if not layout.is_audio(t) and t != layout.speech_end_id]
    flat = [t for w in words[1:] for t in w]
    assert written == flat[: len(written)]
    if finish == "stop":
        assert written == flat and completion[-1] == layout.speech_end_id
    # a word, once started, is written to its end before any audio
    pos = 0
    for w in words[1:]:
        if pos >= len(completion) or completion[pos:].count(w[0]) == 0:
            break
        start = completion.index(w[0], pos)
        if start + len(w) <= len(completion):
            assert completion[start : start + len(w)] == w
        pos = start + len(w)
    return len([w for w in words[1:] if w[0] in written])


def test_hf_word_synchronous_generation_writes_the_words_it_is_given(words_policy, policy_dir, prompt_ids):
    ids, words = word_sync_prompts(words_policy)
    layout = TokenLayout.load(words_policy)
    worker = hf_worker(words_policy, max_new_tokens=300, group_size=3)
    groups = worker.generate(ids, seeds=[1, 2], words=words)
    started = 0
    for prompt, group, ws in zip(ids, groups, words):
        for c in group:
            started += check_word_sync(layout, c.token_ids, c.finish, ws)
            expected = completion_logprobs(worker.sequence_logprobs, prompt, c.token_ids)
            np.testing.assert_allclose(c.logprobs, expected, atol=1e-4)  # raw: forced tokens too
    assert started > 0  # the model did start words, which the engine then wrote
    with pytest.raises(ValueError, match="needs the words of each of the 2 prompts"):
        worker.generate(ids, seeds=[1, 2])
    with pytest.raises(ValueError, match="not word-synchronous"):
        hf_worker(policy_dir).generate(prompt_ids[:1], seeds=[0], words=words[:1])


def test_a_word_synchronous_policy_takes_no_floor(words_policy):
    """The engine writes every word, so speech cannot end before it is said: the `min_codes_per_char` floor is off
    for such a policy. Kept on, it would hold back the <|speech_end|> that `max_codes_per_word` forces after the
    last word, leaving nothing to sample."""
    ids, words = word_sync_prompts(words_policy)
    texts = ["The cat sat on the mat.", "A second sentence, said slowly."]
    cfg = {"max_new_tokens": 300, "group_size": 2, "min_codes_per_char": 5.0, "max_codes_per_word": 1}
    groups = hf_worker(words_policy, **cfg).generate(ids, seeds=[1, 2], texts=texts, words=words)
    layout = TokenLayout.load(words_policy)
    for group, ws in zip(groups, words):
        for c in group:  # one code per word at most, then the next word; the end right after the last word's code
            assert c.finish == "stop" and check_word_sync(layout, c.token_ids, c.finish, ws) == len(ws) - 1
            assert sum(layout.is_audio(t) for t in c.token_ids) <= len(ws) < 5 * len(texts[0])


VLLM_WORDS_SCRIPT = r"""
import json, sys

if __name__ == "__main__":
    from tts.rollout import RolloutConfig, RolloutWorker

    policy, ids, words = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    cfg = RolloutConfig(backend="vllm", group_size=3, max_new_tokens=300, temperature=1.0, max_model_len=512)
    worker = RolloutWorker(policy, cfg, seed=0)
    groups = worker.generate(ids, seeds=[1, 2], words=words)
    out = [[[c.token_ids, c.logprobs, c.finish] for c in g] for g in groups]
    print("RESULT", json.dumps(out), flush=True)
"""


@pytest.mark.slow
def test_vllm_word_synchronous_generation_writes_the_words_it_is_given(words_policy, tmp_path):
    """The same rules inside vLLM (its logits processor, tts.vllm_word_sync), with the engine's raw log-probs."""
    ids, words = word_sync_prompts(words_policy)
    layout = TokenLayout.load(words_policy)
    script = tmp_path / "vllm_words.py"
    script.write_text(VLLM_WORDS_SCRIPT)
    res = subprocess.run(
        [sys.executable, str(script), str(words_policy), json.dumps(ids), json.dumps(words)],
        capture_output=True,
        text=True,
        timeout=800,
    )
    lines = [line for line in res.stdout.splitlines() if line.startswith("RESULT ")]
    assert res.returncode == 0 and lines, res.stderr[-4000:]
    model, _, _ = load_speechlm(words_policy)
    started = 0
    for prompt, group, ws in zip(ids, json.loads(lines[0][len("RESULT ") :]), words):
        assert len(group) == 3
        for token_ids, logprobs, finish in group:
            started += check_word_sync(layout, token_ids, finish, ws)
            expected = completion_logprobs(lambda x: model_logprobs(model, x), prompt, token_ids)
            np.testing.assert_allclose(logprobs, expected, atol=1e-3)
    assert started > 0
