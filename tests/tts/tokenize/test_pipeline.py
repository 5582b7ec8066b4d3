"""End to end on a tiny espeak corpus with one hand-made row per failure mode (Ray, real DNSMOS, small codec)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import ray

from tests.tts.tokenize.tiny_corpus import BAD_MANIFEST_ROWS, EXPECTED, MAX_DURATION, make_corpus, small_codec
from tts.base.audio import load_audio
from tts.base.cluster import init_ray
from tts.codec import load_codec
from tts.codec.world_vq import WorldVQCodec, WorldVQConfig
from tts.tokenize import ShardDataset, TokenizeConfig
from tts.tokenize.filters import REASONS, chars_per_second
from tts.tokenize.pipeline import run
from tts.tokenize.shards import DONE, read_index

BAD_FILE_REASONS = {"unreadable_audio", "missing_file", "unsupported_sample_rate"}


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def manifest_rows(path: Path) -> list[dict]:
    """The rows of the test manifest that parse as JSON (one line deliberately does not)."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokenize")
    manifest = make_corpus(root / "corpus")
    cfg = TokenizeConfig(
        codec_dir=str(small_codec(root / "codec")), max_duration=MAX_DURATION, cps_min_rows=10, shard_size=8
    )
    init_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield manifest, root / "out", cfg, run(manifest, root / "out", cfg)
    finally:
        ray.shutdown()


def expected_statistical_drops(manifest: Path, out: Path, cfg: TokenizeConfig) -> dict[str, str]:
    """Recompute the OVRL and speaking-rate cuts from the manifest and the cached annotations."""
    cache = {e["wav"]: e for e in jsonl(out / "annotations.jsonl")[1:]}
    rows = []
    for r in manifest_rows(manifest):
        if r["text"].strip() and EXPECTED.get(r["id"]) not in BAD_FILE_REASONS:
            a = cache[str((manifest.parent / r["wav"]).resolve())]
            rows.append(r | {"ovrl": a["ovrl"], "duration": a["num_samples"] / a["sample_rate"]})
    scored = [r["ovrl"] for r in rows if not np.isnan(r["ovrl"])]
    cut = np.quantile(scored, cfg.dnsmos_drop_fraction)
    usable = [r for r in rows if r["id"] not in EXPECTED]
    drops = {r["id"]: "low_dnsmos" for r in usable if r["ovrl"] < cut}
    for lang in {r["language"] for r in usable}:
        group = [r for r in usable if r["language"] == lang]
        if len(group) >= cfg.cps_min_rows:
            cps = {r["id"]: chars_per_second(r["text"], r["duration"]) for r in group}
            lo, hi = np.quantile(list(cps.values()), [cfg.cps_low_quantile, cfg.cps_high_quantile])
            drops |= {i: "cps_outlier" for i, c in cps.items() if (c < lo or c > hi) and i not in drops}
    return drops


@pytest.mark.slow
def test_counts_and_reasons(tiny):
    manifest, out, cfg, summary = tiny
    bad = jsonl(out / "bad_files.jsonl")
    assert summary["rows_in"] == 16 + 1 + len(EXPECTED) + BAD_MANIFEST_ROWS == 27
    assert summary["bad_reasons"] == {
        "bad_manifest_row": 2,
        "unreadable_audio": 1,
        "missing_file": 1,
        "unsupported_sample_rate": 1,
    }
    assert summary["bad_files"] == len(bad) == 5 and all(set(b) >= {"id", "path", "reason"} for b in bad)
    assert {b["id"]: b["reason"] for b in bad if b["id"]} == {
        i: r for i, r in EXPECTED.items() if r in BAD_FILE_REASONS
    }
    assert any("below the 8000 Hz" in b["message"] for b in bad)

    dropped = {d["id"]: d["reason"] for d in jsonl(out / "dropped.jsonl")}
    structural = {i: r for i, r in EXPECTED.items() if r not in BAD_FILE_REASONS}
    assert {i: r for i, r in dropped.items() if i in EXPECTED} == structural
    statistical = expected_statistical_drops(manifest, out, cfg)
    assert {i: r for i, r in dropped.items() if i not in EXPECTED} == statistical
    assert summary["dropped"] == {r: sum(v == r for v in (structural | statistical).values()) for r in REASONS}
    assert summary["dropped"]["junk_transcript"] == 2 and summary["dropped"]["too_long"] == 1
    assert summary["kept"] == 27 - 5 - len(dropped)
    assert summary["stages"] == {
        "parsed": 25,
        "read": 22,
        "annotated": 22,
        "annotations_cached": 0,
        "filtered": summary["kept"],
    }
    assert summary["shards"] == summary["shards_written"] == 3 and summary["shards_skipped"] == 0
    assert json.loads((out / "summary.json").read_text()) == summary


