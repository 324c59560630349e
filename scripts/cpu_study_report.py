"""Figures and tables of the CPU study (scripts/cpu_study.sh) for docs/results/cpu/.

    python3 scripts/cpu_study_report.py runs/cpu docs/results/cpu

Draws the training return (``charts/episodic_return``, smoothed, mean over seeds with the seeds'
range) of MinAtar runs with the published numbers of ../shared/reference.md section 6 as markers,
and MiniGrid's periodic evaluations on training and test seeds. Writes tables.md (one row per run,
then per game and algorithm) and copies each run's config, metrics and evaluation into OUT/runs/
(no checkpoints).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mdpo.logger import read_metrics  # noqa: E402

# (env steps, return, source) as published; "~" values were read off plots by their sources
PUBLISHED = {
    "MinAtar/Breakout-v1": [(1e6, 15, "PPO, gymnax-blines (~)"), (1e6, 9, "actor-critic, MinAtar paper (~)"),
                            (0, 0.48, "random")],
    "MinAtar/SpaceInvaders-v1": [(1e6, 55, "PPO, gymnax-blines (~)"), (0, 2.9, "random")],
}
COLOURS = {"ppo": "tab:blue", "mdpo": "tab:orange"}
KEPT = ("config.json", "metrics.jsonl", "eval.json", "resumes.jsonl")


def load(run: Path) -> dict:
    cfg = json.loads((run / "config.json").read_text())
    rows = read_metrics(run)
    train = [(r["global_step"], r["charts/episodic_return"]) for r in rows if "charts/episodic_return" in r]
    evals = [(r["global_step"], r["eval/train_return"], r["eval/test_return"]) for r in rows if "eval/test_return" in r]
    final = json.loads((run / "eval.json").read_text())["summary"] if (run / "eval.json").exists() else None
    last = [v for _, v in train[-3:]]
    ends = [p.stat().st_mtime for p in (run / "eval.json", run / "checkpoint.pt", run / "metrics.jsonl") if p.exists()]
    return {"name": run.name, "game": cfg["env"]["game"], "algo": cfg["algo"], "seed": cfg["seed"], "train": train,
            "evals": evals, "final": final, "steps": train[-1][0] if train else 0,
            "last_return": sum(last) / len(last) if last else float("nan"),
            "wall_s": max(ends) - (run / "config.json").stat().st_mtime}


def smooth(values: list[float], width: int = 5) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    return np.array([x[max(0, i - width + 1):i + 1].mean() for i in range(len(x))])


def seed_band(runs: list[dict], key: str, column: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps and (mean, min, max) over seeds, on the steps all seeds reached."""
    length = min(len(r[key]) for r in runs)
    steps = np.array([row[0] for row in runs[0][key][:length]])
    ys = np.stack([smooth([row[column] for row in r[key][:length]]) for r in runs])
    return steps, ys.mean(0), ys.min(0), ys.max(0)


def curves(by_game: dict, key: str, columns: dict, ylabel: str, path: Path, published: bool) -> None:
    games = sorted(by_game)
    fig, axes = plt.subplots(1, len(games), figsize=(5.5 * len(games), 4), squeeze=False)
    for ax, game in zip(axes[0], games):
        for algo, runs in sorted(by_game[game].items()):
            for what, (column, style) in columns.items():
                steps, mean, low, high = seed_band(runs, key, column)
                label = f"{algo} {what} ({len(runs)} seeds)".replace("  ", " ")
                ax.plot(steps, mean, style, color=COLOURS.get(algo), label=label)
                ax.fill_between(steps, low, high, color=COLOURS.get(algo), alpha=0.15)
        for step, value, source in PUBLISHED.get(game, []) if published else []:
            marker = "k_" if source == "random" else "k*"
            ax.plot([step], [value], marker, markersize=14)
            ax.annotate(source, (step, value), textcoords="offset points", xytext=(-8, 6), ha="right", fontsize=8)
        ax.set_title(game)
        ax.set_xlabel("env steps per agent")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tables(runs: list[dict]) -> str:
    lines = ["| run | env steps | training return (last 3 updates) | final eval: train seeds | final eval: test seeds "
             "| gap | wall |", "|---|---|---|---|---|---|---|"]
    for r in sorted(runs, key=lambda r: (r["game"], r["algo"], r["seed"])):
        f = r["final"] or {}
        cell = lambda k: f"{f[k]:.2f}" if k in f else "(not finished)"  # noqa: E731
        lines.append(f"| {r['name']} | {r['steps']:,} | {r['last_return']:.2f} | {cell('eval/train_return')} | "
                     f"{cell('eval/test_return')} | {cell('eval/gap')} | {r['wall_s'] / 60:.0f} min |")
    lines += ["", "Finished runs only (every seed at its full step count):", "",
              "| game | algorithm | seeds | training return, mean (min-max) | final eval train | final eval test "
              "| gap | published (1M steps) |", "|---|---|---|---|---|---|---|---|"]
    grouped = defaultdict(list)
    for r in runs:
        if r["final"]:
            grouped[r["game"], r["algo"]].append(r)
    for (game, algo), rs in sorted(grouped.items()):
        last = [r["last_return"] for r in rs]
        mean = lambda k: f"{np.mean([r['final'][k] for r in rs]):.2f}"  # noqa: E731
        published = "; ".join(f"{value:g} {source}" for step, value, source in PUBLISHED.get(game, []) if step)
        lines.append(f"| {game} | {algo} | {len(rs)} | {np.mean(last):.2f} ({min(last):.2f}-{max(last):.2f}) | "
                     f"{mean('eval/train_return')} | {mean('eval/test_return')} | {mean('eval/gap')} | "
                     f"{published or '-'} |")
    return "\n".join(lines) + "\n"


def main(runs_dir: str, out_dir: str) -> None:
    out = Path(out_dir)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    runs = [load(p) for p in sorted(Path(runs_dir).iterdir()) if (p / "config.json").exists() and read_metrics(p)]
    for r in runs:
        dest = out / "runs" / r["name"]
        dest.mkdir(exist_ok=True)
        for name in KEPT:
            if (Path(runs_dir) / r["name"] / name).exists():
                shutil.copy2(Path(runs_dir) / r["name"] / name, dest / name)
    minatar, minigrid = defaultdict(lambda: defaultdict(list)), defaultdict(lambda: defaultdict(list))
    for r in runs:
        family = minatar if r["game"].startswith("MinAtar/") else minigrid
        family[r["game"]][r["algo"]].append(r)
    if minatar:
        curves(minatar, "train", {"": (1, "-")}, "training return (mean per update, smoothed)",
               out / "minatar-training-return.png", published=True)
    if minigrid:
        curves(minigrid, "evals", {"train seeds": (1, "-"), "test seeds": (2, "--")}, "evaluation return",
               out / "minigrid-train-test.png", published=False)
    (out / "tables.md").write_text(tables(runs))
    print((out / "tables.md").read_text())


if __name__ == "__main__":
    main(*sys.argv[1:3])
