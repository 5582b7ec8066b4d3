"""GRPOConfig's checks (tts/grpo/config.py): a step's batch must split evenly into updates and ranks."""

from __future__ import annotations

import pytest

from tts.base.config import load_config
from tts.grpo.config import GRPOConfig, LearnerConfig
from tts.lora import LoraSettings
from tts.rollout import RolloutConfig


def test_mini_batches_split_the_step_evenly():
    cfg = GRPOConfig(prompts_per_step=4, rollout=RolloutConfig(group_size=8), learner=LearnerConfig(mini_batches=4))
    assert cfg.learner.mini_batches == 4
    for ranks, mini_batches in ((1, 0), (1, 3), (2, 32)):
        with pytest.raises(ValueError, match="mini_batches"):
            GRPOConfig(
                prompts_per_step=4,
                rollout=RolloutConfig(group_size=8),
                learner=LearnerConfig(ranks=ranks, mini_batches=mini_batches),
            )


def test_lora_learners_take_adapters_without_dropout_from_the_command_line():
    cfg = load_config(GRPOConfig, None, ["learner.lora={rank: 4, alpha: 8, dropout: 0.0}"])
    assert cfg.learner.lora == LoraSettings(rank=4, alpha=8, dropout=0.0)


@pytest.mark.parametrize(
    "lora, zero, match",
    [
        ({"dropout": 0.2}, 2, "dropout must be 0"),
        ({"dropout": 0.0, "train_embeddings": True}, 2, "adapters only"),
        ({"dropout": 0.0}, 3, "zero_stage 3 is not supported"),
    ],
)
def test_lora_settings_a_grpo_learner_cannot_use_are_refused(lora, zero, match):
    with pytest.raises(ValueError, match=match):
        LearnerConfig(zero_stage=zero, lora=LoraSettings(**lora))


def test_lora_with_a_gpu_weight_sync_is_refused():
    with pytest.raises(ValueError, match="learner.lora with rollout.weight_sync='nccl' is not supported"):
        GRPOConfig(
            rollout=RolloutConfig(weight_sync="nccl", num_gpus=1),
            learner=LearnerConfig(num_gpus=1, lora=LoraSettings(dropout=0.0)),
        )
