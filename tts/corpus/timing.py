"""When each phoneme of a corpus utterance starts: libespeak-ng's phoneme events for the row's voice, the
timing that word-synchronous training (tts.prompts.words_tts) cuts the audio by. Recordings no corpus voice made
(a user's voice, styled or tagged renderings) are timed by ASR instead: each transcript word's start as Whisper
hears it (`asr_events`), stored the same way with the word's IPA as one "phoneme".

The library renders the utterance again in this process (about 3 ms a row) and reports every phoneme it speaks
(IPA) with its start in the audio. A rendering whose length is more than `tolerance` s off the corpus file's
(the library carries a little state between utterances) gets no timing. `word_starts` maps the words of a
SpeechLM's front end (e.g. en-us IPA) onto those phonemes by a character alignment, since the corpus voices'
accents do not spell every word as the front end does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import difflib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from tts.base.audio import load_audio
from tts.base.languages import LANGUAGES
from tts.base.manifest import Utterance, read_manifest, write_manifest
from tts.corpus.voices import find_speaker
from tts.front_end import TAG, FrontEnd

OUTPUT_SYNCHRONOUS, CHARS_UTF8, SSML, END_PAUSE, PHONEME_EVENTS_IPA = 2, 0x1, 0x10, 0x1000, 0x1 | 0x2  # speak_lib.h
RATE, VOLUME, PITCH = 1, 2, 3
EVENT_END, EVENT_PHONEME = 0, 7
MIN_MATCH = 0.7  # difflib ratio below which a front end's words and the spoken phonemes are too different


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),  # the phoneme, IPA, NUL-padded
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_LOCK = threading.Lock()  # the library is one global synthesiser


class _Espeak:
    def __init__(self):
        self.lib = ctypes.CDLL(ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1")
        self.sample_rate = self.lib.espeak_Initialize(OUTPUT_SYNCHRONOUS, 0, None, PHONEME_EVENTS_IPA)
        if self.sample_rate <= 0:
            raise RuntimeError("libespeak-ng failed to initialise (run scripts/install.sh)")
        self.events: list[tuple[str, float]] = []
        self.audio: list[np.ndarray] = []
        self.callback = _Callback(self._collect)  # kept referenced: the library calls it
        self.lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, wav, n, events) -> int:
        if n > 0:
            self.audio.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != EVENT_END:
            if events[i].type == EVENT_PHONEME:
                ipa = events[i].id.split(b"\0")[0].decode("utf-8", "replace")
                if ipa:  # pauses come as empty phonemes
                    self.events.append((ipa, events[i].audio_position / 1000.0))
            i += 1
        return 0

    def render(self, voice: str, pitch: int, speed: int, text: str, amplitude: int, ssml: bool) -> Rendering:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(RATE, speed, 0)
        self.lib.espeak_SetParameter(VOLUME, amplitude, 0)
        self.lib.espeak_SetParameter(PITCH, pitch, 0)
        self.events, self.audio = [], []
        data = text.encode()
        flags = CHARS_UTF8 | END_PAUSE | (SSML if ssml else 0)
        self.lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, flags, None, None)
        self.lib.espeak_Synchronize()
        wave = np.concatenate(self.audio).astype(np.float32) / 32768 if self.audio else np.zeros(0, np.float32)
        return Rendering(list(self.events), wave, self.sample_rate)


@dataclass
class Rendering:
    """What libespeak-ng said and when: [(IPA, start s), ...] of every phoneme, and the audio."""

    events: list[tuple[str, float]]
    wave: np.ndarray  # float32 mono
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.wave) / self.sample_rate


_ENGINE: _Espeak | None = None


def espeak_render(voice: str, pitch: int, speed: int, text: str, amplitude: int = 100, ssml: bool = False) -> Rendering:
    """`text` rendered by libespeak-ng with these settings (the CLI's -v, -p, -s, -a, -m), with its phoneme
    events. The library keeps a little state from one utterance to the next (pauses can differ by tens of ms from
    the CLI's), so audio that must match its events exactly is this rendering's own."""
    global _ENGINE
    with _LOCK:
        _ENGINE = _ENGINE or _Espeak()
        return _ENGINE.render(voice, pitch, speed, text, amplitude, ssml)


def phoneme_events(rows: Sequence[Utterance], tolerance: float = 0.1) -> list[list[tuple[str, float]] | None]:
    """[(IPA, start s), ...] of every phoneme each row's corpus voice speaks; None for a row whose voice is not a
    corpus voice or whose re-rendering is more than `tolerance` s longer or shorter than its audio."""
    out: list[list[tuple[str, float]] | None] = []
    for row in rows:
        speaker = find_speaker(row.language, row.speaker)
        if speaker is None:
            out.append(None)
            continue
        said = espeak_render(speaker.voice, speaker.pitch, speaker.speed, row.text)
        out.append(said.events if said.events and abs(said.seconds - row.duration) <= tolerance else None)
    return out


def char_times(text: str, events: Sequence[Sequence]) -> list[float] | None:
    """The start of the phoneme each character of `text` (a front end's words run together) matches among the
    spoken ones; an unmatched character takes the next matched one's. None when the two differ too much."""
    spoken = "".join(str(e[0]) for e in events)
    owner = [float(e[1]) for e in events for _ in str(e[0])]
    return _matched_times(text, spoken, owner)


def _matched_times(a: Sequence, b: Sequence, b_times: Sequence[float]) -> list[float] | None:
    """The time of each item of `a` from its match in `b` (difflib); an unmatched item takes the next matched
    one's (the last one's at the end). None when either is empty or they match less than MIN_MATCH."""
    if not a or not b:
        return None
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if sm.ratio() < MIN_MATCH:
        return None
    to: list[int | None] = [None] * len(a)
    for block in sm.get_matching_blocks():
        for k in range(block.size):
            to[block.a + k] = block.b + k
    following = next(j for j in reversed(to) if j is not None)
    for i in range(len(a) - 1, -1, -1):
        following = to[i] if to[i] is not None else following
        to[i] = following
    return [float(b_times[j]) for j in to]


def word_starts(words: Sequence[str], events: Sequence[Sequence]) -> list[float] | None:
    """The start (s) of each word (its first character's phoneme), never decreasing; None as `char_times`."""
    times = char_times("".join(words), events)
    if times is None:
        return None
    firsts = np.cumsum([0] + [len(w) for w in words[:-1]])
    return [float(t) for t in np.maximum.accumulate([times[c] for c in firsts])]


class WordTimer(Protocol):
    """What ASR timing needs (rewards.asr.FasterWhisperASR): the words heard in 16 kHz audio and their starts."""

    def word_times(self, wave: np.ndarray, language: str = "en") -> list[tuple[str, float]]: ...


def plain_word(word: str) -> str:
    """A word as spoken-word matching compares it: lower case, punctuation but apostrophes removed."""
    return re.sub(r"[^\w']", "", word.lower())


def asr_events(text: str, heard: Sequence[tuple[str, float]], ipa: Sequence[str]) -> list[list] | None:
    """[[IPA of a transcript word, its start s], ...] from the words an ASR heard (`heard`, with starts) and the
    IPA of each transcript word (`ipa`, as many as `text.split()`): the transcript's words are matched to the heard
    ones; an unheard word starts with the next heard match (the previous one at the end). Words with nothing to say
    (punctuation) are left out. None when fewer than MIN_MATCH of the words were heard as written."""
    words = text.split()
    if len(ipa) != len(words):
        raise ValueError(f"{len(ipa)} IPA words for the {len(words)} words of {text!r}")
    said = [plain_word(w) for w in words]
    start = _matched_times(said, [plain_word(w) for w, _ in heard], [t for _, t in heard])
    if start is None:
        return None
    times = np.maximum.accumulate(np.asarray(start, dtype=float))
    return [[p, round(float(t), 3)] for p, t, w in zip(ipa, times, said) if w and p]


def add_timings(
    manifest: str | Path, tolerance: float = 0.1, asr: WordTimer | None = None, progress: bool = False
) -> dict:
    """Write every row's `phonemes` into `manifest` (replaced atomically): espeak-ng's events where a corpus voice
    made the row, else (with `asr`) the ASR's word starts. A row that already has timings keeps them: the markup
    corpus times its rows as it joins their parts, which no re-rendering of the whole text can. Returns {rows,
    timed, by, untimed ids, unreadable}: an audio file that cannot be read leaves its row untimed, named with the
    reason, and the others are written."""
    from tqdm import tqdm

    path = Path(manifest)
    rows = read_manifest(path, check_files=False)
    by, unreadable = {"kept": sum(r.phonemes is not None for r in rows), "espeak": 0, "asr": 0}, {}
    todo = [r for r in rows if r.phonemes is None]
    for row, events in zip(todo, phoneme_events(todo, tolerance)):
        row.phonemes = None if events is None else [[ipa, round(t, 3)] for ipa, t in events]
        by["espeak"] += events is not None
    rest = [r for r in todo if r.phonemes is None] if asr is not None else []
    for row in tqdm(rest, desc="ASR word timings", disable=not progress):
        language = LANGUAGES[row.language].espeak_voice if row.language in LANGUAGES else row.language
        words = row.text.split()
        # a lone dash has nothing to say (and no IPA), nor has a markup tag: the word-synchronous layout times a tag
        # with the word after it (`word_starts`: unmatched characters take the next matched time)
        says = [bool(plain_word(w)) and not TAG.search(w) for w in words]
        spoken = [w for w, s in zip(words, says) if s]
        read = iter(FrontEnd("phonemes", language).apply_batch(spoken) if spoken else [])
        ipa = [next(read) if s else "" for s in says]
        try:
            wave, _ = load_audio(row.wav_path(path.parent), 16000)
        except Exception as e:  # soundfile's errors, a missing file: this row only
            unreadable[row.id] = f"{type(e).__name__}: {e}"
            continue
        row.phonemes = asr_events(row.text, asr.word_times(wave, row.language), ipa)
        by["asr"] += row.phonemes is not None
    tmp = path.with_suffix(".tmp")
    write_manifest(tmp, rows)
    tmp.replace(path)
    untimed = [r.id for r in rows if r.phonemes is None]
    return {
        "manifest": str(path),
        "rows": len(rows),
        "timed": len(rows) - len(untimed),
        "by": by,
        "untimed": untimed,
        "unreadable": unreadable,
    }
