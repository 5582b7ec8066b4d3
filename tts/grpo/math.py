"""GRPO math (DeepSeekMath; Inworld TTS-1 section 3.5): group advantages, token logprobs, k3 KL and the loss.

Pure tensor functions, so the trainer, the rollout workers and the tests share one definition of each quantity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

AGGREGATIONS = ("token_mean", "seq_mean")


def group_advantages(rewards: Tensor, group_size: int, scale_by_std: bool = False, eps: float = 1e-6) -> Tensor:
    """A_i = r_i - mean(group), optionally divided by (std(group) + eps); same shape as `rewards`.

    `rewards` is [G * n] (groups laid out contiguously) or [G, n] with n = group_size. The std is the sample
    (Bessel-corrected, correction=1) std, as in TRL's GRPOTrainer (`Tensor.std` default), so scaled values
    match TRL's; it needs group_size >= 2. A group whose rewards are all equal carries no learning signal and
    gets exact zeros in both modes (float rounding of its mean would otherwise leak tiny values, which the
    std division with a small eps could blow up).
    """
    if group_size < 1 or (scale_by_std and group_size < 2):
        raise ValueError(f"group_size must be >= 1 (>= 2 with std scaling); got {group_size}")
    if (
        rewards.dim() not in (1, 2)
        or rewards.numel() % group_size
        or (rewards.dim() == 2 and rewards.shape[1] != group_size)
    ):
        raise ValueError(f"rewards must be [G * {group_size}] or [G, {group_size}]; got {tuple(rewards.shape)}")
    r = (rewards if rewards.is_floating_point() else rewards.float()).reshape(-1, group_size)
    centred = r - r.mean(dim=1, keepdim=True)
    if scale_by_std:
        centred = centred / (r.std(dim=1, keepdim=True) + eps)
    constant = (r == r[:, :1]).all(dim=1, keepdim=True)
    return centred.masked_fill(constant, 0.0).reshape(rewards.shape)


def token_logprobs(logits: Tensor, tokens: Tensor) -> Tensor:
    """log pi(token_t | prefix) for [B, T, V] logits and [B, T] tokens, in at least float32.

    bf16 keeps ~3 significant digits, so a bf16 log-softmax of -5 is off by ~0.02; the importance ratio
    exp(logp - old_logp) would then wander ~2% from 1 for an unchanged policy and trigger spurious clipping.
    """
    if logits.dim() != 3 or tokens.shape != logits.shape[:2]:
        raise ValueError(f"need logits [B, T, V] and tokens [B, T]; got {tuple(logits.shape)}, {tuple(tokens.shape)}")
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return torch.log_softmax(logits, dim=-1).gather(-1, tokens.long().unsqueeze(-1)).squeeze(-1)


def token_entropy(logits: Tensor) -> Tensor:
    """Entropy of the next-token distribution at every position ([B, T, V] -> [B, T]), in float32: a policy
    whose entropy collapses stops exploring, which the reward curve shows only later."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


LOG_RATIO_BOUND = 20.0  # exp(20) ~ 5e8: finite in fp32, and far beyond any clip range


def kl_k3(logp: Tensor, ref_logp: Tensor, bound: float = 10.0) -> Tensor:
    """Per-token k3 estimator of KL(pi || ref) on tokens sampled from pi: exp(d) - d - 1 with d = ref - logp.

    Unbiased like -d (k1) but never negative and of lower variance (Schulman, "Approximating KL divergence").
    d is clamped to +-20 before exp and the result to `bound` (verl's low_var_kl): one token the policy has
    made very unlikely under the reference would otherwise dominate, or overflow, the whole step's KL.
    """
    d = (ref_logp - logp).clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND)
    return (torch.exp(d) - d - 1.0).clamp(max=bound)


@dataclass
class GRPOLossConfig:
    clip_low: float = 0.2  # ratio floor 1 - clip_low
    clip_high: float = 0.2  # ratio ceiling 1 + clip_high; > clip_low is DAPO's "clip-higher"
    beta: float = 0.04  # k3 KL coefficient; 0 disables the reference model
    kl_bound: float = 10.0  # per-token k3 KL ceiling (verl's low_var_kl)
    # dual-clip PPO (Ye et al. 2020; verl's clip_ratio_c): for A < 0 the per-token loss is capped at -A * dual_clip,
    # so a token whose ratio exploded (stale or rare sample) cannot dominate the update; 0 turns it off
    dual_clip: float = 3.0
    log_ratio_clamp: float = LOG_RATIO_BOUND  # |log pi / pi_old| bound before exp: the ratio stays finite
    # token_mean: every completion token of the batch weighs the same (long utterances weigh more);
    # seq_mean: mean within each sequence, then over sequences (DeepSeekMath's 1/G sum 1/|o_i|).
    aggregation: str = "token_mean"

    def __post_init__(self) -> None:
        if not 0.0 <= self.clip_low < 1.0 or self.clip_high < 0.0 or self.beta < 0.0:
            raise ValueError(f"need 0 <= clip_low < 1, clip_high >= 0, beta >= 0; got {self}")
        if self.dual_clip and self.dual_clip <= 1.0 + self.clip_high:
            raise ValueError(
                f"dual_clip must be 0 (off) or > 1 + clip_high ({1 + self.clip_high}); got {self.dual_clip}"
            )
        if self.kl_bound <= 0 or self.log_ratio_clamp <= 0:
            raise ValueError(f"kl_bound and log_ratio_clamp must be > 0; got {self.kl_bound}, {self.log_ratio_clamp}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}; got {self.aggregation!r}")


