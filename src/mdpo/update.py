"""One optimisation phase over a cohort's rollout: the per-minibatch cohort loss and the epoch loop.

The cohort loss of the paper (Algorithm 1), for agents i = 1..K on one shared minibatch index:
    loss_i = policy_i + vf * value_i - ent * entropy_i + alpha * mean_{j != i} D(pi_i, pi_j; s_i)
    loss   = mean_i loss_i
where s_i is agent i's own minibatch and D the distillation loss (KL(pi_j || pi_i) by default),
with gradients reaching the peer j too unless ``detach_peer``.
"""

from __future__ import annotations

import torch
from torch import nn

from mdpo.config import Config
from mdpo.distill import DISTILL_LOSSES
from mdpo.losses import POLICY_LOSSES, entropy, masked_mean, normalize_advantages, value_loss

STATS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac", "distill")
MINIBATCH_FIELDS = ("obs", "actions", "logprobs", "values", "advantages", "returns", "valids")


def forward_all(agents: nn.ModuleList, obs: torch.Tensor, cross: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """logits[i, d] and values[i, d]: agent i on agent d's minibatch, obs (K, M, C, H, W).

    Without ``cross`` each agent sees only its own data and the result has d of size 1.
    """
    k, m = obs.shape[:2]
    if cross:
        flat = obs.reshape(k * m, *obs.shape[2:])
        outs = [agent(flat) for agent in agents]
        logits = torch.stack([lg.view(k, m, -1) for lg, _ in outs])
        values = torch.stack([v.view(k, m) for _, v in outs])
    else:
        outs = [agent(obs[i]) for i, agent in enumerate(agents)]
        logits = torch.stack([lg for lg, _ in outs]).unsqueeze(1)
        values = torch.stack([v for _, v in outs]).unsqueeze(1)
    return logits, values


def cohort_loss(agents: nn.ModuleList, mb: dict[str, torch.Tensor], cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (scalar loss averaged over agents, stats (K, len(STATS)) detached)."""
    p, c = cfg.ppo, cfg.cohort
    k = len(agents)
    distilling = k > 1 and c.alpha > 0
    logits, values = forward_all(agents, mb["obs"], cross=distilling)
    policy_loss, distill_loss = POLICY_LOSSES[p.base_loss], DISTILL_LOSSES[c.distill]
    losses, stats = [], []
    for i in range(k):
        own = i if distilling else 0
        own_logits, own_values, valid = logits[i, own], values[i, own], mb["valids"][i]
        logp_all = torch.log_softmax(own_logits.float(), dim=-1)
        logp = logp_all.gather(-1, mb["actions"][i].unsqueeze(-1)).squeeze(-1)
        log_ratio = logp - mb["logprobs"][i]
        adv = mb["advantages"][i]
        if p.norm_adv:
            adv = normalize_advantages(adv, valid)
        pg = masked_mean(policy_loss(logp, mb["logprobs"][i], adv, p.clip_coef), valid)
        vl = masked_mean(value_loss(own_values, mb["values"][i], mb["returns"][i], p.clip_coef, p.clip_vloss), valid)
        ent = masked_mean(entropy(own_logits), valid)
        loss = pg + p.vf_coef * vl - p.ent_coef * ent
        dl = torch.zeros((), device=loss.device)
        if distilling:
            for j in range(k):
                if j != i:
                    peer = logits[j, i].detach() if c.detach_peer else logits[j, i]
                    dl = dl + masked_mean(distill_loss(own_logits, peer), valid) / (k - 1)
            loss = loss + c.alpha * dl
        losses.append(loss)
        with torch.no_grad():
            approx_kl = masked_mean((log_ratio.exp() - 1) - log_ratio, valid)
            clipfrac = masked_mean(((log_ratio.exp() - 1).abs() > p.clip_coef).float(), valid)
            stats.append(torch.stack([pg, vl, ent, approx_kl, clipfrac, dl]).detach())
    return torch.stack(losses).mean(), torch.stack(stats)


def update(agents: nn.ModuleList, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
           cfg: Config, generator: torch.Generator) -> torch.Tensor:
    """``cfg.ppo.epochs`` passes of minibatch steps over ``batch`` (fields (K, B, ...)).

    One index permutation per epoch is shared by all agents. Returns mean stats (K, len(STATS)).
    """
    p = cfg.ppo
    size = batch["actions"].shape[1]
    mb_size = size // p.num_minibatches
    total = torch.zeros(len(agents), len(STATS), device=batch["actions"].device)
    for _ in range(p.epochs):
        perm = torch.randperm(size, generator=generator, device=generator.device)
        for start in range(0, size, mb_size):
            idx = perm[start:start + mb_size]
            loss, stats = cohort_loss(agents, {name: batch[name][:, idx] for name in MINIBATCH_FIELDS}, cfg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for agent in agents:
                nn.utils.clip_grad_norm_(agent.parameters(), p.max_grad_norm)
            optimizer.step()
            total += stats
    return total / (p.epochs * p.num_minibatches)
