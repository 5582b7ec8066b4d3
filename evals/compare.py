"""Two evaluation runs side by side (e.g. SFT vs RL, Table 8's rows) with deltas B - A: summary, per language,
length buckets, the prompt-decoding table, and per-utterance deltas with bootstrap 95% intervals (paired over the
utterances both runs measured). Writes OUT/compare.json and OUT/compare.md."""

from __future__ import annotations

import json
from pathlib import Path

from evals.metrics import main_metric
from evals.report import SUMMARY_HEADER, error_cell, num, pct, summary_row, table
from rewards.router import ovrl_of
from tts.base.stats import ci_text, paired_delta

KEYS = ("wer", "wer_corpus", "cer", "sim", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808", "rtf")
# per-utterance measurement -> how to read it from a report's utterance row
PAIRED = {
    "error_rate": lambda u: u.get("error_rate"),
    "sim": lambda u: u.get("sim"),
    "dnsmos_ovrl": lambda u: ovrl_of(u.get("dnsmos")),
}


def load_report(run: str | Path) -> dict:
    path = Path(run) / "report.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no report (run rayjobs/eval.py with --out {run} first)")
    return json.loads(path.read_text())


def delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def deltas(a: dict, b: dict) -> dict:
    return {k: delta(a.get(k), b.get(k)) for k in KEYS} | {"failures": b["failures"] - a["failures"]}


def signed(x: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if x is None else f"{x * scale:+.{digits}f}"


def paired(a: dict, b: dict) -> dict:
    """Per-utterance means of A and B with bootstrap 95% intervals, and B - A paired over (id, decode)."""

    def rows(x: dict, read) -> dict[str, list]:
        return {f"{u['id']}|{u['decode']}": [read(u)] for u in x["utterances"]}

    return {m: paired_delta(rows(a, read), rows(b, read)) for m, read in PAIRED.items()}


def compare(run_a: str | Path, run_b: str | Path) -> dict:
    a, b = load_report(run_a), load_report(run_b)
    if a["table8"]["metric"] != b["table8"]["metric"]:
        raise ValueError(f"{run_a} is judged by {a['table8']['metric']}, {run_b} by {b['table8']['metric']}")
    langs = sorted(set(a["per_language"]) | set(b["per_language"]))
    ids = [{(r["id"], r["decode"]) for r in x["utterances"]} for x in (a, b)]
    out = {
        "runs": {"a": str(run_a), "b": str(run_b)},
        "same_utterances": ids[0] == ids[1],
        "summary": {"a": a["summary"], "b": b["summary"], "delta": deltas(a["summary"], b["summary"])},
        "paired": paired(a, b),
        "per_language": {
            lang: {"a": a["per_language"].get(lang), "b": b["per_language"].get(lang)}
            | {"delta": deltas(a["per_language"][lang], b["per_language"][lang])}
            for lang in langs
            if lang in a["per_language"] and lang in b["per_language"]
        },
        "table8": {
            "metric": a["table8"]["metric"],
            "a": a["table8"]["row"],
            "b": b["table8"]["row"],
            "delta": {k: delta(a["table8"]["row"].get(k), v) for k, v in b["table8"]["row"].items()},
        },
    }
    if "decode_prompt" in a and "decode_prompt" in b:
        out["decode_prompt"] = {"a": a["decode_prompt"], "b": b["decode_prompt"]}
    return out


def to_markdown(c: dict) -> str:
    name = {k: Path(v).name for k, v in c["runs"].items()}
    s, d = c["summary"], c["summary"]["delta"]
    delta_row = [
        "",
        signed(d["failures"], digits=0) if d["failures"] else "0",
        signed(d["wer"], 100, 1),
        signed(d["wer_corpus"], 100, 1),
        signed(d["cer"], 100, 1),
        signed(d["sim"]),
        *(signed(d[f"dnsmos_{k}"], digits=2) for k in ("sig", "bak", "ovrl", "p808")),
        "",
        signed(d["rtf"], digits=2),
    ]
    parts = [
        f"# {name['a']} vs {name['b']}",
        f"A = `{c['runs']['a']}`, B = `{c['runs']['b']}`; deltas are B - A (error rates in % points)."
        + ("" if c["same_utterances"] else " **The runs cover different utterances.**"),
        "## Summary",
        table(
            ["run", *SUMMARY_HEADER],
            [["A " + name["a"], *summary_row(s["a"])], ["B " + name["b"], *summary_row(s["b"])], ["B - A", *delta_row]],
        ),
    ]
    rows = []
    for m, e in c["paired"].items():
        scale, digits = (100.0, 1) if m == "error_rate" else (1.0, 3)
        rows.append(
            [
                "WER/CER %" if m == "error_rate" else m,
                *(ci_text(e[t]["mean"], e[t]["ci95"], scale, digits) for t in ("before", "after")),
                ci_text(e["delta"], e["delta_ci95"], scale, digits),
                str(e["paired"]),
            ]
        )
    parts += [
        "## Paired per-utterance deltas (bootstrap 95% intervals)",
        "Means over the utterances each run measured (failures left out); B - A over the utterances both measured.",
        table(["measurement", "A", "B", "B - A", "paired"], rows),
    ]
    t8 = c["table8"]
    cols = [k for k in t8["a"] if k != "total_avg"]
    parts += [
        f"## {t8['metric'].upper()} by length (Table 8)",
        table(
            ["run", *(k.capitalize() for k in cols), "Total Avg."],
            [
                ["A " + name["a"], *(pct(t8["a"][k]) for k in [*cols, "total_avg"])],
                ["B " + name["b"], *(pct(t8["b"][k]) for k in [*cols, "total_avg"])],
                ["B - A", *(signed(t8["delta"][k], 100, 1) for k in [*cols, "total_avg"])],
            ],
        ),
    ]
    rows = []
    for lang, e in c["per_language"].items():
        key = main_metric(e["b"])
        rows.append(
            [
                lang,
                error_cell(e["a"]),
                error_cell(e["b"]),
                signed(e["delta"][key], 100, 1),
                num(e["a"]["sim"]),
                num(e["b"]["sim"]),
                signed(e["delta"]["sim"]),
            ]
        )
    parts += [
        "## Per language (Figure 8)",
        table(["language", "WER/CER % A", "WER/CER % B", "B - A", "SIM A", "SIM B", "B - A"], rows),
    ]
    if "decode_prompt" in c:
        parts += [
            "## SIM with vs without the prompt audio in decoding (Table 10)",
            table(
                ["setting", "SIM A", "SIM B"],
                [
                    [v, num(c["decode_prompt"]["a"][v]["sim"]), num(c["decode_prompt"]["b"][v]["sim"])]
                    for v in c["decode_prompt"]["a"]
                ],
            ),
        ]
    return "\n\n".join(parts) + "\n"


def write_compare(run_a: str | Path, run_b: str | Path, out: str | Path) -> dict:
    c = compare(run_a, run_b)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(c, indent=1) + "\n")
    (out / "compare.md").write_text(to_markdown(c), encoding="utf-8")
    return c