@pytest.mark.slow
def test_shards_round_trip_the_codec(tiny):
    manifest, out, cfg, summary = tiny
    codec = load_codec(cfg.codec_dir)
    data = ShardDataset(out)
    assert len(data) == summary["kept"]
    total_codes, audio_bytes, seconds = 0, 0, 0.0
    for meta, codes in data:
        np.testing.assert_array_equal(codes, codec.encode(*load_audio(meta["wav"])))
        assert meta["n_codes"] == len(codes) and set(meta["dnsmos"]) == {"ovrl", "sig", "bak", "p808"}
        assert meta["language"] in ("en", "de") and meta["text"] and meta["speaker"]
        total_codes += len(codes)
        audio_bytes += 2 * meta["num_samples"]
        seconds += meta["num_samples"] / meta["sample_rate"]
    assert summary["bytes_codes"] == 2 * total_codes == sum(p.stat().st_size for p in out.glob("shards/*/codes.bin"))
    assert summary["bytes_audio"] == audio_bytes and summary["hours_kept"] == pytest.approx(seconds / 3600, abs=1e-6)
    for d in sorted(out.glob("shards/shard-*")):
        meta, offsets = read_index(d)
        assert offsets[0] == 0 and list(np.diff(offsets)) == [m["n_codes"] for m in meta]
        assert offsets[-1] * 2 == (d / "codes.bin").stat().st_size
    ids = [m["id"] for m, _ in data]
    assert ids == [r["id"] for r in manifest_rows(manifest) if r["id"] in ids]  # shards keep the manifest's order
    if "rate8k" in ids:  # resampled from 8 kHz (kept unless a statistical filter dropped it)
        assert data[ids.index("rate8k")][0]["sample_rate"] == 8000


@pytest.mark.slow
def test_rerun_skips_finished_shards_and_redoes_an_unfinished_one(tiny):
    manifest, out, cfg, first = tiny
    marks = {p: p.stat().st_mtime_ns for p in out.glob(f"shards/*/{DONE}")}
    again = run(manifest, out, cfg)
    assert again["shards_skipped"] == again["shards"] == 3 and again["shards_written"] == 0
    assert again["stages"]["annotations_cached"] == 25 and again["seconds"]["encode"] < 1.0
    assert {p: p.stat().st_mtime_ns for p in out.glob(f"shards/*/{DONE}")} == marks
    same = ("rows_in", "kept", "dropped", "bad_files", "bad_reasons", "bytes_codes", "bytes_audio", "thresholds")
    assert {k: again[k] for k in same} == {k: first[k] for k in same}

    crashed = sorted(marks)[1]
    crashed.unlink()  # as if the job died while writing this shard
    third = run(manifest, out, cfg)
    assert third["shards_written"] == 1 and third["shards_skipped"] == 2 and crashed.is_file()
    assert {p: p.stat().st_mtime_ns for p in marks if p != crashed} == {p: t for p, t in marks.items() if p != crashed}
    assert {k: third[k] for k in same} == {k: first[k] for k in same}


def test_codebook_too_big_for_uint16_fails_before_any_work(tmp_path):
    cfg = WorldVQConfig(env_clusters=(1 << 15) + 1, f0_bins=2)
    WorldVQCodec(cfg, np.zeros((cfg.env_clusters, cfg.code_dims))).save(tmp_path / "codec")
    (tmp_path / "m.jsonl").write_text("")
    with pytest.raises(ValueError, match="codebook_size 65538 does not fit the uint16"):
        run(tmp_path / "m.jsonl", tmp_path / "out", TokenizeConfig(codec_dir=str(tmp_path / "codec")))
    assert not (tmp_path / "out").exists()


def test_manifest_without_usable_rows(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"id": "x"}\nnot json\n')
    cfg = TokenizeConfig(codec_dir=str(small_codec(tmp_path / "codec")))
    summary = run(tmp_path / "m.jsonl", tmp_path / "out", cfg)
    assert summary["rows_in"] == summary["bad_files"] == 2 and summary["kept"] == summary["shards"] == 0
    assert summary["bad_reasons"] == {"bad_manifest_row": 2} and summary["hours_kept"] == 0


@pytest.mark.slow
def test_dnsmos_false_skips_scoring_and_its_filter(tiny, tmp_path):
    """A synthetic corpus: no DNSMOS actors, no OVRL cut, the same rows otherwise; shards say unscored (None)."""
    from dataclasses import replace

    manifest, _, cfg, scored = tiny
    lines, rows = [], []
    for k, line in enumerate(Path(manifest).read_text().splitlines()):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # the corpus's deliberately broken rows stay as they are
            lines.append(line)
            continue
        if k % 2 and isinstance(rows[-1], dict):  # every other row with a phoneme timing: carried into its shard
            rows[-1]["phonemes"] = [["a", 0.0], ["b", 0.1 + k / 1000]]
        lines.append(json.dumps(rows[-1]))
    rows = [r for r in rows if isinstance(r, dict) and "id" in r]
    timed = Path(manifest).with_name("timed.jsonl")  # beside the audio: the rows' paths stay valid
    timed.write_text("\n".join(lines) + "\n")
    summary = run(timed, tmp_path / "out", replace(cfg, dnsmos=False))
    assert summary["dropped"]["low_dnsmos"] == 0 and scored["dropped"]["low_dnsmos"] > 0
    assert summary["kept"] > scored["kept"]
    assert summary["thresholds"]["dnsmos_ovrl"] is None
    shards = list(ShardDataset(tmp_path / "out"))
    assert all(meta["dnsmos"] is None for meta, _ in shards)
    by_id = {r["id"]: r.get("phonemes") for r in rows}
    assert any(by_id[m["id"]] for m, _ in shards) and all(m.get("phonemes") == by_id[m["id"]] for m, _ in shards)
