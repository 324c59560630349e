import math

import pytest
import torch

from mdpo.distill import (
    DISTILL_LOSSES,
    DISTILL_REWARDS,
    cross_entropy,
    jensen_shannon,
    kl,
    logit_mse,
    mean_policy_logits,
    reverse_kl,
    symmetric_kl,
    with_temperature,
)

P = torch.log(torch.tensor([[0.5, 0.5]]))
Q = torch.log(torch.tensor([[0.25, 0.75]]))
KL_PQ = 0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75)
KL_QP = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)


def test_hand_computed_values():
    assert reverse_kl(Q, P).item() == pytest.approx(KL_QP, rel=1e-6)  # KL(own || peer)
    assert symmetric_kl(Q, P).item() == pytest.approx(0.5 * (KL_PQ + KL_QP), rel=1e-6)
    js = 0.5 * (0.5 * math.log(0.5 / 0.375) + 0.5 * math.log(0.5 / 0.625)) \
        + 0.5 * (0.25 * math.log(0.25 / 0.375) + 0.75 * math.log(0.75 / 0.625))
    assert jensen_shannon(Q, P).item() == pytest.approx(js, rel=1e-5)
    assert logit_mse(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 4.0]])).item() == pytest.approx(5.0)
    assert cross_entropy(P, Q).item() == pytest.approx(-(0.5 * math.log(0.25) + 0.5 * math.log(0.75)), rel=1e-6)


@pytest.mark.parametrize("name", ["kl", "reverse_kl", "symmetric_kl", "js", "mse"])
def test_zero_at_equality_and_positive_elsewhere(name):
    fn = DISTILL_LOSSES[name]
    x = torch.randn(4, 15, generator=torch.Generator().manual_seed(0))
    y = torch.randn(4, 15, generator=torch.Generator().manual_seed(1))
    assert fn(x, x).abs().max().item() < 1e-6
    assert (fn(x, y) > 0).all()


def test_symmetry_where_it_should_hold():
    assert symmetric_kl(P, Q).item() == pytest.approx(symmetric_kl(Q, P).item())
    assert jensen_shannon(P, Q).item() == pytest.approx(jensen_shannon(Q, P).item())
    assert kl(P, Q).item() != pytest.approx(kl(Q, P).item(), rel=1e-2)


def test_js_bounded_by_ln2():
    a = torch.tensor([[30.0, -30.0]])
    b = torch.tensor([[-30.0, 30.0]])
    js = jensen_shannon(a, b).item()
    assert js <= math.log(2) + 1e-6 and js == pytest.approx(math.log(2), rel=1e-4)


def test_temperature_softens_and_rescales():
    own, peer = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.0, 1.0, 0.5]])
    fn = DISTILL_LOSSES["kl"]
    assert with_temperature(fn, own, peer, 2.0).item() == pytest.approx(4 * fn(own / 2, peer / 2).item())
    assert with_temperature(fn, own, peer, 1.0).item() == pytest.approx(fn(own, peer).item())


def test_mean_policy_logits_is_the_average_policy():
    peers = torch.stack([P, Q])
    assert torch.softmax(mean_policy_logits(peers), -1)[0].tolist() == pytest.approx([0.375, 0.625])


def test_eerd_loss_and_reward():
    # loss H^x(own || peer); reward E_{a~own} log peer(a): minus that cross-entropy
    assert DISTILL_LOSSES["eerd"](Q, P).item() == pytest.approx(cross_entropy(Q, P).item())
    assert DISTILL_REWARDS["eerd"](Q, P).item() == pytest.approx(-cross_entropy(Q, P).item())
