"""Learning on real environments, from a fixed seed: PPO and MDPO solve CartPole-v1, and PPO on MinAtar
Breakout beats a random policy. Learning tests, not timed tests: each asserts a return, never a time."""

import pytest

from mdpo.resolve import resolve
from mdpo.runtime import configure_process
from mdpo.trainer import Trainer

# Published: rl-baselines3-zoo's PPO reaches 500 at 100k steps on CartPole-v1 (the cartpole preset's
# settings); random play scores ~22. MinAtar Breakout: random 0.48, PPO ~15 at 1M steps.
CARTPOLE_STEPS = 100_000
MINATAR_STEPS = 123_000  # 15 updates of the minatar preset


def episode_returns(cfg, run_dir) -> list[list[float]]:
    """Every agent's training episode returns in the order they ended, over a whole run."""
    trainer = Trainer(cfg, run_dir)
    configure_process(cfg, trainer.device)  # as `mdpo train` does
    returns = [[] for _ in range(cfg.cohort.num_agents)]
    try:
        while trainer.update_idx < trainer.num_updates:
            trainer.update()
            r = trainer.rollout
            for i, mine in enumerate(returns):
                mine += r.episode_returns[i][r.episode_ends[i]].tolist()  # (T, N) row-major: time order
    finally:
        trainer.close()
    return returns


@pytest.mark.parametrize("algo", ["ppo", "mdpo"])
def test_cartpole_is_solved(algo, tmp_path):
    cfg = resolve("cartpole", algo, {"total_steps": CARTPOLE_STEPS, "torch_threads": 1, "seed": 1})
    for returns in episode_returns(cfg, tmp_path):
        last = returns[-20:]
        assert sum(last) / len(last) >= 475, f"{algo}: last 20 training episodes average {sum(last) / len(last)}"


def test_minatar_breakout_beats_random(tmp_path):
    cfg = resolve("minatar", "ppo", {"total_steps": MINATAR_STEPS, "torch_threads": 1, "seed": 1})
    (returns,) = episode_returns(cfg, tmp_path)
    first, last = returns[:100], returns[-100:]
    assert sum(first) / len(first) < 1.0  # it starts near random (0.48)
    assert sum(last) / len(last) > 1.2, f"last 100 training episodes average {sum(last) / len(last)}"
