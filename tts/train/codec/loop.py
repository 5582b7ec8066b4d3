"""The per-worker codec decoder training loop: a GAN step per batch (discriminators, then the generator),
progressive stages, held-out mel / RMS loss with audio samples, checkpoints with exact resume, metrics.

    checkpoint_000500/
        codec/               codec.json + xcodec2.safetensors: a codec `load_codec` opens (export, evaluation)
        train.pt             discriminators, both AdamW states, both schedulers
        train_state.json     step, stage, job, world size, last metrics
        rng/rank_<r>.pt      python, numpy and torch RNG states

The runner is a `tts.train.session` session (Ray Train or one local process), as for the SpeechLM jobs.
"""

from __future__ import annotations

import json
import math
import resource
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file
from torch import nn

from tts.base import checkpoint
from tts.base.audio import save_audio
from tts.base.checkpoint import keep_until
from tts.base.distributed import scheduler
from tts.codec.base import MANIFEST, read_codec_manifest
from tts.codec.xcodec2.checkpoint import load_xcodec2_state_dict
from tts.codec.xcodec2.codec import KIND, XCodec2Codec
from tts.codec.xcodec2.encoder import W2VBertFeatures
from tts.codec.xcodec2.model import XCodec2
from tts.train.codec.config import CodecTrainConfig
from tts.train.codec.data import Segments, clips, held_out
from tts.train.codec.discriminators import Discriminators, Features
from tts.train.codec.losses import (
    MelLoss,
    chunk_loudness_error,
    discriminator_loss,
    feature_matching,
    generator_loss,
    rms_db,
    rms_loss,
)

TRAIN = "train.pt"
SAMPLES = "samples.jsonl"
PUBLIC_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".safetensors")


class Reconstruction(nn.Module):
    """16 kHz wave [B, N] -> encoder -> FSQ (straight-through rounding) -> decoder -> wave [B, T * spt].

    With `frozen` the encoder and both FSQ projections keep their weights (the paper trains the decoder
    only) and run without gradients.
    """

    def __init__(self, model: XCodec2, frozen: bool):
        super().__init__()
        self.model, self.frozen = model, frozen
        self.semantic: list[W2VBertFeatures] = []  # a list: the frozen w2v-BERT is no part of the codec's weights
        if frozen:
            model.encoder.requires_grad_(False)
            model.quantizer.requires_grad_(False)

    def features(self, wave: torch.Tensor) -> torch.Tensor | None:
        """w2v-BERT 2.0 hidden states for a semantic config (loaded on first use), else None."""
        cfg = self.model.cfg
        if not cfg.semantic:
            return None
        if not self.semantic:
            if not cfg.semantic_model_path:
                raise ValueError("this XCodec2 config needs model.semantic_model_path (a local w2v-BERT 2.0)")
            self.semantic.append(W2VBertFeatures(cfg.semantic_model_path, cfg.semantic_layer).to(wave.device))
        return self.semantic[0](wave)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        q = self.model.quantizer
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            digits, codes = q.quantize(self.model.encoder(wave, self.features(wave)))
            z = q.project_out(digits)
        self.code_usage = codes.unique().numel() / codes.numel()  # distinct codes per token: 1/T means collapse
        lengths = torch.full((wave.shape[0],), z.shape[1], device=wave.device)
        return torch.stack(self.model.decoder(z, lengths))


def read_public(path: Path) -> dict[str, torch.Tensor]:
    """A public X-codec2 checkpoint file (Lightning .ckpt with `state_dict`, a bare state dict, safetensors)."""
    if path.suffix == ".safetensors":
        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state)


def initialise(model: XCodec2, init_from: str, frozen: bool) -> dict[str, list[str]]:
    """Load what fits from a codec directory or a public checkpoint; a frozen encoder/FSQ must load fully."""
    path = Path(init_from)
    if (path / MANIFEST).is_file():
        _, weights = read_codec_manifest(path, KIND)
        state = load_file(str(weights))
        expected = model.state_dict()
        fits = {k: v for k, v in state.items() if k in expected and v.shape == expected[k].shape}
        model.load_state_dict(fits, strict=False)
        report = {"fresh": [k for k in expected if k not in fits]}
    else:
        report = load_xcodec2_state_dict(model, read_public(path), strict=False)
    unloaded = [k for k in report["fresh"] if k.startswith(("encoder.", "quantizer."))]
    if frozen and unloaded:
        raise ValueError(f"init_from {init_from}: the frozen encoder/FSQ would keep random weights: {unloaded[:5]}")
    return report


