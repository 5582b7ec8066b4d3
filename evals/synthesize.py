"""Synthesize a benchmark with a SpeechLM checkpoint through the GRPO job's Ray actors: `RolloutWorker` (vLLM or
transformers `generate`, sampling restricted to audio tokens) and the codec decoder pool (the prompt audio's
codes as left context, cut off). Nothing here re-implements generation or decoding.

Writes OUT/wavs/<utt>.wav (decoded with the prompt audio as context), OUT/wavs_no_prompt/<utt>.wav (the same
tokens decoded without it, Table 10) and one OUT/synthesis.jsonl row per utterance: tokens, finish reason, the
seconds it cost and any error. Utterances with a row are skipped on a re-run.
"""

from __future__ import annotations

import logging
import time
import zlib
from pathlib import Path

import numpy as np
import ray

from evals.config import SynthesisConfig
from evals.meta import EvalItem
from evals.results import SYNTHESIS, append_rows, read_rows
from tts import prompts
from tts.base.actors import ActorGroup, PoolConfig
from tts.base.audio import save_audio
from tts.base.cluster import init_ray
from tts.codec.decoders import DecodeItem, decoder_pool
from tts.rollout import RolloutWorker
from tts.speech_sampling import WordSync
from tts.speechlm import open_speechlm

log = logging.getLogger(__name__)
WAVS = {"prompt": "wavs", "no_prompt": "wavs_no_prompt"}  # decode variant -> directory under OUT


def utterance_seed(seed: int, uid: str) -> int:
    """Sampling seed of one utterance: a function of (seed, id) only, so batching and resuming change nothing."""
    return zlib.crc32(f"{seed}:{uid}".encode()) % 2**31


