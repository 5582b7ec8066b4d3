"""Speaker similarity (SIM): cosine of the speaker embeddings of generated and reference audio.

Backends: `resemblyzer` (embedded default: the GE2E d-vector LSTM shipped in the resemblyzer wheel, CPU-light),
`wavlm` (a transformers `WavLMForXVector` directory such as microsoft/wavlm-base-plus-sv) and `wavlm_ecapa`
(UniSpeech's WavLM-large + ECAPA-TDNN verifier, `wavlm_large_finetune.pth`, the model seed-tts-eval reports
SIM with). Scores are only comparable within one backend.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rewards.weights import WeightsError, package_file
from tts.base.audio import AudioError, check_wave, resample

SAMPLE_RATE = 16000
# resemblyzer 0.1.4 ships its encoder weights inside the wheel.
RESEMBLYZER_WEIGHTS = "pretrained.pt"
RESEMBLYZER_DIGEST = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
MIN_VOICED_SECONDS = 0.2  # below this, resemblyzer's VAD-trimmed audio is too little to embed
BACKENDS = ("resemblyzer", "wavlm", "wavlm_ecapa")


class SpeakerEncoder(ABC):
    """Maps speech to an L2-normalised 1-D float32 speaker embedding.

    `embed` validates and resamples once here, so backends only ever see finite mono 16 kHz audio of at
    least `min_samples` samples (fewer would crash their front ends or divide by zero).
    """

    min_samples: int = 1

    @abstractmethod
    def _embed16k(self, wave: np.ndarray) -> np.ndarray: ...

    def embed(self, wave: np.ndarray, sr: int, name: str = "speaker audio") -> np.ndarray:
        wave = resample(check_wave(wave, name), sr, SAMPLE_RATE)
        if wave.size < self.min_samples:
            raise AudioError(
                f"{name}: {wave.size} samples at {SAMPLE_RATE} Hz is too short for {type(self).__name__} "
                f"(needs {self.min_samples})"
            )
        emb = np.asarray(self._embed16k(wave), dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(emb))
        if not np.isfinite(norm) or norm == 0.0:
            raise AudioError(f"{name}: speaker embedding has no direction (norm {norm}); is the audio silent?")
        return emb / norm

    def embed_batch(self, waves: Sequence[np.ndarray], srs: Sequence[int]) -> np.ndarray:
        """[B, D] embeddings, one utterance at a time: padding utterances into one tensor would change them
        (ECAPA pools over padded frames, group norm sees them), and SIM must not depend on batch-mates."""
        if len(waves) != len(srs):
            raise ValueError(f"{len(waves)} waves but {len(srs)} sample rates")
        if not waves:
            raise ValueError("embed_batch needs at least one waveform")
        return np.stack([self.embed(w, sr, f"speaker audio {i}") for i, (w, sr) in enumerate(zip(waves, srs))])


def similarity(
    encoder: SpeakerEncoder, generated: np.ndarray, gen_sr: int, reference: np.ndarray, ref_sr: int
) -> float:
    """Cosine similarity in [-1, 1] of the two utterances' speaker embeddings."""
    a = encoder.embed(generated, gen_sr, "generated audio")
    b = encoder.embed(reference, ref_sr, "reference audio")
    return float(np.clip(np.dot(a, b), -1.0, 1.0))


# --- resemblyzer --------------------------------------------------------------------------------------------


