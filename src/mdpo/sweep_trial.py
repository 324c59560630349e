"""One trial of a sweep, brought to its end from whatever its run folder holds: eval.json (done),
checkpoint.pt (continue with ``resume.resume``) or nothing usable (start afresh with ``train.train``).
Ray's retries and a re-run of the whole sweep both go through this one rule."""

from __future__ import annotations

import shutil
from pathlib import Path

from mdpo.config import from_dict
from mdpo.resume import resume
from mdpo.runs import CHECKPOINT, EVAL
from mdpo.train import train


def trial_state(run_dir: Path) -> str:
    """``done`` (eval.json), ``checkpoint`` (can resume) or ``new``."""
    if (run_dir / EVAL).exists():
        return "done"
    return "checkpoint" if (run_dir / CHECKPOINT).exists() else "new"


def run_trial(config: dict) -> str:
    """Bring one trial to its end; returns the state it started from. Runs inside a Ray worker."""
    cfg = from_dict(config)
    run_dir = Path(cfg.out_dir) / cfg.run_name
    state = trial_state(run_dir)
    if state == "checkpoint":
        resume(run_dir, progress=False)
    elif state == "new":
        shutil.rmtree(run_dir, ignore_errors=True)  # what a start that died before its first checkpoint left
        train(cfg, progress=False)
    return state
