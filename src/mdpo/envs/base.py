"""The small interface every vectorized environment implements."""

from __future__ import annotations

from typing import Iterator, NamedTuple, Protocol, Sequence

import numpy as np
import torch

# What an observation is, which decides the encoder (``mdpo.nets.ENCODER_FOR_KIND``) and which analyses apply:
#   rgb     uint8 (3, H, W) colour frames (Procgen, the coins toy): perturbations and DrAC apply
#   pixels  other uint8 frames, e.g. Atari's stack of 4 grey 84x84 frames
#   grid    small symbolic images: MinAtar's 0/1 channels, MiniGrid's object codes (uint8)
#   vector  float32 (D,) (CartPole)
OBS_KINDS = ("rgb", "pixels", "grid", "vector")
SMALL_GRID = 16  # images up to this height and width hold symbols, not pixels


class Step(NamedTuple):
    """One vectorized step; all tensors live on the training device.

    ``valid`` is False on steps that are not transitions: the auto-reset step of envpool and of
    Gymnasium's default (next-step) autoreset, the step after ``done``: action ignored, reward 0,
    first frame of the next level. Such steps are masked out of losses, GAE and episode statistics.
    ``score`` and ``game_over`` are what episode statistics count where they differ from what the
    learner sees (Atari's clipped rewards and life losses); None means ``reward`` and ``done``.
    """

    obs: torch.Tensor  # (N, *obs_shape): observation after the step
    reward: torch.Tensor  # float32 (N,)
    done: torch.Tensor  # bool (N,): the episode ended with this transition
    valid: torch.Tensor  # bool (N,): a real transition
    score: torch.Tensor | None = None  # float32 (N,): the game's own reward
    game_over: torch.Tensor | None = None  # bool (N,): the game (not just a life) ended


class VecEnv(Protocol):
    """An env may also offer ``send(actions)`` and ``recv() -> Step``, ``step`` in two halves between
    which it steps on its own threads (envpool's asynchronous API); ``step_all`` uses them."""

    num_envs: int
    num_actions: int
    obs_shape: tuple[int, ...]  # (C, H, W) images or (D,) vectors
    obs_kind: str  # one of OBS_KINDS

    def reset(self) -> torch.Tensor:
        """Start every env; returns the first observations (N, *obs_shape)."""

    def step(self, actions: torch.Tensor) -> Step:
        """Apply one action per env (int64 (N,) on any device)."""

    def close(self) -> None: ...


def obs_kind(shape: tuple[int, ...], dtype: np.dtype) -> str:
    """The kind of a (C, H, W) or (D,) observation of ``dtype`` (see ``OBS_KINDS``)."""
    if len(shape) == 1:
        return "vector"
    if max(shape[1:]) <= SMALL_GRID or np.dtype(dtype) == np.bool_:
        return "grid"
    return "rgb" if shape[0] == 3 else "pixels"


def stored(array: np.ndarray) -> np.ndarray:
    """Observations in the dtype the rollout stores: images uint8 (bool as 0/1), vectors float32."""
    array = np.asarray(array)
    if array.dtype == np.bool_:
        return array.view(np.uint8)
    return array if array.dtype == np.uint8 else array.astype(np.float32, copy=False)


def obs_tensor(array: np.ndarray, device: torch.device, channels_first: bool = True) -> torch.Tensor:
    """A batch of observations as the rollout stores them: images uint8 (N, C, H, W) (bool as 0/1,
    ``channels_first=False`` for HWC input), vectors float32 (N, D)."""
    x = torch.from_numpy(stored(array))
    if x.ndim == 4 and not channels_first:
        x = x.permute(0, 3, 1, 2)
    return x.to(device, non_blocking=True).contiguous()


class NextStepResets:
    """Validity under next-step autoreset (envpool's, and Gymnasium's default): the step after a
    ``done`` only resets that env (its action is ignored), so it is not a transition."""

    def __init__(self, num_envs: int):
        self.resetting = np.zeros(num_envs, dtype=bool)

    def start(self) -> None:
        self.resetting[:] = False

    def valid(self, done: np.ndarray) -> np.ndarray:
        valid = ~self.resetting
        self.resetting = np.asarray(done, dtype=bool).copy()
        return valid


def step_all(envs: Sequence[VecEnv], actions: Sequence[torch.Tensor]) -> Iterator[Step]:
    """Step every env with its row of ``actions``, yielding the Steps in order. Envs with ``send``/``recv``
    all get their actions first and step side by side; the caller handles one env's Step while the
    next ones may still be stepping."""
    for env, row in zip(envs, actions):
        if hasattr(env, "send"):
            env.send(row)
    for env, row in zip(envs, actions):
        yield env.recv() if hasattr(env, "send") else env.step(row)
