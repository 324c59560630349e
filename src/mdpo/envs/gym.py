"""Any Gymnasium environment with discrete actions, through ``gymnasium.make_vec``.

Families that need a step before their ids exist, or a wrapper to give Box observations, are one
entry of ``PLUGINS`` (MinAtar registers its ids; MiniGrid's Dict observations become its (7, 7, 3)
image). Images come HWC from Gymnasium and leave as CHW uint8 (bool as 0/1); vectors as float32.
Both autoreset modes are handled: next-step (Gymnasium's default, as envpool: the step after a done
only resets, and is masked as not valid) and same-step (every step is a transition).
"""

from __future__ import annotations

import functools
from typing import Callable

import gymnasium
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from mdpo.envs.base import NextStepResets, Step, obs_kind, obs_tensor
from mdpo.envs.levels import LevelSeeds, SeedSplit
from mdpo.errors import MdpoError


@functools.cache
def _minatar() -> list[Callable]:
    from minatar.gym import register_envs

    register_envs()
    return []


@functools.cache
def _minigrid() -> list[Callable]:
    import minigrid  # noqa: F401  (registers MiniGrid-* and BabyAI-*)
    from minigrid.wrappers import ImgObsWrapper

    return [ImgObsWrapper]


# id prefix -> (package, setup returning the wrappers every sub-env needs)
PLUGINS: dict[str, tuple[str, Callable[[], list[Callable]]]] = {
    "MinAtar/": ("minatar", _minatar),
    "MiniGrid-": ("minigrid", _minigrid),
    "BabyAI-": ("minigrid", _minigrid),
}


def wrappers_for(game: str) -> list[Callable]:
    """Register ``game``'s family if it has a plugin; returns the wrappers its envs need."""
    for prefix, (package, setup) in PLUGINS.items():
        if game.startswith(prefix):
            try:
                return setup()
            except ImportError:
                raise MdpoError(f"{game} needs the {package} package: pip install {package}") from None
    return []


def knows(game: str) -> bool:
    try:
        wrappers_for(game)
    except MdpoError:
        return False
    return game in gymnasium.registry


def single_env(game: str) -> gymnasium.Env:
    """One env of ``game`` with its family's wrappers (for checks and level hashing)."""
    wrappers = wrappers_for(game)  # registers the family's ids first
    env = gymnasium.make(game)
    for wrap in wrappers:
        env = wrap(env)
    return env


def spaces_of(game: str, observation: gymnasium.Space, action: gymnasium.Space) -> tuple[tuple[int, ...], int]:
    """(obs_shape as stored, CHW for images; action count), or a one-line error naming what is unsupported."""
    if not isinstance(action, gymnasium.spaces.Discrete):
        raise MdpoError(f"{game} has {type(action).__name__} actions; mdpo supports Discrete actions only")
    if not isinstance(observation, gymnasium.spaces.Box) or len(observation.shape) not in (1, 3):
        raise MdpoError(f"{game} has {observation} observations; mdpo supports Box images (H, W, C) and vectors (D,)"
                        " (Dict observations need a wrapper: add one to mdpo.envs.gym.PLUGINS)")
    shape = observation.shape
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape, int(action.n)


@functools.cache
def spec_of(game: str) -> tuple[tuple[int, ...], int, str]:
    """(obs_shape, action count, obs kind) of ``game``, read from one env; a one-line error for what
    mdpo does not support."""
    env = single_env(game)
    try:
        shape, actions = spaces_of(game, env.observation_space, env.action_space)
        return shape, actions, obs_kind(shape, env.observation_space.dtype)
    finally:
        env.close()


class GymnasiumEnv:
    """``num_envs`` copies of a Gymnasium env. ``seeds`` (a split's seeds) reseeds every reset; None
    leaves the envs' own randomness to pick levels after the first, seeded, reset."""

    def __init__(self, game: str, num_envs: int, seed: int, device: torch.device, vectorization: str = "sync",
                 seeds: SeedSplit | None = None, autoreset: AutoresetMode = AutoresetMode.NEXT_STEP):
        wrappers = wrappers_for(game)
        if seeds is not None:
            wrappers = [*wrappers, functools.partial(LevelSeeds, seeds=seeds)]
        self._env = gymnasium.make_vec(game, num_envs, vectorization_mode=vectorization, wrappers=wrappers,
                                       vector_kwargs={"autoreset_mode": autoreset})
        self.obs_shape, self.num_actions = spaces_of(game, self._env.single_observation_space,
                                                     self._env.single_action_space)
        self.obs_kind = obs_kind(self.obs_shape, self._env.single_observation_space.dtype)
        self.num_envs, self.seed, self.device = num_envs, seed, device
        self.resets = NextStepResets(num_envs) if autoreset == AutoresetMode.NEXT_STEP else None

    def _obs(self, array: np.ndarray) -> torch.Tensor:
        return obs_tensor(array, self.device, channels_first=False)  # Gymnasium images are HWC

    def reset(self) -> torch.Tensor:
        obs, _ = self._env.reset(seed=self.seed)
        if self.resets:
            self.resets.start()
        return self._obs(obs)

    def step(self, actions: torch.Tensor) -> Step:
        obs, reward, terminated, truncated, _ = self._env.step(actions.cpu().numpy())
        done = terminated | truncated
        valid = self.resets.valid(done) if self.resets else np.ones_like(done)
        as_tensor = functools.partial(torch.as_tensor, device=self.device)
        return Step(obs=self._obs(obs), reward=as_tensor(reward, dtype=torch.float32), done=as_tensor(done),
                    valid=as_tensor(valid))

    def close(self) -> None:
        self._env.close()
