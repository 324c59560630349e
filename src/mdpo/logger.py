"""Metrics to TensorBoard and to a plain ``metrics.jsonl`` (one JSON object per logged update)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from mdpo.runs import METRICS


class Logger:
    def __init__(self, run_dir: Path, resume_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.path = Path(run_dir) / METRICS
        if resume_step is not None and self.path.exists():
            # drop what an interrupted run logged after its last checkpoint
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line)["global_step"] <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept))
        self.file = open(self.path, "a")
        self.tb = SummaryWriter(str(run_dir), purge_step=resume_step + 1 if resume_step is not None else None)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
        for key, value in clean.items():
            self.tb.add_scalar(key, value, step)
        self.file.write(json.dumps({"global_step": step, **clean}) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()
        self.tb.close()


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
