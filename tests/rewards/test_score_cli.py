"""`tts-align score`: one file -> the documented JSON; a JSONL batch -> JSONL, bad rows flagged not fatal."""

from __future__ import annotations

import json

import pytest
import soundfile as sf

from rayjobs.cli import main
from tts.corpus.generate import speak
from tts.corpus.voices import Speaker

TEXT = "The children walked to the park after lunch."


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    d = tmp_path_factory.mktemp("score")
    spk = Speaker("a", "en", "en-us+m1", 45, 160)
    sf.write(d / "gen.wav", speak(spk, TEXT, 16000), 16000)
    sf.write(d / "ref.wav", speak(spk, "On Sunday, my sister walked to the market.", 16000), 16000)
    (d / "broken.wav").write_bytes(b"RIFF....garbage")
    return d


def test_single_file_json(wavs, capsys):
    main(["score", "--audio", str(wavs / "gen.wav"), "--text", TEXT, "--ref", str(wavs / "ref.wav")])
    out = json.loads(capsys.readouterr().out)
    assert out["wer"] < 0.3 and out["transcript"]
    assert 0.5 < out["sim"] <= 1.0 and set(out["dnsmos"]) == {"ovrl", "sig", "bak", "p808"}
    assert set(out["rewards"]) == {"wer", "sim", "dnsmos", "total"} and 0.5 < out["rewards"]["total"] <= 1.0


def test_without_reference_sim_is_not_a_component(wavs, capsys):
    main(["score", "--audio", str(wavs / "gen.wav"), "--text", TEXT])
    out = json.loads(capsys.readouterr().out)
    assert "sim" not in out["rewards"] and out["flags"] == []


def test_broken_audio_is_a_flagged_minimum(wavs, capsys):
    main(["score", "--audio", str(wavs / "broken.wav"), "--text", TEXT])
    out = json.loads(capsys.readouterr().out)
    assert out["rewards"]["total"] == 0.0 and "unreadable" in out["flags"][0]


def test_jsonl_batch(wavs, tmp_path):
    rows = [
        {"id": "ok", "audio": str(wavs / "gen.wav"), "text": TEXT, "ref": str(wavs / "ref.wav")},
        {"id": "missing", "audio": "nowhere.wav", "text": TEXT},
        {"id": "empty-text", "audio": str(wavs / "gen.wav"), "text": "  "},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    main(["score", "--jsonl", str(src), "--out", str(tmp_path / "out.jsonl")])
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [o["id"] for o in out] == ["ok", "missing", "empty-text", "4"]
    assert out[0]["rewards"]["total"] > 0.5 and out[0]["flags"] == []
    assert "no such audio file" in out[1]["flags"][0] and out[1]["rewards"]["total"] == 0.0
    assert "empty text" in out[2]["flags"][0]
    assert "bad row" in out[3]["flags"][0]


def test_missing_jsonl_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["score", "--jsonl", str(tmp_path / "none.jsonl")])
    assert exc.value.code == 2 and "no such JSONL" in capsys.readouterr().err
