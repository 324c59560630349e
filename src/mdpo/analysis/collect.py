"""The runs a report covers: found under the given paths, loaded, and labelled by algorithm."""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mdpo.analysis.robustness import ROBUSTNESS
from mdpo.analysis.tsne import TSNE
from mdpo.config import Config, field_docs
from mdpo.envs import score_range
from mdpo.errors import MdpoError
from mdpo.logger import read_metrics
from mdpo.runs import CONFIG, EVAL, load_config

# Fields that do not define the experiment, so runs differing only in them share a group.
NOT_EXPERIMENT = {"seed", "run_name", "out_dir", "device", "torch_threads", "env.num_threads", "checkpoint_every",
                  "net.encoder_from", "env.game", "env.mode", "algo", "preset"}


@dataclass
class Run:
    path: Path
    cfg: Config
    steps: np.ndarray  # env steps per agent of each evaluation
    test: np.ndarray  # mean test return (over agents) at those steps
    train: np.ndarray
    done: bool  # the final evaluation (eval.json) exists
    final_test: float
    final_train: float
    extras: dict  # robustness.json / tsne.json contents, by file name
    label: str = ""

    @property
    def task(self) -> tuple[str, str]:
        return self.cfg.env.game, self.cfg.env.mode

    @property
    def final_step(self) -> int:
        return int(self.steps[-1])

    @property
    def score(self) -> float | None:
        """Min-max normalised final test return, where the game has constants."""
        bounds = score_range(self.cfg.env)
        return None if bounds is None else (self.final_test - bounds[0]) / (bounds[1] - bounds[0])


def load_run(path: Path) -> Run | str:
    """The run in ``path``, or the reason it cannot be reported."""
    try:
        cfg = load_config(path)
        # one evaluation per step; should a step repeat, its last record wins
        by_step = {m["global_step"]: m for m in read_metrics(path) if "eval/test_return" in m}
        done = (path / EVAL).exists()
        summary = json.loads((path / EVAL).read_text())["summary"] if done else None
        extras = {name: json.loads((path / name).read_text()) for name in (ROBUSTNESS, TSNE) if (path / name).exists()}
    except MdpoError as exc:
        return str(exc)
    except (json.JSONDecodeError, KeyError) as exc:
        return f"{path}: unreadable metrics.jsonl, eval.json, {ROBUSTNESS} or {TSNE} ({type(exc).__name__})"
    steps = sorted(by_step)
    if not steps:
        return f"{path}: no evaluation yet"
    final = summary or by_step[steps[-1]]
    return Run(path, cfg, np.array(steps, dtype=float), np.array([by_step[s]["eval/test_return"] for s in steps]),
               np.array([by_step[s]["eval/train_return"] for s in steps]), done,
               final["eval/test_return"], final["eval/train_return"], extras)


def find_runs(paths: list[Path], exclude: Path) -> tuple[list[Run], list[str]]:
    """Runs in ``paths`` (run folders, or folders holding run folders at any depth) and one line
    per folder skipped."""
    found: list[Path] = []
    skipped: list[str] = []
    for path in map(Path, paths):
        if (path / CONFIG).exists():
            found.append(path)
        elif not path.is_dir():
            skipped.append(f"{path}: no such folder")
        else:
            inside = sorted(c.parent for c in path.resolve().rglob(CONFIG) if exclude not in c.parents)
            if not inside:
                skipped.append(f"{path}: not a run folder and holds none")
            for child in sorted(c for c in path.resolve().iterdir() if c.is_dir() and c != exclude):
                if not any(run == child or child in run.parents for run in inside):
                    skipped.append(f"{child}: not a run folder")
            found += inside
    runs = []
    for path in dict.fromkeys(p.resolve() for p in found):
        run = load_run(path)
        if isinstance(run, str):
            skipped.append(run)
        else:
            runs.append(run)
    _label(runs)
    return runs, skipped


def _value(cfg: Config, key: str) -> str:
    return repr(functools.reduce(getattr, key.split("."), cfg))


def _label(runs: list[Run]) -> None:
    """Algorithm label: ``cfg.algo``, the preset when presets differ, and every config field that
    differs within one algorithm's runs (e.g. a swept ``cohort.alpha``)."""
    by_algo = defaultdict(list)
    for run in runs:
        by_algo[run.cfg.algo].append(run.cfg)
    keys = [k for k in field_docs() if k not in NOT_EXPERIMENT and not k.startswith(("perf.", "eval."))]
    varying = [k for k in keys if any(len({_value(c, k) for c in cfgs}) > 1 for cfgs in by_algo.values())]
    show_preset = len({run.cfg.preset for run in runs}) > 1
    for run in runs:
        run.label = (run.cfg.algo + (f" [{run.cfg.preset}]" if show_preset else "")
                     + "".join(f" {k}={_value(run.cfg, k)}" for k in varying))


def duplicates(runs: list[Run]) -> list[str]:
    """Runs that share task, algorithm and seed: they count as separate seeds, which they are not."""
    by_key = defaultdict(list)
    for run in runs:
        by_key[(run.task, run.label, run.cfg.seed)].append(run.path.name)
    return [f"{', '.join(names)} share game {game}/{mode}, algorithm {label} and seed {seed}"
            for ((game, mode), label, seed), names in by_key.items() if len(names) > 1]
