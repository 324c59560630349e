"""Actor-critics: an encoder from ``ENCODERS`` (chosen by the observation unless named) and two heads.

- ``impala``: the IMPALA-CNN (Espeholt et al. 2018) of Cobbe et al. 2020 and the paper; Procgen frames.
- ``nature``: the Nature-DQN CNN (Mnih et al. 2015); Atari's stacked 84x84 frames.
- ``grid``: one 3x3 convolution (MinAtar's network); small symbolic grids (MinAtar, MiniGrid).
- ``pooled``: a 2x2 convolution of 32 and 2x2 average pooling (Pgx's MinAtar PPO); the same grids.
- ``mlp``: two tanh layers; vector observations (CartPole).

Pixel encoders (impala, nature) scale uint8 frames to [0, 1]; grid, pooled and mlp take the values as they are
(MinAtar's 0/1 channels, MiniGrid's object codes, CartPole's floats).

``build_agents`` makes a cohort's networks for a checkpoint's spec; ``sample_actions`` draws their actions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from mdpo.errors import MdpoError

if TYPE_CHECKING:  # for an annotation only
    from mdpo.config import Config


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

    def __init__(self, obs_shape: tuple[int, ...], width: int = 1, hidden: int = 256):
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


class ConvEncoder(nn.Module):
    """A plain conv stack -> flatten -> dense layer with ReLUs; ``convs`` are (channels, kernel, stride)
    with channels times ``width``, unpadded, or with ``same`` (stride 1) zero-padded to keep height and width;
    ``pool`` > 1 average-pools the last convolution's output; input values are multiplied by ``scale``."""

    def __init__(self, obs_shape: tuple[int, ...], convs: tuple, width: int, hidden: int, scale: float,
                 same: bool = False, pool: int = 1):
        super().__init__()
        channels, height, wide = obs_shape
        layers: list[nn.Module] = []
        for out, kernel, stride in convs:
            if same:  # as TensorFlow's 'same': the odd pixel of an even kernel's padding goes after
                layers.append(nn.ZeroPad2d(((kernel - 1) // 2, kernel // 2) * 2))
                height, wide = height + kernel - 1, wide + kernel - 1
            layers += [nn.Conv2d(channels, out * width, kernel, stride), nn.ReLU()]
            channels = out * width
            height, wide = (height - kernel) // stride + 1, (wide - kernel) // stride + 1
        if pool > 1:
            layers.append(nn.AvgPool2d(pool))
            height, wide = height // pool, wide // pool
        if height < 1 or wide < 1:
            raise MdpoError(f"observations of shape {tuple(obs_shape)} are too small for this encoder")
        self.stages = nn.Sequential(*layers)
        self.fc = nn.Linear(channels * height * wide, hidden)
        self.scale = scale
        self.channels_last = False

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            obs = obs.contiguous(memory_format=torch.channels_last)
        x = self.stages(obs.float() * self.scale)
        return torch.relu(self.fc(x.flatten(1)))


def nature_encoder(obs_shape: tuple[int, ...], width: int = 1, hidden: int = 512) -> ConvEncoder:
    return ConvEncoder(obs_shape, ((32, 8, 4), (64, 4, 2), (64, 3, 1)), width, hidden, 1 / 255)


def grid_encoder(obs_shape: tuple[int, ...], width: int = 1, hidden: int = 256) -> ConvEncoder:
    """MinAtar's network (Young & Tian 2019): one 3x3 convolution of 16 channels, then the dense layer."""
    return ConvEncoder(obs_shape, ((16, 3, 1),), width, hidden, 1.0)


def pooled_encoder(obs_shape: tuple[int, ...], width: int = 1, hidden: int = 64) -> ConvEncoder:
    """Pgx's MinAtar PPO network: a 2x2 convolution of 32 channels ('same' padding), 2x2 average pooling,
    then the dense layer (64 units there)."""
    return ConvEncoder(obs_shape, ((32, 2, 1),), width, hidden, 1.0, same=True, pool=2)


class MlpEncoder(nn.Module):
    """Vector observations (N, D) -> two tanh layers of ``hidden * width`` units (orthogonal, gain sqrt 2)."""

    def __init__(self, obs_shape: tuple[int, ...], width: int = 1, hidden: int = 64):
        super().__init__()
        (size,) = obs_shape
        units = hidden * width
        self.fc0 = _orthogonal(nn.Linear(size, units), 2**0.5)
        self.fc1 = _orthogonal(nn.Linear(units, hidden), 2**0.5)
        self.channels_last = False  # no images: the layout flag changes nothing

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc1(torch.tanh(self.fc0(obs.float()))))


def _orthogonal(layer: nn.Linear, std: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.zeros_(layer.bias)
    return layer


# name -> builder(obs_shape, width, hidden) of a module mapping observations (N, *obs_shape) to (N, hidden)
ENCODERS = {"impala": ImpalaEncoder, "nature": nature_encoder, "grid": grid_encoder, "pooled": pooled_encoder,
            "mlp": MlpEncoder}
ENCODER_FOR_KIND = {"rgb": "impala", "pixels": "nature", "grid": "grid", "vector": "mlp"}  # net.encoder=auto


def choose_encoder(obs_kind: str, name: str = "auto") -> str:
    """``name``, or for ``auto`` the encoder for this kind of observation (see ``mdpo.envs.base.OBS_KINDS``)."""
    return ENCODER_FOR_KIND[obs_kind] if name == "auto" else name


def lecun_normal(module: nn.Module) -> nn.Module:
    """Every convolution and dense layer of ``module`` initialised as Haiku and Flax do by default (and so
    JAX codes such as PureJaxRL and Pgx): truncated normal (at 2 std) of std 1/sqrt(fan_in), zero biases."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            std = layer.weight[0].numel() ** -0.5 / 0.87962566  # the truncation's std is then 1/sqrt(fan_in)
            nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(layer.bias)
    return module


def glorot_uniform_encoder(module: nn.Module) -> nn.Module:
    """The encoder's convolutions and dense layers initialised as TensorFlow 1 does by default, and so
    openai/baselines' IMPALA CNN that the Procgen authors trained: Glorot uniform, limit
    sqrt(6 / (fan_in + fan_out)), zero biases. The heads stay orthogonal, as baselines' are."""
    for layer in module.encoder.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return module


# net.init -> what it does to a freshly built actor-critic: "cleanrl" keeps CleanRL's (heads orthogonal, actor
# std 0.01, critic 1; tanh layers gain sqrt 2; convolutions and the encoders' dense layers PyTorch's default)
INITS = {"cleanrl": lambda module: module, "lecun": lecun_normal, "glorot": glorot_uniform_encoder}


def head(hidden: int, outputs: int, std: float, layers: int = 0) -> nn.Module:
    """A linear output layer (orthogonal, ``std``), after ``layers`` tanh layers of ``hidden`` units
    (orthogonal, gain sqrt 2) where ``layers`` > 0."""
    out = _orthogonal(nn.Linear(hidden, outputs), std)
    if not layers:
        return out  # a bare Linear: the layout of every checkpoint saved before heads had layers
    tanh_layers = [m for _ in range(layers) for m in (_orthogonal(nn.Linear(hidden, hidden), 2**0.5), nn.Tanh())]
    return nn.Sequential(*tanh_layers, out)


class ActorCritic(nn.Module):
    """Shared encoder, policy head and value head; each head is one linear layer, or ``head_layers`` tanh
    layers and then it (separate actor and critic branches); weights initialised as ``INITS[init]`` says."""

    def __init__(self, obs_shape: tuple[int, ...], num_actions: int, width: int = 1, hidden: int = 256,
                 encoder: str = "impala", head_layers: int = 0, init: str = "cleanrl"):
        super().__init__()
        if (encoder == "mlp") != (len(obs_shape) == 1) or len(obs_shape) not in (1, 3):
            raise MdpoError(f"net.encoder={encoder} does not take observations of shape {tuple(obs_shape)}")
        self.encoder = ENCODERS[encoder](obs_shape, width, hidden)
        self.actor = head(hidden, num_actions, 0.01, head_layers)
        self.critic = head(hidden, 1, 1.0, head_layers)
        INITS[init](self)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns float32 (logits (N, A), value (N,)). Under autocast the heads still run in float32:
        in bf16 the grouped network of collection (``mdpo.grouped``) and the agents of the update would
        round the logits differently, and the first epoch's ratio would not start at 1."""
        features = self.encoder(obs).float()
        with torch.autocast(features.device.type, enabled=False):
            return self.actor(features), self.critic(features).squeeze(-1)

    def use_channels_last(self) -> "ActorCritic":
        self.encoder.channels_last = True
        return self.to(memory_format=torch.channels_last)


def observation_kind(spec: dict) -> str:
    """The kind of observation (``mdpo.envs.base.OBS_KINDS``) of a checkpoint's "spec"; one saved before
    kinds were recorded holds colour frames (Procgen or the coins toy)."""
    return spec.get("obs_kind", "rgb")


def build_agents(cfg: Config, spec: dict, device: torch.device) -> nn.ModuleList:
    """The cohort's networks for observations and actions as a checkpoint's ``spec`` gives them,
    initialised from ``cfg.seed``, laid out as ``cfg.perf`` asks."""
    torch.manual_seed(cfg.seed)
    encoder = choose_encoder(observation_kind(spec), cfg.net.encoder)
    agents = nn.ModuleList(
        ActorCritic(tuple(spec["obs_shape"]), spec["num_actions"], cfg.net.width, cfg.net.hidden, encoder,
                    cfg.net.head_layers, cfg.net.init)
        for _ in range(cfg.cohort.num_agents)
    ).to(device)
    for agent in agents:
        if cfg.perf.channels_last:
            agent.use_channels_last()
        if cfg.perf.compile:
            agent.compile()
    return agents


def sample_actions(logits: torch.Tensor, generator: torch.Generator | None,
                   greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Actions (int64) and their log-probabilities under ``logits`` (..., A), one draw per row.

    A draw is ``torch.multinomial``'s own for one sample (argmax of p / q, q ~ Exp(1) from
    ``generator``): the same actions from the same generator state, without the host sync in which
    multinomial checks its probabilities, and for any number of leading dims (all agents at once).
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    if greedy:
        actions = logp.argmax(-1)
    else:
        probs = logp.exp()
        actions = (probs / torch.empty_like(probs).exponential_(generator=generator)).argmax(-1)
    return actions, logp.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
