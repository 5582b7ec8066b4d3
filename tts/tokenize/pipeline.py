"""Manifest -> filtered, DNSMOS-annotated codec shards: two Ray Data passes with the filters in between.

Pass 1 (annotate): rows -> `read_audio` (resample to the codec's encoder rate) -> `DnsmosAnnotator` (actor
pool) -> the driver, which keeps a few numbers per row and caches them (annotations.py). The filters need
corpus-wide quantiles, so they run on the driver over that table. Pass 2 (encode): kept rows of unfinished
shards -> `read_audio` -> `CodecEncoder` (actor pool) -> the driver, which writes each shard once all its rows
are in, so an interrupted run keeps its finished shards. `dnsmos: false` (synthetic corpora) skips the DNSMOS
actors and the OVRL filter. Audio is read twice rather than held in the object
store while the quantiles wait for the last row; reading is cheap next to DNSMOS and encoding. Workers only
read audio (on a cluster, from storage they share); the driver alone writes `out`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import ray

from tts.codec import EMBEDDED_CODEC, Codec, load_codec
from tts.codec.base import read_codec_manifest
from tts.tokenize.annotations import FILE as ANNOTATIONS
from tts.tokenize.annotations import AnnotationCache
from tts.tokenize.config import TokenizeConfig
from tts.tokenize.filters import REASONS, decide
from tts.tokenize.report import shard_totals, size_table, stage_table
from tts.tokenize.shards import CODE_DTYPE, ShardPlan, ShardWriter, check_codebook, is_done, plan_shards, shard_dir
from tts.tokenize.sources import read_source
from tts.tokenize.stages import DNSMOS_FAILED, CodecEncoder, DnsmosAnnotator, read_audio, unscored

BAD_FILES, DROPPED, SUMMARY = "bad_files.jsonl", "dropped.jsonl", "summary.json"
COLUMNS = ["position", "id", "text", "language", "speaker", "wav", "sample_rate", "num_samples", "duration"]
COLUMNS += ["ovrl", "sig", "bak", "p808", "reason", "message"]
DTYPES = {"position": int, "sample_rate": int, "num_samples": int} | dict.fromkeys(COLUMNS[8:13], float)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _bad(id: str, wav: str, reason: str, message: str) -> dict:
    return {"id": id, "path": wav, "reason": reason, "message": message}


def _read_kwargs(codec: Codec, max_wave_seconds: float | None = None) -> dict:
    return {
        "target_sr": codec.encoder_sample_rate,
        "min_sr": codec.min_input_sample_rate,
        "max_wave_seconds": max_wave_seconds,
    }


def _actors(cfg: TokenizeConfig, size: int) -> dict:
    return {"compute": ray.data.ActorPoolStrategy(size=size), "num_cpus": cfg.actor_cpus}


def annotate(rows: list[dict], cfg: TokenizeConfig, codec: Codec, out: Path) -> tuple[pd.DataFrame, int]:
    """Pass 1: COLUMNS for every row, in input order; and how many rows came from the annotation cache."""
    settings = {
        "encoder_sample_rate": codec.encoder_sample_rate,
        "min_sample_rate": codec.min_input_sample_rate,
        "max_duration": cfg.max_duration,
        "dnsmos_model_dir": cfg.dnsmos_model_dir,
        "dnsmos_personalized": cfg.dnsmos_personalized,
    } | ({} if cfg.dnsmos else {"dnsmos": False})  # a cache of scored rows stays valid for scoring runs
    cache = AnnotationCache(out / ANNOTATIONS, settings)
    hits = [cache.lookup(r["wav"]) for r in rows]
    cache.rewrite([r["wav"] for r, hit in zip(rows, hits) if hit])
    frames = [pd.DataFrame([r | hit for r, hit in zip(rows, hits) if hit])]
    todo = [r for r, hit in zip(rows, hits) if not hit]
    if todo:
        ds = ray.data.from_items(todo).map_batches(
            read_audio, batch_size=cfg.batch_size, fn_kwargs=_read_kwargs(codec, cfg.max_duration)
        )
        if cfg.dnsmos:
            dnsmos = {"model_dir": cfg.dnsmos_model_dir, "personalized": cfg.dnsmos_personalized}
            dnsmos |= {"sample_rate": codec.encoder_sample_rate, "threads": max(1, int(cfg.actor_cpus))}
            ds = ds.map_batches(
                DnsmosAnnotator,
                batch_size=cfg.batch_size,
                fn_constructor_kwargs=dnsmos,
                **_actors(cfg, cfg.dnsmos_actors),
            )
        else:
            ds = ds.map_batches(unscored, batch_size=cfg.batch_size)
        for batch in ds.iter_batches(batch_size=None, batch_format="pandas"):
            cache.append(batch)
            frames.append(batch)
    frames = [f for f in frames if len(f)] or [
        pd.DataFrame({c: pd.Series(dtype=DTYPES.get(c, object)) for c in COLUMNS})
    ]
    table = pd.concat(frames, ignore_index=True)
    table["duration"] = table["num_samples"] / table["sample_rate"].clip(lower=1)
    return table[COLUMNS].sort_values("position", ignore_index=True), len(rows) - len(todo)


def encode(
    plans: list[ShardPlan],
    kept: pd.DataFrame,
    cfg: TokenizeConfig,
    codec: Codec,
    out: Path,
    phonemes: dict[int, list] | None = None,
) -> list[int]:
    """Pass 2: encode the rows of `plans` and write their shards (with each row's phoneme timing, where the
    manifest has one); returns the shard numbers written."""
    phonemes = phonemes or {}
    if not plans:
        return []
    meta = {
        int(r.position): {
            "id": r.id,
            "text": r.text,
            "language": r.language,
            "speaker": r.speaker,
            "duration": round(r.duration, 4),
            "sample_rate": int(r.sample_rate),
            "num_samples": int(r.num_samples),
            "dnsmos": None
            if np.isnan(r.ovrl)
            else {k: round(float(getattr(r, k)), 4) for k in ("ovrl", "sig", "bak", "p808")},
            "wav": r.wav,
        }
        | ({"phonemes": phonemes[int(r.position)]} if int(r.position) in phonemes else {})
        for r in kept.itertuples(index=False)
    }
    items = [
        {"position": i, "shard": p.number, "id": meta[i]["id"], "wav": meta[i]["wav"]}
        for p in plans
        for i in p.positions
    ]
    ds = ray.data.from_items(items).map_batches(read_audio, batch_size=cfg.batch_size, fn_kwargs=_read_kwargs(codec))
    ds = ds.map_batches(
        CodecEncoder,
        batch_size=cfg.batch_size,
        fn_constructor_kwargs={"codec_dir": cfg.codec_dir},
        **_actors(cfg, cfg.encode_actors),
    )
    writer = ShardWriter(out, plans, meta)
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for position, shard, id, wav, codes, reason, message in zip(
            *(batch[k] for k in ("position", "shard", "id", "wav", "codes", "reason", "message"))
        ):
            writer.add(int(shard), int(position), _bad(id, wav, reason, message) if reason else codes)
    if writer.pending:
        raise RuntimeError(f"shards {sorted(writer.pending)} did not receive all their rows")
    return writer.written


def remove_stale_shards(out: Path, plans: list[ShardPlan]) -> list[str]:
    """Remove shard directories the plan does not have (left by a run on other data or settings), so a reader
    of `out` never mixes them in."""
    planned = {shard_dir(out, p.number) for p in plans}
    stale = [d for d in sorted((out / "shards").glob("shard-*")) if d not in planned]
    for d in stale:
        shutil.rmtree(d)
    return [d.name for d in stale]


def run(manifest: str | Path, out: str | Path, cfg: TokenizeConfig = TokenizeConfig()) -> dict:
    """Tokenise `manifest` into `out`; returns the summary also written to `out/summary.json`."""
    start = time.time()
    codec_dir = Path(cfg.codec_dir) if cfg.codec_dir else EMBEDDED_CODEC
    codec = load_codec(codec_dir)
    check_codebook(codec.codebook_size)  # before any work: codes that do not fit uint16 shards are fatal
    codec_sha = read_codec_manifest(codec_dir)[0]["sha256"]
    src = read_source(manifest, cfg.language)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    t = time.time()
    table, cached = annotate(src.rows, cfg, codec, out)
    annotate_seconds = round(time.time() - t, 1)
    failed = table[table["reason"] != ""]
    readable = table[table["reason"] == ""].reset_index(drop=True)
    decisions = decide(readable, cfg)
    readable = readable.assign(drop=decisions.reasons, cps=decisions.cps)
    dropped = readable[readable["drop"] != ""]
    _write_jsonl(
        out / DROPPED,
        [
            {"id": r.id, "wav": r.wav, "reason": r.drop, "language": r.language, "duration": round(r.duration, 4)}
            | {"ovrl": None if pd.isna(r.ovrl) else round(r.ovrl, 4), "cps": round(r.cps, 3)}
            for r in dropped.itertuples(index=False)
        ],
    )
    kept = readable[readable["drop"] == ""]

    records = [r | {"timed": r["position"] in src.phonemes} for r in kept[COLUMNS[:6]].to_dict("records")]
    plans = plan_shards(records, cfg.shard_size, codec_sha)
    stale = remove_stale_shards(out, plans)
    todo = [p for p in plans if not is_done(shard_dir(out, p.number), p)]
    t = time.time()
    written = encode(todo, kept, cfg, codec, out, src.phonemes)
    encode_seconds = round(time.time() - t, 1)

    totals = shard_totals(out, plans)
    bad = src.bad + [_bad(r.id, r.wav, r.reason, r.message) for r in failed.itertuples(index=False)] + totals["bad"]
    _write_jsonl(out / BAD_FILES, bad)
    summary = {
        "manifest": str(manifest),
        "rows_in": src.rows_in,
        "kept": totals["kept"],
        "dropped": {reason: int((readable["drop"] == reason).sum()) for reason in REASONS},
        "bad_files": len(bad),
        "bad_reasons": dict(Counter(b["reason"] for b in bad)),
        "hours_kept": round(totals["seconds"] / 3600, 6),
        "bytes_codes": totals["codes"] * CODE_DTYPE.itemsize,
        "bytes_audio": totals["bytes_audio"],
        "shards": len(plans),
        "shards_written": len(written),
        "shards_skipped": len(plans) - len(todo),
        "stale_shards_removed": stale,
        "stages": {
            "parsed": len(src.rows),
            "read": int(table["reason"].isin(["", DNSMOS_FAILED]).sum()),
            "annotated": len(readable),
            "annotations_cached": cached,
            "filtered": len(kept),
        },
        "thresholds": decisions.thresholds,
        "codec": {
            "dir": str(codec_dir),
            "sha256": codec_sha,
            "codebook_size": codec.codebook_size,
            "frame_rate": codec.frame_rate,
            "encoder_sample_rate": codec.encoder_sample_rate,
        },
        "seconds": {"annotate": annotate_seconds, "encode": encode_seconds, "total": round(time.time() - start, 1)},
        "config": asdict(cfg),
    }
    (out / SUMMARY).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print("\n" + stage_table(summary) + "\n\n" + size_table(summary), flush=True)
    return summary
