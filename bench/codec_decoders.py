"""Codec decoder speed: real-time factor of the full-size 16 / 24 / 48 kHz X-codec2 decoders (random weights)
on CPU, and decode time against SpeechLM token-generation time for the same audio (paper section 2.1: the
decoder is a small share of synthesis time). Prints a table, writes JSON.

    python bench/codec_decoders.py [--seconds 4] [--repeats 2] [--llm-1b-tokens 16] \
        [--out runs/bench/codec_decoders.json]

Generation is timed for the embedded SpeechLM (tts/checkpoints/speechlm-embedded, 7.85 M parameters) writing
exactly the same number of tokens as the decoders decode (50 per second of audio), and for a random
LLaMA-3.2-1B-shaped SpeechLM (16 layers, d=2048, 193,856-token vocabulary, bf16) whose per-token time over
`--llm-1b-tokens` cached decoding steps is scaled to the same token count.

A second table times what a GRPO step asks of a decoder actor: a group of `--group` completions of `--seconds`
after one `--reference-seconds` prompt, decoded with the whole reference as left context and with its tail only
(`decoder.prompt_context`, the default), for the committed WORLD-VQ codecs and the random 16 kHz X-codec2, and
how far the tail-only audio is from the whole-context audio (log-mel distance, dB) against the distance between
two whole-context decodes of different completions, for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tts.base.config import load_config
from tts.codec import load_codec
from tts.codec.decoders import DecodeItem, DecoderActor, DecoderConfig
from tts.codec.xcodec2 import get_config
from tts.codec.xcodec2.decoder import XCodec2Decoder
from tts.codec.xcodec2.fsq import FSQ
from tts.codec.xcodec2.model import count_params
from tts.train.codec.config import CodecTrainConfig

ROOT = Path(__file__).resolve().parents[1]
SPEECHLM = ROOT / "tts" / "checkpoints" / "speechlm-embedded"
WORLD_VQ = [ROOT / "tts" / "checkpoints" / name for name in ("codec-speechlm", "codec-wordsync")]
EMBEDDED_YAML = ROOT / "rayjobs" / "configs" / "codec_embedded.yaml"
FRAME_RATE = 50
EMBEDDED_LM = "embedded SpeechLM (7.85 M)"
LLM_1B = "1B-shaped SpeechLM (bf16, per-token x tokens)"


def rounds(workloads: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall seconds per workload: one warm-up call each, then `repeats` rounds that time every workload
    in turn, so a change in the machine's load hits decoders and generators alike."""
    for fn in workloads.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in workloads}
    for _ in range(repeats):
        for name, fn in workloads.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def decoder(cfg, tokens: int) -> tuple[Callable[[], object], float]:
    """A random-weight decoder's decode of `tokens` random codes, and its parameter count."""
    torch.manual_seed(0)
    fsq, dec = FSQ(cfg.fsq_levels, cfg.vq_dim).eval(), XCodec2Decoder(cfg).eval()
    codes, lengths = torch.randint(0, cfg.codebook_size, (1, tokens)), torch.tensor([tokens])
    return (lambda: dec(fsq.indices_to_codes(codes), lengths)), count_params(dec) + count_params(fsq.project_out)


def generation(model, tokens: int) -> Callable[[], object]:
    """Generate exactly `tokens` new tokens after a 16-token prompt (KV cache, greedy)."""
    prompt = torch.randint(0, 1000, (1, 16))
    kw = {"max_new_tokens": tokens, "min_new_tokens": tokens, "do_sample": False, "pad_token_id": 0}
    return lambda: model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), **kw)


def llama_1b() -> torch.nn.Module:
    """LLaMA-3.2-1B's shape with the paper's 193,856-token vocabulary, random bf16 weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=193856,
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        rope_theta=500000.0,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).to(torch.bfloat16).eval()


def print_table(rows: list[tuple[str, ...]]) -> None:
    """Rows of cells, each column padded to its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


def log_mel_db(a: np.ndarray, b: np.ndarray, sr: int) -> float:
    """Mean |difference| of two waves' log-mel spectrograms, dB."""
    import librosa

    mel = [librosa.power_to_db(librosa.feature.melspectrogram(y=w, sr=sr, n_mels=64), ref=1.0) for w in (a, b)]
    return float(np.abs(mel[0] - mel[1]).mean())


