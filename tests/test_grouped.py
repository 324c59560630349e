"""Batched cohort inference gives the numbers of the agents run one after the other."""

import pytest
import torch
from torch import nn

from mdpo.grouped import GroupedPolicy
from mdpo.nets import ActorCritic
from mdpo.trainer import Trainer

# Measured: at most 1.5e-8 on logits and 6e-8 on values (grouped convolutions and batched matmuls
# sum in another order than the per-agent kernels).
TOLERANCE = 1e-6


def _agents(k, channels_last):
    torch.manual_seed(0)
    agents = nn.ModuleList(ActorCritic((3, 16, 16), 5, hidden=32) for _ in range(k))
    if channels_last:
        for agent in agents:
            agent.use_channels_last()
    return agents


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("channels_last", [False, True])
def test_batched_matches_sequential(k, channels_last):
    agents = _agents(k, channels_last)
    obs = torch.randint(0, 256, (k, 6, 3, 16, 16), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    logits, values = GroupedPolicy(agents)(obs)
    assert logits.shape == (k, 6, 5) and values.shape == (k, 6)
    assert logits.dtype == values.dtype == torch.float32
    with torch.no_grad():
        for i, agent in enumerate(agents):
            own_logits, own_values = agent(obs[i])
            assert (logits[i] - own_logits).abs().max() < TOLERANCE
            assert (values[i] - own_values).abs().max() < TOLERANCE


def test_compiled_agents_run_grouped_without_compiling():
    agents = _agents(2, True)
    obs = torch.randint(0, 256, (2, 4, 3, 16, 16), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    expected = GroupedPolicy(agents)(obs)
    for agent in agents:
        agent.compile()  # compiles lazily, on the first call of the agent itself
    for got, want in zip(GroupedPolicy(agents)(obs), expected):
        assert torch.equal(got, want)


def test_refresh_takes_new_weights():
    agents = _agents(2, True)
    policy = GroupedPolicy(agents)
    obs = torch.zeros(2, 3, 3, 16, 16, dtype=torch.uint8)
    before = policy(obs)[1]
    with torch.no_grad():
        agents[1].critic.bias += 1.0
    assert torch.equal(policy(obs)[1], before)  # a snapshot until refreshed
    policy.refresh()
    torch.testing.assert_close(policy(obs)[1], before + torch.tensor([[0.0], [1.0]]))


def test_heads_run_in_float32_under_bf16_autocast():
    # else the grouped network (collection) and the agents (update) round the logits each their own way
    agents = _agents(2, True)
    policy = GroupedPolicy(agents)
    seen = []
    for network in (agents[0], policy.network):
        for head in (network.actor, network.critic):
            head.register_forward_hook(lambda module, inputs, output: seen.append((inputs[0].dtype, output.dtype)))
    obs = torch.randint(0, 256, (2, 4, 3, 16, 16), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        agents[0](obs[0])
        policy(obs)
    assert seen == [(torch.float32, torch.float32)] * 4


def test_training_with_batched_inference_matches_sequential(tiny, tmp_path):
    runs = {}
    for batched in (False, True):
        trainer = Trainer(tiny("mdpo", **{"perf.batched_inference": batched}), tmp_path / str(batched))
        metrics = trainer.update()
        runs[batched] = (trainer.rollout.actions.clone(), metrics)
    assert torch.equal(runs[False][0], runs[True][0])  # the same sampled actions
    for key, value in runs[False][1].items():
        if key != "charts/SPS":
            assert runs[True][1][key] == pytest.approx(value, rel=1e-4, abs=1e-6, nan_ok=True), key
