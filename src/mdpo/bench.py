"""``mdpo bench``: env steps/s of the real training loop, against the simplest correct configuration.

Both configurations run in the same process, one after the other, with the same warm-up and the
same number of measured updates, so each report carries its own reference: the speed-up is the
ratio of the two. The simple configuration is the same loop with every ``perf`` lever off
(float32, NCHW, no compile, no TF32).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import tempfile
import time

import torch

from mdpo.config import Config, PerfConfig
from mdpo.train import Trainer


def measure(cfg: Config, warmup: int, updates: int) -> dict[str, float]:
    """Run ``warmup`` then ``updates`` updates of the real loop; env steps/s and a phase breakdown."""
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, run_dir, progress=False)
        trainer.timer.sync = trainer.device.type == "cuda"
        for _ in range(warmup):
            trainer.iteration()
        trainer.timer.reset()
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(updates):
            trainer.iteration()
        seconds = time.perf_counter() - start
        for env in trainer.envs:
            env.close()
    phase = trainer.timer.seconds
    steps = updates * trainer.batch_steps * cfg.cohort.num_agents
    if trainer.device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS
    return {
        "env_steps_per_s": steps / seconds,
        "seconds": seconds,
        "env_s": phase["env"],
        "inference_s": phase["collect"] - phase["env"],
        "advantages_s": phase["advantages"],
        "update_s": phase["update"],
        "peak_mem_mb": peak_mb,
    }


def simple(cfg: Config) -> Config:
    """The same config with every speed lever off."""
    off = PerfConfig(channels_last=False, amp="none", tf32=False, compile=False)
    return dataclasses.replace(cfg, perf=off)


def bench(cfg: Config, warmup: int = 1, updates: int = 2, reference: bool = True) -> dict:
    fast = measure(cfg, warmup, updates)
    result = {"config": {"preset": cfg.preset, "algo": cfg.algo, "game": cfg.env.game, "device": cfg.device,
                         "perf": dataclasses.asdict(cfg.perf), "updates": updates, "warmup": warmup},
              "fast": fast}
    if reference:
        result["simple"] = measure(simple(cfg), warmup, updates)
        result["speedup"] = fast["env_steps_per_s"] / result["simple"]["env_steps_per_s"]
    return result


def format_table(result: dict) -> str:
    c = result["config"]
    lines = [f"mdpo bench: {c['algo']} on {c['game']} ({c['preset']} preset, {c['device']}), "
             f"{c['updates']} measured updates after {c['warmup']} warm-up",
             f"{'config':<8}{'env steps/s':>13}{'env s':>9}{'infer s':>9}{'adv s':>8}{'update s':>10}{'peak MB':>10}"]
    for name in ("fast", "simple"):
        if name in result:
            r = result[name]
            lines.append(f"{name:<8}{r['env_steps_per_s']:>13.1f}{r['env_s']:>9.2f}{r['inference_s']:>9.2f}"
                         f"{r['advantages_s']:>8.2f}{r['update_s']:>10.2f}{r['peak_mem_mb']:>10.0f}")
    if "speedup" in result:
        lines.append(f"speed-up over the simple configuration: {result['speedup']:.2f}x")
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    from mdpo.cli import add_config_arguments

    p = sub.add_parser("bench", help="env steps/s of the training loop, with a speed-up ratio")
    add_config_arguments(p)
    p.add_argument("--warmup", type=int, default=1, help="updates before measuring")
    p.add_argument("--updates", type=int, default=2, help="measured updates")
    p.add_argument("--no-reference", action="store_true", help="skip the simple configuration")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from mdpo.cli import config_from_args

    defaults = {"preset": "paper", "env.game": "bigfish"}
    for key, value in defaults.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    cfg = config_from_args(args, default_preset="paper")
    result = bench(cfg, args.warmup, args.updates, not args.no_reference)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
