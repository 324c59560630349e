"""The run folder: resolved config, checkpoint, metrics, evaluation results.

    RUN_DIR/config.json       the resolved config
    RUN_DIR/checkpoint.pt     latest checkpoint (written atomically)
    RUN_DIR/metrics.jsonl     one JSON object per logged update
    RUN_DIR/events.out.*      TensorBoard events
    RUN_DIR/eval.json         final evaluation with per-episode returns
"""

from __future__ import annotations

import json
import os
import pickle
import time
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mdpo.config import Config, dumps, from_dict
from mdpo.errors import MdpoError
from mdpo.nets import ActorCritic

CONFIG, CHECKPOINT, METRICS, EVAL = "config.json", "checkpoint.pt", "metrics.jsonl", "eval.json"


def new_run_dir(cfg: Config) -> Path:
    name = cfg.run_name or f"{cfg.env.game}-{cfg.algo}-s{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(cfg.out_dir) / name
    if (run_dir / CHECKPOINT).exists():
        raise MdpoError(f"run folder {run_dir} already holds a run; continue it with `mdpo train --resume {run_dir}`")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / CONFIG, json.loads(dumps(cfg)))
    return run_dir


def write_json(path: Path, data: Any) -> None:
    """Write atomically: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def save_checkpoint(run_dir: Path, state: dict) -> None:
    path = Path(run_dir) / CHECKPOINT
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_config(run_dir: str | Path) -> Config:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MdpoError(f"run folder {run_dir} does not exist")
    path = run_dir / CONFIG
    if not path.exists():
        raise MdpoError(f"{run_dir} is not an mdpo run folder (no {CONFIG})")
    try:
        return from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise MdpoError(f"{path} is corrupt: {exc}") from None


def load_checkpoint(run_dir: str | Path, device: torch.device | str = "cpu") -> dict:
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise MdpoError(f"no checkpoint in {run_dir} (expected {path})")
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        raise MdpoError(f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not {"agents", "spec"} <= state.keys():
        raise MdpoError(f"checkpoint {path} is not an mdpo checkpoint")
    return state


def build_agents(cfg: Config, obs_shape: tuple[int, ...], num_actions: int, device: torch.device) -> nn.ModuleList:
    """The cohort's networks, initialised from ``cfg.seed``, laid out as ``cfg.perf`` asks."""
    torch.manual_seed(cfg.seed)
    agents = nn.ModuleList(
        ActorCritic(tuple(obs_shape), num_actions, cfg.net.width, cfg.net.hidden)
        for _ in range(cfg.cohort.num_agents)
    ).to(device)
    for agent in agents:
        if cfg.perf.channels_last:
            agent.use_channels_last()
        if cfg.perf.compile:
            agent.compile()
    return agents


def load_agents(run_dir: str | Path, device: torch.device) -> tuple[Config, nn.ModuleList, dict]:
    """A run's config, its trained agents (eval mode) and the raw checkpoint."""
    cfg = load_config(run_dir)
    state = load_checkpoint(run_dir, device)
    agents = build_agents(cfg, state["spec"]["obs_shape"], state["spec"]["num_actions"], device)
    try:
        agents.load_state_dict(state["agents"])
    except RuntimeError as exc:
        raise MdpoError(f"checkpoint in {run_dir} does not fit its config ({str(exc).splitlines()[0]})") from None
    return cfg, agents.eval(), state
