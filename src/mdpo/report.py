"""``mdpo report RUNS_OR_DIRS... --out DIR``: numbers first, pictures second, over saved runs.

Runs are grouped by task (game, mode) and algorithm label; seeds are the repeats. Writes
report.md (tables, then figures beside it), report.html (the same, images embedded, one file),
report.json (every number) and the figures. A run without eval.json (still in progress, or
stopped) counts with its last periodic evaluation; a folder that is not a run is named and skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from mdpo.analysis.collect import Run, duplicates, find_runs
from mdpo.analysis.document import Document
from mdpo.analysis.robustness import ROBUSTNESS, format_stat
from mdpo.analysis.tsne import TSNE
from mdpo.errors import MdpoError
from mdpo.runs import write_json
from mdpo.stats import (
    aggregate_iqm,
    aggregate_mean,
    aggregate_median,
    probability_of_improvement,
    stratified_bootstrap,
    t_interval,
)

AGGREGATES = {"mean": aggregate_mean, "median": aggregate_median, "iqm": aggregate_iqm}
BOOTSTRAP_REPS = 2000

# ---- numbers ---------------------------------------------------------------------------------


def _fmt(mean: float, low: float = math.nan, high: float = math.nan, digits: int = 2) -> str:
    if math.isnan(mean):
        return "n/a"
    if math.isnan(low):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def groups(runs: list[Run]) -> dict[tuple[str, str], dict[str, list[Run]]]:
    """task -> algorithm label -> runs (sorted)."""
    out: dict = defaultdict(lambda: defaultdict(list))
    for run in sorted(runs, key=lambda r: (r.task, r.label, r.cfg.seed, r.path.name)):
        out[run.task][run.label].append(run)
    return out


def mean_curve(runs: list[Run], key: str) -> dict[str, list[float]]:
    """Mean and 95% t-interval across runs of ``key`` (test/train) on the union of their
    evaluation steps; each run counts only within the steps it has reached."""
    grid = np.unique(np.concatenate([r.steps for r in runs]))
    values = np.full((len(runs), len(grid)), np.nan)
    for i, run in enumerate(runs):
        inside = (grid >= run.steps[0]) & (grid <= run.steps[-1])
        values[i, inside] = np.interp(grid[inside], run.steps, getattr(run, key))
    stats = [t_interval(col[~np.isnan(col)]) for col in values.T]
    return {"steps": grid.tolist(), **{name: [s[j] for s in stats] for j, name in enumerate(("mean", "low", "high"))}}


def final_rows(grouped: dict) -> list[dict]:
    """Per task and algorithm: final test and train return, gap and normalised test score."""
    rows = []
    for (game, mode), by_label in grouped.items():
        for label, runs in by_label.items():
            scores = [r.score for r in runs if r.score is not None]
            rows.append({
                "game": game, "mode": mode, "algorithm": label, "seeds": [r.cfg.seed for r in runs],
                "steps": [r.final_step for r in runs], "finished": sum(r.done for r in runs),
                "test_return": t_interval([r.final_test for r in runs]),
                "train_return": t_interval([r.final_train for r in runs]),
                "gap": t_interval([r.final_train - r.final_test for r in runs]),
                "test_score": t_interval(scores) if scores else None,
                "test_returns": [r.final_test for r in runs],
            })
    return rows


def task_scores(grouped: dict) -> dict[str, dict[tuple[str, str], np.ndarray]]:
    """algorithm -> task -> normalised final test scores of its runs (tasks with constants only)."""
    out: dict = defaultdict(dict)
    for task, by_label in grouped.items():
        for label, runs in by_label.items():
            scores = [r.score for r in runs if r.score is not None]
            if scores:
                out[label][task] = np.array(scores)
    return out


def aggregate_rows(scores: dict) -> list[dict]:
    """Mean, median and IQM of normalised scores with stratified-bootstrap 95% intervals."""
    rows = []
    for label, by_task in scores.items():
        tasks = list(by_task.values())
        row = {"algorithm": label, "tasks": len(tasks), "runs": sum(len(t) for t in tasks)}
        for name, statistic in AGGREGATES.items():
            row[name] = (float(statistic(tasks)), *stratified_bootstrap(statistic, tasks, reps=BOOTSTRAP_REPS))
        rows.append(row)
    return rows


def improvement_rows(scores: dict) -> list[dict]:
    """P(X > Y) over the tasks both algorithms ran, for every ordered pair."""
    rows = []
    for x, x_tasks in scores.items():
        for y, y_tasks in scores.items():
            shared = sorted(set(x_tasks) & set(y_tasks))
            if x == y or not shared:
                continue
            xs, ys = [x_tasks[t] for t in shared], [y_tasks[t] for t in shared]
            value = float(probability_of_improvement(xs, ys))
            rows.append({"x": x, "y": y, "tasks": len(shared),
                         "p": (value, *stratified_bootstrap(probability_of_improvement, xs, ys, reps=BOOTSTRAP_REPS))})
    return rows


# ---- the document ----------------------------------------------------------------------------


def _runs_table(doc: Document, runs: list[Run]) -> None:
    rows = []
    for r in sorted(runs, key=lambda r: (r.task, r.label, r.cfg.seed)):
        status = "done" if r.done else f"in progress ({r.final_step:,} of {r.cfg.total_steps:,} steps)"
        rows.append([r.path.name, r.cfg.env.game, r.cfg.env.mode, r.label, r.cfg.seed, r.cfg.cohort.num_agents,
                     status, f"{r.final_step:,}", _fmt(r.final_test), _fmt(r.final_train)])
    doc.table(["run", "game", "mode", "algorithm", "seed", "agents", "status", "steps", "test return", "train return"],
              rows)


def _final_table(doc: Document, rows: list[dict]) -> None:
    table = []
    for row in rows:
        steps = sorted(set(row["steps"]))
        table.append([row["game"], row["mode"], row["algorithm"], len(row["seeds"]),
                      f"{steps[0]:,}" if len(steps) == 1 else f"{steps[0]:,}-{steps[-1]:,}",
                      _fmt(*row["test_return"]), _fmt(*row["train_return"]), _fmt(*row["gap"]),
                      _fmt(*row["test_score"], digits=3) if row["test_score"] else "n/a"])
    doc.table(["game", "mode", "algorithm", "seeds", "steps", "test return", "train return", "gap (train - test)",
               "test score"], table)


def _robustness_section(doc: Document, runs: list[Run]) -> None:
    measured = [r for r in runs if ROBUSTNESS in r.extras]
    if not measured:
        return
    families = list(dict.fromkeys(f for r in measured for f in r.extras[ROBUSTNESS]["settings"]["families"]))
    doc.heading("Robustness (Table 1)")
    settings = {json.dumps(r.extras[ROBUSTNESS]["settings"], sort_keys=True) for r in measured}
    note = ("KL(pi(frame) || pi(perturbed)) and encoder feature distance (relative to the mean feature norm), "
            "mean ± std over frame/perturbation pairs, averaged over a run's agents; lower is more robust. ")
    if len(settings) == 1:
        note += f"Probe: {', '.join(f'{k}={v}' for k, v in json.loads(settings.pop()).items())}."
    else:
        note += "Warning: these runs were probed with different settings; compare only like with like."
    doc.paragraph(note)
    table = []
    for r in sorted(measured, key=lambda r: (r.task, r.label, r.cfg.seed)):
        summary = r.extras[ROBUSTNESS]["summary"]
        cells = [r.path.name, r.cfg.env.game, r.label, f"{r.extras[ROBUSTNESS]['global_step']:,}"]
        for f in families:
            s = summary.get(f)
            cells += [format_stat(s, "kl"), format_stat(s, "feature")] if s else ["", ""]
        table.append(cells)
    doc.table(["run", "game", "algorithm", "at step"] + [f"{f} {w}" for f in families for w in ("KL", "feature")],
              table)
    doc.paragraph("In the paper's layout: KL mean ± std per algorithm and game, each averaged over runs.")
    games = list(dict.fromkeys(r.cfg.env.game for r in measured))
    cells = defaultdict(list)
    for r in measured:
        for f, s in r.extras[ROBUSTNESS]["summary"].items():
            cells[(r.label, f, r.cfg.env.game)].append(s)
    rows = []
    for label, f in dict.fromkeys((label, f) for label, f, _ in cells):
        row = [label, f]
        for game in games:
            stats = cells.get((label, f, game), [])
            row.append(format_stat({k: float(np.mean([s[k] for s in stats])) for k in ("kl_mean", "kl_std")}, "kl")
                       if stats else "")
        rows.append(row)
    doc.table(["algorithm", "perturbation"] + games, rows)


def _tsne_section(doc: Document, runs: list[Run]) -> None:
    measured = [r for r in runs if TSNE in r.extras]
    if not measured:
        return
    doc.heading("t-SNE spread (Figure 4)")
    doc.paragraph("Spread of each frame's perturbed copies in feature space: mean distance to their centroid over "
                  "their mean feature norm, averaged over frames; lower means a tighter cloud.")
    table = []
    for r in sorted(measured, key=lambda r: (r.task, r.label, r.cfg.seed)):
        t = r.extras[TSNE]
        s = t["settings"]
        table.append([r.path.name, r.cfg.env.game, r.label, t["agent"], f"{t['spread']:.4f}",
                      f"{s['families'][0]}, {s['frames']} x {s['perturbations']}, seed {s['seed']}",
                      f"{t['global_step']:,}"])
    doc.table(["run", "game", "algorithm", "agent", "spread", "probe", "at step"], table)


def _finite(data):
    """NaN (an interval from one seed) as null, so report.json is strict JSON."""
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return None if isinstance(data, float) and math.isnan(data) else data


def write_report(paths: list[Path], out_dir: Path) -> Path:
    """Report over ``paths`` (run folders or folders holding them) into ``out_dir``; returns the
    path of report.md. Raises MdpoError when no path holds a reportable run."""
    from mdpo.analysis import plots

    out_dir = Path(out_dir).resolve()
    runs, skipped = find_runs(paths, out_dir)
    repeated = duplicates(runs)
    for line in skipped:
        print(f"mdpo report: skipped {line}", file=sys.stderr)
    for line in repeated:
        print(f"mdpo report: warning: {line}", file=sys.stderr)
    if not runs:
        raise MdpoError("no runs to report" + (": " + "; ".join(skipped) if skipped else ""))
    out_dir.mkdir(parents=True, exist_ok=True)
    grouped = groups(runs)
    finals = final_rows(grouped)
    scores = task_scores(grouped)
    aggregates, improvements = aggregate_rows(scores), improvement_rows(scores)
    curves = {f"{g}/{m}": {label: {k: mean_curve(rs, k) for k in ("test", "train")} for label, rs in by_label.items()}
              for (g, m), by_label in grouped.items()}

    doc = Document("mdpo report")
    in_progress = sum(not r.done for r in runs)
    doc.paragraph(f"{len(runs)} runs, {len(grouped)} task(s), {len({r.label for r in runs})} algorithm(s); "
                  f"{in_progress} without a final evaluation, reported at their last periodic evaluation. "
                  "Intervals are 95%: Student t across seeds for returns, stratified bootstrap "
                  f"({BOOTSTRAP_REPS} resamples) for aggregates.")
    if skipped:
        doc.heading("Skipped")
        doc.bullets(skipped)
    if repeated:
        doc.heading("Warnings")
        doc.bullets([f"{line}; each counts as a seed" for line in repeated])
    doc.heading("Final returns (Figure 3)")
    _final_table(doc, finals)
    doc.heading("Aggregate normalised test scores")
    if aggregates:
        doc.paragraph("Min-max normalised test scores (Procgen constants for the mode), rliable's definitions: mean "
                      "and median over tasks of per-task mean scores, IQM of all runs pooled.")
        doc.table(["algorithm", "tasks", "runs", "mean", "median", "IQM"],
                  [[a["algorithm"], a["tasks"], a["runs"], *(_fmt(*a[k], digits=3) for k in AGGREGATES)]
                   for a in aggregates])
        if improvements:
            doc.paragraph("Probability of improvement P(X > Y): chance that a run of X beats a run of Y on a task "
                          "(ties count 1/2), averaged over the tasks both ran.")
            doc.table(["X", "Y", "tasks", "P(X > Y)"],
                      [[p["x"], p["y"], p["tasks"], _fmt(*p["p"], digits=3)] for p in improvements])
    else:
        doc.paragraph("No task has normalisation constants, so there are no aggregate scores.")
    _robustness_section(doc, runs)
    _tsne_section(doc, runs)
    doc.heading("Runs")
    _runs_table(doc, runs)

    doc.heading("Figures")
    doc.image(plots.learning_curves(curves, out_dir / "curves.png"),
              "Test (solid) and train (dashed) return against env steps per agent; mean and 95% interval across seeds")
    doc.image(plots.final_bars(finals, out_dir / "final_test.png"),
              "Final test return per game and algorithm; dots are seeds, bars 95% intervals")
    if aggregates:
        doc.image(plots.aggregate_intervals(aggregates, list(AGGREGATES), out_dir / "aggregates.png"),
                  "Aggregate normalised test scores with 95% stratified-bootstrap intervals")

    (out_dir / "report.md").write_text(doc.markdown())
    (out_dir / "report.html").write_text(doc.html())
    write_json(out_dir / "report.json", _finite({
        "runs": [{"path": str(r.path), "game": r.cfg.env.game, "mode": r.cfg.env.mode, "algorithm": r.label,
                  "seed": r.cfg.seed, "done": r.done, "step": r.final_step, "test_return": r.final_test,
                  "train_return": r.final_train, "test_score": r.score, **r.extras} for r in runs],
        "final": finals, "aggregates": aggregates, "improvement": improvements, "curves": curves, "skipped": skipped,
        "duplicates": repeated,
    }))
    return out_dir / "report.md"


def cmd_report(args: argparse.Namespace) -> None:
    path = write_report([Path(p) for p in args.paths], Path(args.out))
    text = path.read_text()
    for line in text.splitlines():
        if line.startswith("## Figures"):
            break
        print(line)
    print(f"written: {path}, {path.with_suffix('.html')}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="tables and figures over runs: returns, aggregates, robustness, t-SNE")
    p.add_argument("paths", nargs="+", metavar="RUNS_OR_DIRS", help="run folders, or folders holding run folders")
    p.add_argument("--out", required=True, metavar="DIR", help="where report.md, report.html and figures go")
    p.set_defaults(func=cmd_report)
