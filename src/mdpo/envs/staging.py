"""A step's host arrays (an envpool-backed env's numpy outputs) onto the training device.

On CUDA the arrays go through pinned (page-locked) buffers, so each copy is an asynchronous DMA
instead of a synchronous copy from pageable memory, and reward, done and valid (with Atari's score and
game over) travel packed as one float32 copy instead of three (five). On the CPU the arrays become
tensors without a copy.
"""

from __future__ import annotations

import numpy as np
import torch

from mdpo.envs.base import Step


class DeviceStaging:
    """Turns host arrays into tensors on ``device``: ``obs`` for a reset, ``step`` for a step."""

    def __init__(self, device: torch.device):
        self.device = device
        self.pinned = device.type == "cuda"
        self.buffers: dict[str, torch.Tensor] = {}
        self.copied: torch.cuda.Event | None = None  # recorded after the last copies out of the buffers

    def obs(self, obs: np.ndarray) -> torch.Tensor:
        if not self.pinned:
            return torch.from_numpy(obs)
        self.wait_for_copies()
        return self.to_device(self.stage("obs", obs))[0]

    def step(self, obs: np.ndarray, reward: np.ndarray, done: np.ndarray, valid: np.ndarray,
             score: np.ndarray | None = None, game_over: np.ndarray | None = None) -> Step:
        """A Step of float32 reward (and score) and bool done and valid (and game_over) (N,), obs as the
        env gives it; ``score`` and ``game_over`` come together or not at all."""
        lives = score is not None
        if not self.pinned:
            step = Step(torch.from_numpy(obs), torch.from_numpy(reward.astype(np.float32)), torch.from_numpy(done),
                        torch.from_numpy(valid))
            if lives:
                step = step._replace(score=torch.from_numpy(score.astype(np.float32)),
                                     game_over=torch.from_numpy(game_over))
            return step
        self.wait_for_copies()
        packed = np.stack([reward, done, valid, *((score, game_over) if lives else ())]).astype(np.float32)
        obs, packed = self.to_device(self.stage("obs", obs), self.stage("packed", packed))
        step = Step(obs, packed[0], packed[1] > 0, packed[2] > 0)
        return step._replace(score=packed[3], game_over=packed[4] > 0) if lives else step

    def stage(self, name: str, array: np.ndarray) -> torch.Tensor:
        """``array`` copied into the pinned buffer ``name`` (made, or remade, to its shape and dtype)."""
        buffer = self.buffers.get(name)
        if buffer is None or buffer.shape != array.shape or buffer.numpy().dtype != array.dtype:
            buffer = self.buffers[name] = torch.empty(array.shape, dtype=torch.from_numpy(array).dtype, pin_memory=True)
        np.copyto(buffer.numpy(), array)
        return buffer

    def to_device(self, *buffers: torch.Tensor) -> list[torch.Tensor]:
        on_device = [buffer.to(self.device, non_blocking=True) for buffer in buffers]
        self.copied = torch.cuda.Event()
        self.copied.record()
        return on_device

    def wait_for_copies(self) -> None:
        """The buffers are about to be overwritten: the copies out of them must have finished (they
        normally have, since the training loop waits for the actions the last observations gave)."""
        if self.copied is not None and not self.copied.query():
            self.copied.synchronize()