class ResemblyzerEncoder(SpeakerEncoder):
    """resemblyzer's VoiceEncoder with its wheel weights, verified by SHA-256 before loading."""

    def __init__(self, device: str = "cpu"):
        from resemblyzer import VoiceEncoder

        weights = package_file("resemblyzer", RESEMBLYZER_WEIGHTS, RESEMBLYZER_DIGEST)
        self._model = VoiceEncoder(device, verbose=False, weights_fpath=weights)

    def _embed16k(self, wave: np.ndarray) -> np.ndarray:
        """Embeds resemblyzer's own preprocessing (volume normalised, long silences cut by webrtcvad).

        When the VAD keeps under MIN_VOICED_SECONDS (clips of a few hundred ms, whispers, silence), the
        unprocessed wave is embedded instead, so short generations still get a score rather than an error.
        """
        from resemblyzer import preprocess_wav

        with np.errstate(divide="ignore", invalid="ignore"):  # silent input: log10(0) in its volume step
            trimmed = preprocess_wav(wave)
        if trimmed.size < MIN_VOICED_SECONDS * SAMPLE_RATE or not np.all(np.isfinite(trimmed)):
            trimmed = wave
        return self._model.embed_utterance(trimmed.astype(np.float32))


# --- WavLM backbones ----------------------------------------------------------------------------------------


def _min_samples(config, frames: int) -> int:
    """Fewest samples from which WavLM's conv front end makes `frames` frames."""
    field, hop = 1, 1
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        field += (kernel - 1) * hop
        hop *= stride
    return field + (frames - 1) * hop


def _checkpoint_dir(path: str | None, backend: str, needs: tuple[str, ...]) -> Path:
    if path is None:
        raise ValueError(f"speaker backend {backend!r} needs path= a local checkpoint (nothing is downloaded)")
    directory = Path(path)
    missing = [name for name in needs if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory}: not a {backend} checkpoint directory (missing {', '.join(missing)})")
    return directory


class WavLMXVectorEncoder(SpeakerEncoder):
    """transformers `WavLMForXVector` + its feature extractor from a local directory; `outputs.embeddings`."""

    def __init__(self, path: str | None, device: str = "cpu"):
        from transformers import AutoFeatureExtractor, WavLMForXVector

        directory = _checkpoint_dir(path, "wavlm", ("config.json", "preprocessor_config.json"))
        self._extractor = AutoFeatureExtractor.from_pretrained(directory, local_files_only=True)
        self._model = WavLMForXVector.from_pretrained(directory, local_files_only=True).to(device).eval()
        self._device = device
        tdnn_frames = 1 + sum(
            (k - 1) * d for k, d in zip(self._model.config.tdnn_kernel, self._model.config.tdnn_dilation)
        )
        self.min_samples = _min_samples(self._model.config, tdnn_frames + 1)  # std-pooling needs two frames

    def _embed16k(self, wave: np.ndarray) -> np.ndarray:
        inputs = self._extractor(wave, sampling_rate=SAMPLE_RATE, return_tensors="pt").to(self._device)
        with torch.inference_mode():
            return self._model(**inputs).embeddings[0].float().cpu().numpy()


# UniSpeech ECAPA_TDNN_SMALL head (downstreams/speaker_verification/models/ecapa_tdnn.py), re-implemented with
# its attribute names so the checkpoint's head keys (layer2.Conv1dReluBn1.conv.weight, ...) load unchanged.


@dataclass(frozen=True)
class EcapaConfig:
    channels: int = 512
    mfa_channels: int = 1536  # output of the multi-layer feature aggregation conv
    emb_dim: int = 256
    bottleneck: int = 128  # SE and attentive-pooling bottleneck
    scale: int = 8  # Res2Net split


class Conv1dReluBn(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int = 1, padding: int = 0, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, padding=padding, dilation=dilation)
        self.bn = nn.BatchNorm1d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


