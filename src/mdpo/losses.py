"""Base RL losses: pure functions of tensors, per sample, reduced by the caller with a mask.

A new policy loss is one function ``(logp, old_logp, advantages, clip) -> per-sample loss`` and one
entry in ``POLICY_LOSSES``.
"""

from __future__ import annotations

from typing import Callable

import torch


def masked_mean(x: torch.Tensor, mask: torch.Tensor, count: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``x`` over entries where ``mask`` is true (auto-reset steps are masked out).

    With ``count``, the valid entries of a whole minibatch of which ``x`` is one chunk: the chunk's
    share of that minibatch's mean (the shares of all its chunks sum to it).
    """
    m = mask.to(x.dtype)
    return (x * m).sum() / (m.sum().clamp(min=1.0) if count is None else count)


def normalize_advantages(adv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit std over the valid entries (unbiased std, as ``Tensor.std``)."""
    m = mask.to(adv.dtype)
    n = m.sum()
    mean = (adv * m).sum() / n.clamp(min=1.0)
    var = (((adv - mean) ** 2) * m).sum() / (n - 1).clamp(min=1.0)
    return (adv - mean) / (var.sqrt() + 1e-8)


def ppo_clip_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, clip: float) -> torch.Tensor:
    """Schulman et al. 2017: max(-A r, -A clip(r, 1-eps, 1+eps))."""
    ratio = (logp - old_logp).exp()
    return torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip))


def spo_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, clip: float) -> torch.Tensor:
    """Simple policy optimisation (Xie et al.): -(A r - |A| (r-1)^2 / (2 eps))."""
    ratio = (logp - old_logp).exp()
    return -(adv * ratio - adv.abs() * (ratio - 1) ** 2 / (2 * clip))


POLICY_LOSSES: dict[str, Callable[..., torch.Tensor]] = {"ppo": ppo_clip_loss, "spo": spo_loss}


def value_loss(value: torch.Tensor, old_value: torch.Tensor, returns: torch.Tensor, clip: float,
               clipped: bool = True) -> torch.Tensor:
    """0.5 * squared error; with ``clipped``, the max of the plain and the clipped error (as PPO2)."""
    unclipped = (value - returns) ** 2
    if not clipped:
        return 0.5 * unclipped
    clipped_value = old_value + (value - old_value).clamp(-clip, clip)
    return 0.5 * torch.max(unclipped, (clipped_value - returns) ** 2)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)
