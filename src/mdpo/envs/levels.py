"""Train/test level splits for seeded environments: every reset starts a level drawn from a split's seeds.

Procgen's ``num_levels``/``start_level`` carry over: training episodes reset with seeds from
[start, start + num_levels), test episodes with seeds outside it. Gymnasium's vector envs reseed only
on the first reset, so ``LevelSeeds`` wraps each sub-env and passes a drawn seed to every reset.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium
import numpy as np

SEED_LIMIT = 2**31 - 1  # seeds are drawn below this


@dataclass(frozen=True)
class SeedSplit:
    """The seeds of one split: [start, start + count) for ``train``, every other seed for ``test``."""

    start: int
    count: int
    split: str

    def draw(self, rng: np.random.Generator) -> int:
        if self.split == "train":
            return self.start + int(rng.integers(self.count))
        seed = int(rng.integers(SEED_LIMIT - self.count))
        return seed + self.count if seed >= self.start else seed


class LevelSeeds(gymnasium.Wrapper):
    """Resets the wrapped env with seeds drawn from ``seeds``; the seed given to ``reset`` (the vector
    env's first reset) seeds the draws."""

    def __init__(self, env: gymnasium.Env, seeds: SeedSplit):
        super().__init__(env)
        self.seeds = seeds
        self.rng = np.random.default_rng(0)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        return self.env.reset(seed=self.seeds.draw(self.rng), options=options)


def layout_key(env: gymnasium.Env) -> bytes | None:
    """A hashable picture of the level ``env`` was just reset to, where one is known (MiniGrid's grid,
    agent position and direction); None elsewhere."""
    base = env.unwrapped
    grid = getattr(base, "grid", None)
    if grid is None or not hasattr(grid, "encode"):
        return None
    return grid.encode().tobytes() + np.asarray([*base.agent_pos, base.agent_dir], dtype=np.int64).tobytes()


def split_overlap(env: gymnasium.Env, start: int, count: int, samples: int = 200,
                  max_train: int = 2000) -> tuple[int, int, float] | None:
    """(training seeds hashed, their distinct layouts, share of ``samples`` test layouts that also occur
    in training), or None where levels cannot be hashed. Up to ``max_train`` training seeds are hashed."""
    train = set()
    hashed = min(count, max_train)
    for seed in range(start, start + hashed):
        env.reset(seed=seed)
        key = layout_key(env)
        if key is None:
            return None
        train.add(key)
    test, rng = SeedSplit(start, count, "test"), np.random.default_rng(0)
    seen = 0
    for _ in range(samples):
        env.reset(seed=test.draw(rng))
        seen += layout_key(env) in train
    return hashed, len(train), seen / samples
