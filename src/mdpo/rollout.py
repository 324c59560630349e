"""On-device rollout storage for a cohort (leading dims: agent K, time T, env N) and GAE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

# Every field but obs holds one value per (agent, step, env).
SCALARS = {"actions": torch.int64, "logprobs": torch.float32, "values": torch.float32, "rewards": torch.float32,
           "dones": torch.bool, "valids": torch.bool, "episode_ends": torch.bool, "episode_returns": torch.float32,
           "episode_lengths": torch.float32}


class Batch(NamedTuple):
    """What the loss learns from: every agent's frames side by side, each field (K, B, ...)."""

    obs: torch.Tensor  # (K, B, *obs_shape)
    actions: torch.Tensor  # int64 (K, B)
    logprobs: torch.Tensor  # float32 (K, B): of the actions, when they were taken
    values: torch.Tensor  # float32 (K, B): the critic's, when they were taken
    advantages: torch.Tensor  # float32 (K, B)
    returns: torch.Tensor  # float32 (K, B): the value targets
    valids: torch.Tensor  # bool (K, B): False on envpool's auto-reset steps, left out of every loss

    def take(self, idx: torch.Tensor | slice) -> "Batch":
        """Frames ``idx`` of every agent (the same positions for all)."""
        return Batch(*(field[:, idx] for field in self))

    @property
    def frames(self) -> int:
        """Frames per agent."""
        return self.actions.shape[1]


@dataclass
class Rollout:
    obs: torch.Tensor  # (K, T, N, *obs_shape): uint8 images or float32 vectors
    actions: torch.Tensor  # int64 (K, T, N)
    logprobs: torch.Tensor  # float32 (K, T, N)
    values: torch.Tensor  # float32 (K, T, N)
    rewards: torch.Tensor  # float32 (K, T, N): normalised
    dones: torch.Tensor  # bool (K, T, N)
    valids: torch.Tensor  # bool (K, T, N)
    episode_ends: torch.Tensor  # bool (K, T, N)
    episode_returns: torch.Tensor  # float32 (K, T, N): raw, where episode_ends
    episode_lengths: torch.Tensor  # float32 (K, T, N)

    @classmethod
    def allocate(cls, agents: int, steps: int, envs: int, obs_shape: tuple[int, ...],
                 device: torch.device, obs_dtype: torch.dtype = torch.uint8) -> "Rollout":
        def z(dtype: torch.dtype, *extra: int) -> torch.Tensor:
            return torch.zeros((agents, steps, envs, *extra), dtype=dtype, device=device)

        return cls(z(obs_dtype, *obs_shape), **{name: z(dtype) for name, dtype in SCALARS.items()})

    def batch(self, advantages: torch.Tensor, returns: torch.Tensor) -> Batch:
        """The rollout with its advantages and returns (K, T, N) as one batch of T*N frames per agent."""

        def flat(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(x.shape[0], -1, *x.shape[3:])

        return Batch(flat(self.obs), flat(self.actions), flat(self.logprobs), flat(self.values), flat(advantages),
                     flat(returns), flat(self.valids))


def gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, valids: torch.Tensor,
        next_value: torch.Tensor, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over time dim -2 of (..., T, N) tensors.

    ``dones[t]`` ends the episode at transition t (no bootstrap past it). Invalid steps (envpool's
    auto-reset step, which always follows a done) get advantage 0 and are excluded from losses;
    nothing bootstraps from them, since the step before them is terminal.
    Returns (advantages, returns = advantages + values).
    """
    steps = rewards.shape[-2]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(steps)):
        next_v = next_value if t == steps - 1 else values[..., t + 1, :]
        nonterminal = (~dones[..., t, :]).to(rewards.dtype)
        delta = rewards[..., t, :] + gamma * next_v * nonterminal - values[..., t, :]
        last = (delta + gamma * lam * nonterminal * last) * valids[..., t, :].to(rewards.dtype)
        advantages[..., t, :] = last
    return advantages, advantages + values
