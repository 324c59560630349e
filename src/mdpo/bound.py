"""Cheap live estimates of the terms of the paper's generalization bound (Corollary 3.8).

Generalization is limited by how far the policy moves between training and unseen levels, which
the paper bounds through (a) the divergence between peers and (b) each policy's robustness to
rendering changes. During training we estimate, on a sample of frames:
    bound/peer_tv            mean total-variation distance between every pair of peers
    bound/robust_tv_{split}  TV(pi(s), pi(f(s))) with f a random convolution (the robustness probe)
    bound/robust_kl_{split}  KL(pi(s) || pi(f(s)))
on training frames (from each agent's rollout) and test frames (held-out levels). The train-test
return gap is ``eval/gap``, logged at the same updates.
"""

from __future__ import annotations

from itertools import combinations
from typing import Callable

import torch
from torch import nn

from mdpo.distill import kl
from mdpo.perturb import random_conv

Perturbation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def total_variation(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample 0.5 * sum_a |p(a) - q(a)|."""
    p, q = torch.softmax(p_logits.float(), -1), torch.softmax(q_logits.float(), -1)
    return 0.5 * (p - q).abs().sum(-1)


@torch.no_grad()
def bound_estimates(agents: nn.ModuleList, train_frames: torch.Tensor, test_frames: torch.Tensor | None,
                    generator: torch.Generator, perturbation: Perturbation | None = random_conv) -> dict[str, float]:
    """``train_frames`` (K, M, ...): each agent's own training observations; ``test_frames`` (M, ...).
    Cohort means, plus per-agent robustness (/agentI) when there are several agents. Without a
    ``perturbation`` (observations that are not colour frames) only the peers' distance is estimated."""
    k = len(agents)
    out: dict[str, float] = {}
    if k > 1:
        pooled = train_frames.flatten(0, 1)
        logits = [agent(pooled)[0] for agent in agents]
        out["bound/peer_tv"] = torch.stack([total_variation(logits[i], logits[j]).mean()
                                            for i, j in combinations(range(k), 2)]).mean().item()
    for split in ("train", "test") if perturbation else ():
        tv, div = [], []
        for i, agent in enumerate(agents):
            frames = train_frames[i] if split == "train" else test_frames
            clean, perturbed = agent(frames)[0], agent(perturbation(frames, generator))[0]
            tv.append(total_variation(clean, perturbed).mean().item())
            div.append(kl(clean, perturbed).mean().item())
        for name, values in ((f"bound/robust_tv_{split}", tv), (f"bound/robust_kl_{split}", div)):
            out[name] = sum(values) / k
            if k > 1:
                out.update({f"{name}/agent{i}": v for i, v in enumerate(values)})
    return out
