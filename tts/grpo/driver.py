"""The GRPO driver: orchestrates rollout workers, codec decoders, reward pools and learner ranks; computes nothing
heavier than advantages.

One step: each rollout worker gets its share of the step's prompts in one streaming call (all of them in its
engine at once); as soon as a group finishes, a driver thread decodes it and sends it to the reward pools, so
decoding and scoring overlap the remaining generation. Then the learner ranks update, and the new weights go to
every engine (one packed buffer in Ray's object store, read by all workers) before the next rollout. With
`off_policy`, step k+1's rollouts are launched, generated and scored while the learner trains on step k (one
step stale; the clipped importance ratio against the rollout-time log-probs corrects for it); a checkpoint then
also keeps step k+1's generated groups, so `--resume` replays them instead of generating them with newer weights.

Run directory (`runs/<name>/`): config.yaml, metrics.jsonl (one row per step), eval_before.json,
checkpoints/checkpoint_NNNNNN/ (HF policy + DeepSpeed state + RNG + train_state.json), report.json,
reward_curve.png, wandb/.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
import yaml
from ray.exceptions import RayActorError, RayTaskError

from rewards.router import RewardRouter, check_failures
from rewards.scorers import Sample
from tts.base import checkpoint
from tts.base.actors import ActorGroup, Placement, PoolConfig
from tts.base.audio import load_audio
from tts.base.checkpoint import keep_until
from tts.base.cluster import init_ray
from tts.codec.decoders import DecodeItem, decoder_pool
from tts.grpo.config import GRPOConfig
from tts.grpo.credit import token_advantages, word_hits
from tts.grpo.dataset import HeldOutItem, ItemSet, Prompt, PromptSet
from tts.grpo.learner import LearnerRank, NonFiniteError, Trajectory, grpo_update, micro_batches
from tts.grpo.math import group_advantages
from tts.grpo.telemetry import Telemetry, summarise
from tts.grpo.weight_transfer import GPU_SYNCS, check_gpus
from tts.rollout import Completion, RolloutWorker
from tts.speech_sampling import WordSync
from tts.speechlm import codec_record, open_speechlm

log = logging.getLogger(__name__)
JOB = "grpo"
LEARNER_METRICS = ("loss", "policy_loss", "kl", "clip_fraction", "dual_clip_fraction", "entropy", "grad_norm", "lr")
PENDING = "next_rollout.json"  # in an off-policy checkpoint: the next step's groups, generated before its update


def all_equal(records: list[dict]) -> bool:
    """A group whose samples all got the same total reward: zero advantages, no learning signal."""
    return len({rec["rewards"]["total"] for rec in records}) == 1


class Rollout:
    """Prompts in flight: each worker's stream is read by its own driver thread, and every group is decoded and
    scored in the job's pool as soon as it arrives."""

    def __init__(self, prompts: list[Prompt], draw: int = 0):
        self.prompts, self.draw = prompts, draw
        self.groups: dict[int, list[Completion]] = {}
        self.scored: dict[int, Future] = {}
        self.t0 = self.generated_at = self.scored_at = time.perf_counter()
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()

    def start(self, fn: Callable, *args: Any) -> None:
        def run() -> None:
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001  re-raised by wait_generated in the driver's thread
                self._errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def timed(self, fn: Callable, *args: Any) -> Any:
        out = fn(*args)
        with self._lock:
            self.scored_at = max(self.scored_at, time.perf_counter())
        return out

    def wait_generated(self) -> dict[int, list[Completion]]:
        for thread in self._threads:
            thread.join()
        if self._errors:
            raise self._errors[0]
        return self.groups


