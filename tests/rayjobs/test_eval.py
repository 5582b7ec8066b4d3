"""rayjobs/eval.py end to end on Ray (slow): a tiny SpeechLM and a random codec synthesize two utterances through
the GRPO rollout worker and decoder pool, the real embedded reward models score them, the report is written; a
re-run resumes without redoing anything; --compare and --arena run on the results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import ray

from evals.meta import EvalItem, write_meta_lst
from rayjobs.eval import main
from tests.tts.grpo.tiny_setup import tiny_codec, tiny_policy
from tts.base.audio import save_audio
from tts.base.manifest import Utterance, write_manifest
from tts.corpus.generate import speak
from tts.corpus.voices import speakers_for

pytestmark = pytest.mark.slow
SENTENCES = ["The old man drank some coffee.", "My sister took the train.", "We will watch a funny movie."]


def eval_inputs(root: Path) -> dict:
    """A two-utterance eval set (espeak-ng voice, real text), a tiny SpeechLM and a random codec under `root`."""
    speaker = speakers_for("en", "en")[-1]
    rows = []
    for k, text in enumerate(SENTENCES):
        wave = speak(speaker, text, 16000)
        save_audio(root / "corpus" / f"u{k}.wav", wave, 16000)
        rows.append(Utterance(f"u{k}", text, "en", speaker.id, f"u{k}.wav", len(wave) / 16000, 16000))
    manifest = write_manifest(root / "corpus" / "manifest.jsonl", rows)
    prompt = str(root / "corpus" / "u0.wav")
    items = [
        EvalItem(f"u{k}", SENTENCES[0], prompt, SENTENCES[k], "en", str(root / "corpus" / f"u{k}.wav")) for k in (1, 2)
    ]
    return {
        "meta": write_meta_lst(root / "set" / "en" / "meta.lst", items),
        "codec": tiny_codec(root / "codec"),
        "policy": tiny_policy(root / "lm", manifest),
    }


def eval_argv(inputs: dict, out: Path) -> list[str]:
    """rayjobs/eval.py arguments for `eval_inputs`: short syntheses, results under `out`."""
    return [
        *("--meta", str(inputs["meta"]), "--checkpoint", str(inputs["policy"]), "--out", str(out)),
        f"synthesis.codec_dir={inputs['codec']}",
        "synthesis.rollout.max_new_tokens=24",
        "synthesis.rollout.max_model_len=512",
    ]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return eval_inputs(tmp_path_factory.mktemp("eval_inputs"))


@pytest.fixture(scope="module")
def ray_local():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def lines(path) -> list[str]:
    return path.read_text().splitlines()


def test_synthesize_score_report_resume_compare_arena(ray_local, inputs, tmp_path):
    out = tmp_path / "run"
    argv = eval_argv(inputs, out)
    report = main(argv)

    synthesis = [json.loads(x) for x in lines(out / "synthesis.jsonl")]
    assert [r["id"] for r in synthesis] == ["u1", "u2"]
    rows = report["utterances"]
    assert sorted((r["id"], r["decode"]) for r in rows) == [
        (u, d) for u in ("u1", "u2") for d in ("no_prompt", "prompt")
    ]
    for r in rows:  # every utterance is scored or failed with its reason, none dropped
        synth = next(s for s in synthesis if s["id"] == r["id"])
        made = (out / ("wavs" if r["decode"] == "prompt" else "wavs_no_prompt") / f"{r['id']}.wav").is_file()
        assert made == (r["decode"] not in synth["errors"])
        if r["failure"]:
            assert r["failure"].startswith(("synthesis failed:", "audio:", "error_rate", "sim", "dnsmos"))
        else:
            assert (
                r["metric"] == "wer" and r["error_rate"] >= 0 and -1 <= r["sim"] <= 1 and 1 <= r["dnsmos"]["ovrl"] <= 5
            )
            assert r["duration"] > 0
    s = report["summary"]
    assert s["n"] == 2 and s["failures"] == sum(1 for r in rows if r["decode"] == "prompt" and r["failure"])
    assert set(report["decode_prompt"]) == {"prompt", "no_prompt"}
    if s["scored"]:
        assert s["rtf"] > 0 and s["wer"] is not None
    saved = json.loads((out / "report.json").read_text())
    assert saved["summary"] == s and {"summary", "per_language", "utterances"} <= set(saved)
    for name in ("report.md", "per_language.png", "length_buckets.png", "dnsmos.png"):
        assert (out / name).stat().st_size > 0

    before = (lines(out / "synthesis.jsonl"), lines(out / "utterances.jsonl"))
    assert main(argv)["summary"] == s  # resumed: nothing synthesized or scored again
    assert (lines(out / "synthesis.jsonl"), lines(out / "utterances.jsonl")) == before

    main(["--compare", str(out), str(out), "--out", str(tmp_path / "cmp")])
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text())["summary"]["delta"]["failures"] == 0
    votes = tmp_path / "votes.jsonl"
    votes.write_text("".join(json.dumps({"model_a": "sft", "model_b": "rl", "winner": w}) + "\n" for w in "bbab"))
    arena = main(["--arena", str(votes), "--out", str(tmp_path / "arena"), "arena.bootstrap=50"])
    assert list(arena["ratings"]) == ["rl", "sft"] and (tmp_path / "arena" / "arena.md").is_file()
