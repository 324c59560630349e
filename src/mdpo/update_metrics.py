"""What an update reports: its numbers under CleanRL's names, and the check that they are finite.

Pure functions of the rollout, the update's stats and the agents; the trainer calls them once per
update, each with a single host sync.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mdpo.config import Config
from mdpo.errors import MdpoError
from mdpo.optimize import LossStats
from mdpo.rollout import Rollout
from mdpo.runs import kept_checkpoint


def update_metrics(rollout: Rollout, stats: LossStats, returns: torch.Tensor, cfg: Config, update_idx: int,
                   lr: float, seconds: float) -> dict[str, float]:
    """Update ``update_idx`` (counted from 1) under CleanRL's names; with several agents, the cohort
    mean plus per-agent values (/agentI)."""
    r, k = rollout, cfg.cohort.num_agents
    valid = r.valids.float()
    ends = r.episode_ends.float()
    n_ends = ends.sum((1, 2))
    resid = (returns - r.values) * valid
    count = valid.sum((1, 2))

    def var(x: torch.Tensor) -> torch.Tensor:
        mean = (x * valid).sum((1, 2)) / count
        return (((x - mean[:, None, None]) ** 2) * valid).sum((1, 2)) / count

    per_agent = torch.stack([
        *stats,
        1 - var(resid) / var(returns),
        (r.episode_returns * ends).sum((1, 2)) / n_ends,
        (r.episode_lengths * ends).sum((1, 2)) / n_ends,
    ], dim=1).cpu()  # the one host sync of an update
    stat_names = {"distill": f"distill/{cfg.cohort.distill}" if k > 1 else "",
                  "drac": "losses/drac" if cfg.drac.coef > 0 else ""}
    names = [stat_names.get(s, f"losses/{s}") for s in LossStats._fields]
    names += ["losses/explained_variance", "charts/episodic_return", "charts/episodic_length"]
    batch_steps = cfg.env.num_envs * cfg.ppo.num_steps
    out: dict[str, float] = {"charts/learning_rate": lr, "charts/SPS": k * batch_steps / seconds,
                             "charts/update": update_idx}
    episodic = {"charts/episodic_return", "charts/episodic_length"}  # none when no episode ended
    for j, name in enumerate(names):
        values = {"": per_agent[:, j].nanmean().item()}
        if k > 1:
            values.update({f"/agent{i}": per_agent[i, j].item() for i in range(k)})
        out.update({name + suffix: v for suffix, v in values.items()
                    if name and not (name in episodic and math.isnan(v))})
    return out


def check_finite(stats: LossStats, agents: nn.ModuleList, update_idx: int, saved_update: int | None) -> None:
    """Stop, naming the update and the quantity, when a loss, a gradient or a parameter is no
    longer finite: before anything non-finite is checkpointed or logged."""
    stacked = stats.stacked()
    device = stacked.device

    def nonfinite(tensors) -> torch.Tensor:
        flags = [~torch.isfinite(t).all() for t in tensors if t is not None]
        return torch.stack(flags).any() if flags else torch.tensor(False, device=device)

    flags = torch.stack([
        ~torch.isfinite(stacked).all(1),
        torch.stack([nonfinite(p.grad for p in agent.parameters()) for agent in agents]),
        torch.stack([nonfinite(agent.parameters()) for agent in agents]),
    ]).cpu()  # (quantity, agent)
    if not flags.any():
        return
    kind, agent = (int(i) for i in flags.nonzero()[0])
    if kind == 0:
        term = LossStats._fields[int((~torch.isfinite(stacked[agent].cpu())).nonzero()[0])]
        what = f"loss term {term}"
    else:
        what = ("gradients", "parameters")[kind - 1]
    raise MdpoError(f"update {update_idx + 1}: the {what} of agent {agent} became non-finite; stopped "
                    f"before writing a checkpoint ({kept_checkpoint(saved_update)}); a smaller --ppo.lr may help")
