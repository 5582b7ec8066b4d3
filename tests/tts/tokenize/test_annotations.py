"""The read + DNSMOS cache: reused only for unchanged files and settings; survives a torn last line."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from tts.tokenize.annotations import AnnotationCache

SETTINGS = {"encoder_sample_rate": 16000, "dnsmos_personalized": False}


def annotated(*wavs: str) -> pd.DataFrame:
    n = len(wavs)
    return pd.DataFrame(
        {
            "wav": list(wavs),
            "sample_rate": np.full(n, 16000),
            "num_samples": np.arange(n) + 100,
            "ovrl": [3.5, float("nan")][:n],
            "sig": np.ones(n),
            "bak": np.ones(n),
            "p808": np.ones(n),
            "reason": ["", "missing_file"][:n],
            "message": ["", "gone"][:n],
            "id": ["not", "cached"][:n],
        }
    )


def test_hits_only_for_unchanged_files_and_settings(tmp_path):
    a, gone = tmp_path / "a.wav", str(tmp_path / "gone.wav")
    a.write_bytes(b"x" * 10)
    path = tmp_path / "annotations.jsonl"
    cache = AnnotationCache(path, SETTINGS)
    cache.rewrite([])
    cache.append(annotated(str(a), gone))

    again = AnnotationCache(path, SETTINGS)
    assert again.lookup(str(a)) == {
        "sample_rate": 16000,
        "num_samples": 100,
        "ovrl": 3.5,
        "sig": 1.0,
        "bak": 1.0,
        "p808": 1.0,
        "reason": "",
        "message": "",
    }
    assert again.lookup(gone)["reason"] == "missing_file"  # a file that is still missing fails the same way
    assert np.isnan(again.lookup(gone)["ovrl"])
    assert AnnotationCache(path, SETTINGS | {"dnsmos_personalized": True}).lookup(str(a)) is None

    st = os.stat(a)
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert again.lookup(str(a)) is None
    (tmp_path / "gone.wav").write_bytes(b"now here")
    assert again.lookup(gone) is None


def test_rewrite_drops_other_files_and_a_torn_line_is_ignored(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    path = tmp_path / "annotations.jsonl"
    cache = AnnotationCache(path, SETTINGS)
    cache.rewrite([])
    cache.append(annotated(str(a), str(b)))
    with open(path, "a") as f:
        f.write('{"wav": "half a li')
    cache = AnnotationCache(path, SETTINGS)
    assert cache.lookup(str(b)) is not None
    cache.rewrite([str(a)])
    fresh = AnnotationCache(path, SETTINGS)
    assert fresh.lookup(str(a)) is not None and fresh.lookup(str(b)) is None
    assert len(path.read_text().splitlines()) == 2  # header + a
