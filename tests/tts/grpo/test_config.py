"""GRPOConfig's checks (tts/grpo/config.py): a step's batch must split evenly into updates and ranks."""

from __future__ import annotations

import pytest

from tts.grpo.config import GRPOConfig, LearnerConfig
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
