"""PNG plots of a report: per-language bars (Figure 8), error rate by length bucket (Table 8), DNSMOS
distributions. Headless (Agg); a panel with nothing measured says so instead of failing."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from evals.metrics import DNSMOS_KEYS, main_metric  # noqa: E402


def _bars(ax, labels: list[str], values: list[float | None], title: str, scale: float = 1.0) -> None:
    ax.set_title(title)
    if not any(v is not None for v in values):
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        return
    heights = [0.0 if v is None else v * scale for v in values]
    bars = ax.bar(labels, heights, color="tab:blue")
    for bar, v in zip(bars, values):
        text = "n/a" if v is None else f"{v * scale:.1f}" if scale != 1 else f"{v:.2f}"
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)


def plot_report(report: dict, out: Path) -> list[Path]:
    out = Path(out)
    written = []
    langs = report["per_language"]
    fig, axes = plt.subplots(1, 2, figsize=(max(6, 1.2 * len(langs) + 4), 3.5))
    rates = [s[main_metric(s)] for s in langs.values()]
    _bars(axes[0], list(langs), rates, "WER / CER (%) per language", scale=100)
    _bars(axes[1], list(langs), [s["sim"] for s in langs.values()], "SIM per language")
    written.append(_save(fig, out / "per_language.png"))

    metric = report["table8"]["metric"]
    buckets = report["per_bucket"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    _bars(
        ax,
        [b.capitalize() for b in buckets],
        [s[metric] for s in buckets.values()],
        f"{metric.upper()} (%) by length",
        100,
    )
    written.append(_save(fig, out / "length_buckets.png"))

    fig, axes = plt.subplots(1, len(DNSMOS_KEYS), figsize=(12, 3), sharey=True)
    rows = [r for r in report["utterances"] if r["decode"] == "prompt" and r["dnsmos"]]
    for ax, key in zip(axes, DNSMOS_KEYS):
        ax.set_title(f"DNSMOS {key.upper() if key != 'p808' else 'P.808'}")
        values = [r["dnsmos"][key] for r in rows]
        if values:
            ax.hist(values, bins=20, range=(1, 5), color="tab:green")
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
    axes[0].set_ylabel("utterances")
    written.append(_save(fig, out / "dnsmos.png"))
    return written


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