@torch.no_grad()
def scale_encoder(model: XCodec2, wave: torch.Tensor) -> None:
    """Data-dependent initialisation of a from-scratch encoder (LSUV: each conv / linear in forward order
    shifted and rescaled to zero mean, unit std outputs on `wave`).

    With PyTorch's default init the encoder's output varies by ~1e-3 across frames of real speech against
    biases of ~1e-1, so FSQ rounds every frame to the same one or two codes; the decoder then learns the mean
    spectrum and the codes stay collapsed (seen: 1 code in use after 600 steps).
    """
    layers = [m for m in model.encoder.modules() if isinstance(m, (nn.Conv1d, nn.Linear))]
    semantic = model.encoder.semantic  # no w2v-BERT features here: from-scratch configs are acoustic-only
    if semantic is not None:
        raise ValueError("scale_encoder: a semantic config trains from a pre-trained encoder (init_from)")
    for layer in [*layers, model.quantizer.project_in]:
        seen: list[torch.Tensor] = []
        hook = layer.register_forward_hook(lambda _m, _i, out, seen=seen: seen.append(out))
        model.quantizer.project_in(model.encoder(wave))
        hook.remove()
        out = seen[0].transpose(1, -1) if isinstance(layer, nn.Conv1d) else seen[0]  # channels last
        std = out.reshape(-1, out.shape[-1]).std(0).clamp(min=1e-8)
        shape = (-1,) + (1,) * (layer.weight.ndim - 1)
        layer.weight.div_(std.view(shape))
        if layer.bias is not None:  # zero mean too: Snake's sin^2 term adds a DC that grows layer by layer
            layer.bias.sub_(out.reshape(-1, out.shape[-1]).mean(0)).div_(std)


