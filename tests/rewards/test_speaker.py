"""Tests for speaker similarity (rewards/speaker.py): resemblyzer on espeak-ng voices, WavLM x-vector from a
tiny random checkpoint, and the UniSpeech WavLM+ECAPA-TDNN loader on a synthetic checkpoint in UniSpeech naming."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector, WavLMModel

import rewards.speaker as speaker
from rewards.speaker import (
    BACKENDS,
    EcapaConfig,
    WavLMEcapa,
    load_speaker_encoder,
    similarity,
    unispeech_to_model_state,
)
from rewards.weights import WeightsError
from tts.base.audio import AudioError, resample
from tts.corpus.generate import speak
from tts.corpus.voices import Speaker

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not on PATH")
SR = 16000
SENTENCE_1 = "The quick brown fox jumps over the lazy dog near the river bank."
SENTENCE_2 = "Please call Stella and ask her to bring these things with her from the store."


def _tone(seconds: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


# --- resemblyzer on espeak-ng voices ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resemblyzer():
    return load_speaker_encoder("resemblyzer")


@pytest.fixture(scope="module")
def voices():
    male = Speaker("m", "en", "en-us+m1", 45, 165)
    female = Speaker("f", "en", "en-us+f4", 60, 170)
    return {
        "m1": speak(male, SENTENCE_1, SR),
        "m2": speak(male, SENTENCE_2, SR),
        "f2": speak(female, SENTENCE_2, SR),
    }


@needs_espeak
def test_same_voice_scores_above_other_voice(resemblyzer, voices):
    same = similarity(resemblyzer, voices["m1"], SR, voices["m2"], SR)  # measured 0.83
    other = similarity(resemblyzer, voices["m1"], SR, voices["f2"], SR)  # measured 0.57
    assert -1.0 <= other < same <= 1.0
    assert same - other > 0.15


@needs_espeak
def test_similarity_is_symmetric_and_resampling_invariant(resemblyzer, voices):
    forward = similarity(resemblyzer, voices["m1"], SR, voices["f2"], SR)
    assert similarity(resemblyzer, voices["f2"], SR, voices["m1"], SR) == pytest.approx(forward, abs=1e-6)
    at_24k = resample(voices["f2"], SR, 24000)
    assert similarity(resemblyzer, voices["m1"], SR, at_24k, 24000) == pytest.approx(forward, abs=0.02)


@needs_espeak
def test_resemblyzer_batch_equals_single(resemblyzer, voices):
    waves, srs = [voices["m1"], resample(voices["f2"], SR, 22050)], [SR, 22050]
    batch = resemblyzer.embed_batch(waves, srs)
    assert batch.shape == (2, 256) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, np.stack([resemblyzer.embed(w, sr) for w, sr in zip(waves, srs)]), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)


@needs_espeak
def test_resemblyzer_short_clip_falls_back_to_unprocessed_audio(resemblyzer, voices):
    clip = voices["m1"][SR // 2 : SR // 2 + int(0.15 * SR)]  # webrtcvad keeps (almost) none of 150 ms
    emb = resemblyzer.embed(clip, SR)
    assert np.isfinite(emb).all() and np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-5)


def test_resemblyzer_rejects_a_changed_weights_file(monkeypatch):
    monkeypatch.setattr(speaker, "RESEMBLYZER_DIGEST", "0" * 64)
    with pytest.raises(WeightsError, match="SHA-256"):
        load_speaker_encoder("resemblyzer")


@pytest.mark.parametrize("wave", [np.zeros(0, np.float32), np.full(1600, np.nan, np.float32)], ids=["empty", "nan"])
def test_unusable_audio_raises_audio_error(resemblyzer, wave):
    with pytest.raises(AudioError, match="generated audio"):
        similarity(resemblyzer, wave, SR, _tone(1.0), SR)
    with pytest.raises(AudioError):
        resemblyzer.embed_batch([_tone(1.0), wave], [SR, SR])


def test_unknown_backend_lists_known_ones():
    with pytest.raises(ValueError, match="unknown speaker backend 'ecapa'.*resemblyzer.*wavlm.*wavlm_ecapa"):
        load_speaker_encoder("ecapa")
    assert BACKENDS == ("resemblyzer", "wavlm", "wavlm_ecapa")


# --- wavlm: transformers WavLMForXVector --------------------------------------------------------------------

TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    conv_dim=(16, 16, 16),
    conv_kernel=(10, 3, 3),
    conv_stride=(5, 2, 2),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
    num_buckets=32,
    max_bucket_distance=64,
)


@pytest.fixture(scope="module")
def xvector_dir(tmp_path_factory):
    torch.manual_seed(0)
    config = WavLMConfig(**TINY, tdnn_dim=(16, 16, 16, 16, 24), xvector_output_dim=12)
    path = tmp_path_factory.mktemp("wavlm-xvector")
    WavLMForXVector(config).save_pretrained(path)
    Wav2Vec2FeatureExtractor(sampling_rate=SR, do_normalize=True).save_pretrained(path)
    return path


def test_wavlm_xvector_embeddings(xvector_dir):
    enc = load_speaker_encoder("wavlm", str(xvector_dir))
    waves, srs = [_tone(1.0, 1), resample(_tone(0.7, 2), SR, 8000)], [SR, 8000]
    batch = enc.embed_batch(waves, srs)
    assert batch.shape == (2, 12) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batch[1], enc.embed(waves[1], 8000), atol=1e-5)
    assert -1.0 <= similarity(enc, waves[0], SR, waves[1], 8000) <= 1.0
    with pytest.raises(AudioError, match="too short"):
        enc.embed(_tone(0.01), SR)


def test_wavlm_needs_an_existing_checkpoint_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_speaker_encoder("wavlm", str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="needs path"):
        load_speaker_encoder("wavlm")


# --- wavlm_ecapa: UniSpeech checkpoint layout ---------------------------------------------------------------

ECAPA = EcapaConfig(channels=16, mfa_channels=24, emb_dim=8, bottleneck=8, scale=8)
BACKBONE = WavLMConfig(**TINY, feat_extract_norm="layer", do_stable_layer_norm=True)


def _unispeech_checkpoint(cfg: WavLMConfig, head: EcapaConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under the names UniSpeech's ECAPA_TDNN(feat_type='wavlm_large').state_dict() uses."""
    gen = torch.Generator().manual_seed(seed)
    shapes: dict[str, tuple[int, ...]] = {}
    h, inter, heads, k = cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, cfg.num_conv_pos_embeddings
    fe = "feature_extract.model."
    cin = 1
    for i, (dim, kernel) in enumerate(zip(cfg.conv_dim, cfg.conv_kernel)):
        shapes[f"{fe}feature_extractor.conv_layers.{i}.0.weight"] = (dim, cin, kernel)
        shapes[f"{fe}feature_extractor.conv_layers.{i}.2.1.weight"] = shapes[
            f"{fe}feature_extractor.conv_layers.{i}.2.1.bias"
        ] = (dim,)
        cin = dim
    shapes |= {f"{fe}layer_norm.weight": (cin,), f"{fe}layer_norm.bias": (cin,), f"{fe}mask_emb": (h,)}
    shapes |= {f"{fe}post_extract_proj.weight": (h, cin), f"{fe}post_extract_proj.bias": (h,)}
    shapes |= {f"{fe}encoder.pos_conv.0.weight_g": (1, 1, k), f"{fe}encoder.pos_conv.0.bias": (h,)}
    shapes[f"{fe}encoder.pos_conv.0.weight_v"] = (h, h // cfg.num_conv_pos_embedding_groups, k)
    shapes |= {f"{fe}encoder.layer_norm.weight": (h,), f"{fe}encoder.layer_norm.bias": (h,)}
    for n in range(cfg.num_hidden_layers):
        layer = f"{fe}encoder.layers.{n}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes |= {f"{layer}self_attn.{proj}.weight": (h, h), f"{layer}self_attn.{proj}.bias": (h,)}
        shapes |= {f"{layer}self_attn.grep_linear.weight": (8, h // heads), f"{layer}self_attn.grep_linear.bias": (8,)}
        shapes[f"{layer}self_attn.grep_a"] = (1, heads, 1, 1)
        if n == 0:
            shapes[f"{layer}self_attn.relative_attention_bias.weight"] = (cfg.num_buckets, heads)
        shapes |= {f"{layer}fc1.weight": (inter, h), f"{layer}fc1.bias": (inter,)}
        shapes |= {f"{layer}fc2.weight": (h, inter), f"{layer}fc2.bias": (h,)}
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            shapes |= {f"{layer}{norm}.weight": (h,), f"{layer}{norm}.bias": (h,)}

    c, mfa, b, w = head.channels, head.mfa_channels, head.bottleneck, head.channels // head.scale

    def conv_bn(prefix: str, cout: int, cin: int, kernel: int, conv: str = "conv", bn: str = "bn") -> None:
        shapes.update({f"{prefix}{conv}.weight": (cout, cin, kernel), f"{prefix}{conv}.bias": (cout,)})
        for stat in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}{bn}.{stat}"] = (cout,)

    shapes["feature_weight"] = (cfg.num_hidden_layers + 1,)
    conv_bn("layer1.", c, h, 5)
    for block in ("layer2.", "layer3.", "layer4."):
        conv_bn(f"{block}Conv1dReluBn1.", c, c, 1)
        for j in range(head.scale - 1):
            conv_bn(f"{block}Res2Conv1dReluBn.", w, w, 3, conv=f"convs.{j}", bn=f"bns.{j}")
        conv_bn(f"{block}Conv1dReluBn2.", c, c, 1)
        shapes |= {f"{block}SE_Connect.linear1.weight": (b, c), f"{block}SE_Connect.linear1.bias": (b,)}
        shapes |= {f"{block}SE_Connect.linear2.weight": (c, b), f"{block}SE_Connect.linear2.bias": (c,)}
    shapes |= {"conv.weight": (mfa, 3 * c, 1), "conv.bias": (mfa,)}
    shapes |= {"pooling.linear1.weight": (b, mfa, 1), "pooling.linear1.bias": (b,)}
    shapes |= {"pooling.linear2.weight": (mfa, b, 1), "pooling.linear2.bias": (mfa,)}
    for stat in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"bn.{stat}"] = (2 * mfa,)
    shapes |= {"linear.weight": (head.emb_dim, 2 * mfa), "linear.bias": (head.emb_dim,)}

    state = {}
    for name, shape in shapes.items():
        value = 0.3 * torch.randn(shape, generator=gen)
        if name.endswith("running_var"):
            value = 0.5 + torch.rand(shape, generator=gen)
        state[name] = value
    for name in [n for n in state if n.endswith("running_var")]:
        state[name.replace("running_var", "num_batches_tracked")] = torch.tensor(7)
    state["loss_calculator.projection.weight"] = torch.randn(5, head.emb_dim, generator=gen)  # training-only head
    return state


def _reference_embedding(sd: dict[str, torch.Tensor], cfg: WavLMConfig, head: EcapaConfig, wave: np.ndarray):
    """UniSpeech's forward written out independently: transformers WavLM modules filled attribute by attribute,
    s3prl's hidden-state hooks, and the ECAPA-TDNN head as functional ops on the checkpoint tensors."""
    fe = "feature_extract.model."
    wavlm = WavLMModel(cfg).eval()

    def put(param: torch.nn.Parameter, key: str) -> None:
        param.data.copy_(sd[fe + key])

    for i, layer in enumerate(wavlm.feature_extractor.conv_layers):
        put(layer.conv.weight, f"feature_extractor.conv_layers.{i}.0.weight")
        put(layer.layer_norm.weight, f"feature_extractor.conv_layers.{i}.2.1.weight")
        put(layer.layer_norm.bias, f"feature_extractor.conv_layers.{i}.2.1.bias")
    for p in ("weight", "bias"):
        put(getattr(wavlm.feature_projection.layer_norm, p), f"layer_norm.{p}")
        put(getattr(wavlm.feature_projection.projection, p), f"post_extract_proj.{p}")
        put(getattr(wavlm.encoder.layer_norm, p), f"encoder.layer_norm.{p}")
    for n, layer in enumerate(wavlm.encoder.layers):
        attn, pre = layer.attention, f"encoder.layers.{n}."
        for p in ("weight", "bias"):
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                put(getattr(getattr(attn, proj), p), f"{pre}self_attn.{proj}.{p}")
            put(getattr(attn.gru_rel_pos_linear, p), f"{pre}self_attn.grep_linear.{p}")
            put(getattr(layer.layer_norm, p), f"{pre}self_attn_layer_norm.{p}")
            put(getattr(layer.feed_forward.intermediate_dense, p), f"{pre}fc1.{p}")
            put(getattr(layer.feed_forward.output_dense, p), f"{pre}fc2.{p}")
            put(getattr(layer.final_layer_norm, p), f"{pre}final_layer_norm.{p}")
        put(attn.gru_rel_pos_const, f"{pre}self_attn.grep_a")
        if n == 0:
            put(attn.rel_attn_embed.weight, f"{pre}self_attn.relative_attention_bias.weight")

    with torch.no_grad():
        x = torch.from_numpy(wave)[None]
        x = F.layer_norm(x, x.shape[-1:])  # s3prl: normalize=True for WavLM-Large
        x = wavlm.feature_projection(wavlm.feature_extractor(x).transpose(1, 2))[0]
        g, v = sd[fe + "encoder.pos_conv.0.weight_g"], sd[fe + "encoder.pos_conv.0.weight_v"]
        weight = g * v / v.norm(dim=(0, 1), keepdim=True)  # torch weight_norm with dim=2
        k = cfg.num_conv_pos_embeddings
        pos = F.conv1d(
            x.transpose(1, 2),
            weight,
            sd[fe + "encoder.pos_conv.0.bias"],
            padding=k // 2,
            groups=cfg.num_conv_pos_embedding_groups,
        )
        x = x + F.gelu(pos[:, :, :-1] if k % 2 == 0 else pos).transpose(1, 2)
        states, bias = [], None
        for layer in wavlm.encoder.layers:
            states.append(x)  # s3prl hooks: the input of every layer ...
            x, bias = layer(x, position_bias=bias)
        states.append(wavlm.encoder.layer_norm(x))  # ... and the encoder's output
        feats = (torch.softmax(sd["feature_weight"], 0)[:, None, None, None] * torch.stack(states)).sum(0)
        x = F.instance_norm(feats.transpose(1, 2) + 1e-6)

        def conv_relu_bn(x, p, conv="conv", bn="bn", **kw):
            x = F.relu(F.conv1d(x, sd[f"{p}{conv}.weight"], sd[f"{p}{conv}.bias"], **kw))
            return F.batch_norm(
                x, sd[f"{p}{bn}.running_mean"], sd[f"{p}{bn}.running_var"], sd[f"{p}{bn}.weight"], sd[f"{p}{bn}.bias"]
            )

        def se_res2_block(x, p, dilation):
            out = conv_relu_bn(x, f"{p}Conv1dReluBn1.")
            splits, parts, sp = torch.split(out, head.channels // head.scale, 1), [], None
            for j in range(head.scale - 1):
                sp = splits[j] if j == 0 else sp + splits[j]
                sp = conv_relu_bn(
                    sp, f"{p}Res2Conv1dReluBn.", f"convs.{j}", f"bns.{j}", padding=dilation, dilation=dilation
                )
                parts.append(sp)
            out = conv_relu_bn(torch.cat([*parts, splits[-1]], 1), f"{p}Conv1dReluBn2.")
            s = F.relu(F.linear(out.mean(2), sd[f"{p}SE_Connect.linear1.weight"], sd[f"{p}SE_Connect.linear1.bias"]))
            s = torch.sigmoid(F.linear(s, sd[f"{p}SE_Connect.linear2.weight"], sd[f"{p}SE_Connect.linear2.bias"]))
            return x + out * s[:, :, None]

        out1 = conv_relu_bn(x, "layer1.", padding=2)
        out2 = se_res2_block(out1, "layer2.", 2)
        out3 = se_res2_block(out2, "layer3.", 3)
        out4 = se_res2_block(out3, "layer4.", 4)
        out = F.relu(F.conv1d(torch.cat([out2, out3, out4], 1), sd["conv.weight"], sd["conv.bias"]))
        alpha = torch.tanh(F.conv1d(out, sd["pooling.linear1.weight"], sd["pooling.linear1.bias"]))
        alpha = torch.softmax(F.conv1d(alpha, sd["pooling.linear2.weight"], sd["pooling.linear2.bias"]), dim=2)
        mean = (alpha * out).sum(2)
        std = torch.sqrt(((alpha * out**2).sum(2) - mean**2).clamp(min=1e-9))
        pooled = F.batch_norm(
            torch.cat([mean, std], 1), sd["bn.running_mean"], sd["bn.running_var"], sd["bn.weight"], sd["bn.bias"]
        )
        emb = F.linear(pooled, sd["linear.weight"], sd["linear.bias"])[0].numpy()
    return emb / np.linalg.norm(emb)


@pytest.fixture(scope="module")
def unispeech_checkpoint(tmp_path_factory):
    state = _unispeech_checkpoint(BACKBONE, ECAPA)
    path = tmp_path_factory.mktemp("unispeech") / "wavlm_tiny_finetune.pth"
    torch.save({"model": state}, path)
    return path, state


def test_every_unispeech_key_lands_on_the_model():
    expected = WavLMEcapa(BACKBONE, ECAPA).state_dict()
    mapped, unexpected = unispeech_to_model_state(_unispeech_checkpoint(BACKBONE, ECAPA), expected)
    assert unexpected == []
    assert set(mapped) == set(expected)


def test_wavlm_ecapa_matches_reference_forward(unispeech_checkpoint):
    path, state = unispeech_checkpoint
    enc = load_speaker_encoder("wavlm_ecapa", str(path), backbone=BACKBONE, head=ECAPA)
    wave = _tone(0.8, 3)
    emb = enc.embed(wave, SR)
    assert emb.shape == (ECAPA.emb_dim,) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, _reference_embedding(state, BACKBONE, ECAPA, wave), atol=1e-5)
    np.testing.assert_array_equal(emb, enc.embed(wave, SR))  # deterministic: eval mode, no dropout
    batch = enc.embed_batch([wave, _tone(1.3, 4)], [SR, SR])
    np.testing.assert_allclose(batch[0], emb, atol=1e-6)


def test_wavlm_ecapa_names_missing_and_unexpected_weights(unispeech_checkpoint, tmp_path):
    _, state = unispeech_checkpoint
    broken = {
        k: v
        for k, v in state.items()
        if k not in ("layer3.SE_Connect.linear2.weight", "feature_extract.model.encoder.layers.1.fc2.weight")
    }
    broken["feature_extract.model.feature_extractor.conv_layers.0.0.bias"] = torch.zeros(16)  # a conv_bias model
    path = tmp_path / "broken.pth"
    torch.save({"model": broken}, path)
    with pytest.raises(WeightsError) as err:
        load_speaker_encoder("wavlm_ecapa", str(path), backbone=BACKBONE, head=ECAPA)
    message = str(err.value)
    assert "layer3.SE_Connect.linear2.weight" in message
    assert "feature_extract.model.encoder.layers.1.fc2.weight" in message
    assert "feature_extract.model.feature_extractor.conv_layers.0.0.bias" in message


def test_wavlm_ecapa_needs_a_checkpoint_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="wavlm_large_finetune|no such"):
        load_speaker_encoder("wavlm_ecapa", str(tmp_path / "wavlm_large_finetune.pth"))
    with pytest.raises(ValueError, match="needs path"):
        load_speaker_encoder("wavlm_ecapa")


