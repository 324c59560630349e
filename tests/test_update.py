import pytest
import torch
from torch import nn

from mdpo.augment import AUGMENTATIONS
from mdpo.nets import ActorCritic
from mdpo.optimize import LossStats, cohort_loss, drac_term, minibatch_step
from mdpo.resolve import resolve
from mdpo.rollout import Batch


def _cohort(k=2):
    torch.manual_seed(0)
    return nn.ModuleList(ActorCritic((3, 8, 8), 5, hidden=16) for _ in range(k))


def _minibatch(k=2, m=6, mask_agents=()):
    g = torch.Generator().manual_seed(1)
    valids = torch.ones(k, m, dtype=torch.bool)
    for i in mask_agents:
        valids[i] = False
    return Batch(
        obs=torch.randint(0, 256, (k, m, 3, 8, 8), generator=g, dtype=torch.uint8),
        actions=torch.randint(0, 5, (k, m), generator=g),
        logprobs=torch.full((k, m), -1.6),
        values=torch.zeros(k, m),
        advantages=torch.zeros(k, m),
        returns=torch.zeros(k, m),
        valids=valids,
    )


def _grad_norm(module):
    return sum(p.grad.abs().sum().item() for p in module.parameters() if p.grad is not None)


@pytest.mark.parametrize("detach", [False, True])
def test_distillation_gradient_reaches_peer_unless_detached(detach):
    # Only agent 0's minibatch is valid, and only the KL term is on: the loss is
    # alpha * KL(pi_1(s_0) || pi_0(s_0)) / 2. Agent 1 gets gradient only through being the peer.
    cfg = resolve("smoke", "mdpo", {"ppo.vf_coef": 0.0, "ppo.ent_coef": 0.0, "cohort.detach_peer": detach,
                                     "env.game": "coinrun"})
    agents = _cohort()
    loss, stats = cohort_loss(agents, _minibatch(mask_agents=(1,)), cfg, cfg.cohort.alpha)
    loss.backward()
    assert stats.distill[0] > 0  # the KL itself (distinct random inits)
    assert _grad_norm(agents[0]) > 0
    if detach:
        assert _grad_norm(agents[1]) == 0
    else:
        assert _grad_norm(agents[1]) > 0


def test_cohort_loss_is_mean_of_agent_losses_plus_alpha_kl():
    cfg0 = resolve("smoke", "mdpo", {"cohort.alpha": 0.0})
    cfg1 = resolve("smoke", "mdpo", {"cohort.alpha": 1.0})
    agents, mb = _cohort(), _minibatch()
    base, _ = cohort_loss(agents, mb, cfg0, cfg0.cohort.alpha)
    with_kl, stats = cohort_loss(agents, mb, cfg1, cfg1.cohort.alpha)
    # loss = mean_i (base_i + alpha * KL_i)
    assert with_kl.item() == pytest.approx(base.item() + stats.distill.mean().item(), rel=1e-5)