class GRPOJob:
    def __init__(
        self,
        cfg: GRPOConfig,
        resume: bool = False,
        eval_only: bool = False,
        eval_sets: dict[str, list[HeldOutItem]] | None = None,
    ):
        """`eval_only`: no learner; `evaluate` scores the policy on the held-out prompts (pipeline checks).
        `eval_sets`: benchmark rows by set name (read by the entry point from `cfg.data.eval_sets`), scored with the
        held-out prompts at every evaluation."""
        self.cfg, self.eval_only, self.eval_items = cfg, eval_only, eval_sets or {}
        self.run_dir = Path(cfg.runs_dir) / cfg.name
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.model = open_speechlm(cfg.policy, cfg.codec_dir)  # fails now, with the path, if anything is off
        self.policy_dir = str(self.model.directory)
        self.tokenizer, self.layout = self.model.tokenizer, self.model.layout
        self.restore = checkpoint.latest(self.ckpt_dir) if resume and self.ckpt_dir.exists() else None
        if resume and self.restore is None:
            log.warning("--resume: no checkpoint under %s; starting from step 0", self.ckpt_dir)
        if not (resume or eval_only) and self.ckpt_dir.exists() and checkpoint.latest(self.ckpt_dir) is not None:
            raise FileExistsError(f"{self.run_dir} already has checkpoints: pass --resume, or choose another name=")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
        self.step = int(checkpoint.read_state(self.restore)["step"]) if self.restore else 0
        self.version = self.step
        self._refs: dict[str, np.ndarray] = {}
        self.rewards = self.decoders = self.rollouts = self.learners = None
        self._reserved: list[Placement] = []  # placement groups, reserved before their actors start
        # decodes and scores groups as they arrive: one thread per group in flight (two steps' worth off-policy)
        evaluated = cfg.data.eval_prompts + sum(len(items) for items in self.eval_items.values())
        self.pool = ThreadPoolExecutor(max_workers=2 * max(cfg.prompts_per_step, evaluated) + 2)
        try:
            self._start_actors()
        except BaseException:
            self.shutdown()  # what did start would otherwise hold its CPUs/GPUs until the driver exits
            raise

    # -- set-up ----------------------------------------------------------------------------------------------
    def _start_actors(self) -> None:
        cfg = self.cfg
        init_ray()
        # the groups with a placement reserve their CPUs/GPUs before any pool without one starts: decoder or reward
        # actors scheduled first may take the share of a node that a strict placement needs (strict_spread ranks
        # need some of every node), and the job would then wait start_timeout_s for a placement that cannot come
        rollout_shape = PoolConfig(cfg.rollout.workers, num_cpus=cfg.rollout.num_cpus, num_gpus=cfg.rollout.num_gpus)
        learner_shape = PoolConfig(cfg.learner.ranks, num_cpus=cfg.learner.num_cpus, num_gpus=cfg.learner.num_gpus)
        learners_at = None  # the strictest first: ranks default to pack, rollout workers to a soft spread
        if not self.eval_only:
            learners_at = Placement(learner_shape, cfg.learner.placement, "learner ranks", cfg.start_timeout_s)
            self._reserved.append(learners_at)
        rollouts_at = Placement(rollout_shape, cfg.rollout.placement, "rollout workers", cfg.start_timeout_s)
        self._reserved.append(rollouts_at)
        self.decoders = decoder_pool(str(self.model.codec.directory), cfg.decoder)
        self.decoders.wait_ready(cfg.start_timeout_s)
        self.data = {split: PromptSet(cfg.data, split, self.tokenizer, self.layout) for split in ("train", "test")}
        self.sets = {name: ItemSet(name, items, self.tokenizer, self.layout) for name, items in self.eval_items.items()}
        refs = sorted({r for ps in [*self.data.values(), *self.sets.values()] for r in ps.references()})
        codes = ray.get(self.decoders.actors[0].encode_files.remote([p for _, p in refs]))
        by_id = {i: c for (i, _), c in zip(refs, codes)}
        for ps in self.data.values():
            ps.attach(by_id)
        for item_set in self.sets.values():
            item_set.attach(by_id, cfg.rollout.max_model_len - cfg.rollout.max_new_tokens)
            if item_set.skipped:
                log.warning("evaluation set %s: %d prompt(s) too long, left out", item_set.name, len(item_set.skipped))
        self.rewards = RewardRouter(cfg.rewards)
        start_dir = str(self.restore) if self.restore else self.policy_dir
        self.rollouts = ActorGroup(
            RolloutWorker,
            lambda k: (start_dir, cfg.rollout, cfg.seed + 1000 * k),
            rollout_shape,
            "rollout workers",
            placement=rollouts_at,
        )
        self.rollouts.wait_ready(cfg.start_timeout_s, "rollout workers")
        if learners_at is not None:
            self._start_learners(learner_shape, learners_at)
        self.placement = self._placement()

    def _start_learners(self, shape: PoolConfig, placement: Placement) -> None:
        cfg = self.cfg
        batch = cfg.prompts_per_step * cfg.rollout.group_size
        per_rank = batch // (cfg.learner.ranks * cfg.learner.mini_batches)  # one optimizer step's share
        self.grad_accum = micro_batches(per_rank, cfg.learner.micro_batch_size)
        restore = str(self.restore) if self.restore else None
        codec = codec_record(self.model.codec)  # what the checkpoints record
        master = placement.address(0)  # on rank 0's node: under `ray job submit` the driver's may hold no rank
        args = (self.policy_dir, cfg.learner)
        self.learners = ActorGroup(
            LearnerRank,
            lambda r: (*args, r, cfg.learner.ranks, master, self.grad_accum, cfg.seed, restore, codec),
            shape,
            "learner ranks",
            placement=placement,
        )
        self.learners.wait_ready(cfg.start_timeout_s, "learner ranks")
        self._reform = cfg.rollout.weight_sync in GPU_SYNCS  # the NCCL group / IPC link forms at the first sync
        self.telemetry = Telemetry(cfg, self.run_dir, resumed_at=self.step if self.restore else None)

    def _placement(self) -> dict[str, list[str]]:
        """Node IP of every actor by role (report.json "placement"), also logged: where the job's work runs."""
        groups = {"rollout": self.rollouts, "learner": self.learners, "decoder": self.decoders}
        groups |= {pool.name: pool for pool in self.rewards.pools.values()}
        placement = {role: group.hosts() for role, group in groups.items() if group is not None}
        for role, hosts in placement.items():
            log.info("%s actors on %s", role, ", ".join(hosts))
        return placement

    # -- rollouts and rewards --------------------------------------------------------------------------------
    def _seed(self, step: int, k: int) -> int:
        return (self.cfg.seed * 1_000_003 + step * 1009 + k) % 2**31

    def launch(
        self,
        prompts: list[Prompt],
        step: int,
        n: int | None = None,
        temperature: float | None = None,
        replay: dict[int, list[Completion]] | None = None,
        draw: int = 0,
    ) -> Rollout:
        """Start generating (or, with `replay`, take already generated groups) and scoring `prompts`: prompt k
        goes to worker k mod workers, each worker's share in one streaming call. `draw` > 0: a resampling round
        of the same step, sampled under other seeds."""
        rollout = Rollout(prompts, draw)
        if replay is not None:
            for k in range(len(prompts)):
                self._arrived(rollout, k, replay[k])
            return rollout
        workers = len(self.rollouts)
        for w in range(min(workers, len(prompts))):
            share = list(range(w, len(prompts), workers))
            rollout.start(self._stream, rollout, w, share, step, n, temperature)
        return rollout

    def _stream(self, rollout: Rollout, worker: int, share: list[int], step: int, n, temperature) -> None:
        """Receive one worker's groups as they finish. A worker that dies is replaced (with the current weights)
        and what it had not yet returned is generated again, once."""
        for attempt in range(2):
            todo = [k for k in share if k not in rollout.groups]
            actor = self.rollouts[worker]
            prompts = [rollout.prompts[k] for k in todo]
            ids, texts = [p.input_ids for p in prompts], [p.text for p in prompts]
            words = [p.words for p in prompts] if self.layout.interleave else None
            seeds = [self._seed(step, k + 1000 * rollout.draw) for k in todo]
            try:
                stream = actor.generate_stream.options(num_returns="streaming")
                for ref in stream.remote(ids, seeds, n, temperature, texts, words):
                    j, group = ray.get(ref)
                    self._arrived(rollout, todo[j], group)
                return
            except (RayActorError, RayTaskError) as exc:  # dead, or its engine raised: a fresh worker, once
                if attempt:
                    raise
                log.warning("rollout worker %d failed mid-rollout (%s); replacing it", worker, type(exc).__name__)
                self._replace_rollout(worker, actor)

    def _arrived(self, rollout: Rollout, k: int, group: list[Completion]) -> None:
        rollout.groups[k] = group
        rollout.generated_at = time.perf_counter()
        rollout.scored[k] = self.pool.submit(rollout.timed, self._score, rollout.prompts[k], group)

    def _reference(self, path: str) -> np.ndarray:
        if path not in self._refs:
            self._refs[path] = load_audio(path, target_sr=16000)[0]
        return self._refs[path]

    def _score(self, prompt: Prompt, group: list[Completion]) -> list[dict]:
        """Decode (prompt audio as left context) and score one group; one record per completion."""
        context = prompt.ref.codes  # the decoders keep its tail (decoder.prompt_context)
        items = []
        for c in group:
            codes = self.layout.ids_to_codes(
                np.asarray([t for t in c.token_ids if self.layout.is_audio(t)], dtype=np.int64)
            )
            items.append(DecodeItem(codes, context))
        decoded = self.decoders.gather(self.decoders.submit(items))
        ref_wave = self._reference(prompt.ref.wav)
        samples = [
            Sample(
                wave=d.wave if d.wave is not None else np.zeros(0, np.float32),
                sr=d.sr,
                text=prompt.text,
                language=prompt.language,
                ref_wave=ref_wave,
                ref_sr=16000,
                id=f"{prompt.id}#{i}",
                meta={"error": d.error} if d.error else {},
            )
            for i, d in enumerate(decoded)
        ]
        records = self.rewards.score(samples)
        for rec, c in zip(records, group):
            rec["tokens"] = len(c.token_ids)
            rec["finish"] = c.finish
            if not math.isfinite(rec["rewards"]["total"]):
                raise NonFiniteError(f"reward of {rec['id']} is {rec['rewards']['total']}: stopping the run")
        return records

    def _replace_rollout(self, worker: int, dead: Any) -> None:
        """Replace a failed rollout worker and load the learner's current weights into it; callers that saw the
        same failed worker share one replacement."""
        if self.rollouts.replace(worker, "rollout failed", dead) and self.learners:
            ray.get(self.rollouts[worker].load_weights.remote(self._learner_weights(), self.version))
            self._reform = self.cfg.rollout.weight_sync in GPU_SYNCS  # the NCCL group lost a member

    def collect(self, rollout: Rollout) -> tuple[list, dict]:
        """Wait until every group of `rollout` is generated and scored; (prompt, group, records) per prompt."""
        rollout.wait_generated()
        prompts = rollout.prompts
        records = [rollout.scored[k].result() for k in range(len(prompts))]
        timing = {
            "rollout_s": rollout.generated_at - rollout.t0,
            "reward_tail_s": max(0.0, rollout.scored_at - rollout.generated_at),
        }
        return [(prompts[k], rollout.groups[k], records[k]) for k in range(len(prompts))], timing

    # -- learning --------------------------------------------------------------------------------------------
    def filter_groups(self, results: list) -> tuple[list, dict]:
        """`group_filter`: drop the groups whose samples all scored the same, or replace them with groups of new
        prompts for the same step (`resample`). Returns the groups to train on and the step's group metrics."""
        cfg = self.cfg
        informative = [r for r in results if not all_equal(r[2])]
        share = 1.0 - len(informative) / len(results)
        if cfg.group_filter == "keep":
            return results, {"groups_all_equal": share, "groups_trained": len(results)}
        rounds = cfg.resample_rounds if cfg.group_filter == "resample" else 0
        for draw in range(1, rounds + 1):
            missing = cfg.prompts_per_step - len(informative)
            if missing <= 0:
                break
            prompts = self.data["train"].for_step(self.step, missing, cfg.seed, draw)
            extra, _ = self.collect(self.launch(prompts, self.step, draw=draw))
            informative += [r for r in extra if not all_equal(r[2])]
        return informative, {"groups_all_equal": share, "groups_trained": len(informative)}

    def learn(self, results: list) -> dict:
        cfg = self.cfg
        totals = torch.tensor([rec["rewards"]["total"] for _, _, recs in results for rec in recs])
        adv = group_advantages(totals, cfg.rollout.group_size, cfg.learner.scale_by_std).tolist()
        if cfg.learner.word_credit and self.layout.interleave == "words":
            adv = self._word_credit(results, adv)
        completions = [(p, c) for p, group, _ in results for c in group]
        trajs = [
            Trajectory(p.input_ids, c.token_ids, c.logprobs, a, self._forced(p, c.token_ids))
            for (p, c), a in zip(completions, adv)
            if not (cfg.mask_truncated and c.finish == "length")
        ]
        if not trajs:  # every group filtered out: no update this step
            log.warning("step %d: no group to train on (all filtered); the weights stay as they are", self.step + 1)
            return dict.fromkeys(LEARNER_METRICS, 0.0) | {"ratio_mean": 1.0, "learner_tokens": 0.0}
        return grpo_update(self.learners.actors, trajs, cfg.learner.loss.aggregation, cfg.learner.mini_batches)

    def _forced(self, prompt: Prompt, completion: list[int]) -> list[bool] | None:
        """A word-synchronous completion's tokens that the engine wrote (not the policy's choice: out of the loss)."""
        return None if prompt.words is None else self._sync(prompt).forced(completion)

    def _sync(self, prompt: Prompt) -> WordSync:
        most, sound = self.cfg.rollout.code_limits
        return WordSync(self.layout, prompt.words, self.layout.vocab_size, max_codes=most, max_sound_codes=sound)

    def _word_credit(self, results: list, adv: list[float]) -> list[float | list[float]]:
        """Sequence advantages plus per-word credit (`learner.word_credit`, tts/grpo/credit.py), group by group."""
        out: list[float | list[float]] = []
        for prompt, group, records in results:
            seq, adv = adv[: len(group)], adv[len(group) :]
            hits = word_hits(self.layout, prompt.text, [rec.get("transcript") for rec in records])
            if len(hits[0]) != len(prompt.words):
                out += seq  # the front end no longer reads the prompt's words the same: sequence credit only
                continue
            sync = self._sync(prompt)
            words = [sync.word_of(c.token_ids) for c in group]
            out += token_advantages(seq, hits, words, self.cfg.learner.word_credit)
        return out

    def _learner_weights(self) -> ray.ObjectRef:
        """Rank 0's packed weights. Every rank is asked: under ZeRO-3 each parameter is gathered from all."""
        return [r.weights.remote(self.cfg.rollout.dtype) for r in self.learners.actors][0]

    def sync(self) -> float:
        """Learner weights -> every rollout engine; a worker that died meanwhile is replaced with these weights."""
        t0 = time.perf_counter()
        if self.cfg.rollout.weight_sync in GPU_SYNCS:
            self._sync_gpu()
            return time.perf_counter() - t0
        weights = self._learner_weights()
        loads = [(w, actor, actor.load_weights.remote(weights, self.version)) for w, actor in enumerate(self.rollouts)]
        for w, actor, ref in loads:
            try:
                version = ray.get(ref)
            except (RayActorError, RayTaskError):  # a fresh worker starts from these weights
                self._replace_rollout(w, actor)
                continue
            if version != self.version:
                raise RuntimeError(f"rollout worker {w} holds weights of step {version}, expected {self.version}")
        return time.perf_counter() - t0

    def _sync_gpu(self) -> None:
        """Learner rank 0 sends into every engine over NCCL or CUDA IPC (tts.grpo.weight_transfer). The link forms
        at the first sync and again after a worker was replaced (the replacement got its weights from the object
        store); a GPU placement the chosen path cannot reach is refused first, naming the one that can."""
        choice, learners, engines = self.cfg.rollout.weight_sync, self.learners.actors, self.rollouts.actors
        if self._reform:
            check_gpus(choice, ray.get(learners[0].gpu.remote()), ray.get([e.gpu.remote() for e in engines]))
            ray.get([r.open_weight_transfer.remote(choice, engines, self.cfg.rollout.dtype) for r in learners])
            self._reform = False
        ray.get([r.send_weights.remote() for r in learners])
        versions = ray.get([e.commit_version.remote(self.version) for e in engines])
        if versions != [self.version] * len(engines):
            raise RuntimeError(f"rollout workers hold weights of steps {versions}, expected {self.version}")

    def save(self, metrics: dict, launched: Rollout | None) -> Path:
        """Checkpoint atomically: every rank writes into a temporary directory, renamed when all are done. With
        `launched` (off-policy: the next step's rollouts, generated with the weights before this update) its
        groups are kept too, so a resume scores them rather than generating them again with newer weights."""
        final = self.ckpt_dir / checkpoint.dir_name(self.step)
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        state = {"job": JOB, "step": self.step, "max_steps": self.cfg.steps, "seed": self.cfg.seed, "metrics": metrics}
        ray.get([r.save.remote(str(tmp), state) for r in self.learners.actors])
        if launched is not None:
            groups = launched.wait_generated()
            rows = {k: [asdict(c) for c in groups[k]] for k in range(len(launched.prompts))}
            (tmp / PENDING).write_text(json.dumps({"step": self.step, "groups": rows}))
        checkpoint.write_state(tmp, state)  # only now, with every rank's shards written, is it complete
        tmp.rename(final)
        kept = sorted(self.ckpt_dir.glob(f"{checkpoint.PREFIX}*[0-9]"))
        for old in kept[: -self.cfg.keep_checkpoints]:
            shutil.rmtree(old)
        return final

    # -- evaluation ------------------------------------------------------------------------------------------
    def evaluate(self, tag: str) -> dict:
        """Score the current policy on the held-out prompts and every evaluation set, in one rollout; writes
        eval_<tag>.json and returns the held-out summary, with each set's under "sets"."""
        named = {"": self.data["test"].held_out(self.cfg.data.eval_prompts, self.cfg.seed)}
        named |= {name: s.prompts for name, s in self.sets.items()}
        flat = [p for prompts in named.values() for p in prompts]
        rollout = self.launch(flat, step=-1, n=self.cfg.eval_samples, temperature=self.cfg.eval_temperature)
        results, _ = self.collect(rollout)
        scored, start = {}, 0
        for name, prompts in named.items():
            records = [rec for _, _, recs in results[start : start + len(prompts)] for rec in recs]
            start += len(prompts)
            rows = [
                {k: r.get(k) for k in ("id", "text", "transcript", "error_rate", "sim", "dnsmos", "rewards", "flags")}
                | {"unscorable": "failed" not in r}  # empty, silent or undecodable: the router could not score it
                for r in records
            ]
            scored[name] = {"summary": summarise(records), "samples": rows}
        held_out = scored.pop("")
        summary = held_out["summary"] | ({"sets": {n: s["summary"] for n, s in scored.items()}} if scored else {})
        doc = {"summary": summary, "samples": held_out["samples"]} | ({"sets": scored} if scored else {})
        (self.run_dir / f"eval_{tag}.json").write_text(json.dumps(doc, indent=1))
        return summary

    def evaluate_only(self) -> dict:
        return {"policy": self.policy_dir, "eval": self.evaluate("only"), "placement": self.placement}

    # -- the run ---------------------------------------------------------------------------------------------
    def _replayed(self) -> Rollout | None:
        """Off-policy resume: the step's groups that the checkpoint kept (generated before its update)."""
        kept = self.restore / PENDING if self.restore else None
        if not (self.cfg.off_policy and kept and kept.is_file()):
            return None
        pending = json.loads(kept.read_text())
        if pending["step"] != self.step:
            return None
        groups = {int(k): [Completion(**c) for c in group] for k, group in pending["groups"].items()}
        prompts = self.data["train"].for_step(self.step, self.cfg.prompts_per_step, self.cfg.seed)
        return self.launch(prompts, self.step, replay=groups)

    def run(self) -> dict:
        cfg = self.cfg
        t_start = time.perf_counter()
        keep_until(self.run_dir / checkpoint.METRICS, self.step)
        before_file = self.run_dir / "eval_before.json"
        if before_file.is_file() and self.restore:
            before = json.loads(before_file.read_text())["summary"]
        else:
            before = self.evaluate("before") if cfg.eval_before else None
        train = self.data["train"]
        launched = self._replayed()
        while self.step < cfg.steps:
            t0 = time.perf_counter()
            rollout = launched or self.launch(train.for_step(self.step, cfg.prompts_per_step, cfg.seed), self.step)
            launched = None
            if cfg.off_policy and self.step + 1 < cfg.steps:
                # The engines hold this step's weights from now until the sync below, so step k+1 is generated (and
                # scored as its groups arrive) while step k is still being scored and learned on: one step stale,
                # as if it were launched after the learner started, but the engines do not idle meanwhile.
                nxt = train.for_step(self.step + 1, cfg.prompts_per_step, cfg.seed)
                launched = self.launch(nxt, self.step + 1)
            results, timing = self.collect(rollout)
            check_failures([rec for _, _, recs in results for rec in recs], cfg.rewards.max_failed_share)
            trained, groups = self.filter_groups(results)
            t1 = time.perf_counter()
            learner = self.learn(trained) | groups
            timing["learner_s"] = time.perf_counter() - t1
            self.step += 1
            self.version = self.step
            if launched is not None:
                launched.wait_generated()  # step k+1 is generated with the weights it started with
            timing["sync_s"] = self.sync()
            timing["step_s"] = time.perf_counter() - t0
            held_out = None
            if cfg.eval_interval and self.step % cfg.eval_interval == 0 and self.step < cfg.steps:
                held_out = self.evaluate(f"step_{self.step:06d}")  # the policy of this step: weights just synced
            metrics = self.telemetry.step(self.step, results, learner, timing, held_out)
            if self.step % cfg.checkpoint_interval == 0 or self.step == cfg.steps:
                self.save(metrics, launched)
        after = self.evaluate("after") if cfg.eval_after else None
        report = {"before": before, "after": after, "steps": self.step, "wall_s": time.perf_counter() - t_start}
        report["placement"] = self.placement
        self.telemetry.finish(report)
        return report

    def shutdown(self) -> None:
        for group in (self.rewards, self.decoders, self.rollouts, self.learners):
            if group is not None:
                group.shutdown()
        for placement in self._reserved:  # also those whose actors never started
            placement.remove()
        self.pool.shutdown(wait=False, cancel_futures=True)
