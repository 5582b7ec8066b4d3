"""Serve latency per generation backend: time to first audio byte (TTFA), real-time factor (RTF) and total latency
of streaming vs non-streaming POST /v1/audio/speech at 1, 4 and 8 concurrent streams (p50 / p99), beside the
SpeechLM's own time to its first chunk (the first `first_chunk + lookahead` codes, asked of the generation
deployment directly with the same prompts, seeds and code floor) measured in the same run. The backends (vLLM with
continuous batching, transformers one request at a time) run one after the other on one Ray, each as the only app.
Goal on CPU: streaming TTFA <= SpeechLM first-chunk time + 100 ms.

    python bench/serve.py [--config rayjobs/configs/serve_embedded.yaml] [--backends hf vllm]
                          [--concurrency 1 4 8] [--requests 6] [--per-stream 2] [--out runs/bench/serve.json]
                          [key=value ...]

A level of concurrency c sends max(--requests, --per-stream * c) requests from a loopback client that keeps at
most c in flight. Request i uses text i and seed i in every mode, so the modes synthesise the same audio.

Beyond capacity (`--overload-clients 32 --overload-seconds 60`; 0 skips it): that many clients each send streaming
requests back to back for that long. Admitted requests must complete; the rest must get 503 with Retry-After
(each client then waits that long). Reported: requests, completed, 503s with and without Retry-After, other
errors, TTFA p50/p99 of the admitted ones, and the peak RSS of the app's Serve replica processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import numpy as np

from tts.base.cluster import free_port
from tts.base.config import load_config
from tts.serve.config import ServeConfig, with_secrets

TEXTS = [
    "The old man walked to the market in the morning.",
    "She opened the window and looked at the quiet street.",
    "We cooked a warm soup for the children after school.",
    "A small red boat sailed slowly across the lake.",
    "They found a lost dog near the river last night.",
    "My brother bought a new coat at the shop in town.",
]
GOAL_MS = 100.0
MODES = ("stream", "whole", "speechlm")  # HTTP streamed, HTTP sent whole (stream=false), generation handle


async def bounded(request: Callable[[int], Awaitable[dict]], n: int, concurrency: int) -> list[dict]:
    """Requests 0..n-1 with at most `concurrency` in flight (the load generator)."""
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> dict:
        async with slots:
            return await request(i)

    return await asyncio.gather(*(one(i) for i in range(n)))


def speech_request(client: httpx.AsyncClient, model: str, stream: bool, sample_rate: int):
    async def request(i: int) -> dict:
        body = {"model": model, "input": TEXTS[i % len(TEXTS)], "voice": "default", "seed": i}
        body |= {"response_format": "pcm", "stream": stream}
        start, first, size = time.perf_counter(), None, 0
        async with client.stream("POST", "/v1/audio/speech", json=body) as r:
            if r.status_code != 200:
                return {"i": i, "error": f"{r.status_code}: {(await r.aread())[:200]!r}"}
            async for part in r.aiter_raw():
                if part:
                    first = first or time.perf_counter()
                    size += len(part)
        total = time.perf_counter() - start
        audio = size / 2 / sample_rate
        return {"i": i, "ttfa_s": first - start, "total_s": total, "audio_s": audio, "rtf": total / audio}

    return request


def first_chunk_request(handle, prompts: list[list[int]], cfg: ServeConfig):
    """Time until the generation deployment has streamed the codes the first decode waits for."""
    from tts.serve.generation import Sampling
    from tts.speech_sampling import min_new_tokens

    need = cfg.streaming.first_chunk + cfg.streaming.lookahead
    gen = cfg.generation

    async def request(i: int) -> dict:
        floor = min_new_tokens(TEXTS[i % len(TEXTS)], gen.min_codes_per_char, gen.max_new_tokens)
        sampling = Sampling(gen.temperature, gen.top_p, gen.max_new_tokens, seed=i, min_tokens=floor)
        start, got = time.perf_counter(), 0
        stream = handle.options(stream=True).generate.remote(prompts[i % len(prompts)], sampling, None)
        async for codes in stream:
            got += len(codes)
            if got >= need:
                break
        elapsed = time.perf_counter() - start
        stream.cancel()
        return {"i": i, "ttfa_s": elapsed, "codes": got}

    return request


def percentiles(rows: list[dict], key: str) -> dict:
    values = [r[key] for r in rows if key in r]
    if not values:
        return {}
    return {"p50": float(np.percentile(values, 50)), "p99": float(np.percentile(values, 99))}


def summarise(rows: list[dict]) -> dict:
    ok = [r for r in rows if "error" not in r]
    out = {"n": len(rows), "errors": len(rows) - len(ok)}
    for key in ("ttfa_s", "total_s", "rtf", "audio_s"):
        out[key] = percentiles(ok, key)
    return out


def ms(stats: dict, key: str, q: str) -> str:
    return f"{1000 * stats[key][q]:8.0f}" if stats.get(key) else f"{'-':>8s}"


def table(results: dict) -> str:
    results = {b: {c: m for c, m in levels.items() if c != "overload"} for b, levels in results.items()}
    head = f"{'backend':7s} {'mode':9s} {'conc':>4s} {'n':>3s} {'err':>3s} {'TTFA p50':>8s} {'TTFA p99':>8s}"
    head += f" {'total p50':>9s} {'total p99':>9s} {'RTF p50':>7s} {'RTF p99':>7s}  (ms; RTF = wall / audio s)"
    lines = [head]
    for backend, levels in results.items():
        for c, modes in levels.items():
            for mode, s in modes.items():
                rtf = f"{s['rtf']['p50']:7.2f} {s['rtf']['p99']:7.2f}" if s.get("rtf") else f"{'-':>7s} {'-':>7s}"
                total = f"{ms(s, 'total_s', 'p50'):>9s} {ms(s, 'total_s', 'p99'):>9s}"
                ttfa = f"{ms(s, 'ttfa_s', 'p50')} {ms(s, 'ttfa_s', 'p99')}"
                lines.append(f"{backend:7s} {mode:9s} {c:4d} {s['n']:3d} {s['errors']:3d} {ttfa} {total} {rtf}")
    return "\n".join(lines)


def goal(samples: dict) -> dict:
    """Per request at concurrency 1: streaming TTFA minus the SpeechLM's first-chunk time (same text and seed)."""
    first = {r["i"]: r["ttfa_s"] for r in samples["speechlm"]}
    pairs = [(r["ttfa_s"], first[r["i"]]) for r in samples["stream"] if "error" not in r and r["i"] in first]
    diff = [1000 * (t - f) for t, f in pairs]
    out = {
        "ttfa_ms_p50": 1000 * statistics.median(t for t, _ in pairs),
        "speechlm_first_chunk_ms_p50": 1000 * statistics.median(f for _, f in pairs),
        "difference_ms_p50": statistics.median(diff),
        "difference_ms_max": max(diff),
        "ratio_p50": statistics.median(t / f for t, f in pairs),
        "goal_ms": GOAL_MS,
    }
    out["met"] = out["difference_ms_p50"] <= GOAL_MS
    return out


