"""SpeechLM token layout (Inworld TTS-1): text vocab + 29 specials + audio codes, padded to x32.

Id space of our layout::

    [0, text_vocab_size)                      original text tokens
    [text_vocab_size, +29)                    SPECIAL_TOKENS (markers, 15 markup tags, spares)
    [audio_offset, audio_offset + codebook)   audio tokens <|s_N|>, id = audio_offset + code
    [.., vocab_size)                          <|pad_K|> filler so vocab_size % 32 == 0

For LLaMA-3 (128,256 text tokens) and a 65,536-entry codebook this is exactly 193,856.
Llasa checkpoints use a different (8-special, unpadded) layout; ``from_tokenizer`` reads both.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

STYLE_TAGS: tuple[str, ...] = (
    "[angry]",
    "[disgusted]",
    "[fearful]",
    "[happy]",
    "[laughing]",
    "[sad]",
    "[surprised]",
    "[whispering]",
)
NONVERBAL_TAGS: tuple[str, ...] = (
    "[breathe]",
    "[clear_throat]",
    "[cough]",
    "[cry]",
    "[laugh]",
    "[sigh]",
    "[yawn]",
)
MARKUP_TAGS: tuple[str, ...] = STYLE_TAGS + NONVERBAL_TAGS

NUM_SPECIAL = 29
# 64 (a multiple of 32): ceil64(128,256 + 29 + 65,536) = 193,856 as in the paper; ceil32 gives 193,824.
PAD_MULTIPLE = 64
DEFAULT_CODEBOOK = 65536
# Prompt markers first (their order is the id order and must never change: checkpoints depend on it).
MARKER_TOKENS: tuple[str, ...] = (
    "<|speech_start|>",
    "<|speech_end|>",
    "<|text_start|>",
    "<|text_end|>",
    "<|ref_text_start|>",
    "<|ref_text_end|>",
    "<|target_text_start|>",
)
SPECIAL_TOKENS: tuple[str, ...] = (
    MARKER_TOKENS
    + MARKUP_TAGS
    + tuple(f"<|spare_{k}|>" for k in range(NUM_SPECIAL - len(MARKER_TOKENS) - len(MARKUP_TAGS)))
)
assert len(SPECIAL_TOKENS) == NUM_SPECIAL

LLASA_SPECIALS: tuple[str, ...] = (
    "<|TEXT_GENERATION_START|>",
    "<|TEXT_GENERATION_END|>",
    "<|TEXT_UNDERSTANDING_START|>",
    "<|TEXT_UNDERSTANDING_END|>",
    "<|SPEECH_GENERATION_START|>",
    "<|SPEECH_GENERATION_END|>",
    "<|SPEECH_UNDERSTANDING_START|>",
    "<|SPEECH_UNDERSTANDING_END|>",
)
_LLASA_ROLES = {
    "speech_start": "<|SPEECH_GENERATION_START|>",
    "speech_end": "<|SPEECH_GENERATION_END|>",
    "text_start": "<|TEXT_UNDERSTANDING_START|>",
    "text_end": "<|TEXT_UNDERSTANDING_END|>",
}


def audio_token(code: int) -> str:
    return f"<|s_{code}|>"


def pad_token(k: int) -> str:
    return f"<|pad_{k}|>"


def special_name(token: str) -> str:
    """'<|speech_start|>' -> 'speech_start', '[sad]' -> 'sad'."""
    m = re.fullmatch(r"<\|(.+)\|>|\[(.+)\]", token)
    if m is None:
        raise ValueError(f"not a special token: {token!r}")
    return m.group(1) or m.group(2)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


Ids = TypeVar("Ids", np.ndarray, torch.Tensor, list, int)


def _like(result: np.ndarray, like: Any) -> Any:
    """Return ``result`` in the container type of non-tensor ``like`` (list stays list, int stays int)."""
    if isinstance(like, np.ndarray):
        return result
    if isinstance(like, (list, tuple)):
        return result.tolist()
    return result.item() if result.ndim == 0 else result


INTERLEAVES = (None, "words")


@dataclass(frozen=True)
class TokenLayout:
    """Where text, special and audio tokens live in a SpeechLM vocabulary."""

    kind: str  # "tts-align" | "llasa"
    text_vocab_size: int
    audio_offset: int
    codebook_size: int
    vocab_size: int
    special_ids: dict[str, int] = field(default_factory=dict)
    # {"path", "sha256"} of the codec whose codes the audio tokens are (tts.speechlm.with_codec); None: unknown
    codec: dict[str, str] | None = None
    # what the tokenizer reads (tts.front_end.FrontEnd.record): None = raw text
    front_end: dict[str, str] | None = None
    # markup tags its training data taught it (an SFT with tagged text records them); None: not recorded, every
    # tag token of the vocabulary is accepted
    learned_tags: list[str] | None = None
    # "words": word-synchronous sequences (tts.prompts.words_tts): each word's text tokens precede its audio, and at
    # inference the engine writes the words while the model writes the audio (tts.speech_sampling.WordSync);
    # None: the text block only (every production checkpoint)
    interleave: str | None = None

    def __post_init__(self) -> None:
        if self.interleave not in INTERLEAVES:
            raise ValueError(f"unknown interleave {self.interleave!r}; known: {INTERLEAVES}")

    @classmethod
    def plan(cls, text_vocab_size: int, codebook_size: int = DEFAULT_CODEBOOK) -> TokenLayout:
        """Our layout for a text vocab, computed without a model (e.g. to size configs up front)."""
        offset = text_vocab_size + NUM_SPECIAL
        return cls(
            kind="tts-align",
            text_vocab_size=text_vocab_size,
            audio_offset=offset,
            codebook_size=codebook_size,
            vocab_size=_round_up(offset + codebook_size, PAD_MULTIPLE),
            special_ids={special_name(t): text_vocab_size + i for i, t in enumerate(SPECIAL_TOKENS)},
        )

    # -- named ids -------------------------------------------------------------------------
    def _special(self, name: str) -> int:
        try:
            return self.special_ids[name]
        except KeyError:
            raise KeyError(f"{self.kind} layout has no special token {name!r}") from None

    @property
    def speech_start_id(self) -> int:
        return self._special("speech_start")

    @property
    def speech_end_id(self) -> int:
        return self._special("speech_end")

    @property
    def text_start_id(self) -> int:
        return self._special("text_start")

    @property
    def text_end_id(self) -> int:
        return self._special("text_end")

    def tag_id(self, tag: str) -> int:
        """Id of a markup tag such as '[sad]'; Llasa vocabularies have none."""
        if tag not in MARKUP_TAGS:
            raise KeyError(f"unknown markup tag {tag!r}; expected one of {MARKUP_TAGS}")
        if special_name(tag) not in self.special_ids:
            raise KeyError(f"{self.kind} layout has no markup tag tokens (asked for {tag!r})")
        return self.special_ids[special_name(tag)]

    # -- audio <-> ids ---------------------------------------------------------------------
    def speech_ids(self) -> list[int]:
        """Every id a speech continuation may sample: the audio tokens and <|speech_end|>."""
        return [*range(self.audio_offset, self.audio_offset + self.codebook_size), self.speech_end_id]

    def is_audio(self, ids: Ids) -> Ids:
        """Boolean mask of audio-token ids, same container type as ``ids``."""
        hi = self.audio_offset + self.codebook_size
        if isinstance(ids, torch.Tensor):  # stay on device: no host sync in training loops
            return (ids >= self.audio_offset) & (ids < hi)
        a = np.asarray(ids)
        return _like((a >= self.audio_offset) & (a < hi), ids)

    def codes_to_ids(self, codes: Ids) -> Ids:
        """Codec codes (0..codebook_size-1) -> token ids; rejects out-of-range codes."""
        if isinstance(codes, torch.Tensor):
            if codes.is_floating_point() or codes.dtype == torch.bool:
                raise TypeError(f"codes must be integers, got dtype {codes.dtype}")
            bad = (codes < 0) | (codes >= self.codebook_size)
            if bad.any():
                raise ValueError(f"codec code {codes[bad][0].item()} out of range [0, {self.codebook_size})")
            return codes.long() + self.audio_offset
        a = np.asarray(codes)
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"codes must be integers, got dtype {a.dtype}")
        bad = (a < 0) | (a >= self.codebook_size)
        if bad.any():
            raise ValueError(f"codec code {a[bad].flat[0]} out of range [0, {self.codebook_size})")
        return _like(a.astype(np.int64) + self.audio_offset, codes)

    def ids_to_codes(self, ids: Ids) -> Ids:
        """Token ids -> codec codes; every id must be an audio token."""
        a = ids if isinstance(ids, torch.Tensor) else np.asarray(ids)
        bad = ~self.is_audio(a)
        if bad.any():
            first = a[bad].flatten()[0].item()
            raise ValueError(
                f"id {first} is not an audio token "
                f"(audio ids are [{self.audio_offset}, {self.audio_offset + self.codebook_size}))"
            )
        if isinstance(ids, torch.Tensor):
            return ids.long() - self.audio_offset
        return _like(a.astype(np.int64) - self.audio_offset, ids)

    # -- persistence -----------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TokenLayout:
        d = json.loads(text)
        d["special_ids"] = {k: int(v) for k, v in d["special_ids"].items()}
        return cls(**d)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / "layout.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())
        return path

    @classmethod
    def load(cls, directory: str | Path) -> TokenLayout:
        return cls.from_json((Path(directory) / "layout.json").read_text())


# -- tokenizer / model surgery -----------------------------------------------------------------


def _add_sequential(tokenizer: Any, tokens: list[str], start: int, special: bool) -> None:
    """One ordered add_tokens call, then check the ids came out as start, start+1, ..."""
    added = tokenizer.add_tokens(tokens, special_tokens=special)
    if added != len(tokens):
        raise RuntimeError(f"tokenizer added {added} of {len(tokens)} tokens (some already present?)")
    first, last = tokenizer.convert_tokens_to_ids([tokens[0], tokens[-1]])
    if (first, last) != (start, start + len(tokens) - 1):
        raise RuntimeError(f"added tokens got ids {first}..{last}, expected {start}..{start + len(tokens) - 1}")


@torch.no_grad()
def _hewitt_init(weight: torch.Tensor, n_old: int, generator: torch.Generator, cov_scale: float) -> None:
    """Rows [n_old:] ~ N(mean, cov_scale * cov) of rows [:n_old] (Hewitt 2021), in place."""
    # Statistics and draws on CPU in float64: same rows for a given seed on any device/dtype.
    centered = weight[:n_old].detach().to("cpu", torch.float64)
    mean = centered.mean(0)
    centered -= mean  # in place: for an 8B model this copy alone is ~4 GB
    cov = centered.T @ centered / n_old
    del centered
    # eigh instead of cholesky: tolerates rank-deficient covariances (tiny vocab, hidden > rows).
    evals, evecs = torch.linalg.eigh(cov_scale * cov)
    scale = evecs * evals.clamp_min(0).sqrt()
    z = torch.randn(weight.shape[0] - n_old, weight.shape[1], generator=generator, dtype=torch.float64)
    weight[n_old:] = (mean + z @ scale.T).to(device=weight.device, dtype=weight.dtype)


def expand(
    model: Any,
    tokenizer: Any,
    codebook_size: int = DEFAULT_CODEBOOK,
    seed: int = 0,
    cov_scale: float = 1.0,
) -> TokenLayout:
    """Add specials + audio + pad tokens to a text LM and its tokenizer; return the layout.

    New embedding rows (and new lm_head rows when untied) are drawn from N(mean, cov) of the
    text rows so they start "like an average word" instead of zeros or N(0, 1), which would
    dominate or vanish in the first logits.  ``cov_scale`` shrinks the covariance
    (transformers' own mean_resizing hard-codes 1e-9; Hewitt's blog uses 1e-5).
    """
    vocab = tokenizer.get_vocab()
    clash = [t for t in (audio_token(0), SPECIAL_TOKENS[0], pad_token(0)) if t in vocab]
    if clash:
        raise ValueError(f"tokenizer already contains SpeechLM tokens {clash}; it was expanded before")
    text_vocab = len(tokenizer)
    n_rows = model.get_input_embeddings().weight.shape[0]
    if n_rows < text_vocab:
        raise ValueError(f"model has {n_rows} embedding rows but tokenizer has {text_vocab} tokens")
    layout = TokenLayout.plan(text_vocab, codebook_size)

    _add_sequential(tokenizer, list(SPECIAL_TOKENS), text_vocab, special=True)
    audio_end = layout.audio_offset + codebook_size
    audio = [audio_token(c) for c in range(codebook_size)]
    _add_sequential(tokenizer, audio, layout.audio_offset, special=False)
    pads = [pad_token(k) for k in range(layout.vocab_size - audio_end)]
    if pads:
        _add_sequential(tokenizer, pads, audio_end, special=True)
    if len(tokenizer) != layout.vocab_size:
        raise RuntimeError(f"len(tokenizer)={len(tokenizer)} != planned vocab {layout.vocab_size}")

    # mean_resizing=False: we re-draw every row past the text vocab ourselves (see docstring),
    # including rows a padded checkpoint already had beyond len(tokenizer).
    model.resize_token_embeddings(layout.vocab_size, mean_resizing=False)
    gen = torch.Generator().manual_seed(seed)
    inp = model.get_input_embeddings().weight
    _hewitt_init(inp.data, text_vocab, gen, cov_scale)
    out = model.get_output_embeddings()
    if out is not None and out.weight.data_ptr() != inp.data_ptr():
        if out.weight.shape[0] != layout.vocab_size:
            raise RuntimeError(f"lm_head has {out.weight.shape[0]} rows, not {layout.vocab_size}")
        _hewitt_init(out.weight.data, text_vocab, gen, cov_scale)
        if getattr(out, "bias", None) is not None:
            out.bias.data[text_vocab:] = out.bias.data[:text_vocab].mean()

    cfg_vocab = model.config.get_text_config().vocab_size
    if cfg_vocab != len(tokenizer):
        raise RuntimeError(f"model.config.vocab_size={cfg_vocab} != len(tokenizer)={len(tokenizer)}")
    return layout


def _consecutive_audio(vocab: dict[str, int]) -> tuple[int, int]:
    """(offset, codebook_size) of the <|s_N|> run; raises unless ids are offset + N."""
    n = 0
    while audio_token(n) in vocab:
        n += 1
    ids = np.fromiter((vocab[audio_token(c)] for c in range(n)), dtype=np.int64, count=n)
    offset = int(ids[0])
    wrong = np.flatnonzero(ids != offset + np.arange(n))
    if wrong.size:
        c = int(wrong[0])
        raise ValueError(f"audio tokens are not consecutive: {audio_token(c)} has id {ids[c]}, expected {offset + c}")
    return offset, n


def from_tokenizer(tokenizer: Any) -> TokenLayout:
    """Recognise an expanded tokenizer: ours (<|speech_start|>) or Llasa (<|SPEECH_GENERATION_START|>)."""
    vocab = tokenizer.get_vocab()
    if SPECIAL_TOKENS[0] in vocab and audio_token(0) in vocab:
        offset, n = _consecutive_audio(vocab)
        special_ids = {special_name(t): vocab[t] for t in SPECIAL_TOKENS if t in vocab}
        text_vocab = special_ids["speech_start"]
        expected = {special_name(t): text_vocab + i for i, t in enumerate(SPECIAL_TOKENS)}
        if special_ids != expected or offset != text_vocab + NUM_SPECIAL:
            raise ValueError("tokenizer has <|speech_start|> but its ids do not follow the tts-align layout")
        return TokenLayout("tts-align", text_vocab, offset, n, len(tokenizer), special_ids)
    if "<|SPEECH_GENERATION_START|>" in vocab and audio_token(0) in vocab:
        offset, n = _consecutive_audio(vocab)
        missing = [t for t in _LLASA_ROLES.values() if t not in vocab]
        if missing:
            raise ValueError(f"Llasa-style vocabulary lacks {missing}")
        special_ids = {t.strip("<|>").lower(): vocab[t] for t in LLASA_SPECIALS if t in vocab}
        special_ids.update({role: vocab[t] for role, t in _LLASA_ROLES.items()})
        text_vocab = min(special_ids.values())
        return TokenLayout("llasa", text_vocab, offset, n, len(tokenizer), special_ids)
    raise ValueError(
        f"unrecognised SpeechLM vocabulary: looked for {SPECIAL_TOKENS[0]} (tts-align) or "
        f"<|SPEECH_GENERATION_START|> (Llasa), each together with {audio_token(0)}"
    )
