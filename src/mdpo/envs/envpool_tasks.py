"""Any envpool task with discrete actions (Procgen, Atari ``Pong-v5``, ``Breakout-v5``, classic control),
with envpool's own preprocessing (Atari: 84x84 grey, 4 stacked frames, frame skip 4, 30 no-op starts).

Atari learns as CleanRL's ``ppo_atari_envpool.py`` does: a lost life ends the learner's episode and
rewards are clipped to their sign, while episode statistics count the game's own rewards until the
game is over. envpool resets on the step after a done, a lost life's too: that step is not a transition.
Its tasks cannot reseed their resets, so only Procgen, which draws levels itself, has a train/test split.
``env.kwargs`` set more of a task's config fields (``episodic_life=false``, ``max_episode_steps=1000``).
"""

from __future__ import annotations

import ctypes
import os

import torch

from mdpo.envs.base import NextStepResets, Step, obs_kind, stored
from mdpo.envs.staging import DeviceStaging
from mdpo.errors import MdpoError

ATARI_OPTIONS = {"episodic_life": True, "reward_clip": True}  # set where a task has them (CleanRL's settings)
# config fields mdpo sets itself, and the flag that sets each
SET_BY_MDPO = {"num_envs": "env.num_envs", "seed": "seed", "num_threads": "env.num_threads"}

_QT_LIBS = ("libicudata.so.56", "libicuuc.so.56", "libicui18n.so.56", "libQt5Core.so.5", "libQt5Gui.so.5")


def load_envpool():
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


def tasks() -> list[str]:
    return list(load_envpool().list_all_envs())


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


def check_kwargs(task: str, kwargs: dict, set_by_mdpo: dict[str, str] = SET_BY_MDPO) -> None:
    """One-line errors for ``env.kwargs`` that ``task``'s config has no field for, or that mdpo sets itself."""
    fields = load_envpool().make_spec(task).config._fields
    for key in kwargs:
        if key in set_by_mdpo:
            raise MdpoError(f"env.kwargs {key}: mdpo sets it from --{set_by_mdpo[key]}")
        if key not in fields:
            raise MdpoError(f"envpool's {task} takes no env.kwargs {key!r}; its config fields: "
                            f"{', '.join(f for f in fields if f not in set_by_mdpo)}")


def spec_of(task: str, kwargs: dict | None = None) -> tuple[tuple[int, ...], int, str]:
    """(obs_shape, action count, obs kind) of ``task`` with ``kwargs``, read from envpool's spec."""
    check_kwargs(task, kwargs or {})
    try:
        spec = load_envpool().make_spec(task, **(kwargs or {}))
    except TypeError:  # the keys are checked: a value of the wrong type
        raise MdpoError(f"env.kwargs {kwargs}: a value has the wrong type for envpool's {task}") from None
    space = spec.observation_space
    shape, actions = spaces_of(task, space, spec.action_space)
    return shape, actions, obs_kind(shape, space.dtype)


class EnvpoolEnv:
    """``num_envs`` copies of envpool task ``task`` (``options``: more of its config fields, e.g. Procgen's
    levels; they override the Atari settings of ``ATARI_OPTIONS``).

    ``send`` then ``recv`` is ``step`` in two halves (envpool's asynchronous API): the envs step on
    envpool's threads in between, so several agents' envs can step at once (``base.step_all``).
    """

    def __init__(self, task: str, num_envs: int, seed: int, device: torch.device, num_threads: int = 0,
                 **options):
        envpool = load_envpool()
        lives = {k: v for k, v in ATARI_OPTIONS.items() if k in envpool.make_spec(task).config._fields}
        self._env = envpool.make(task, env_type="gymnasium", num_envs=num_envs, seed=seed,
                                 num_threads=num_threads or min(num_envs, os.cpu_count() or 1), **{**lives, **options})
        space = self._env.observation_space
        self.obs_shape, self.num_actions = spaces_of(task, space, self._env.action_space)
        self.obs_kind = obs_kind(self.obs_shape, space.dtype)
        self.num_envs, self.device, self.lives = num_envs, device, bool(lives)
        self.staging = DeviceStaging(device)
        self.resets = NextStepResets(num_envs)

    def reset(self) -> torch.Tensor:
        obs, _ = self._env.reset()
        self.resets.start()
        return self.staging.obs(stored(obs))

    def send(self, actions: torch.Tensor) -> None:
        self._env.send(actions.cpu().numpy())

    def recv(self) -> Step:
        obs, reward, terminated, truncated, info = self._env.recv(reset=False, return_info=True)
        done = terminated | truncated
        if not self.lives:
            return self.staging.step(stored(obs), reward, done, self.resets.valid(done))
        game_over = info["terminated"].astype(bool) | truncated
        return self.staging.step(stored(obs), reward, done, self.resets.valid(done), info["reward"], game_over)

    def step(self, actions: torch.Tensor) -> Step:
        self.send(actions)
        return self.recv()

    def close(self) -> None:
        self._env.close()
