"""Do the markup tags do what they say (paper 3.6)? The markups set renders each held-out prompt's text
neutral and under every tag, in the same voice, once or in several takes; `markup_effects` measures each rendering
against the neutral one of the same text, voice and take with `tts.corpus.style_metrics.prosody`, and averages a
prompt's takes.

Goals (issue: LoRA markups): `[whispering]` voiced fraction <= 0.2; `[sad]` slower (words per second of the
sentence itself, from its first word the ASR hears: a style tag's own sound before it is not slower speech) and
lower-pitched than neutral; each non-verbal audible where it is written: the rendering is longer than the
neutral one by at least `NONVERBAL_MIN_S` of sound, and that added sound is the named one. Extra audio alone
proves nothing: a word-synchronous model writes a tag like a word and gives it some audio even when it never
learned the tag.
The added sound starts where the model wrote the tag, for a word-synchronous model (its rendering is timed word by
word from its own tokens, `evals.synthesize`); otherwise it is the rendering's last `extra_s` seconds.
`SoundIdentifier` names the added sound by its nearest fingerprint among the corpus's own non-verbals and speech,
rendered by the training voices (never the held-out ones) and passed through the model's codec, so that
references and renderings share the codec's colouring. Each goal is judged on the bootstrap 95% interval over
prompts, not the mean, so that a model whose tags do nothing does not pass by chance on a few prompts. Style tags
go before the sentence they colour, non-verbals after it, as in the markup corpus (`tts-align corpus markups`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import jiwer
import numpy as np

from evals.continuation import speech_span as speech_bounds
from evals.meta import EvalItem, spread
from rewards.asr import SAMPLE_RATE as ASR_SR
from tts.base.audio import AudioError, load_audio, resample
from tts.base.layout import MARKUP_TAGS, NONVERBAL_TAGS, STYLE_TAGS
from tts.base.stats import key_means, mean_ci
from tts.codec import Codec
from tts.corpus.style_metrics import prosody, sound_features, speech_span
from tts.corpus.styles import Style, nonverbal, render
from tts.corpus.timing import plain_word
from tts.corpus.voices import MAX_EN_SPEAKERS, Speaker, speakers_for
from tts.front_end import TAG

SEP = "__"  # item id: <base id>__<tag name>, the neutral rendering <base id>__neutral
NEUTRAL = "neutral"
TAKE = "take"  # a prompt's k-th rendering (k >= 1) of every tag: <base id>__take<k>__<tag name>
NONVERBAL_MIN_S = 0.2
IDENTIFIED_MIN = 0.5  # share of prompts whose added sound must be the named one (95% interval's lower bound)
TAIL_S = (0.3, 1.5)  # the added sound: the rendering's last `extra_s` seconds, clipped to this range
SPEECH = "speech"  # what the identifier calls the end of a sentence
NO_SOUND = "none"  # a word-timed rendering whose tag got no audio of its own
MIN_SOUND_S = 0.05  # less audio than this after a word-timed tag (2.5 codes at 50/s) is no sound
SPEECH_TAIL_S = 0.6
WordTimes = Callable[[np.ndarray], list[tuple[str, float]]]  # 16 kHz audio -> (word, start s) of each word heard
SPEECH_TEXTS = (
    "The old man walked to the market.",
    "My sister will call you tomorrow.",
    "In the afternoon, we took the train.",
)


@dataclass
class SoundIdentifier:
    """Names a short sound: the nearest class centroid, on standardised `sound_features`, among the non-verbal
    tags and the end of a spoken sentence. 96% of held-out-voice references are named right through
    `codec-wordsync` (leave one voice out, 24 voices)."""

    classes: list[str]
    centroids: np.ndarray  # [classes, features], standardised
    mean: np.ndarray
    std: np.ndarray
    sample_rate: int

    @classmethod
    def build(cls, codec: Codec | None = None, voices: list[Speaker] | None = None, sr: int = 16000):
        """References from `voices` (default: the English training voices), round-tripped through `codec`."""
        if voices is None:
            voices = [v for v in speakers_for("en", "en-us", MAX_EN_SPEAKERS) if not v.held_out]

        def heard(wave: np.ndarray) -> np.ndarray:
            if codec is None:
                return wave
            return resample(np.asarray(codec.decode(codec.encode(wave, sr)), np.float32), codec.sample_rate, sr)

        feats: dict[str, list[np.ndarray]] = {}
        for voice in voices:
            for tag in NONVERBAL_TAGS:
                feats.setdefault(tag, []).append(sound_features(heard(nonverbal(voice, tag, sr)), sr))
            for text in SPEECH_TEXTS:
                end = speech_span(heard(render(voice, text, Style(), sr)))[-int(SPEECH_TAIL_S * sr) :]
                feats.setdefault(SPEECH, []).append(sound_features(end, sr))
        every = np.concatenate([np.stack(f) for f in feats.values()])
        mean, std = every.mean(0), every.std(0) + 1e-6
        centroids = np.stack([((np.stack(f) - mean) / std).mean(0) for f in feats.values()])
        return cls(list(feats), centroids, mean, std, sr)

    def identify(self, wave: np.ndarray, sr: int) -> str:
        z = (sound_features(resample(wave, sr, self.sample_rate), self.sample_rate) - self.mean) / self.std
        return self.classes[int(np.linalg.norm(self.centroids - z, axis=1).argmin())]


def tagged_text(text: str, tag: str) -> str:
    return f"{tag} {text}" if tag in STYLE_TAGS else f"{text} {tag}"


def markup_items(items: list[EvalItem], n: int, tags: tuple[str, ...] = MARKUP_TAGS, takes: int = 1) -> list[EvalItem]:
    """`n` prompts spread over `items`, each neutral and under every tag (no ground truth: none exists), `takes`
    times: a rendering samples under a seed from its id, so each take is another draw. Take 0 keeps the plain ids,
    so a set with more takes renders its first take as the one-take set did."""
    if takes < 1:
        raise ValueError(f"takes must be >= 1, got {takes}")
    out = []
    for k in spread(len(items), n):
        it = replace(items[k], gt_wav=None)
        for take in range(takes):
            base = it.id if take == 0 else f"{it.id}{SEP}{TAKE}{take}"
            out.append(replace(it, id=f"{base}{SEP}{NEUTRAL}"))
            out += [replace(it, id=f"{base}{SEP}{t[1:-1]}", target_text=tagged_text(it.target_text, t)) for t in tags]
    return out


def prompt_of(base: str) -> str:
    """The prompt a rendering's base id (its id less the tag) belongs to, whichever take."""
    return base.partition(f"{SEP}{TAKE}")[0]


