"""`tts-align`: the platform's command line. Subcommands grow with the jobs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _corpus_generate(args: argparse.Namespace) -> None:
    from tts.base.config import load_config
    from tts.corpus.generate import CorpusConfig, generate

    cfg = load_config(CorpusConfig, args.config, args.overrides)
    summary = generate(cfg)
    per = {k: {s: v[s] for s in ("train", "val", "test", "hours")} for k, v in summary["per_language"].items()}
    print(
        json.dumps(
            {
                "out_dir": cfg.out_dir,
                "utterances": summary["utterances"],
                "failures": len(summary["failures"]),
                "per_language": per,
            },
            indent=2,
        )
    )


def _corpus_select(args: argparse.Namespace) -> None:
    from evals.meta import load_items
    from tts.base.manifest import select

    # a meta.lst's language is its directory's name, or the one language selected
    language = args.languages[0] if args.languages and len(args.languages) == 1 else None
    items = load_items(args.exclude_meta, language) if args.exclude_meta else []
    held = {t for it in items for t in (it.prompt_text, it.target_text)}
    n = select(args.manifest, args.out, args.languages, args.splits, args.speakers, held)
    print(json.dumps({"out": args.out, "rows": n}))


def _corpus_timings(args: argparse.Namespace) -> None:
    from tts.corpus.timing import add_timings

    asr = None
    if args.asr != "off":
        from rewards.asr import FasterWhisperASR

        asr = FasterWhisperASR(args.asr if args.asr != "embedded" else None)
    out = add_timings(args.manifest, args.tolerance, asr, progress=True)
    print(json.dumps(out | {"untimed": out["untimed"][:20]}, indent=2))


def _corpus_markups(args: argparse.Namespace) -> None:
    from tts.base.config import load_config
    from tts.corpus.markups import MarkupCorpusConfig, build_markup_corpus

    cfg = load_config(MarkupCorpusConfig, args.config, args.overrides)
    summary = build_markup_corpus(cfg)
    print(
        json.dumps(
            {
                "out_dir": cfg.out_dir,
                "samples": summary["samples"],
                "failures": len(summary["failures"]),
                "per_split": summary["per_split"],
            },
            indent=2,
        )
    )


def _codec_fit(args: argparse.Namespace) -> None:
    from tts.base.config import load_config
    from tts.codec.world_vq import WorldVQConfig, fit_from_manifest

    cfg = load_config(WorldVQConfig, args.config, args.overrides)
    stats = fit_from_manifest(
        args.manifest,
        args.out,
        cfg,
        max_files=args.max_files,
        seed=args.seed,
        **{k: v for k, v in (("max_frames", args.max_frames), ("warps", args.warps)) if v is not None},
    )
    print(
        json.dumps(
            {k: stats[k] for k in ("files", "frames", "seconds")}
            | {"bad_files": len(stats["bad_files"]), "out": args.out}
        )
    )


def _codec_encode(args: argparse.Namespace) -> None:
    from tts.codec import load_codec

    codec = load_codec(args.codec)
    codes = codec.encode_file(args.input)
    np.save(args.output, codes.astype(np.int32))
    print(f"{args.input} -> {args.output}: {len(codes)} codes ({len(codes) / codec.frame_rate:.2f} s)")


def _codec_decode(args: argparse.Namespace) -> None:
    from tts.base.audio import save_audio
    from tts.codec import load_codec

    codec = load_codec(args.codec)
    path = Path(args.input)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such codes file")
    try:
        codes = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as exc:  # EOFError: an empty file
        raise ValueError(f"{path}: not a .npy array of codes ({exc})") from exc
    wave = codec.decode(codes)
    save_audio(args.output, wave, codec.sample_rate)
    print(f"{args.input} -> {args.output}: {len(wave) / codec.sample_rate:.2f} s at {codec.sample_rate} Hz")


def _codec_info(args: argparse.Namespace) -> None:
    from tts.codec.xcodec2 import info

    print(json.dumps(info(args.config), indent=2))


def _speechlm_init(args: argparse.Namespace) -> None:
    from tts.base.config import load_config
    from tts.speechlm import TinySpeechLMConfig, create_tiny_speechlm

    cfg = load_config(TinySpeechLMConfig, args.config, args.overrides)
    info = create_tiny_speechlm(args.out, cfg, manifest=args.manifest, codec_dir=args.codec)
    print(json.dumps(info, indent=2))


def _speechlm_export(args: argparse.Namespace) -> None:
    from tts.speechlm import export_speechlm

    notes = json.loads(args.notes) if args.notes else None
    print(json.dumps(export_speechlm(args.source, args.out, args.dtype, notes), indent=2))


def _speechlm_info(args: argparse.Namespace) -> None:
    from tts.speechlm import open_speechlm

    lm = open_speechlm(args.path, args.codec)  # a clear error if the model and its codec do not belong together
    layout = lm.layout
    print(
        json.dumps(
            {
                "directory": str(lm.directory),
                "layout": {k: getattr(layout, k) for k in ("kind", "text_vocab_size", "audio_offset", "vocab_size")},
                "codec": {"directory": str(lm.codec.directory), "type": lm.codec.kind, "sha256": lm.codec.sha256},
                "codebook_size": lm.codec.codebook_size,
            },
            indent=2,
        )
    )


def _load_sample(audio: str, text: str, ref: str | None, language: str, sample_id: str = ""):
    """A Sample whose load errors travel as `meta["error"]`: scored as failed, never raised."""
    from rewards.scorers import Sample
    from tts.base.audio import AudioError, load_audio

    sample = Sample(wave=None, sr=16000, text=text, language=language, id=sample_id or Path(audio).stem)
    if not audio:
        return sample
    try:
        if not text.strip():
            raise ValueError("empty text")
        sample.wave, sample.sr = load_audio(audio)
        if ref:
            sample.ref_wave, sample.ref_sr = load_audio(ref)
    except (AudioError, ValueError) as exc:
        sample.meta["error"] = str(exc)
    return sample


def _score(args: argparse.Namespace) -> None:
    from rewards.router import RewardRouter, RewardsConfig, public_record
    from tts.base.config import load_config

    cfg = load_config(RewardsConfig, args.config, args.overrides)
    if args.jsonl:
        src = Path(args.jsonl)
        if not src.is_file():
            raise FileNotFoundError(f"{src}: no such JSONL file")
        samples = []
        for lineno, line in enumerate(src.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                audio = str(src.parent / row["audio"])
                ref = str(src.parent / row["ref"]) if row.get("ref") else None
                samples.append(
                    _load_sample(
                        audio, row.get("text", ""), ref, row.get("language", args.lang), str(row.get("id", lineno))
                    )
                )
            except (json.JSONDecodeError, KeyError, TypeError) as exc:  # scored as a failed sample, not fatal
                bad = _load_sample("", "", None, args.lang, str(lineno))
                bad.meta["error"] = f"{src}:{lineno}: bad row ({exc}); expected {{audio, text[, ref, language, id]}}"
                samples.append(bad)
    else:
        if not args.audio or args.text is None:
            raise ValueError("give --audio and --text, or --jsonl FILE")
        samples = [_load_sample(args.audio, args.text, args.ref, args.lang)]
    if not args.ref and not args.jsonl:  # no reference: SIM cannot be measured, so it is not a component
        cfg.components = [c for c in cfg.components if c.name != "sim"]
    router = RewardRouter(cfg, use_ray=args.ray)
    records = [public_record(r) for r in router.score(samples)]
    if args.jsonl:
        out = Path(args.out or Path(args.jsonl).with_suffix(".scored.jsonl"))
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        print(f"scored {len(records)} samples -> {out}")
    else:
        print(json.dumps(records[0], indent=2, ensure_ascii=False))


def _eval_make_sets(args: argparse.Namespace) -> None:
    from evals.config import SetsConfig
    from evals.sets import make_sets
    from tts.base.config import load_config

    cfg = load_config(SetsConfig, args.config, args.overrides)
    summary = make_sets(args.manifest, args.out, cfg)
    print(json.dumps({"out": args.out, "sets": {k: v["n"] for k, v in summary["sets"].items()}}, indent=2))


def _watermark_config(args: argparse.Namespace):
    from tts.base.watermark import WatermarkConfig, env_key

    return WatermarkConfig(key=args.key if args.key is not None else env_key(WatermarkConfig.key))


def _watermark_detect(args: argparse.Namespace) -> None:
    from tts.base.audio import load_audio
    from tts.base.watermark import detect

    wave, sr = load_audio(args.input)
    print(json.dumps(detect(wave, sr, _watermark_config(args)).as_dict()))


def _watermark_embed(args: argparse.Namespace) -> None:
    from tts.base.audio import load_audio, save_audio
    from tts.base.watermark import embed

    wave, sr = load_audio(args.input)
    save_audio(args.output, embed(wave, sr, _watermark_config(args)), sr)
    print(f"{args.input} -> {args.output}: {len(wave) / sr:.2f} s at {sr} Hz, watermarked")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tts-align", description=__doc__)
    sub = p.add_subparsers(dest="group", required=True)

    corpus = sub.add_parser("corpus", help="embedded espeak-ng speech corpus").add_subparsers(dest="cmd", required=True)
    g = corpus.add_parser("generate", help="render the corpus and its JSONL manifest")
    g.add_argument("--config", help="YAML with CorpusConfig fields")
    g.add_argument("overrides", nargs="*", help="key=value overrides, e.g. out_dir=data/corpus sentences.en=500")
    g.set_defaults(func=_corpus_generate)
    s = corpus.add_parser("select", help="write a manifest of some languages / splits (wav paths re-rooted)")
    s.add_argument("--manifest", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--languages", nargs="+", help="e.g. en (default: all)")
    s.add_argument("--splits", nargs="+", choices=["train", "val", "test"], help="default: all")
    s.add_argument("--speakers", nargs="+", help="e.g. en_08 (default: all)")
    s.add_argument(
        "--exclude-meta", nargs="+", default=[], help="eval sets (meta.lst) whose prompt and target texts to leave out"
    )
    s.set_defaults(func=_corpus_select)
    t = corpus.add_parser(
        "timings", help="add each row's phoneme (espeak-ng corpora) or word (ASR) start times to its manifest"
    )
    t.add_argument("--manifest", required=True)
    t.add_argument("--tolerance", type=float, default=0.1, help="s a re-rendering may differ from the audio")
    t.add_argument(
        "--asr",
        default="embedded",
        help="rows no corpus voice made (recordings, styled renderings) are timed by Whisper's word timestamps: "
        "'embedded' (tiny.en), a CTranslate2 model directory, or 'off'",
    )
    t.set_defaults(func=_corpus_timings)
    m = corpus.add_parser("markups", help="render the paired markup (style / non-verbal tag) corpus for LoRA")
    m.add_argument("--config", help="YAML with MarkupCorpusConfig fields")
    m.add_argument("overrides", nargs="*", help="key=value overrides, e.g. samples.train=500")
    m.set_defaults(func=_corpus_markups)

    codec = sub.add_parser("codec", help="audio codec tools").add_subparsers(dest="cmd", required=True)
    f = codec.add_parser("fit", help="fit the embedded WORLD-VQ codec on a manifest's train split")
    f.add_argument("--manifest", required=True)
    f.add_argument("--out", required=True, help="run directory for the codec checkpoint")
    f.add_argument("--max-files", type=int, default=1200)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--max-frames", type=int, help="frames sampled for k-means (default: fit()'s, 300,000)")
    f.add_argument("--warps", type=int, help="vocal-tract-length-warped copies of each file (0: none; default 1)")
    f.add_argument("--config", help="YAML with WorldVQConfig fields")
    f.add_argument("overrides", nargs="*", help="key=value overrides, e.g. env_clusters=1024")
    f.set_defaults(func=_codec_fit)
    for name, func, inp, out in (
        ("encode", _codec_encode, "IN.wav", "OUT.npy"),
        ("decode", _codec_decode, "IN.npy", "OUT.wav"),
    ):
        c = codec.add_parser(name, help=f"{inp} -> {out}")
        c.add_argument("input", metavar=inp)
        c.add_argument("output", metavar=out)
        c.add_argument("--codec", help="codec checkpoint directory (default: the embedded codec)")
        c.set_defaults(func=func)

    sc = sub.add_parser("score", help="score audio with the reward models (WER/CER, SIM, DNSMOS, composite)")
    sc.add_argument("--audio", help="generated audio file")
    sc.add_argument("--text", help="the text it should say")
    sc.add_argument("--ref", help="reference audio of the target speaker (enables SIM)")
    sc.add_argument("--lang", default="en")
    sc.add_argument("--jsonl", help="many samples: rows {audio, text[, ref, language, id]}, paths relative to it")
    sc.add_argument("--out", help="output JSONL (default: IN.scored.jsonl)")
    sc.add_argument("--ray", action="store_true", help="score through Ray actor pools instead of in-process")
    sc.add_argument("--config", help="YAML with RewardsConfig fields")
    sc.add_argument("overrides", nargs="*", help="e.g. asr.backend=whisper asr.model=large-v3")
    sc.set_defaults(func=_score)

    ci = codec.add_parser("info", help="parameter counts and rates of a named X-codec2 config (no weights needed)")
    ci.add_argument("--config", required=True, help="xcodec2-16k, xcodec2-24k, xcodec2-48k or xcodec2-tiny")
    ci.set_defaults(func=_codec_info)

    lm = sub.add_parser("speechlm", help="SpeechLM checkpoints").add_subparsers(dest="cmd", required=True)
    i = lm.add_parser("init", help="create the embedded tiny LLaMA SpeechLM (untrained) via the token layout")
    i.add_argument("--out", required=True)
    i.add_argument("--manifest", help="corpus manifest whose texts train the text tokenizer (default: generated text)")
    i.add_argument("--codec", help="codec checkpoint whose codebook size sets the audio vocabulary")
    i.add_argument("--config", help="YAML with TinySpeechLMConfig fields")
    i.add_argument("overrides", nargs="*")
    i.set_defaults(func=_speechlm_init)
    e = lm.add_parser("export", help="copy a trained checkpoint to a plain HF directory with a checksum")
    e.add_argument("--from", dest="source", required=True, help="checkpoint or training run directory")
    e.add_argument("--out", required=True)
    e.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    e.add_argument("--notes", help="JSON object stored in export.json (e.g. the commands that made it)")
    e.set_defaults(func=_speechlm_export)
    n = lm.add_parser("info", help="open a SpeechLM with its codec (checksums, codebook sizes) and describe both")
    n.add_argument("path", help="SpeechLM directory, or a run directory (its latest checkpoint)")
    n.add_argument("--codec", help="codec directory (default: the one the SpeechLM records)")
    n.set_defaults(func=_speechlm_info)
    ev = sub.add_parser("eval", help="evaluation benchmarks").add_subparsers(dest="cmd", required=True)
    ms = ev.add_parser(
        "make-sets", help="seed-tts-eval-style sets from a corpus test split (cloning, continuation, length)"
    )
    ms.add_argument("--manifest", required=True, help="corpus manifest (its test split: held-out speakers and texts)")
    ms.add_argument("--out", required=True, help="e.g. data/evalsets")
    ms.add_argument("--config", help="YAML with SetsConfig fields")
    ms.add_argument("overrides", nargs="*", help="e.g. languages=[en] length_per_bucket=20")
    ms.set_defaults(func=_eval_make_sets)

    wm = sub.add_parser("watermark", help="the served audio's watermark").add_subparsers(dest="cmd", required=True)
    key_help = "watermark key (default: $TTS_ALIGN_WATERMARK_KEY, else the public default key)"
    d = wm.add_parser("detect", help='print {"watermarked": bool, "score": float} for an audio file')
    d.add_argument("input", metavar="FILE", help="any audio file libsndfile reads (wav, flac, mp3, ogg), >= 1 s")
    d.add_argument("--key", help=key_help)
    d.set_defaults(func=_watermark_detect)
    em = wm.add_parser("embed", help="IN -> OUT (16-bit WAV) with the watermark, e.g. for audio made elsewhere")
    em.add_argument("input", metavar="IN")
    em.add_argument("output", metavar="OUT")
    em.add_argument("--key", help=key_help)
    em.set_defaults(func=_watermark_embed)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"tts-align: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
