"""GRPO math (tts/grpo/math.py) against hand-computed values; the arithmetic is in the comments."""

from __future__ import annotations

import math

import pytest
import torch

from tts.grpo.math import GRPOLossConfig, group_advantages, grpo_loss, kl_k3, token_entropy, token_logprobs

LN2 = math.log(2.0)


def close(actual, expected, tol: float = 1e-6) -> None:
    torch.testing.assert_close(
        torch.as_tensor(actual, dtype=torch.float64), torch.as_tensor(expected, dtype=torch.float64), atol=tol, rtol=0
    )


def test_group_advantages_centred_flat_and_2d():
    # group 1: mean 2 -> [-1, 0, 1]; group 2: mean 5 -> [0, 0, 0]
    rewards = torch.tensor([1.0, 2.0, 3.0, 5.0, 5.0, 5.0])
    close(group_advantages(rewards, 3), [-1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    adv2d = group_advantages(rewards.view(2, 3), 3)
    assert adv2d.shape == (2, 3)
    close(adv2d, [[-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])


def test_group_advantages_sample_std_scaling():
    # [1, 2, 3]: sample std = sqrt((1 + 0 + 1) / (3 - 1)) = 1 (population std would be sqrt(2/3) = 0.8165)
    # -> [-1/(1 + eps), 0, 1/(1 + eps)]; [5, 5, 5] -> zeros
    eps = 1e-6
    adv = group_advantages(torch.tensor([1.0, 2.0, 3.0, 5.0, 5.0, 5.0]), 3, scale_by_std=True, eps=eps)
    close(adv, [-1 / (1 + eps), 0.0, 1 / (1 + eps), 0.0, 0.0, 0.0])
    # [0, 4]: centred [-2, 2], sample std = sqrt(8 / 1) = 2.828 -> [-0.7071, 0.7071]
    close(group_advantages(torch.tensor([0.0, 4.0]), 2, scale_by_std=True, eps=0.0), [-(0.5**0.5), 0.5**0.5])


@pytest.mark.parametrize("scale_by_std", [False, True])
def test_group_advantages_equal_rewards_are_exact_zeros(scale_by_std):
    # float32 mean of eight 0.7s is 0.7 - 6e-8; unguarded, 6e-8 / (std ~1e-15 + eps 1e-6) would give A = 0.056
    rewards = torch.tensor([0.7] * 8 + [0.3] * 8, dtype=torch.float32)
    adv = group_advantages(rewards, 8, scale_by_std=scale_by_std)
    assert torch.equal(adv, torch.zeros(16))


def test_group_advantages_rejects_bad_shapes():
    with pytest.raises(ValueError):
        group_advantages(torch.zeros(5), 3)
    with pytest.raises(ValueError):
        group_advantages(torch.zeros(3, 2), 3)
    with pytest.raises(ValueError):
        group_advantages(torch.zeros(4), 1, scale_by_std=True)


def test_token_logprobs_hand_values():
    # softmax([0, ln 3]) = [1/4, 3/4]
    logits = torch.tensor([[[0.0, math.log(3.0)], [0.0, math.log(3.0)]]])
    lp = token_logprobs(logits, torch.tensor([[0, 1]]))
    close(lp, [[math.log(0.25), math.log(0.75)]])


def test_token_logprobs_bf16_computed_in_float32():
    logits = (torch.randn(2, 3, 64, generator=torch.Generator().manual_seed(0)) * 5).bfloat16()
    tokens = torch.randint(0, 64, (2, 3), generator=torch.Generator().manual_seed(1))
    lp = token_logprobs(logits, tokens)
    assert lp.dtype == torch.float32
    ref = torch.log_softmax(logits.double(), -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    close(lp, ref, tol=1e-3)
    with pytest.raises(ValueError):
        token_logprobs(logits, tokens[:, :2])


def test_kl_k3_values():
    # d = ref - logp. logp = ln .5, ref = ln .25: d = -ln 2 -> 0.5 + ln 2 - 1 = 0.19315
    # logp = ln .25, ref = ln .5: d = ln 2 -> 2 - ln 2 - 1 = 0.30685; equal -> 0
    logp = torch.log(torch.tensor([0.5, 0.25, 0.3]))
    ref = torch.log(torch.tensor([0.25, 0.5, 0.3]))
    close(kl_k3(logp, ref), [0.5 + LN2 - 1, 2 - LN2 - 1, 0.0])
    assert (kl_k3(torch.randn(100), torch.randn(100)) >= 0).all()


def test_kl_k3_is_bounded_and_finite_for_tokens_the_policy_made_unlikely():
    # d = 50 (the reference finds the token e^50 times likelier): exp(50) - 51 unclamped, bounded here
    logp, ref = torch.tensor([-60.0, -1.0]), torch.tensor([-10.0, -1.0])
    kl = kl_k3(logp.requires_grad_(True), ref, bound=10.0)
    assert kl.tolist() == [10.0, 0.0]
    kl.sum().backward()
    assert logp.grad.tolist() == [0.0, 0.0]  # past the bound, no gradient


def test_token_entropy_uniform_and_peaked():
    logits = torch.zeros(1, 2, 8)
    logits[0, 1, 3] = 100.0
    close(token_entropy(logits)[0], [math.log(8), 0.0], tol=1e-5)


# two sequences of different lengths: A = [1, -2], row 0 has 3 completion tokens, row 1 has 1
ADV = torch.tensor([1.0, -2.0])
MASK = torch.tensor([[1, 1, 1], [1, 0, 0]])


def test_loss_at_ratio_one_is_minus_token_mean_advantage():
    # ratio = 1 -> per-token loss -A: row 0 [-1, -1, -1], row 1 [2]
    # token_mean: (-3 + 2) / 4 = -0.25; seq_mean: mean(-1, 2) = 0.5
    logp = torch.log(torch.tensor([[0.2, 0.3, 0.4], [0.5, 0.6, 0.7]]))
    loss, m = grpo_loss(logp, logp.clone(), ADV, MASK, GRPOLossConfig(beta=0.0))
    close(loss, -0.25)
    assert m["loss"] == pytest.approx(-0.25) and m["policy_loss"] == pytest.approx(-0.25)
    assert m["clip_fraction"] == 0.0 and m["ratio_mean"] == pytest.approx(1.0) and "kl" not in m
    # advantage_mean = -0.5, population std = sqrt((1.5^2 + 1.5^2) / 2) = 1.5
    assert m["advantage_mean"] == pytest.approx(-0.5) and m["advantage_std"] == pytest.approx(1.5)
    seq, _ = grpo_loss(logp, logp.clone(), ADV, MASK, GRPOLossConfig(beta=0.0, aggregation="seq_mean"))
    close(seq, 0.5)


def test_per_token_advantages_weigh_each_token():
    """[B, T] advantages (per-word credit): a row of one value equals that row's scalar advantage; a token of its
    own value counts alone (token_mean: (-1 - 3 - 1 + 2) / 4)."""
    logp = torch.log(torch.tensor([[0.2, 0.3, 0.4], [0.5, 0.6, 0.7]]))
    cfg = GRPOLossConfig(beta=0.0)
    flat, _ = grpo_loss(logp, logp.clone(), ADV, MASK, cfg)
    rows, _ = grpo_loss(logp, logp.clone(), ADV.unsqueeze(1).expand(2, 3).clone(), MASK, cfg)
    close(rows, flat.item())
    own, _ = grpo_loss(logp, logp.clone(), torch.tensor([[1.0, 3.0, 1.0], [-2.0, 9.0, 9.0]]), MASK, cfg)
    close(own, -0.75)


def test_clipping_binds_only_in_the_direction_of_the_advantage():
    # one token per sequence, eps 0.2: band [0.8, 1.2]
    # ratio 1.5, A=+1: min(1.5, 1.2) = 1.2 -> -1.2 (clipped)  | ratio 1.5, A=-1: min(-1.5, -1.2) = -1.5 -> 1.5
    # ratio 0.5, A=-1: min(-0.5, -0.8) = -0.8 -> 0.8 (clipped) | ratio 0.5, A=+1: min(0.5, 0.8) = 0.5 -> -0.5
    # token_mean = (-1.2 + 1.5 + 0.8 - 0.5) / 4 = 0.15; clip_fraction 2/4; ratio_mean (1.5+1.5+.5+.5)/4 = 1
    old = torch.full((4, 1), math.log(0.4))
    logp = old + torch.log(torch.tensor([[1.5], [1.5], [0.5], [0.5]]))
    logp.requires_grad_(True)
    adv = torch.tensor([1.0, -1.0, -1.0, 1.0])
    loss, m = grpo_loss(logp, old, adv, torch.ones(4, 1), GRPOLossConfig(beta=0.0))
    close(loss, 0.15, tol=1e-5)
    assert m["clip_fraction"] == pytest.approx(0.5) and m["ratio_mean"] == pytest.approx(1.0)
    # clipped tokens get no gradient; the others d(-ratio*A)/dlogp / 4 = -ratio*A/4: 1.5/4, -0.5/4
    loss.backward()
    close(logp.grad, [[0.0], [0.375], [0.0], [-0.125]], tol=1e-5)
    # clip-higher: ceiling 1.28 -> first token -1.28: (-1.28 + 1.5 + 0.8 - 0.5) / 4 = 0.13
    loss_hi, _ = grpo_loss(logp, old, adv, torch.ones(4, 1), GRPOLossConfig(clip_high=0.28, beta=0.0))
    close(loss_hi, 0.13, tol=1e-5)


def test_dual_clip_caps_negative_advantage_tokens_whose_ratio_exploded():
    # A = -1, ratio 10: the clipped surrogate is max(10, 0.8) = 10 per token; dual-clip (c = 3) caps it at 3
    old = torch.full((2, 1), math.log(0.01))
    logp = (old + torch.log(torch.tensor([[10.0], [2.0]]))).requires_grad_(True)
    adv = torch.tensor([-1.0, -1.0])
    loss, m = grpo_loss(logp, old, adv, torch.ones(2, 1), GRPOLossConfig(beta=0.0, dual_clip=3.0))
    close(loss, (3.0 + 2.0) / 2, tol=1e-5)  # ratio 2 < 3 is not capped
    assert m["dual_clip_fraction"] == pytest.approx(0.5)
    loss.backward()
    close(logp.grad, [[0.0], [1.0]], tol=1e-5)  # the capped token gets no gradient; d(ratio)/dlogp / 2 = 2/2
    off, m_off = grpo_loss(logp, old, adv, torch.ones(2, 1), GRPOLossConfig(beta=0.0, dual_clip=0.0))
    close(off, (10.0 + 2.0) / 2, tol=1e-4)
    assert m_off["dual_clip_fraction"] == 0.0
    # positive advantages are never capped: ratio 10, A = +1 -> clipped at 1.2
    pos, _ = grpo_loss(logp, old, -adv, torch.ones(2, 1), GRPOLossConfig(beta=0.0))
    close(pos, -1.2, tol=1e-5)


def test_log_ratio_is_clamped_so_the_loss_stays_finite():
    old = torch.tensor([[-200.0]])  # a rollout log-prob the learner disagrees with by e^199
    loss, m = grpo_loss(torch.tensor([[-1.0]]), old, torch.tensor([-1.0]), torch.ones(1, 1), GRPOLossConfig(beta=0.0))
    assert math.isfinite(loss.item()) and m["ratio_mean"] == pytest.approx(math.exp(20.0), rel=1e-4)


def test_gradient_at_ratio_one_is_minus_advantage_over_tokens():
    # d/dlogp of -ratio*A/N at ratio 1 = -A*mask/N with N = 4: row 0 -1/4, row 1 +2/4 on its one token
    logp = torch.log(torch.tensor([[0.2, 0.3, 0.4], [0.5, 0.6, 0.7]])).requires_grad_(True)
    loss, _ = grpo_loss(logp, logp.detach().clone(), ADV, MASK, GRPOLossConfig(beta=0.0))
    loss.backward()
    close(logp.grad, [[-0.25, -0.25, -0.25], [0.5, 0.0, 0.0]])


def test_kl_term_and_masked_padding():
    # A = 0, ratio 1: loss = beta * k3 = 0.1 * (0.5 + ln 2 - 1); the -inf padding must not leak NaN
    logp = torch.tensor([[math.log(0.5), -math.inf]], requires_grad=True)
    ref = torch.tensor([[math.log(0.25), -math.inf]])
    loss, m = grpo_loss(logp, logp.detach(), torch.zeros(1), torch.tensor([[1, 0]]), GRPOLossConfig(beta=0.1), ref)
    close(loss, 0.1 * (0.5 + LN2 - 1))
    assert m["kl"] == pytest.approx(0.5 + LN2 - 1)
    loss.backward()
    # d k3/d logp = 1 - exp(ref - logp) = 1 - 0.5 -> 0.1 * 0.5
    close(logp.grad, [[0.05, 0.0]])


def test_grpo_loss_rejects_bad_inputs():
    x = torch.zeros(2, 3)
    cfg = GRPOLossConfig(beta=0.0)
    with pytest.raises(ValueError):
        grpo_loss(x, torch.zeros(2, 2), ADV, MASK, cfg)
    with pytest.raises(ValueError):
        grpo_loss(x, x, torch.zeros(3), MASK, cfg)
    with pytest.raises(ValueError, match=r"\[B\] or \[B, T\]"):
        grpo_loss(x, x, torch.zeros(2, 2), MASK, cfg)
    with pytest.raises(ValueError):
        grpo_loss(x, x, ADV, torch.zeros(2, 3), cfg)
    with pytest.raises(ValueError):
        grpo_loss(x, x, ADV, MASK, GRPOLossConfig(beta=0.04))
    with pytest.raises(ValueError):
        GRPOLossConfig(aggregation="sum")
    with pytest.raises(ValueError, match="dual_clip"):
        GRPOLossConfig(dual_clip=1.1)  # inside the clip band: would cap ordinary tokens
    with pytest.raises(ValueError, match="kl_bound"):
        GRPOLossConfig(kl_bound=0.0)


def _random_batch(seed: int = 0):
    """Four sequences of 1, 4, 2 and 3 completion tokens, policy off the rollout policy and the reference."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]])
    logp = (-torch.rand(4, 4, generator=g) * 3).double()
    old = logp + 0.3 * torch.randn(4, 4, generator=g).double()  # some ratios leave the clip band
    ref = logp + 0.2 * torch.randn(4, 4, generator=g).double()
    adv = torch.tensor([1.0, -0.5, 0.25, -0.75], dtype=torch.float64)
    return logp, old, ref, adv, mask


@pytest.mark.parametrize("aggregation", ["token_mean", "seq_mean"])
def test_micro_batches_with_the_step_denominator_add_up_to_the_full_batch(aggregation):
    logp, old, ref, adv, mask = _random_batch()
    cfg = GRPOLossConfig(beta=0.04, aggregation=aggregation)
    full_logp = logp.clone().requires_grad_(True)
    full, m_full = grpo_loss(full_logp, old, adv, mask, cfg, ref)
    full.backward()
    assert 0 < m_full["clip_fraction"] < 1  # the clipped branch is part of what must add up

    denominator = float(mask.sum()) if aggregation == "token_mean" else 4.0
    split_logp = logp.clone().requires_grad_(True)
    total = 0.0
    for rows in (slice(0, 2), slice(2, 4)):
        part, _ = grpo_loss(split_logp[rows], old[rows], adv[rows], mask[rows], cfg, ref[rows], denominator)
        part.backward()  # accumulates into split_logp.grad like gradient accumulation does
        total += part.item()
    close(total, full.item(), tol=1e-12)
    close(split_logp.grad, full_logp.grad, tol=1e-12)

    # without the step denominator each micro-batch is its own mean: the sum is not the batch mean
    own = sum(
        grpo_loss(logp[rows], old[rows], adv[rows], mask[rows], cfg, ref[rows])[0].item()
        for rows in (slice(0, 2), slice(2, 4))
    )
    assert abs(own - full.item()) > 1e-3
