"""Evaluation: the first episode of each env, never the first episodes to finish; every agent and
split in one loop, each job with its own results."""

import torch

import mdpo.evaluate
from mdpo.config import EnvConfig
from mdpo.envs.base import Step
from mdpo.evaluate import Job, play
from mdpo.nets import ActorCritic
from mdpo.runtime import configure_backends

CPU = torch.device("cpu")


class ScriptedEnv:
    """Env e's first episode lasts ``first[e]`` steps and returns ``10 * seed + e``; every later
    episode lasts 1 step and returns 1000 (what a biased estimator would pick up)."""

    num_actions, obs_shape = 3, (3, 8, 16)

    def __init__(self, first: list[int], seed: int):
        self.first, self.seed = torch.tensor(first), seed
        self.num_envs = len(first)
        self.t = torch.zeros(self.num_envs, dtype=torch.long)
        self.episode = torch.zeros_like(self.t)

    def reset(self):
        return torch.zeros(self.num_envs, *self.obs_shape, dtype=torch.uint8)

    def step(self, actions):
        self.t += 1
        done = self.t >= torch.where(self.episode == 0, self.first, 1)
        first_return = 10.0 * self.seed + torch.arange(self.num_envs)
        reward = torch.where(done, torch.where(self.episode == 0, first_return, 1000.0), 0.0)
        self.episode += done.long()
        self.t[done] = 0
        return Step(self.reset(), reward, done, torch.ones_like(done))

    def close(self):
        pass


def test_play_counts_each_envs_first_episode_for_every_job(monkeypatch):
    monkeypatch.setattr(mdpo.evaluate, "make_env", lambda cfg, n, seed, device, split: ScriptedEnv([1, 5, 3], seed))
    torch.manual_seed(0)
    agents = [ActorCritic((3, 8, 16), 3, hidden=8) for _ in range(2)]
    jobs = [Job(agent, EnvConfig(game="coins"), split, seed)
            for seed, (agent, split) in enumerate([(a, s) for a in agents for s in ("train", "test")])]
    results = play(jobs, 3, CPU)
    for seed, result in enumerate(results):
        assert result == {"returns": [10.0 * seed, 10.0 * seed + 1, 10.0 * seed + 2], "lengths": [1.0, 5.0, 3.0]}


def test_grouped_and_sequential_inference_play_the_same_episodes():
    torch.manual_seed(0)
    agents = [ActorCritic((3, 8, 16), 3, hidden=16) for _ in range(2)]
    env_cfg = EnvConfig(game="coins", num_levels=5)
    jobs = [Job(agent, env_cfg, split, 7 + i) for i, (agent, split) in
            enumerate([(a, s) for a in agents for s in ("train", "test")])]
    grouped, sequential = (play(jobs, 4, CPU, batched=batched) for batched in (True, False))
    assert grouped == sequential
    assert len({tuple(r["lengths"]) for r in grouped}) > 1  # the jobs really differ


def test_play_turns_cudnns_autotuner_off_for_its_shrinking_batches(monkeypatch):
    monkeypatch.setattr(mdpo.evaluate, "make_env", lambda cfg, n, seed, device, split: ScriptedEnv([1, 5, 3], seed))
    configure_backends(tf32=False)  # the autotuner on, as training has it
    agent = ActorCritic((3, 8, 16), 3, hidden=8)
    seen = []
    agent.register_forward_pre_hook(lambda module, inputs: seen.append(torch.backends.cudnn.benchmark))
    play([Job(agent, EnvConfig(game="coins"), "test", 0)], 3, CPU)
    assert seen and not any(seen)
    assert torch.backends.cudnn.benchmark
