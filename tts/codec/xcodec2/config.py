"""XCodec2 settings: the public X-codec2 sizes (Table 1) and the super-resolution variants built on them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

ENCODER_SAMPLE_RATE = 16000
FRAME_RATE = 50


@dataclass(frozen=True)
class XCodec2Config:
    """One codec: 16 kHz encoder at 50 tokens/s, decoder at `sample_rate`.

    The decoder's backbone always runs at 50 frames/s; `upsample_strides` (super-resolution) raise the frame
    rate before the iSTFT head, whose hop is `hop_length`, so samples per token = hop * prod(strides).
    """

    sample_rate: int = 16000
    hop_length: int = 320
    upsample_strides: tuple[int, ...] = ()
    upsample_channels: tuple[int, ...] = ()
    # acoustic encoder (X-codec2 CodecEnc): channels double per strided block
    encoder_channels: int = 48
    encoder_strides: tuple[int, ...] = (2, 2, 4, 4, 5)
    encoder_dilations: tuple[int, ...] = (1, 3, 9)
    encoder_dim: int = 1024
    # semantic branch: frozen w2v-BERT 2.0 (loaded from a local path), hidden layer `semantic_layer`
    semantic: bool = True
    semantic_dim: int = 1024
    semantic_layer: int = 16
    semantic_model_path: str = ""
    # quantiser: fused features of `vq_dim` projected to len(fsq_levels) digits
    vq_dim: int = 2048
    fsq_levels: tuple[int, ...] = (4,) * 8
    # decoder backbone (Vocos-style: conv embed, 2 ResNet blocks, transformer, 2 ResNet blocks)
    hidden: int = 1024
    depth: int = 12
    heads: int = 16
    norm_groups: int = 32
    # streaming variant: causal convs, per-frame norms, causal attention over `attention_window` tokens
    causal: bool = False
    attention_window: int = 0

    def __post_init__(self) -> None:
        if len(self.upsample_strides) != len(self.upsample_channels):
            raise ValueError("upsample_strides and upsample_channels must have the same length")
        if math.prod(self.encoder_strides) * FRAME_RATE != ENCODER_SAMPLE_RATE:
            raise ValueError(f"encoder strides {self.encoder_strides} must give {FRAME_RATE} tokens/s at 16 kHz")
        if self.samples_per_token * FRAME_RATE != self.sample_rate:
            raise ValueError(
                f"hop {self.hop_length} x strides {self.upsample_strides} gives {self.samples_per_token} samples "
                f"per token; {self.sample_rate} Hz needs {self.sample_rate // FRAME_RATE}"
            )
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not divisible by heads {self.heads}")
        if self.causal and self.attention_window < 1:
            raise ValueError("a causal config needs attention_window >= 1 (a bounded receptive field)")

    @property
    def n_fft(self) -> int:
        return 4 * self.hop_length

    @property
    def samples_per_token(self) -> int:
        return self.hop_length * math.prod(self.upsample_strides)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.fsq_levels)

    @property
    def fused_dim(self) -> int:
        return self.encoder_dim + (self.semantic_dim if self.semantic else 0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> XCodec2Config:
        known = {f.name: f for f in fields(cls)}
        unknown = set(d) - set(known)
        if unknown:
            raise ValueError(f"unknown XCodec2Config fields: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


_48K = dict(sample_rate=48000, hop_length=160, upsample_strides=(3, 2), upsample_channels=(512, 512))
CONFIGS: dict[str, XCodec2Config] = {
    "xcodec2-16k": XCodec2Config(),
    "xcodec2-24k": XCodec2Config(sample_rate=24000, hop_length=480),
    "xcodec2-48k": XCodec2Config(**_48K),
    # Embedded test size: causal + windowed so chunked decoding is exact (see model.XCodec2.decode).
    "xcodec2-tiny": XCodec2Config(
        hop_length=160,
        upsample_strides=(2,),
        upsample_channels=(32,),
        encoder_channels=4,
        encoder_dim=32,
        semantic=False,
        vq_dim=32,
        hidden=64,
        depth=2,
        heads=4,
        norm_groups=8,
        causal=True,
        attention_window=8,
    ),
}


def get_config(name: str) -> XCodec2Config:
    if name not in CONFIGS:
        raise ValueError(f"unknown XCodec2 config {name!r}; known: {sorted(CONFIGS)}")
    return CONFIGS[name]
