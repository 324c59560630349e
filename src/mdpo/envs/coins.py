"""The spurious-colour toy of paper section 4.1: a coin to the left or right of the agent, on a red
or cyan background, as a batched pixel environment (one tensor op per step for all envs).

A level is one row of ``WIDTH`` cells drawn across a ``HEIGHT`` x ``WIDTH`` RGB frame: the agent
(a white pixel) starts in the middle, the coin (a yellow pixel) lies 1 to ``MAX_DISTANCE`` cells to
its left or right, and the whole background is red or cyan (the paper's figure 1). Actions: 0 left,
1 stay, 2 right (``STAY + side`` moves towards ``side``: +1 right, -1 left). Reaching the coin gives
reward 1 and ends the episode; after ``MAX_STEPS`` steps it ends with 0.
Envs reset automatically: the observation returned with ``done`` is the next level's first frame,
and every step is a real transition (``valid`` is always True).

Red means "coin on the right" and cyan "coin on the left" with probability ``agreement`` per level
(``AGREEMENTS`` names the three the paper talks about); otherwise the colour points the wrong way.
The colour fills the frame while the coin is one pixel, so on ``correlated`` levels the colour is
by far the easier cue: an agent trained there alone follows it (the shortcut is tempting).

Splits: ``train`` is ``env.agreement``; ``test`` reverses the colour/side relation (agreement
``1 - env.agreement``: ``anti`` for an agent trained on ``correlated``, ``mixed`` for ``mixed``),
so whatever the colour taught during training is wrong at test time. ``env.mode``,
``num_levels`` and ``start_level`` do not apply: every reset draws a fresh level.
"""

from __future__ import annotations

import torch

from mdpo.config import EnvConfig
from mdpo.envs.base import Step
from mdpo.errors import MdpoError

AGREEMENTS = {"correlated": 1.0, "mixed": 0.5, "anti": 0.0}
HEIGHT, WIDTH = 8, 16
START = WIDTH // 2  # the agent's first cell
MAX_DISTANCE = 5
MAX_STEPS = 10
STAY = 1
RED, CYAN = 0, 1
BACKGROUNDS = torch.tensor([[255, 0, 0], [0, 255, 255]], dtype=torch.uint8)  # indexed by RED, CYAN
AGENT_RGB = torch.tensor([255, 255, 255], dtype=torch.uint8)
COIN_RGB = torch.tensor([255, 255, 0], dtype=torch.uint8)


def parse_agreement(text: str) -> float:
    """'correlated', 'mixed', 'anti' or a probability in [0, 1]."""
    if text in AGREEMENTS:
        return AGREEMENTS[text]
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise MdpoError(f"bad agreement {text!r}: use {', '.join(AGREEMENTS)} or a probability in [0, 1]")
    return value


class CoinsEnv:
    """``num_envs`` coin levels whose colour agrees with the coin side with probability ``agreement``.

    ``coin_side`` and ``colour_side`` (+1 right, -1 left, per env) describe the current levels.
    """

    num_actions = 3
    obs_shape = (3, HEIGHT, WIDTH)
    obs_kind = "rgb"

    def __init__(self, num_envs: int, agreement: float, seed: int, device: torch.device):
        self.num_envs, self.agreement, self.device = num_envs, agreement, device
        self.generator = torch.Generator(device).manual_seed(seed)
        zeros = torch.zeros(num_envs, dtype=torch.long, device=device)
        self.agent, self.coin, self.coin_side, self.colour_side, self.t = (zeros.clone() for _ in range(5))
        self.palette = BACKGROUNDS.to(device)
        self.agent_rgb, self.coin_rgb = AGENT_RGB.to(device), COIN_RGB.to(device)
        self.rows = torch.arange(num_envs, device=device)

    def _uniform(self) -> torch.Tensor:
        return torch.rand(self.num_envs, generator=self.generator, device=self.device)

    def _new_levels(self, mask: torch.Tensor) -> None:
        """Draw fresh levels for the envs where ``mask`` holds (all envs draw, for determinism)."""
        side = torch.where(self._uniform() < 0.5, 1, -1)
        colour_side = torch.where(self._uniform() < self.agreement, side, -side)
        distance = torch.randint(1, MAX_DISTANCE + 1, (self.num_envs,), generator=self.generator,
                                 device=self.device)
        self.agent = torch.where(mask, START, self.agent)
        self.coin = torch.where(mask, START + side * distance, self.coin)
        self.coin_side = torch.where(mask, side, self.coin_side)
        self.colour_side = torch.where(mask, colour_side, self.colour_side)
        self.t = torch.where(mask, 0, self.t)

    def _render(self) -> torch.Tensor:
        colour = torch.where(self.colour_side > 0, RED, CYAN)
        frames = self.palette[colour][:, :, None, None].expand(-1, -1, HEIGHT, WIDTH).clone()
        row = HEIGHT // 2
        frames[self.rows, :, row, self.coin] = self.coin_rgb
        frames[self.rows, :, row, self.agent] = self.agent_rgb
        return frames

    def reset(self) -> torch.Tensor:
        self._new_levels(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        return self._render()

    def step(self, actions: torch.Tensor) -> Step:
        move = actions.to(self.device).long() - STAY
        self.agent = (self.agent + move).clamp(0, WIDTH - 1)
        self.t += 1
        reached = self.agent == self.coin
        done = reached | (self.t >= MAX_STEPS)
        self._new_levels(done)
        return Step(obs=self._render(), reward=reached.float(), done=done, valid=torch.ones_like(done))

    def close(self) -> None:
        pass


def make(cfg: EnvConfig, num_envs: int, seed: int, device: torch.device, split: str = "train") -> CoinsEnv:
    agreement = cfg.agreement if split == "train" else 1.0 - cfg.agreement
    return CoinsEnv(num_envs, agreement, seed, device)