def _per_prompt(values: list[tuple[str, float]]) -> list[float]:
    """(prompt, value) of each take -> one mean per prompt: the goals' intervals are over prompts."""
    by: dict[str, list[float]] = {}
    for prompt, v in values:
        by.setdefault(prompt, []).append(v)
    return list(key_means(by).values())


def _words(text: str) -> list[str]:
    return [w for w in map(plain_word, text.split()) if w]


def sentence_rate(wave: np.ndarray, sr: int, text: str, word_times: WordTimes) -> float | None:
    """Words per second of `text` as spoken in `wave`: from the first heard word that the alignment pairs with a
    word of the text (a hit or a substitution) to the end of speech, over the text's words from that one on.
    Sound before the sentence (a style tag's own audio) is left out, and so are the tags of the text: a tag's sound
    heard as a word must not pass for the sentence's first one. None where no word of the text is heard."""
    target = _words(TAG.sub(" ", text))
    heard = [(w, t) for word, t in word_times(resample(wave, sr, ASR_SR)) for w in _words(word)]
    if not target or not heard:
        return None
    chunks = jiwer.process_words(" ".join(target), " ".join(w for w, _ in heard)).alignments[0]
    first = next((c for c in chunks if c.type in ("equal", "substitute")), None)
    if first is None:
        return None
    seconds = speech_bounds(wave)[1] / sr - heard[first.hyp_start_idx][1]
    return (len(target) - first.ref_start_idx) / seconds if seconds > 0 else None


def embedded_word_times() -> WordTimes:
    """Word timing by the embedded Whisper tiny.en (offline): enough to find where a sentence starts."""
    from rewards.asr import FasterWhisperASR

    return FasterWhisperASR(None).word_times


