"""The small interface every vectorized environment implements."""

from __future__ import annotations

from typing import Iterator, NamedTuple, Protocol, Sequence

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
    """An env may also offer ``send(actions)`` and ``recv() -> Step``, ``step`` in two halves between
    which it steps on its own threads (envpool's asynchronous API); ``step_all`` uses them."""

    num_envs: int
    num_actions: int
    obs_shape: tuple[int, int, int]

    def reset(self) -> torch.Tensor:
        """Start every env; returns the first observations, uint8 (N, C, H, W)."""

    def step(self, actions: torch.Tensor) -> Step:
        """Apply one action per env (int64 (N,) on any device)."""

    def close(self) -> None: ...


def step_all(envs: Sequence[VecEnv], actions: Sequence[torch.Tensor]) -> Iterator[Step]:
    """Step every env with its row of ``actions``, yielding the Steps in order. Envs with ``send``/``recv``
    all get their actions first and step side by side; the caller handles one env's Step while the
    next ones may still be stepping."""
    for env, row in zip(envs, actions):
        if hasattr(env, "send"):
            env.send(row)
    for env, row in zip(envs, actions):
        yield env.recv() if hasattr(env, "send") else env.step(row)
