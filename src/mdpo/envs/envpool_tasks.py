"""Any envpool task with discrete actions (Atari ``Pong-v5``, ``Breakout-v5``, classic control), with
envpool's own preprocessing (Atari: 84x84 grey, 4 stacked frames, frame skip 4, 30 no-op starts).

Atari learns as CleanRL's ``ppo_atari_envpool.py`` does: a lost life ends the learner's episode and
rewards are clipped to their sign, while episode statistics count the game's own rewards until the
game is over. envpool resets on the step after a done, a lost life's too: that step is not a transition.
Its tasks cannot reseed their resets, so they have no train/test level split.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from mdpo.envs.base import NextStepResets, Step, obs_kind, obs_tensor
from mdpo.envs.procgen import _load_envpool
from mdpo.errors import MdpoError

ATARI_OPTIONS = {"episodic_life": True, "reward_clip": True}  # set where a task has them (CleanRL's settings)


def tasks() -> list[str]:
    return list(_load_envpool().list_all_envs())


def knows(game: str) -> bool:
    return game in tasks()


def spaces_of(task: str, observation, action) -> tuple[tuple[int, ...], int]:
    """(obs_shape, action count), or a one-line error naming what mdpo does not support."""
    if not hasattr(action, "n"):
        raise MdpoError(f"{task} has {type(action).__name__} actions; mdpo supports Discrete actions only")
    shape = tuple(observation.shape)
    if len(shape) not in (1, 3):
        raise MdpoError(f"{task} has observations of shape {shape}; mdpo supports (C, H, W) and (D,)")
    return shape, int(action.n)


def spec_of(task: str) -> tuple[tuple[int, ...], int, str]:
    """(obs_shape, action count, obs kind) of ``task``, read from envpool's spec."""
    spec = _load_envpool().make_spec(task)
    space = spec.observation_space
    shape, actions = spaces_of(task, space, spec.action_space)
    return shape, actions, obs_kind(shape, space.dtype)


class EnvpoolEnv:
    """``num_envs`` copies of envpool task ``task``."""

    def __init__(self, task: str, num_envs: int, seed: int, device: torch.device, num_threads: int = 0):
        envpool = _load_envpool()
        options = {k: v for k, v in ATARI_OPTIONS.items() if k in envpool.make_spec(task).config._fields}
        self._env = envpool.make(task, env_type="gymnasium", num_envs=num_envs, seed=seed,
                                 num_threads=num_threads or min(num_envs, os.cpu_count() or 1), **options)
        space = self._env.observation_space
        self.obs_shape, self.num_actions = spaces_of(task, space, self._env.action_space)
        self.obs_kind = obs_kind(self.obs_shape, space.dtype)
        self.num_envs, self.device, self.lives = num_envs, device, bool(options)
        self.resets = NextStepResets(num_envs)

    def _to(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device)

    def reset(self) -> torch.Tensor:
        obs, _ = self._env.reset()
        self.resets.start()
        return obs_tensor(obs, self.device)

    def step(self, actions: torch.Tensor) -> Step:
        obs, reward, terminated, truncated, info = self._env.step(actions.cpu().numpy())
        done = terminated | truncated
        step = Step(obs=obs_tensor(obs, self.device), reward=self._to(reward.astype(np.float32)),
                    done=self._to(done), valid=self._to(self.resets.valid(done)))
        if self.lives:
            game_over = info["terminated"].astype(bool) | truncated
            step = step._replace(score=self._to(info["reward"].astype(np.float32)), game_over=self._to(game_over))
        return step

    def close(self) -> None:
        self._env.close()
