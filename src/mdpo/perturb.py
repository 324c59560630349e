"""Perturbations that change how a frame looks but not what it means (paper section 5.3, E.4).

Pure functions of uint8 frames (N, 3, H, W) and a ``torch.Generator``: the same generator state
gives the same output, and every frame gets its own random draw. They return uint8 frames of the
same shape, so they can serve as augmentations (DrAC) as well as robustness probes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mdpo.errors import MdpoError

# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale
_LUMA = (0.299, 0.587, 0.114)


def _draw(shape: tuple[int, ...], generator: torch.Generator, device: torch.device,
          uniform: bool = False) -> torch.Tensor:
    draw = torch.rand if uniform else torch.randn
    return draw(shape, generator=generator, device=generator.device).to(device)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255.0).round().clamp(0, 255).to(torch.uint8)


def random_conv(frames: torch.Tensor, generator: torch.Generator, layers: int = 2, kernel: int = 3) -> torch.Tensor:
    """Each frame through its own stack of ``layers`` random 3->3 convolutions (weights ~ N(0, 1),
    no bias, reflect padding), then min-max rescaled per frame back to [0, 255]."""
    n, c, h, w = frames.shape
    x = frames.float().reshape(1, n * c, h, w) / 255.0
    pad = kernel // 2
    for _ in range(layers):
        weight = _draw((n * c, c, kernel, kernel), generator, frames.device)
        # a positive scale is undone by the min-max rescaling; it only keeps magnitudes in range
        weight = weight / math.sqrt(c * kernel * kernel)
        x = F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="reflect"), weight, groups=n)
    x = x.reshape(n, c, h, w)
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    high = x.amax(dim=(1, 2, 3), keepdim=True)
    return _to_uint8((x - low) / (high - low).clamp_min(1e-8))


def _grey(x: torch.Tensor) -> torch.Tensor:
    luma = torch.tensor(_LUMA, device=x.device).view(1, 3, 1, 1)
    return (x * luma).sum(1, keepdim=True)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (factor.view(-1, 1, 1, 1) * x + (1 - factor.view(-1, 1, 1, 1)) * other).clamp(0, 1)


def _rotate_hue(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Rotate colours about the grey axis by ``turns`` of a full circle (Rodrigues' formula)."""
    theta = 2 * math.pi * turns
    cos, sin = theta.cos().view(-1, 1, 1), theta.sin().view(-1, 1, 1)
    u = torch.full((3,), 1 / math.sqrt(3), device=x.device)
    cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]], device=x.device) / math.sqrt(3)
    rot = cos * torch.eye(3, device=x.device) + sin * cross + (1 - cos) * torch.outer(u, u)
    return torch.einsum("nij,njhw->nihw", rot, x).clamp(0, 1)


def color_jitter(frames: torch.Tensor, generator: torch.Generator, brightness: float = 0.4,
                 contrast: float = 0.4, saturation: float = 0.4, hue: float = 0.1) -> torch.Tensor:
    """Per frame, torchvision-style: brightness, contrast and saturation factors uniform in
    [max(0, 1 - s), 1 + s], then a hue rotation uniform in [-hue, hue] turns (hue <= 0.5).
    A strength of 0 leaves that property unchanged; the random draws do not depend on the
    strengths, so one generator state perturbs every strength in the same direction."""
    n = frames.shape[0]
    u = _draw((4, n), generator, frames.device, uniform=True) * 2 - 1  # in [-1, 1)

    def factor(strength: float, i: int) -> torch.Tensor:
        return (1 + strength * u[i]).clamp_min(0)

    x = frames.float() / 255.0
    x = _blend(x, torch.zeros_like(x), factor(brightness, 0))
    x = _blend(x, _grey(x).mean(dim=(1, 2, 3), keepdim=True), factor(contrast, 1))
    x = _blend(x, _grey(x), factor(saturation, 2))
    x = _rotate_hue(x, hue * u[3])
    return _to_uint8(x)


@dataclass(frozen=True)
class PerturbSpec:
    """Settings of every perturbation family."""

    layers: int = 2
    kernel: int = 3
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1

    def __post_init__(self):
        if self.layers < 1 or self.kernel < 1 or self.kernel % 2 == 0:
            raise MdpoError(f"random conv needs layers >= 1 and an odd kernel size, "
                            f"got {self.layers} and {self.kernel}")
        if min(self.brightness, self.contrast, self.saturation, self.hue) < 0 or self.hue > 0.5:
            raise MdpoError("jitter strengths must be >= 0 (hue at most 0.5)")


FAMILIES = ("conv", "jitter", "brightness", "contrast", "saturation", "hue")
JITTER_KEYS = ("brightness", "contrast", "saturation", "hue")


def perturb(family: str, frames: torch.Tensor, generator: torch.Generator, spec: PerturbSpec) -> torch.Tensor:
    """One family: random convolutions, all four jitters together, or one jitter alone."""
    if family == "conv":
        return random_conv(frames, generator, spec.layers, spec.kernel)
    if family == "jitter":
        return color_jitter(frames, generator, *(getattr(spec, k) for k in JITTER_KEYS))
    if family in JITTER_KEYS:
        return color_jitter(frames, generator, **{k: getattr(spec, k) if k == family else 0.0 for k in JITTER_KEYS})
    raise ValueError(f"unknown perturbation family {family!r}")
