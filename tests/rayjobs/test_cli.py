"""Tests for the `tts-align` command line (rayjobs/cli.py): codec encode/decode and corpus generate."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from rayjobs.cli import main
from tests.tiny import random_codec
from tts.codec.world_vq import WorldVQCodec

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not on PATH")
CODEBOOK = 8 * 4  # env_clusters x f0_bins


@pytest.fixture(scope="module")
def codec_dir(tmp_path_factory):
    """A tiny WORLD-VQ checkpoint with random centroids."""
    return random_codec(tmp_path_factory.mktemp("codec"), env_clusters=8, f0_bins=4)


@pytest.fixture
def wav(tmp_path):
    """1 s of a voiced-sounding 150 Hz harmonic tone at 16 kHz."""
    t = np.arange(16000) / 16000
    wave = sum(0.2 / k * np.sin(2 * np.pi * 150 * k * t) for k in range(1, 6)).astype(np.float32)
    path = tmp_path / "in.wav"
    sf.write(path, wave, 16000)
    return path


def fails(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("tts-align: error: ")
    assert "Traceback" not in err
    return err


def test_codec_encode_decode_round_trip(tmp_path, wav, codec_dir, capsys):
    npy, out = tmp_path / "codes.npy", tmp_path / "out.wav"
    main(["codec", "encode", str(wav), str(npy), "--codec", str(codec_dir)])
    assert "50 codes (1.00 s)" in capsys.readouterr().out
    codes = np.load(npy)
    assert codes.dtype == np.int32 and codes.shape == (50,)  # one code per 20 ms
    assert codes.min() >= 0 and codes.max() < CODEBOOK
    assert (codes // 8 > 0).any()  # the tone is voiced somewhere: a non-zero f0 bin

    main(["codec", "decode", str(npy), str(out), "--codec", str(codec_dir)])
    assert "1.00 s at 16000 Hz" in capsys.readouterr().out
    info = sf.info(str(out))
    assert info.samplerate == 16000 and info.channels == 1
    assert info.frames == len(codes) * 320


def test_codec_encode_resamples_other_rates(tmp_path, codec_dir, capsys):
    path = tmp_path / "in44.wav"
    t = np.arange(22050) / 44100  # 0.5 s
    sf.write(path, (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 44100)
    main(["codec", "encode", str(path), str(tmp_path / "c.npy"), "--codec", str(codec_dir)])
    assert np.load(tmp_path / "c.npy").shape == (25,)


def test_codec_decode_missing_npy(tmp_path, codec_dir, capsys):
    missing = tmp_path / "missing.npy"
    err = fails(["codec", "decode", str(missing), str(tmp_path / "o.wav"), "--codec", str(codec_dir)], capsys)
    assert f"{missing}: no such codes file" in err
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("content", [b"hello, I am not an array\n", b""], ids=["text", "empty"])
def test_codec_decode_non_array_file(tmp_path, codec_dir, capsys, content):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(content)
    err = fails(["codec", "decode", str(bad), str(tmp_path / "o.wav"), "--codec", str(codec_dir)], capsys)
    assert f"{bad}: not a .npy array of codes" in err
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize(
    "codes, message",
    [
        (np.array([0, 5, 32], dtype=np.int32), "code 32 at position 2 is outside [0, 32)"),
        (np.array([0.5, 1.0]), "codes must be integers"),
        (np.zeros((2, 3), dtype=np.int32), "codes must be a non-empty 1-D array, got shape (2, 3)"),
    ],
)
def test_codec_decode_invalid_codes(tmp_path, codec_dir, capsys, codes, message):
    npy = tmp_path / "codes.npy"
    np.save(npy, codes)
    assert message in fails(["codec", "decode", str(npy), str(tmp_path / "o.wav"), "--codec", str(codec_dir)], capsys)


def test_codec_encode_missing_wav(tmp_path, codec_dir, capsys):
    missing = tmp_path / "missing.wav"
    err = fails(["codec", "encode", str(missing), str(tmp_path / "c.npy"), "--codec", str(codec_dir)], capsys)
    assert f"{missing}: no such audio file" in err
    assert not (tmp_path / "c.npy").exists()


def test_codec_encode_non_audio(tmp_path, codec_dir, capsys):
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    err = fails(["codec", "encode", str(junk), str(tmp_path / "c.npy"), "--codec", str(codec_dir)], capsys)
    assert f"{junk}: unreadable audio" in err


def test_codec_dir_missing_or_tampered(tmp_path, wav, codec_dir, capsys):
    err = fails(["codec", "encode", str(wav), str(tmp_path / "c.npy"), "--codec", str(tmp_path / "nocodec")], capsys)
    assert "not a codec checkpoint (no codec.json)" in err

    tampered = tmp_path / "tampered"
    shutil.copytree(codec_dir, tampered)
    np.savez(tampered / "world_vq.npz", centroids=np.zeros((8, 82), dtype=np.float32))
    err = fails(["codec", "encode", str(wav), str(tmp_path / "c.npy"), "--codec", str(tampered)], capsys)
    assert "does not match codec.json" in err


def test_unknown_override_key_exits_2(tmp_path, capsys):
    err = fails(["corpus", "generate", f"out_dir={tmp_path}", "sentence={en: 4}"], capsys)
    assert "unknown key(s) ['sentence']" in err


@needs_espeak
def test_corpus_generate_with_overrides(tmp_path, capsys):
    out = tmp_path / "corpus"
    main(["corpus", "generate", f"out_dir={out}", "sentences={en: 4}", "workers=1"])
    report = json.loads(capsys.readouterr().out)
    assert report["out_dir"] == str(out)
    assert report["utterances"] == 4 and report["failures"] == 0
    assert {k: v for k, v in report["per_language"]["en"].items() if k != "hours"} == {"train": 0, "val": 2, "test": 2}
    assert report["per_language"]["en"]["hours"] > 0
    rows = (out / "manifest.jsonl").read_text().splitlines()
    assert len(rows) == 4
    assert all((out / json.loads(r)["wav"]).is_file() for r in rows)
    assert json.loads((out / "summary.json").read_text())["config"]["sentences"] == {"en": 4}


def test_corpus_generate_with_yaml_config(tmp_path, capsys, monkeypatch):
    import tts.corpus.generate as gen

    monkeypatch.setattr(gen, "speak", lambda spk, text, sr: np.full(sr // 2, 0.1, dtype=np.float32))
    cfg = tmp_path / "corpus.yaml"
    cfg.write_text(f"out_dir: {tmp_path / 'c'}\nsentences: {{de: 5}}\n")
    main(["corpus", "generate", "--config", str(cfg), "seed=3"])
    report = json.loads(capsys.readouterr().out)
    assert report["utterances"] == 5
    assert report["per_language"] == {"de": {"train": 1, "val": 2, "test": 2, "hours": round(5 * 0.5 / 3600, 3)}}


def test_corpus_select_one_speaker_less_an_eval_sets_recordings(tmp_path, capsys, monkeypatch):
    """A LoRA voice's training data: one speaker's rows, less those whose text an eval set reads (as target or as
    prompt), so the voice is measured on recordings its adapter never heard."""
    import tts.corpus.generate as gen

    monkeypatch.setattr(gen, "speak", lambda spk, text, sr: np.full(sr // 2, 0.1, dtype=np.float32))
    main(["corpus", "generate", f"out_dir={tmp_path / 'c'}", "sentences={en: 200}", "workers=1"])
    rows = [json.loads(r) for r in (tmp_path / "c" / "manifest.jsonl").read_text().splitlines()]
    voice = [r for r in rows if r["speaker"] == "en_08"]
    held = voice[:2]
    meta = tmp_path / "c" / "en" / "held.lst"  # an eval set's language is its directory's name
    meta.parent.mkdir()
    meta.write_text(f"h0|{held[0]['text']}|../{held[0]['wav']}|{held[1]['text']}\n")
    capsys.readouterr()
    out = tmp_path / "voice" / "manifest.jsonl"
    main(["corpus", "select", "--manifest", str(tmp_path / "c" / "manifest.jsonl"), "--out", str(out),
          "--speakers", "en_08", "--exclude-meta", str(meta)])  # fmt: skip
    got = [json.loads(r) for r in out.read_text().splitlines()]
    assert json.loads(capsys.readouterr().out)["rows"] == len(got) == len(voice) - 2 > 0
    assert {r["id"] for r in got} == {r["id"] for r in voice[2:]}
    # no eval set to leave out
    main(["corpus", "select", "--manifest", str(tmp_path / "c" / "manifest.jsonl"), "--out", str(out),
          "--splits", "test"])  # fmt: skip
    got = [json.loads(r) for r in out.read_text().splitlines()]
    assert json.loads(capsys.readouterr().out)["rows"] == len(got) == sum(r["split"] == "test" for r in rows) > 0


@needs_espeak
def test_codec_fit_writes_a_loadable_codec_and_its_record(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    main(["corpus", "generate", f"out_dir={corpus}", "sentences={en: 16}", "workers=1"])
    capsys.readouterr()
    manifest = str(corpus / "manifest.jsonl")
    main(["codec", "fit", "--manifest", manifest, "--out", str(tmp_path / "a"), "env_clusters=8", "f0_bins=4"])
    fitted = json.loads(capsys.readouterr().out)
    assert fitted["files"] > 0 and fitted["bad_files"] == 0 and fitted["out"] == str(tmp_path / "a")
    assert WorldVQCodec.load(tmp_path / "a").cfg.codebook_size == 32
    record = json.loads((tmp_path / "a" / "fit.json").read_text())
    assert record["files"] == fitted["files"] and record["config"]["env_clusters"] == 8 and record["seed"] == 0
    assert record["warps"] == 1  # the default: one warped copy of each file
    for name, flags in (("plain", ["--warps", "0"]), ("sampled", ["--max-frames", "50"])):
        main(["codec", "fit", "--manifest", manifest, "--out", str(tmp_path / name), *flags, "env_clusters=8"])
    capsys.readouterr()
    plain, sampled = (json.loads((tmp_path / n / "fit.json").read_text()) for n in ("plain", "sampled"))
    assert plain["warps"] == 0 and record["frames"] == 2 * plain["frames"] and sampled["frames"] == 50


def test_speechlm_info_opens_the_committed_policy_with_its_codec(capsys):
    main(["speechlm", "info", "tts/checkpoints/speechlm-embedded"])
    out = json.loads(capsys.readouterr().out)
    assert out["codec"]["directory"].endswith("codec-wordsync") and out["codebook_size"] == 16384
    assert out["layout"]["kind"] == "tts-align"


def test_speechlm_info_refuses_a_codec_of_another_size(codec_dir, capsys):
    err = fails(["speechlm", "info", "tts/checkpoints/speechlm-embedded", "--codec", str(codec_dir)], capsys)
    assert f"expects a codebook of 16384 codes but codec {codec_dir} has {CODEBOOK}" in err
