"""The run folder: resolved config, checkpoint, metrics, evaluation results.

    RUN_DIR/config.json       the resolved config
    RUN_DIR/checkpoint.pt     latest checkpoint (written atomically)
    RUN_DIR/metrics.jsonl     one JSON object per logged update
    RUN_DIR/events.out.*      TensorBoard events
    RUN_DIR/eval.json         final evaluation with per-episode returns
    RUN_DIR/resumes.jsonl     one line per resume: when, at which update, which fields it changed
    RUN_DIR/.lock             held by the process training the run (see ``run_lock``)
    RUN_DIR/robustness.json   written by ``mdpo robustness``
    RUN_DIR/tsne.json         written by ``mdpo tsne``
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pickle
import time
import zipfile
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import torch
from torch import nn

from mdpo.config import Config, dumps, from_dict
from mdpo.errors import MdpoError
from mdpo.nets import build_agents, observation_kind

CONFIG, CHECKPOINT, METRICS, EVAL = "config.json", "checkpoint.pt", "metrics.jsonl", "eval.json"
RESUMES, LOCK = "resumes.jsonl", ".lock"
ROBUSTNESS, TSNE = "robustness.json", "tsne.json"  # the analyses' results, read by ``mdpo report``
# What a start that died before its first checkpoint leaves behind; a new start clears it.
ATTEMPT_FILES = (METRICS, EVAL, RESUMES, "events.out.tfevents.*", CHECKPOINT + ".tmp")


def run_dir_for(cfg: Config) -> Path:
    name = cfg.run_name or f"{cfg.env.game}-{cfg.algo}-s{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    return Path(cfg.out_dir) / name


def start_run_dir(run_dir: Path, cfg: Config) -> None:
    """Make ``run_dir`` a fresh run folder for ``cfg`` (call it holding the folder's lock)."""
    if (run_dir / CHECKPOINT).exists():
        raise MdpoError(f"run folder {run_dir} already holds a run; continue it with `mdpo train --resume {run_dir}`")
    for pattern in ATTEMPT_FILES:
        for path in run_dir.glob(pattern):
            path.unlink()
    write_json(run_dir / CONFIG, json.loads(dumps(cfg)))


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the block, so a second mdpo process on the same run folder gets a
    one-line error instead of interleaving its rows with ours. The kernel drops the lock when its
    process dies, so a killed run never blocks the next start."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "unknown"
            raise MdpoError(f"run folder {run_dir} is in use by another mdpo process (pid {owner}); "
                            "wait for it to finish or stop it") from None
        with suppress(OSError):  # the pid only helps the message above; a full disk must not stop us
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
        yield  # closing the file releases the lock


def write_error(path: Path, exc: BaseException) -> MdpoError:
    """A one-line error for a failed write, naming the file and, for a full disk, saying so."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = f"no space left in {path.parent}"
    else:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
    return MdpoError(f"could not write {path.name} ({reason}); the previous {path.name}, if any, is unchanged")


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through a temporary file renamed into place, so a reader or a kill never sees
    half a file. A failed write removes the temporary file and leaves the old ``path`` as it was."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(path, exc) from None


def write_json(path: Path, data: Any) -> None:
    atomic_write(Path(path), lambda f: f.write(json.dumps(data, indent=2).encode()))


def append_json_line(path: Path, data: dict) -> None:
    try:
        with open(path, "a") as f:
            f.write(json.dumps(data) + "\n")
    except OSError as exc:
        raise write_error(path, exc) from None


def save_checkpoint(run_dir: Path, state: dict) -> None:
    atomic_write(Path(run_dir) / CHECKPOINT, lambda f: torch.save(state, f))


def kept_checkpoint(saved_update: int | None) -> str:
    """What a stopped run keeps: the newest checkpoint's update, if one was written."""
    return (f"the checkpoint of update {saved_update} is kept" if saved_update is not None
            else "no checkpoint had been written yet")


def load_config(run_dir: str | Path) -> Config:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MdpoError(f"run folder {run_dir} does not exist")
    path = run_dir / CONFIG
    if not path.exists():
        raise MdpoError(f"{run_dir} is not an mdpo run folder (no {CONFIG})")
    try:
        return from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MdpoError(f"{path} is corrupt: {exc}") from None
    except MdpoError as exc:
        raise MdpoError(f"{path} does not hold a valid config: {exc}") from None


def load_checkpoint(run_dir: str | Path, device: torch.device | str = "cpu") -> dict:
    """A checkpoint's contents, read with ``weights_only=True``: tensors and plain data only, so
    opening someone else's run folder cannot run code hidden in a pickle."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise MdpoError(f"no checkpoint in {run_dir} (expected {path})")
    corrupt = MdpoError(f"checkpoint {path} is corrupt or unreadable")
    if not zipfile.is_zipfile(path):
        raise corrupt
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):
            raise MdpoError(f"checkpoint {path} holds objects other than tensors and plain data; refusing to load "
                            "it, since unpickling them could run arbitrary code") from None
        raise corrupt from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError):
        raise corrupt from None
    if not isinstance(state, dict) or not {"agents", "spec"} <= state.keys():
        raise MdpoError(f"checkpoint {path} is not an mdpo checkpoint")
    return state


def require_colour_frames(run_dir: str | Path, what: str) -> None:
    """A one-line error unless the run in ``run_dir`` sees colour frames, which ``what`` needs."""
    kind = observation_kind(load_checkpoint(run_dir)["spec"])
    if kind != "rgb":
        raise MdpoError(f"{what} works on colour frames; {run_dir} has {kind} observations")


def load_agents(run_dir: str | Path, device: torch.device) -> tuple[Config, nn.ModuleList, dict]:
    """A run's config, its trained agents (eval mode) and the raw checkpoint."""
    cfg = load_config(run_dir)
    state = load_checkpoint(run_dir, device)
    agents = build_agents(cfg, state["spec"], device)
    try:
        agents.load_state_dict(state["agents"])
    except RuntimeError as exc:
        raise MdpoError(f"checkpoint in {run_dir} does not fit its config ({str(exc).splitlines()[0]})") from None
    return cfg, agents.eval(), state
