"""The optimisation phase of an update: the cohort loss of a minibatch and the epochs over a rollout.

The cohort loss of the paper (Algorithm 1), for agents i = 1..K on one shared minibatch index:
    loss_i = policy_i + vf * value_i - ent * entropy_i + alpha * mean_{j != i} D(pi_i, pi_j; s_i)
    loss   = mean_i loss_i
where s_i is agent i's own minibatch and D the distillation loss (KL(pi_j || pi_i) by default),
with gradients reaching the peer j too unless ``detach_peer``. ``peer_target`` swaps the average over
peers for the peers' average policy, or for a one-way teacher (the best recent agent).

The mean over agents is the authors'. Adam does not see a gradient's scale, but the gradient clip
does: it is applied per agent, to 1/K of the agent's own gradient, so it binds only where PPO's would
at K times the norm. ``reduce=sum`` adds the agents' losses instead: each agent's update is then the
one PPO would make (with alpha 0, exactly), and MDPO differs from PPO by distillation alone.

Micro-batching (``perf.micro_batch``): a minibatch's loss and gradients are computed in chunks of
frames and the gradients accumulated, so peak memory scales with the chunk. It is the same update:
what needs the whole minibatch (valid counts, advantage normalisation, DrAC's random augmentations)
is computed before chunking, every masked mean divides by the whole minibatch's count, and the
gradient clip and optimizer step happen once per minibatch.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

import torch
from torch import nn

from mdpo.augment import AUGMENTATIONS
from mdpo.config import Config
from mdpo.distill import DISTILL_LOSSES, DISTILL_REWARDS, kl, mean_policy_logits, with_temperature
from mdpo.losses import POLICY_LOSSES, entropy, masked_mean, normalize_advantages, value_loss
from mdpo.rollout import Batch
from mdpo.runtime import autocast


class LossStats(NamedTuple):
    """What the cohort loss reports, each (K,) detached: one value per agent."""

    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    entropy: torch.Tensor
    approx_kl: torch.Tensor
    clipfrac: torch.Tensor
    distill: torch.Tensor  # agent i's distillation loss towards its peers (0 for one agent)
    drac: torch.Tensor  # DrAC's regulariser (0 when off)

    def stacked(self) -> torch.Tensor:
        """(K, len(LossStats._fields)): one tensor to sum, check or copy to the host at once."""
        return torch.stack(self, dim=1)

    @classmethod
    def of(cls, stacked: torch.Tensor) -> "LossStats":
        return cls(*stacked.unbind(1))


class Minibatch(NamedTuple):
    """A minibatch ready for the loss, with what needs all of its frames, computed before it is cut
    into chunks: every masked mean divides by the whole minibatch's valid count."""

    batch: Batch  # advantages normalised if ``ppo.norm_adv``
    counts: torch.Tensor  # (K,) valid frames per agent
    augmented: torch.Tensor | None  # DrAC's augmented frames, (K, M, *obs_shape)

    def chunks(self, size: int) -> Iterator["Minibatch"]:
        """Consecutive slices of ``size`` frames per agent (all of them when ``size`` is 0)."""
        frames = self.batch.frames
        size = size or frames
        for start in range(0, frames, size):
            part = slice(start, start + size)
            augmented = None if self.augmented is None else self.augmented[:, part]
            yield Minibatch(self.batch.take(part), self.counts, augmented)


def forward_all(agents: nn.ModuleList, obs: torch.Tensor, cross: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """logits[i, d] and values[i, d]: agent i on agent d's minibatch, obs (K, M, *obs_shape).

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


def distill_term(logits: torch.Tensor, i: int, valid: torch.Tensor, count: torch.Tensor, cfg: Config,
                 teacher: int | None) -> torch.Tensor:
    """Agent i's distillation loss on its own minibatch (this chunk's share, see ``masked_mean``),
    towards the peers ``cfg.cohort`` names."""
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
    terms = [masked_mean(with_temperature(loss, own, peer, c.temperature), valid, count) for peer in peers]
    return torch.stack(terms).mean()


def drac_term(agent: nn.Module, augmented: torch.Tensor, logits: torch.Tensor, values: torch.Tensor,
              valid: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """DrAC's regulariser (Raileanu et al. 2021) on augmented frames f(s): G_pi + G_V with
    G_pi = KL(pi(s) || pi(f(s))), pi(s) detached: the gradient of DrAC's -log pi(a|f(s)), a ~ pi(s),
    in expectation over a, and zero when f changes nothing; G_V = 0.5 (V(s) - V(f(s)))^2, V(s) detached.
    """
    aug_logits, aug_values = agent(augmented)
    g_pi = masked_mean(kl(logits.detach(), aug_logits), valid, count)
    g_v = masked_mean(0.5 * (values.detach() - aug_values) ** 2, valid, count)
    return g_pi + g_v


def prepare(mb: Batch, cfg: Config, generator: torch.Generator | None) -> Minibatch:
    """``mb`` with its per-agent valid counts, normalised advantages and DrAC's augmented frames."""
    if cfg.ppo.norm_adv:
        mb = mb._replace(advantages=torch.stack([normalize_advantages(a, v) for a, v in zip(mb.advantages, mb.valids)]))
    augmented = None
    if cfg.drac.coef > 0:
        augment = AUGMENTATIONS[cfg.drac.augment]
        augmented = torch.stack([augment(obs, generator) for obs in mb.obs])
    return Minibatch(mb, mb.valids.float().sum(1).clamp(min=1.0), augmented)


