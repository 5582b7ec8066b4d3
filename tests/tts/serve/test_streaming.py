"""The streaming algorithm: exact with a local decoder, close and seamless with a WORLD-VQ decoder."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tts.serve.codecs import ToneCodec, burst_codec, bursts
from tts.serve.streaming import StreamingConfig, StreamingDecoder, stream_decode, window_peak


def arrivals(codes: np.ndarray, step: int) -> list[np.ndarray]:
    return [codes[i : i + step] for i in range(0, len(codes), step)]


def speechlike_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Runs of voiced codes (1..7) separated by runs of silence (0)."""
    out: list[int] = []
    while len(out) < n:
        out += [int(rng.integers(1, 8))] * int(rng.integers(3, 20)) + [0] * int(rng.integers(2, 6))
    return np.asarray(out[:n])


@pytest.mark.parametrize("step", [1, 7, 40])
def test_streamed_equals_full_decode_with_a_local_decoder(step):
    codec, cfg = ToneCodec(), StreamingConfig(first_chunk=5, chunk=10, left_context=2, lookahead=1)
    rng = np.random.default_rng(step)
    prompt, codes = speechlike_codes(rng, 30), speechlike_codes(rng, 300)
    chunks = list(stream_decode(codec, cfg, arrivals(codes, step), prompt))
    assert len(chunks) > 5
    np.testing.assert_allclose(np.concatenate(chunks), codec.decode_with_context(codes, prompt), atol=1e-6)


def test_cuts_after_the_first_fall_in_non_voicing_regions():
    codec, cfg = ToneCodec(), StreamingConfig(first_chunk=5, chunk=10, left_context=2, lookahead=1)
    codes = speechlike_codes(np.random.default_rng(0), 300)
    chunks = list(stream_decode(codec, cfg, arrivals(codes, 3)))
    seams = np.cumsum([len(c) for c in chunks])[:-1]
    full = codec.decode(codes)
    radius = round(cfg.silence_radius_ms * codec.sample_rate / 1000)
    # the first chunk is cut even in voicing (time to first audio); every later seam lies in silence
    assert (window_peak(full, seams[1:], radius) < cfg.silence_threshold).all()


def test_without_silence_cuts_are_forced_and_latency_bounded():
    codec = ToneCodec()
    cfg = StreamingConfig(first_chunk=5, chunk=10, left_context=2, lookahead=1, max_pending=30)
    codes = np.random.default_rng(1).integers(1, 8, 200)  # never silent
    chunks = list(stream_decode(codec, cfg, arrivals(codes, 1)))
    lengths = [len(c) // codec.hop_length for c in chunks]
    assert lengths[0] <= cfg.first_chunk and max(lengths[:-1]) <= cfg.max_pending + cfg.chunk
    np.testing.assert_allclose(np.concatenate(chunks), codec.decode(codes), atol=1e-6)


def test_first_chunk_is_emitted_after_first_chunk_plus_lookahead_codes():
    codec, cfg = ToneCodec(), StreamingConfig(first_chunk=4, chunk=10, lookahead=2)
    dec = StreamingDecoder(cfg, codec.hop_length, codec.sample_rate)
    dec.push([3] * 5)
    assert dec.next_decode() is None
    dec.push([3])
    job = dec.next_decode()
    out = dec.take(job, codec.decode_with_context(job.codes, job.context))
    assert 0 < len(out) <= 4 * codec.hop_length
    assert len(dec.committed) + len(dec.pending) == 6


def test_decoded_length_is_checked():
    dec = StreamingDecoder(StreamingConfig(), 320, 16000)
    dec.push(range(20))
    with pytest.raises(ValueError, match="decoded 10 samples"):
        dec.take(dec.next_decode(final=True), np.zeros(10))


@pytest.mark.parametrize("bad", [{"chunk": 0}, {"lookahead": -1}, {"max_pending": 5}, {"silence_threshold": 0.0}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        StreamingConfig(**bad)


@pytest.fixture(scope="module")
def world():
    codec = burst_codec()
    return codec, codec.encode(bursts(3.0, seed=2), 16000), codec.encode(bursts(1.0, seed=3), 16000)


def test_world_vq_stream_matches_full_decode_closely(world):
    codec, codes, prompt = world
    chunks = list(stream_decode(codec, StreamingConfig(), arrivals(codes, 3), prompt))
    streamed, full = np.concatenate(chunks), codec.decode_with_context(codes, prompt)
    assert len(chunks) >= 4 and streamed.shape == full.shape
    # WORLD's noise excitation differs between calls, so compare 20 ms loudness, not samples
    frame_db = [20 * np.log10(np.sqrt((x.reshape(-1, 320) ** 2).mean(1)) + 1e-4) for x in (streamed, full)]
    diff = np.abs(frame_db[0] - frame_db[1])
    assert np.median(diff) < 0.5 and np.quantile(diff, 0.95) < 3.0


def test_world_vq_seams_are_smooth_and_chunk_loudness_stable(world):
    codec, codes, prompt = world
    chunks = list(stream_decode(codec, StreamingConfig(), arrivals(codes, 3), prompt))
    streamed, full = np.concatenate(chunks), codec.decode_with_context(codes, prompt)
    seams = np.cumsum([len(c) for c in chunks])[:-1]
    assert np.abs(streamed[seams] - streamed[seams - 1]).max() < 0.02
    start = 0
    for chunk in chunks:
        span = full[start : start + len(chunk)]
        start += len(chunk)
        rms = [np.sqrt((x**2).mean()) + 1e-4 for x in (chunk, span)]
        assert abs(20 * np.log10(rms[0] / rms[1])) < 1.0


@pytest.mark.parametrize("fmt", ["pcm", "wav", "opus"])
def test_served_chunks_are_watermarked_as_the_whole_audio(fmt):
    """Every response's audio passes the watermark in the encoder: streamed chunk by chunk it is the same audio as
    marked whole (filter state carries across chunks, no seams), and the mark is found in the bytes sent."""
    import io
    import shutil

    import soundfile as sf

    from tts.base.watermark import WatermarkConfig, detect, embed
    from tts.corpus.generate import speak
    from tts.serve.formats import AudioEncoder, encode_whole, pcm16
    from tts.serve.voices import corpus_speaker

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not on PATH")
    wave = speak(corpus_speaker("en_09"), "The quick brown fox jumps over the lazy dog near the bank.", 16000)
    cfg = WatermarkConfig()
    enc = AudioEncoder(fmt, 16000, watermark=cfg)
    cuts = np.cumsum(np.random.default_rng(0).integers(1, 6000, 40))
    streamed = b"".join(enc.add(c) for c in np.split(wave, cuts[cuts < len(wave)])) + enc.close()
    whole = encode_whole(fmt, wave, 16000, cfg)
    if fmt == "pcm":
        sent, marked = (np.frombuffer(b, "<i2").astype(int) for b in (streamed, pcm16(embed(wave, 16000, cfg))))
        assert len(sent) == len(wave) and np.abs(sent - marked).max() <= 1  # float rounding at most
        assert np.abs(sent - np.frombuffer(whole, "<i2")).max() <= 1
        assert encode_whole(fmt, wave, 16000, WatermarkConfig(enabled=False)) == pcm16(wave)
        return
    for data in (streamed, whole):
        audio, sr = sf.read(io.BytesIO(data), dtype="float32")
        assert detect(audio, sr, cfg).watermarked
        assert not detect(audio, sr, WatermarkConfig(key="another")).watermarked
