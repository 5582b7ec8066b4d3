"""Word start times of an espeak-ng rendering, from libespeak-ng's word events (for bisecting corpus audio).

A rendering through the library equals the `espeak-ng` command's output sample for sample (the corpus audio),
but only as the first rendering of a process: the library keeps state between utterances, so each call runs in
a fresh interpreter (`python -m evals.espeak_words VOICE PITCH SPEED` with the text on stdin).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import subprocess
import sys

from tts.corpus.voices import Speaker

OUTPUT_SYNCHRONOUS, CHARS_UTF8, END_PAUSE = 2, 0x1, 0x1000  # speak_lib.h
RATE, PITCH = 1, 3
EVENT_END, EVENT_WORD = 0, 1


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based, in characters
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


def _render(voice: str, pitch: int, speed: int, text: str) -> dict:
    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    lib = ctypes.CDLL(name)
    sr = lib.espeak_Initialize(OUTPUT_SYNCHRONOUS, 0, None, 0)
    if sr <= 0:
        raise RuntimeError("libespeak-ng failed to initialise")
    words: list[list] = []
    samples = [0]

    def callback(wav, n, events) -> int:
        samples[0] += max(n, 0)
        i = 0
        while events[i].type != EVENT_END:
            if events[i].type == EVENT_WORD:
                words.append([events[i].text_position - 1, events[i].audio_position / 1000.0])
            i += 1
        return 0

    keep = _Callback(callback)
    lib.espeak_SetSynthCallback(keep)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise RuntimeError(f"espeak-ng has no voice {voice!r}")
    lib.espeak_SetParameter(RATE, speed, 0)
    lib.espeak_SetParameter(PITCH, pitch, 0)
    data = text.encode()
    lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, CHARS_UTF8 | END_PAUSE, None, None)
    lib.espeak_Synchronize()
    return {"words": words, "duration": samples[0] / sr}


def word_starts(speaker: Speaker, text: str, timeout: float = 60.0) -> dict:
    """`{"words": [[char offset, start s], ...], "duration": s}` of `speaker` saying `text` (as the corpus did)."""
    args = [sys.executable, "-m", "evals.espeak_words", speaker.voice, str(speaker.pitch), str(speaker.speed)]
    proc = subprocess.run(args, input=text, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"espeak-ng word timing failed for {speaker.id}: {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout)


if __name__ == "__main__":
    voice, pitch, speed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(_render(voice, pitch, speed, sys.stdin.read())))
