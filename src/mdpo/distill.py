"""Distillation losses between peers: pure functions of logits, per sample.

Each takes ``(own_logits, peer_logits)`` of shape (..., A) and returns a per-sample loss (...).
Whether gradients reach the peer is the caller's choice (it passes ``peer.detach()`` or not), and
so is the temperature (``with_temperature``). A new variant is one function and one entry in
``DISTILL_LOSSES``; a variant that also shapes rewards adds an entry to ``DISTILL_REWARDS``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _logp(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.float(), dim=-1)  # float32 even under autocast


def kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = sum_a p(a) (log p(a) - log q(a)), exact from log-softmax."""
    p_logp, q_logp = _logp(p_logits), _logp(q_logits)
    return (p_logp.exp() * (p_logp - q_logp)).sum(-1)


def cross_entropy(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """H^x(p || q) = -sum_a p(a) log q(a)."""
    return -(_logp(p_logits).exp() * _logp(q_logits)).sum(-1)


def forward_kl(own: torch.Tensor, peer: torch.Tensor) -> torch.Tensor:
    """KL(peer || own): the paper's term (and DML's)."""
    return kl(peer, own)


def reverse_kl(own: torch.Tensor, peer: torch.Tensor) -> torch.Tensor:
    """KL(own || peer): mode-seeking."""
    return kl(own, peer)


def symmetric_kl(own: torch.Tensor, peer: torch.Tensor) -> torch.Tensor:
    """The average of both directions."""
    return 0.5 * (kl(peer, own) + kl(own, peer))


def jensen_shannon(own: torch.Tensor, peer: torch.Tensor) -> torch.Tensor:
    """JS = (KL(own || m) + KL(peer || m)) / 2 with m the mixture; bounded by ln 2."""
    la, lb = _logp(own), _logp(peer)
    log_m = torch.logsumexp(torch.stack([la, lb]), dim=0) - math.log(2.0)
    return 0.5 * ((la.exp() * (la - log_m)).sum(-1) + (lb.exp() * (lb - log_m)).sum(-1))


def logit_mse(own: torch.Tensor, peer: torch.Tensor) -> torch.Tensor:
    """sum_a (z_own - z_peer)^2 (twin-network logit matching)."""
    return ((own.float() - peer.float()) ** 2).sum(-1)


def eerd(own: torch.Tensor, peer: torch.Tensor) -> torch.Tensor:
    """Expected entropy-regularised distillation (Czarnecki et al. 2019), loss part: H^x(own || peer).
    Its reward part is ``eerd_reward``."""
    return cross_entropy(own, peer)


def eerd_reward(own: torch.Tensor, peer: torch.Tensor) -> torch.Tensor:
    """EERD's reward at the next state: E_{a ~ own} log peer(a) = -H^x(own || peer)."""
    return -cross_entropy(own, peer)


DISTILL_LOSSES: dict[str, Loss] = {
    "kl": forward_kl,
    "reverse_kl": reverse_kl,
    "symmetric_kl": symmetric_kl,
    "js": jensen_shannon,
    "mse": logit_mse,
    "eerd": eerd,
}

DISTILL_REWARDS: dict[str, Loss] = {"eerd": eerd_reward}


def with_temperature(loss: Loss, own: torch.Tensor, peer: torch.Tensor, tau: float) -> torch.Tensor:
    """``loss`` on logits softened by ``tau``, scaled by tau^2 so gradients keep their size."""
    if tau == 1.0:
        return loss(own, peer)
    return loss(own / tau, peer / tau) * tau**2


def mean_policy_logits(peer_logits: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the average policy of peers stacked on dim 0 (usable as logits)."""
    return torch.logsumexp(_logp(peer_logits), dim=0) - math.log(peer_logits.shape[0])