class Res2Conv1dReluBn(nn.Module):
    def __init__(self, channels: int, kernel: int, padding: int, dilation: int, scale: int):
        super().__init__()
        if channels % scale:
            raise ValueError(f"ECAPA channels {channels} not divisible by scale {scale}")
        self.width = channels // scale
        self.convs = nn.ModuleList(
            nn.Conv1d(self.width, self.width, kernel, padding=padding, dilation=dilation) for _ in range(scale - 1)
        )
        self.bns = nn.ModuleList(nn.BatchNorm1d(self.width) for _ in range(scale - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        splits = torch.split(x, self.width, dim=1)
        out, sp = [], None
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            sp = splits[i] if sp is None else sp + splits[i]
            sp = bn(F.relu(conv(sp)))
            out.append(sp)
        out.append(splits[-1])
        return torch.cat(out, dim=1)


class SE_Connect(nn.Module):
    def __init__(self, channels: int, bottleneck: int):
        super().__init__()
        self.linear1 = nn.Linear(channels, bottleneck)
        self.linear2 = nn.Linear(bottleneck, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.linear2(F.relu(self.linear1(x.mean(dim=2)))))
        return x * gate.unsqueeze(2)


class SERes2Block(nn.Module):
    def __init__(self, channels: int, dilation: int, cfg: EcapaConfig):
        super().__init__()
        self.Conv1dReluBn1 = Conv1dReluBn(channels, channels)
        self.Res2Conv1dReluBn = Res2Conv1dReluBn(channels, 3, dilation, dilation, cfg.scale)
        self.Conv1dReluBn2 = Conv1dReluBn(channels, channels)
        self.SE_Connect = SE_Connect(channels, cfg.bottleneck)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.SE_Connect(self.Conv1dReluBn2(self.Res2Conv1dReluBn(self.Conv1dReluBn1(x))))


class AttentiveStatsPool(nn.Module):
    def __init__(self, channels: int, bottleneck: int):
        super().__init__()
        self.linear1 = nn.Conv1d(channels, bottleneck, kernel_size=1)
        self.linear2 = nn.Conv1d(bottleneck, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = torch.softmax(self.linear2(torch.tanh(self.linear1(x))), dim=2)
        mean = torch.sum(alpha * x, dim=2)
        var = torch.sum(alpha * x**2, dim=2) - mean**2
        return torch.cat([mean, torch.sqrt(var.clamp(min=1e-9))], dim=1)


def wavlm_large_config():
    """transformers config equal to UniSpeech's WavLM-Large (layer-norm conv front end, pre-LN, max_distance 800)."""
    from transformers import WavLMConfig

    return WavLMConfig(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        conv_bias=False,
        num_buckets=320,
        max_bucket_distance=800,
    )


class WavLMEcapa(nn.Module):
    """WavLM hidden states (softmax-weighted sum over the input of every layer and the encoder output, as
    s3prl's hooks collect them) -> instance norm -> ECAPA-TDNN -> embedding (not normalised)."""

    def __init__(self, backbone, head: EcapaConfig, normalize_input: bool = True):
        from transformers import WavLMModel

        super().__init__()
        self.normalize_input = normalize_input  # s3prl layer-norms the raw wave when the WavLM cfg says normalize
        self.wavlm = WavLMModel(backbone)
        feat, c = backbone.hidden_size, head.channels
        self.feature_weight = nn.Parameter(torch.zeros(backbone.num_hidden_layers + 1))
        self.instance_norm = nn.InstanceNorm1d(feat)
        self.layer1 = Conv1dReluBn(feat, c, kernel=5, padding=2)
        self.layer2 = SERes2Block(c, 2, head)
        self.layer3 = SERes2Block(c, 3, head)
        self.layer4 = SERes2Block(c, 4, head)
        self.conv = nn.Conv1d(3 * c, head.mfa_channels, kernel_size=1)
        self.pooling = AttentiveStatsPool(head.mfa_channels, head.bottleneck)
        self.bn = nn.BatchNorm1d(2 * head.mfa_channels)
        self.linear = nn.Linear(2 * head.mfa_channels, head.emb_dim)

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """[B, T] wave -> [B, hidden, frames] instance-normalised weighted layer sum."""
        if self.normalize_input:
            wave = F.layer_norm(wave, wave.shape[-1:])
        out = self.wavlm(wave, output_hidden_states=True)
        # transformers' hidden_states[:-1] are the inputs of the layers; s3prl's last state is the encoder output
        # (after the final layer norm of pre-LN models), which is last_hidden_state.
        layers = torch.stack((*out.hidden_states[:-1], out.last_hidden_state))
        weights = torch.softmax(self.feature_weight, dim=-1).view(-1, 1, 1, 1)
        x = (weights * layers).sum(dim=0).transpose(1, 2) + 1e-6
        return self.instance_norm(x)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        out1 = self.layer1(self.features(wave))
        out2 = self.layer2(out1)
        out3 = self.layer3(out2)
        out4 = self.layer4(out3)
        out = F.relu(self.conv(torch.cat([out2, out3, out4], dim=1)))
        return self.linear(self.bn(self.pooling(out)))


# UniSpeech/s3prl WavLM parameter names -> transformers WavLMModel names. {n}: a layer index, {p}: weight|bias.
BACKBONE_PREFIX = "feature_extract.model."
BACKBONE_KEYS = (
    ("feature_extractor.conv_layers.{n}.0.{p}", "feature_extractor.conv_layers.{n}.conv.{p}"),
    ("feature_extractor.conv_layers.{n}.2.1.{p}", "feature_extractor.conv_layers.{n}.layer_norm.{p}"),  # LayerNorm mode
    ("feature_extractor.conv_layers.{n}.2.{p}", "feature_extractor.conv_layers.{n}.layer_norm.{p}"),  # GroupNorm mode
    ("layer_norm.{p}", "feature_projection.layer_norm.{p}"),
    ("post_extract_proj.{p}", "feature_projection.projection.{p}"),
    ("mask_emb", "masked_spec_embed"),
    ("encoder.pos_conv.0.bias", "encoder.pos_conv_embed.conv.bias"),
    ("encoder.pos_conv.0.weight_g", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    ("encoder.pos_conv.0.weight_v", "encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    ("encoder.layer_norm.{p}", "encoder.layer_norm.{p}"),
    ("encoder.layers.{n}.self_attn.q_proj.{p}", "encoder.layers.{n}.attention.q_proj.{p}"),
    ("encoder.layers.{n}.self_attn.k_proj.{p}", "encoder.layers.{n}.attention.k_proj.{p}"),
    ("encoder.layers.{n}.self_attn.v_proj.{p}", "encoder.layers.{n}.attention.v_proj.{p}"),
    ("encoder.layers.{n}.self_attn.out_proj.{p}", "encoder.layers.{n}.attention.out_proj.{p}"),
    (
        "encoder.layers.{n}.self_attn.relative_attention_bias.weight",
        "encoder.layers.{n}.attention.rel_attn_embed.weight",
    ),
    ("encoder.layers.{n}.self_attn.grep_linear.{p}", "encoder.layers.{n}.attention.gru_rel_pos_linear.{p}"),
    ("encoder.layers.{n}.self_attn.grep_a", "encoder.layers.{n}.attention.gru_rel_pos_const"),
    ("encoder.layers.{n}.self_attn_layer_norm.{p}", "encoder.layers.{n}.layer_norm.{p}"),
    ("encoder.layers.{n}.fc1.{p}", "encoder.layers.{n}.feed_forward.intermediate_dense.{p}"),
    ("encoder.layers.{n}.fc2.{p}", "encoder.layers.{n}.feed_forward.output_dense.{p}"),
    ("encoder.layers.{n}.final_layer_norm.{p}", "encoder.layers.{n}.final_layer_norm.{p}"),
)
TRAINING_ONLY_PREFIXES = ("loss_calculator.",)  # the fine-tuning loss head saved alongside the model


def _template_regex(template: str) -> re.Pattern:
    pattern = re.escape(template).replace(r"\{n\}", r"(?P<n>\d+)").replace(r"\{p\}", r"(?P<p>weight|bias)")
    return re.compile(pattern)


_FORWARD = [(_template_regex(src), dst) for src, dst in BACKBONE_KEYS]
_BACKWARD = [(_template_regex(dst), src) for src, dst in BACKBONE_KEYS]


def _rename(key: str, rules: list[tuple[re.Pattern, str]]) -> list[str]:
    """All names `key` maps to under `rules`: one forwards; backwards a conv norm has two UniSpeech names."""
    return [target.format(**m.groupdict()) for pattern, target in rules if (m := pattern.fullmatch(key))]


def unispeech_to_model_state(
    state: dict[str, torch.Tensor], expected: Collection[str]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Checkpoint state in UniSpeech naming -> `WavLMEcapa` state, plus the checkpoint keys that land on no
    `expected` model weight."""
    mapped, unexpected = {}, []
    for key, value in state.items():
        if key.startswith(TRAINING_ONLY_PREFIXES):
            continue
        name: str | None = key
        if key.startswith(BACKBONE_PREFIX):
            names = _rename(key[len(BACKBONE_PREFIX) :], _FORWARD)
            name = "wavlm." + names[0] if names else None
        if name in expected:
            mapped[name] = value
        else:
            unexpected.append(key)
    return mapped, unexpected


def _checkpoint_name(model_key: str) -> str:
    if not model_key.startswith("wavlm."):
        return model_key
    names = _rename(model_key[len("wavlm.") :], _BACKWARD) or [model_key]
    return " or ".join(BACKBONE_PREFIX + name for name in names)


def load_unispeech_checkpoint(model: WavLMEcapa, path: Path) -> None:
    """Load `{"model": state_dict}` in UniSpeech naming; raises naming every missing or unexpected weight."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise WeightsError(f"{path}: expected a UniSpeech checkpoint {{'model': state_dict}}")
    expected = model.state_dict()
    mapped, unexpected = unispeech_to_model_state(checkpoint["model"], expected)
    missing = [_checkpoint_name(k) for k in expected if k not in mapped and not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise WeightsError(
            f"{path}: does not match WavLM({model.wavlm.config.num_hidden_layers} layers)+ECAPA-TDNN; "
            f"missing {len(missing)}: {missing[:8]}; unexpected {len(unexpected)}: {unexpected[:8]}"
        )
    model.load_state_dict(mapped, strict=False)  # strict=False only for absent num_batches_tracked; shapes checked


class WavLMEcapaEncoder(SpeakerEncoder):
    """UniSpeech WavLM + ECAPA-TDNN speaker verifier from `wavlm_large_finetune.pth` (or a smaller `backbone`)."""

    def __init__(
        self,
        path: str | None,
        device: str = "cpu",
        backbone=None,
        head: EcapaConfig | None = None,
        normalize_input: bool = True,
    ):
        if path is None:
            raise ValueError(
                "speaker backend 'wavlm_ecapa' needs path= wavlm_large_finetune.pth (nothing is downloaded)"
            )
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such UniSpeech WavLM+ECAPA-TDNN checkpoint")
        backbone = backbone or wavlm_large_config()
        self._model = WavLMEcapa(backbone, head or EcapaConfig(), normalize_input)
        load_unispeech_checkpoint(self._model, Path(path))
        self._model.to(device).eval()
        self._device = device
        self.min_samples = _min_samples(backbone, 2)

    def _embed16k(self, wave: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            emb = self._model(torch.from_numpy(wave).to(self._device).unsqueeze(0))
        return emb[0].float().cpu().numpy()


def load_speaker_encoder(backend: str, path: str | None = None, device: str = "cpu", **options) -> SpeakerEncoder:
    """A speaker encoder by backend name; `options` go to the backend (e.g. `backbone=` for `wavlm_ecapa`)."""
    if backend == "resemblyzer":
        if path is not None:
            raise ValueError("speaker backend 'resemblyzer' uses the weights inside its wheel; pass path=None")
        return ResemblyzerEncoder(device, **options)
    if backend == "wavlm":
        return WavLMXVectorEncoder(path, device, **options)
    if backend == "wavlm_ecapa":
        return WavLMEcapaEncoder(path, device, **options)
    raise ValueError(f"unknown speaker backend {backend!r}; known: {list(BACKENDS)}")
