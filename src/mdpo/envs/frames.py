"""A fixed, seeded set of frames from held-out levels: the probe every compared run sees."""

from __future__ import annotations

import torch

from mdpo.config import EnvConfig
from mdpo.envs import make_env


@torch.no_grad()
def held_out_frames(env_cfg: EnvConfig, count: int, seed: int, max_steps: int = 100) -> torch.Tensor:
    """``count`` uint8 frames (count, C, H, W) on the CPU, one per test-level env, each taken after
    a random number (< ``max_steps``) of uniformly random actions. They depend only on the game,
    mode, count and seed, never on a policy, so runs compared on them see the same frames."""
    cpu = torch.device("cpu")
    env = make_env(env_cfg, count, seed, cpu, "test")
    generator = torch.Generator().manual_seed(seed)
    stop_at = torch.randint(0, max_steps, (count,), generator=generator)
    frames = env.reset().clone()
    for t in range(1, max_steps):
        actions = torch.randint(0, env.num_actions, (count,), generator=generator)
        obs = env.step(actions).obs
        frames[stop_at == t] = obs[stop_at == t]
    env.close()
    return frames
