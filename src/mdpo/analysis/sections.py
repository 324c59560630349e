"""The report's sections on returns: the label key, final returns (Figure 3), learning curves,
aggregate scores and the list of runs, each table with its figures."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from mdpo.analysis import plots
from mdpo.analysis.collect import Run
from mdpo.analysis.curves import PER_AGENT, SMOOTHING, agent_panels, drawn_metrics, metric_panels, title, ylabel
from mdpo.analysis.document import Document
from mdpo.analysis.labels import run_order
from mdpo.config import field_docs

Looks = dict[str, plots.Style]
Titles = dict[tuple[str, str], str]


def fmt(mean: float, low: float = math.nan, high: float = math.nan, digits: int = 2) -> str:
    if math.isnan(mean):
        return "n/a"
    if math.isnan(low):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def task_titles(tasks: list[tuple[str, str]]) -> Titles:
    """Panel titles: the game, and its mode where one game appears in both modes."""
    games = [game for game, _ in tasks]
    return {(game, mode): f"{game} ({mode})" if games.count(game) > 1 else game for game, mode in tasks}


def label_key(doc: Document, used: dict[str, str]) -> None:
    if not used:
        return
    docs = field_docs()
    doc.heading("Labels")
    doc.paragraph("Runs are named by their algorithm and, where one algorithm's runs of a game differ in their "
                  "config, by the fields that differ (seeds aside):")
    doc.table(["in labels", "config field", "meaning"], [[short, name, docs[name][1]] for short, name in used.items()])


def final_returns(doc: Document, rows: list[dict], looks: Looks, titles: Titles, out_dir: Path) -> None:
    doc.heading("Final returns (Figure 3)")
    table, panels = [], defaultdict(list)
    for row in rows:
        steps = sorted(set(row["steps"]))
        table.append([row["game"], row["mode"], row["algorithm"], len(row["seeds"]),
                      f"{steps[0]:,}" if len(steps) == 1 else f"{steps[0]:,}-{steps[-1]:,}",
                      fmt(*row["test_return"]), fmt(*row["train_return"]), fmt(*row["gap"]),
                      fmt(*row["test_score"], digits=3) if row["test_score"] else "n/a"])
        panels[titles[row["game"], row["mode"]]].append(
            plots.Bar(row["algorithm"], looks[row["algorithm"]], *row["test_return"], row["test_returns"]))
    doc.table(["game", "mode", "algorithm", "seeds", "steps", "test return", "train return", "gap (train - test)",
               "test score"], table)
    doc.image(plots.bar_grid(panels, "Final test return", "test return", out_dir / "final_test.png"),
              "Final test return per game: bar = mean over seeds, whisker = 95% bootstrap interval, dots = seeds.")


def learning_curves(doc: Document, runs: list[Run], grouped: dict, looks: Looks, titles: Titles,
                    out_dir: Path) -> dict:
    """A figure per drawn metric over env steps, and per-agent ones for cohorts; returns the bands."""
    doc.heading("Learning curves")
    doc.paragraph("Against env steps per agent: the mean over seeds (thick, marked line), its 95% "
                  "percentile-bootstrap interval (band) and each seed (thin lines). Returns are those of the "
                  "periodic evaluations (eval.every); distill/* and bound/* are cohort means. A seed's curve of n "
                  f"points is smoothed by a centred moving average over n/{SMOOTHING} points where that is 2 or more; "
                  "the tables above use the unsmoothed final evaluations.")
    bands = {}
    for metric in drawn_metrics(runs):
        panels = metric_panels(grouped, metric, looks, titles)
        bands[metric] = {task: {line.name: line.band for line in lines} for task, lines in panels.items()}
        path = out_dir / f"curve-{metric.replace('/', '-')}.png"
        doc.image(plots.curve_grid(panels, title(metric), ylabel(metric), path), f"{title(metric)} ({metric}).")
    for metric in PER_AGENT:
        panels = agent_panels(grouped, metric, looks, titles)
        if panels:
            path = out_dir / f"agents-{metric.replace('/', '-')}.png"
            doc.image(plots.curve_grid(panels, f"{title(metric)}, each agent", ylabel(metric), path),
                      f"{title(metric)} of each agent of a cohort ({metric}/agentI): colour = algorithm, "
                      "shade, line style and marker = agent.")
    return bands


# what the aggregate sections say of each aggregated number: the normalised test score and train-test gap
AGGREGATED = {
    "score": {
        "heading": "Aggregate normalised test scores",
        "intro": "Min-max normalised test scores (Procgen constants for the mode; MiniGrid 0 to 1), rliable's "
                 "definitions: mean and median over tasks of per-task mean scores, IQM of all runs pooled.",
        "improvement": "Probability of improvement P(X > Y): chance that a run of X beats a run of Y on a task "
                       "(ties count 1/2), averaged over the tasks both ran.",
        "p": "P(X > Y)", "file": "aggregates.png", "axis": "normalised score",
    },
    "gap": {
        "heading": "Aggregate normalised train-test gap",
        "intro": "The final train-seed return minus the test-seed return of each run, on the normalised scale, "
                 "aggregated as the scores are; smaller means the policy does as well on unseen levels as on its "
                 "training levels.",
        "improvement": "P(X < Y): chance that a run of X has a smaller gap than a run of Y on a task (ties count "
                       "1/2), averaged over the tasks both ran.",
        "p": "P(gap X < gap Y)", "file": "gap-aggregates.png", "axis": "normalised gap",
    },
}


def aggregates(doc: Document, what: str, rows: list[dict], improvements: list[dict], metrics: list[str],
               looks: Looks, out_dir: Path) -> None:
    """Mean, median and IQM with intervals, the probability of improvement, and their figure, of ``what``
    (a key of ``AGGREGATED``); the gap's section is left out where there are no scores."""
    text = AGGREGATED[what]
    if not rows and what == "gap":
        return
    doc.heading(text["heading"])
    if not rows:
        doc.paragraph("No task has normalisation constants, so there are no aggregate scores.")
        return
    doc.paragraph(text["intro"])
    doc.table(["algorithm", "tasks", "runs", "mean", "median", "IQM"],
              [[a["algorithm"], a["tasks"], a["runs"], *(fmt(*a[k], digits=3) for k in metrics)] for a in rows])
    if improvements:
        doc.paragraph(text["improvement"])
        doc.table(["X", "Y", "tasks", text["p"]],
                  [[p["x"], p["y"], p["tasks"], fmt(*p["p"], digits=3)] for p in improvements])
    doc.image(plots.aggregate_intervals(rows, metrics, looks, out_dir / text["file"], text["axis"]),
              f"{text['heading']}: point estimate (tick) and 95% stratified-bootstrap interval (bar).")


def runs_table(doc: Document, runs: list[Run]) -> None:
    doc.heading("Runs")
    rows = []
    for r in sorted(runs, key=run_order):
        status = "done" if r.done else f"in progress ({r.final_step:,} of {r.cfg.total_steps:,} steps)"
        rows.append([r.path.name, r.cfg.env.game, r.cfg.env.mode, r.label, r.cfg.seed, r.cfg.cohort.num_agents,
                     status, f"{r.final_step:,}", fmt(r.final_test), fmt(r.final_train)])
    doc.table(["run", "game", "mode", "algorithm", "seed", "agents", "status", "steps", "test return", "train return"],
              rows)
