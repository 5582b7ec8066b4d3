"""Benchmark numbers from per-utterance results: seed-tts-eval's mean of per-utterance WER (CER for CER
languages), corpus WER/CER (edits summed over utterances / reference length summed), SIM, DNSMOS, durations and
the real-time factor.

Failed utterances (missing or broken audio, a measurement that failed) are counted, never dropped silently:
means are over the scored ones, as seed-tts-eval's, and `wer_failed_as_1` counts every failure as WER 1.
"""

from __future__ import annotations

import math

import jiwer
import numpy as np

from rewards.asr import normalise

DNSMOS_KEYS = ("sig", "bak", "ovrl", "p808")


def edit_counts(reference: str, hypothesis: str, language: str, cer_languages: frozenset[str]) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference length) in words, in characters for CER languages,
    after the normalisation `rewards.asr.error_rate` applies (so errors / length equals its rate)."""
    ref, hyp = normalise(reference, language, cer_languages), normalise(hypothesis, language, cer_languages)
    if not ref:
        raise ValueError(f"empty reference transcript after normalisation: {reference!r}")
    if language in cer_languages:
        if not hyp:
            return len(ref), len(ref)
        out = jiwer.process_characters(ref, hyp)
    else:
        if not hyp:
            return len(ref.split()), len(ref.split())
        out = jiwer.process_words(ref, hyp)
    return out.substitutions + out.deletions + out.insertions, out.hits + out.substitutions + out.deletions


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else None


def aggregate(rows: list[dict]) -> dict:
    """Summary of result rows (see `evals.runner.result_row`); None where nothing was measured."""
    ok = [r for r in rows if not r["failure"]]
    out: dict = {"n": len(rows), "scored": len(ok), "failures": len(rows) - len(ok)}
    for metric in ("wer", "cer"):
        measured = [r for r in ok if r["metric"] == metric and r["error_rate"] is not None]
        expected = [r for r in rows if r["metric"] == metric]
        out[metric] = _mean([r["error_rate"] for r in measured])
        edits, length = sum(r["edits"] for r in measured), sum(r["ref_len"] for r in measured)
        out[f"{metric}_corpus"] = edits / length if length else None
        out[f"{metric}_failed_as_1"] = _mean([1.0 if r["failure"] else r["error_rate"] for r in expected])
        out[f"n_{metric}"] = len(measured)
        seeded = [r for r in measured if "substitutions" in r]  # seed-tts-eval's secondary figures
        if seeded:
            rates = [r["error_rate"] for r in seeded]
            out[f"{metric}_below_50"] = _mean([x for x in rates if x <= 0.5])
            out[f"{metric}_above_50_share"] = sum(x > 0.5 for x in rates) / len(rates)
            for kind in ("substitutions", "deletions", "insertions"):
                out[f"{metric}_{kind}"] = _mean([r[kind] for r in seeded])
    out["sim"] = _mean([r["sim"] for r in ok])
    for key in DNSMOS_KEYS:
        out[f"dnsmos_{key}"] = _mean([r["dnsmos"][key] for r in ok if r["dnsmos"]])
    out["duration_s"] = _mean([r["duration"] for r in ok])
    timed = [r for r in rows if r.get("synth_s") is not None and r.get("duration")]
    audio = sum(r["duration"] for r in timed)
    out["rtf"] = sum(r["synth_s"] for r in timed) / audio if audio else None
    return out


def group(rows: list[dict], key) -> dict[str, dict]:
    """`aggregate` per value of key(row), in sorted order."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(key(r), []).append(r)
    return {k: aggregate(by[k]) for k in sorted(by)}


def main_metric(stats: dict) -> str:
    """The error rate a set is judged by: WER, or CER when it has only CER-language utterances."""
    return "cer" if stats["n_cer"] and not stats["n_wer"] else "wer"
