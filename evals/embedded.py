"""The embedded default built and checked end to end: corpus -> codec -> round trip -> tiny SpeechLM.

Everything runs offline on CPU. The committed codec checkpoint is used when present (checksum verified);
`refit_codec=true` fits a new one from the corpus into the run directory (<= 15 min on 2 cores). The round trip
is an evaluation (Whisper WER and DNSMOS of decoded speech), hence this pipeline's place among the evals.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tts.codec.world_vq import WorldVQConfig
from tts.corpus.generate import CorpusConfig
from tts.speechlm import TinySpeechLMConfig


@dataclass
class EmbeddedJobConfig:
    run_dir: str = "runs/embedded"
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    codec_dir: str | None = None  # None: the committed embedded codec (tts/checkpoints/codec-wordsync)
    refit_codec: bool = False
    codec: WorldVQConfig = field(default_factory=WorldVQConfig)  # settings of a refit
    codec_fit_files: int = 1200
    check_utterances: int = 8  # English test utterances scored for the round-trip check
    speechlm: TinySpeechLMConfig = field(default_factory=TinySpeechLMConfig)


def step(name: str):
    print(f"\n== {name}", flush=True)
    return time.time()


def run(cfg: EmbeddedJobConfig) -> dict:
    from evals.codec_roundtrip import roundtrip
    from rewards.asr import FasterWhisperASR
    from rewards.dnsmos import DnsmosModel
    from tts.base.manifest import read_manifest
    from tts.codec import EMBEDDED_CODEC, load_codec
    from tts.codec.world_vq import fit_from_manifest
    from tts.corpus.generate import generate
    from tts.speechlm import create_tiny_speechlm

    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {"config": asdict(cfg), "seconds": {}}

    t = step("1/4 corpus (espeak-ng)")
    corpus = generate(cfg.corpus)
    manifest = Path(cfg.corpus.out_dir) / "manifest.jsonl"
    report["corpus"] = {
        "manifest": str(manifest),
        "utterances": corpus["utterances"],
        "failures": len(corpus["failures"]),
        "per_language": {
            k: {s: v[s] for s in ("train", "val", "test", "hours")} for k, v in corpus["per_language"].items()
        },
    }
    report["seconds"]["corpus"] = round(time.time() - t, 1)

    t = step("2/4 codec")
    codec_dir = Path(cfg.codec_dir) if cfg.codec_dir else EMBEDDED_CODEC
    if cfg.refit_codec or not (codec_dir / "codec.json").is_file():
        codec_dir = run_dir / "codec"
        print(f"fitting the codec on {manifest} -> {codec_dir}")
        fit_from_manifest(manifest, codec_dir, cfg.codec, max_files=cfg.codec_fit_files)
    codec = load_codec(codec_dir)
    report["codec"] = {"dir": str(codec_dir), "codebook_size": codec.codebook_size, "sample_rate": codec.sample_rate}
    report["seconds"]["codec"] = round(time.time() - t, 1)

    t = step(f"3/4 round trip check ({cfg.check_utterances} English test utterances, Whisper tiny.en + DNSMOS)")
    rows = [r for r in read_manifest(manifest, split="test") if r.language == "en"][: cfg.check_utterances]
    check = roundtrip(codec, rows, manifest.parent, FasterWhisperASR(), DnsmosModel()).summary()
    report["roundtrip"] = check
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in check.items()}))
    report["seconds"]["roundtrip"] = round(time.time() - t, 1)

    t = step("4/4 tiny SpeechLM (untrained) through the token layout")
    report["speechlm"] = {
        k: v
        for k, v in create_tiny_speechlm(
            run_dir / "speechlm-init", cfg.speechlm, manifest=manifest, codec_dir=codec_dir
        ).items()
        if k != "config"
    }
    report["seconds"]["speechlm"] = round(time.time() - t, 1)

    (run_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nembedded default ready; report: {run_dir / 'report.json'}")
    return report
