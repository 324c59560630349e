"""scripts/gpu_session.sh on the CPU: `all` fits its seconds (learning runs stopped, finished at the steps
they reached and packed for the trip back), and a later session restores and extends the runs."""

import json
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from mdpo.runs import load_checkpoint

SCRIPT = Path(__file__).parents[1] / "scripts" / "gpu_session.sh"
TINY = ["--env.num_envs", "2", "--ppo.num_steps", "16", "--ppo.num_minibatches", "2", "--net.hidden", "32",
        "--eval.final_episodes", "1", "--checkpoint_every", "1"]
RUNS = ("coins-ppo-s1", "coins-mdpo-s1")
# On 2 cores shared with other work (load 6), the finish needs up to 50 s (four Python processes, one after the
# other) and a run 10 s to its first checkpoint; `all` lasts SECONDS - RESERVE plus what the finish takes.
SECONDS, RESERVE = 100, 70


def _session(root, *args, restore=None, **settings):
    env = {**os.environ, "RUNS_DIR": str(root / "runs"), "OUT": str(root / "out"), "PRESET": "smoke", "GAME": "coins",
           "SEEDS": "1", "ALGOS": "ppo mdpo", "PYTHON": sys.executable, "RESTORE_DIR": str(restore or root / "none"),
           **settings}
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


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """One `all` session without its CUDA tests and bench (they run here, but for time): PPO and MDPO learn.
    Beside it lies a bundle unpacked for another Python (as a rehearsal leaves it): this Python has envpool, so
    the session must leave the bundle alone."""
    root = tmp_path_factory.mktemp("first")
    for package in ("envpool", "optree"):
        (root / "site" / package).mkdir(parents=True)
        (root / "site" / package / "__init__.py").write_text("raise ImportError('built for another Python')\n")
    started = time.time()
    _session(root, "all", str(SECONDS), TESTS="", BENCH="", TRAIN_FLAGS=" ".join(TINY), RESERVE=str(RESERVE),
             BUNDLE_SITE=str(root / "site"))
    return root, time.time() - started


def test_all_fits_its_seconds_and_brings_back_the_runs(first):
    root, took = first
    out = root / "out"
    assert took < SECONDS + 5  # the last step ends 5 s before SECONDS; bash and Python start in between
    log = (out / "session.log").read_text()
    steps = re.findall(r"\] (\w+): (\d+) s \(limit (\d+) s, exit (\d+)", log)
    assert [step for step, *_ in steps] == ["tests", "bench", "start", "finish"], log
    assert all(code == "0" and int(used) <= int(limit) for _, used, limit, code in steps), log
    assert re.search(rf"\] session: \d+ of {SECONDS} s", log)
    assert "== finish" in (out / "stderr.log").read_text()
    assert len(list(out.iterdir())) <= 8  # what a device call brings back

    _unpack(out, root / "back")
    for name in RUNS:
        run = root / "back" / name
        reached = load_checkpoint(run)["global_step"]
        assert 0 < reached < 25_000_000  # stopped when the time was up, at a checkpoint
        assert json.loads((run / "eval.json").read_text())["global_step"] == reached  # then finished there
        assert json.loads((run / "config.json").read_text())["total_steps"] == reached
        assert f"{name}: " in log  # a poll line
    assert (root / "back" / "report" / "report.md").exists()


def test_a_later_session_restores_and_extends_the_runs(first, tmp_path):
    root, _ = first
    restore = tmp_path / "carried"
    restore.mkdir()
    for f in (root / "out").iterdir():
        if f.name.startswith(("results", "checkpoints")):
            (restore / f.name).write_bytes(f.read_bytes())
    reached = load_checkpoint(root / "runs" / "coins-mdpo-s1")["global_step"]
    assert "started" in _session(tmp_path, "start", str(reached + 32), *TINY, restore=restore)
    second = tmp_path / "runs" / "coins-mdpo-s1"
    deadline = time.time() + 120
    while time.time() < deadline and not (second / f"eval-{reached}.json").exists():  # renamed when extended
        time.sleep(0.2)
    while time.time() < deadline and not (second / "eval.json").exists():
        time.sleep(0.2)
    _session(tmp_path, "finish")
    assert load_checkpoint(second)["global_step"] == reached + 32
    assert (second / f"eval-{reached}.json").exists() and (second / "eval.json").exists()
