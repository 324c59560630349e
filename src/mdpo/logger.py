"""Metrics to TensorBoard and to a plain ``metrics.jsonl`` (one JSON object per logged update).

metrics.jsonl is strict JSON: a non-finite value is written as null (and said once per metric on
stderr), never dropped. A line cut short by a kill during a write is skipped by readers.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from mdpo.runs import METRICS, append_json_line, atomic_write


class Logger:
    """Writes each logged row to metrics.jsonl, TensorBoard and, when given, a tracker (W&B)."""

    def __init__(self, run_dir: Path, resume_step: int | None = None, tracker=None):
        from torch.utils.tensorboard import SummaryWriter

        self.path = Path(run_dir) / METRICS
        if resume_step is not None and self.path.exists():
            # drop what an interrupted run logged after its last checkpoint
            kept = [row for row in read_metrics(run_dir) if row["global_step"] <= resume_step]
            atomic_write(self.path, lambda f: f.write("".join(json.dumps(row) + "\n" for row in kept).encode()))
        self.tb = SummaryWriter(str(run_dir), purge_step=resume_step + 1 if resume_step is not None else None)
        self.warned: set[str] = set()
        self.tracker = tracker

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row: dict[str, float | None] = {"global_step": step}
        for key, value in metrics.items():
            value = float(value)
            self.tb.add_scalar(key, value, step)
            row[key] = value if math.isfinite(value) else None
            if row[key] is None and key not in self.warned:
                self.warned.add(key)
                print(f"mdpo: warning: {key} is {value} at step {step:,} (null in {METRICS})", file=sys.stderr)
        append_json_line(self.path, row)
        if self.tracker:
            self.tracker.log(step, metrics)

    def close(self) -> None:
        self.tb.close()
        if self.tracker:
            self.tracker.close()


def read_metrics(run_dir: Path) -> list[dict]:
    """The rows of a run's metrics.jsonl; a line that is not a JSON object (half-written) is skipped."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "global_step" in row:
            rows.append(row)
    return rows
