"""XCodec2: Table 1 parameter counts (meta device), FSQ, checkpoint key mapping, chunked and batched decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tts.codec.xcodec2 import XCodec2, XCodec2Codec, get_config, info
from tts.codec.xcodec2.checkpoint import load_xcodec2_state_dict, to_theirs
from tts.codec.xcodec2.fsq import FSQ

TABLE1 = {"xcodec2-16k": 187.00e6, "xcodec2-24k": 187.65e6, "xcodec2-48k": 193.43e6}


@pytest.mark.parametrize("name", sorted(TABLE1))
def test_param_counts_match_table1(name):
    i = info(name)
    assert abs(i["decoder_params"] / TABLE1[name] - 1) < 0.01
    assert abs(i["encoder_params"] / 55.28e6 - 1) < 0.01
    assert i["codebook_size"] == 65536 and i["samples_per_token"] * 50 == i["sample_rate"]


def test_head_growth_is_the_istft_output_layer():
    assert info("xcodec2-24k")["decoder_params"] - info("xcodec2-16k")["decoder_params"] == (1920 - 1280) * 1025


@pytest.fixture(scope="module")
def tiny() -> XCodec2:
    torch.manual_seed(0)
    return XCodec2(get_config("xcodec2-tiny")).eval()


def test_fsq_indices_round_trip():
    q = FSQ((4,) * 8, 16)
    digits, codes = q.quantize(torch.randn(3, 7, 16) * 3)
    assert codes.min() >= 0 and codes.max() < 65536
    assert torch.equal(q.indices_to_digits(codes), digits)
    assert q.indices_to_digits(torch.arange(65536)).unique(dim=0).shape[0] == 65536  # a bijection


def test_encode_decode_shapes(tiny):
    codes = tiny.encode(torch.randn(2, 16000 - 100))
    assert codes.shape == (2, 50) and codes.dtype == torch.long
    assert tiny.decode(codes).shape == (2, 50 * 320)


def test_chunked_decode_matches_one_shot(tiny):
    left, look = tiny.receptive_field
    codes = torch.randint(0, 65536, (1, 90), generator=torch.Generator().manual_seed(1))
    full = tiny.decode(codes)[0]
    spt, start, chunk = tiny.samples_per_token, left + 5, 12
    tol = 1e-5 * float(full.abs().max())  # float32 round-off relative to the peak (~1e-6 of it measured)
    for a in range(start, 90, chunk):
        b = min(a + chunk, 90)
        out = tiny.decode(codes[:, a:b], left_context=codes[:, a - left : a])[0]
        assert len(out) == (b - a) * spt  # exact sample alignment
        prefix = tiny.decode(codes[:, :b])[0][a * spt :]
        torch.testing.assert_close(out, prefix, atol=tol, rtol=0)  # exact vs one-shot of the prefix
        settled = (b - a - look) * spt if b < 90 else len(out)  # the last `look` codes await the next chunk
        torch.testing.assert_close(out[:settled], full[a * spt : a * spt + settled], atol=tol, rtol=0)


def test_ragged_batch_equals_per_item(tiny):
    g = torch.Generator().manual_seed(2)
    items = [torch.randint(0, 65536, (n,), generator=g) for n in (7, 23, 15)]
    batched = tiny.decode_batch(items)
    for c, w in zip(items, batched):
        assert len(w) == len(c) * 320
        torch.testing.assert_close(w, tiny.decode(c[None])[0], atol=1e-5, rtol=1e-4)


def test_ragged_batch_non_causal_masks_padding():
    cfg = get_config("xcodec2-tiny")
    from dataclasses import replace

    torch.manual_seed(0)
    m = XCodec2(replace(cfg, causal=False, attention_window=0)).eval()
    items = [torch.randint(0, 65536, (n,)) for n in (9, 20)]
    for c, w in zip(items, m.decode_batch(items)):
        torch.testing.assert_close(w, m.decode(c[None])[0], atol=1e-5, rtol=1e-4)


def _public_layout(model: XCodec2) -> dict[str, torch.Tensor]:
    """Our state dict renamed to the public keys, acoustic convs split into weight_g / weight_v."""
    out = {}
    for k, v in model.state_dict().items():
        key = to_theirs(k)
        if key.startswith("CodecEnc.") and key.endswith(".weight") and v.ndim == 3:
            norm = v.flatten(1).norm(dim=1).view(-1, 1, 1)
            out[key + "_g"], out[key + "_v"] = norm, v * 2.0  # v's scale must not matter
        else:
            out[key] = v
    out["CodecEnc.block.0.upsample.filter"] = torch.zeros(1, 1, 12)
    out["discriminator.conv.weight"] = torch.zeros(1)
    return out


def test_public_checkpoint_layout_loads(tiny):
    fresh = XCodec2(tiny.cfg)
    report = load_xcodec2_state_dict(fresh, _public_layout(tiny))
    assert report["unexpected"] == ["discriminator.conv.weight"] and len(report["ignored"]) == 1
    for (k, a), b in zip(tiny.state_dict().items(), fresh.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)


def test_checkpoint_missing_or_misshapen_key_is_named(tiny):
    sd = _public_layout(tiny)
    del sd["generator.head.out.bias"]
    with pytest.raises(ValueError, match="missing.*generator.head.out.bias"):
        load_xcodec2_state_dict(XCodec2(tiny.cfg), sd)
    sd = _public_layout(tiny)
    sd["fc_post_a.weight"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match=r"fc_post_a.weight: checkpoint \(3, 3\)"):
        load_xcodec2_state_dict(XCodec2(tiny.cfg), sd)


def test_codec_interface_save_load(tiny, tmp_path):
    codec = XCodec2Codec(tiny)
    codes = codec.encode(np.random.default_rng(0).standard_normal(24000).astype(np.float32) * 0.1, 24000)
    assert len(codes) == 50 and codec.hop_length == 320
    wave = codec.decode(codes)
    assert wave.shape == (50 * 320,) and wave.dtype == np.float32
    from tts.codec import load_codec

    again = load_codec(codec.save(tmp_path / "c"))
    np.testing.assert_allclose(again.decode(codes), wave, atol=1e-6)
    # a group after one shared context: one padded batch, each wave as if decoded alone
    ctx, tails = codes[:20], [codes[20:], codes[30:45]]
    batched = again.to("cpu").decode_batch_with_context(tails, ctx)
    for tail, w in zip(tails, batched):
        np.testing.assert_allclose(w, again.decode_with_context(tail, ctx), atol=1e-5)


def test_cli_codec_info(capsys):
    import json

    from rayjobs.cli import main

    main(["codec", "info", "--config", "xcodec2-24k"])
    out = json.loads(capsys.readouterr().out)
    assert abs(out["decoder_params"] / 187.65e6 - 1) < 0.01 and out["sample_rate"] == 24000
    assert set(out) >= {"encoder_params", "decoder_params", "sample_rate", "hop_length", "codebook_size"}
    with pytest.raises(SystemExit) as exc:
        main(["codec", "info", "--config", "xcodec2-96k"])
    assert exc.value.code == 2


def test_public_checkpoint_loads_what_fits_a_super_resolution_decoder(tiny):
    from dataclasses import replace

    bigger = XCodec2(replace(tiny.cfg, upsample_channels=(16,)))
    report = load_xcodec2_state_dict(bigger, _public_layout(tiny), strict=False)
    assert report["fresh"] and all(k.startswith(("decoder.upsampler.", "decoder.head.")) for k in report["fresh"])
    torch.testing.assert_close(bigger.quantizer.project_in.weight, tiny.quantizer.project_in.weight)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_xcodec2_state_dict(XCodec2(bigger.cfg), _public_layout(tiny))