def group_decode(args: argparse.Namespace) -> list[dict]:
    """Seconds per GRPO group decode, whole reference vs its tail, per codec (see the module docstring)."""
    rng = np.random.default_rng(0)
    tail = DecoderConfig().prompt_context
    rows = []
    for path in WORLD_VQ:
        codec = load_codec(path)
        n_ref, n = int(args.reference_seconds * FRAME_RATE), int(args.seconds * FRAME_RATE)
        ref = rng.integers(0, codec.codebook_size, n_ref)
        items = [DecodeItem(rng.integers(0, codec.codebook_size, n), ref) for _ in range(args.group)]
        actors = {k: DecoderActor(str(path), {"threads": 1, "prompt_context": k}) for k in (None, tail)}
        seconds = rounds({k: (lambda a=a, b=items: a.decode_batch(b)) for k, a in actors.items()}, args.repeats)
        whole, cut = (actors[k].decode_batch(items[:2]) for k in (None, tail))
        rows.append(
            {
                "codec": path.name,
                "whole_s": seconds[None],
                "tail_s": seconds[tail],
                "tail_vs_whole_db": log_mel_db(whole[0].wave, cut[0].wave, codec.sample_rate),
                "two_completions_db": log_mel_db(whole[0].wave, whole[1].wave, codec.sample_rate),
            }
        )
    cfg = get_config("xcodec2-16k")
    torch.manual_seed(0)
    fsq, dec = FSQ(cfg.fsq_levels, cfg.vq_dim).eval(), XCodec2Decoder(cfg).eval()

    def batch(context: int) -> Callable[[], object]:
        t = context + int(args.seconds * FRAME_RATE)
        codes = torch.randint(0, cfg.codebook_size, (args.group, t))
        return lambda: dec(fsq.indices_to_codes(codes), torch.full((args.group,), t))

    with torch.no_grad():
        seconds = rounds({"whole": batch(int(args.reference_seconds * FRAME_RATE)), "tail": batch(tail)}, args.repeats)
    rows.append({"codec": "xcodec2-16k (random)", "whole_s": seconds["whole"], "tail_s": seconds["tail"]})
    for r in rows:
        r["speedup"] = r["whole_s"] / r["tail_s"]
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=4.0, help="audio per decode / generation")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--llm-1b-tokens", type=int, default=16, help="cached decoding steps timed (0: skip)")
    p.add_argument("--group", type=int, default=8, help="completions per GRPO group (second table)")
    p.add_argument("--reference-seconds", type=float, default=6.0, help="prompt audio before each completion")
    p.add_argument("--out", default="runs/bench/codec_decoders.json")
    args = p.parse_args()

    from tts.speechlm import load_speechlm

    tokens = int(round(args.seconds * FRAME_RATE))
    start, load = time.time(), os.getloadavg()[0]
    configs = [(n, get_config(n)) for n in ("xcodec2-16k", "xcodec2-24k", "xcodec2-48k")]
    configs.append(("embedded (codec_embedded.yaml)", load_config(CodecTrainConfig, EMBEDDED_YAML).codec_config()))
    workloads, rows = {}, []
    for name, cfg in configs:
        workloads[name], params = decoder(cfg, tokens)
        rows.append({"decoder": name, "sample_rate": cfg.sample_rate, "params_m": params / 1e6})
    lm = load_speechlm(SPEECHLM)[0].eval()
    workloads[EMBEDDED_LM] = generation(lm, tokens)
    if args.llm_1b_tokens:
        workloads[LLM_1B] = generation(llama_1b(), args.llm_1b_tokens)
    with torch.no_grad():
        seconds = rounds(workloads, args.repeats)
    generators = {EMBEDDED_LM: seconds[EMBEDDED_LM]}
    if args.llm_1b_tokens:
        generators[LLM_1B] = seconds[LLM_1B] / args.llm_1b_tokens * tokens
    audio = tokens / FRAME_RATE
    for row in rows:
        row |= {"audio_s": audio, "decode_s": seconds[row["decoder"]], "rtf": seconds[row["decoder"]] / audio}
        row["decode_over_generation"] = {g: row["decode_s"] / s for g, s in generators.items()}

    names = list(generators)
    table = [("decoder", "kHz", "params M", "decode s", "RTF", *[f"decode / gen: {g}" for g in names])]
    for r in rows:
        ratios = [f"{r['decode_over_generation'][g]:.3f}" for g in names]
        table.append(
            (
                r["decoder"],
                f"{r['sample_rate'] // 1000}",
                f"{r['params_m']:.2f}",
                f"{r['decode_s']:.3f}",
                f"{r['rtf']:.3f}",
                *ratios,
            )
        )
    print_table(table)
    for g, s in generators.items():
        print(f"generation of {tokens} tokens ({args.seconds:g} s of audio), {g}: {s:.2f} s")

    groups = group_decode(args)
    tail = DecoderConfig().prompt_context
    print(f"\nGRPO group decode: {args.group} x {args.seconds:g} s after a {args.reference_seconds:g} s reference")
    table = [
        ("codec", "whole reference s", f"last {tail} codes s", "speedup", "log-mel dB vs whole", "(2 completions)")
    ]
    for r in groups:
        dist = [f"{r[k]:.2f}" if k in r else "-" for k in ("tail_vs_whole_db", "two_completions_db")]
        table.append((r["codec"], f"{r['whole_s']:.3f}", f"{r['tail_s']:.3f}", f"x{r['speedup']:.2f}", *dist))
    print_table(table)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"audio_seconds": args.seconds, "tokens": tokens, "repeats": args.repeats, "decoders": rows}
    result |= {"group_decode": groups, "group": args.group, "reference_seconds": args.reference_seconds}
    result |= {"generation_s": generators, "llm_1b_tokens_timed": args.llm_1b_tokens}
    result |= {"threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine()}
    result |= {"load_average_start_end": [load, os.getloadavg()[0]]}  # a shared machine: other jobs' load
    out.write_text(json.dumps(result | {"wall_s": round(time.time() - start, 1)}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
