"""IMPALA-CNN actor-critic (Espeholt et al. 2018), as used by Cobbe et al. 2020 and the paper."""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(torch.relu(self.conv0(torch.relu(x))))


class ConvStage(nn.Module):
    """conv3x3 -> maxpool(3, stride 2) -> 2 residual blocks; halves height and width."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.res0 = ResidualBlock(out_channels)
        self.res1 = ResidualBlock(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res1(self.res0(self.pool(self.conv(x))))


class ImpalaEncoder(nn.Module):
    """uint8 frames (N, C, H, W) -> features (N, hidden). Widths 16/32/32 times ``width``."""

    def __init__(self, obs_shape: tuple[int, int, int], width: int = 1, hidden: int = 256):
        super().__init__()
        channels, height, wide = obs_shape
        stages = []
        for out in (16 * width, 32 * width, 32 * width):
            stages.append(ConvStage(channels, out))
            channels, height, wide = out, (height + 1) // 2, (wide + 1) // 2
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(channels * height * wide, hidden)
        self.channels_last = False

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            obs = obs.contiguous(memory_format=torch.channels_last)  # permute the uint8 frames, not 4x the floats
        x = self.stages(obs.float() / 255.0)
        return torch.relu(self.fc(torch.relu(x.flatten(1))))


def _orthogonal(layer: nn.Linear, std: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.zeros_(layer.bias)
    return layer


class ActorCritic(nn.Module):
    """Shared encoder, linear policy head (orthogonal, std 0.01) and value head (std 1)."""

    def __init__(self, obs_shape: tuple[int, int, int], num_actions: int, width: int = 1, hidden: int = 256):
        super().__init__()
        self.encoder = ImpalaEncoder(obs_shape, width, hidden)
        self.actor = _orthogonal(nn.Linear(hidden, num_actions), 0.01)
        self.critic = _orthogonal(nn.Linear(hidden, 1), 1.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns float32 (logits (N, A), value (N,)). Under autocast the heads still run in float32:
        in bf16 the grouped network of collection (``mdpo.cohort``) and the agents of the update would
        round the logits differently, and the first epoch's ratio would not start at 1."""
        features = self.encoder(obs).float()
        with torch.autocast(features.device.type, enabled=False):
            return self.actor(features), self.critic(features).squeeze(-1)

    def use_channels_last(self) -> "ActorCritic":
        self.encoder.channels_last = True
        return self.to(memory_format=torch.channels_last)
