"""Whether a run fits in memory, decided before anything is allocated: the rollout buffer on the
training device and the environments in host memory, against what each has free. Without it, an
oversized ``env.num_envs`` or ``ppo.num_steps`` ends in an allocator's traceback or the kernel's
OOM killer, after the run folder was made."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import NamedTuple

import torch

from mdpo.config import Config
from mdpo.envs import host_bytes_per_env, obs_spec
from mdpo.errors import MdpoError
from mdpo.resolve import agent_env
from mdpo.rollout import SCALARS
from mdpo.runtime import resolve_device

HOST = torch.device("cpu")


class Need(NamedTuple):
    """Memory that one part of a run takes; ``how`` says how the size comes about, naming ``flags``."""

    what: str  # e.g. "the rollout needs"
    size: int
    how: str
    flags: tuple[str, ...]


def rollout_bytes(cfg: Config, obs_shape: tuple[int, ...], obs_itemsize: int) -> int:
    """The size of ``cfg``'s rollout buffer (``mdpo.rollout.Rollout``) for observations of this shape."""
    return cfg.cohort.num_agents * cfg.ppo.num_steps * cfg.env.num_envs * step_bytes(obs_shape, obs_itemsize)


def step_bytes(obs_shape: tuple[int, ...], obs_itemsize: int) -> int:
    """One agent's step of one env in the rollout: its observation and the scalars."""
    return math.prod(obs_shape) * obs_itemsize + sum(dtype.itemsize for dtype in SCALARS.values())


def needs(cfg: Config, device: torch.device) -> dict[torch.device, list[Need]]:
    """What a run allocates in bulk, by where it lives: the rollout on ``device``; on the host, the envs
    open at once at most (every agent's training envs, which stay open, and its evaluation's two splits)."""
    shape, dtype = obs_spec(agent_env(cfg, 0))
    k, n, t = cfg.cohort.num_agents, cfg.env.num_envs, cfg.ppo.num_steps
    agents = f"{k} agent{'s' * (k > 1)}"
    rollout = Need("the rollout needs", rollout_bytes(cfg, shape, dtype.itemsize),
                   f"env.num_envs={n:,} x ppo.num_steps={t:,} x {agents} x {step_bytes(shape, dtype.itemsize):,} B "
                   "per step", ("env.num_envs", "ppo.num_steps"))
    episodes = max(cfg.eval.episodes, cfg.eval.final_episodes)
    per_env = [host_bytes_per_env(agent_env(cfg, i)) for i in range(k)]
    envs = Need("the environments need", (n + 2 * episodes) * sum(per_env),
                f"{agents} x (env.num_envs={n:,} + 2 x eval.final_episodes={episodes:,}) envs x about "
                f"{max(per_env) / 1e6:.1f} MB", ("env.num_envs", "eval.final_episodes"))
    if device == HOST:
        return {HOST: [rollout, envs]}
    return {device: [rollout], HOST: [envs]}


def available_bytes(device: torch.device) -> int:
    """Free memory of ``device``: the GPU's, or for the host what the kernel can hand out without swapping."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        return int(meminfo["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_fits(cfg: Config, device: torch.device) -> None:
    """A one-line error, naming the sizes and their flags, when the run cannot fit where it would live."""
    for where, parts in needs(cfg, device).items():
        total, free = sum(part.size for part in parts), available_bytes(where)
        if total > free:
            parts = [part for part in parts if part.size * 100 >= total]  # under 1%: not what to lower
            said = " and ".join(f"{part.what} {_gb(part.size)} ({part.how})" for part in parts)
            flags = list(dict.fromkeys(flag for part in parts for flag in part.flags))
            on = "" if where == HOST else f" on {where}"
            raise MdpoError(f"{said}, but {_gb(free)} are available{on}; lower {', '.join(flags[:-1])} or {flags[-1]}")


def _gb(size: int) -> str:
    return f"{size / 1e9:,.1f} GB"


def checked_device(cfg: Config) -> torch.device:
    """The run's device, once it is sure that the run's rollout and envs fit in memory."""
    device = resolve_device(cfg.device)
    check_fits(cfg, device)
    return device
