"""report.json and report.md of one evaluation run: summary, per language (Figure 8), length buckets (Tables 7
and 8), decoding with vs without the prompt audio (Table 10), failures and every utterance's row."""

from __future__ import annotations

import json
from pathlib import Path

from evals.buckets import bucket_of, names, table7
from evals.config import EvalConfig
from evals.metrics import aggregate, group, main_metric

VARIANTS = {"prompt": "decode with prompt", "no_prompt": "decode without prompt"}


def table8_row(per_bucket: dict, metric: str) -> dict:
    """Error rate per bucket and Table 8's "Total Avg.": the mean of the bucket values (11.3, 4.0, 8.5 -> 7.9)."""
    row = {name: stats[metric] for name, stats in per_bucket.items()}
    values = [v for v in row.values() if v is not None]
    return row | {"total_avg": sum(values) / len(values) if values else None}


def build_report(rows: list[dict], cfg: EvalConfig, source: dict) -> dict:
    main = [r for r in rows if r["decode"] == "prompt"]
    by_bucket: dict[str, list[dict]] = {name: [] for name in names(cfg.buckets)}
    for r in main:
        by_bucket[bucket_of(r["text"], cfg.buckets)].append(r)
    summary = aggregate(main)
    per_bucket = {name: aggregate(rs) for name, rs in by_bucket.items()}
    report = {
        "source": source,
        "summary": summary,
        "per_language": group(main, lambda r: r["language"]),
        "per_bucket": per_bucket,
        "buckets": {"bounds": cfg.buckets, "table7": table7([r["text"] for r in main], cfg.buckets)},
        "table8": {"metric": main_metric(summary), "row": table8_row(per_bucket, main_metric(summary))},
        "failures": [{"id": r["id"], "decode": r["decode"], "reason": r["failure"]} for r in rows if r["failure"]],
        "utterances": rows,
    }
    if any(r["decode"] == "no_prompt" for r in rows):
        report["decode_prompt"] = {v: aggregate([r for r in rows if r["decode"] == v]) for v in VARIANTS}
    return report


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def summary_row(s: dict) -> list[str]:
    return [
        str(s["n"]),
        str(s["failures"]),
        pct(s["wer"]),
        pct(s["wer_corpus"]),
        pct(s["cer"]),
        num(s["sim"]),
        *(num(s[f"dnsmos_{k}"], 2) for k in ("sig", "bak", "ovrl", "p808")),
        num(s["duration_s"], 2),
        num(s["rtf"], 2),
    ]


SUMMARY_HEADER = [
    "n",
    "failures",
    "WER %",
    "WER corpus %",
    "CER %",
    "SIM",
    "SIG",
    "BAK",
    "OVRL",
    "P.808",
    "dur s",
    "RTF",
]


def error_cell(s: dict) -> str:
    """WER for WER languages, CER for CER languages, '-' where the ASR does not transcribe the language."""
    return f"{pct(s['cer'])} (CER)" if main_metric(s) == "cer" else pct(s["wer"])


def language_rows(per_language: dict) -> list[list[str]]:
    return [
        [lang, str(s["n"]), str(s["failures"]), error_cell(s), num(s["sim"]), num(s["dnsmos_ovrl"], 2)]
        for lang, s in per_language.items()
    ]


LANGUAGE_HEADER = ["language", "n", "failures", "WER/CER %", "SIM", "DNSMOS OVRL"]


def to_markdown(report: dict, title: str = "Evaluation report") -> str:
    src = report["source"]
    if "wav_dir" in src:
        what = f"`{src['wav_dir']}`"
    elif "ground_truth" in src:
        what = "the benchmark's ground truth (`gt_wav`)"
    else:
        what = f"synthesized by checkpoint `{src['checkpoint']}`"
    if "rescored_from" in src:
        what += f", transcripts of `{src['rescored_from']}` re-scored"
    metric = report["table8"]["metric"].upper()
    parts = [
        f"# {title}",
        f"Audio: {what}. Error rates in %, means of per-utterance values (seed-tts-eval); SIM = cosine of "
        "speaker embeddings, generated vs prompt audio; DNSMOS P.835 SIG/BAK/OVRL and P.808; RTF = synthesis "
        "seconds per audio second.",
        "## Summary",
        table(SUMMARY_HEADER, [summary_row(report["summary"])]),
        "## Per language (Figure 8)",
        table(LANGUAGE_HEADER, language_rows(report["per_language"])),
        "## Length buckets (Table 7: target characters)",
        table(
            ["bucket", "total", "avg chars", "min chars", "max chars"],
            [
                [name, str(s["total"]), num(s["avg_chars"], 1), str(s["min_chars"] or "-"), str(s["max_chars"] or "-")]
                for name, s in report["buckets"]["table7"].items()
            ],
        ),
        f"## {metric} by length (Table 8)",
        table(
            ["run", *(n.capitalize() for n in report["per_bucket"]), "Total Avg."],
            [["this run", *(pct(v) for v in report["table8"]["row"].values())]],
        ),
    ]
    if "decode_prompt" in report:
        parts += [
            "## Decoding with vs without the prompt audio (Table 10)",
            table(
                ["setting", "n", "failures", "SIM", "WER %", "DNSMOS OVRL"],
                [
                    [
                        VARIANTS[v],
                        str(s["n"]),
                        str(s["failures"]),
                        num(s["sim"]),
                        pct(s["wer"]),
                        num(s["dnsmos_ovrl"], 2),
                    ]
                    for v, s in report["decode_prompt"].items()
                ],
            ),
        ]
    if "markups" in report:
        from evals.markups import markup_markdown

        parts.append(markup_markdown(report["markups"]).rstrip())
    failures = report["failures"]
    parts.append(f"## Failures ({len(failures)})")
    lines = [f"- {f['id']} ({f['decode']}): {f['reason']}" for f in failures[:20]]
    if len(failures) > 20:
        lines.append(f"- ... {len(failures) - 20} more in report.json")
    if lines:
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def write_report(out: Path, report: dict, plots: bool = True) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    (out / "report.md").write_text(to_markdown(report), encoding="utf-8")
    if plots:
        from evals.plots import plot_report

        plot_report(report, out)
