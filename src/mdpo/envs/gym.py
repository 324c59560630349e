"""Any Gymnasium environment with discrete actions, through ``gymnasium.make_vec``; ``env.kwargs`` go to
each env's constructor, and a ``module:Env-v0`` id imports ``module`` first (which registers ``Env-v0``).

Families that need a step before their ids exist, or a wrapper to give Box observations, are one
entry of ``PLUGINS`` (MinAtar and ALE register their ids; MiniGrid's Dict observations become its
(7, 7, 3) image); an id whose plugin package or module is missing is a one-line error naming it.
Images come HWC from Gymnasium and leave as CHW uint8 (bool as 0/1); vectors as float32.
Both autoreset modes are handled: next-step (Gymnasium's default, as envpool: the step after a done
only resets, and is masked as not valid) and same-step (every step is a transition).
"""

from __future__ import annotations

import functools
import importlib
import json
from typing import Any, Callable

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


@functools.cache
def _ale() -> list[Callable]:
    import ale_py  # noqa: F401  (registers ALE/*)

    return []


# id prefix -> (pip package, setup returning the wrappers every sub-env needs, what to use instead without
# the package: formatted with the id's name after the prefix)
PLUGINS: dict[str, tuple[str, Callable[[], list[Callable]], str]] = {
    "MinAtar/": ("minatar", _minatar, ""),
    "MiniGrid-": ("minigrid", _minigrid, ""),
    "BabyAI-": ("minigrid", _minigrid, ""),
    "ALE/": ("ale-py", _ale, ", or use envpool's {name}"),
}


def wrappers_for(game: str) -> list[Callable]:
    """Register ``game``'s family if it has a plugin; returns the wrappers its envs need."""
    for prefix, (package, setup, instead) in PLUGINS.items():
        if game.startswith(prefix):
            try:
                return setup()
            except ImportError:
                hint = instead.format(name=game.removeprefix(prefix))
                raise MdpoError(f"{game} needs the {package} package: pip install {package}{hint}") from None
    return []


def registered_id(game: str) -> str:
    """The id ``game`` has in Gymnasium's registry, once what registers it is imported: its plugin, or
    the module of a ``module:Env-v0`` id (a one-line error names either when it is missing)."""
    wrappers_for(game)
    module, _, env_id = game.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            raise MdpoError(f"{game}: cannot import {module} ({exc}); is it installed, or on PYTHONPATH?") from None
    return env_id


def knows(game: str) -> bool:
    try:
        return registered_id(game) in gymnasium.registry
    except MdpoError:
        return False


def missing(game: str) -> str:
    """What Gymnasium lacks to know ``game``, as a one-line hint: the package or module that registers it,
    or what a ``module:`` id's module did not register ('' when nothing points to a missing package)."""
    try:
        gymnasium.spec(registered_id(game))
    except MdpoError as exc:
        return str(exc)
    except gymnasium.error.NamespaceNotFound as exc:
        return f"{game}: {exc} (--env.packages imports a module that registers its ids)"
    except gymnasium.error.Error as exc:
        return f"{game}: {exc}" if ":" in game else ""  # a module: id is Gymnasium's, so its hint is the one
    return ""


def single_env(game: str, kwargs: dict[str, Any] | None = None) -> gymnasium.Env:
    """One env of ``game`` with its family's wrappers (for checks and level hashing)."""
    wrappers = wrappers_for(game)  # registers the family's ids first
    try:
        env = gymnasium.make(game, **(kwargs or {}))
    except TypeError as exc:
        if not kwargs:
            raise
        reason = str(exc).split(" was raised from the environment creator")[0]  # Gymnasium repeats the kwargs
        raise MdpoError(f"env.kwargs {kwargs} do not fit {game}: {reason}") from None
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


def spec_of(game: str, kwargs: dict[str, Any] | None = None) -> tuple[tuple[int, ...], int, str]:
    """(obs_shape, action count, obs kind) of ``game`` built with ``kwargs``, read from one env; a one-line
    error for what mdpo does not support."""
    return _spec_of(game, json.dumps(kwargs or {}, sort_keys=True))


@functools.cache
def _spec_of(game: str, kwargs_json: str) -> tuple[tuple[int, ...], int, str]:
    env = single_env(game, json.loads(kwargs_json))  # kwargs as JSON: a hashable cache key
    try:
        shape, actions = spaces_of(game, env.observation_space, env.action_space)
        return shape, actions, obs_kind(shape, env.observation_space.dtype)
    finally:
        env.close()


class GymnasiumEnv:
    """``num_envs`` copies of a Gymnasium env. ``seeds`` (a split's seeds) reseeds every reset; None
    leaves the envs' own randomness to pick levels after the first, seeded, reset."""

    def __init__(self, game: str, num_envs: int, seed: int, device: torch.device, vectorization: str = "sync",
                 seeds: SeedSplit | None = None, autoreset: AutoresetMode = AutoresetMode.NEXT_STEP,
                 kwargs: dict[str, Any] | None = None):
        wrappers = wrappers_for(game)
        if seeds is not None:
            wrappers = [*wrappers, functools.partial(LevelSeeds, seeds=seeds)]
        self._env = gymnasium.make_vec(game, num_envs, vectorization_mode=vectorization, wrappers=wrappers,
                                       vector_kwargs={"autoreset_mode": autoreset}, **(kwargs or {}))
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
