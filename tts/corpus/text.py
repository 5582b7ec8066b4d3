"""Deterministic multilingual sentence generator for the synthetic (espeak-ng) speech corpus.

Each language has a small template grammar: subject / verb phrase / object / place / time slots.
Grammatical agreement is handled by writing the agreeing pieces together as phrases (a verb
phrase carries one form per subject class, e.g. singular/plural, or the four Polish past-tense
forms), and semantic coherence by grouping verb phrases with the places they fit ("bought a warm
coat" goes with shops, "fed the ducks" with parks and rivers).

Every template is a mixed-radix space of slot choices, and a language's sentence pool is the
concatenation of its templates, so sentence ``i`` of the pool is decoded directly from the index.
``generate_sentences`` samples ``n`` distinct indices with a ``random.Random`` seeded from a SHA-256
of (language, seed), which makes the output stable across processes and platforms (no ``hash()``).

The word tables are data, one file per language: ``grammars/<code>.yaml``. Its ``grammar`` key names
the builder below that turns the tables into templates (languages with the same sentence shapes share
one: ``english``; ``v2`` for German and Dutch; ``compound_past`` for French and Italian; ``simple_past``
for Spanish and Portuguese; ``polish``; ``east_asian`` for Chinese, Korean and Japanese), and its other
keys are that builder's arguments. Lists load as tuples, and every string in the files is quoted, as
YAML 1.1 reads a bare ``no`` or ``on`` as a boolean. Why a table reads as it does (plain English for
Whisper tiny.en, Japanese in kana only for espeak-ng, ...) is noted in its file; the espeak-ng voices
are in ``tts.base.languages``.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from tts.base.languages import LANGUAGES

__all__ = ["generate_sentences", "sentence_pool_size"]

GRAMMARS = Path(__file__).parent / "grammars"


# --------------------------------------------------------------------------------------------
# Template machinery
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Template:
    """A format pattern and its slots; slot options are strings or tuples (use ``{v[0]}``)."""

    pattern: str
    slots: tuple[tuple[str, tuple], ...]

    @property
    def size(self) -> int:
        return math.prod(len(options) for _, options in self.slots)

    def render(self, index: int) -> str:
        values = {}
        for name, options in reversed(self.slots):
            index, digit = divmod(index, len(options))
            values[name] = options[digit]
        return _finish(self.pattern.format(**values))


def _t(pattern: str, **slots: tuple) -> _Template:
    return _Template(pattern, tuple(slots.items()))


_SPACES = re.compile(r" {2,}")
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.?])")


def _finish(text: str) -> str:
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", text.strip()))
    for i, ch in enumerate(text):  # capitalise the first letter (after a leading "¿")
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1 :]
    return text


def _forms(vps: tuple, cls: int) -> tuple:
    """The agreeing form of each verb phrase for subject class ``cls``."""
    return tuple(vp[cls] for vp in vps)


# --------------------------------------------------------------------------------------------
# Builders, one per grammar family; a group is {places, verb_phrases} (+ travel for east_asian)
# --------------------------------------------------------------------------------------------


def _english(
    subjects,
    question_subjects,
    times_past,
    times_front,
    times_future,
    times_question_past,
    times_question_future,
    groups,
) -> tuple[_Template, ...]:
    """Verb phrases are (past, base)."""
    out = []
    for g in groups:
        places, past, base = g["places"], _forms(g["verb_phrases"], 0), _forms(g["verb_phrases"], 1)
        out += [
            _t("{s} {v} {p} {t}.", s=subjects, v=past, p=places, t=times_past),
            _t("{t}, {s} {v} {p}.", t=times_front, s=subjects, v=past, p=places),
            _t("{s} {v} {p}.", s=subjects, v=past, p=places),
            _t("{s} will {v} {p} {t}.", s=subjects, v=base, p=places, t=times_future),
            _t("did {s} {v} {p} {t}?", s=question_subjects, v=base, p=places, t=times_question_past),
            _t("will {s} {v} {p} {t}?", s=question_subjects, v=base, p=places, t=times_question_future),
        ]
    return tuple(out)


def _v2(subjects, question_subjects, times, question_times, aux, groups) -> tuple[_Template, ...]:
    """German and Dutch: V2 word order; verb phrase = (past sg, past pl, object, aux kind, participle)."""
    out = []
    for g in groups:
        places = g["places"]
        for cls in (0, 1):
            v = tuple((vp[cls], vp[2], aux[vp[3]][cls], vp[4]) for vp in g["verb_phrases"])
            out += [
                _t("{s} {v[0]} {t} {v[1]} {p}.", s=subjects[cls], v=v, t=times, p=places),
                _t("{t} {v[0]} {s} {v[1]} {p}.", t=times, v=v, s=subjects[cls], p=places),
                _t("{v[2]} {s} {t} {v[1]} {p} {v[3]}?", v=v, s=question_subjects[cls], t=question_times, p=places),
            ]
    return tuple(out)


def _compound_past(
    subjects, question_subjects, times, question_times, aux, groups, question_prefix: str
) -> tuple[_Template, ...]:
    """French and Italian: compound past with "avoir"/"avere" (participle phrases, aux by number)."""
    out = []
    for g in groups:
        places, participles = g["places"], g["verb_phrases"]
        for cls in (0, 1):
            a = aux[cls]
            out += [
                _t("{s} " + a + " {v} {p} {t}.", s=subjects[cls], v=participles, p=places, t=times),
                _t("{t}, {s} " + a + " {v} {p}.", t=times, s=subjects[cls], v=participles, p=places),
                _t(
                    question_prefix + "{s} " + a + " {v} {p} {t}?",
                    s=question_subjects[cls],
                    v=participles,
                    p=places,
                    t=question_times,
                ),
            ]
    return tuple(out)


def _simple_past(
    subjects, question_subjects, times, question_times, groups, question_open: str
) -> tuple[_Template, ...]:
    """Spanish and Portuguese: simple past; verb phrase = (singular, plural)."""
    out = []
    for g in groups:
        places = g["places"]
        for cls in (0, 1):
            v = _forms(g["verb_phrases"], cls)
            out += [
                _t("{s} {v} {p} {t}.", s=subjects[cls], v=v, p=places, t=times),
                _t("{t}, {s} {v} {p}.", t=times, s=subjects[cls], v=v, p=places),
                _t(question_open + "{s} {v} {p} {t}?", s=question_subjects[cls], v=v, p=places, t=question_times),
            ]
    return tuple(out)


def _pl_forms(vp: tuple[str, ...]) -> tuple[str, ...]:
    """The four Polish past-tense forms (masculine sg, feminine sg, masculine-personal pl, other pl).

    ``vp`` is ``(stem, rest)`` for verbs with a stem ending in a vowel + ł (``grał/grała/grali/grały``),
    or ``(m, f, v, o, rest)`` with the forms spelled out.
    """
    *stems, rest = vp
    if len(stems) == 1:
        stems = [stems[0] + suffix for suffix in ("ł", "ła", "li", "ły")]
    return tuple(f"{stem} {rest}".strip() for stem in stems)


def _polish(subjects, question_subjects, times, question_times, groups) -> tuple[_Template, ...]:
    """Polish: the past tense agrees in gender and number, four subject classes."""
    out = []
    for g in groups:
        places, vps = g["places"], tuple(_pl_forms(vp) for vp in g["verb_phrases"])
        for cls in range(4):
            v = _forms(vps, cls)
            out += [
                _t("{s} {t} {v} {p}.", s=subjects[cls], t=times, v=v, p=places),
                _t("{t} {s} {v} {p}.", t=times, s=subjects[cls], v=v, p=places),
                _t("czy {s} {t} {v} {p}?", s=question_subjects[cls], t=question_times, v=v, p=places),
            ]
    return tuple(out)


def _east_asian(subjects, question_subjects, times, question_times, patterns, groups) -> tuple[_Template, ...]:
    """No agreement; ``patterns``: (statement, fronted statement, question) for ordinary and travel groups.

    A travel group's "verb phrase" is the means of transport and its "place" carries the destination
    and the verb.
    """
    out = []
    for g in groups:
        for pattern, subj, tim in zip(
            patterns["travel" if g.get("travel", False) else "ordinary"],
            (subjects, subjects, question_subjects),
            (times, times, question_times),
            strict=True,
        ):
            out.append(_t(pattern, s=subj, t=tim, p=g["places"], v=g["verb_phrases"]))
    return tuple(out)


_BUILDERS = {
    "english": _english,
    "v2": _v2,
    "compound_past": _compound_past,
    "simple_past": _simple_past,
    "polish": _polish,
    "east_asian": _east_asian,
}
assert {path.stem for path in GRAMMARS.glob("*.yaml")} == set(LANGUAGES)


# --------------------------------------------------------------------------------------------
# Loading the grammar files
# --------------------------------------------------------------------------------------------


def _tuples(value):
    """YAML lists as tuples, recursively; mappings keep their keys."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def _load(language: str) -> dict:
    """The word tables of ``grammars/<language>.yaml``; ``grammar`` names the builder."""
    return _tuples(yaml.safe_load((GRAMMARS / f"{language}.yaml").read_text(encoding="utf-8")))


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@cache
def _grammar(language: str) -> tuple[tuple[_Template, ...], tuple[int, ...]]:
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; supported: {', '.join(sorted(LANGUAGES))}")
    tables = _load(language)
    templates = _BUILDERS[tables.pop("grammar")](**tables)
    ends, total = [], 0
    for template in templates:
        total += template.size
        ends.append(total)
    return templates, tuple(ends)


def sentence_pool_size(language: str) -> int:
    """How many distinct sentences the grammar for ``language`` can produce."""
    return _grammar(language)[1][-1]


def _sentence(language: str, index: int) -> str:
    templates, ends = _grammar(language)
    k = bisect.bisect_right(ends, index)
    start = ends[k - 1] if k else 0
    return templates[k].render(index - start)


def generate_sentences(language: str, n: int, seed: int = 0) -> list[str]:
    """``n`` distinct sentences in ``language``, deterministic for (language, n, seed)."""
    pool = sentence_pool_size(language)  # raises ValueError for an unknown language
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if n > pool:
        raise ValueError(
            f"asked for {n} sentences but the {LANGUAGES[language].name} grammar can produce "
            f"at most {pool} distinct sentences"
        )
    digest = hashlib.sha256(f"tts-corpus-text:{language}:{seed}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:16], "big"))
    return [_sentence(language, i) for i in rng.sample(range(pool), n)]
