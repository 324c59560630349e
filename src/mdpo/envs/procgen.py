"""Procgen's 16 games through envpool's C++ port (Python >= 3.11 has no `procgen` wheels)."""

from __future__ import annotations

import torch

from mdpo.envs import envpool_tasks
from mdpo.errors import MdpoError

GAMES = (
    "bigfish", "bossfight", "caveflyer", "chaser", "climber", "coinrun", "dodgeball", "fruitbot",
    "heist", "jumper", "leaper", "maze", "miner", "ninja", "plunder", "starpilot",
)
MODES = ("easy", "hard")
# config fields mdpo sets itself for Procgen, and the flag that sets each
SET_BY_MDPO = {**envpool_tasks.SET_BY_MDPO, "num_levels": "env.num_levels", "start_level": "env.start_level",
               "distribution_mode": "env.mode"}
# Host memory one env holds in envpool, rounded up: measured 0.4 MB (bigfish) to 1.1 MB (coinrun) after 50 steps.
ENV_BYTES = 1_500_000

# Min-max normalisation constants (R_min, R_max) of Cobbe et al. 2020.
SCORE_RANGES = {
    "hard": {
        "coinrun": (5, 10), "starpilot": (1.5, 35), "caveflyer": (2, 13.4), "dodgeball": (1.5, 19),
        "fruitbot": (-0.5, 27.2), "chaser": (0.5, 14.2), "miner": (1.5, 20), "jumper": (1, 10),
        "leaper": (1.5, 10), "maze": (4, 10), "bigfish": (0, 40), "heist": (2, 10),
        "climber": (1, 12.6), "plunder": (3, 30), "ninja": (2, 10), "bossfight": (0.5, 13),
    },
    "easy": {
        "coinrun": (5, 10), "starpilot": (2.5, 64), "caveflyer": (3.5, 12), "dodgeball": (1.5, 19),
        "fruitbot": (-1.5, 32.4), "chaser": (0.5, 13), "miner": (1.5, 13), "jumper": (1, 10),
        "leaper": (1.5, 10), "maze": (5, 10), "bigfish": (1, 40), "heist": (3.5, 10),
        "climber": (2, 12.6), "plunder": (4.5, 30), "ninja": (3.5, 10), "bossfight": (0.5, 13),
    },
}


def check(game: str, mode: str) -> None:
    if game not in GAMES:
        raise MdpoError(f"unknown game {game!r}; choose from {', '.join(GAMES)} or coins")
    if mode not in MODES:
        raise MdpoError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")


def task(game: str, mode: str) -> str:
    """envpool's name for ``game`` in ``mode`` (bigfish, hard -> BigfishHard-v0)."""
    return f"{game.capitalize()}{mode.capitalize()}-v0"


class ProcgenEnv(envpool_tasks.EnvpoolEnv):
    """``num_envs`` copies of one Procgen game; observations uint8 (N, 3, 64, 64). ``options``: more of
    envpool's Procgen settings (``use_backgrounds``, ``restrict_themes``, ...)."""

    obs_shape = (3, 64, 64)  # known before any env is made (memory checks)

    def __init__(self, game: str, mode: str, num_envs: int, num_levels: int, start_level: int,
                 seed: int, device: torch.device, num_threads: int = 0, **options):
        check(game, mode)
        super().__init__(task(game, mode), num_envs, seed, device, num_threads,
                         num_levels=num_levels, start_level=start_level, **options)
