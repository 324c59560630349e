"""A micro-batched update computes the same update as the whole-minibatch one."""

import copy

import pytest
import torch
from torch import nn

from mdpo.nets import ActorCritic
from mdpo.optimize import optimize
from mdpo.resolve import resolve
from mdpo.rollout import Batch

CASES = {
    "ppo": ("ppo", {}),
    "mdpo": ("mdpo", {}),
    "k3": ("mdpo", {"cohort.num_agents": 3}),
    "drac": ("drac", {"drac.augment": "conv"}),
}
# Measured worst case over these cases and chunk sizes (2 epochs x 2 minibatches of Adam): 5.2e-8 on
# parameters of magnitude up to 0.4, and 2.4e-7 on the stats: float32 round-off of summing a
# minibatch's gradients chunk by chunk. Chunks of the whole minibatch give exactly the same numbers.
TOLERANCE = 1e-6


def _setup(algo, overrides):
    cfg = resolve("smoke", algo, {"env.game": "coinrun", "ppo.num_minibatches": 2, "ppo.epochs": 2, **overrides})
    k = cfg.cohort.num_agents
    torch.manual_seed(0)
    agents = nn.ModuleList(ActorCritic((3, 16, 16), 5, hidden=32) for _ in range(k))
    g = torch.Generator().manual_seed(1)
    size = 48
    batch = Batch(
        obs=torch.randint(0, 256, (k, size, 3, 16, 16), generator=g, dtype=torch.uint8),
        actions=torch.randint(0, 5, (k, size), generator=g),
        logprobs=-1.6 + 0.3 * torch.randn(k, size, generator=g),
        values=torch.randn(k, size, generator=g),
        advantages=torch.randn(k, size, generator=g),
        returns=torch.randn(k, size, generator=g),
        valids=torch.rand(k, size, generator=g) > 0.2,  # masked steps, unevenly per chunk
    )
    return cfg, agents, batch


def _run(cfg, agents, batch, micro_batch):
    cfg = copy.deepcopy(cfg)
    cfg.perf.micro_batch = micro_batch
    agents = copy.deepcopy(agents)
    optimizer = torch.optim.Adam(agents.parameters(), lr=cfg.ppo.lr, eps=cfg.ppo.adam_eps)
    stats = optimize(agents, optimizer, batch, cfg, torch.Generator().manual_seed(2), cfg.cohort.alpha)
    return torch.cat([p.detach().flatten() for p in agents.parameters()]), stats.stacked()


@pytest.mark.parametrize("case", CASES)
def test_micro_batched_update_matches_whole_minibatch(case):
    cfg, agents, batch = _setup(*CASES[case])
    whole_params, whole_stats = _run(cfg, agents, batch, 0)
    before = torch.cat([p.detach().flatten() for p in agents.parameters()])
    assert (whole_params - before).abs().max() > 1e-4  # the update moved the parameters
    for micro_batch in (1, 7, 12):  # 24-frame minibatches: uneven and even chunks
        params, stats = _run(cfg, agents, batch, micro_batch)
        assert (params - whole_params).abs().max().item() < TOLERANCE, micro_batch
        torch.testing.assert_close(stats, whole_stats, rtol=1e-5, atol=1e-6)
    params, stats = _run(cfg, agents, batch, 24)
    assert torch.equal(params, whole_params) and torch.equal(stats, whole_stats)


def test_the_default_chunk_follows_the_device(monkeypatch):
    # a GPU holds whole minibatches; chunks there would only cut the update into small kernels
    assert resolve("paper", "mdpo", {"device": "cpu"}).perf.micro_batch == 128
    assert resolve("paper", "mdpo", {"device": "cuda"}).perf.micro_batch == 0
    assert resolve("paper", "mdpo", {"device": "cuda", "perf.micro_batch": 64}).perf.micro_batch == 64
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve("paper", "mdpo").perf.micro_batch == 0  # device auto, on a machine with CUDA
    assert resolve("smoke", "mdpo").perf.micro_batch == 128  # the smoke preset runs on the CPU