def _two_adam_steps(agents, cfg, mb):
    """Each agent's parameters, flat, after two minibatch steps on ``mb``."""
    optimizer = torch.optim.Adam(agents.parameters(), lr=1e-3, eps=cfg.ppo.adam_eps)
    for _ in range(2):
        minibatch_step(agents, optimizer, mb, cfg, torch.Generator().manual_seed(0), cfg.cohort.alpha, None)
    return [torch.cat([p.detach().flatten() for p in agent.parameters()]) for agent in agents]


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_without_distillation_a_summed_cohort_updates_each_agent_as_ppo_does(reduce):
    # Each agent of a two-agent cohort (alpha 0) against a PPO agent with the same start on the agent's own
    # minibatch. The clip is set where it binds for agent 0's PPO gradient but not for half of it (the
    # mean's): the sum takes PPO's two Adam steps exactly, for both agents; the mean takes others.
    mb = _minibatch(m=16)._replace(advantages=torch.randn(2, 16, generator=torch.Generator().manual_seed(2)))
    own = [mb._replace(**{f: getattr(mb, f)[i:i + 1] for f in mb._fields}) for i in range(2)]
    ppo_cfg = resolve("smoke", "ppo", {"perf.micro_batch": 0})
    probe = _cohort(1)
    cohort_loss(probe, own[0], ppo_cfg, 0.0)[0].backward()
    clip = 0.75 * torch.cat([p.grad.flatten() for p in probe.parameters()]).norm().item()
    ppo_cfg = resolve("smoke", "ppo", {"perf.micro_batch": 0, "ppo.max_grad_norm": clip})
    cohort_cfg = resolve("smoke", "mdpo", {"perf.micro_batch": 0, "ppo.max_grad_norm": clip, "cohort.alpha": 0.0,
                                           "cohort.reduce": reduce})
    members = _two_adam_steps(_cohort(2), cohort_cfg, mb)
    ppo = [_two_adam_steps(nn.ModuleList([_cohort(2)[i]]), ppo_cfg, own[i])[0] for i in range(2)]
    if reduce == "sum":
        for member, alone in zip(members, ppo):
            torch.testing.assert_close(member, alone, rtol=0, atol=1e-6)
    else:
        assert (members[0] - ppo[0]).abs().max() > 1e-4


def test_single_agent_has_no_distillation_term():
    cfg = resolve("smoke", "ppo")
    agents = _cohort(1)
    _, stats = cohort_loss(agents, _minibatch(k=1), cfg, cfg.cohort.alpha)
    assert stats.stacked().shape == (1, len(LossStats._fields)) and stats.distill[0] == 0


def test_best_teacher_is_one_way():
    # agent 1 teaches: it receives no gradient from the students' distillation terms
    cfg = resolve("smoke", "mdpo", {"ppo.vf_coef": 0.0, "ppo.ent_coef": 0.0, "cohort.peer_target": "best",
                                     "cohort.num_agents": 3})
    agents = _cohort(3)
    mb = _minibatch(k=3, mask_agents=(1,))  # the teacher's own terms are masked out
    loss, stats = cohort_loss(agents, mb, cfg, cfg.cohort.alpha, teacher=1)
    loss.backward()
    assert stats.distill[1] == 0 and (stats.distill[[0, 2]] > 0).all()
    assert _grad_norm(agents[1]) == 0 and _grad_norm(agents[0]) > 0 and _grad_norm(agents[2]) > 0


def test_peer_targets_each_vs_mean():
    agents, mb = _cohort(3), _minibatch(k=3)
    each = cohort_loss(agents, mb, resolve("smoke", "mdpo", {"cohort.num_agents": 3}), 1.0)[1].distill
    mean = cohort_loss(agents, mb, resolve("smoke", "mdpo", {"cohort.num_agents": 3,
                                                             "cohort.peer_target": "mean"}), 1.0)[1].distill
    # KL(mixture || own) <= mean of KL(peer || own) (convexity of KL in its first argument)
    assert (mean <= each + 1e-7).all() and (mean < each).any()


def test_drac_regulariser_is_zero_for_identity_and_positive_for_augmentations():
    agent = _cohort(1)[0]
    mb = _minibatch(k=1, m=8)
    obs, valid = mb.obs[0], mb.valids[0]
    count = valid.float().sum()
    logits, values = agent(obs)
    g = torch.Generator().manual_seed(0)
    for augment in ("identity", "crop", "conv", "jitter"):
        term = drac_term(agent, AUGMENTATIONS[augment](obs, g), logits, values, valid, count).item()
        if augment == "identity":
            assert term == pytest.approx(0.0, abs=1e-7)
        else:
            assert term > 0, augment


def test_drac_adds_its_weighted_term_to_the_loss():
    agents, mb = _cohort(1), _minibatch(k=1)
    plain, _ = cohort_loss(agents, mb, resolve("smoke", "ppo"), 0.0)
    loss, stats = cohort_loss(agents, mb, resolve("smoke", "drac"), 0.0, generator=torch.Generator().manual_seed(0))
    assert loss.item() == pytest.approx(plain.item() + 0.1 * stats.drac[0].item(), rel=1e-5)
