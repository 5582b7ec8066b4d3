"""Codec decoder speed: real-time factor of the full-size 16 / 24 / 48 kHz X-codec2 decoders (random weights)
on CPU, and decode time against SpeechLM token-generation time for the same audio (paper section 2.1: the
decoder is a small share of synthesis time). Prints a table, writes JSON.

    python bench/codec_decoders.py [--seconds 4] [--repeats 2] [--llm-1b-tokens 16] \
        [--out runs/bench/codec_decoders.json]

Generation is timed for the embedded SpeechLM (tts/checkpoints/speechlm-embedded, 6.9 M parameters) writing
exactly the same number of tokens as the decoders decode (50 per second of audio), and for a random
LLaMA-3.2-1B-shaped SpeechLM (16 layers, d=2048, 193,856-token vocabulary, bf16) whose per-token time over
`--llm-1b-tokens` cached decoding steps is scaled to the same token count.
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

import torch

from tts.base.config import load_config
from tts.codec.xcodec2 import get_config
from tts.codec.xcodec2.decoder import XCodec2Decoder
from tts.codec.xcodec2.fsq import FSQ
from tts.codec.xcodec2.model import count_params
from tts.train.codec.config import CodecTrainConfig

ROOT = Path(__file__).resolve().parents[1]
SPEECHLM = ROOT / "tts" / "checkpoints" / "speechlm-embedded"
EMBEDDED_YAML = ROOT / "rayjobs" / "configs" / "codec_embedded.yaml"
FRAME_RATE = 50
EMBEDDED_LM = "embedded SpeechLM (6.9 M)"
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=4.0, help="audio per decode / generation")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--llm-1b-tokens", type=int, default=16, help="cached decoding steps timed (0: skip)")
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
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    for g, s in generators.items():
        print(f"generation of {tokens} tokens ({args.seconds:g} s of audio), {g}: {s:.2f} s")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"audio_seconds": args.seconds, "tokens": tokens, "repeats": args.repeats, "decoders": rows}
    result |= {"generation_s": generators, "llm_1b_tokens_timed": args.llm_1b_tokens}
    result |= {"threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine()}
    result |= {"load_average_start_end": [load, os.getloadavg()[0]]}  # a shared machine: other jobs' load
    out.write_text(json.dumps(result | {"wall_s": round(time.time() - start, 1)}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
