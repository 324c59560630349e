"""One optimisation phase over a cohort's rollout: the per-minibatch cohort loss and the epoch loop.

The cohort loss of the paper (Algorithm 1), for agents i = 1..K on one shared minibatch index:
    loss_i = policy_i + vf * value_i - ent * entropy_i + alpha * mean_{j != i} D(pi_i, pi_j; s_i)
    loss   = mean_i loss_i
where s_i is agent i's own minibatch and D the distillation loss (KL(pi_j || pi_i) by default),
with gradients reaching the peer j too unless ``detach_peer``. ``peer_target`` swaps the average over
peers for the peers' average policy, or for a one-way teacher (the best recent agent).
"""

from __future__ import annotations

import torch
from torch import nn

from mdpo.augment import AUGMENTATIONS
from mdpo.config import Config
from mdpo.distill import DISTILL_LOSSES, DISTILL_REWARDS, kl, mean_policy_logits, with_temperature
from mdpo.losses import POLICY_LOSSES, entropy, masked_mean, normalize_advantages, value_loss
from mdpo.runtime import autocast

STATS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac", "distill", "drac")
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


def distill_term(logits: torch.Tensor, i: int, valid: torch.Tensor, cfg: Config,
                 teacher: int | None) -> torch.Tensor:
    """Agent i's distillation loss on its own minibatch, towards the peers ``cfg.cohort`` names."""
    c = cfg.cohort
    k = logits.shape[0]
    loss = DISTILL_LOSSES[c.distill]
    own = logits[i, i]
    if c.peer_target == "best":
        if teacher is None or i == teacher:
            return torch.zeros((), device=own.device)
        peers = [logits[teacher, i].detach()]  # one-way: the teacher is not pulled towards students
    else:
        peers = [logits[j, i] for j in range(k) if j != i]
        if c.detach_peer:
            peers = [p.detach() for p in peers]
        if c.peer_target == "mean":
            peers = [mean_policy_logits(torch.stack(peers))]
    terms = [masked_mean(with_temperature(loss, own, peer, c.temperature), valid) for peer in peers]
    return torch.stack(terms).mean()


def drac_term(agent: nn.Module, obs: torch.Tensor, logits: torch.Tensor, values: torch.Tensor,
              valid: torch.Tensor, augment: str, generator: torch.Generator | None) -> torch.Tensor:
    """DrAC's regulariser (Raileanu et al. 2021) on augmented frames f(s): G_pi + G_V with
    G_pi = KL(pi(s) || pi(f(s))), pi(s) detached: the gradient of DrAC's -log pi(a|f(s)), a ~ pi(s),
    in expectation over a, and zero when f changes nothing; G_V = 0.5 (V(s) - V(f(s)))^2, V(s) detached.
    """
    aug_logits, aug_values = agent(AUGMENTATIONS[augment](obs, generator))
    g_pi = masked_mean(kl(logits.detach(), aug_logits), valid)
    g_v = masked_mean(0.5 * (values.detach() - aug_values) ** 2, valid)
    return g_pi + g_v


def cohort_loss(agents: nn.ModuleList, mb: dict[str, torch.Tensor], cfg: Config, alpha: float | None = None,
                teacher: int | None = None, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (scalar loss averaged over agents, stats (K, len(STATS)) detached).

    ``alpha`` overrides ``cfg.cohort.alpha`` (for schedules); ``teacher`` is the current teacher
    when ``peer_target == 'best'``; ``generator`` draws DrAC's augmentations.
    """
    p = cfg.ppo
    alpha = cfg.cohort.alpha if alpha is None else alpha
    k = len(agents)
    distilling = k > 1 and alpha > 0
    logits, values = forward_all(agents, mb["obs"], cross=distilling)
    policy_loss = POLICY_LOSSES[p.base_loss]
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
        zero = torch.zeros((), device=loss.device)
        dl = distill_term(logits, i, valid, cfg, teacher) if distilling else zero
        drac = (drac_term(agents[i], mb["obs"][i], own_logits, own_values, valid, cfg.drac.augment, generator)
                if cfg.drac.coef > 0 else zero)
        losses.append(loss + alpha * dl + cfg.drac.coef * drac)
        with torch.no_grad():
            approx_kl = masked_mean((log_ratio.exp() - 1) - log_ratio, valid)
            clipfrac = masked_mean(((log_ratio.exp() - 1).abs() > p.clip_coef).float(), valid)
            stats.append(torch.stack([pg, vl, ent, approx_kl, clipfrac, dl, drac]).detach())
    return torch.stack(losses).mean(), torch.stack(stats)


def update(agents: nn.ModuleList, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
           cfg: Config, generator: torch.Generator, alpha: float | None = None,
           teacher: int | None = None) -> torch.Tensor:
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
            mb = {name: batch[name][:, idx] for name in MINIBATCH_FIELDS}
            with autocast(cfg.perf.amp, idx.device):
                loss, stats = cohort_loss(agents, mb, cfg, alpha, teacher, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for agent in agents:
                nn.utils.clip_grad_norm_(agent.parameters(), p.max_grad_norm)
            optimizer.step()
            total += stats
    return total / (p.epochs * p.num_minibatches)


@torch.no_grad()
def distill_rewards(agents: nn.ModuleList, next_obs: torch.Tensor, dones: torch.Tensor, cfg: Config,
                    alpha: float, chunk: int = 2048) -> torch.Tensor:
    """Reward bonus of distillation variants that shape rewards (``DISTILL_REWARDS``), e.g. EERD:
    alpha * mean over peers of f(own(s_{t+1}), peer(s_{t+1})), zero where the episode ended.

    ``next_obs`` (K, T, N, C, H, W) holds each agent's observation after each step.
    """
    reward_fn = DISTILL_REWARDS[cfg.cohort.distill]
    k, t, n = next_obs.shape[:3]
    frames = next_obs.reshape(k, t * n, *next_obs.shape[3:])
    bonus = torch.zeros(k, t * n, device=next_obs.device)
    for start in range(0, t * n, chunk):
        logits, _ = forward_all(agents, frames[:, start:start + chunk], cross=True)
        for i in range(k):
            terms = [reward_fn(logits[i, i], logits[j, i]) for j in range(k) if j != i]
            bonus[i, start:start + chunk] = torch.stack(terms).mean(0)
    return alpha * bonus.view(k, t, n) * (~dones).float()
