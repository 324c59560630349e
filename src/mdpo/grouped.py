"""Batched cohort inference: the K agents' forward passes as one call.

The cohort runs as one network whose layers hold all K agents' weights: convolutions concatenated
along output channels and run with ``groups = K`` (agent k's channels see only agent k's weights),
dense layers as batched matmuls. The network code itself (``mdpo.nets``) is reused unchanged: the
grouped network is a copy of agent 0's module tree with its Conv2d and Linear layers swapped for
grouped ones, so any layout flag (channels_last) carries over. Its weights are a copy: ``refresh()``
after every optimizer step.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class GroupedConv2d(nn.Module):
    """K same-shaped convolutions as one: input (N, K*C_in, H, W) -> (N, K*C_out, H', W')."""

    def __init__(self, members: list[nn.Conv2d]):
        super().__init__()
        self.members = members  # a plain list: the agents' layers are not submodules of the copy
        first = members[0]
        self.stride, self.padding, self.dilation = first.stride, first.padding, first.dilation
        self.groups = first.groups * len(members)
        self.register_buffer("weight", torch.cat([m.weight.detach() for m in members]))
        self.register_buffer("bias", torch.cat([m.bias.detach() for m in members]))

    def refresh(self) -> None:
        self.weight.copy_(torch.cat([m.weight for m in self.members]))
        self.bias.copy_(torch.cat([m.bias for m in self.members]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class GroupedLinear(nn.Module):
    """K same-shaped linear layers as one batched matmul: (N, K*in) -> (N, K*out), agent-major."""

    def __init__(self, members: list[nn.Linear]):
        super().__init__()
        self.members = members
        self.register_buffer("weight_t", torch.stack([m.weight.detach().t() for m in members]))  # (K, in, out)
        self.register_buffer("bias", torch.stack([m.bias.detach() for m in members]).unsqueeze(1))  # (K, 1, out)

    def refresh(self) -> None:
        self.weight_t.copy_(torch.stack([m.weight.t() for m in self.members]))
        self.bias.copy_(torch.stack([m.bias for m in self.members]).unsqueeze(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, features = self.weight_t.shape[:2]
        per_agent = x.reshape(-1, k, features).transpose(0, 1)  # (K, N, in)
        out = torch.baddbmm(self.bias, per_agent, self.weight_t)  # (K, N, out)
        return out.transpose(0, 1).flatten(1)


GROUPED_LAYERS = {nn.Conv2d: GroupedConv2d, nn.Linear: GroupedLinear}


def _group_layers(template: nn.Module, members: list[nn.Module]) -> None:
    """Swap every Conv2d/Linear under ``template`` for the grouped layer of the members' same layers."""
    for name, child in template.named_children():
        peers = [getattr(member, name) for member in members]
        grouped = GROUPED_LAYERS.get(type(child))
        if grouped:
            setattr(template, name, grouped(peers))
        else:
            _group_layers(child, peers)


@torch.no_grad()
def grouped_network(agents: nn.ModuleList) -> nn.Module:
    """One network computing all agents at once: uint8 (N, K*C, H, W) -> (logits (N, K*A), values (N, K))."""
    template = copy.deepcopy(agents[0])
    template._compiled_call_impl = None  # a compiled agent's wrapper would call the original: run the copy eagerly
    _group_layers(template, list(agents))
    return template


class GroupedPolicy:
    """The cohort's forward pass on each agent's own frames: obs uint8 (K, N, C, H, W) ->
    (logits float32 (K, N, A), values float32 (K, N)), agent k on obs[k].

    ``batched`` (and K > 1) runs one grouped call; otherwise the agents run one after the other.
    """

    def __init__(self, agents: nn.ModuleList, batched: bool = True):
        self.agents = agents
        self.batched = batched and len(agents) > 1
        self.network = grouped_network(agents) if self.batched else None

    @torch.no_grad()
    def refresh(self) -> None:
        """Copy the agents' current weights into the grouped network (after they changed)."""
        if self.network is not None:
            for module in self.network.modules():
                if isinstance(module, (GroupedConv2d, GroupedLinear)):
                    module.refresh()

    @torch.no_grad()
    def __call__(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, n = obs.shape[:2]
        if not self.batched:
            outs = [agent(frames) for agent, frames in zip(self.agents, obs)]
            return torch.stack([logits for logits, _ in outs]), torch.stack([values for _, values in outs])
        logits, values = self.network(obs.transpose(0, 1).flatten(1, 2))
        return logits.view(n, k, -1).transpose(0, 1), values.view(n, k).t()

