"""scripts/procgen_port_check.py: episodes recorded on envpool, played again with their frames, replay
identically on the same game, and a changed reward is caught (the `procgen` package is stood in for by envpool
itself, behind procgen's interface)."""

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import torch

from mdpo.envs.procgen import ProcgenEnv
from mdpo.train import train

ROOT = Path(__file__).resolve().parent.parent


def stand_in_procgen(extra_reward_at: int | None = None) -> types.ModuleType:
    """A `procgen` module whose ProcgenEnv is mdpo's envpool StarPilot, with procgen's (N, 64, 64, 3) frames;
    ``extra_reward_at``: every level's step of that number (1-based) pays one more point."""

    class Env:
        def __init__(self, num_envs, env_name, num_levels, start_level, distribution_mode):
            assert (num_envs, env_name, num_levels, distribution_mode) == (1, "starpilot", 1, "easy")
            self.env, self.t = ProcgenEnv("starpilot", "easy", 1, 1, start_level, 0, torch.device("cpu"), 1), 0

        def reset(self):
            return {"rgb": self.env.reset().numpy().transpose(0, 2, 3, 1)}

        def step(self, actions):
            step, self.t = self.env.step(torch.as_tensor(actions)), self.t + 1
            reward = step.reward.numpy() + (self.t == extra_reward_at)
            return {"rgb": step.obs.numpy().transpose(0, 2, 3, 1)}, reward, step.done.numpy(), [{}]

        def close(self):
            self.env.close()

    return types.SimpleNamespace(ProcgenEnv=Env, __version__="stand-in")


def test_recorded_episodes_replay_identically_and_a_changed_reward_is_found(tiny, tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("procgen_port_check", ROOT / "scripts" / "procgen_port_check.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    run_dir = train(tiny("ppo", **{"env.game": "starpilot", "env.mode": "easy"}), progress=False)
    recorded, episodes = tmp_path / "recorded.npz", tmp_path / "with-frames.npz"
    check.record(str(run_dir), str(recorded), levels=2)
    check.frames(str(recorded), str(episodes))  # exits where envpool plays the actions otherwise
    data = np.load(episodes)
    assert len(data["lengths"]) == 2 and len(data["actions"]) == data["lengths"].sum()
    assert len(data["frames"]) == data["lengths"].sum() + 2  # each level's first frame, then one per step
    assert set(np.load(recorded)) == {"actions", "rewards", "lengths"}  # what is committed: no frames

    monkeypatch.setitem(sys.modules, "procgen", stand_in_procgen())
    assert check.replay(str(episodes)) == 0
    rows, summary = level_rows(capsys.readouterr().out)
    assert "0 of 2 levels differ" in summary
    for (level, steps, mine, theirs, first, frames, most), length in zip(rows, data["lengths"]):
        assert (int(steps), mine, first, frames, most) == (length, theirs, "-", f"0 of {length}", "0")

    monkeypatch.setitem(sys.modules, "procgen", stand_in_procgen(extra_reward_at=3))
    assert check.replay(str(episodes)) == 1
    rows, summary = level_rows(capsys.readouterr().out)
    assert "2 of 2 levels differ" in summary
    assert [row[4] for row in rows] == ["3", "3"]
    assert [float(row[3]) - float(row[2]) for row in rows] == [1.0, 1.0]


def level_rows(out: str) -> tuple[list[list[str]], str]:
    """The replay table's level rows, split into cells, and its closing line."""
    lines = out.strip().splitlines()
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line[:3] in ("| 0", "| 1")]
    return rows, lines[-1]
