"""Vectorized environments behind one interface (see ``base.VecEnv``), from families of ``FAMILIES``.

``make_env`` builds a family's env for a split: ``train`` (the configured training levels) or
``test`` (held-out levels: Procgen's full distribution; for Gymnasium, seeds outside the training ones).
A new family is one ``Family`` entry: whether it knows a game, its one-line checks, its builder, its
observation spec and memory per env (checked before anything is built), and what it would need to know
a game it does not. ``env.packages`` are imported before a game is looked up (they register envs).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import torch

from mdpo.config import EnvConfig
from mdpo.envs import procgen
from mdpo.envs.base import OBS_KINDS, Step, VecEnv, step_all
from mdpo.envs.monitor import EpisodeMonitor, MonitoredStep, RewardNormalizer, step_monitored
from mdpo.errors import MdpoError

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Family:
    knows: Callable[[str], bool]  # does the family have this game
    check: Callable[[EnvConfig], None]  # one-line errors for settings it cannot honour
    make: Callable[[EnvConfig, int, int, torch.device, str], VecEnv]  # (cfg, num_envs, seed, device, split)
    obs_spec: Callable[[EnvConfig], tuple[tuple[int, ...], torch.dtype]]  # before any env is built
    host_bytes: int  # about how much host memory one env holds (the memory check's estimate)
    missing: Callable[[str], str] = lambda game: ""  # a game it does not know: the package that would add it


def _stored(spec: tuple[tuple[int, ...], int, str]) -> tuple[tuple[int, ...], torch.dtype]:
    """(obs_shape, dtype as the rollout stores it) of a (shape, actions, kind) spec."""
    shape, _, kind = spec
    return shape, torch.float32 if kind == "vector" else torch.uint8


def _check_coins(cfg: EnvConfig) -> None:
    if cfg.kwargs:
        raise MdpoError("coins takes no env.kwargs: its settings are env.agreement and env.num_envs")
    if not 0.0 <= cfg.agreement <= 1.0:
        raise MdpoError(f"env.agreement must lie in [0, 1], got {cfg.agreement}")


def _make_coins(cfg: EnvConfig, num_envs: int, seed: int, device: torch.device, split: str) -> VecEnv:
    from mdpo.envs import coins

    return coins.make(cfg, num_envs, seed, device, split)


def _make_procgen(cfg: EnvConfig, num_envs: int, seed: int, device: torch.device, split: str) -> VecEnv:
    levels = (cfg.num_levels, cfg.start_level) if split == "train" else (0, 0)
    return procgen.ProcgenEnv(cfg.game, cfg.mode, num_envs, *levels, seed=seed, device=device,
                              num_threads=cfg.num_threads, **cfg.kwargs)


def _knows_gymnasium(game: str) -> bool:
    try:
        from mdpo.envs import gym
    except ImportError as exc:
        raise MdpoError(f"{game!r} is no Procgen game, and Gymnasium ids need gymnasium ({exc}): "
                        "pip install -e .") from None
    return gym.knows(game)


def _check_gymnasium(cfg: EnvConfig) -> None:
    from mdpo.envs import gym

    gym.spec_of(cfg.game, cfg.kwargs)


def _missing_gymnasium(game: str) -> str:
    from mdpo.envs import gym

    return gym.missing(game)


def _make_gymnasium(cfg: EnvConfig, num_envs: int, seed: int, device: torch.device, split: str) -> VecEnv:
    from mdpo.envs import gym
    from mdpo.envs.levels import SeedSplit

    seeds = SeedSplit(cfg.start_level, cfg.num_levels, split) if cfg.num_levels else None
    return gym.GymnasiumEnv(cfg.game, num_envs, seed, device, cfg.vectorization, seeds, kwargs=cfg.kwargs)


def _knows_envpool(game: str) -> bool:
    from mdpo.envs import envpool_tasks

    return envpool_tasks.knows(game)


def _check_envpool(cfg: EnvConfig) -> None:
    from mdpo.envs import envpool_tasks

    envpool_tasks.spec_of(cfg.game, cfg.kwargs)
    if cfg.num_levels:
        raise MdpoError(f"envpool task {cfg.game} cannot reseed its resets, so it has no train/test level split: "
                        "use --env.num_levels 0")


def _make_envpool(cfg: EnvConfig, num_envs: int, seed: int, device: torch.device, split: str) -> VecEnv:
    from mdpo.envs import envpool_tasks

    return envpool_tasks.EnvpoolEnv(cfg.game, num_envs, seed, device, cfg.num_threads, **cfg.kwargs)


def _check_procgen(cfg: EnvConfig) -> None:
    procgen.check(cfg.game, cfg.mode)
    if cfg.kwargs:
        from mdpo.envs import envpool_tasks

        envpool_tasks.check_kwargs(procgen.task(cfg.game, cfg.mode), cfg.kwargs, procgen.SET_BY_MDPO)


def _gymnasium_obs(cfg: EnvConfig) -> tuple[tuple[int, ...], torch.dtype]:
    from mdpo.envs import gym

    return _stored(gym.spec_of(cfg.game, cfg.kwargs))


def _envpool_obs(cfg: EnvConfig) -> tuple[tuple[int, ...], torch.dtype]:
    from mdpo.envs import envpool_tasks

    return _stored(envpool_tasks.spec_of(cfg.game, cfg.kwargs))


def _coins_obs(cfg: EnvConfig) -> tuple[tuple[int, ...], torch.dtype]:
    from mdpo.envs.coins import CoinsEnv

    return CoinsEnv.obs_shape, torch.uint8


# In the order ``env.family=auto`` asks them whether they know a game.
FAMILIES: dict[str, Family] = {
    "procgen": Family(lambda game: game in procgen.GAMES, _check_procgen, _make_procgen,
                      lambda cfg: (procgen.ProcgenEnv.obs_shape, torch.uint8), procgen.ENV_BYTES),
    "coins": Family(lambda game: game == "coins", _check_coins, _make_coins, _coins_obs, 0),  # tensors on device
    "gymnasium": Family(_knows_gymnasium, _check_gymnasium, _make_gymnasium, _gymnasium_obs, 100_000,
                        _missing_gymnasium),
    "envpool": Family(_knows_envpool, _check_envpool, _make_envpool, _envpool_obs, procgen.ENV_BYTES),
}


def import_packages(names: list) -> None:
    """Import ``env.packages``: modules that register environments when imported."""
    for name in names:
        if not isinstance(name, str):
            raise MdpoError(f"env.packages holds module names, got {name!r}")
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            raise MdpoError(f"env.packages: cannot import {name} ({exc}); is it installed, or on PYTHONPATH?") from None


def family_of(cfg: EnvConfig) -> str:
    """The family ``cfg.game`` comes from: ``cfg.family``, or the first family that knows the game; when
    none does, a family's word on the package it lacks, if one has it."""
    import_packages(cfg.packages)
    if cfg.family != "auto":
        if cfg.family not in FAMILIES:
            raise MdpoError(f"unknown env.family {cfg.family!r}; choose from auto, {', '.join(FAMILIES)}")
        family = FAMILIES[cfg.family]
        if not family.knows(cfg.game):
            raise MdpoError(family.missing(cfg.game) or f"{cfg.family} has no game {cfg.game!r}")
        return cfg.family
    for name, family in FAMILIES.items():
        if family.knows(cfg.game):
            return name
    missing = [hint for family in FAMILIES.values() if (hint := family.missing(cfg.game))]
    raise MdpoError(missing[0] if missing else f"unknown game {cfg.game!r}: not a Procgen game "
                    f"({', '.join(procgen.GAMES)}), coins, a Gymnasium id or an envpool task")