def _aggregate(per_token: Tensor, mask: Tensor, aggregation: str, denominator: float | None) -> Tensor:
    if aggregation == "token_mean":
        return per_token.sum() / (mask.sum() if denominator is None else denominator)
    lengths = mask.sum(dim=1)
    nonempty = lengths > 0
    means = per_token.sum(dim=1)[nonempty] / lengths[nonempty]
    return means.mean() if denominator is None else means.sum() / denominator


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    cfg: GRPOLossConfig,
    ref_logp: Tensor | None = None,
    denominator: float | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Clipped-surrogate GRPO loss plus beta * k3 KL to the reference, over the masked completion tokens; with
    verl's safeguards: the log-ratio clamped before exp, dual-clip for negative advantages, a bounded k3.

    logp, old_logp (rollout-time), ref_logp and mask are [B, T]; advantages is [B], or [B, T] when each token has
    its own (per-word credit, tts/grpo/credit.py). old_logp and ref_logp are detached. All log-probs are zeroed
    outside the mask first, so padding values (even -inf) give neither NaN losses nor NaN gradients. beta > 0
    without ref_logp raises rather than silently dropping the KL term.

    `denominator` replaces the micro-batch's own count (tokens for token_mean, sequences for seq_mean) when one
    optimizer step spans several micro-batches and ranks: dividing each by the whole step's count makes the
    accumulated gradient exactly the step-level mean.

    Metrics (floats): loss, policy_loss and kl (aggregated like the loss, so loss = policy_loss + beta * kl; kl
    only when ref_logp is given), clip_fraction (share of masked tokens where the clipped term is the one min
    picks: ratio > 1 + clip_high with A > 0, or ratio < 1 - clip_low with A < 0; those tokens get no gradient),
    dual_clip_fraction (share of masked tokens with A < 0 whose ratio passed `dual_clip`: their loss is capped and
    gets no gradient), ratio_mean (token mean), advantage_mean and advantage_std (population std over the B
    sequences).
    """
    if logp.dim() != 2 or old_logp.shape != logp.shape or mask.shape != logp.shape:
        raise ValueError(
            f"logp, old_logp and mask must share one [B, T] shape; got "
            f"{tuple(logp.shape)}, {tuple(old_logp.shape)}, {tuple(mask.shape)}"
        )
    if advantages.shape not in (logp.shape[:1], logp.shape):
        raise ValueError(f"advantages must be [B] or [B, T] = {tuple(logp.shape)}; got {tuple(advantages.shape)}")
    if ref_logp is not None and ref_logp.shape != logp.shape:
        raise ValueError(f"ref_logp must be {tuple(logp.shape)}; got {tuple(ref_logp.shape)}")
    if cfg.beta > 0 and ref_logp is None:
        raise ValueError(f"beta={cfg.beta} needs ref_logp; set beta=0 to train without the reference")
    keep = mask.bool()
    if not keep.any():
        raise ValueError("mask selects no completion token")
    weights = keep.to(logp.dtype)
    logp = torch.where(keep, logp, 0.0)

    bound = cfg.log_ratio_clamp
    ratio = torch.exp((logp - torch.where(keep, old_logp.detach(), 0.0)).clamp(-bound, bound))
    adv = advantages.detach().to(logp.dtype)
    adv = adv if adv.dim() == 2 else adv.unsqueeze(1)
    surrogate = torch.maximum(-ratio * adv, -ratio.clamp(1.0 - cfg.clip_low, 1.0 + cfg.clip_high) * adv)
    capped = (adv < 0) & (ratio > cfg.dual_clip) if cfg.dual_clip else torch.zeros_like(keep)
    if cfg.dual_clip:
        surrogate = torch.where(adv < 0, torch.minimum(surrogate, -adv * cfg.dual_clip), surrogate)
    policy_tok = surrogate * weights
    policy_loss = _aggregate(policy_tok, weights, cfg.aggregation, denominator)
    loss = policy_loss

    metrics: dict[str, float] = {}
    if ref_logp is not None:
        kl_tok = kl_k3(logp, torch.where(keep, ref_logp.detach(), 0.0), cfg.kl_bound) * weights
        kl = _aggregate(kl_tok, weights, cfg.aggregation, denominator)
        if cfg.beta > 0:
            loss = loss + cfg.beta * kl
        metrics["kl"] = kl.item()

    with torch.no_grad():
        binding = ((ratio > 1.0 + cfg.clip_high) & (adv > 0)) | ((ratio < 1.0 - cfg.clip_low) & (adv < 0))
        n_tokens = weights.sum()
        metrics |= {
            "loss": loss.item(),
            "policy_loss": policy_loss.item(),
            "clip_fraction": ((binding & keep).sum() / n_tokens).item(),
            "dual_clip_fraction": ((capped & keep).sum() / n_tokens).item(),
            "ratio_mean": ((ratio * weights).sum() / n_tokens).item(),
            "advantage_mean": advantages.float().mean().item(),
            "advantage_std": advantages.float().std(correction=0).item(),
        }
    return loss, metrics
