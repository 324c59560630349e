"""Encoders chosen by the observation, each one registry entry, and run grouped exactly as alone."""

import pytest
import torch
from torch import nn

from mdpo.envs.base import obs_kind
from mdpo.grouped import GroupedPolicy
from mdpo.nets import ActorCritic, build_agents, choose_encoder
from mdpo.resolve import resolve

CASES = {  # encoder: (observation shape, dtype)
    "impala": ((3, 16, 16), torch.uint8),
    "nature": ((4, 84, 84), torch.uint8),
    "grid": ((4, 10, 10), torch.uint8),
    "pooled": ((4, 10, 10), torch.uint8),
    "mlp": ((4,), torch.float32),
}


def test_auto_encoder_follows_the_observation():
    assert {choose_encoder(obs_kind((3, 64, 64), "uint8")), choose_encoder(obs_kind((4, 84, 84), "uint8")),
            choose_encoder(obs_kind((4, 10, 10), "bool")), choose_encoder(obs_kind((3, 7, 7), "uint8")),
            choose_encoder(obs_kind((4,), "float32"))} == {"impala", "nature", "grid", "mlp"}
    assert choose_encoder(obs_kind((3, 7, 7), "uint8")) == "grid"  # MiniGrid's codes are not pixels
    assert choose_encoder("vector", "mlp") == choose_encoder("rgb", "mlp") == "mlp"  # a named encoder wins


def _obs(shape, dtype, batch=6):
    generator = torch.Generator().manual_seed(1)
    if dtype == torch.uint8:
        return torch.randint(0, 256, (batch, *shape), generator=generator, dtype=torch.uint8)
    return torch.randn(batch, *shape, generator=generator)


@pytest.mark.parametrize("head_layers", [0, 2])
@pytest.mark.parametrize("encoder", CASES)
def test_grouped_inference_matches_each_agent(encoder, head_layers):
    shape, dtype = CASES[encoder]
    torch.manual_seed(0)
    agents = nn.ModuleList(ActorCritic(shape, 5, hidden=32, encoder=encoder, head_layers=head_layers)
                           for _ in range(2))
    obs = torch.stack([_obs(shape, dtype), _obs(shape, dtype).flip(0)])
    logits, values = GroupedPolicy(agents)(obs)
    with torch.no_grad():
        for i, agent in enumerate(agents):
            own_logits, own_values = agent(obs[i])
            assert torch.allclose(logits[i], own_logits, atol=1e-5) and torch.allclose(values[i], own_values, atol=1e-5)


def test_an_encoder_that_does_not_fit_the_observation_is_a_one_line_error():
    with pytest.raises(Exception, match="net.encoder=mlp does not take observations of shape"):
        ActorCritic((3, 16, 16), 5, encoder="mlp")


def test_build_agents_reads_the_kind_from_the_spec():
    cfg = resolve("cartpole", "mdpo")
    agents = build_agents(cfg, {"obs_shape": [4], "num_actions": 2, "obs_kind": "vector"}, torch.device("cpu"))
    assert type(agents[0].encoder).__name__ == "MlpEncoder" and len(agents) == 2
    old = build_agents(resolve("smoke"), {"obs_shape": [3, 64, 64], "num_actions": 15}, torch.device("cpu"))
    assert type(old[0].encoder).__name__ == "ImpalaEncoder"  # checkpoints saved before kinds: Procgen frames


def test_pooled_encoder_pads_after_then_pools():
    """Pgx's MinAtar network: a 2x2 convolution padded as TensorFlow's 'same' (the extra row and column after),
    then 2x2 average pooling: a 10x10 grid gives 5x5x32 features to the dense layer."""
    agent = ActorCritic((1, 10, 10), 3, hidden=64, encoder="pooled")
    conv = agent.encoder.stages[1]
    assert agent.encoder.fc.in_features == 5 * 5 * 32
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, 0] = torch.tensor([[0.0, 0.0], [0.0, 1.0]])  # channel 0 reads the pixel below-right
        obs = torch.zeros(1, 1, 10, 10, dtype=torch.uint8)
        obs[0, 0, 9, 9] = 1  # only in the last row and column: seen once, at the padded corner's neighbour
        obs[0, 0, 0, 0] = 1  # the first pixel: an input to no output of channel 0 (pads come after)
        maps = agent.encoder.stages(obs.float())
    assert maps.shape == (1, 32, 5, 5)
    assert maps[0, 0].sum() == 0.25 and maps[0, 0, 4, 4] == 0.25  # (8, 8) saw (9, 9); pooled over 4 pixels


