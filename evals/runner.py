"""The evaluation run: (synthesize, then) score every utterance with the reward pools, then report.

Scoring goes through `rewards.router.RewardRouter` (one Ray actor pool per model: ASR, speaker, DNSMOS), chunk by
chunk; each chunk's rows are appended to OUT/utterances.jsonl, so a re-run scores only what is missing. A
generated file that is missing, unreadable, empty or silent, and a measurement that failed, make the utterance a
failure in the report, with the reason (seed-tts-eval drops such files silently).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from functools import cache
from pathlib import Path

import yaml

from evals.buckets import chars
from evals.config import EvalConfig
from evals.markups import SEP, SoundIdentifier, embedded_word_times, markup_effects, sound_starts
from evals.meta import EvalItem, load_items
from evals.metrics import edit_counts
from evals.protocols import SEED_LANGUAGES, seed_tts_eval_score
from evals.results import RESULTS, SYNTHESIS, append_rows, read_rows
from rewards.scorers import Sample, audio_problem
from tts.base.audio import AudioError, load_audio
from tts.speechlm import open_speechlm

log = logging.getLogger(__name__)
UNMEASURED = ("error_rate:", "wer:")  # router flags of the ASR for a language it does not transcribe


def source_of(cfg: EvalConfig) -> dict:
    """What produced the audio; results in one OUT must all come from the same source."""
    if sum(map(bool, (cfg.wav_dir, cfg.checkpoint, cfg.ground_truth))) != 1:
        raise ValueError(
            "give exactly one of --wav-dir (score existing wavs), --checkpoint (synthesize first) and "
            "--ground-truth (score the sets' own gt_wav audio)"
        )
    # SIM against another recording gives other figures: a run's OUT holds one choice (older runs: the prompt)
    sim = {} if cfg.sim_against == "prompt" else {"sim_against": cfg.sim_against}
    if cfg.wav_dir:
        return {"wav_dir": str(Path(cfg.wav_dir).resolve())} | sim
    if cfg.ground_truth:
        return {"ground_truth": [str(Path(m).resolve()) for m in cfg.meta]} | sim
    s = cfg.synthesis
    return {
        "checkpoint": str(Path(cfg.checkpoint).resolve()),
        "codec_dir": s.codec_dir,
        "temperature": s.temperature,
        "seed": s.seed,
        "backend": s.rollout.backend,
        "max_new_tokens": s.rollout.max_new_tokens,
    } | sim


def claim(out: Path, source: dict) -> None:
    """OUT/run.json names the source; a different source in the same OUT would mix results, so it fails."""
    path = out / "run.json"
    if path.is_file():
        previous = json.loads(path.read_text())
        if previous != source:
            raise ValueError(f"{out} holds results of another run ({previous}), not {source}: choose another --out")
    else:
        path.write_text(json.dumps(source, indent=2) + "\n")


class _Prompts:
    """Prompt audio, loaded once per file (many targets share a prompt)."""

    def __init__(self):
        self.cache: dict[str, tuple] = {}

    def __call__(self, path: str):
        if path not in self.cache:
            self.cache[path] = load_audio(path)
        return self.cache[path]


def load_sample(
    item: EvalItem,
    path: Path | None,
    decode: str,
    synthesis: dict | None,
    prompt: _Prompts,
    sim_against: str = "prompt",
) -> Sample:
    """The Sample to score (`path` None: the item's ground truth); its reference for SIM is the prompt recording or
    (`sim_against="ground_truth"`) the item's gt_wav. Why the audio cannot be used travels as meta["error"]."""
    ref_wave, ref_sr = prompt(item.gt_wav if sim_against == "ground_truth" else item.prompt_wav)
    sample = Sample(
        wave=None,
        sr=16000,
        text=item.target_text,
        language=item.language,
        ref_wave=ref_wave,
        ref_sr=ref_sr,
        id=f"{item.id}#{decode}",
    )
    if path is None:
        if not item.gt_wav:
            sample.meta["error"] = "missing: the benchmark has no ground-truth audio for this utterance"
            return sample
        path = Path(item.gt_wav)
    if not path.is_file():
        reason = (synthesis or {}).get("errors", {}).get(decode)
        sample.meta["error"] = f"synthesis failed: {reason}" if reason else f"missing: {path}"
        return sample
    try:
        sample.wave, sample.sr = load_audio(path)
    except AudioError as exc:
        sample.meta["error"] = f"broken: {exc}"
    return sample


SEED_FIGURES = ("substitutions", "deletions", "insertions")


def text_scores(transcript: str, target: str, language: str, protocol: str, cer: frozenset[str]) -> dict:
    """`error_rate`, `edits`, `ref_len` (and seed-tts-eval's substitution / deletion / insertion rates) of one
    transcript under `protocol`; languages seed-tts-eval does not score keep ours."""
    if protocol == "seed-tts-eval" and language in SEED_LANGUAGES:
        s = seed_tts_eval_score(transcript, target, language)
        return {"error_rate": s.wer, "edits": s.edits, "ref_len": s.ref_len} | {k: getattr(s, k) for k in SEED_FIGURES}
    edits, ref_len = edit_counts(target, transcript, language, cer)  # errors / length is rewards.asr.error_rate
    return {"error_rate": edits / ref_len, "edits": edits, "ref_len": ref_len}


def rescore(run: str | Path, cfg: EvalConfig) -> dict:
    """Re-score an evaluation output's transcripts under `cfg.protocol` into `cfg.out` (no audio, no ASR): the
    same transcripts through the other text protocol, e.g. to put a run beside a published table."""
    from evals.report import build_report, write_report

    run = Path(run)
    rows = read_rows(run / RESULTS)
    if not rows or not (run / "run.json").is_file():
        raise FileNotFoundError(f"{run}: no scored utterances to re-score ({RESULTS} and run.json)")
    cer = frozenset(cfg.rewards.asr.cer_languages)
    out_rows = []
    for r in rows:
        r = {k: v for k, v in r.items() if k not in SEED_FIGURES} | {"protocol": cfg.protocol}
        if r["error_rate"] is not None:
            r |= text_scores(r["transcript"] or "", r["text"], r["language"], cfg.protocol, cer)
        out_rows.append(r)
    out = Path(cfg.out)
    if out.resolve() == run.resolve():
        raise ValueError(f"--out {out} is the run being re-scored; give another directory")
    out.mkdir(parents=True, exist_ok=True)
    source = json.loads((run / "run.json").read_text()) | {"rescored_from": str(run)}
    claim(out, source)  # before anything in OUT is replaced: another run's results there stay untouched
    (out / RESULTS).unlink(missing_ok=True)
    append_rows(out / RESULTS, out_rows)
    report = build_report(out_rows, cfg, source)
    write_report(out, report, cfg.plots)
    return report


def result_row(
    item: EvalItem, decode: str, sample: Sample, record: dict, cfg: EvalConfig, synthesis: dict | None
) -> dict:
    """One utterance's results (the rows `evals.metrics.aggregate` reads)."""
    cer = frozenset(cfg.rewards.asr.cer_languages)
    metric = ("cer" if item.language in cer else "wer") if item.language in cfg.asr_languages else None
    flags = [f for f in record["flags"] if metric or not f.startswith(UNMEASURED)]
    failure = sample.meta.get("error") or audio_problem(sample.wave, cfg.rewards.silence_rms)
    rate = record.get("error_rate") if metric else None
    if not failure:
        expected = {"sim": record.get("sim"), "dnsmos": record.get("dnsmos")} | ({"error_rate": rate} if metric else {})
        missing = [m for m, v in expected.items() if v is None]
        if missing:
            why = [f for f in flags if f.startswith(tuple(missing))]
            failure = f"{', '.join(missing)} not measured" + (f": {why[0]}" if why else "")
    scores: dict = {"error_rate": rate, "edits": None, "ref_len": None}
    if rate is not None and not failure:
        transcript = record.get("transcript") or ""
        scores = text_scores(transcript, item.target_text, item.language, cfg.protocol, cer)
    timing = synthesis if synthesis and decode == "prompt" else {}
    return {
        "id": item.id,
        "decode": decode,
        "language": item.language,
        "text": item.target_text,
        "chars": chars(item.target_text),
        "transcript": record.get("transcript"),
        "metric": metric,
        **scores,
        "error_rate": None if failure else scores["error_rate"],
        "protocol": cfg.protocol,
        "sim": None if failure else record.get("sim"),
        "dnsmos": None if failure else record.get("dnsmos"),
        "duration": len(sample.wave) / sample.sr if sample.wave is not None and len(sample.wave) else None,
        "synth_s": timing.get("synth_s"),
        "tokens": timing.get("tokens"),
        "finish": timing.get("finish"),
        "failure": failure,
        "flags": flags,
    }


def score(items: list[EvalItem], wav_dirs: dict[str, Path | None], router, out: Path, cfg: EvalConfig) -> int:
    """Score every (item, decode) without a row in OUT/utterances.jsonl (audio: wav_dirs[decode]/<utt>.wav, or
    the item's gt_wav where the directory is None); returns how many were scored."""
    done = {(r["id"], r["decode"]) for r in read_rows(out / RESULTS)}
    todo = [(it, d) for d in wav_dirs for it in items if (it.id, d) not in done]
    synthesis = {r["id"]: r for r in read_rows(out / SYNTHESIS)}
    prompt = _Prompts()
    for start in range(0, len(todo), cfg.chunk):
        chunk = todo[start : start + cfg.chunk]
        samples = [
            load_sample(
                it, wav_dirs[d] and wav_dirs[d] / f"{it.id}.wav", d, synthesis.get(it.id), prompt, cfg.sim_against
            )
            for it, d in chunk
        ]
        records = router.score(samples)
        rows = [
            result_row(it, d, s, rec, cfg, synthesis.get(it.id)) for (it, d), s, rec in zip(chunk, samples, records)
        ]
        append_rows(out / RESULTS, rows)
        log.info("scored %d/%d", min(start + cfg.chunk, len(todo)), len(todo))
    return len(todo)


def run_eval(cfg: EvalConfig, router_factory=None) -> dict:
    """The whole run; returns the report (also written to OUT). `router_factory(rewards_cfg)` makes the scorer
    (default: a RewardRouter on Ray)."""
    from evals.report import build_report, write_report

    source = source_of(cfg)
    items = load_items(cfg.meta, cfg.language, cfg.limit)
    if cfg.sim_against == "ground_truth" and (lacking := [it.id for it in items if not it.gt_wav]):
        raise ValueError(
            f"sim_against=ground_truth: {len(lacking)} item(s) have no ground-truth recording to compare with "
            f"(e.g. {lacking[0]}); use sim_against=prompt"
        )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    claim(out, source)
    (out / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False, allow_unicode=True))
    if cfg.checkpoint:
        from evals.synthesize import WAVS, synthesize

        synthesize(cfg.checkpoint, items, out, cfg.synthesis)
        wav_dirs = {v: out / WAVS[v] for v in cfg.synthesis.variants}
    else:
        wav_dirs = {"prompt": Path(cfg.wav_dir) if cfg.wav_dir else None}
    done = {(r["id"], r["decode"]) for r in read_rows(out / RESULTS)}
    if any((it.id, d) not in done for d in wav_dirs for it in items):
        if router_factory is None:
            from rewards.router import RewardRouter

            router_factory = RewardRouter
        router = router_factory(cfg.rewards)
        try:
            score(items, wav_dirs, router, out, cfg)
        finally:
            router.shutdown()
    wanted = {(it.id, d) for d in wav_dirs for it in items}
    rows = [r for r in read_rows(out / RESULTS) if (r["id"], r["decode"]) in wanted]
    report = build_report(rows, cfg, source)
    if wav_dirs["prompt"] is not None and any(SEP in it.id for it in items):  # a markups set: the tags' effects
        checkpoint, codec_dir = cfg.checkpoint, cfg.synthesis.codec_dir
        identifier = cache(
            lambda: SoundIdentifier.build(open_speechlm(checkpoint, codec_dir).codec.load() if checkpoint else None)
        )
        starts = sound_starts(read_rows(out / SYNTHESIS)) if cfg.checkpoint else {}
        report["markups"] = markup_effects(items, wav_dirs["prompt"], identifier, cache(embedded_word_times), starts)
    write_report(out, report, cfg.plots)
    return report
