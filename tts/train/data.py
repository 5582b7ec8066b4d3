"""Training examples from tokenize shards: planned from lengths, packed to `max_len`, sharded by rank.

An epoch's plan depends only on (seed, epoch): which examples, in which order, packed into which sequences.
It is built from the shard index and the tokenized transcripts alone; codes are read per micro-batch. So a
position (epoch, micro-batch) is all a checkpoint needs to resume the data stream exactly.

Packed sequences keep their examples apart: position ids restart at 0 for every example, and with no
attention mask transformers turns restarting position ids into a block-diagonal causal mask (sdpa, eager and
flash-attention alike), so no example attends to another and each sees the positions it has at inference.
The first label of every example is IGNORE: it would be predicted from the previous example's last token.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from tts import prompts
from tts.base.layout import TokenLayout
from tts.corpus.timing import word_starts
from tts.front_end import TAG
from tts.prompts import IGNORE, Prompt, encode_texts
from tts.tokenize import ShardDataset
from tts.train.config import TrainConfig

PACK_WINDOW = 64  # open sequences first-fit packing considers; bounds the cost per example


class Example(NamedTuple):
    """A planned example: references into the corpus, materialised only when its micro-batch is built."""

    kind: str  # "speech" | "text" (pre-training), "tts" | "clone" (SFT)
    row: int
    length: int  # tokens
    start: int = 0  # speech: code range [start, end) of the row
    end: int = 0
    ref: int = -1  # clone: reference row (same speaker)


class Corpus:
    """The utterances of one or more tokenize outputs with their tokenized transcripts."""

    def __init__(self, paths: Sequence[str | Path], tokenizer: Any, layout: TokenLayout, frame_rate: int | None = None):
        """`frame_rate` (codes per second) is needed by a word-synchronous layout, whose rows are cut at their
        words' start frames (from the shards' phoneme timings, tts.corpus.timing)."""
        self.datasets = [open_shards(p) for p in paths]
        self.meta = [m for ds in self.datasets for _, rows, _ in ds.shards for m in rows]
        self._starts = np.cumsum([0] + [len(ds) for ds in self.datasets])
        self.n_codes = np.array([m["n_codes"] for m in self.meta], dtype=np.int64)
        self.speakers = [str(m.get("speaker", "")) for m in self.meta]
        texts = [str(m.get("text") or "").strip() for m in self.meta]
        self.tagged = np.array([bool(TAG.search(t)) for t in texts], dtype=bool)  # transcript has a markup tag
        said = [k for k, t in enumerate(texts) if t]  # audio-only rows have no transcript
        self.text_ids = [np.zeros(0, dtype=np.int64) for _ in texts]
        self.eos_id = tokenizer.eos_token_id
        self.words: list[list[list[int]] | None] | None = None  # word-synchronous layouts: each row's words
        self.starts: list[list[int] | None] = []  # and the code frame each word starts at
        if layout.interleave == "words":  # the text ids come from the words (one front-end pass over the corpus)
            self._time_words(tokenizer, layout, texts, said, frame_rate)
        else:
            for k, ids in zip(said, encode_texts(tokenizer, layout, [texts[k] for k in said])):
                self.text_ids[k] = np.asarray(ids, dtype=np.int64)

    def _time_words(self, tokenizer: Any, layout: TokenLayout, texts: list[str], said: list[int], frame_rate) -> None:
        if not frame_rate:
            raise ValueError("a word-synchronous layout needs the codec's frame_rate to cut rows at their words")
        self.words, self.starts = [None] * len(texts), [None] * len(texts)
        spoken = dict(zip(said, prompts.front_end_words(layout, [texts[k] for k in said])))
        for k, words in spoken.items():
            events = self.meta[k].get("phonemes")
            starts = word_starts(words, events) if events and words else None
            if starts is None:
                continue  # no timing: the row cannot be cut at its words (not usable)
            self.words[k] = prompts.tokenize_words(tokenizer, words)
            self.starts[k] = [round(t * frame_rate) for t in starts]
            self.text_ids[k] = np.asarray([t for w in self.words[k] for t in w], dtype=np.int64)
        timed = sum(w is not None for w in self.words)
        if not timed:
            raise ValueError(
                "a word-synchronous layout needs phoneme timings in the shards: none of the rows has any "
                "(tts-align corpus timings --manifest M, then tokenise again)"
            )

    def __len__(self) -> int:
        return len(self.meta)

    def usable(self) -> np.ndarray:
        """Rows with codes and a non-empty transcript (and, for a word-synchronous layout, their word starts)."""
        ok = np.array([n > 0 and len(t) > 0 for n, t in zip(self.n_codes, self.text_ids)], dtype=bool)
        if self.words is not None:
            ok &= np.array([w is not None for w in self.words], dtype=bool)
        return ok

    def tts_length(self, row: int) -> int:
        """Tokens of the row's TTS example (a word-synchronous one writes its words twice)."""
        text = len(self.text_ids[row]) * (2 if self.words is not None else 1)
        return text + int(self.n_codes[row]) + 4

    def ref_length(self, row: int) -> int:
        """Tokens the row adds as a cloning reference (its text and codes)."""
        return len(self.text_ids[row]) + int(self.n_codes[row])

    def codes(self, row: int) -> np.ndarray:
        k = int(np.searchsorted(self._starts, row, side="right")) - 1
        return self.datasets[k][row - int(self._starts[k])][1]


