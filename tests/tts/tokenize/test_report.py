"""The tables printed at the end of a run."""

from __future__ import annotations

from tts.tokenize.filters import REASONS
from tts.tokenize.report import size_table, stage_table


def summary(hours: float = 1.0) -> dict:
    return {
        "rows_in": 10,
        "kept": 6,
        "dropped": dict.fromkeys(REASONS, 0) | {"low_dnsmos": 2},
        "bad_reasons": {"missing_file": 1, "bad_manifest_row": 1},
        "hours_kept": hours,
        "bytes_codes": int(50 * 3600 * 2 * hours),
        "bytes_audio": int(16000 * 3600 * 2 * hours),
        "shards": 2,
        "shards_written": 1,
        "shards_skipped": 1,
        "stages": {"parsed": 9, "read": 8, "annotated": 8, "annotations_cached": 4, "filtered": 6},
        "codec": {"frame_rate": 50, "codebook_size": 65536},
    }


def test_size_table_compares_with_the_paper():
    table = size_table(summary())
    assert "365.00 MB       0.19 MB    1921x" in table  # the paper, as quoted
    assert "345.60 MB       0.36 MB     960x" in table  # its arithmetic with uint16 codes
    assert "115.20 MB       0.36 MB     320x" in table  # 16 kHz audio, uint16 codes
    assert "8.4 bits per code" in table and "16.0 kHz on average" in table and "bit-packed" not in table


def test_size_table_shows_packing_for_small_codebooks():
    small = summary()
    small["codec"]["codebook_size"] = 64
    assert "this run, bit-packed (6 bits/code)" in size_table(small) and "0.14 MB" in size_table(small)


def test_size_table_without_kept_audio():
    assert "this run" not in size_table(summary(hours=0.0))


def test_stage_table_lists_what_each_stage_removed():
    table = stage_table(summary())
    assert "manifest rows parsed            9  bad_manifest_row 1" in table
    assert "audio read                      8  missing_file 1" in table
    assert "kept by filters                 6  low_dnsmos 2" in table
    assert "2 (1 written, 1 skipped as done)" in table and "4 of 9 rows" in table
    assert "annotated by DNSMOS             8" in table
    unscored = stage_table(summary() | {"config": {"dnsmos": False}})
    assert "annotated (no DNSMOS)           8" in unscored and "annotated by DNSMOS" not in unscored
