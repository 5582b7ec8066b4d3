"""What a GRPO run shows while it runs and leaves behind: Ray metrics (dashboard / Prometheus), a wandb run
(offline by default), a progress bar, metrics.jsonl, and at the end report.json (with the held-out before/after
comparison and its bootstrap intervals, per evaluation set too), compare.md, reward_curve.png and eval_curves.png."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rewards.router import ovrl_of
from tts.base.checkpoint import METRICS
from tts.base.stats import ci_text, paired_delta
from tts.grpo.config import GRPOConfig

COMPONENTS = ("total", "wer", "intelligibility", "sim", "dnsmos")  # NaN where the config has no such reward
GAUGES = {
    "reward_mean": "mean total reward of the step's samples",
    "reward_wer": "mean normalised WER reward",
    "reward_sim": "mean normalised SIM reward",
    "reward_dnsmos": "mean normalised DNSMOS reward",
    "kl": "k3 KL to the reference (token mean)",
    "loss": "GRPO loss",
    "clip_fraction": "share of tokens whose ratio was clipped",
    "entropy": "policy entropy per completion token (nats)",
    "groups_all_equal": "share of the step's groups whose samples all scored the same (no signal)",
    "reward_group_std": "mean over groups of the std of their total rewards",
    "truncated_fraction": "share of completions cut at max_new_tokens",
    "rollout_tokens_per_s": "generated tokens per second of rollout time",
    "rollout_s": "seconds until the last group was generated",
    "reward_tail_s": "seconds of scoring after generation ended",
    "eval_wer": "held-out raw WER of the policy at this step (every eval_interval steps)",
    "eval_sim": "held-out speaker similarity at this step",
    "eval_dnsmos_ovrl": "held-out DNSMOS OVRL at this step",
    "learner_s": "seconds of the learner update",
    "sync_s": "seconds of the weight sync",
    "step_s": "seconds per step",
}
EVAL_MEASURES = ("wer", "sim", "dnsmos_ovrl")
SET_GAUGES = {m: f"{m} of an evaluation set (data.eval_sets) at this step, tagged with the set" for m in EVAL_MEASURES}


def set_key(name: str) -> str:
    """A set's name in metric keys: `cloning/en` -> `cloning_en` (eval_cloning_en_wer)."""
    return "".join(c if c.isalnum() else "_" for c in name)


def eval_metrics(summary: dict) -> dict:
    """One evaluation's figures as metrics.jsonl keys: eval_<m> (held-out prompts) and eval_<set>_<m> per set."""

    def num(v: float | None) -> float:
        return float("nan") if v is None else v

    out = {"eval_reward": num(summary["total"])} | {f"eval_{m}": num(summary["raw"][m]) for m in EVAL_MEASURES}
    for name, s in summary.get("sets", {}).items():
        out[f"eval_{set_key(name)}_reward"] = num(s["total"])
        out |= {f"eval_{set_key(name)}_{m}": num(s["raw"][m]) for m in EVAL_MEASURES}
    return out


def summarise(records: list[dict]) -> dict:
    """Mean normalised rewards and raw measurements over scored samples (report.json's R)."""

    def mean(values: list[float | None]) -> float | None:
        vals = [v for v in values if v is not None and math.isfinite(v)]
        return float(np.mean(vals)) if vals else None

    rewards = [r["rewards"] for r in records]
    out = {k: mean([r.get(k) for r in rewards]) for k in COMPONENTS}
    dnsmos = [ovrl_of(r.get("dnsmos")) for r in records]
    out["raw"] = {
        "wer": mean([r.get("error_rate") for r in records]),
        "sim": mean([r.get("sim") for r in records]),
        "dnsmos_ovrl": mean(dnsmos),
    }
    out["n"] = len(records)
    out["unscorable"] = sum("failed" not in r for r in records)  # empty, silent or undecodable outputs
    return out


# held-out measurement -> how to read it from an eval_<tag>.json sample row
MEASURES = {
    "wer": lambda r: r.get("error_rate"),
    "sim": lambda r: r.get("sim"),
    "dnsmos_ovrl": lambda r: ovrl_of(r.get("dnsmos")),
    "reward_total": lambda r: r["rewards"].get("total"),
}


def compare_evals(before: list[dict], after: list[dict], seed: int = 0) -> dict:
    """Held-out before vs after (eval_<tag>.json sample rows): per measurement, each mean with its bootstrap 95%
    interval and the paired delta over prompts (a prompt's samples averaged first), plus unscorable outputs."""

    def by_prompt(rows: list[dict], read) -> dict[str, list]:
        out: dict[str, list] = {}
        for r in rows:
            out.setdefault(r["id"].split("#")[0], []).append(read(r))
        return out

    out = {m: paired_delta(by_prompt(before, f), by_prompt(after, f), seed) for m, f in MEASURES.items()}
    out["unscorable"] = {
        tag: sum(bool(r.get("unscorable")) for r in rows) for tag, rows in (("before", before), ("after", after))
    }
    out["samples"] = {"before": len(before), "after": len(after)}
    return out


