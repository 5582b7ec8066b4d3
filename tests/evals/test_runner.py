"""The scoring loop with a stand-in for the reward router (one piece under test): failures are counted with their
reason, unmeasured languages are not failures, results resume, and a run's OUT cannot mix sources."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from evals.config import EvalConfig
from evals.markups import SEP
from evals.meta import EvalItem, write_meta_lst
from evals.results import RESULTS, SYNTHESIS, append_rows, read_rows
from evals.runner import run_eval, score
from rewards.scorers import audio_problem

SR = 16000


def tone(seconds: float = 1.0, amp: float = 0.3) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * 220 * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


class FakeRouter:
    """Measures like RewardRouter.score: None plus a flag where it cannot; the ASR is English-only."""

    def __init__(self, cfg=None, transcript="the cat sat on mat", sim=0.7):
        self.calls, self.transcript, self.sim, self.shut = [], transcript, sim, False

    def score(self, samples):
        self.calls.append([s.id for s in samples])
        out = []
        for s in samples:
            problem = s.meta.get("error") or audio_problem(s.wave, 1e-4)
            if problem:
                out.append({"id": s.id, "error_rate": None, "sim": None, "dnsmos": None, "flags": [problem]})
                continue
            rec = {
                "id": s.id,
                "transcript": self.transcript,
                "sim": self.sim,
                "flags": [],
                "dnsmos": {"sig": 3.0, "bak": 4.0, "ovrl": 2.5, "p808": 3.5},
            }
            if s.language == "en":
                rec["error_rate"] = 1 / 6
            else:
                rec["error_rate"] = None
                rec["flags"] = ["error_rate: ValueError: this Whisper model is English-only", "wer: no measurement"]
            if self.sim is None:
                rec["flags"].append("sim: RuntimeError: encoder died")
            out.append(rec)
        return out

    def shutdown(self):
        self.shut = True


@pytest.fixture
def bench(tmp_path):
    """A meta.lst of five targets and a wav dir: good, missing, broken, silent, and a German one."""
    root = tmp_path / "set" / "en"
    root.mkdir(parents=True)
    sf.write(root / "p.wav", tone(), SR)
    ids = ["good", "missing", "broken", "silent", "german"]
    items = [EvalItem(i, "A prompt.", str(root / "p.wav"), "The cat sat on the mat.", "en") for i in ids]
    items[-1].language = "de"
    wavs = tmp_path / "gen"
    wavs.mkdir()
    sf.write(wavs / "good.wav", tone(2.0), SR)
    (wavs / "broken.wav").write_bytes(b"RIFF nonsense")
    sf.write(wavs / "silent.wav", np.zeros(SR, np.float32), SR)
    sf.write(wavs / "german.wav", tone(), SR)
    return {"items": items, "wavs": wavs, "meta": write_meta_lst(root / "meta.lst", items[:-1]), "root": root}


def cfg_for(tmp_path, **kw) -> EvalConfig:
    return EvalConfig(out=str(tmp_path / "out"), chunk=2, plots=False, **kw)


def test_failures_carry_their_reason_and_unmeasured_languages_do_not_fail(bench, tmp_path):
    cfg = cfg_for(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    router = FakeRouter()
    assert score(bench["items"], {"prompt": bench["wavs"]}, router, out, cfg) == 5
    assert [len(c) for c in router.calls] == [2, 2, 1]  # chunks of cfg.chunk
    rows = {r["id"]: r for r in read_rows(out / RESULTS)}
    good = rows["good"]
    assert (good["failure"], good["metric"], good["error_rate"], good["edits"], good["ref_len"]) == (
        None,
        "wer",
        1 / 6,
        1,
        6,
    )
    assert good["duration"] == pytest.approx(2.0) and good["dnsmos"]["ovrl"] == 2.5
    assert rows["missing"]["failure"].startswith("missing: ") and rows["missing"]["duration"] is None
    assert rows["broken"]["failure"].startswith("broken: ") and "unreadable audio" in rows["broken"]["failure"]
    assert rows["silent"]["failure"] == "audio: silent"
    german = rows["german"]
    assert (german["failure"], german["metric"], german["error_rate"], german["sim"]) == (None, None, None, 0.7)
    assert german["flags"] == []  # the English-only ASR's flags are not news for a language it does not transcribe


def test_a_failed_measurement_is_a_failure(bench, tmp_path):
    cfg = cfg_for(tmp_path)
    (tmp_path / "out").mkdir()
    score(bench["items"][:1], {"prompt": bench["wavs"]}, FakeRouter(sim=None), tmp_path / "out", cfg)
    (row,) = read_rows(tmp_path / "out" / RESULTS)
    assert row["failure"] == "sim not measured: sim: RuntimeError: encoder died"
    assert row["error_rate"] is None  # a failed row contributes to no mean


def test_resume_scores_only_what_is_missing(bench, tmp_path):
    cfg, out = cfg_for(tmp_path), tmp_path / "out"
    out.mkdir()
    score(bench["items"][:3], {"prompt": bench["wavs"]}, FakeRouter(), out, cfg)
    with open(out / RESULTS, "a") as f:
        f.write('{"id": "silent", "dec')  # a run killed mid-write
    router = FakeRouter()
    assert score(bench["items"], {"prompt": bench["wavs"]}, router, out, cfg) == 2
    assert router.calls == [["silent#prompt", "german#prompt"]]
    assert sorted(r["id"] for r in read_rows(out / RESULTS)) == sorted(it.id for it in bench["items"])
    assert score(bench["items"], {"prompt": bench["wavs"]}, router, out, cfg) == 0


def test_synthesis_errors_explain_missing_files(bench, tmp_path):
    cfg, out = cfg_for(tmp_path), tmp_path / "out"
    out.mkdir()
    append_rows(
        out / SYNTHESIS,
        [
            {
                "id": "missing",
                "tokens": 1,
                "finish": "stop",
                "synth_s": 0.1,
                "errors": {"prompt": "generation: no audio tokens"},
            }
        ],
    )
    score(bench["items"][1:2], {"prompt": bench["wavs"]}, FakeRouter(), out, cfg)
    assert read_rows(out / RESULTS)[0]["failure"] == "synthesis failed: generation: no audio tokens"


def test_run_eval_writes_the_report_and_resumes_without_scoring(bench, tmp_path):
    cfg = cfg_for(tmp_path, meta=[str(bench["meta"])], wav_dir=str(bench["wavs"]))
    routers = []

    def factory(rewards_cfg):
        routers.append(FakeRouter(rewards_cfg))
        return routers[-1]

    report = run_eval(cfg, factory)
    assert routers[0].shut
    s = report["summary"]
    assert (s["n"], s["failures"], s["scored"]) == (4, 3, 1)
    assert s["wer"] == pytest.approx(1 / 6) and s["wer_failed_as_1"] == pytest.approx((1 / 6 + 3) / 4)
    assert report["per_language"]["en"]["n"] == 4 and report["per_bucket"]["short"]["n"] == 4
    assert {f["id"] for f in report["failures"]} == {"missing", "broken", "silent"}
    assert json.loads((tmp_path / "out" / "report.json").read_text())["summary"] == s
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| 4 | 3 | 16.7 | 16.7 |" in md and "## Failures (3)" in md and "- missing (prompt): missing: " in md

    assert run_eval(cfg, factory)["summary"] == s and len(routers) == 1  # everything scored: no router at all


def test_one_out_holds_one_source(bench, tmp_path):
    cfg = cfg_for(tmp_path, meta=[str(bench["meta"])], wav_dir=str(bench["wavs"]))
    run_eval(cfg, FakeRouter)
    cfg.wav_dir = str(bench["root"])
    with pytest.raises(ValueError, match="holds results of another run"):
        run_eval(cfg, FakeRouter)
    cfg.checkpoint = "x"
    with pytest.raises(ValueError, match="exactly one of --wav-dir .*, --checkpoint .* and --ground-truth"):
        run_eval(cfg, FakeRouter)


def test_ground_truth_source_scores_each_items_gt_wav(bench, tmp_path):
    items = bench["items"][:2]
    items[0].gt_wav = str(bench["wavs"] / "good.wav")  # the second has none
    meta = write_meta_lst(bench["root"] / "gt.lst", items)
    report = run_eval(cfg_for(tmp_path, meta=[str(meta)], language="en", ground_truth=True), FakeRouter)
    rows = {r["id"]: r for r in report["utterances"]}
    assert rows["good"]["failure"] is None and rows["good"]["duration"] == pytest.approx(2.0)
    assert rows["missing"]["failure"] == "missing: the benchmark has no ground-truth audio for this utterance"
    assert "ground truth" in (tmp_path / "out" / "report.md").read_text()


def test_sim_against_ground_truth_compares_with_each_items_own_recording(bench, tmp_path):
    """Instant cloning copies its prompt, so SIM against the prompt favours it; against the item's own held-out
    recording every voice (instant, LoRA, the model's own) meets the same yardstick."""
    items = bench["items"][:1]
    items[0].gt_wav = str(bench["root"] / "gt.wav")
    sf.write(items[0].gt_wav, tone(3.0), SR)  # the prompt is 1 s, the ground truth 3 s
    meta = write_meta_lst(bench["root"] / "gt.lst", items)
    refs = []

    class Recording(FakeRouter):
        def score(self, samples):
            refs.extend(len(s.ref_wave) / s.ref_sr for s in samples)
            return super().score(samples)

    wavs = str(bench["wavs"])
    run_eval(cfg_for(tmp_path, meta=[str(meta)], wav_dir=wavs, sim_against="ground_truth"), Recording)
    assert refs == [pytest.approx(3.0)]
    with pytest.raises(ValueError, match="holds results of another run"):  # one OUT, one yardstick
        run_eval(cfg_for(tmp_path, meta=[str(meta)], wav_dir=wavs), Recording)
    with pytest.raises(ValueError, match=r"4 item\(s\) have no ground-truth recording"):
        run_eval(cfg_for(tmp_path, meta=[str(bench["meta"])], wav_dir=wavs, sim_against="ground_truth"), FakeRouter)
    with pytest.raises(ValueError, match="sim_against must be one of"):
        cfg_for(tmp_path, sim_against="reference")


def test_seed_tts_eval_protocol_scores_the_transcript_its_way(bench, tmp_path):
    """Target "The cat sat on the mat." vs transcript "the cat sat on mat": ours (Whisper's normaliser) and
    seed-tts-eval's processing both find one deletion in six words here; the protocol's rows carry its error kinds
    and the summary its secondary figures."""
    cfg = cfg_for(tmp_path, protocol="seed-tts-eval")
    out = tmp_path / "out"
    out.mkdir()
    score(bench["items"][:1], {"prompt": bench["wavs"]}, FakeRouter(transcript="The cat, sat on MAT"), out, cfg)
    (good,) = read_rows(out / RESULTS)
    assert good["protocol"] == "seed-tts-eval" and good["transcript"] == "The cat, sat on MAT"
    assert (good["error_rate"], good["edits"], good["ref_len"]) == (pytest.approx(1 / 6), 1, 6)
    assert (good["substitutions"], good["deletions"], good["insertions"]) == (0.0, pytest.approx(1 / 6), 0.0)
    from evals.metrics import aggregate

    summary = aggregate([good])
    assert summary["wer_deletions"] == pytest.approx(1 / 6) and summary["wer_above_50_share"] == 0.0
    with pytest.raises(ValueError, match="unknown protocol 'seed'; known: ours, seed-tts-eval"):
        cfg_for(tmp_path, protocol="seed")


def test_rescore_moves_a_run_to_the_other_protocol_without_asr(bench, tmp_path):
    """ "I have 2 cats." heard as "I have two cats": Whisper's normaliser (ours) spells numbers alike, so no error;
    seed-tts-eval's processing only deletes punctuation and lower-cases, so one substitution in four words."""
    from evals.runner import claim, rescore

    items = [EvalItem("good", "A prompt.", bench["items"][0].prompt_wav, "I have 2 cats.", "en")]
    items += bench["items"][2:4]  # broken, silent: failures stay failures
    out = tmp_path / "out"
    out.mkdir()
    claim(out, {"wav_dir": str(bench["wavs"])})
    score(items, {"prompt": bench["wavs"]}, FakeRouter(transcript="I have two cats"), out, cfg_for(tmp_path))
    seed = rescore(out, cfg_for(tmp_path / "seed", protocol="seed-tts-eval"))
    rows = {r["id"]: r for r in read_rows(tmp_path / "seed" / "out" / RESULTS)}
    assert rows["good"]["protocol"] == "seed-tts-eval" and rows["good"]["error_rate"] == pytest.approx(0.25)
    assert rows["good"]["substitutions"] == pytest.approx(0.25) and rows["good"]["transcript"] == "I have two cats"
    assert rows["broken"]["failure"] and rows["broken"]["error_rate"] is None
    assert seed["summary"]["failures"] == 2 and seed["source"]["rescored_from"] == str(out)
    ours = {r["id"]: r for r in read_rows(out / RESULTS)}
    assert ours["good"]["error_rate"] == 0.0 and "substitutions" not in ours["good"]
    back = rescore(tmp_path / "seed" / "out", cfg_for(tmp_path / "back"))
    assert back["summary"]["wer"] == 0.0
    assert "substitutions" not in read_rows(tmp_path / "back" / "out" / RESULTS)[0]
    with pytest.raises(ValueError, match="is the run being re-scored"):
        rescore(out, cfg_for(tmp_path))
    with pytest.raises(FileNotFoundError, match="no scored utterances"):
        rescore(tmp_path / "nothing", cfg_for(tmp_path / "x"))


def test_a_markups_set_gets_the_effects_of_its_tags_in_the_report(bench, tmp_path):
    """Items named <base>__<tag> (tts-align eval make-sets' markups set): the report measures each tag against
    the neutral rendering; here the [sad] rendering is the neutral tone stretched to twice its length."""
    root = bench["root"]
    items = [EvalItem(f"u{SEP}{name}", "A prompt.", str(root / "p.wav"), text, "en") for name, text in
             (("neutral", "The cat sat."), ("sad", "[sad] The cat sat."))]  # fmt: skip
    wavs = tmp_path / "marked"
    wavs.mkdir()
    sf.write(wavs / f"u{SEP}neutral.wav", tone(1.0), SR)
    sf.write(wavs / f"u{SEP}sad.wav", tone(2.0), SR)
    meta = write_meta_lst(root / "markups.lst", items)
    report = run_eval(cfg_for(tmp_path, meta=[str(meta)], wav_dir=str(wavs)), FakeRouter)
    sad = report["markups"]["tags"]["[sad]"]
    assert sad["n"] == 1 and sad["duration_ratio"] == pytest.approx(2.0, rel=0.05)
    assert report["markups"]["goals"]["[sad] slower than neutral"] is None  # one prompt: no interval to judge
    assert "## Markup tags (1 prompts" in (tmp_path / "out" / "report.md").read_text()
