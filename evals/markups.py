"""Do the markup tags do what they say (paper 3.6)? The markups set renders each held-out prompt's text once
neutral and once under every tag, in the same voice; `markup_effects` measures each rendering against the neutral
one of the same text and voice with `tts.corpus.style_metrics.prosody`.

Goals (issue: LoRA markups): `[whispering]` voiced fraction <= 0.2; `[sad]` slower and lower-pitched than
neutral; each non-verbal audible where it is written (the rendering is longer than the neutral one by at least
`NONVERBAL_MIN_S` of sound). Each is judged on the bootstrap 95% interval over prompts, not the mean, so that a
model whose tags do nothing does not pass by chance on a few prompts. Style tags go before the sentence they
colour, non-verbals after it, as in the markup corpus (`tts-align corpus markups`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from evals.meta import EvalItem, spread
from tts.base.audio import AudioError, load_audio
from tts.base.layout import MARKUP_TAGS, NONVERBAL_TAGS, STYLE_TAGS
from tts.base.stats import mean_ci
from tts.corpus.style_metrics import prosody

SEP = "__"  # item id: <base id>__<tag name>, the neutral rendering <base id>__neutral
NEUTRAL = "neutral"
NONVERBAL_MIN_S = 0.2


def tagged_text(text: str, tag: str) -> str:
    return f"{tag} {text}" if tag in STYLE_TAGS else f"{text} {tag}"


def markup_items(items: list[EvalItem], n: int, tags: tuple[str, ...] = MARKUP_TAGS) -> list[EvalItem]:
    """`n` prompts spread over `items`, each neutral and under every tag (no ground truth: none exists)."""
    out = []
    for k in spread(len(items), n):
        it = replace(items[k], gt_wav=None)
        out.append(replace(it, id=f"{it.id}{SEP}{NEUTRAL}"))
        out += [replace(it, id=f"{it.id}{SEP}{t[1:-1]}", target_text=tagged_text(it.target_text, t)) for t in tags]
    return out


def _measure(path: Path) -> dict | None:
    try:
        wave, sr = load_audio(path)
        return prosody(wave, sr)
    except (AudioError, ValueError, FileNotFoundError):
        return None  # no audio, silent, or too short: counted as unmeasured


def markup_effects(items: list[EvalItem], wav_dir: Path) -> dict:
    """Per tag, over the prompts whose neutral and tagged renderings could both be measured: voiced fraction,
    speech duration ratio, f0 ratio and level change against neutral, extra seconds; and the goals."""
    by_base: dict[str, dict[str, dict | None]] = {}
    for it in items:
        base, _, name = it.id.rpartition(SEP)
        if base:
            by_base.setdefault(base, {})[name] = _measure(wav_dir / f"{it.id}.wav")
    tags: dict[str, dict] = {}
    for tag in MARKUP_TAGS:
        name = tag[1:-1]
        pairs = [(m[NEUTRAL], m[name]) for m in by_base.values() if name in m]
        if not pairs:
            continue
        ok = [(a, b) for a, b in pairs if a and b]
        per_prompt = {
            "voiced_fraction": [b["voiced_fraction"] for _, b in ok],
            "duration_ratio": [b["duration"] / a["duration"] for a, b in ok],
            "f0_ratio": [b["f0_median"] / a["f0_median"] for a, b in ok],
            "extra_s": [b["duration"] - a["duration"] for a, b in ok],
        }
        stats = {k: mean_ci(v) for k, v in per_prompt.items()}
        tags[tag] = {
            "n": len(pairs),
            "unmeasured": len(pairs) - len(ok),
            **{k: st["mean"] for k, st in stats.items()},
            "neutral_voiced_fraction": mean_ci([a["voiced_fraction"] for a, _ in ok])["mean"],
            "rms_db_change": mean_ci([b["rms_db"] - a["rms_db"] for a, b in ok])["mean"],
            "ci95": {k: st["ci95"] for k, st in stats.items()},
        }
    return {"tags": tags, "goals": goals(tags), "prompts": len(by_base)}


def goals(tags: dict[str, dict]) -> dict[str, bool | None]:
    """The issue's checks on the measured effects (None where a tag was not rendered or measured)."""

    def check(tag: str, key: str, test) -> bool | None:
        """`test(lo, hi)` on the 95% interval of `key`; None where it is unmeasured (or from one prompt only)."""
        ci = tags[tag]["ci95"].get(key) if tag in tags else None
        return None if ci is None else bool(test(*ci))

    out = {
        "[whispering] voiced fraction <= 0.2": check("[whispering]", "voiced_fraction", lambda lo, hi: hi <= 0.2),
        "[sad] slower than neutral": check("[sad]", "duration_ratio", lambda lo, hi: lo > 1.0),
        "[sad] lower-pitched than neutral": check("[sad]", "f0_ratio", lambda lo, hi: hi < 1.0),
    }
    for tag in NONVERBAL_TAGS:
        out[f"{tag} audible (+{NONVERBAL_MIN_S} s)"] = check(tag, "extra_s", lambda lo, hi: lo >= NONVERBAL_MIN_S)
    return out


def markup_markdown(m: dict) -> str:
    def cell(x: float | None, digits: int = 2) -> str:
        return "-" if x is None else f"{x:.{digits}f}"

    lines = [
        f"## Markup tags ({m['prompts']} prompts, each tag against the neutral rendering of the same text and voice;"
        " goals judged on bootstrap 95% intervals over prompts)",
        "",
        "| tag | n | unmeasured | voiced fraction (neutral) | duration ratio | f0 ratio | level dB | extra s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for tag, e in m["tags"].items():
        voiced = f"{cell(e['voiced_fraction'])} ({cell(e['neutral_voiced_fraction'])})"
        changes = [cell(e["duration_ratio"]), cell(e["f0_ratio"]), cell(e["rms_db_change"], 1), cell(e["extra_s"])]
        lines.append(f"| {tag} | {e['n']} | {e['unmeasured']} | {voiced} | {' | '.join(changes)} |")
    lines += ["", "| goal | met |", "|---|---|"]
    lines += [f"| {g} | {'-' if ok is None else ('yes' if ok else 'no')} |" for g, ok in m["goals"].items()]
    return "\n".join(lines) + "\n"
