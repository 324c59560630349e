"""The report's figures, drawn from numbers the report has already computed. Each returns its path."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _colors(labels: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {label: cmap(i % 10) for i, label in enumerate(sorted(set(labels)))}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def learning_curves(curves: dict[str, dict[str, dict]], path: Path) -> Path:
    """One panel per task: per algorithm, test (solid) and train (dashed) mean with its interval."""
    colors = _colors([label for by_label in curves.values() for label in by_label])
    columns = min(len(curves), 4)
    rows = math.ceil(len(curves) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.4 * rows), squeeze=False)
    for ax, (task, by_label) in zip(axes.flat, curves.items()):
        for label, split in by_label.items():
            for key, style in (("test", "-"), ("train", "--")):
                c = split[key]
                ax.plot(c["steps"], c["mean"], style, color=colors[label], marker=".",
                        label=f"{label} ({key})")
                ax.fill_between(c["steps"], c["low"], c["high"], color=colors[label], alpha=0.15, linewidth=0)
        ax.set_title(task)
        ax.set_xlabel("env steps per agent")
        ax.set_ylabel("return")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(curves):]:
        ax.axis("off")
    return _save(fig, path)


def final_bars(rows: list[dict], path: Path) -> Path:
    """Final test return per task, one bar per algorithm, seeds as dots (paper Figure 3)."""
    tasks = list(dict.fromkeys(f"{r['game']}/{r['mode']}" for r in rows))
    labels = sorted({r["algorithm"] for r in rows})
    colors = _colors(labels)
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(tasks) * len(labels) + 1.5), 3.8))
    for row in rows:
        offset = (labels.index(row["algorithm"]) - (len(labels) - 1) / 2) * width
        x = tasks.index(f"{row['game']}/{row['mode']}") + offset
        mean, low, high = row["test_return"]
        error = None if math.isnan(low) else [[mean - low], [high - mean]]
        ax.bar(x, mean, width * 0.9, yerr=error, capsize=3, color=colors[row["algorithm"]], alpha=0.8,
               label=row["algorithm"])
        ax.scatter([x] * len(row["test_returns"]), row["test_returns"], s=12, color="black", zorder=3)
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=8)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylabel("final test return")
    return _save(fig, path)


def aggregate_intervals(rows: list[dict], metrics: list[str], path: Path) -> Path:
    """rliable-style: per metric, each algorithm's point estimate and bootstrap interval."""
    labels = [r["algorithm"] for r in rows]
    colors = _colors(labels)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 0.5 * len(rows) + 1.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for i, row in enumerate(rows):
            point, low, high = row[metric]
            ax.plot([low, high], [i, i], color=colors[row["algorithm"]], linewidth=8, alpha=0.5, solid_capstyle="butt")
            ax.plot([point], [i], "|", color="black", markersize=14)
        ax.set_yticks(range(len(rows)), labels if ax is axes[0][0] else [""] * len(rows))
        ax.set_title(metric.upper() if metric == "iqm" else metric.capitalize())
        ax.set_xlabel("normalised score")
        ax.set_ylim(-0.7, len(rows) - 0.3)
    return _save(fig, path)