def compare_markdown(c: dict, title: str = "# Held-out before vs after GRPO") -> str:
    """compare.md: the held-out table with intervals (WER in %); an evaluation set's table under its own title."""
    lines = [
        title,
        "",
        f"{c['samples']['before']} / {c['samples']['after']} samples; means with bootstrap 95% intervals; the delta "
        "is paired over prompts (after - before). Unscorable outputs (empty, silent) are left out of the means.",
        "",
        "| measurement | before | after | after - before | prompts paired |",
        "|---|---|---|---|---|",
    ]
    for m in MEASURES:
        e, scale = c[m], 100.0 if m == "wer" else 1.0
        digits = 1 if m == "wer" else 3
        cells = [ci_text(e[t]["mean"], e[t]["ci95"], scale, digits) for t in ("before", "after")]
        delta = ci_text(e["delta"], e["delta_ci95"], scale, digits)
        lines.append(f"| {m}{' %' if m == 'wer' else ''} | {cells[0]} | {cells[1]} | {delta} | {e['paired']} |")
    u = c["unscorable"]
    lines.append(f"| unscorable outputs | {u['before']} | {u['after']} | {u['after'] - u['before']:+d} | |")
    return "\n".join(lines) + "\n"


class Telemetry:
    def __init__(self, cfg: GRPOConfig, run_dir: Path, resumed_at: int | None):
        from ray.util.metrics import Gauge

        self.cfg, self.run_dir = cfg, run_dir
        # the paper's three reward gauges always exist; any other configured component gets one too
        extra = {f"reward_{c.name}": f"mean normalised {c.name} reward" for c in cfg.rewards.components}
        gauges = GAUGES | {k: d for k, d in extra.items() if k not in GAUGES}
        self.gauges = {k: Gauge(f"grpo_{k}", description=d, tag_keys=("run",)) for k, d in gauges.items()}
        self.set_gauges = {
            m: Gauge(f"grpo_eval_set_{m}", description=d, tag_keys=("run", "set")) for m, d in SET_GAUGES.items()
        }
        for g in [*self.gauges.values(), *self.set_gauges.values()]:
            g.set_default_tags({"run": cfg.name})
        self.wandb = None
        if cfg.wandb_mode != "disabled":
            import wandb

            self.wandb = wandb.init(
                project=cfg.wandb_project,
                name=cfg.name,
                dir=str(run_dir),
                mode=cfg.wandb_mode,
                config=asdict(cfg),
                resume="allow" if resumed_at else None,
            )
        start = resumed_at or 0
        self.bar = tqdm(total=cfg.steps, initial=start, desc="grpo", dynamic_ncols=True)

    def step(self, step: int, results: list, learner: dict, timing: dict, held_out: dict | None = None) -> dict:
        """One metrics row (metrics.jsonl, wandb, gauges); `held_out`: this step's held-out evaluation summary."""
        records = [rec for _, _, recs in results for rec in recs]
        tokens = sum(rec["tokens"] for rec in records)
        summary = summarise(records)

        def num(v: float | None) -> float:  # metrics rows and gauges take NaN where the report says None
            return float("nan") if v is None else v

        metrics = {"step": step}
        metrics |= {"reward_mean" if k == "total" else f"reward_{k}": num(summary[k]) for k in COMPONENTS}
        metrics |= {k: num(summary["raw"][k]) for k in ("wer", "sim", "dnsmos_ovrl")}
        metrics |= {
            "reward_std": float(np.std([r["rewards"]["total"] for r in records])),
            "completion_tokens_mean": tokens / max(len(records), 1),
            "reward_group_std": float(
                np.mean([np.std([r["rewards"]["total"] for r in recs]) for _, _, recs in results])
            ),
            "truncated_fraction": float(np.mean([r["finish"] == "length" for r in records])),
            "flagged": sum(bool(r["flags"]) for r in records),
            "rollout_tokens_per_s": tokens / max(timing["rollout_s"], 1e-9),
        }
        metrics |= learner | timing
        if held_out is not None:
            metrics |= eval_metrics(held_out)
        for k, g in self.gauges.items():
            if k in metrics and math.isfinite(metrics[k]):
                g.set(metrics[k])
        for name, summary_of_set in (held_out or {}).get("sets", {}).items():
            for m, g in self.set_gauges.items():
                if summary_of_set["raw"][m] is not None:
                    g.set(summary_of_set["raw"][m], tags={"set": name})
        if self.wandb is not None:
            self.wandb.log(metrics, step=step)
        with open(self.run_dir / METRICS, "a", encoding="utf-8") as f:
            f.write(json.dumps(metrics) + "\n")
        self.bar.update(1)
        self.bar.set_postfix(
            {
                "reward": f"{metrics['reward_mean']:.3f}",
                "kl": f"{metrics['kl']:.2g}",
                "step_s": f"{timing['step_s']:.0f}",
            }
        )
        return metrics

    def finish(self, report: dict) -> None:
        self.bar.close()
        evals = [self.run_dir / f"eval_{tag}.json" for tag in ("before", "after")]
        if all(f.is_file() for f in evals) and report.get("before") and report.get("after"):
            before, after = (json.loads(f.read_text()) for f in evals)
            report["compare"] = compare_evals(before["samples"], after["samples"], self.cfg.seed)
            text = compare_markdown(report["compare"])
            both = sorted(set(before.get("sets", {})) & set(after.get("sets", {})))
            if both:
                report["compare_sets"] = {
                    n: compare_evals(before["sets"][n]["samples"], after["sets"][n]["samples"], self.cfg.seed)
                    for n in both
                }
                text += "".join("\n" + compare_markdown(c, f"## {n}") for n, c in report["compare_sets"].items())
            (self.run_dir / "compare.md").write_text(text, encoding="utf-8")
        (self.run_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        plot_rewards(self.run_dir / METRICS, self.run_dir / "reward_curve.png", report)
        plot_eval_curves(self.run_dir / METRICS, self.run_dir / "eval_curves.png", report)
        if self.wandb is not None:
            self.wandb.summary.update({"report": report})
            self.wandb.finish()


def plot_rewards(metrics_file: Path, out: Path, report: dict | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_file.read_text().splitlines()] if metrics_file.is_file() else []
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [r["step"] for r in rows]
    for key, label in (("reward_mean" if c == "total" else f"reward_{c}", c) for c in COMPONENTS):
        if not any(math.isfinite(r.get(key, float("nan"))) for r in rows):
            continue  # a reward this run does not have
        ax.plot(steps, [r.get(key, float("nan")) for r in rows], label=label, lw=2 if key == "reward_mean" else 1)
    evaluated = [r for r in rows if "eval_reward" in r]
    if evaluated:
        ax.plot([r["step"] for r in evaluated], [r["eval_reward"] for r in evaluated], "k--", label="held-out total")
        wer_ax = ax.twinx()
        wer_ax.plot([r["step"] for r in evaluated], [r["eval_wer"] for r in evaluated], "r:", label="held-out raw WER")
        wer_ax.set_ylabel("held-out raw WER", color="r")
    for tag, marker in (("before", "o"), ("after", "s")):
        if report and report.get(tag) and report[tag].get("total") is not None:
            x = 0 if tag == "before" else report["steps"]
            ax.scatter([x], [report[tag]["total"]], marker=marker, color="k", zorder=3, label=f"held-out {tag}")
    ax.set_xlabel("step")
    ax.set_ylabel("normalised reward")
    ax.set_title("GRPO rewards (training samples; held-out total as markers)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_eval_curves(metrics_file: Path, out: Path, report: dict) -> Path | None:
    """eval_curves.png: WER, SIM and DNSMOS OVRL of the held-out prompts and of each evaluation set against the
    step (before = step 0, every eval_interval steps, after = the last step); None when nothing was evaluated."""
    points: list[tuple[int, dict]] = []
    if report.get("before"):
        points.append((0, eval_metrics(report["before"])))
    rows = [json.loads(line) for line in metrics_file.read_text().splitlines()] if metrics_file.is_file() else []
    points += [(r["step"], r) for r in rows if "eval_reward" in r]
    if report.get("after"):
        points.append((report["steps"], eval_metrics(report["after"])))
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {"held-out prompts": ""} | {
        n: f"{set_key(n)}_" for s in (report.get("before"), report.get("after")) if s for n in s.get("sets", {})
    }
    fig, axes = plt.subplots(1, len(EVAL_MEASURES), figsize=(12, 3.6))
    for ax, m in zip(axes, EVAL_MEASURES):
        for label, prefix in names.items():
            xy = [(step, p[f"eval_{prefix}{m}"]) for step, p in points if f"eval_{prefix}{m}" in p]
            if xy:
                ax.plot(*zip(*xy), marker="o", label=label)
        ax.set_xlabel("step")
        ax.set_title({"wer": "raw WER", "sim": "speaker similarity", "dnsmos_ovrl": "DNSMOS OVRL"}[m])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("GRPO policy on the evaluation sets")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
