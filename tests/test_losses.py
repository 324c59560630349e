import math

import pytest
import torch

from mdpo.distill import DISTILL_LOSSES, forward_kl, kl
from mdpo.losses import entropy, masked_mean, normalize_advantages, ppo_clip_loss, spo_loss, value_loss


def test_ppo_clip_loss_hand_computed():
    logp = torch.log(torch.tensor([0.5, 0.5, 0.125]))
    old = torch.log(torch.tensor([0.25, 0.25, 0.25]))  # ratios 2, 2, 0.5
    adv = torch.tensor([1.0, -1.0, 1.0])
    # ratio 2, A=+1: max(-2, -1.2); A=-1: max(2, 1.2); ratio 0.5, A=+1: max(-0.5, -0.8)
    assert ppo_clip_loss(logp, old, adv, 0.2).tolist() == pytest.approx([-1.2, 2.0, -0.5])


def test_spo_loss_hand_computed():
    logp, old = torch.log(torch.tensor([0.5])), torch.log(torch.tensor([0.25]))
    # -(A r - |A| (r-1)^2 / (2 eps)) with r=2, A=1, eps=0.2 -> -(2 - 2.5)
    assert spo_loss(logp, old, torch.tensor([1.0]), 0.2).item() == pytest.approx(0.5)
    assert spo_loss(logp, old, torch.tensor([-1.0]), 0.2).item() == pytest.approx(4.5)


def test_value_loss_clipped_and_plain():
    v, old, ret = torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([2.0])
    # unclipped (1-2)^2 = 1; clipped value 0.2 -> (0.2-2)^2 = 3.24; 0.5 * max
    assert value_loss(v, old, ret, 0.2, clipped=True).item() == pytest.approx(1.62)
    assert value_loss(v, old, ret, 0.2, clipped=False).item() == pytest.approx(0.5)


def test_kl_hand_computed_and_direction():
    p = torch.log(torch.tensor([[0.5, 0.5]]))
    q = torch.log(torch.tensor([[0.25, 0.75]]))
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl(p, q).item() == pytest.approx(expected, rel=1e-6)
    # forward_kl(own, peer) is KL(peer || own), the paper's term
    assert forward_kl(q, p).item() == pytest.approx(expected, rel=1e-6)
    assert forward_kl(p, q).item() != pytest.approx(expected, rel=1e-3)
    assert DISTILL_LOSSES["kl"] is forward_kl


def test_kl_is_exact_for_near_deterministic_policies():
    # a peaked policy (q(a1) ~ 5e-8): from log-softmax the float32 KL matches float64
    own = torch.tensor([[0.0, -16.8]])
    peer = torch.tensor([[0.0, -8.0]])
    p, q = torch.softmax(peer.double(), -1), torch.softmax(own.double(), -1)
    expected = (p * (p.log() - q.log())).sum().item()
    assert kl(peer, own).item() == pytest.approx(expected, rel=1e-3)
    assert kl(own, own).item() == 0.0


def test_entropy_uniform():
    assert entropy(torch.zeros(1, 15)).item() == pytest.approx(math.log(15))


def test_masked_helpers_ignore_masked_entries():
    x = torch.tensor([1.0, 3.0, 100.0])
    mask = torch.tensor([True, True, False])
    assert masked_mean(x, mask).item() == pytest.approx(2.0)
    normed = normalize_advantages(x, mask)
    assert normed[:2].tolist() == pytest.approx([-0.7071067, 0.7071067], rel=1e-5)  # unbiased std
