import pytest
import torch

from mdpo.analysis.robustness import perturbed_copies, sensitivity
from mdpo.analysis.tsne import spread
from mdpo.nets import ActorCritic
from mdpo.perturb import PerturbSpec

CPU = torch.device("cpu")


def _random_policy():
    torch.manual_seed(0)
    agent = ActorCritic((3, 32, 32), 15, width=1, hidden=32)
    torch.nn.init.normal_(agent.actor.weight, std=1.0)  # a policy far from uniform, so KL is visible
    return agent.eval()


def _frames(n=12):
    # smooth random images, closer to game frames than pixel noise
    coarse = torch.rand((n, 3, 4, 4), generator=torch.Generator().manual_seed(1))
    return (torch.nn.functional.interpolate(coarse, size=32, mode="bilinear") * 255).to(torch.uint8)


def test_a_frame_against_itself_scores_zero():
    agent, frames = _random_policy(), _frames()
    s = sensitivity(agent, frames, frames[:, None].repeat(1, 3, 1, 1, 1), CPU)
    # zero up to float32 round-off: oneDNN may pick another kernel for another batch size
    assert s == pytest.approx({"kl_mean": 0.0, "kl_std": 0.0, "feature_mean": 0.0, "feature_std": 0.0}, abs=1e-6)


def test_kl_and_feature_distance_grow_with_jitter_strength():
    agent, frames = _random_policy(), _frames()
    results = []
    for strength in (0.05, 0.2, 0.5, 1.0):
        spec = PerturbSpec(brightness=0.8 * strength, contrast=0.8 * strength, saturation=0.8 * strength,
                           hue=0.5 * strength)
        results.append(sensitivity(agent, frames, perturbed_copies(frames, "jitter", spec, 16, seed=0), CPU))
    kls = [r["kl_mean"] for r in results]
    distances = [r["feature_mean"] for r in results]
    assert kls[0] > 0 and all(a < b for a, b in zip(kls, kls[1:])), kls
    assert all(a < b for a, b in zip(distances, distances[1:])), distances


def test_random_convs_move_the_policy_more_than_mild_jitter():
    agent, frames = _random_policy(), _frames()
    spec = PerturbSpec(brightness=0.05, contrast=0.05, saturation=0.05, hue=0.01)
    conv = sensitivity(agent, frames, perturbed_copies(frames, "conv", spec, 8, seed=0), CPU)
    mild = sensitivity(agent, frames, perturbed_copies(frames, "jitter", spec, 8, seed=0), CPU)
    assert conv["kl_mean"] > mild["kl_mean"] > 0


def test_perturbed_copies_are_fixed_by_the_seed():
    frames = _frames(3)
    a = perturbed_copies(frames, "conv", PerturbSpec(), 4, seed=5)
    assert a.shape == (3, 4, 3, 32, 32)
    assert torch.equal(a, perturbed_copies(frames, "conv", PerturbSpec(), 4, seed=5))
    assert not torch.equal(a, perturbed_copies(frames, "conv", PerturbSpec(), 4, seed=6))


def test_spread_by_hand():
    # one frame, two copies at (3, 4) and (3, -4): centroid (3, 0), distances 4, norms 5 -> 0.8
    clouds = torch.tensor([[[3.0, 4.0], [3.0, -4.0]], [[1.0, 0.0], [1.0, 0.0]]])
    assert spread(clouds) == pytest.approx([0.8, 0.0])