def open_shards(path: str | Path) -> ShardDataset:
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"shards directory {path} not found (expected the --out of rayjobs/tokenize_corpus.py)")
    if not any((path / "shards").glob("shard-*")) and not (path / "_DONE").is_file():
        raise ValueError(
            f"{path} holds no finished shards (no shards/shard-*/ and no _DONE); run rayjobs/tokenize_corpus.py"
        )
    return ShardDataset(path)


def held_out(corpus: Corpus, speakers: Sequence[str], ids: Sequence[str], fraction: float, seed: int) -> np.ndarray:
    """Held-out mask: listed speakers and ids, plus `fraction` of the rest by a hash of (seed, id), so a row's
    split does not change when the corpus grows or is re-ordered."""
    speakers, ids = set(speakers), set(ids)

    def drawn(id: str) -> bool:
        digest = hashlib.sha256(f"{seed}:{id}".encode()).digest()
        return int.from_bytes(digest[:8], "little") / 2**64 < fraction

    return np.array(
        [m.get("speaker") in speakers or m["id"] in ids or drawn(str(m["id"])) for m in corpus.meta], dtype=bool
    )


# -- planning ------------------------------------------------------------------------------------------------


def _rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch])


def pretrain_examples(
    corpus: Corpus,
    rows: np.ndarray,
    epoch: int,
    seed: int,
    max_codes: int,
    text_fraction: float,
    max_len: int,
) -> list[Example]:
    """Every row's codes as segments of at most `max_codes`, plus text-only transcripts (those that fit
    `max_len`) making up `text_fraction` of the examples, in one shuffled order."""
    rng = _rng(seed, epoch)
    examples = []
    for row in rng.permutation(rows):
        n = int(corpus.n_codes[row])
        bounds = np.linspace(0, n, -(-n // max_codes) + 1).round().astype(int)  # near-equal pieces
        examples += [Example("speech", int(row), int(b - a) + 2, int(a), int(b)) for a, b in zip(bounds, bounds[1:])]
    eos = 0 if corpus.eos_id is None else 1
    texts = np.array([r for r in rows if len(corpus.text_ids[r]) + eos <= max_len], dtype=np.int64)
    n_text = round(len(examples) * text_fraction / (1.0 - text_fraction)) if len(texts) else 0
    for row in rng.choice(texts, size=n_text, replace=n_text > len(texts)) if n_text else []:
        examples.append(Example("text", int(row), len(corpus.text_ids[row]) + eos))
    return [examples[i] for i in rng.permutation(len(examples))]


def sft_examples(
    corpus: Corpus, rows: np.ndarray, epoch: int, seed: int, clone_fraction: float, max_len: int
) -> list[Example]:
    """One TTS prompt per row that fits `max_len`; a `clone_fraction` share become voice-cloning prompts with
    another utterance of the same speaker (among `rows`) as reference, where the pair fits. Rows whose speaker
    has no other utterance stay plain TTS.

    A reference is an untagged utterance where the speaker has one: at inference a cloning reference is plain
    speech, and a styled reference (a markup corpus's whispered or sad row) would teach the target to carry on
    the reference's style instead of following its own tags. A speaker with only tagged peers clones from them."""
    rng = _rng(seed, epoch)
    tts_len = {int(r): corpus.tts_length(int(r)) for r in rows}
    fit = sorted(r for r, n in tts_len.items() if n <= max_len)
    peers: dict[str, list[int]] = defaultdict(list)
    plain: dict[str, list[int]] = defaultdict(list)
    for row in fit:
        peers[corpus.speakers[row]].append(row)
        if not corpus.tagged[row]:
            plain[corpus.speakers[row]].append(row)
    examples = []
    for row in (int(r) for r in rng.permutation(fit)):
        speaker = corpus.speakers[row]
        pool = plain[speaker] if len(plain[speaker]) > (not corpus.tagged[row]) else peers[speaker]
        me = bisect_left(pool, row)  # pools are sorted: the row's place, if it is in this one
        mine = me < len(pool) and pool[me] == row
        if len(pool) > mine and rng.random() < clone_fraction:
            k = int(rng.integers(len(pool) - mine))
            ref = pool[k + (mine and k >= me)]  # skip the row itself
            length = tts_len[row] + corpus.ref_length(ref)
            if length <= max_len:
                examples.append(Example("clone", row, length, ref=ref))
                continue
        examples.append(Example("tts", row, tts_len[row]))
    return examples


def pack(lengths: Sequence[int], max_len: int, window: int = PACK_WINDOW) -> list[list[int]]:
    """Indices grouped into sequences of at most `max_len` tokens: each example goes into the first of the
    `window` most recently opened sequences it fits, else opens one. Every index appears exactly once."""
    closed: list[list[int]] = []
    open_: list[tuple[list[int], list[int]]] = []  # ([free tokens], members)
    for i, n in enumerate(lengths):
        if n > max_len:
            raise ValueError(f"example {i} has {n} tokens, more than max_len {max_len}")
        for free, members in open_:
            if free[0] >= n:
                free[0] -= n
                members.append(i)
                break
        else:
            open_.append(([max_len - n], [i]))
            if len(open_) > window:
                closed.append(open_.pop(0)[1])
    return closed + [members for _, members in open_]


def rank_batches(n_packs: int, rank: int, world: int, batch_size: int) -> list[list[int]]:
    """Pack indices of each micro-batch of `rank`: consecutive groups of `batch_size` dealt round-robin to the
    ranks. Every rank gets the same number of micro-batches; the last < world * batch_size packs of an epoch
    are left out (the next epoch's plan is shuffled differently)."""
    per_rank = n_packs // (world * batch_size)
    return [list(range((k * world + rank) * batch_size, (k * world + rank + 1) * batch_size)) for k in range(per_rank)]


# -- materialising -------------------------------------------------------------------------------------------


def materialize(corpus: Corpus, layout: TokenLayout, ex: Example) -> Prompt:
    """The tokens of a planned example, built by tts.prompts (the one place that decides order and labels)."""
    if ex.kind == "speech":
        p = prompts.pretrain_speech(layout, corpus.codes(ex.row)[ex.start : ex.end])
    elif ex.kind == "text":
        eos = [] if corpus.eos_id is None else [corpus.eos_id]
        p = prompts.pretrain_text(corpus.text_ids[ex.row].tolist() + eos)
    elif ex.kind in ("tts", "clone") and corpus.words is not None:
        ref = {"ref_text_ids": corpus.text_ids[ex.ref], "ref_codes": corpus.codes(ex.ref)} if ex.kind == "clone" else {}
        p = prompts.words_tts(layout, corpus.words[ex.row], corpus.codes(ex.row), corpus.starts[ex.row], **ref)
    elif ex.kind == "tts":
        p = prompts.tts(layout, corpus.text_ids[ex.row], corpus.codes(ex.row))
    elif ex.kind == "clone":
        ref, row = ex.ref, ex.row
        p = prompts.clone(layout, corpus.text_ids[ref], corpus.text_ids[row], corpus.codes(ref), corpus.codes(row))
    else:
        raise ValueError(f"unknown example kind {ex.kind!r}")
    if len(p) != ex.length:
        raise RuntimeError(f"planned {ex.length} tokens for {ex}, built {len(p)}: shards changed under the run?")
    return p


@dataclass
class Batch:
    inputs: dict[str, torch.Tensor]  # input_ids, labels, position_ids (the model's keyword arguments)
    tokens: int  # real (not padding) tokens
    targets: int  # tokens in the loss


def collate(packs: Sequence[Sequence[Prompt]], pad_id: int) -> Batch:
    """Concatenate each pack's prompts (positions restart, first label IGNORE), pad rows to the longest."""
    rows = []
    for pack_ in packs:
        ids, labels, pos = [], [], []
        for p in pack_:
            ids += p.input_ids
            labels += [IGNORE, *p.labels[1:]]
            pos += range(len(p))
        rows.append((ids, labels, pos))
    width = max(len(ids) for ids, _, _ in rows)
    # Padding gets positions 0.. too: it forms its own block, which no real token can see.
    ids = [r[0] + [pad_id] * (width - len(r[0])) for r in rows]
    labels = [r[1] + [IGNORE] * (width - len(r[1])) for r in rows]
    pos = [r[2] + list(range(width - len(r[2]))) for r in rows]
    labels_t = torch.tensor(labels)
    return Batch(
        inputs={"input_ids": torch.tensor(ids), "labels": labels_t, "position_ids": torch.tensor(pos)},
        tokens=sum(len(r[0]) for r in rows),
        targets=int((labels_t[:, 1:] != IGNORE).sum()),
    )


@dataclass
class Position:
    """Where a rank is in the data stream: micro-batches of `epoch` already consumed (the same on every rank)."""

    epoch: int = 0
    batch: int = 0


class Stream:
    """The micro-batches of one rank, epoch after epoch, from a position."""

    def __init__(
        self,
        corpus: Corpus,
        layout: TokenLayout,
        plan: Callable[[int], list[Example]],
        max_len: int,
        batch_size: int,
        rank: int,
        world: int,
        pad_id: int,
    ):
        self.corpus, self.layout, self.plan, self.max_len = corpus, layout, plan, max_len
        self.batch_size, self.rank, self.world, self.pad_id = batch_size, rank, world, pad_id
        self._cached: tuple[int, list[list[Example]]] | None = None

    def packs(self, epoch: int) -> list[list[Example]]:
        if self._cached is None or self._cached[0] != epoch:
            examples = self.plan(epoch)
            self._cached = (epoch, [[examples[i] for i in g] for g in pack([e.length for e in examples], self.max_len)])
        return self._cached[1]

    def batches_in(self, epoch: int) -> int:
        return len(self.packs(epoch)) // (self.world * self.batch_size)

    def batch(self, packs: list[list[Example]], indices: list[int]) -> Batch:
        return collate([[materialize(self.corpus, self.layout, e) for e in packs[i]] for i in indices], self.pad_id)

    def __call__(self, position: Position) -> Iterator[tuple[Position, Batch]]:
        """Yields (position after this micro-batch, micro-batch) forever."""
        epoch, k = position.epoch, position.batch
        while True:
            packs = self.packs(epoch)
            mine = rank_batches(len(packs), self.rank, self.world, self.batch_size)
            if not mine:
                raise ValueError(
                    f"epoch {epoch} packs into {len(packs)} sequences, fewer than num_workers * batch_size "
                    f"= {self.world * self.batch_size}"
                )
            for j in range(k, len(mine)):
                yield Position(epoch, j + 1), self.batch(packs, mine[j])
            epoch, k = epoch + 1, 0

    def held_out(self, limit: int) -> list[Batch]:
        """Up to `limit` micro-batches of this rank from the epoch-0 plan, round-robin like training but
        keeping the remainder (some ranks may get none)."""
        packs = self.packs(0)
        groups = [
            list(range(i, min(i + self.batch_size, len(packs))))
            for i in range(self.rank * self.batch_size, len(packs), self.world * self.batch_size)
        ]
        return [self.batch(packs, g) for g in groups[:limit]]


# -- per job -------------------------------------------------------------------------------------------------


def split_rows(cfg: TrainConfig, corpus: Corpus) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, held-out rows) among the usable rows."""
    usable = corpus.usable()
    val = held_out(corpus, cfg.val_speakers, cfg.val_ids, cfg.val_fraction, cfg.seed)
    return np.flatnonzero(usable & ~val), np.flatnonzero(usable & val)


def planner(cfg: TrainConfig, corpus: Corpus, rows: np.ndarray, frame_rate: int) -> Callable[[int], list[Example]]:
    """epoch -> the job's examples of `rows` for that epoch."""
    if cfg.job == "pretrain":
        max_codes = min(int(cfg.max_segment_seconds * frame_rate), cfg.max_len - 2)
        return lambda epoch: pretrain_examples(corpus, rows, epoch, cfg.seed, max_codes, cfg.text_fraction, cfg.max_len)
    return lambda epoch: sft_examples(corpus, rows, epoch, cfg.seed, cfg.clone_fraction, cfg.max_len)


def streams(
    cfg: TrainConfig, corpus: Corpus, layout: TokenLayout, frame_rate: int, pad_id: int, rank: int, world: int
) -> tuple[Stream, Stream]:
    """(training stream, held-out stream) of one rank."""

    def stream(rows: np.ndarray) -> Stream:
        plan = planner(cfg, corpus, rows, frame_rate)
        return Stream(corpus, layout, plan, cfg.max_len, cfg.batch_size, rank, world, pad_id)

    return tuple(stream(rows) for rows in split_rows(cfg, corpus))