def check_env_config(cfg: EnvConfig) -> None:
    """One-line errors for bad env settings, before anything is built."""
    FAMILIES[family_of(cfg)].check(cfg)
    if cfg.num_levels < 0 or cfg.start_level < 0:
        raise MdpoError("env.num_levels and env.start_level must be >= 0")


def make_env(cfg: EnvConfig, num_envs: int, seed: int, device: torch.device, split: str = "train") -> VecEnv:
    if split not in SPLITS:
        raise MdpoError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    check_env_config(cfg)
    return FAMILIES[family_of(cfg)].make(cfg, num_envs, seed, device, split)


def obs_spec(cfg: EnvConfig) -> tuple[tuple[int, ...], torch.dtype]:
    """The shape and dtype of one observation of ``cfg``'s envs, known before any env is built."""
    return FAMILIES[family_of(cfg)].obs_spec(cfg)


def host_bytes_per_env(cfg: EnvConfig) -> int:
    """About how much host memory one of ``cfg``'s envs holds."""
    return FAMILIES[family_of(cfg)].host_bytes


def score_range(cfg: EnvConfig) -> tuple[float, float] | None:
    """(R_min, R_max) for min-max normalised scores, or None where none is defined."""
    if cfg.game.startswith("MiniGrid-"):
        return 0.0, 1.0  # MiniGrid's one reward, 1 - 0.9 t / max_steps, comes at the goal
    return procgen.SCORE_RANGES.get(cfg.mode, {}).get(cfg.game)


def split_warning(cfg: EnvConfig) -> str | None:
    """A warning when the test split's levels repeat training levels (where levels can be hashed)."""
    if family_of(cfg) != "gymnasium" or not cfg.num_levels:
        return None
    from mdpo.envs import gym
    from mdpo.envs.levels import split_overlap

    env = gym.single_env(cfg.game, cfg.kwargs)
    try:
        overlap = split_overlap(env, cfg.start_level, cfg.num_levels)
    finally:
        env.close()
    if overlap is None or overlap[2] == 0:
        return None
    hashed, distinct, share = overlap
    return (f"{cfg.game}: {hashed} training seeds give {distinct} distinct layouts and {share:.0%} of test layouts "
            "also occur in training, so test returns partly measure training levels")


__all__ = ["FAMILIES", "OBS_KINDS", "EpisodeMonitor", "MonitoredStep", "RewardNormalizer", "Step", "VecEnv",
           "check_env_config", "family_of", "host_bytes_per_env", "make_env", "obs_spec", "score_range",
           "split_warning", "step_all", "step_monitored"]
