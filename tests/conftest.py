import os

import pytest
import torch

from mdpo.config import resolve

# The test machine has 2 cores; one torch thread keeps runs reproducible and leaves room.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def tiny(tmp_path):
    """A resolved config for a few-second CPU run on a real Procgen game."""

    def make(algo="ppo", **overrides):
        base = {
            "env.game": "coinrun", "env.num_envs": 2, "ppo.num_steps": 16, "ppo.num_minibatches": 2,
            "ppo.epochs": 1, "total_steps": 64, "checkpoint_every": 2, "eval.every": 0,
            "eval.final_episodes": 1, "out_dir": str(tmp_path), "torch_threads": 1, "env.num_threads": 1,
            "net.hidden": 32,
        }
        base.update(overrides)
        return resolve("smoke", algo, base)

    return make
