"""Curves over env steps across seeds: which metrics a report draws, each label's mean with a
bootstrap band, and the figures' panels (one per game)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from mdpo.analysis.collect import Run, Series
from mdpo.analysis.plots import LINESTYLES, MARKERS, Line, Style
from mdpo.analysis.stats import bootstrap_mean

TITLES = {
    "eval/test_return": "Test return (unseen levels)",
    "eval/train_return": "Train return (training levels)",
    "eval/gap": "Generalization gap (train − test return)",
    "distill/kl": "Distillation loss: KL between peers",
    "bound/peer_tv": "Total variation between peers' policies",
    "bound/robust_tv_train": "TV under a random conv, training frames",
    "bound/robust_tv_test": "TV under a random conv, held-out frames",
    "bound/robust_kl_train": "KL under a random conv, training frames",
    "bound/robust_kl_test": "KL under a random conv, held-out frames",
}
GROUPS = ("eval/", "distill/", "bound/")
PER_AGENT = ("eval/test_return", "eval/train_return")
NOT_DRAWN = {"distill/alpha", "distill/teacher"}  # a schedule and an index, not measurements
SMOOTHING = 30  # a curve of n points is averaged over windows of n // SMOOTHING points


def title(metric: str) -> str:
    return TITLES.get(metric, f"{metric} (cohort mean)" if metric.startswith("distill/") else metric)


def ylabel(metric: str) -> str:
    """``return`` for returns, ``train − test return`` for the gap, else the metric's own name."""
    if metric == "eval/gap":
        return "train − test return"
    return "return" if metric.endswith("_return") else metric.split("/", 1)[1]


def drawn_metrics(runs: list[Run]) -> list[str]:
    """Test and train return and the gap, then every distill/* and bound/* metric a run logged
    (cohort means: per-agent values have figures of their own); known ones in TITLES' order."""
    logged = set().union(*(run.series for run in runs))
    drawn = [m for m in logged if m.startswith(GROUPS) and "/agent" not in m and m not in NOT_DRAWN
             and (m in TITLES or not m.startswith("eval/"))]
    known = list(TITLES)
    return sorted(drawn, key=lambda m: (GROUPS.index(m.split("/")[0] + "/"),
                                        known.index(m) if m in known else len(known), m))


def band(seeds: list[Series]) -> dict[str, list[float]]:
    """Mean and 95% bootstrap interval across seeds on the union of their steps. A seed counts only
    within the steps it has reached, linearly interpolated between its own."""
    grid = np.unique(np.concatenate([s.steps for s in seeds]))
    values = np.full((len(seeds), len(grid)), np.nan)
    for i, s in enumerate(seeds):
        inside = (grid >= s.steps[0]) & (grid <= s.steps[-1])
        values[i, inside] = np.interp(grid[inside], s.steps, s.values)
    present = ~np.isnan(values)
    mean, low, high = (np.full(len(grid), np.nan) for _ in range(3))
    for which in np.unique(present, axis=1).T:  # one bootstrap per set of seeds present
        columns = (present == which[:, None]).all(0)
        mean[columns], low[columns], high[columns] = bootstrap_mean(values[which][:, columns])
    return {"steps": grid.tolist(), "mean": mean.tolist(), "low": low.tolist(), "high": high.tolist()}


def smoothed(series: Series) -> Series:
    """A centred moving average over ``len // SMOOTHING`` points (narrower at the ends), so that
    noisy evaluations and per-update losses show their trend; short curves stay as they are."""
    window = len(series.values) // SMOOTHING
    if window < 2:
        return series
    kernel = np.ones(window)
    sums = np.convolve(series.values, kernel, "same")
    return Series(series.steps, sums / np.convolve(np.ones(len(sums)), kernel, "same"))


def shade(color: tuple, agent: int) -> tuple:
    """The label's colour for agent 0, darker for each further agent."""
    return tuple(c * 0.65 ** agent for c in color[:3])


Grouped = dict[tuple[str, str], dict[str, list[Run]]]


def _panels(grouped: Grouped, titles: dict, lines: Callable[[str, list[Run]], list[Line]]) -> dict[str, list[Line]]:
    out = {}
    for task, by_label in grouped.items():
        drawn = [line for label, runs in by_label.items() for line in lines(label, runs)]
        if drawn:
            out[titles[task]] = drawn
    return out


def metric_panels(grouped: Grouped, metric: str, looks: dict[str, Style], titles: dict) -> dict[str, list[Line]]:
    """Per game, a line per label whose runs logged ``metric``."""

    def lines(label: str, runs: list[Run]) -> list[Line]:
        seeds = [smoothed(run.series[metric]) for run in runs if metric in run.series]
        return [Line(label, looks[label], band(seeds), seeds)] if seeds else []

    return _panels(grouped, titles, lines)


def agent_panels(grouped: Grouped, metric: str, looks: dict[str, Style], titles: dict) -> dict[str, list[Line]]:
    """Per game, for each cohort's label a line per agent (``metric/agentI``): the label's colour
    in the agent's shade, line style and marker."""

    def lines(label: str, runs: list[Run]) -> list[Line]:
        out = []
        for i in range(max(run.cfg.cohort.num_agents for run in runs)):
            name = f"{metric}/agent{i}"
            seeds = [smoothed(run.series[name]) for run in runs if name in run.series]
            if seeds:
                look = Style(shade(looks[label].color, i), LINESTYLES[i % len(LINESTYLES)], MARKERS[i % len(MARKERS)])
                out.append(Line(f"{label}, agent {i}", look, band(seeds), seeds))
        return out

    return _panels(grouped, titles, lines)
