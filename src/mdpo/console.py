"""What a training run tells its user: what it is about to do, how long the rest will take, the few
numbers on its progress bar, and its final evaluation."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from mdpo.config import Config
from mdpo.envs import family_of
from mdpo.nets import choose_encoder
from mdpo.presets import PRESETS

if TYPE_CHECKING:
    from mdpo.trainer import Trainer


def describe(t: Trainer) -> list[str]:
    """What this run is about to do, in a few lines."""
    c = t.cfg
    k = c.cohort.num_agents
    agents = "1 agent" if k == 1 else f"{k} agents, {c.cohort.distill} distillation, alpha {c.cohort.alpha:g}"
    family = family_of(c.env)
    levels = "the full level distribution" if c.env.num_levels == 0 else f"{c.env.num_levels} training levels"
    if family == "gymnasium" and c.env.num_levels:
        levels = f"{c.env.num_levels} training seeds from {c.env.start_level}"
    game = {"procgen": f"{c.env.game} {c.env.mode}, {levels}", "gymnasium": f"{c.env.game}, {levels}"}.get(
        family, c.env.game)
    game += f" ({t.obs_kind} observations {tuple(t.spec['obs_shape'])}, {choose_encoder(t.obs_kind, c.net.encoder)} "
    game += "encoder)"
    steps = t.num_updates * t.batch_steps
    rounded = f" (total_steps {c.total_steps:,} rounded up to whole updates)" if steps != c.total_steps else ""
    every = f"every {c.eval.every} updates ({c.eval.episodes} episodes per split) and " if c.eval.every else ""
    lines = [f"{c.algo} ({agents}) on {game}; preset {c.preset}, seed {c.seed}, device {t.device}"
             f"{device_note(c, t.device)}",
             f"{steps:,} env steps per agent{rounded}: {t.num_updates:,} updates of "
             f"{c.env.num_envs} envs x {c.ppo.num_steps} steps",
             f"evaluation {every}at the end ({c.eval.final_episodes} episodes per split, train and test levels)",
             f"run folder: {t.run_dir}"]
    if t.update_idx:
        lines.append(f"resuming at update {t.update_idx:,} ({t.global_step:,} steps per agent) with "
                     "fresh environments (an env's state is not saved)")
    return lines


def device_note(cfg: Config, device: torch.device) -> str:
    """A word where the preset, not the user, put the run on the CPU of a machine with CUDA."""
    if device.type == "cpu" and PRESETS[cfg.preset].get("device") == cfg.device and torch.cuda.is_available():
        return f" (set by the {cfg.preset} preset; this machine has CUDA: add --device cuda to use it)"
    return ""


def eta(t: Trainer, seconds: float) -> str:
    """The time left at the pace of an update that took ``seconds``."""
    left = (t.num_updates - t.update_idx) * seconds
    return (f"update {t.update_idx:,} of {t.num_updates:,} took {seconds:.1f} s: about "
            f"{duration(left)} to go at this pace, plus evaluations")


def postfix(metrics: dict[str, float]) -> dict[str, str]:
    """The progress bar's numbers: steps/s, training return, test return (those that are finite)."""
    keys = {"charts/SPS": "sps", "charts/episodic_return": "ret", "eval/test_return": "test"}
    return {short: f"{metrics[k]:.4g}" for k, short in keys.items() if math.isfinite(metrics.get(k, math.nan))}


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 172800 else f"{seconds / 86400:.1f} days"


def print_eval(results: list[dict]) -> None:
    print(f"{'agent':>6} {'split':>6} {'episodes':>9} {'mean return':>12}")
    for i, agent in enumerate(results):
        for split, r in agent.items():
            mean = sum(r["returns"]) / len(r["returns"])
            print(f"{i:>6} {split:>6} {len(r['returns']):>9} {mean:>12.3f}")


def report_run(run_dir: Path) -> None:
    eval_path = Path(run_dir) / "eval.json"
    if eval_path.exists():
        data = json.loads(eval_path.read_text())
        print_eval(data["agents"])
        summary = data["summary"]
        print("  ".join(f"{k}={v:.3f}" for k, v in summary.items() if "/agent" not in k))
    else:
        print("stopped before the end; continue with the command below")
    print(f"run folder: {run_dir}")
    print(f"resume: mdpo train --resume {run_dir}")
