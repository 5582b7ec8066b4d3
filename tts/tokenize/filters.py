"""Which readable rows to keep: transcript, language, duration, DNSMOS OVRL and speaking-rate filters.

The thresholds are quantiles over the whole corpus, so the filters run on the driver over the annotation
table (a few numbers per row) rather than inside a distributed `filter`. Each dropped row is counted under
the first reason it meets, in `REASONS` order: definite faults first, then the statistical cuts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tts.base.languages import LANGUAGES
from tts.tokenize.config import TokenizeConfig

JUNK_TRANSCRIPT = "junk_transcript"
UNSUPPORTED_LANGUAGE = "unsupported_language"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
LOW_DNSMOS = "low_dnsmos"
CPS_OUTLIER = "cps_outlier"
REASONS = (JUNK_TRANSCRIPT, UNSUPPORTED_LANGUAGE, TOO_SHORT, TOO_LONG, LOW_DNSMOS, CPS_OUTLIER)

_SPACE = re.compile(r"\s+")


def is_junk(text: str) -> bool:
    """Empty, whitespace / punctuation / digits only: no letter in any script (CJK and kana are letters)."""
    return not any(ch.isalpha() for ch in text)


def chars_per_second(text: str, duration: float) -> float:
    return len(_SPACE.sub("", text)) / duration if duration > 0 else float("inf")


@dataclass
class Decisions:
    reasons: np.ndarray  # per row: "" keeps it, else the first reason in REASONS it meets
    cps: np.ndarray
    thresholds: dict = field(default_factory=dict)  # {"dnsmos_ovrl": float | None, "cps": {lang: [lo, hi]}}


def decide(table: pd.DataFrame, cfg: TokenizeConfig) -> Decisions:
    """Filter decisions for rows that survived reading (columns text, language, duration, ovrl).

    The OVRL quantile is taken over every scored row (overlong rows are not scored); the speaking-rate tails
    per language over the rows that pass the transcript, language and duration checks, for languages with at
    least `cps_min_rows` of them. Cuts are strict (< low, > high): rows at a threshold are kept.
    """
    text = table["text"].astype(str)
    language = table["language"].astype(str).to_numpy()
    duration = table["duration"].to_numpy(float)
    ovrl = table["ovrl"].to_numpy(float)
    accepted = set(cfg.languages) if cfg.languages is not None else set(LANGUAGES)

    junk = text.map(is_junk).to_numpy(bool)
    unsupported = ~np.isin(language, sorted(accepted))
    short, long = duration < cfg.min_duration, duration > cfg.max_duration

    scored = ~np.isnan(ovrl)
    ovrl_cut = None
    if cfg.dnsmos_drop_fraction > 0 and scored.any():
        ovrl_cut = float(np.quantile(ovrl[scored], cfg.dnsmos_drop_fraction))
    low = scored & (ovrl < ovrl_cut) if ovrl_cut is not None else np.zeros(len(table), bool)

    cps = np.array([chars_per_second(t, d) for t, d in zip(text, duration)], dtype=float)
    usable = ~(junk | unsupported | short | long)
    outlier, cps_cuts = np.zeros(len(table), bool), {}
    for lang in sorted(set(language[usable])):
        rows = usable & (language == lang)
        if rows.sum() < cfg.cps_min_rows:
            continue
        lo, hi = np.quantile(cps[rows], [cfg.cps_low_quantile, cfg.cps_high_quantile])
        cps_cuts[lang] = [float(lo), float(hi)]
        outlier |= rows & ((cps < lo) | (cps > hi))

    reasons = np.select([junk, unsupported, short, long, low, outlier], REASONS, default="").astype(object)
    return Decisions(reasons, cps, {"dnsmos_ovrl": ovrl_cut, "cps": cps_cuts})
