import pytest
import torch
from torch import nn

from mdpo.bound import bound_estimates, total_variation
from mdpo.nets import ActorCritic


def _frames(*shape, seed=0):
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _agents(seeds):
    nets = []
    for s in seeds:
        torch.manual_seed(s)
        net = ActorCritic((3, 16, 16), 5, hidden=16)
        nn.init.normal_(net.actor.weight, std=1.0)  # a policy that is far from uniform
        nets.append(net)
    return nn.ModuleList(nets)


def test_total_variation_hand_computed():
    p = torch.log(torch.tensor([[0.5, 0.5]]))
    q = torch.log(torch.tensor([[0.25, 0.75]]))
    assert total_variation(p, q).item() == pytest.approx(0.25)


def test_zero_for_identical_peers_and_identity_perturbation():
    agents = _agents([0, 0])  # identical peers
    train, test = _frames(2, 8, 3, 16, 16), _frames(8, 3, 16, 16, seed=1)
    out = bound_estimates(agents, train, test, torch.Generator().manual_seed(0), lambda x, g: x)
    assert out["bound/peer_tv"] == pytest.approx(0.0, abs=1e-7)
    for key in ("robust_tv_train", "robust_kl_train", "robust_tv_test", "robust_kl_test"):
        assert out[f"bound/{key}"] == pytest.approx(0.0, abs=1e-6), key


def test_positive_for_distinct_peers_and_random_convolutions():
    agents = _agents([0, 1])
    out = bound_estimates(agents, _frames(2, 8, 3, 16, 16), _frames(8, 3, 16, 16, seed=1),
                          torch.Generator().manual_seed(0))
    assert out["bound/peer_tv"] > 0.01
    assert out["bound/robust_kl_test"] > 0 and out["bound/robust_tv_train/agent1"] > 0
