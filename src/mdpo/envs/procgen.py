"""Procgen's 16 games through envpool's C++ port (Python >= 3.11 has no `procgen` wheels)."""

from __future__ import annotations

import ctypes
import os

import torch

from mdpo.envs.base import Step
from mdpo.envs.staging import DeviceStaging
from mdpo.errors import MdpoError

GAMES = (
    "bigfish", "bossfight", "caveflyer", "chaser", "climber", "coinrun", "dodgeball", "fruitbot",
    "heist", "jumper", "leaper", "maze", "miner", "ninja", "plunder", "starpilot",
)
MODES = ("easy", "hard")
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


_QT_LIBS = ("libicudata.so.56", "libicuuc.so.56", "libicui18n.so.56", "libQt5Core.so.5", "libQt5Gui.so.5")


def _load_envpool():
    """Import envpool's Procgen after making the Qt5 runtime it links against loadable.

    The PyQt5-Qt5 wheel carries the libraries; loading them RTLD_GLOBAL first needs no root.
    A system Qt5 (Debian's libqt5gui5) is used when the wheel is absent.
    """
    try:
        import PyQt5

        lib_dir = os.path.join(list(PyQt5.__path__)[0], "Qt5", "lib")
        for name in _QT_LIBS:
            ctypes.CDLL(os.path.join(lib_dir, name), mode=ctypes.RTLD_GLOBAL)
    except (ImportError, OSError):
        pass  # fall back to a system Qt5 on the loader path
    try:
        import envpool
    except ImportError as exc:
        raise MdpoError(f"envpool could not be imported ({exc}); install it with `pip install -e .`") from None
    return envpool


class ProcgenEnv:
    """``num_envs`` copies of one Procgen game; observations uint8 (N, 3, 64, 64).

    ``send`` then ``recv`` is ``step`` in two halves (envpool's asynchronous API): the envs step on
    envpool's threads in between, so several agents' envs can step at once (``base.step_all``).
    """

    num_actions = 15
    obs_shape = (3, 64, 64)
    obs_kind = "rgb"

    def __init__(self, game: str, mode: str, num_envs: int, num_levels: int, start_level: int,
                 seed: int, device: torch.device, num_threads: int = 0):
        check(game, mode)
        envpool = _load_envpool()
        self.num_envs = num_envs
        self.staging = DeviceStaging(device)
        threads = num_threads or min(num_envs, os.cpu_count() or 1)
        self._env = envpool.make(
            f"{game.capitalize()}{mode.capitalize()}-v0", env_type="gymnasium", num_envs=num_envs,
            num_levels=num_levels, start_level=start_level, seed=seed, num_threads=threads,
        )

    def reset(self) -> torch.Tensor:
        obs, _ = self._env.reset()
        return self.staging.obs(obs)

    def send(self, actions: torch.Tensor) -> None:
        self._env.send(actions.cpu().numpy())

    def recv(self) -> Step:
        obs, reward, terminated, truncated, info = self._env.recv(reset=False, return_info=True)
        return self.staging.step(obs, reward, terminated | truncated, info["elapsed_step"] > 0)

    def step(self, actions: torch.Tensor) -> Step:
        self.send(actions)
        return self.recv()

    def close(self) -> None:
        self._env.close()