def test_head_layers_make_separate_tanh_branches():
    agent = ActorCritic((4, 10, 10), 6, hidden=64, encoder="pooled", head_layers=2)
    for head, outputs, std in ((agent.actor, 6, 0.01), (agent.critic, 1, 1.0)):
        kinds = [type(m).__name__ for m in head]
        assert kinds == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
        assert head[-1].out_features == outputs and head[0].in_features == 64
        # orthogonal: the singular values of the output layer are its std
        assert torch.allclose(torch.linalg.svdvals(head[-1].weight), torch.full((outputs,), std), atol=1e-5)
    assert not set(map(id, agent.actor.parameters())) & set(map(id, agent.critic.parameters()))
    plain = ActorCritic((4, 10, 10), 6, hidden=64, encoder="pooled")
    assert isinstance(plain.actor, nn.Linear)  # no layers: the state-dict keys of older checkpoints


def test_lecun_init_is_haikus_truncated_normal():
    torch.manual_seed(0)
    agent = ActorCritic((4, 10, 10), 6, hidden=64, encoder="pooled", head_layers=2, init="lecun")
    layers = [m for m in agent.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert len(layers) == 1 + 1 + 3 + 3  # conv, dense, both heads' three layers: none left as it was built
    for layer in layers:
        fan_in = layer.weight[0].numel()
        w = layer.weight.detach()
        assert torch.all(layer.bias == 0)
        assert w.abs().max() <= 2 * fan_in**-0.5 / 0.87962566 + 1e-6  # cut at 2 of the untruncated std
        if w.numel() >= 2000:  # the sample std is close to 1/sqrt(fan_in)
            assert abs(w.std().item() * fan_in**0.5 - 1) < 0.1
    cleanrl = ActorCritic((4, 10, 10), 6, hidden=64, encoder="pooled", head_layers=2)
    assert torch.linalg.svdvals(cleanrl.actor[-1].weight).max() < 0.011  # CleanRL's: a near-uniform first policy
    with pytest.raises(Exception, match="unknown net.init 'he'"):
        resolve("minatar", "ppo", {"net.init": "he"})


def test_glorot_init_is_tensorflows_for_the_encoder_and_keeps_the_heads():
    torch.manual_seed(0)
    glorot = ActorCritic((3, 64, 64), 15, init="glorot")
    torch.manual_seed(0)
    cleanrl = ActorCritic((3, 64, 64), 15)
    layers = [m for m in glorot.encoder.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert len(layers) == 3 * 5 + 1  # every stage's conv and its two blocks' two convs, then the dense layer
    for layer in layers:
        receptive = layer.weight[0, 0].numel()  # 9 for a 3x3 convolution, 1 for the dense layer
        fan_in, fan_out = layer.weight.shape[1] * receptive, layer.weight.shape[0] * receptive
        w = layer.weight.detach()
        assert torch.all(layer.bias == 0)
        assert w.abs().max() <= (6 / (fan_in + fan_out)) ** 0.5
        if w.numel() >= 2000:  # uniform on +-limit: std limit / sqrt 3 = sqrt(2 / (fan_in + fan_out))
            assert abs(w.std().item() / (2 / (fan_in + fan_out)) ** 0.5 - 1) < 0.05
    # what it changes: a 32->32 convolution has std 1/sqrt(288) under Glorot, 1/sqrt(3 * 288) under PyTorch's default
    conv = cleanrl.encoder.stages[2].res0.conv0.weight
    assert abs(conv.std().item() * (3 * 288) ** 0.5 - 1) < 0.05
    for name in ("actor", "critic"):  # built before the init, from the same seed: the very same heads
        assert torch.equal(getattr(glorot, name).weight, getattr(cleanrl, name).weight)
    assert resolve("cleanrl", "ppo", {"net.init": "glorot"}).net.init == "glorot"
