"""Load the public X-codec2 checkpoint layout into `XCodec2`: prefix renames plus weight-norm fusion."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from tts.codec.xcodec2.model import XCodec2

# public prefix -> ours; `generator.quantizer.` must precede `generator.` style catch-alls (none here)
PREFIXES: tuple[tuple[str, str], ...] = (
    ("CodecEnc.", "encoder.acoustic."),
    ("SemanticEncoder_module.", "encoder.semantic."),
    ("fc_prior.", "encoder.fc_prior."),
    ("generator.quantizer.", "quantizer."),
    ("fc_post_a.", "decoder.fc_post_a."),
    ("generator.backbone.", "decoder.backbone."),
    ("generator.upsampler.", "decoder.upsampler."),  # super-resolution configs only (not in the public model)
    ("generator.head.", "decoder.head."),
)
FIXED_BUFFERS = (".filter",)  # anti-aliasing kaiser filters: recomputed, not learned


def to_ours(key: str) -> str | None:
    for theirs, ours in PREFIXES:
        if key.startswith(theirs):
            return ours + key[len(theirs) :]
    return None


def to_theirs(key: str) -> str:
    for theirs, ours in PREFIXES:
        if key.startswith(ours):
            return theirs + key[len(ours) :]
    raise KeyError(key)


def fuse_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """weight = g * v / ||v||, the norm over all but the output dimension (torch weight_norm, dim=0)."""
    return g * v / v.flatten(1).norm(dim=1).view(-1, *([1] * (v.ndim - 1)))


def load_xcodec2_state_dict(
    model: XCodec2, state_dict: Mapping[str, torch.Tensor], strict: bool = True
) -> dict[str, list[str]]:
    """Copy a public-layout state dict into `model`; raises naming every missing key or shape mismatch.

    Returns {"unexpected": keys we do not use (discriminators, w2v-BERT, ...), "ignored": fixed buffers,
    "fresh": our keys left as initialised}. `strict=False` (decoder training: a 48 kHz decoder starting from
    the public 16 kHz model) loads what fits and lists the rest, missing or misshapen, under "fresh".
    """
    ours: dict[str, torch.Tensor] = {}
    unexpected, ignored = [], []
    for key, value in state_dict.items():
        if key.endswith(FIXED_BUFFERS):
            ignored.append(key)
            continue
        if key.endswith(".weight_v"):
            continue  # consumed with its weight_g
        if key.endswith(".weight_g"):
            v = state_dict.get(key[: -len("_g")] + "_v")
            if v is None:
                raise KeyError(f"{key} has no matching weight_v")
            key, value = key[: -len("_g")], fuse_weight_norm(value, v)
        mapped = to_ours(key)
        if mapped is None:
            unexpected.append(key)
        else:
            ours[mapped] = value
    expected = model.state_dict()
    missing = [to_theirs(k) for k in expected if k not in ours]
    extra = [to_theirs(k) for k in ours if k not in expected]
    bad = [
        f"{to_theirs(k)}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in ours.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if strict and (missing or bad):
        raise ValueError(
            "X-codec2 checkpoint does not fit this config:"
            + (f"\n  missing: {missing}" if missing else "")
            + (f"\n  shape mismatch: {bad}" if bad else "")
        )
    fits = {k: v for k, v in ours.items() if k in expected and v.shape == expected[k].shape}
    model.load_state_dict(fits, strict=strict)
    return {"unexpected": unexpected + extra, "ignored": ignored, "fresh": [k for k in expected if k not in fits]}
