"""Experiment tracking as CleanRL users expect: ``--track`` mirrors every logged metric to Weights &
Biases (``pip install -e ".[wandb]"``), against ``global_step`` like metrics.jsonl.

Without a W&B login (or with ``WANDB_MODE=offline``) the run is recorded offline under
RUN_DIR/wandb, to upload later with ``wandb sync``. A resumed run continues the same W&B run.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from mdpo.config import Config, to_dict
from mdpo.errors import MdpoError

INSTALL_HINT = '--track needs Weights & Biases: pip install -e ".[wandb]" (or pip install wandb)'


class WandbTracker:
    def __init__(self, cfg: Config, run_dir: Path):
        try:
            import wandb
        except ImportError:
            raise MdpoError(INSTALL_HINT) from None
        folder = run_dir / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        id_file = folder / "mdpo-run-id"  # the same W&B run across resumes
        run_id = id_file.read_text().strip() if id_file.exists() else secrets.token_hex(4)
        id_file.write_text(run_id)
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb.login(prompt=False, verify=False) else "offline")
        self.offline = mode == "offline"
        try:
            self.run = wandb.init(project=cfg.wandb.project, entity=cfg.wandb.entity or None, name=run_dir.name,
                                  id=run_id, resume="allow", dir=str(run_dir), config=to_dict(cfg), mode=mode)
        except Exception as exc:  # W&B's own errors vary by version and connection
            raise MdpoError(f"W&B did not start ({str(exc).splitlines()[0]}); WANDB_MODE=offline records "
                            "the run offline") from None
        self.run.define_metric("global_step")
        self.run.define_metric("*", step_metric="global_step")

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log({**metrics, "global_step": step})

    def close(self) -> None:
        self.run.finish()
