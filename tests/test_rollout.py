import pytest
import torch

from mdpo.rollout import gae


def test_gae_hand_computed_with_auto_reset_step():
    # t=1 ends an episode; t=2 is envpool's auto-reset step (not a transition, garbage value 9)
    rewards = torch.tensor([[1.0], [2.0], [0.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [9.0], [2.0]])
    dones = torch.tensor([[False], [True], [False], [False]])
    valids = torch.tensor([[True], [True], [False], [True]])
    adv, ret = gae(rewards, values, dones, valids, torch.tensor([4.0]), gamma=0.5, lam=0.5)
    # t=3: 3 + .5*4 - 2 = 3; t=2: masked -> 0; t=1: terminal: 2 - 1 = 1;
    # t=0: delta = 1 + .5*1 - .5 = 1, adv = 1 + .25*1 = 1.25
    assert adv[:, 0].tolist() == pytest.approx([1.25, 1.0, 0.0, 3.0])
    assert ret[[0, 1, 3], 0].tolist() == pytest.approx([1.75, 2.0, 5.0])


def test_gae_batched_over_agents_matches_single():
    g = torch.Generator().manual_seed(0)
    shape = (2, 5, 3)  # agents, time, envs
    rewards, values = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    dones = torch.rand(shape, generator=g) < 0.3
    valids = torch.ones(shape, dtype=torch.bool)
    nxt = torch.randn(2, 3, generator=g)
    adv, _ = gae(rewards, values, dones, valids, nxt, 0.99, 0.95)
    for k in range(2):
        single, _ = gae(rewards[k], values[k], dones[k], valids[k], nxt[k], 0.99, 0.95)
        assert torch.allclose(adv[k], single)
