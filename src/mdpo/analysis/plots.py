"""The report's figures, drawn from numbers computed elsewhere; each function returns its path.

One panel per game (or per run, for t-SNE), laid out by constrained layout with legends outside the
axes, and one Style per label shared by every figure of a report.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

from mdpo.analysis.labels import ALGO_ORDER, label_order  # noqa: E402

COLORS = [plt.get_cmap("tab10")(i) for i in range(10)] + [plt.get_cmap("tab20")(2 * i + 1) for i in range(10)]
FIXED_COLORS = {algo: i for i, algo in enumerate(ALGO_ORDER)}  # plain algorithms: one colour in every report
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
PANEL = (3.4, 2.6)  # inches per panel
DPI = 100


@dataclass(frozen=True)
class Style:
    color: tuple
    linestyle: str
    marker: str


def styles(labels: list[str]) -> dict[str, Style]:
    """A colour, line style and marker per label. Two labels differ in all three, so a curve that
    lies on another stays visible."""
    ordered = sorted(set(labels), key=label_order)
    free = itertools.cycle([i for i in range(len(COLORS)) if i not in FIXED_COLORS.values()])
    return {label: Style(COLORS[FIXED_COLORS[label] if label in FIXED_COLORS else next(free)],
                         LINESTYLES[n % len(LINESTYLES)], MARKERS[n % len(MARKERS)])
            for n, label in enumerate(ordered)}


@dataclass
class Line:
    """One label's curve in a panel: the mean with its band, and each seed's own curve."""

    name: str
    style: Style
    band: dict  # steps, mean, low, high
    seeds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


@dataclass
class Bar:
    name: str
    style: Style
    mean: float
    low: float
    high: float
    dots: list[float]  # one per seed


def _grid(panels: int, legend_chars: int = 0):
    """A figure of ``panels`` axes, at most four a row, with room on the right for a legend."""
    columns = min(panels, 4)
    rows = math.ceil(panels / columns)
    legend = 0.8 + 0.07 * legend_chars if legend_chars else 0
    fig, axes = plt.subplots(rows, columns, figsize=(PANEL[0] * columns + legend, PANEL[1] * rows + 0.5),
                             squeeze=False, layout="constrained")
    for ax in axes.flat[panels:]:
        ax.set_visible(False)
    return fig, axes.flat[:panels]


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    return path


def _legend(fig, handles: dict[str, object]) -> None:
    fig.legend(handles.values(), handles.keys(), loc="outside right center", fontsize=8, frameon=False)


def _band(ax, line: Line) -> None:
    """The interval as a band, or as a whisker where the curve is a single evaluation."""
    b = line.band
    if len(b["steps"]) > 1:
        ax.fill_between(b["steps"], b["low"], b["high"], color=line.style.color, alpha=0.15, linewidth=0, zorder=1)
    elif not math.isnan(b["low"][0]):
        ax.errorbar(b["steps"], b["mean"], yerr=[[b["mean"][0] - b["low"][0]], [b["high"][0] - b["mean"][0]]],
                    color=line.style.color, alpha=0.5, capsize=3, zorder=1)


def curve_grid(panels: dict[str, list[Line]], title: str, ylabel: str, path: Path) -> Path:
    """One panel per game: each line's mean (thick) with its band, its seeds as thin lines."""
    names = list(dict.fromkeys(line.name for lines in panels.values() for line in lines))
    fig, axes = _grid(len(panels), max(map(len, names)))
    handles: dict[str, object] = {}
    for ax, (name, lines) in zip(axes, panels.items()):
        for line in lines:  # bands first, then seeds, then means: no mean hides under a band
            _band(ax, line)
        for line in lines:
            for steps, values in line.seeds:
                ax.plot(steps, values, color=line.style.color, linewidth=0.6, alpha=0.45, marker=".",
                        markersize=3 if len(steps) == 1 else 0, zorder=2)
        for i, line in enumerate(lines):
            points = len(line.band["steps"])
            every = max(1, points // 6)
            handles[line.name], = ax.plot(line.band["steps"], line.band["mean"], color=line.style.color,
                                          linestyle=line.style.linestyle, marker=line.style.marker, markersize=4,
                                          markevery=(i % every, every), linewidth=1.6, zorder=3)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("env steps per agent", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.25)
    if any(len(line.seeds) > 1 for lines in panels.values() for line in lines):
        handles["one seed"] = Line2D([], [], color="grey", linewidth=0.6, alpha=0.6)
        handles["95% bootstrap interval"] = Patch(color="grey", alpha=0.2, linewidth=0)
    _legend(fig, handles)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def bar_grid(panels: dict[str, list[Bar]], title: str, ylabel: str | dict[str, str], path: Path,
             ylim: tuple[float, float] | None = None) -> Path:
    """One panel per game (or game and probe): a bar per label with its whisker, seeds as dots.
    ``ylabel`` is one for all panels or one per panel title."""
    fig, axes = _grid(len(panels))
    for ax, (name, bars) in zip(axes, panels.items()):
        for x, bar in enumerate(bars):
            ax.bar(x, bar.mean, 0.7, color=bar.style.color, alpha=0.75, zorder=2)
            if not math.isnan(bar.low):
                # a clipped whisker (KL >= 0) can end above a mean that round-off made negative
                whisker = [[max(bar.mean - bar.low, 0)], [max(bar.high - bar.mean, 0)]]
                ax.errorbar(x, bar.mean, yerr=whisker, color="black", capsize=4, linewidth=1.2, zorder=3)
            spread = np.linspace(-0.18, 0.18, len(bar.dots)) if len(bar.dots) > 1 else np.zeros(1)
            ax.scatter(x + spread, bar.dots, s=14, color="black", edgecolor="white", linewidth=0.5, zorder=4,
                       clip_on=False)  # a seed at an axis limit (a rate of 0 or 1) stays whole
        long = max(len(bar.name) for bar in bars) > 8
        ax.set_xticks(range(len(bars)), [bar.name for bar in bars], rotation=30 if long else 0,
                      ha="right" if long else "center", fontsize=8)
        ax.set_xlim(-0.6, len(bars) - 0.4)
        ax.set_title(name, fontsize=10)
        ax.set_ylabel(ylabel if isinstance(ylabel, str) else ylabel[name], fontsize=8)
        if ylim:
            ax.set_ylim(ylim)
        ax.tick_params(axis="y", labelsize=7)
        ax.axhline(0, color="grey", linewidth=0.6, zorder=1)
        ax.grid(axis="y", alpha=0.25)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def aggregate_intervals(rows: list[dict], metrics: list[str], looks: dict[str, Style], path: Path,
                        xlabel: str = "normalised score") -> Path:
    """rliable-style: per metric, each algorithm's point estimate and bootstrap interval."""
    labels = [r["algorithm"] for r in rows]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics) + 0.07 * max(map(len, labels)),
                                                        0.45 * len(rows) + 1.3), squeeze=False, layout="constrained")
    for ax, metric in zip(axes[0], metrics):
        for i, row in enumerate(rows):
            point, low, high = row[metric]
            ax.plot([low, high], [i, i], color=looks[row["algorithm"]].color, linewidth=8, alpha=0.6,
                    solid_capstyle="butt")
            ax.plot([point], [i], "|", color="black", markersize=14)
        ax.set_yticks(range(len(rows)), labels if ax is axes[0][0] else [""] * len(rows), fontsize=8)
        ax.set_title(metric.upper() if metric == "iqm" else metric.capitalize(), fontsize=10)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_ylim(-0.7, len(rows) - 0.3)
    return _save(fig, path)


@dataclass
class Embedding:
    """One run's t-SNE plane: each frame's unperturbed point and its cloud of perturbed copies."""

    title: str
    originals: np.ndarray  # (frames, 2)
    clouds: np.ndarray  # (frames, copies, 2)


def tsne_grid(panels: list[Embedding], path: Path) -> Path:
    fig, axes = _grid(len(panels))
    for ax, panel in zip(axes, panels):
        # viridis, not the algorithms' colours: here a colour is a frame
        colors = plt.get_cmap("viridis")(np.linspace(0, 0.85, len(panel.originals)))
        for original, cloud, color in zip(panel.originals, panel.clouds, colors):
            ax.scatter(*cloud.T, s=8, alpha=0.6, color=color)
            ax.scatter(*original, s=140, marker="*", color=color, edgecolor="black", zorder=3)
        ax.set_title(panel.title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("t-SNE of encoder features of perturbed held-out frames\n(star: the unperturbed frame; colour: "
                 "which frame)", fontsize=10)
    return _save(fig, path)
