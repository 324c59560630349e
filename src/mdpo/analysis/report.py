"""``mdpo report RUNS_OR_DIRS... --out DIR``: tables and figures over saved runs.

Runs are grouped by task (game, mode) and label (the algorithm, plus whatever config fields tell
one algorithm's runs of a game apart); seeds are the repeats. Writes report.md (each table with its
figures, which lie beside it), report.html (the same, images embedded, one file), report.json
(every number) and the figures. A run without eval.json (still in progress, or stopped) counts with
its last periodic evaluation; a folder that is not a run is named and skipped.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from mdpo.analysis.collect import Run, duplicates, find_runs
from mdpo.analysis.document import Document
from mdpo.analysis.labels import label_runs, run_order
from mdpo.analysis.stats import (
    aggregate_iqm,
    aggregate_mean,
    aggregate_median,
    bootstrap_mean,
    probability_of_improvement,
    stratified_bootstrap,
)
from mdpo.errors import MdpoError
from mdpo.runs import write_json

AGGREGATES = {"mean": aggregate_mean, "median": aggregate_median, "iqm": aggregate_iqm}
BOOTSTRAP_REPS = 2000

# ---- numbers ---------------------------------------------------------------------------------


def groups(runs: list[Run]) -> dict[tuple[str, str], dict[str, list[Run]]]:
    """task -> algorithm label -> runs (sorted)."""
    out: dict = defaultdict(lambda: defaultdict(list))
    for run in sorted(runs, key=run_order):
        out[run.task][run.label].append(run)
    return out


def seed_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean over seeds and its 95% percentile-bootstrap interval."""
    return tuple(float(x) for x in bootstrap_mean(values, reps=BOOTSTRAP_REPS))


def final_rows(grouped: dict) -> list[dict]:
    """Per task and algorithm: final test and train return, gap and normalised test score."""
    rows = []
    for (game, mode), by_label in grouped.items():
        for label, runs in by_label.items():
            scores = [r.score for r in runs if r.score is not None]
            rows.append({
                "game": game, "mode": mode, "algorithm": label, "seeds": [r.cfg.seed for r in runs],
                "steps": [r.final_step for r in runs], "finished": sum(r.done for r in runs),
                "test_return": seed_interval([r.final_test for r in runs]),
                "train_return": seed_interval([r.final_train for r in runs]),
                "gap": seed_interval([r.final_train - r.final_test for r in runs]),
                "test_score": seed_interval(scores) if scores else None,
                "test_returns": [r.final_test for r in runs],
            })
    return rows


def task_scores(grouped: dict, of: str = "score") -> dict[str, dict[tuple[str, str], np.ndarray]]:
    """algorithm -> task -> a normalised number of each of its runs (tasks with constants only): ``of`` names
    the run's property, ``score`` (the final test score) or ``gap_score`` (the train-test gap)."""
    out: dict = defaultdict(dict)
    for task, by_label in grouped.items():
        for label, runs in by_label.items():
            scores = [getattr(r, of) for r in runs if getattr(r, of) is not None]
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


def improvement_rows(scores: dict, lower_is_better: bool = False) -> list[dict]:
    """P(X > Y) over the tasks both algorithms ran, for every ordered pair; P(X < Y) where lower is better
    (a gap)."""
    sign = -1 if lower_is_better else 1
    rows = []
    for x, x_tasks in scores.items():
        for y, y_tasks in scores.items():
            shared = sorted(set(x_tasks) & set(y_tasks))
            if x == y or not shared:
                continue
            xs, ys = [sign * x_tasks[t] for t in shared], [sign * y_tasks[t] for t in shared]
            value = float(probability_of_improvement(xs, ys))
            rows.append({"x": x, "y": y, "tasks": len(shared),
                         "p": (value, *stratified_bootstrap(probability_of_improvement, xs, ys, reps=BOOTSTRAP_REPS))})
    return rows


# ---- the report ------------------------------------------------------------------------------

