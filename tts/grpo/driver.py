"""The GRPO driver: orchestrates rollout workers, codec decoders, reward pools and learner ranks; computes nothing
heavier than advantages.

One step: every prompt's group goes to a rollout worker as its own call; as soon as a group's call returns,
a driver thread decodes it and sends it to the reward pools, so decoding and scoring overlap the remaining
generation. Then the learner ranks update, and the new weights go to every engine (one object in Ray's object
store, read by all workers) before the next rollout. With `off_policy`, step k+1's rollouts are launched before
the learner trains on step k (one step stale; the clipped importance ratio against the rollout-time
log-probs corrects for it).

Run directory (`runs/<name>/`): config.yaml, metrics.jsonl (one row per step), eval_before.json,
checkpoints/checkpoint_NNNNNN/ (HF policy + DeepSpeed state + RNG + train_state.json), report.json,
reward_curve.png, wandb/.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
import yaml
from ray.exceptions import RayActorError

from rewards.router import RewardRouter, check_failures
from rewards.scorers import Sample
from tts.base import checkpoint
from tts.base.actors import ActorGroup, Placement, PoolConfig
from tts.base.audio import load_audio
from tts.base.checkpoint import keep_until
from tts.base.cluster import init_ray
from tts.codec.decoders import DecodeItem, decoder_pool
from tts.grpo.config import GRPOConfig
from tts.grpo.dataset import Prompt, PromptSet
from tts.grpo.learner import LearnerRank, NonFiniteError, Trajectory, distributed_step, micro_batches
from tts.grpo.math import group_advantages
from tts.grpo.telemetry import Telemetry, summarise
from tts.rollout import Completion, RolloutWorker
from tts.speechlm import codec_record, open_speechlm

log = logging.getLogger(__name__)
JOB = "grpo"


class GRPOJob:
    def __init__(self, cfg: GRPOConfig, resume: bool = False, eval_only: bool = False):
        """`eval_only`: no learner; `evaluate` scores the policy on the held-out prompts (pipeline checks)."""
        self.cfg, self.eval_only = cfg, eval_only
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
        try:
            self._start_actors()
        except BaseException:
            self.shutdown()  # what did start would otherwise hold its CPUs/GPUs until the driver exits
            raise

    # -- set-up ----------------------------------------------------------------------------------------------
    def _start_actors(self) -> None:
        cfg = self.cfg
        init_ray()
        self.decoders = decoder_pool(str(self.model.codec.directory), cfg.decoder)
        self.decoders.wait_ready(cfg.start_timeout_s)
        self.data = {split: PromptSet(cfg.data, split, self.tokenizer, self.layout) for split in ("train", "test")}
        refs = sorted({r for ps in self.data.values() for r in ps.references()})
        codes = ray.get(self.decoders.actors[0].encode_files.remote([p for _, p in refs]))
        for ps in self.data.values():
            ps.attach({i: c for (i, _), c in zip(refs, codes)})
        self.rewards = RewardRouter(cfg.rewards)
        start_dir = str(self.restore) if self.restore else self.policy_dir
        shape = PoolConfig(actors=cfg.rollout.workers, num_cpus=cfg.rollout.num_cpus, num_gpus=cfg.rollout.num_gpus)
        self.rollouts = ActorGroup(
            RolloutWorker,
            lambda k: (start_dir, cfg.rollout, cfg.seed + 1000 * k),
            shape,
            "rollout workers",
            placement=Placement(shape, cfg.rollout.placement, "rollout workers", cfg.start_timeout_s),
        )
        self.rollouts.wait_ready(cfg.start_timeout_s, "rollout workers")
        if not self.eval_only:
            self._start_learners()
        self.placement = self._placement()

    def _start_learners(self) -> None:
        cfg = self.cfg
        batch = cfg.prompts_per_step * cfg.rollout.group_size
        self.grad_accum = micro_batches(batch // cfg.learner.ranks, cfg.learner.micro_batch_size)
        restore = str(self.restore) if self.restore else None
        codec = codec_record(self.model.codec)  # what the checkpoints record
        shape = PoolConfig(actors=cfg.learner.ranks, num_cpus=cfg.learner.num_cpus, num_gpus=cfg.learner.num_gpus)
        placement = Placement(shape, cfg.learner.placement, "learner ranks", cfg.start_timeout_s)
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

    def launch(self, prompts: list[Prompt], step: int, n: int | None = None, temperature: float | None = None):
        """Submit one generate call per prompt, round-robin over the workers; returns {ref: (k, worker, args,
        actor)}."""
        pending = {}
        for k, p in enumerate(prompts):
            worker = k % len(self.rollouts)
            args = ([p.input_ids], [self._seed(step, k)], n, temperature, [p.text])
            actor = self.rollouts[worker]
            pending[actor.generate.remote(*args)] = (k, worker, args, actor)
        return pending

    def _reference(self, path: str) -> np.ndarray:
        if path not in self._refs:
            self._refs[path] = load_audio(path, target_sr=16000)[0]
        return self._refs[path]

    def _score(self, prompt: Prompt, group: list[Completion]) -> list[dict]:
        """Decode (prompt audio as left context) and score one group; one record per completion."""
        context = prompt.ref.codes if self.cfg.decoder.prompt_context else None
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

    def _retry_rollout(self, worker: int, args: tuple, dead: Any):
        """A dead rollout worker is replaced (with the current weights) and its call retried once; calls that
        were queued on the same dead worker share one replacement."""
        if self.rollouts.replace(worker, "RayActorError", dead) and self.learners:
            weights = self.learners[0].weights.remote(self.cfg.rollout.dtype)
            ray.get(self.rollouts[worker].load_weights.remote(weights, self.version))
        return ray.get(self.rollouts[worker].generate.remote(*args))

    def collect(self, prompts: list[Prompt], pending: dict, pool: ThreadPoolExecutor) -> tuple[list, dict]:
        """Wait for the launched groups; each is decoded and scored as soon as it arrives."""
        t0 = time.perf_counter()
        futures: dict[int, Any] = {}
        groups: dict[int, list[Completion]] = {}
        waiting = dict(pending)
        while waiting:
            ready, _ = ray.wait(list(waiting), num_returns=1)
            k, worker, args, actor = waiting.pop(ready[0])
            try:
                group = ray.get(ready[0])[0]
            except RayActorError:
                group = self._retry_rollout(worker, args, actor)[0]
            groups[k] = group
            futures[k] = pool.submit(self._score, prompts[k], group)
        t_gen = time.perf_counter() - t0
        records = [futures[k].result() for k in range(len(prompts))]
        timing = {"rollout_s": t_gen, "reward_tail_s": time.perf_counter() - t0 - t_gen}
        return [(prompts[k], groups[k], records[k]) for k in range(len(prompts))], timing

    # -- learning --------------------------------------------------------------------------------------------
    def learn(self, results: list) -> dict:
        cfg = self.cfg
        totals = torch.tensor([rec["rewards"]["total"] for _, _, recs in results for rec in recs])
        adv = group_advantages(totals, cfg.rollout.group_size, cfg.learner.scale_by_std).tolist()
        trajs = [Trajectory(p.input_ids, c.token_ids, c.logprobs, 0.0) for p, group, _ in results for c in group]
        for t, a in zip(trajs, adv):
            t.advantage = a
        return distributed_step(self.learners.actors, trajs, cfg.learner.loss.aggregation)

    def sync(self) -> float:
        """Learner weights -> every rollout engine (queued behind calls already submitted to a worker)."""
        t0 = time.perf_counter()
        weights = self.learners[0].weights.remote(self.cfg.rollout.dtype)
        ray.get([w.load_weights.remote(weights, self.version) for w in self.rollouts.actors])
        return time.perf_counter() - t0

    def save(self, metrics: dict) -> Path:
        """Checkpoint atomically: every rank writes into a temporary directory, renamed when all are done."""
        final = self.ckpt_dir / checkpoint.dir_name(self.step)
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        state = {"job": JOB, "step": self.step, "max_steps": self.cfg.steps, "seed": self.cfg.seed, "metrics": metrics}
        ray.get([r.save.remote(str(tmp), state) for r in self.learners.actors])
        checkpoint.write_state(tmp, state)  # only now, with every rank's shards written, is it complete
        tmp.rename(final)
        kept = sorted(self.ckpt_dir.glob(f"{checkpoint.PREFIX}*[0-9]"))
        for old in kept[: -self.cfg.keep_checkpoints]:
            shutil.rmtree(old)
        return final

    # -- evaluation ------------------------------------------------------------------------------------------
    def evaluate(self, tag: str, pool: ThreadPoolExecutor) -> dict:
        prompts = self.data["test"].held_out(self.cfg.data.eval_prompts, self.cfg.seed)
        pending = self.launch(prompts, step=-1, n=self.cfg.eval_samples, temperature=self.cfg.eval_temperature)
        results, _ = self.collect(prompts, pending, pool)
        records = [rec for _, _, recs in results for rec in recs]
        summary = summarise(records)
        rows = [
            {k: r.get(k) for k in ("id", "text", "transcript", "error_rate", "sim", "dnsmos", "rewards", "flags")}
            for r in records
        ]
        (self.run_dir / f"eval_{tag}.json").write_text(json.dumps({"summary": summary, "samples": rows}, indent=1))
        return summary

    def evaluate_only(self) -> dict:
        with ThreadPoolExecutor(max_workers=max(2, self.cfg.data.eval_prompts)) as pool:
            return {"policy": self.policy_dir, "eval": self.evaluate("only", pool), "placement": self.placement}

    # -- the run ---------------------------------------------------------------------------------------------
    def run(self) -> dict:
        cfg = self.cfg
        t_start = time.perf_counter()
        keep_until(self.run_dir / "metrics.jsonl", self.step)
        with ThreadPoolExecutor(max_workers=max(2, cfg.prompts_per_step)) as pool:
            before_file = self.run_dir / "eval_before.json"
            if before_file.is_file() and self.restore:
                before = json.loads(before_file.read_text())["summary"]
            else:
                before = self.evaluate("before", pool) if cfg.eval_before else None
            train = self.data["train"]
            launched = None
            while self.step < cfg.steps:
                t0 = time.perf_counter()
                prompts = train.for_step(self.step, cfg.prompts_per_step, cfg.seed)
                pending = launched or self.launch(prompts, self.step)
                results, timing = self.collect(prompts, pending, pool)
                check_failures([rec for _, _, recs in results for rec in recs], cfg.rewards.max_failed_share)
                launched = None
                if cfg.off_policy and self.step + 1 < cfg.steps:  # generate k+1 while learning on k
                    nxt = train.for_step(self.step + 1, cfg.prompts_per_step, cfg.seed)
                    launched = self.launch(nxt, self.step + 1)
                t1 = time.perf_counter()
                learner = self.learn(results)
                timing["learner_s"] = time.perf_counter() - t1
                self.step += 1
                self.version = self.step
                timing["sync_s"] = self.sync()
                timing["step_s"] = time.perf_counter() - t0
                metrics = self.telemetry.step(self.step, results, learner, timing)
                if self.step % cfg.checkpoint_interval == 0 or self.step == cfg.steps:
                    self.save(metrics)
            after = self.evaluate("after", pool) if cfg.eval_after else None
        report = {"before": before, "after": after, "steps": self.step, "wall_s": time.perf_counter() - t_start}
        report["placement"] = self.placement
        self.telemetry.finish(report)
        return report

    def shutdown(self) -> None:
        for group in (self.rewards, self.decoders, self.rollouts, self.learners):
            if group is not None:
                group.shutdown()
