"""The small interface every vectorized environment implements."""

from __future__ import annotations

from typing import NamedTuple, Protocol

import torch


class Step(NamedTuple):
    """One vectorized step; all tensors live on the training device.

    ``valid`` is False on steps that are not transitions: envpool's auto-reset step (the step
    after ``done``: action ignored, reward 0, first frame of the next level). Such steps are
    masked out of losses, GAE and episode statistics.
    """

    obs: torch.Tensor  # uint8 (N, C, H, W): observation after the step
    reward: torch.Tensor  # float32 (N,)
    done: torch.Tensor  # bool (N,): the episode ended with this transition
    valid: torch.Tensor  # bool (N,): a real transition


class VecEnv(Protocol):
    num_envs: int
    num_actions: int
    obs_shape: tuple[int, int, int]

    def reset(self) -> torch.Tensor:
        """Start every env; returns the first observations, uint8 (N, C, H, W)."""

    def step(self, actions: torch.Tensor) -> Step:
        """Apply one action per env (int64 (N,) on any device)."""

    def close(self) -> None: ...
