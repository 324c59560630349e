"""Vectorized environments behind one interface (see ``base.VecEnv``).

``make_env`` builds a family's env for a split: ``train`` (the configured training levels) or
``test`` (held-out levels: Procgen's full distribution).
"""

from __future__ import annotations

import torch

from mdpo.config import EnvConfig
from mdpo.envs import procgen
from mdpo.envs.base import Step, VecEnv, step_all
from mdpo.envs.monitor import Monitor, MonitoredStep, step_monitored
from mdpo.errors import MdpoError

SPLITS = ("train", "test")


def check_env_config(cfg: EnvConfig) -> None:
    """One-line errors for bad env settings, before anything is built."""
    if cfg.game == "coins":
        if not 0.0 <= cfg.agreement <= 1.0:
            raise MdpoError(f"env.agreement must lie in [0, 1], got {cfg.agreement}")
    else:
        procgen.check(cfg.game, cfg.mode)
    if cfg.num_levels < 0 or cfg.start_level < 0:
        raise MdpoError("env.num_levels and env.start_level must be >= 0")


def make_env(cfg: EnvConfig, num_envs: int, seed: int, device: torch.device, split: str = "train") -> VecEnv:
    if split not in SPLITS:
        raise MdpoError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    check_env_config(cfg)
    if cfg.game == "coins":
        from mdpo.envs import coins

        return coins.make(cfg, num_envs, seed, device, split)
    levels = (cfg.num_levels, cfg.start_level) if split == "train" else (0, 0)
    return procgen.ProcgenEnv(cfg.game, cfg.mode, num_envs, *levels, seed=seed, device=device,
                              num_threads=cfg.num_threads)


def score_range(cfg: EnvConfig) -> tuple[float, float] | None:
    """(R_min, R_max) for min-max normalised scores, or None where none is defined."""
    return procgen.SCORE_RANGES.get(cfg.mode, {}).get(cfg.game)


__all__ = ["Monitor", "MonitoredStep", "Step", "VecEnv", "check_env_config", "make_env", "score_range", "step_all",
           "step_monitored"]
