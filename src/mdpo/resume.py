"""Resuming a run: which fields a resumed run may change (``RESUMABLE``), and ``resume``, which
continues a run from its checkpoint with those changes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mdpo.config import Config, from_dict, get_field, set_field, to_dict
from mdpo.errors import MdpoError
from mdpo.memory import checked_device
from mdpo.resolve import validate
from mdpo.runs import CONFIG, EVAL, RESUMES, append_json_line, load_checkpoint, load_config, run_lock, write_json
from mdpo.runtime import configure_process
from mdpo.train import learn
from mdpo.trainer import Trainer, num_updates

# What a resumed run may change: how long it runs, how it is evaluated, checkpointed and tracked,
# where and how fast it computes, and the learning rate (the optimizer follows). Everything else
# defines the experiment and is fixed by the run's first start.
RESUMABLE = ("total_steps", "device", "checkpoint_every", "torch_threads", "env.num_threads", "ppo.lr",
             "eval.*", "perf.*", "track", "wandb.*")


def resumable(key: str) -> bool:
    return any(key == rule or (rule.endswith("*") and key.startswith(rule[:-1])) for rule in RESUMABLE)


def apply_resume_overrides(cfg: Config, overrides: dict[str, Any]) -> dict[str, list]:
    """Apply a resumed run's overrides to its saved config; returns ``{key: [old, new]}`` of what
    changed. A field that may not change on resume (see ``RESUMABLE``) is a one-line error."""
    changed = from_dict(to_dict(cfg))
    for key, value in overrides.items():
        set_field(changed, key, value)
    changes = {key: [get_field(cfg, key), get_field(changed, key)] for key in overrides
               if get_field(cfg, key) != get_field(changed, key)}
    fixed = [key for key in changes if not resumable(key)]
    if fixed:
        old, new = changes[fixed[0]]
        raise MdpoError(f"--{fixed[0]} cannot change when resuming ({old!r} -> {new!r}): it defines the run; "
                        f"a resumed run may change only {', '.join(RESUMABLE)}")
    validate(changed)
    for key, (_, new) in changes.items():
        set_field(cfg, key, new)
    return changes


class RunFinished(Exception):
    """``resume`` of a run that has nothing left to do; the message says so."""


def resume(run_dir: str | Path, overrides: dict | None = None, progress: bool = True, verbose: bool = False) -> Path:
    """Continue a run from its checkpoint. ``overrides`` may change the fields that
    ``RESUMABLE`` names (e.g. extend ``total_steps``); they are saved in config.json and
    listed in resumes.jsonl. Raises ``RunFinished`` when the run has nothing left to do."""
    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    with run_lock(run_dir):
        changes = apply_resume_overrides(cfg, overrides or {})
        device = checked_device(cfg)  # fail before the run folder changes
        state = load_checkpoint(run_dir)  # on the CPU: loading it into the run puts each part where it belongs
        finished = run_dir / EVAL
        if state["update"] >= num_updates(cfg) and finished.exists():
            raise RunFinished(f"{run_dir} is finished ({state['global_step']:,} env steps per agent; final "
                              "evaluation in eval.json); to train further, raise --total_steps")
        if finished.exists():  # a finished run, extended: its old final evaluation stays, by step
            finished.rename(run_dir / f"eval-{state['global_step']}.json")
        if changes:
            write_json(run_dir / CONFIG, to_dict(cfg))
        append_json_line(run_dir / RESUMES, {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "update": state["update"],
                                             "global_step": state["global_step"], "changes": changes})
        configure_process(cfg, device)
        return learn(Trainer(cfg, run_dir, state), progress, verbose)
