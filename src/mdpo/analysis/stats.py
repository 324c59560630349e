"""Aggregate statistics over runs and tasks, as rliable defines them (Agarwal et al. 2021).

Scores come as one array per task holding that task's runs; tasks may have different numbers of
runs. Every statistic reduces the last axis, so the bootstrap can pass (reps, runs) arrays at once.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

Tasks = Sequence[np.ndarray]


def aggregate_mean(tasks: Tasks) -> np.ndarray:
    """Mean over tasks of each task's mean score."""
    return np.mean([t.mean(-1) for t in tasks], axis=0)


def aggregate_median(tasks: Tasks) -> np.ndarray:
    """Median over tasks of each task's mean score."""
    return np.median([t.mean(-1) for t in tasks], axis=0)


def aggregate_iqm(tasks: Tasks) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% of all runs of all tasks pooled."""
    pooled = np.sort(np.concatenate(list(tasks), axis=-1), axis=-1)
    cut = pooled.shape[-1] // 4  # runs dropped at each end, as scipy.stats.trim_mean(x, 0.25)
    return pooled[..., cut:pooled.shape[-1] - cut].mean(-1)


def probability_of_improvement(x_tasks: Tasks, y_tasks: Tasks) -> np.ndarray:
    """P(X > Y): per task, the chance that a run of X beats a run of Y (ties count 1/2, the
    Mann-Whitney U statistic over all pairs), averaged over tasks. Tasks pair up by position."""
    per_task = []
    for x, y in zip(x_tasks, y_tasks, strict=True):
        x, y = x[..., :, None], y[..., None, :]
        per_task.append(((x > y) + 0.5 * (x == y)).mean(axis=(-2, -1)))
    return np.mean(per_task, axis=0)


def stratified_bootstrap(statistic: Callable[..., np.ndarray], *samples: Tasks, reps: int = 2000,
                         seed: int = 0, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of ``statistic(*samples)``, resampling runs with replacement within each
    task (of each sample separately), never across tasks."""
    rng = np.random.default_rng(seed)
    resampled = [[t[rng.integers(0, len(t), size=(reps, len(t)))] for t in tasks] for tasks in samples]
    values = statistic(*resampled)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_mean(values: Sequence[float] | np.ndarray, reps: int = 2000, seed: int = 0,
                   confidence: float = 0.95) -> tuple:
    """Mean over the first axis (the seeds) and a percentile-bootstrap interval of that mean, seeds
    resampled with replacement; further axes (e.g. steps of a curve) are carried along. Being made
    of means of observed values, the interval never leaves the observed range. With fewer than 2
    seeds the interval is (nan, nan)."""
    x = np.asarray(values, dtype=float)
    mean = x.mean(0) if len(x) else np.float64("nan")
    if len(x) < 2:
        return mean, mean * np.nan, mean * np.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(reps, len(x)))].mean(1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.clip(np.percentile(means, [tail, 100 - tail], axis=0), x.min(0), x.max(0))  # round-off
    return mean, low, high
