"""Reward throughput: audio-seconds scored per wall-second for each reward model, measured side by side in
one run on the embedded corpus: unbatched (batch 1, one actor) vs batched (one actor) vs two actors; then the
GRPO driver's submission pattern (one group per call, each call from its own thread) on 1, 2 and 4 actors,
with the chunks each actor served (least-loaded dispatch must spread them over all actors).

    python bench/reward_pools.py --manifest data/corpus/manifest.jsonl [--n 16] [--kinds asr asr+intel ...]
        [--out runs/bench/rewards.json]
Model loading is excluded (actors are warmed up first); the same samples go through every setting.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rewards.pool import ScorerPool
from rewards.router import RewardsConfig, pool_specs
from rewards.scorers import Sample
from tts.base.actors import PoolConfig
from tts.base.audio import load_audio
from tts.base.cluster import init_ray
from tts.base.manifest import read_manifest

SETTINGS = {"unbatched": (1, 1), "batched": (1, 8), "2 actors": (2, 8)}  # name: (actors, batch_size)
PATTERN_ACTORS = (1, 2, 4)  # the GRPO pattern's pool sizes (0.5 CPU each: 4 actors fill the 2 cores)
# row label -> (scorer kind, measurement, kwargs over the defaults); "dnsmos-rl" is the GRPO reward's setting
KINDS = {
    "asr": ("asr", "error_rate", {}),
    "asr+intel": ("asr", "error_rate", {"likelihood": True}),  # also the intelligibility reward's measurement
    "speaker": ("speaker", "sim", {}),
    "dnsmos": ("dnsmos", "dnsmos", {}),
    "dnsmos-rl": ("dnsmos", "dnsmos", {"windows_per_clip": 1, "p808": False}),
}


def load_samples(manifest: Path, n: int) -> list[Sample]:
    rows = [r for r in read_manifest(manifest, split="test") if r.language == "en"]
    by_speaker: dict[str, list] = {}
    for r in rows:
        by_speaker.setdefault(r.speaker, []).append(r)
    samples = []
    for r in rows[:n]:
        ref = next(o for o in by_speaker[r.speaker] if o.id != r.id)  # another utterance of the same voice
        wave, sr = load_audio(r.wav_path(manifest.parent))
        ref_wave, ref_sr = load_audio(ref.wav_path(manifest.parent))
        samples.append(Sample(wave, sr, r.text, r.language, ref_wave, ref_sr, r.id))
    return samples


def measure(kind: str, kwargs: dict, actors: int, batch: int, samples: list[Sample], repeats: int) -> float:
    pool = ScorerPool(kind, kwargs, PoolConfig(actors=actors, batch_size=batch, num_cpus=1))
    pool.wait_ready()
    pool.score(samples[: batch * actors])  # warm-up (first inference allocations)
    start = time.perf_counter()
    for _ in range(repeats):
        pool.score(samples)
    wall = time.perf_counter() - start
    pool.shutdown()
    return wall


def measure_grpo_pattern(kind: str, kwargs: dict, actors: int, group: int, samples: list[Sample]) -> tuple:
    """Wall seconds and chunks per actor for groups of `group` samples, one `score` call per group, all calls
    in flight at once from their own threads (as the GRPO driver scores each finished group)."""
    pool = ScorerPool(kind, kwargs, PoolConfig(actors=actors, batch_size=group, num_cpus=0.5))
    pool.wait_ready()
    pool.gather(pool.submit(samples[: group * actors]))  # warm-up: one chunk on every actor, all in flight
    warm = list(pool.calls)
    groups = [samples[k : k + group] for k in range(0, len(samples), group)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(groups)) as threads:
        list(threads.map(pool.score, groups))
    wall = time.perf_counter() - start
    calls = [c - w for c, w in zip(pool.calls, warm)]
    pool.shutdown()
    return wall, calls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="data/corpus/manifest.jsonl")
    p.add_argument("--n", type=int, default=16, help="test utterances per measurement")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--group", type=int, default=4, help="samples per call in the GRPO pattern (a group)")
    p.add_argument("--out", default="runs/bench/rewards.json")
    p.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS), help="rows to measure")
    args = p.parse_args()
    kinds = {k: KINDS[k] for k in args.kinds}

    init_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
    samples = load_samples(Path(args.manifest), args.n)
    audio_s = sum(len(s.wave) / s.sr for s in samples) * args.repeats
    specs = pool_specs(RewardsConfig())
    results: dict[str, dict[str, float]] = {}
    for label, (kind, measurement, overrides) in kinds.items():
        kwargs = specs[measurement][1] | overrides
        results[label] = {}
        for name, (actors, batch) in SETTINGS.items():
            wall = measure(kind, kwargs, actors, batch, samples, args.repeats)
            results[label][name] = audio_s / wall
            print(f"{label:9s} {name:10s} {audio_s / wall:8.1f} audio-s/s", flush=True)
    print()
    header = f"{'reward':9s} " + " ".join(f"{n:>11s}" for n in SETTINGS) + "  batch gain  pool gain"
    print(header)
    for label, r in results.items():
        cells = " ".join(f"{r[n]:11.1f}" for n in SETTINGS)
        print(f"{label:9s} {cells}  x{r['batched'] / r['unbatched']:9.2f}  x{r['2 actors'] / r['batched']:8.2f}")
    slowest = min(results, key=lambda k: results[k]["2 actors"])
    others = [results[k]["2 actors"] for k in results if k != slowest]
    ratio = min(others) / results[slowest]["2 actors"] if others else 1.0
    print(f"slowest stage: {slowest} ({ratio:.1f}x slower than the next)")
    pattern_s = sum(len(s.wave) / s.sr for s in samples)
    pattern: dict[str, dict] = {}
    print(f"\nGRPO pattern: {len(samples)} samples in groups of {args.group}, one call per group, all in flight")
    print(f"{'reward':9s} {'actors':>6s} {'audio-s/s':>10s} {'vs 1 actor':>10s}  chunks per actor")
    for label, (kind, measurement, overrides) in kinds.items():
        kwargs = specs[measurement][1] | overrides
        pattern[label] = {}
        for actors in PATTERN_ACTORS:
            wall, calls = measure_grpo_pattern(kind, kwargs, actors, args.group, samples)
            rate = pattern_s / wall
            pattern[label][actors] = {"audio_s_per_s": rate, "chunks_per_actor": calls}
            gain = rate / pattern[label][1]["audio_s_per_s"]
            print(f"{label:9s} {actors:6d} {rate:10.1f} {gain:9.2f}x  {calls}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "audio_seconds": audio_s,
                "n": len(samples),
                "settings": SETTINGS,
                "audio_s_per_s": results,
                "slowest": slowest,
                "slowest_ratio": ratio,
                "grpo_pattern": {"group": args.group, "per_kind": pattern},
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
