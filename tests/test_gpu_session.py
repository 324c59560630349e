"""scripts/gpu_session.sh on the CPU: background runs are stopped, finished and packed for the trip back,
and a later session restores and extends them."""

import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from mdpo.runs import load_checkpoint

SCRIPT = Path(__file__).parents[1] / "scripts" / "gpu_session.sh"
TINY = ["--env.num_envs", "2", "--ppo.num_steps", "16", "--ppo.num_minibatches", "2", "--net.hidden", "32",
        "--eval.final_episodes", "1", "--checkpoint_every", "1"]


def _session(tmp_path, name, *args, restore=None):
    env = {**os.environ, "RUNS_DIR": str(tmp_path / name / "runs"), "OUT": str(tmp_path / name / "out"),
           "PRESET": "smoke", "GAME": "coins", "SEEDS": "1", "ALGOS": "ppo mdpo", "PYTHON": sys.executable,
           "RESTORE_DIR": str(restore or tmp_path / "none")}
    done = subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _unpack(out: Path, into: Path) -> None:
    into.mkdir()
    with tarfile.open(out / "results.tar.gz") as tar:
        tar.extractall(into, filter="data")
    parts = b"".join(p.read_bytes() for p in sorted(out.glob("checkpoints.tar.part-*")))
    (into / "checkpoints.tar").write_bytes(parts)
    with tarfile.open(into / "checkpoints.tar") as tar:
        tar.extractall(into, filter="data")


def test_runs_are_stopped_finished_packed_and_extended(tmp_path):
    assert "started" in _session(tmp_path, "first", "start", "100000", *TINY)
    runs = tmp_path / "first" / "runs"
    deadline = time.time() + 120
    while time.time() < deadline and not all((runs / n / "checkpoint.pt").exists()
                                              for n in ("coins-ppo-s1", "coins-mdpo-s1")):
        time.sleep(0.2)
    assert "running" in _session(tmp_path, "first", "poll", "0")
    _session(tmp_path, "first", "finish")

    out = tmp_path / "first" / "out"
    _unpack(out, tmp_path / "back")
    for name in ("coins-ppo-s1", "coins-mdpo-s1"):
        run = tmp_path / "back" / name
        reached = load_checkpoint(run)["global_step"]
        assert 0 < reached < 100000  # stopped early, at a checkpoint
        assert json.loads((run / "eval.json").read_text())["global_step"] == reached  # then finished there
        assert json.loads((run / "config.json").read_text())["total_steps"] == reached
    assert (tmp_path / "back" / "report" / "report.md").exists()

    # a later session carries the packed runs back and extends them
    restore = tmp_path / "carried"
    restore.mkdir()
    for f in out.iterdir():
        (restore / f.name).write_bytes(f.read_bytes())
    assert "started" in _session(tmp_path, "second", "start", str(reached + 32), *TINY, restore=restore)
    second = tmp_path / "second" / "runs" / "coins-mdpo-s1"
    deadline = time.time() + 120
    while time.time() < deadline and not (second / f"eval-{reached}.json").exists():  # renamed when extended
        time.sleep(0.2)
    while time.time() < deadline and not (second / "eval.json").exists():
        time.sleep(0.2)
    _session(tmp_path, "second", "finish")
    assert load_checkpoint(second)["global_step"] == reached + 32
    assert (second / f"eval-{reached}.json").exists() and (second / "eval.json").exists()
