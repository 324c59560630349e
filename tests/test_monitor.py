import math

import numpy as np
import pytest
import torch

from mdpo.envs import EpisodeMonitor, RewardNormalizer, Step
from mdpo.envs.monitor import RunningMeanStd


class ScriptedEnv:
    """One env replaying (reward, done, valid) triples, like envpool: the step after done is an
    auto-reset step (valid False, reward 0)."""

    num_envs, num_actions, obs_shape = 1, 2, (3, 4, 4)

    def __init__(self, script):
        self.script = list(script)

    def reset(self):
        return torch.zeros(1, 3, 4, 4, dtype=torch.uint8)

    def step(self, actions):
        reward, done, valid = self.script.pop(0)
        return Step(self.reset(), torch.tensor([reward]), torch.tensor([done]), torch.tensor([valid]))

    def close(self):
        pass


def test_episode_statistics_skip_auto_reset_steps():
    script = [(1.0, False, True), (2.0, True, True), (0.0, False, False), (5.0, False, True), (1.0, True, True)]
    env = ScriptedEnv(script)
    env.reset()
    monitor = EpisodeMonitor(env, torch.device("cpu"))
    steps = [monitor.step(torch.zeros(1, dtype=torch.long)) for _ in script]
    ends = [(bool(s.episode_end), float(s.episode_return), float(s.episode_length)) for s in steps]
    assert ends == [(False, 0, 0), (True, 3.0, 2), (False, 0, 0), (False, 0, 0), (True, 6.0, 2)]


def test_reward_normalisation_matches_discounted_return_std():
    gamma = 0.9
    rng = np.random.default_rng(0)
    rewards = rng.normal(1.0, 2.0, size=50)
    dones = rng.random(50) < 0.1
    script, valid_rewards, ret, rets = [], [], 0.0, []
    for r, d in zip(rewards, dones):
        script.append((float(r), bool(d), True))
        ret = ret * gamma + r
        rets.append(ret)
        valid_rewards.append(r)
        if d:
            ret = 0.0
            script.append((0.0, False, False))  # auto-reset step: must change nothing
    normalizer = RewardNormalizer(gamma=gamma, clip=10.0, normalize=True, device=torch.device("cpu"))
    normalizer.start(1, torch.device("cpu"))
    out = [normalizer(torch.tensor([r]), torch.tensor([d]), torch.tensor([v])) for r, d, v in script]
    last_valid = [reward for reward, (_, _, v) in zip(out, script) if v][-1]
    # baselines' RunningMeanStd starts from count 1e-4, mean 0, var 1
    count, mean, var = 1e-4, 0.0, 1.0
    for x in rets:
        delta = x - mean
        total = count + 1
        mean = mean + delta / total
        var = (var * count + delta**2 * count / total) / total
        count = total
    expected = np.clip(valid_rewards[-1] / math.sqrt(var + 1e-8), -10, 10)
    assert float(last_valid) == pytest.approx(expected, rel=1e-5)
    assert float(normalizer.return_rms.var) == pytest.approx(var, rel=1e-6)  # rewards arrive as float32


def test_running_mean_std_masked_batches():
    rms = RunningMeanStd(torch.device("cpu"))
    x = torch.tensor([1.0, 2.0, 3.0, 100.0])
    rms.update(x, torch.tensor([True, True, True, False]))
    before = (rms.mean.item(), rms.var.item(), rms.count.item())
    rms.update(x, torch.zeros(4, dtype=torch.bool))  # nothing valid: no change
    assert (rms.mean.item(), rms.var.item(), rms.count.item()) == before
    assert rms.mean.item() == pytest.approx(2.0, rel=1e-4)


def test_without_normalisation_rewards_pass_and_the_statistics_keep_their_start():
    normalizer = RewardNormalizer(gamma=0.99, clip=1.0, normalize=False, device=torch.device("cpu"))
    normalizer.start(2, torch.device("cpu"))
    reward = torch.tensor([5.0, -3.0])
    assert normalizer(reward, torch.tensor([False, True]), torch.tensor([True, True])) is reward
    state = normalizer.state_dict()["return_rms"]
    assert (float(state["mean"]), float(state["var"]), float(state["count"])) == (0.0, 1.0, 1e-4)
