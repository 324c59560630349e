"""Distillation losses between peers: pure functions of logits, per sample.

Each takes ``(own_logits, peer_logits)`` of shape (..., A) and returns a per-sample loss (...).
Whether gradients reach the peer is the caller's choice (it passes ``peer.detach()`` or not).
A new variant is one function and one entry in ``DISTILL_LOSSES``.
"""

from __future__ import annotations

from typing import Callable

import torch


def _logp(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.float(), dim=-1)  # float32 even under autocast


def kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = sum_a p(a) (log p(a) - log q(a)), exact from log-softmax."""
    p_logp, q_logp = _logp(p_logits), _logp(q_logits)
    return (p_logp.exp() * (p_logp - q_logp)).sum(-1)


def forward_kl(own: torch.Tensor, peer: torch.Tensor) -> torch.Tensor:
    """KL(peer || own): the paper's term (and DML's)."""
    return kl(peer, own)


DISTILL_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"kl": forward_kl}
