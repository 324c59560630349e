"""Refactors change no number: short trainings give the same metrics.jsonl, eval.json and checkpoint
tensors, bit for bit, as the code of ``PINNED`` (the commit before the one-idea-per-place refactor).

Both sides run here, side by side in fresh processes with one torch thread, so the comparison holds on
any CPU; the old code is taken from git (a clone without that commit skips the test).
"""

import hashlib
import json
import math
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

import pytest
import torch

PINNED = "f70e46040e2f470706d908edd8aac797a1439325"
REPO = Path(__file__).resolve().parents[1]

# Every path the refactor touches: collection, GAE, the update with its chunks and statistics,
# distillation (loss and shaped rewards), the peer schedule (warm-up, best-teacher), DrAC, periodic
# evaluation with the bound's probes, checkpoints.
SCENARIOS = {
    "smoke-bigfish-mdpo": ("smoke", "mdpo", {"env.game": "bigfish", "total_steps": 256, "eval.every": 1,
                                             "eval.episodes": 1, "eval.final_episodes": 1, "eval.bound_frames": 16}),
    "coins-best-teacher-drac": ("smoke", "mdpo", {
        "env.game": "coins", "total_steps": 640, "cohort.num_agents": 3, "cohort.peer_target": "best",
        "cohort.teacher_every": 2, "cohort.alpha_warmup": 3, "drac.coef": 0.1, "drac.augment": "conv",
        "eval.every": 2, "eval.episodes": 2, "eval.final_episodes": 4, "eval.bound_frames": 16,
        "perf.micro_batch": 24}),
    "coins-eerd-spo": ("smoke", "mdspo", {"env.game": "coins", "total_steps": 384, "cohort.distill": "eerd",
                                          "ppo.anneal_lr": True, "eval.every": 0, "eval.final_episodes": 2}),
}
COMMON = {"torch_threads": 1, "env.num_threads": 1, "net.hidden": 32, "checkpoint_every": 1}
TIMING = ("charts/SPS",)  # measured, not computed

# The module that holds ``resolve``: mdpo.config at the pinned commit, mdpo.resolve since.
DRIVER = """
import importlib, json, sys, torch
torch.set_num_threads(1)
from mdpo.train import train
resolve = importlib.import_module(sys.argv[2]).resolve
preset, algo, overrides = json.loads(sys.argv[1])
print(train(resolve(preset, algo, overrides), progress=False))
"""


def digest(value) -> str:
    """A hash of nested dicts/lists of tensors and plain values (tensors by dtype, shape and bytes)."""
    h = hashlib.sha256()

    def feed(x):
        if isinstance(x, torch.Tensor):
            h.update(f"T{x.dtype}{tuple(x.shape)}".encode())
            x = x.detach().cpu().contiguous().reshape(-1)
            h.update(x.view(torch.uint8).numpy().tobytes() if x.numel() else b"")
        elif isinstance(x, dict):
            for key in sorted(x, key=str):
                h.update(f"K{key}".encode())
                feed(x[key])
        elif isinstance(x, (list, tuple)):
            h.update(f"L{len(x)}".encode())
            for item in x:
                feed(item)
        elif isinstance(x, float) and math.isnan(x):
            h.update(b"nan")
        else:
            h.update(repr(x).encode())

    feed(value)
    return h.hexdigest()[:16]


def outputs(run_dir: Path) -> dict[str, str]:
    rows = [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    state.pop("config")  # holds the run's own folder
    return {"metrics.jsonl": digest(rows), "eval.json": digest(json.loads((run_dir / "eval.json").read_text())),
            **{f"checkpoint[{key}]": digest(value) for key, value in state.items()}}


def run(src: Path, resolve_module: str, out: Path, scenario: str) -> dict[str, str]:
    preset, algo, overrides = SCENARIOS[scenario]
    overrides = {**COMMON, **overrides, "out_dir": str(out), "run_name": scenario}
    command = [sys.executable, "-c", DRIVER, json.dumps([preset, algo, overrides]), resolve_module]
    proc = subprocess.run(command, cwd=out, capture_output=True, text=True,
                          env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return outputs(Path(proc.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def pinned_src(tmp_path_factory):
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", PINNED, "src"], capture_output=True)
    except FileNotFoundError:
        pytest.skip("no git here to take the pinned code from")
    if archive.returncode:
        pytest.skip(f"commit {PINNED[:7]} is not in this clone")
    root = tmp_path_factory.mktemp("pinned")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    # the pinned mdpo predates src/mdpo/__init__.py: as a namespace package it would lose to the installed one
    (root / "src" / "mdpo" / "__init__.py").touch()
    return root / "src"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_numbers_of_a_training_equal_those_of_the_pinned_commit(scenario, pinned_src, tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = run(pinned_src, "mdpo.config", tmp_path / "old", scenario)
    new = run(REPO / "src", "mdpo.resolve", tmp_path / "new", scenario)
    assert new == old