@torch.no_grad()
def match_loudness(gen: Reconstruction, wave: torch.Tensor, target: torch.Tensor) -> float:
    """Shift the iSTFT head's log-magnitude bias so that the decoder starts at the data's loudness; returns the
    dB gap closed. From scratch the first outputs are ~12 dB off, and the RMS loss (eq. 3, in dB^2) then swamps
    the mel loss for the first steps, long enough to collapse the codes."""
    gap = (rms_db(target) - rms_db(gen(wave))).mean().item()
    head = gen.model.decoder.head.out
    head.bias[: head.out_features // 2] += gap / 20 * math.log(10)  # magnitude x 10^(gap / 20)
    return gap


def all_sum(values: list[float], device: torch.device) -> list[float]:
    if not dist.is_initialized():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def split(outputs: list[Features], n: int) -> tuple[list[Features], list[Features]]:
    """Discriminator outputs of cat([real, fake]) -> (real's, fake's)."""
    return [[f[:n] for f in o] for o in outputs], [[f[n:] for f in o] for o in outputs]


class Trainer:
    """Generator (codec) + discriminators, their optimizers and schedulers, one GAN step at a time."""

    def __init__(self, cfg: CodecTrainConfig, device: torch.device, world: int):
        self.cfg, self.device = cfg, device
        self.model = XCodec2(cfg.codec_config())
        self.gen = Reconstruction(self.model, cfg.freeze_encoder).to(device)
        self.disc = Discriminators(
            cfg.mpd_periods, cfg.mpd_channels, cfg.stft_n_ffts, cfg.stft_channels, cfg.mpd_max_channels
        ).to(device)
        self.mel = MelLoss(self.model.cfg.sample_rate, cfg.mel_n_ffts, cfg.mel_n_mels).to(device)
        self.gen_params = [p for p in self.gen.parameters() if p.requires_grad]
        self.opt_g = torch.optim.AdamW(self.gen_params, cfg.lr, tuple(cfg.betas), cfg.eps, cfg.weight_decay)
        self.opt_d = torch.optim.AdamW(self.disc.parameters(), cfg.disc_lr, tuple(cfg.betas), cfg.eps, cfg.weight_decay)
        self.sched_g, self.sched_d = scheduler(self.opt_g, cfg), scheduler(self.opt_d, cfg)
        ddp = world > 1 and dist.is_initialized()
        wrap = (lambda m: nn.parallel.DistributedDataParallel(m)) if ddp else (lambda m: m)
        self.gen_ddp, self.disc_ddp = wrap(self.gen), wrap(self.disc)

    def step(self, enc: torch.Tensor, target: torch.Tensor, adversarial: bool) -> dict[str, float]:
        cfg = self.cfg
        fake = self.gen_ddp(enc)
        out: dict[str, float] = {}
        if adversarial:
            real_out, fake_out = split(self.disc_ddp(torch.cat([target, fake.detach()])), len(target))
            loss_d = discriminator_loss(real_out, fake_out, cfg.adversarial)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            out["grad_norm_d"] = nn.utils.clip_grad_norm_(self.disc.parameters(), cfg.grad_clip).item()
            self.opt_d.step()
            out["loss_d"] = loss_d.item()
        mel, rms = self.mel(fake, target), rms_loss(fake, target, cfg.rms_eps)
        loss_g = cfg.mel_weight * mel + cfg.rms_weight * rms
        out |= {"mel": mel.item(), "rms": rms.item(), "code_usage": self.gen.code_usage}
        if adversarial:
            self.disc.requires_grad_(False)  # the generator's step leaves the discriminators' weights alone
            with torch.no_grad():
                real_out = self.disc(target)
            fake_out = self.disc(fake)
            adv, fm = generator_loss(fake_out, cfg.adversarial), feature_matching(real_out, fake_out)
            loss_g = loss_g + cfg.adv_weight * adv + cfg.fm_weight * fm
            out |= {"adv": adv.item(), "fm": fm.item()}
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.disc.requires_grad_(True)
        out["grad_norm_g"] = nn.utils.clip_grad_norm_(self.gen_params, cfg.grad_clip).item()
        self.opt_g.step()
        self.sched_g.step()
        with warnings.catch_warnings():  # before adv_start_step the discriminators' schedule runs without steps
            warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler.step\(\)` before")
            self.sched_d.step()
        return out | {"loss_g": loss_g.item()}

    @torch.no_grad()
    def evaluate(self, items: list, out_dir: Path, step: int) -> dict[str, float]:
        """Held-out whole utterances: mel and RMS loss (eq. 3), loudness error per 200 ms chunk; the first
        `eval_samples` decoded to out_dir/step_NNNNNN/."""
        self.gen.eval()
        sr, rows, scores = self.model.cfg.sample_rate, [], {"eval_mel": [], "eval_rms": [], "eval_chunk_db": []}
        for k, (uid, enc, target) in enumerate(items):
            fake = self.gen(torch.from_numpy(enc)[None].to(self.device))
            real = torch.from_numpy(target)[None].to(self.device)
            scores["eval_mel"].append(self.mel(fake, real).item())
            scores["eval_rms"].append(rms_loss(fake, real, self.cfg.rms_eps).item())
            scores["eval_chunk_db"].append(chunk_loudness_error(fake[0], real[0], sr))
            if k < self.cfg.eval_samples:
                wav = save_audio(out_dir / f"step_{step:06d}" / f"{k:02d}_{uid}.wav", fake[0].cpu().numpy(), sr)
                rows.append(
                    {"step": step, "id": uid, "wav": str(wav.relative_to(out_dir)), "mel": scores["eval_mel"][-1]}
                )
        self.gen.train()
        out_dir.mkdir(parents=True, exist_ok=True)
        with open(out_dir / SAMPLES, "a", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        return {k: float(np.mean(v)) for k, v in scores.items()}

    def save(self, directory: Path, state: dict, rank: int) -> None:
        """This rank's part of a checkpoint (every rank calls it; Ray merges the directories)."""
        (directory / "rng").mkdir(parents=True, exist_ok=True)
        torch.save(checkpoint.rng_state(), directory / "rng" / f"rank_{rank}.pt")
        if rank != 0:
            return
        XCodec2Codec(self.model).save(directory / "codec")
        self.gen.train()  # XCodec2Codec puts the model in eval mode
        parts = {"discriminators": self.disc, "opt_g": self.opt_g, "opt_d": self.opt_d}
        parts |= {"sched_g": self.sched_g, "sched_d": self.sched_d}
        torch.save({k: v.state_dict() for k, v in parts.items()}, directory / TRAIN)
        (directory / checkpoint.STATE).write_text(json.dumps(state, indent=2) + "\n")

    def load(self, directory: Path, rank: int) -> dict:
        state = checkpoint.read_state(directory)
        _, weights = read_codec_manifest(directory / "codec", KIND)
        self.model.load_state_dict(load_file(str(weights)), strict=True)
        parts = torch.load(directory / TRAIN, map_location=self.device, weights_only=True)
        self.disc.load_state_dict(parts["discriminators"])
        for name in ("opt_g", "opt_d", "sched_g", "sched_d"):
            getattr(self, name).load_state_dict(parts[name])
        rng = directory / "rng" / f"rank_{rank}.pt"
        if not rng.is_file():
            raise FileNotFoundError(f"{rng} missing: the checkpoint was written by fewer workers")
        checkpoint.set_rng_state(torch.load(rng, weights_only=False))
        return state


def train_worker(config: dict) -> None:
    """Ray Train entry point: `config` = {"cfg": CodecTrainConfig, "resume": checkpoint dir or None}."""
    from tts.train.session import RaySession

    run(config["cfg"], RaySession(), config.get("resume"))


def device_for(cfg: CodecTrainConfig) -> torch.device:
    if not cfg.use_gpu:
        return torch.device("cpu")
    try:
        import ray.train.torch

        return ray.train.torch.get_device()
    except RuntimeError:  # not inside a Ray Train worker
        return torch.device("cuda")


def run(cfg: CodecTrainConfig, session: Any, resume: str | None = None) -> dict:
    """Train from scratch / init_from, or resume; returns the last metrics. Every rank runs this."""
    from tqdm import tqdm

    rank, world = session.rank, session.world_size
    run_dir = Path(cfg.run_dir)
    restore = session.restored() or (Path(resume) if resume else None)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    device = device_for(cfg)
    if device.type == "cpu":
        torch.set_num_threads(cfg.cpus_per_worker)  # as Ray sets a worker's: local and Ray runs compute alike
    trainer = Trainer(cfg, device, world)
    step = 0
    if restore is not None:
        step = trainer.load(restore, rank)["step"]
        if rank == 0:
            keep_until(run_dir / checkpoint.METRICS, step)
            keep_until(run_dir / "samples" / SAMPLES, step)
    segments = Segments(clips(cfg, cfg.train_split), cfg.segment_tokens, trainer.model.cfg.sample_rate, cfg.seed)
    if restore is None:
        if cfg.init_from:
            initialise(trainer.model, cfg.init_from, cfg.freeze_encoder)
        else:  # from scratch: one batch no step draws (index max_steps), the same on every rank
            enc, target = segments.batch(cfg.max_steps, 0, cfg.batch_size, cfg.stages[0].min_sample_rate)
            enc, target = torch.from_numpy(enc).to(device), torch.from_numpy(target).to(device)
            scale_encoder(trainer.model, enc)
            trainer.gen.eval()
            match_loudness(trainer.gen, enc, target)
            trainer.gen.train()
        torch.manual_seed(cfg.seed + rank)
        np.random.seed(cfg.seed + rank)
    items = held_out(cfg, trainer.model.cfg.sample_rate) if rank == 0 else []

    cadence = checkpoint.Cadence.of(cfg)
    bar = tqdm(total=cfg.max_steps, initial=step, desc=cfg.job, disable=rank != 0, dynamic_ncols=True)
    window: dict[str, float] = {}
    count, start, metrics = 0, time.perf_counter(), {}
    while step < cadence.last:
        stage = cfg.stage_at(step)
        lr = trainer.sched_g.get_last_lr()[0]
        enc, target = segments.batch(step, rank, cfg.batch_size, cfg.stages[stage].min_sample_rate)
        out = trainer.step(
            torch.from_numpy(enc).to(device), torch.from_numpy(target).to(device), step >= cfg.adv_start_step
        )
        step, count = step + 1, count + 1
        for k, v in out.items():
            window[k] = window.get(k, 0.0) + v
        bar.update(1)
        if (due := cadence.due(step)) is None:
            continue
        evaluate, save = due
        keys = sorted(window)
        sums = all_sum([window[k] for k in keys] + [float(count)], device)
        seconds = time.perf_counter() - start
        metrics = {"step": step, "stage": stage + 1, "min_sample_rate": cfg.stages[stage].min_sample_rate, "lr": lr}
        metrics |= {k: s / sums[-1] for k, s in zip(keys, sums)}  # means over the steps since the last report
        metrics |= {
            "s_per_step": seconds / count,
            "audio_s_per_s": sums[-1] * cfg.batch_size * cfg.segment_seconds / seconds,
        }
        metrics["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # this worker's peak
        if evaluate and items:
            metrics |= trainer.evaluate(items, run_dir / "samples", step)
        bar.set_postfix({k: f"{metrics[k]:.4g}" for k in ("mel", "rms", "s_per_step")})
        writer = None
        if save:
            state = {"job": cfg.job, "step": step, "max_steps": cfg.max_steps, "stage": stage + 1}
            writer = partial(trainer.save, state=state | {"world_size": world, "metrics": metrics}, rank=rank)
        checkpoint.publish(session, run_dir, rank, metrics, writer)
        window, count, start = {}, 0, time.perf_counter()
    bar.close()
    return metrics