class Synthesizer:
    def __init__(self, checkpoint: str, cfg: SynthesisConfig):
        self.cfg = cfg
        model = open_speechlm(checkpoint, cfg.codec_dir)  # a run directory means its latest checkpoint
        self.policy_dir, self.tokenizer, self.layout = str(model.directory), model.tokenizer, model.layout
        init_ray()
        self.decoders = decoder_pool(str(model.codec.directory), cfg.decoder)
        self.workers: ActorGroup | None = None
        try:
            self.decoders.wait_ready()
            rollout = cfg.rollout
            self.workers = ActorGroup(
                RolloutWorker,
                lambda k: (self.policy_dir, rollout, cfg.seed + 1000 * k),
                PoolConfig(actors=rollout.workers, num_cpus=rollout.num_cpus, num_gpus=rollout.num_gpus),
                "rollout workers",
            )
            self.workers.wait_ready(what="rollout workers")
        except BaseException:
            self.shutdown()
            raise

    def shutdown(self) -> None:
        self.decoders.shutdown()
        if self.workers is not None:
            self.workers.shutdown()

    def _encode_prompts(self, paths: list[str]) -> dict[str, np.ndarray]:
        actors = self.decoders.actors
        refs = [actors[k % len(actors)].encode_files.remote(paths[k :: len(actors)]) for k in range(len(actors))]
        out: dict[str, np.ndarray] = {}
        for k, codes in enumerate(ray.get(refs)):
            out.update(zip(paths[k :: len(actors)], codes))
        return out

    def _request(self, item: EvalItem, codes: np.ndarray) -> prompts.SpeechRequest:
        ref = (item.prompt_text, codes) if self.cfg.reference else ()
        req = prompts.speech_request(self.tokenizer, self.layout, item.target_text, *ref)
        limit = self.cfg.rollout.max_model_len
        if len(req.input_ids) + self.cfg.rollout.max_new_tokens > limit:
            raise ValueError(
                f"prompt of {len(req.input_ids)} tokens + {self.cfg.rollout.max_new_tokens} new ones exceeds "
                f"rollout.max_model_len {limit}"
            )
        return req

    def _generate(self, reqs: list[prompts.SpeechRequest], seeds: list[int]) -> list:
        """One completion per prompt, the prompts spread over the workers."""
        n = len(self.workers)
        ids = [r.input_ids for r in reqs]
        words = [r.words for r in reqs] if self.layout.interleave else None
        refs = [
            w.generate.remote(ids[k::n], seeds[k::n], 1, self.cfg.temperature, None, words[k::n] if words else None)
            for k, w in enumerate(self.workers)
            if ids[k::n]
        ]
        out: list = [None] * len(ids)
        for k, groups in enumerate(ray.get(refs)):
            for j, group in zip(range(k, len(ids), n), groups):
                out[j] = group[0]
        return out

    def _decode(self, codes: list[np.ndarray], context: list[np.ndarray | None]) -> list:
        return self.decoders.gather(self.decoders.submit([DecodeItem(c, x) for c, x in zip(codes, context)]))

    def run(self, items: list[EvalItem], out: Path) -> int:
        """Synthesize `items` batch by batch, appending to OUT/synthesis.jsonl; returns how many were done."""
        done = {r["id"] for r in read_rows(out / SYNTHESIS)}
        todo = [it for it in items if it.id not in done]
        if not todo:
            return 0
        prompt_codes = self._encode_prompts(sorted({it.prompt_wav for it in todo}))
        bs = self.cfg.batch_size
        for start in range(0, len(todo), bs):
            rows = self._batch(todo[start : start + bs], prompt_codes, out)
            append_rows(out / SYNTHESIS, rows)
            log.info("synthesized %d/%d", min(start + bs, len(todo)), len(todo))
        return len(todo)

    def _batch(self, batch: list[EvalItem], prompt_codes: dict[str, np.ndarray], out: Path) -> list[dict]:
        rows = {it.id: {"id": it.id, "tokens": 0, "finish": None, "synth_s": None, "errors": {}} for it in batch}
        ready = []
        for it in batch:
            try:
                ready.append((it, self._request(it, prompt_codes[it.prompt_wav])))
            except ValueError as exc:
                rows[it.id]["errors"] = {v: f"prompt: {exc}" for v in WAVS}
        if not ready:
            return list(rows.values())
        t0 = time.perf_counter()
        seeds = [utterance_seed(self.cfg.seed, it.id) for it, _ in ready]
        completions = self._generate([req for _, req in ready], seeds)
        codes = [
            self.layout.ids_to_codes(np.asarray([t for t in c.token_ids if self.layout.is_audio(t)], dtype=np.int64))
            for c in completions
        ]
        audible = [k for k, c in enumerate(codes) if len(c)]  # <|speech_end|> first: nothing to decode
        contexts = [prompt_codes[ready[k][0].prompt_wav] if self.cfg.reference else None for k in audible]
        decoded = {"prompt": dict(zip(audible, self._decode([codes[k] for k in audible], contexts)))}
        elapsed = time.perf_counter() - t0  # generation + the decode a user would wait for
        if "no_prompt" in self.cfg.variants:
            decoded["no_prompt"] = dict(zip(audible, self._decode([codes[k] for k in audible], [None] * len(audible))))
        tokens = np.array([len(c.token_ids) for c in completions], dtype=float)
        shares = tokens / tokens.sum() if tokens.sum() else np.full(len(tokens), 1 / len(tokens))
        for k, (it, _) in enumerate(ready):
            row = rows[it.id]
            row.update(tokens=int(tokens[k]), finish=completions[k].finish, synth_s=float(elapsed * shares[k]))
            for variant, results in decoded.items():
                d = results.get(k)
                if d is None:
                    row["errors"][variant] = "generation: no audio tokens (<|speech_end|> came first)"
                elif d.error or d.wave is None:
                    row["errors"][variant] = d.error or "decode: no audio"
                else:
                    save_audio(out / WAVS[variant] / f"{it.id}.wav", d.wave, d.sr)
                    if variant == "prompt" and ready[k][1].words:
                        per_code = len(d.wave) / d.sr / len(codes[k])
                        row["words"] = self._word_times(ready[k][1], completions[k].token_ids, per_code)
        return list(rows.values())

    def _word_times(self, req: prompts.SpeechRequest, token_ids: list[int], per_code: float) -> list[list]:
        """[word, start s] of each word of a word-synchronous rendering, `per_code` seconds of audio a code (start
        None: no audio of its own): where the model put each word and tag, read from its own tokens (evals.markups
        finds a non-verbal's sound by it)."""
        starts = WordSync(self.layout, req.words, self.layout.vocab_size).code_starts(token_ids)
        words = [self.tokenizer.decode(w).strip() for w in req.words]
        return [[w, None if s is None else round(s * per_code, 3)] for w, s in zip(words, starts)]


def synthesize(checkpoint: str, items: list[EvalItem], out: Path, cfg: SynthesisConfig) -> int:
    """Synthesize what OUT does not have yet (no actors start when nothing is left)."""
    done = {r["id"] for r in read_rows(out / SYNTHESIS)}
    if all(it.id in done for it in items):
        return 0
    synth = Synthesizer(checkpoint, cfg)
    try:
        return synth.run(items, out)
    finally:
        synth.shutdown()
