"""Codec-decoder actors (tts/codec/decoders.py): in this process, and (slow) as a Ray pool that survives a kill."""

from __future__ import annotations

import numpy as np
import pytest
import ray

from tts.codec import load_codec
from tts.codec.decoders import DecodeItem, DecoderActor, DecoderConfig, decoder_pool


def codes(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 64, n)


@pytest.fixture(scope="module")
def codec(codec_dir):
    return load_codec(codec_dir)


def test_decode_batch_cuts_the_context_and_isolates_bad_items(codec_dir, codec):
    actor = DecoderActor(str(codec_dir), {"threads": 1})
    assert actor.ping() and actor.info() == {"sample_rate": codec.sample_rate, "codebook_size": 64, "device": "cpu"}
    ctx, a, b = codes(40, 0), codes(15, 1), codes(9, 2)
    out = actor.decode_batch(
        [
            DecodeItem(a, ctx),
            DecodeItem(np.zeros(0, np.int64), ctx),  # the model stopped at once: no codes
            DecodeItem(b),
            DecodeItem(np.array([3, 64, 5]), ctx),  # out of the codebook
        ]
    )
    assert len(out) == 4 and all(d.sr == codec.sample_rate for d in out)
    hop = codec.hop_length
    assert out[0].error is None and len(out[0].wave) == len(a) * hop
    np.testing.assert_array_equal(out[0].wave, codec.decode(np.concatenate([ctx, a]))[len(ctx) * hop :])
    assert np.abs(out[0].wave - codec.decode(a)).max() > 1e-3  # the context shaped the decoded tail
    assert out[2].error is None
    np.testing.assert_array_equal(out[2].wave, codec.decode(b))
    assert out[1].wave is None and out[1].error.startswith("decode: ValueError") and "non-empty" in out[1].error
    assert out[3].wave is None and "code 64 at position 1 is outside [0, 64)" in out[3].error


def test_items_sharing_a_context_decode_in_one_batch_as_one_by_one(codec_dir, codec, monkeypatch):
    """A GRPO group (one prompt's context, many completions) is one padded decode_batch call on the codec, and each
    wave equals the item decoded on its own."""
    actor = DecoderActor(str(codec_dir), {"threads": 1})
    calls = []
    batch = actor.codec.decode_batch
    monkeypatch.setattr(actor.codec, "decode_batch", lambda codes: calls.append(len(codes)) or batch(codes))
    ctx, other = codes(30, 0), codes(20, 9)
    items = [DecodeItem(codes(n, n), ctx) for n in (12, 7, 19)] + [
        DecodeItem(codes(5, 5), other),
        DecodeItem(codes(8, 8)),
    ]
    out = actor.decode_batch(items)
    assert sorted(calls) == [1, 1, 3]  # three contexts (one shared by three items, another, none): three batches
    for item, d in zip(items, out):
        assert d.error is None and len(d.wave) == len(item.codes) * codec.hop_length
        np.testing.assert_allclose(d.wave, codec.decode_with_context(item.codes, item.context), atol=1e-5)


def test_only_the_contexts_tail_is_decoded(codec_dir, codec):
    """prompt_context codes of the reference's tail go before each completion (as Serve streams); 0: none."""
    ctx, a = codes(60, 0), codes(15, 1)
    hop = codec.hop_length
    for keep, expected in ((10, codec.decode(np.concatenate([ctx[-10:], a]))[10 * hop :]), (0, codec.decode(a))):
        (got,) = DecoderActor(str(codec_dir), {"prompt_context": keep}).decode_batch([DecodeItem(a, ctx)])
        assert got.error is None
        np.testing.assert_array_equal(got.wave, expected)
    (full,) = DecoderActor(str(codec_dir), {"prompt_context": None}).decode_batch([DecodeItem(a, ctx)])
    assert np.abs(full.wave - codec.decode(a)).max() > 1e-3


def test_settings_are_checked():
    with pytest.raises(ValueError, match="decoder.device"):
        DecoderConfig(device="tpu")
    for bad in (-1, True):
        with pytest.raises(ValueError, match="decoder.prompt_context"):
            DecoderConfig(prompt_context=bad)
    assert DecoderActor(None, {"device": "auto", "num_gpus": 0}).device == "cpu"  # no GPU given: the CPU


def test_encode_files_matches_the_codec(codec_dir, codec, corpus):
    wavs = sorted((corpus.parent / "wavs" / "en").rglob("*.wav"))[:2]
    actor = DecoderActor(str(codec_dir), {})
    got = actor.encode_files([str(w) for w in wavs])
    assert len(got) == 2
    for w, c in zip(wavs, got):
        np.testing.assert_array_equal(c, codec.encode_file(w))


@pytest.fixture(scope="module")
def ray_local():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_pool_replaces_a_killed_decoder_and_returns_every_item(ray_local, codec_dir, codec):
    pool = decoder_pool(str(codec_dir), DecoderConfig(actors=1, batch_size=2, num_cpus=0.5))
    pool.wait_ready()
    ctx = codes(200, 0)
    items = [DecodeItem(codes(300, k + 1), ctx) for k in range(6)]  # three chunks queued on the one actor
    pending = pool.submit(items)
    ray.kill(pool.actors[0])
    out = pool.gather(pending)
    assert pool.replaced == 1  # the chunks queued on the dead actor share one replacement
    assert len(out) == 6
    for item, d in zip(items, out):
        assert d.error is None
        np.testing.assert_array_equal(
            d.wave, codec.decode_with_context(item.codes, ctx[-DecoderConfig.prompt_context :])
        )
    assert ray.get(pool.actors[0].ping.remote())
    pool.shutdown()