def published_wavlm_large_ecapa_keys() -> dict[str, tuple[int, ...]]:
    """Every weight of seed-tts-eval's SIM checkpoint (`wavlm_large_finetune.pth`) by name and shape, written out
    from the published UniSpeech code, not derived from our model: ECAPA_TDNN_SMALL(feat_dim=1024, emb_dim=256,
    feat_type="wavlm_large") in downstreams/speaker_verification/models/ecapa_tdnn.py, its s3prl WavLM-Large
    upstream under `feature_extract.model.` (7 bias-free convs with layer norm, 24 pre-LN layers of 1024,
    relative position bias in layer 0 only, gated relative position in every layer)."""
    keys: dict[str, tuple[int, ...]] = {}
    wl = "feature_extract.model."
    for i, (cin, k) in enumerate([(1, 10)] + [(512, 3)] * 4 + [(512, 2)] * 2):
        keys[f"{wl}feature_extractor.conv_layers.{i}.0.weight"] = (512, cin, k)
        keys[f"{wl}feature_extractor.conv_layers.{i}.2.1.weight"] = (512,)
        keys[f"{wl}feature_extractor.conv_layers.{i}.2.1.bias"] = (512,)
    keys |= {f"{wl}layer_norm.weight": (512,), f"{wl}layer_norm.bias": (512,)}
    keys |= {f"{wl}post_extract_proj.weight": (1024, 512), f"{wl}post_extract_proj.bias": (1024,)}
    keys[f"{wl}mask_emb"] = (1024,)
    keys |= {f"{wl}encoder.pos_conv.0.bias": (1024,), f"{wl}encoder.pos_conv.0.weight_g": (1, 1, 128)}
    keys[f"{wl}encoder.pos_conv.0.weight_v"] = (1024, 64, 128)
    keys |= {f"{wl}encoder.layer_norm.weight": (1024,), f"{wl}encoder.layer_norm.bias": (1024,)}
    for n in range(24):
        layer = f"{wl}encoder.layers.{n}."
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            keys |= {f"{layer}self_attn.{proj}.weight": (1024, 1024), f"{layer}self_attn.{proj}.bias": (1024,)}
        if n == 0:
            keys[f"{layer}self_attn.relative_attention_bias.weight"] = (320, 16)
        keys |= {f"{layer}self_attn.grep_linear.weight": (8, 64), f"{layer}self_attn.grep_linear.bias": (8,)}
        keys[f"{layer}self_attn.grep_a"] = (1, 16, 1, 1)
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            keys |= {f"{layer}{norm}.weight": (1024,), f"{layer}{norm}.bias": (1024,)}
        keys |= {f"{layer}fc1.weight": (4096, 1024), f"{layer}fc1.bias": (4096,)}
        keys |= {f"{layer}fc2.weight": (1024, 4096), f"{layer}fc2.bias": (1024,)}
    keys["feature_weight"] = (25,)  # hidden_states: the CNN output + 24 layers

    def conv_bn(prefix: str, cout: int, cin: int, k: int) -> None:
        keys.update({f"{prefix}.conv.weight": (cout, cin, k), f"{prefix}.conv.bias": (cout,)})
        for stat in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{prefix}.bn.{stat}"] = (cout,)
        keys[f"{prefix}.bn.num_batches_tracked"] = ()

    conv_bn("layer1", 512, 1024, 5)
    for block in ("layer2", "layer3", "layer4"):
        conv_bn(f"{block}.Conv1dReluBn1", 512, 512, 1)
        for j in range(7):  # scale 8: seven 64-channel branches
            keys |= {
                f"{block}.Res2Conv1dReluBn.convs.{j}.weight": (64, 64, 3),
                f"{block}.Res2Conv1dReluBn.convs.{j}.bias": (64,),
            }
            for stat in ("weight", "bias", "running_mean", "running_var"):
                keys[f"{block}.Res2Conv1dReluBn.bns.{j}.{stat}"] = (64,)
            keys[f"{block}.Res2Conv1dReluBn.bns.{j}.num_batches_tracked"] = ()
        conv_bn(f"{block}.Conv1dReluBn2", 512, 512, 1)
        keys |= {f"{block}.SE_Connect.linear1.weight": (128, 512), f"{block}.SE_Connect.linear1.bias": (128,)}
        keys |= {f"{block}.SE_Connect.linear2.weight": (512, 128), f"{block}.SE_Connect.linear2.bias": (512,)}
    keys |= {"conv.weight": (1536, 1536, 1), "conv.bias": (1536,)}
    keys |= {"pooling.linear1.weight": (128, 1536, 1), "pooling.linear1.bias": (128,)}
    keys |= {"pooling.linear2.weight": (1536, 128, 1), "pooling.linear2.bias": (1536,)}
    for stat in ("weight", "bias", "running_mean", "running_var"):
        keys[f"bn.{stat}"] = (3072,)
    keys["bn.num_batches_tracked"] = ()
    keys |= {"linear.weight": (256, 3072), "linear.bias": (256,)}
    return keys


def test_the_published_checkpoints_keys_and_shapes_land_on_the_large_model():
    """The WavLM-Large + ECAPA-TDNN model, built on the meta device (no memory), takes every key of the published
    checkpoint at its published shape, and has no weight the checkpoint lacks."""
    published = published_wavlm_large_ecapa_keys()
    with torch.device("meta"):
        model = speaker.WavLMEcapa(speaker.wavlm_large_config(), EcapaConfig())
    expected = model.state_dict()
    mapped, unexpected = unispeech_to_model_state(
        {k: torch.empty(s, device="meta") for k, s in published.items()}, expected
    )
    assert unexpected == []
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {k: tuple(expected[k].shape) for k in mapped}
    assert sorted(set(expected) - set(mapped)) == []
