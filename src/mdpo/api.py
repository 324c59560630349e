"""mdpo from Python (notebooks, scripts): a config built in code, a training, its metrics and a fresh
evaluation, with the command line's defaults and checks::

    import mdpo
    cfg = mdpo.configure("cartpole", algo="mdpo", total_steps=20_000, env={"game": "Acrobot-v1"})
    run = mdpo.fit(cfg)                      # the run folder, as `mdpo train` leaves it
    mdpo.metrics(run)[-1]                    # the last row of metrics.jsonl: the final evaluation
    mdpo.evaluate_run(run, episodes=10)      # {"eval/train_return": ..., "eval/test_return": ..., ...}

The names are not ``config``, ``train`` or ``evaluate``: those are modules of the package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mdpo.config import Config, flatten
from mdpo.errors import MdpoError
from mdpo.evaluate import evaluate_checkpoint
from mdpo.logger import read_metrics
from mdpo.presets import DEFAULT_PRESET
from mdpo.resolve import resolve
from mdpo.runtime import resolve_device
from mdpo.train import train


def configure(preset: str = DEFAULT_PRESET, algo: str | None = None, **overrides: Any) -> Config:
    """A checked config: ``preset``, then ``algo``, then ``overrides`` as the command line's flags set them:
    ``total_steps=20_000``, ``env={"game": "Acrobot-v1"}`` or ``**{"env.game": "Acrobot-v1"}``."""
    return resolve(preset, algo, flatten(overrides))


def fit(cfg: Config, progress: bool = True) -> Path:
    """Train a new run of ``cfg`` for its ``total_steps``, evaluated and checkpointed on its schedule;
    returns the run folder (``cfg.out_dir``/``cfg.run_name``)."""
    return train(cfg, progress=progress)


def metrics(run: str | Path) -> list[dict]:
    """The rows of a run's metrics.jsonl, one per logged update, each with its ``global_step``."""
    return read_metrics(Path(run))


def evaluate_run(run: str | Path, episodes: int | None = None, greedy: bool = False,
                 device: str = "auto") -> dict[str, float]:
    """A fresh evaluation of a run's checkpoint on training and test levels, ``episodes`` per split
    (None: the run's ``eval.final_episodes``), as ``mdpo eval`` does: its eval/* summary."""
    if episodes is not None and episodes < 1:
        raise MdpoError(f"episodes must be at least 1, got {episodes}")
    return evaluate_checkpoint(run, episodes, resolve_device(device), greedy)["summary"]
