"""Augmentations for DrAC: uint8 frames (N, C, H, W) + generator -> uint8 frames, one draw per frame."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from mdpo.perturb import color_jitter, random_conv


def random_shift(frames: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop of the frame padded by ``pad`` pixels (replicate), back to the original size."""
    n, c, h, w = frames.shape
    padded = F.pad(frames.float(), (pad, pad, pad, pad), mode="replicate")
    dx, dy = (torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=generator.device)
              .to(frames.device).unbind(0))
    rows = (torch.arange(h, device=frames.device)[None, :] + dy[:, None])  # (n, h)
    cols = (torch.arange(w, device=frames.device)[None, :] + dx[:, None])  # (n, w)
    idx_n = torch.arange(n, device=frames.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]  # (n, h, w, c)
    return out.permute(0, 3, 1, 2).round().to(torch.uint8)


AUGMENTATIONS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "crop": random_shift,
    "conv": random_conv,
    "jitter": color_jitter,
    "identity": lambda frames, generator: frames,
}
