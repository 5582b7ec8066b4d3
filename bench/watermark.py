"""Watermark benchmark (tts/base/watermark.py) on a corpus test split: detection after each attack, false positives
on the unmarked originals, and the mark's cost in SNR and DNSMOS. Prints a table, writes JSON.

    python bench/watermark.py --manifest data/corpus/manifest.jsonl [--clips 100] [--dnsmos-clips 30] \
        [--null-keys 10] [--codec embedded|DIR] [--out runs/bench/watermark.json] [key=value ...]

key=value arguments override WatermarkConfig fields (strength_db=1.0, key=...). Clips are drawn at random (seed 0)
from the test split; with `--codec` each clip is first round-tripped through that codec, so the benchmark runs on
the kind of audio Serve sends (decoded speech). Attacks on the marked clip: MP3 and Ogg Opus at
libsndfile's default quality (what Serve sends) and at low bitrates, resampling, and +-6 dB gain written as 16-bit
PCM (full-scale clipping as it happens). The null is every original scored with the benchmark's key and
`--null-keys - 1` other keys. Goal (issue 20): detection after every attack, false positives <= 1%.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import random
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from tts.base.audio import load_audio, resample
from tts.base.config import load_config
from tts.base.manifest import iter_manifest
from tts.base.watermark import WatermarkConfig, band_residuals, embed, score


def codec(fmt: str, subtype: str, **opts) -> Callable[[np.ndarray, int], tuple[np.ndarray, int, float]]:
    """A round trip through a libsndfile format; returns the decoded audio, its rate and the bitrate (kbit/s)."""

    def run(wave: np.ndarray, sr: int) -> tuple[np.ndarray, int, float]:
        buf = io.BytesIO()
        sf.write(buf, np.clip(wave, -1.0, 1.0), sr, format=fmt, subtype=subtype, **opts)
        kbps = len(buf.getvalue()) * 8 / (len(wave) / sr) / 1000
        buf.seek(0)
        out, rate = sf.read(buf, dtype="float32")
        return out, rate, kbps

    return run


def via(rate: int) -> Callable[[np.ndarray, int], tuple[np.ndarray, int, float]]:
    return lambda wave, sr: (resample(resample(wave, sr, rate), rate, sr), sr, 0.0)


def to(rate: int) -> Callable[[np.ndarray, int], tuple[np.ndarray, int, float]]:
    return lambda wave, sr: (resample(wave, sr, rate), rate, 0.0)


def gain(db: float) -> Callable[[np.ndarray, int], tuple[np.ndarray, int, float]]:
    pcm = codec("WAV", "PCM_16")
    return lambda wave, sr: pcm(wave * 10 ** (db / 20), sr)[:2] + (0.0,)


ATTACKS = {
    "none": lambda wave, sr: (wave, sr, 0.0),
    "mp3": codec("MP3", "MPEG_LAYER_III"),  # libsndfile's default VBR, as Serve sends
    "mp3 CBR low": codec("MP3", "MPEG_LAYER_III", compression_level=0.85, bitrate_mode="CONSTANT"),
    "opus": codec("OGG", "OPUS"),
    "opus low": codec("OGG", "OPUS", compression_level=0.95),
    "resample 8k and back": via(8000),
    "resample to 44.1k": to(44100),
    "resample to 24k": to(24000),
    "gain -6 dB": gain(-6.0),
    "gain +6 dB": gain(6.0),
}


def snr_db(clean: np.ndarray, marked: np.ndarray) -> float:
    clean, marked = clean.astype(np.float64), marked.astype(np.float64)
    return float(10 * np.log10(np.sum(clean**2) / np.sum((marked - clean) ** 2)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="data/corpus/manifest.jsonl")
    p.add_argument("--split", default="test")
    p.add_argument("--clips", type=int, default=100)
    p.add_argument("--dnsmos-clips", type=int, default=30, help="DNSMOS is slow (seconds per clip): a subset")
    p.add_argument("--null-keys", type=int, default=10, help="keys the unmarked originals are scored with")
    p.add_argument("--codec", help="round-trip the clips through this codec first ('embedded' or a codec directory)")
    p.add_argument("--out", default="runs/bench/watermark.json")
    p.add_argument("overrides", nargs="*", help="WatermarkConfig fields, e.g. strength_db=1.0 key=my-key")
    args = p.parse_args()

    cfg = load_config(WatermarkConfig, None, args.overrides)
    manifest = Path(args.manifest)
    rows = list(iter_manifest(manifest, split=args.split))
    if not rows:
        raise SystemExit(f"{manifest}: no rows in split {args.split!r}")
    rows = random.Random(0).sample(rows, min(args.clips, len(rows)))
    speech_codec = None
    if args.codec:
        from tts.codec import load_codec

        speech_codec = load_codec(None if args.codec == "embedded" else args.codec)
    null_cfgs = [cfg] + [replace(cfg, key=f"{cfg.key}-null-{i}") for i in range(1, args.null_keys)]

    scores: dict[str, list[float]] = {name: [] for name in ATTACKS}
    kbps: dict[str, list[float]] = {name: [] for name in ATTACKS}
    null, own_null, snrs, durations, clips, per_clip = [], [], [], [], [], []
    embed_s = detect_s = 0.0
    for row in rows:
        wave, sr = load_audio(row.wav_path(manifest.parent))
        if speech_codec is not None:
            wave, sr = speech_codec.decode(speech_codec.encode(wave, sr)), speech_codec.sample_rate
        durations.append(len(wave) / sr)
        t = time.perf_counter()
        marked = embed(wave, sr, cfg)
        embed_s += time.perf_counter() - t
        snrs.append(snr_db(wave, marked))
        residuals = band_residuals(wave, sr, cfg)
        keyed = [score(residuals, c) for c in null_cfgs]
        own_null.append(keyed[0])
        null.append(keyed)
        for name, attack in ATTACKS.items():
            attacked, rate, rate_kbps = attack(marked, sr)
            t = time.perf_counter()
            scores[name].append(score(band_residuals(attacked, rate, cfg), cfg))
            detect_s += time.perf_counter() - t
            kbps[name].append(rate_kbps)
        clips.append((wave, marked, sr))
        per_clip.append(
            {"id": row.id, "seconds": len(wave) / sr, "null": keyed[0]} | {k: v[-1] for k, v in scores.items()}
        )

    subset = clips[: args.dnsmos_clips]
    before = after = []
    if subset:
        from rewards.dnsmos import DnsmosModel

        dnsmos = DnsmosModel()
        before = dnsmos.score_batch([w for w, _, _ in subset], [sr for _, _, sr in subset])
        after = dnsmos.score_batch([m for _, m, _ in subset], [sr for _, _, sr in subset])
    deltas = {k: [getattr(a, k) - getattr(b, k) for a, b in zip(after, before)] for k in ("ovrl", "sig", "bak")}

    null_arr = np.array(null)  # (clips, keys)
    n_detect = len(rows) * len(ATTACKS)
    report = {
        "config": asdict(cfg) | {"key": "(hidden)" if cfg.key != WatermarkConfig.key else cfg.key},
        "clips": len(rows),
        "seconds": {"mean": float(np.mean(durations)), "min": float(np.min(durations))},
        "detection": {
            name: {
                "rate": float(np.mean(np.array(v) >= cfg.threshold)),
                "score_mean": float(np.mean(v)),
                "score_min": float(np.min(v)),
                "kbps": float(np.mean(kbps[name])) if any(kbps[name]) else None,
            }
            for name, v in scores.items()
        },
        "null": {
            "scores": null_arr.size,
            "keys": len(null_cfgs),
            "false_positive_rate": float(np.mean(null_arr >= cfg.threshold)),
            "false_positive_rate_own_key": float(np.mean(np.array(own_null) >= cfg.threshold)),
            "mean": float(null_arr.mean()),
            "std": float(null_arr.std()),
            "p99": float(np.percentile(null_arr, 99)),
            "max": float(null_arr.max()),
            "per_key_mean": [float(m) for m in null_arr.mean(axis=0)],
        },
        "snr_db": {"mean": float(np.mean(snrs)), "min": float(np.min(snrs))},
        "dnsmos": {
            "clips": len(subset),
            "ovrl_before": float(np.mean([b.ovrl for b in before])) if subset else None,
            "ovrl_after": float(np.mean([a.ovrl for a in after])) if subset else None,
        }
        | {f"{k}_delta_mean": float(np.mean(v)) if subset else None for k, v in deltas.items()}
        | {f"{k}_delta_std": float(np.std(v)) if subset else None for k, v in deltas.items()},
        "speed": {
            "embed_rtf": embed_s / sum(durations),
            "detect_ms_per_clip": 1000 * detect_s / n_detect,
        },
        "rows": per_clip,
        "host": platform.node(),
        "args": vars(args),
    }

    print(
        f"{len(rows)} clips of {manifest} ({args.split}), {np.mean(durations):.1f} s mean; "
        f"strength {cfg.strength_db} dB, {cfg.bands} bands {cfg.low_hz:.0f}-{cfg.high_hz:.0f} Hz, "
        f"threshold {cfg.threshold}"
    )
    print(f"{'attack':22s} {'kbit/s':>6s} {'detected':>8s} {'score mean':>10s} {'score min':>9s}")
    for name, d in report["detection"].items():
        rate = f"{d['kbps']:.0f}" if d["kbps"] else "-"
        print(f"{name:22s} {rate:>6s} {d['rate']:8.2f} {d['score_mean']:10.2f} {d['score_min']:9.2f}")
    n = report["null"]
    print(
        f"unmarked originals x {n['keys']} keys ({n['scores']} scores): "
        f"false positives {n['false_positive_rate']:.3f}, "
        f"score mean {n['mean']:.2f} std {n['std']:.2f} p99 {n['p99']:.2f} max {n['max']:.2f}; "
        f"per-key means {min(n['per_key_mean']):.2f} to {max(n['per_key_mean']):.2f}"
    )
    misses = [r for r in per_clip if min(r[k] for k in ATTACKS) < cfg.threshold]
    if misses:
        print(
            f"clips missed after some attack: {len(misses)}, {np.mean([r['seconds'] for r in misses]):.1f} s mean "
            f"(all clips: {np.mean(durations):.1f} s)"
        )
    d = report["dnsmos"]
    print(f"SNR marked vs original: {report['snr_db']['mean']:.1f} dB mean, {report['snr_db']['min']:.1f} min")
    if subset:
        print(
            f"DNSMOS OVRL ({d['clips']} clips) {d['ovrl_before']:.3f} -> {d['ovrl_after']:.3f} "
            f"(delta {d['ovrl_delta_mean']:+.3f} +- {d['ovrl_delta_std']:.3f}; SIG {d['sig_delta_mean']:+.3f}, "
            f"BAK {d['bak_delta_mean']:+.3f})"
        )
    print(f"embed RTF {report['speed']['embed_rtf']:.4f}, detect {report['speed']['detect_ms_per_clip']:.0f} ms/clip")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