INTERVALS = (f"Intervals are 95%: a percentile bootstrap over seeds ({BOOTSTRAP_REPS} resamples, seeded) for "
             "returns, which stays within the seeds' range (and with 2 or 3 seeds is close to it), and a stratified "
             "bootstrap over runs within tasks for aggregates.")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _finite(data):
    """NaN (an interval from one seed) as null, so report.json is strict JSON."""
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return None if isinstance(data, float) and math.isnan(data) else data


def write_report(paths: list[Path], out_dir: Path, echo: bool = False) -> Path:
    """Report over ``paths`` (run folders or folders holding them) into ``out_dir``; returns the
    path of report.md, and with ``echo`` prints its text (no figures). Raises MdpoError when no
    path holds a reportable run."""
    from mdpo.analysis import plots, probes, sections

    out_dir = Path(out_dir).resolve()
    runs, skipped = find_runs(paths, out_dir)
    used = label_runs(runs)
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
    scores, gaps = task_scores(grouped), task_scores(grouped, "gap_score")
    aggregates, improvements = aggregate_rows(scores), improvement_rows(scores)
    gap_aggregates, gap_improvements = aggregate_rows(gaps), improvement_rows(gaps, lower_is_better=True)
    looks = plots.styles([r.label for r in runs])
    titles = sections.task_titles(list(grouped))

    doc = Document("mdpo report")
    in_progress = sum(not r.done for r in runs)
    doc.paragraph(f"{_count(len(runs), 'run')}, {_count(len(grouped), 'task')}, "
                  f"{_count(len({r.label for r in runs}), 'algorithm')}; {in_progress} without a final evaluation, "
                  "reported at their last periodic evaluation. " + INTERVALS)
    if skipped:
        doc.heading("Skipped")
        doc.bullets(skipped)
    if repeated:
        doc.heading("Warnings")
        doc.bullets([f"{line}; each counts as a seed" for line in repeated])
    sections.label_key(doc, used)
    sections.final_returns(doc, finals, looks, titles, out_dir)
    curves = sections.learning_curves(doc, runs, grouped, looks, titles, out_dir)
    sections.aggregates(doc, "score", aggregates, improvements, list(AGGREGATES), looks, out_dir)
    sections.aggregates(doc, "gap", gap_aggregates, gap_improvements, list(AGGREGATES), looks, out_dir)
    probes.robustness(doc, runs, looks, titles, out_dir)
    probes.tsne(doc, runs, titles, out_dir)
    sections.runs_table(doc, runs)

    (out_dir / "report.md").write_text(doc.markdown())
    (out_dir / "report.html").write_text(doc.html())
    write_json(out_dir / "report.json", _finite({
        "runs": [{"path": str(r.path), "game": r.cfg.env.game, "mode": r.cfg.env.mode, "algorithm": r.label,
                  "seed": r.cfg.seed, "done": r.done, "step": r.final_step, "test_return": r.final_test,
                  "train_return": r.final_train, "test_score": r.score, **r.extras} for r in runs],
        "labels": used, "final": finals, "aggregates": aggregates, "improvement": improvements,
        "gap_aggregates": gap_aggregates, "gap_improvement": gap_improvements, "curves": curves,
        "skipped": skipped, "duplicates": repeated,
    }))
    if echo:
        print(doc.markdown(images=False), end="")
    return out_dir / "report.md"


def cmd_report(args: argparse.Namespace) -> None:
    path = write_report([Path(p) for p in args.paths], Path(args.out), echo=True)
    print(f"written: {path}, {path.with_suffix('.html')}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="tables and figures over runs: returns, aggregates, robustness, t-SNE")
    p.add_argument("paths", nargs="+", metavar="RUNS_OR_DIRS", help="run folders, or folders holding run folders")
    p.add_argument("--out", required=True, metavar="DIR", help="where report.md, report.html and figures go")
    p.set_defaults(func=cmd_report)