def sound_starts(rows: list[dict]) -> dict[str, float | None]:
    """Item id -> where its non-verbal tag's sound starts (s; None: the tag got no audio), for the renderings that
    synthesis timed word by word (rows of synthesis.jsonl with "words"); the last place the tag is written."""
    out: dict[str, float | None] = {}
    for row in rows:
        tag = f"[{row['id'].rpartition(SEP)[2]}]"
        if tag in NONVERBAL_TAGS and row.get("words"):
            starts = [t for word, t in row["words"] if word == tag]
            if starts:
                out[row["id"]] = starts[-1]
    return out


def _measure(path: Path, text: str, word_times: Callable[[], WordTimes] | None) -> dict | None:
    """`prosody` of a rendering, plus its audio (`raw`), speech span (`wave`), `sr` and, given `word_times`, the
    sentence's `rate`; None where it cannot be measured."""
    try:
        wave, sr = load_audio(path)
        m = prosody(wave, sr) | {"raw": wave, "wave": speech_span(wave), "sr": sr}
    except (AudioError, ValueError, FileNotFoundError):
        return None  # no audio, silent, or too short: counted as unmeasured
    return m | {"rate": sentence_rate(wave, sr, text, word_times()) if word_times else None}


def _added_sound(neutral: dict, tagged: dict, identifier: SoundIdentifier) -> str:
    """The name of the sound in `tagged` that `neutral` lacks: from where the rendering put its tag (`sound_at`,
    s; None: the tag got no audio) when it was timed word by word, else its last `extra_s` seconds."""
    sr = tagged["sr"]
    if "sound_at" in tagged:
        at = tagged["sound_at"]
        if at is None or len(tagged["raw"]) - int(at * sr) < MIN_SOUND_S * sr:
            return NO_SOUND
        return identifier.identify(tagged["raw"][int(at * sr) :], sr)
    seconds = min(max(tagged["duration"] - neutral["duration"], TAIL_S[0]), TAIL_S[1])
    return identifier.identify(tagged["wave"][-int(seconds * sr) :], sr)


def markup_effects(
    items: list[EvalItem],
    wav_dir: Path,
    identifier: Callable[[], SoundIdentifier],
    word_times: Callable[[], WordTimes],
    starts: dict[str, float | None] | None = None,
) -> dict:
    """Per tag, over the prompts whose neutral and tagged renderings could both be measured: voiced fraction,
    speech duration ratio, f0 ratio and level change against neutral, extra seconds, for style tags the sentence's
    speaking-rate ratio, for non-verbals the share whose added sound is the named one; and the goals.
    `identifier` is called (once) only where a non-verbal rendering is measured: building one renders and
    fingerprints the references; `word_times` (an ASR's word timing) only where a style tag's is. `starts`
    (`sound_starts`): where word-timed renderings put their non-verbal's sound."""
    by_base: dict[str, dict[str, dict | None]] = {}
    styled = {NEUTRAL} | {t[1:-1] for t in STYLE_TAGS}
    for it in items:
        base, _, name = it.id.rpartition(SEP)
        if base:
            timer = word_times if name in styled else None
            m = _measure(wav_dir / f"{it.id}.wav", it.target_text, timer)
            if m is not None and starts and it.id in starts:
                m["sound_at"] = starts[it.id]
            by_base.setdefault(base, {})[name] = m
    tags: dict[str, dict] = {}
    for tag in MARKUP_TAGS:
        name = tag[1:-1]
        pairs = [(prompt_of(base), m[NEUTRAL], m[name]) for base, m in by_base.items() if name in m]
        if not pairs:
            continue
        ok = [(p, a, b) for p, a, b in pairs if a and b]
        per_take = {
            "voiced_fraction": [(p, b["voiced_fraction"]) for p, _, b in ok],
            "duration_ratio": [(p, b["duration"] / a["duration"]) for p, a, b in ok],
            "f0_ratio": [(p, b["f0_median"] / a["f0_median"]) for p, a, b in ok],
            "extra_s": [(p, b["duration"] - a["duration"]) for p, a, b in ok],
        }
        if tag in STYLE_TAGS:
            per_take["rate_ratio"] = [(p, b["rate"] / a["rate"]) for p, a, b in ok if a["rate"] and b["rate"]]
        heard = [_added_sound(a, b, identifier()) for _, a, b in ok] if tag in NONVERBAL_TAGS else []
        if heard:
            per_take["identified"] = [(p, float(h == tag)) for (p, _, _), h in zip(ok, heard, strict=True)]
            timed = sum("sound_at" in b for _, _, b in ok)
        stats = {k: mean_ci(_per_prompt(v)) for k, v in per_take.items()}
        tags[tag] = {
            "n": len(pairs),
            "prompts": len({p for p, _, _ in pairs}),
            "unmeasured": len(pairs) - len(ok),
            **{k: st["mean"] for k, st in stats.items()},
            "neutral_voiced_fraction": mean_ci([a["voiced_fraction"] for _, a, _ in ok])["mean"],
            "rms_db_change": mean_ci([b["rms_db"] - a["rms_db"] for _, a, b in ok])["mean"],
            "ci95": {k: st["ci95"] for k, st in stats.items()},
            **({"heard": heard, "located_by_words": timed} if heard else {}),
        }
    return {"tags": tags, "goals": goals(tags), "prompts": len({prompt_of(b) for b in by_base})}


