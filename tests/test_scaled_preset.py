import torch

from mdpo.nets import ActorCritic
from mdpo.resolve import resolve


def test_ppo_scaled_doubles_width_batch_and_steps():
    paper, scaled = resolve("paper", "ppo"), resolve("ppo-scaled", "ppo")
    assert scaled.net.width == 2 * paper.net.width
    assert scaled.env.num_envs * scaled.ppo.num_steps == 2 * paper.env.num_envs * paper.ppo.num_steps
    assert scaled.total_steps == 2 * paper.total_steps
    for key in ("num_steps", "num_minibatches", "epochs", "lr"):
        assert getattr(scaled.ppo, key) == getattr(paper.ppo, key), key
    assert scaled.cohort.num_agents == 1 and scaled.env.mode == paper.env.mode


def test_ppo_scaled_network_has_twice_the_channels():
    net = ActorCritic((3, 64, 64), 15, width=resolve("ppo-scaled", "ppo").net.width)
    assert [stage.conv.out_channels for stage in net.encoder.stages] == [32, 64, 64]
    logits, value = net(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    assert logits.shape == (2, 15) and value.shape == (2,)
