import os
import subprocess
import sys
import time

import pytest
import torch

from mdpo.resolve import resolve

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


@pytest.fixture
def long_training(tmp_path):
    """Start a long smoke training in a subprocess (for signals to stop); returns the process, its
    run folder and a function that waits (up to 2 minutes) until a condition on that folder holds."""

    def start(*flags):
        cmd = [sys.executable, "-m", "mdpo.cli", "train", "--preset", "smoke", "--game", "bigfish", "--quiet",
               "--out_dir", str(tmp_path), "--run_name", "run", "--total_steps", "100000", "--env.num_envs", "2",
               "--torch_threads", "1", "--net.hidden", "32", *flags]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def wait_for(condition):
            deadline = time.time() + 120
            while not condition(tmp_path / "run") and time.time() < deadline:
                time.sleep(0.1)

        return proc, tmp_path / "run", wait_for

    return start