async def run(url: str, cfg: ServeConfig, prompts: list[list[int]], args, sample_rate: int) -> tuple[dict, dict]:
    from ray import serve

    handle = serve.get_deployment_handle("SpeechLMGeneration", cfg.app_name)
    model = cfg.model_names[0]
    results, samples = {}, {}
    async with httpx.AsyncClient(base_url=url, timeout=600, headers=auth(cfg)) as client:
        request = {
            "stream": speech_request(client, model, True, sample_rate),
            "whole": speech_request(client, model, False, sample_rate),
            "speechlm": first_chunk_request(handle, prompts, cfg),
        }
        for mode in MODES:  # warm-up: first calls load lazily (codec info, torch kernels)
            await request[mode](0)
        for c in args.concurrency:
            n = max(args.requests, args.per_stream * c)
            results[c] = {}
            for mode in MODES:
                rows = await bounded(request[mode], n, c)
                results[c][mode] = summarise(rows)
                samples[f"{mode}@{c}"] = rows
                print(f"concurrency {c}, {mode}: {n} requests done", flush=True)
    if args.overload_clients and args.overload_seconds > 0:
        results["overload"] = await overload(url, cfg, args.overload_clients, args.overload_seconds)
        print(f"overload: {json.dumps(results['overload'])}", flush=True)
    return results, samples


