"""Synthesis seeds depend only on (seed, utterance id): batching and resuming sample the same audio."""

from __future__ import annotations

from evals.synthesize import utterance_seed


def test_utterance_seed_is_stable_and_distinct():
    assert utterance_seed(0, "en_08_00000") == utterance_seed(0, "en_08_00000")
    seeds = {utterance_seed(0, f"u{k}") for k in range(1000)}
    assert len(seeds) == 1000 and all(0 <= s < 2**31 for s in seeds)
    assert utterance_seed(1, "u0") != utterance_seed(0, "u0")


def test_without_a_reference_the_request_holds_no_audio_and_only_one_decode_is_made():
    """Professional cloning (a LoRA voice) is measured by speaking without the prompt's reference; the prompt
    audio is then only what SIM compares with."""
    import numpy as np

    from evals.config import SynthesisConfig
    from evals.meta import EvalItem
    from evals.synthesize import Synthesizer
    from tts.speechlm import open_speechlm

    model = open_speechlm("tts/checkpoints/speechlm-embedded")
    item = EvalItem("u", "A prompt text.", "/p.wav", "Read this sentence.", "en")
    codes = np.zeros(40, np.int64)  # 40 frames of reference audio
    made = {}
    for reference in (True, False):
        synth = object.__new__(Synthesizer)
        synth.cfg, synth.tokenizer, synth.layout = SynthesisConfig(reference=reference), model.tokenizer, model.layout
        made[reference] = synth._request(item, codes).input_ids
    audio = [sum(map(model.layout.is_audio, ids)) for ids in (made[True], made[False])]
    assert audio[0] >= 40 and audio[1] == 0 and len(made[True]) > len(made[False]) + 40
    assert SynthesisConfig().variants == ["prompt", "no_prompt"]
    assert SynthesisConfig(reference=False).variants == ["prompt"] == SynthesisConfig(without_prompt=False).variants


def test_a_word_synchronous_rendering_is_timed_word_by_word_from_its_own_tokens():
    """The words' start times come from where the model wrote each word among its codes: a non-verbal tag's sound
    is located exactly (evals.markups), not guessed from the rendering's length."""
    import numpy as np

    from evals.config import SynthesisConfig
    from evals.meta import EvalItem
    from evals.synthesize import Synthesizer
    from tts.speechlm import open_speechlm

    model = open_speechlm("tts/checkpoints/speechlm-embedded")  # word-synchronous
    synth = object.__new__(Synthesizer)
    synth.cfg, synth.tokenizer, synth.layout = SynthesisConfig(), model.tokenizer, model.layout
    req = synth._request(
        EvalItem("u", "A prompt.", "/p.wav", "Read this sentence now. [laugh]", "en"), np.zeros(10, np.int64)
    )
    words, code = req.words, model.layout.audio_offset
    assert len(words) >= 5
    # word 0 (in the prompt) gets 3 codes, each later word 2, except one with none, then 5 for the tag
    completion = [code] * 3
    for w in words[1:-2]:
        completion += [*w, code, code]
    completion += [*words[-2], *words[-1], *[code] * 5, model.layout.speech_end_id]
    times = synth._word_times(req, completion, per_code=0.02)
    assert [t for _, t in times[:-2]] == [0.0] + [round(0.02 * (1 + 2 * k), 3) for k in range(1, len(words) - 2)]
    assert times[-2][1] is None  # the model went straight on to the tag
    assert times[-1] == ["[laugh]", round(0.02 * (1 + 2 * (len(words) - 2)), 3)]
