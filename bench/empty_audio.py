"""Empty-audio guard: how often the SpeechLM ends speech before saying anything, without and with the
`generation.min_codes_per_char` floor, on held-out voice-cloning prompts (the GRPO held-out set: test-split texts,
each cloning another utterance of its held-out speaker). Runs the Serve generation engine directly (no Ray).

    python bench/empty_audio.py [--prompts 20] [--seeds 3] [--floor 2.0] [--out runs/bench/empty_audio.json]
                                [key=value ...]   # ServeConfig overrides, e.g. generation.backend=vllm

A sample is empty when it has no codes (the decoder would return a zero-length WAV); "short" when it has fewer
codes than the floor. Same prompts and seeds in both columns.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from pathlib import Path

from tts.base.config import load_config
from tts.serve.config import ServeConfig


def held_out_prompts(model, manifest: str, count: int):
    """The GRPO held-out clone prompts (tts.grpo.dataset), references encoded by the served codec."""
    from tts.grpo.config import DataConfig
    from tts.grpo.dataset import PromptSet

    prompts = PromptSet(DataConfig(manifest=manifest), "test", model.tokenizer, model.layout)
    codec = model.codec.load()
    prompts.attach({i: codec.encode_file(wav) for i, wav in prompts.references()})
    return prompts.held_out(count, seed=0)


async def lengths(gen, prompts, seeds: int, floor: float, cfg: ServeConfig) -> list[dict]:
    from tts.serve.generation import Sampling
    from tts.speech_sampling import min_new_tokens

    g, rows = cfg.generation, []
    for p in prompts:
        for seed in range(seeds):
            need = min_new_tokens(p.text, floor, g.max_new_tokens)
            sampling = Sampling(g.temperature, g.top_p, g.max_new_tokens, seed, min_tokens=need)
            n = sum([len(codes) async for codes in gen.generate(p.input_ids, sampling)])
            rows.append({"prompt": p.id, "seed": seed, "codes": n, "floor": need, "chars": len(p.text)})
    return rows


def summary(rows: list[dict], floor_of: list[dict]) -> dict:
    n = len(rows)
    return {
        "samples": n,
        "empty": sum(r["codes"] == 0 for r in rows) / n,
        "short": sum(r["codes"] < f["floor"] for r, f in zip(rows, floor_of)) / n,
        "codes_per_char_p50": statistics.median(r["codes"] / r["chars"] for r in rows),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="rayjobs/configs/serve_embedded.yaml")
    p.add_argument("--manifest", default="data/corpus/manifest.jsonl")
    p.add_argument("--prompts", type=int, default=20)
    p.add_argument("--seeds", type=int, default=3, help="samples per prompt")
    p.add_argument("--floor", type=float, default=None, help="codes per character (default: the config's)")
    p.add_argument("--out", default="runs/bench/empty_audio.json")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()

    from tts.serve.generation import SpeechLMGeneration
    from tts.speechlm import open_speechlm

    cfg = load_config(ServeConfig, args.config, args.overrides)
    floor = cfg.generation.min_codes_per_char if args.floor is None else args.floor
    model = open_speechlm(cfg.model, cfg.codec)
    prompts = held_out_prompts(model, args.manifest, args.prompts)
    gen = SpeechLMGeneration(cfg, str(model.directory))

    async def both():  # one event loop: vLLM's AsyncLLM binds its output handler to the first loop it runs in
        return await lengths(gen, prompts, args.seeds, 0.0, cfg), await lengths(gen, prompts, args.seeds, floor, cfg)

    off, on = asyncio.run(both())
    report = {"off": summary(off, on), "on": summary(on, on), "floor": floor, "backend": gen.backend}
    print(
        f"{len(prompts)} held-out clone prompts x {args.seeds} seeds, backend {gen.backend}, "
        f"T={cfg.generation.temperature}, top_p={cfg.generation.top_p}"
    )
    print(f"{'floor (codes/char)':>18s} {'empty':>6s} {'< floor':>7s} {'codes/char p50':>14s}")
    for name, f in (("off", 0.0), ("on", floor)):
        s = report[name]
        print(f"{f:18.2f} {s['empty']:6.2f} {s['short']:7.2f} {s['codes_per_char_p50']:14.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report | {"rows": {"off": off, "on": on}, "args": vars(args)}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