def goals(tags: dict[str, dict]) -> dict[str, bool | None]:
    """The issue's checks on the measured effects (None where a tag was not rendered or measured)."""

    def check(tag: str, key: str, test) -> bool | None:
        """`test(lo, hi)` on the 95% interval of `key`; None where it is unmeasured (or from one prompt only)."""
        ci = tags[tag]["ci95"].get(key) if tag in tags else None
        return None if ci is None else bool(test(*ci))

    out = {
        "[whispering] voiced fraction <= 0.2": check("[whispering]", "voiced_fraction", lambda lo, hi: hi <= 0.2),
        "[sad] slower than neutral": check("[sad]", "rate_ratio", lambda lo, hi: hi < 1.0),
        "[sad] lower-pitched than neutral": check("[sad]", "f0_ratio", lambda lo, hi: hi < 1.0),
    }
    for tag in NONVERBAL_TAGS:
        audible = check(tag, "extra_s", lambda lo, hi: lo >= NONVERBAL_MIN_S)
        named = check(tag, "identified", lambda lo, hi: lo >= IDENTIFIED_MIN)
        out[f"{tag} audible (+{NONVERBAL_MIN_S} s) as itself"] = None if None in (audible, named) else audible and named
    return out


def markup_markdown(m: dict) -> str:
    def cell(x: float | None, digits: int = 2) -> str:
        return "-" if x is None else f"{x:.{digits}f}"

    lines = [
        f"## Markup tags ({m['prompts']} prompts, each tag against the neutral rendering of the same text and voice;"
        " goals judged on bootstrap 95% intervals over prompts)",
        "",
        "| tag | n | unmeasured | voiced fraction (neutral) | duration ratio | sentence rate ratio | f0 ratio |"
        " level dB | extra s | added sound named right |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tag, e in m["tags"].items():
        voiced = f"{cell(e['voiced_fraction'])} ({cell(e['neutral_voiced_fraction'])})"
        changes = [cell(e["duration_ratio"]), cell(e.get("rate_ratio")), cell(e["f0_ratio"])]
        changes += [cell(e["rms_db_change"], 1), cell(e["extra_s"])]
        changes.append(cell(e.get("identified")))
        n = e["n"] if e["n"] == e["prompts"] else f"{e['n']} ({e['prompts']} prompts)"
        lines.append(f"| {tag} | {n} | {e['unmeasured']} | {voiced} | {' | '.join(changes)} |")
    sounds = [e for e in m["tags"].values() if "heard" in e]
    if sounds:
        timed, total = sum(e["located_by_words"] for e in sounds), sum(len(e["heard"]) for e in sounds)
        lines += [
            "",
            f"Added sounds found where the model wrote the tag (its own word timing) in {timed} of {total} "
            "non-verbal renderings; the rest: the rendering's last `extra s`.",
        ]
    lines += ["", "| goal | met |", "|---|---|"]
    lines += [f"| {g} | {'-' if ok is None else ('yes' if ok else 'no')} |" for g, ok in m["goals"].items()]
    return "\n".join(lines) + "\n"