async def overload(url: str, cfg: ServeConfig, clients: int, seconds: float) -> dict:
    """`clients` loopback clients sending streaming requests back to back for `seconds` (see the docstring)."""
    import psutil

    body = {"model": cfg.model_names[0], "voice": "default", "response_format": "pcm", "stream": True}
    counts = {"requests": 0, "completed": 0, "busy_503": 0, "busy_503_without_retry_after": 0, "errors": 0}
    ttfa, peak_rss, stop = [], {}, time.perf_counter() + seconds

    def sample_rss() -> None:
        for p in psutil.process_iter(["pid", "name", "cmdline"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if "SERVE_REPLICA" in cmd or "ServeReplica" in cmd:
                try:
                    peak_rss[p.info["pid"]] = max(peak_rss.get(p.info["pid"], 0), p.memory_info().rss)
                except psutil.Error:
                    pass

    async def client(k: int, c: httpx.AsyncClient) -> None:
        i = k
        while time.perf_counter() < stop:
            counts["requests"] += 1
            start, first = time.perf_counter(), None
            try:
                async with c.stream(
                    "POST", "/v1/audio/speech", json=body | {"input": TEXTS[i % len(TEXTS)], "seed": i}
                ) as r:
                    if r.status_code == 503:
                        counts["busy_503"] += 1
                        wait = r.headers.get("retry-after")
                        counts["busy_503_without_retry_after"] += wait is None
                        await asyncio.sleep(float(wait or 1))
                        continue
                    if r.status_code != 200:
                        counts["errors"] += 1
                        continue
                    async for part in r.aiter_raw():
                        first = first or (time.perf_counter() if part else None)
                counts["completed"] += 1
                ttfa.append(first - start if first else float("nan"))
            except httpx.HTTPError:
                counts["errors"] += 1
            i += clients

    async def monitor() -> None:
        while time.perf_counter() < stop:
            sample_rss()
            await asyncio.sleep(0.5)

    async with httpx.AsyncClient(base_url=url, timeout=600, headers=auth(cfg)) as c:
        await asyncio.gather(monitor(), *(client(k, c) for k in range(clients)))
    done = [t for t in ttfa if t == t]
    out = counts | {"clients": clients, "seconds": seconds}
    if done:
        out |= {"ttfa_s": {"p50": float(np.percentile(done, 50)), "p99": float(np.percentile(done, 99))}}
    out["peak_rss_mb"] = {"per_replica_max": max(peak_rss.values(), default=0) / 2**20}
    out["peak_rss_mb"]["sum_of_replica_peaks"] = sum(peak_rss.values()) / 2**20
    return out


def auth(cfg: ServeConfig) -> dict:
    keys = with_secrets(cfg).api_keys
    return {"Authorization": f"Bearer {keys[0]}"} if keys else {}


def prompts_of(model) -> list[list[int]]:
    """The prompt ids the API builds for TEXTS with the default voice."""
    from tts.prompts import encode_text, inference

    return [inference(model.layout, encode_text(model.tokenizer, model.layout, t)).input_ids for t in TEXTS]


def bench_backend(cfg: ServeConfig, args, prompts: list[list[int]]) -> tuple[dict, dict, float]:
    """Deploy the app with `cfg.generation.backend`, measure it, delete it; returns (results, samples, start s)."""
    from ray import serve

    from tts.serve.app import start

    started = time.perf_counter()
    url = start(cfg, include_dashboard=False, log_to_driver=False)
    try:
        sample_rate = httpx.get(f"{url}/health", timeout=600).json()["sample_rate"]
        up = time.perf_counter() - started
        print(f"{cfg.generation.backend}: app up at {url} in {up:.0f} s", flush=True)
        results, samples = asyncio.run(run(url, cfg, prompts, args, sample_rate))
    finally:
        serve.delete(cfg.app_name)
    return results, samples, up


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="rayjobs/configs/serve_embedded.yaml", help="ServeConfig YAML")
    p.add_argument("--backends", nargs="+", default=["hf", "vllm"], choices=["hf", "vllm"])
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--requests", type=int, default=6, help="at least this many requests per level and mode")
    p.add_argument("--per-stream", type=int, default=2, help="requests per concurrent stream")
    p.add_argument("--overload-clients", type=int, default=32, help="clients beyond capacity (0: skip)")
    p.add_argument("--overload-seconds", type=float, default=60.0)
    p.add_argument("--out", default="runs/bench/serve.json")
    p.add_argument("overrides", nargs="*", help="ServeConfig key=value")
    args = p.parse_args()

    import ray
    from ray import serve

    from tts.speechlm import open_speechlm

    cfg = load_config(ServeConfig, args.config, args.overrides)
    cfg.port = free_port()
    busiest = max(args.concurrency)
    if busiest > cfg.limits.max_concurrent + cfg.limits.max_queue:
        raise SystemExit(f"concurrency {busiest} exceeds the app's admission limit: raise limits.max_queue")
    model = open_speechlm(cfg.model, cfg.codec)
    prompts = prompts_of(model)
    results, samples, goals, start_s = {}, {}, {}, {}
    c1 = min(args.concurrency)
    try:
        for backend in args.backends:
            cfg.generation.backend = backend
            results[backend], samples[backend], start_s[backend] = bench_backend(cfg, args, prompts)
            rows = samples[backend]
            goals[backend] = goal({"stream": rows[f"stream@{c1}"], "speechlm": rows[f"speechlm@{c1}"]})
    finally:
        serve.shutdown()
        ray.shutdown()
    print()
    print(table(results))
    print()
    for backend, first in goals.items():
        print(
            f"{backend}: app start {start_s[backend]:.0f} s; concurrency {c1}: streaming TTFA p50 "
            f"{first['ttfa_ms_p50']:.0f} ms vs SpeechLM first chunk ({cfg.streaming.first_chunk}+"
            f"{cfg.streaming.lookahead} codes) p50 {first['speechlm_first_chunk_ms_p50']:.0f} ms: difference p50 "
            f"{first['difference_ms_p50']:.0f} ms (max {first['difference_ms_max']:.0f}), ratio "
            f"{first['ratio_p50']:.2f}; goal <= +{GOAL_MS:.0f} ms: {'met' if first['met'] else 'NOT met'}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"results": results, "goal": goals, "start_s": start_s, "samples": samples, "args": vars(args)}
    report["config"], report["model"], report["codec"] = args.config, cfg.model, str(model.codec.directory)
    report["streaming"], report["limits"] = vars(cfg.streaming), vars(cfg.limits)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