def chunk_loss(agents: nn.ModuleList, chunk: Minibatch, cfg: Config, alpha: float, teacher: int | None
               ) -> tuple[torch.Tensor, LossStats]:
    """One chunk's share of the cohort loss and of its stats: summed over the chunks of a minibatch
    (``Minibatch.chunks``), both equal those of the whole minibatch."""
    p = cfg.ppo
    k = len(agents)
    mb = chunk.batch
    distilling = k > 1 and alpha > 0
    logits, values = forward_all(agents, mb.obs, cross=distilling)
    policy_loss = POLICY_LOSSES[p.base_loss]
    losses, stats = [], []
    for i in range(k):
        own = i if distilling else 0
        own_logits, own_values, valid, count = logits[i, own], values[i, own], mb.valids[i], chunk.counts[i]
        logp_all = torch.log_softmax(own_logits.float(), dim=-1)
        logp = logp_all.gather(-1, mb.actions[i].unsqueeze(-1)).squeeze(-1)
        log_ratio = logp - mb.logprobs[i]
        pg = masked_mean(policy_loss(logp, mb.logprobs[i], mb.advantages[i], p.clip_coef), valid, count)
        vl = masked_mean(value_loss(own_values, mb.values[i], mb.returns[i], p.clip_coef, p.clip_vloss), valid, count)
        ent = masked_mean(entropy(own_logits), valid, count)
        loss = pg + p.vf_coef * vl - p.ent_coef * ent
        zero = torch.zeros((), device=loss.device)
        dl = distill_term(logits, i, valid, count, cfg, teacher) if distilling else zero
        drac = (drac_term(agents[i], chunk.augmented[i], own_logits, own_values, valid, count)
                if cfg.drac.coef > 0 else zero)
        losses.append(loss + alpha * dl + cfg.drac.coef * drac)
        with torch.no_grad():
            approx_kl = masked_mean((log_ratio.exp() - 1) - log_ratio, valid, count)
            clipfrac = masked_mean(((log_ratio.exp() - 1).abs() > p.clip_coef).float(), valid, count)
            stats.append(torch.stack([pg, vl, ent, approx_kl, clipfrac, dl, drac]).detach())
    combined = torch.stack(losses)
    return (combined.sum() if cfg.cohort.reduce == "sum" else combined.mean()), LossStats.of(torch.stack(stats))


def cohort_loss(agents: nn.ModuleList, mb: Batch, cfg: Config, alpha: float, teacher: int | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, LossStats]:
    """(The loss averaged over agents, its stats) on a whole minibatch; ``alpha`` weighs distillation
    (the schedule's value at this update), ``teacher`` is the current teacher when ``peer_target ==
    'best'``, ``generator`` draws DrAC's augmentations."""
    return chunk_loss(agents, prepare(mb, cfg, generator), cfg, alpha, teacher)


def minibatch_step(agents: nn.ModuleList, optimizer: torch.optim.Optimizer, mb: Batch, cfg: Config,
                   generator: torch.Generator, alpha: float, teacher: int | None) -> torch.Tensor:
    """One optimizer step on a minibatch, its gradients accumulated over chunks of ``perf.micro_batch``
    frames per agent (peak memory scales with the chunk); returns the minibatch's stats, stacked."""
    device = mb.actions.device
    optimizer.zero_grad(set_to_none=True)
    with autocast(cfg.perf.amp, device):
        whole = prepare(mb, cfg, generator)
    stats = torch.zeros(len(agents), len(LossStats._fields), device=device)
    for chunk in whole.chunks(cfg.perf.micro_batch):
        with autocast(cfg.perf.amp, device):
            loss, chunk_stats = chunk_loss(agents, chunk, cfg, alpha, teacher)
        loss.backward()
        stats += chunk_stats.stacked()
    for agent in agents:
        nn.utils.clip_grad_norm_(agent.parameters(), cfg.ppo.max_grad_norm)
    optimizer.step()
    return stats


def optimize(agents: nn.ModuleList, optimizer: torch.optim.Optimizer, batch: Batch, cfg: Config,
             generator: torch.Generator, alpha: float, teacher: int | None = None) -> LossStats:
    """``cfg.ppo.epochs`` passes of minibatch steps over ``batch``; returns the mean stats.

    One index permutation per epoch is shared by all agents.
    """
    p = cfg.ppo
    size = batch.frames
    mb_size = size // p.num_minibatches
    total = torch.zeros(len(agents), len(LossStats._fields), device=batch.actions.device)
    for _ in range(p.epochs):
        perm = torch.randperm(size, generator=generator, device=generator.device)
        for start in range(0, size, mb_size):
            total += minibatch_step(agents, optimizer, batch.take(perm[start:start + mb_size]), cfg, generator,
                                    alpha, teacher)
    return LossStats.of(total / (p.epochs * p.num_minibatches))


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
