"""The runs a report covers: found under the given paths and loaded with every logged metric."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mdpo.config import Config
from mdpo.envs import score_range
from mdpo.errors import MdpoError
from mdpo.logger import read_metrics
from mdpo.runs import CONFIG, EVAL, ROBUSTNESS, TSNE, load_config

TEST_RETURN, TRAIN_RETURN = "eval/test_return", "eval/train_return"


class Series(NamedTuple):
    steps: np.ndarray  # env steps per agent
    values: np.ndarray


@dataclass
class Run:
    path: Path
    cfg: Config
    series: dict[str, Series]  # every metric of metrics.jsonl, by name
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
        return int(self.series[TEST_RETURN].steps[-1])

    @property
    def score(self) -> float | None:
        """Min-max normalised final test return, where the game has constants."""
        bounds = score_range(self.cfg.env)
        return None if bounds is None else (self.final_test - bounds[0]) / (bounds[1] - bounds[0])

    @property
    def gap_score(self) -> float | None:
        """The final train-test gap on the same normalised scale, where the game has constants."""
        bounds = score_range(self.cfg.env)
        return None if bounds is None else (self.final_train - self.final_test) / (bounds[1] - bounds[0])


def metric_series(rows: list[dict]) -> dict[str, Series]:
    """Each metric's values by step; should a step repeat, its last record wins."""
    by_name: dict[str, dict[int, float]] = defaultdict(dict)
    for row in rows:
        for name, value in row.items():
            by_name[name][row["global_step"]] = value
    by_name.pop("global_step", None)
    series = {}
    for name, values in by_name.items():
        steps = sorted(values)
        # dtype float: a non-finite value, logged as null, reads as nan
        series[name] = Series(np.array(steps, dtype=float), np.array([values[s] for s in steps], dtype=float))
    return series


def load_run(path: Path) -> Run | str:
    """The run in ``path``, or the reason it cannot be reported."""
    try:
        cfg = load_config(path)
        series = metric_series(read_metrics(path))
        done = (path / EVAL).exists()
        summary = json.loads((path / EVAL).read_text())["summary"] if done else None
        extras = {name: json.loads((path / name).read_text()) for name in (ROBUSTNESS, TSNE) if (path / name).exists()}
    except MdpoError as exc:
        return str(exc)
    except (json.JSONDecodeError, KeyError) as exc:
        return f"{path}: unreadable metrics.jsonl, eval.json, {ROBUSTNESS} or {TSNE} ({type(exc).__name__})"
    if TEST_RETURN not in series:
        return f"{path}: no evaluation yet"
    final = summary or {name: series[name].values[-1] for name in (TEST_RETURN, TRAIN_RETURN)}
    return Run(path, cfg, series, done, final[TEST_RETURN], final[TRAIN_RETURN], extras)


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
    return runs, skipped


def duplicates(runs: list[Run]) -> list[str]:
    """Runs that share task, algorithm and seed: they count as separate seeds, which they are not."""
    by_key = defaultdict(list)
    for run in runs:
        by_key[(run.task, run.label, run.cfg.seed)].append(run.path.name)
    return [f"{', '.join(names)} share game {game}/{mode}, algorithm {label} and seed {seed}"
            for ((game, mode), label, seed), names in by_key.items() if len(names) > 1]
