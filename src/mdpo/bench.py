"""``mdpo bench``: env steps/s of the real training loop, two configurations side by side.

Both configurations run in the same process, interleaved update by update (A, B, A, B, ...) after
the same warm-up, so each report carries its own reference and machine noise hits both alike: the
speed-up is the ratio of the two. By default the reference is the simple configuration: the same
loop with every ``perf`` lever off (float32, NCHW, no compile, whole minibatches, sequential
inference, glibc's default allocator). ``--compare KEY=VALUE ...`` compares against the given
configuration with those fields changed instead.

``--side-by-side`` measures what a shared machine costs: the same bench in a process of its own, alone,
then two such processes at once; the slowdown is alone / side by side (1: sharing costs nothing; 2: each
runs at half its speed alone).

Memory is the peak of the update phase: on CUDA the allocator's peak, on CPU the process's peak
resident set during the update (the resident set when it started is reported next to it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from mdpo.config import Config, PerfConfig
from mdpo.errors import MdpoError
from mdpo.flags import add_config_arguments, config_from_args
from mdpo.memory import checked_device
from mdpo.resolve import overridden
from mdpo.runtime import ThreadShare, configure_process, cpu_bf16, device_type, release_free_memory
from mdpo.timing import PhaseTimer
from mdpo.trainer import Trainer

MB = 2**20


class Contender:
    """One configuration's trainer, stepped an update at a time, with its measurements."""

    def __init__(self, label: str, cfg: Config, run_dir: Path):
        self.label = label
        self.cfg = cfg
        self.device = checked_device(cfg)
        self.threads = ThreadShare() if not cfg.torch_threads and self.device.type == "cpu" else None  # as train
        self.timer = PhaseTimer(self.device, sync=True, memory_phases=("update",))  # exact phases on CUDA
        self.trainer = Trainer(self.cfg, run_dir, timer=self.timer)
        self.seconds: list[float] = []

    def enter(self) -> None:
        """Process-wide settings are this configuration's while it runs."""
        if self.device.type == "cpu":
            release_free_memory()  # so the update's peak is its own, not what the other one left
        configure_process(self.cfg, self.device)
        if self.threads:
            self.threads.adjust()

    def warm_up(self, updates: int) -> None:
        self.enter()
        for _ in range(updates):
            self.trainer.update()
        self.timer.reset()

    def measure_update(self) -> None:
        self.enter()
        start = time.perf_counter()
        self.trainer.update()
        self.seconds.append(time.perf_counter() - start)

    def close(self) -> None:
        self.trainer.close()

    def result(self) -> dict:
        phase = self.timer.seconds
        steps = len(self.seconds) * self.trainer.batch_steps * self.cfg.cohort.num_agents
        return {
            "env_steps_per_s": steps / sum(self.seconds),
            "update_seconds": self.seconds,
            "env_s": phase["env"],
            "inference_s": phase["collect"] - phase["env"],
            "advantages_s": phase["advantages"],
            "update_s": phase["update"],
            "update_peak_mb": self.timer.peak_bytes["update"] / MB,
            "update_start_mb": self.timer.start_bytes["update"] / MB,
            "peak_scope": "update phase" if self.timer.memory.scoped else "process lifetime",
        }


def cpu_features() -> str:
    """The CPU's vector extension as torch sees it, and how it computes bfloat16 (``runtime.cpu_bf16``)."""
    return f"{torch.backends.cpu.get_cpu_capability()}, bf16: {cpu_bf16()}"


def measure(configs: dict[str, Config], warmup: int, updates: int) -> dict[str, dict]:
    """Warm every configuration up, then measure them interleaved, one update each in turn."""
    default_threads = torch.get_num_threads()
    contenders = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for label, cfg in configs.items():
                contenders.append(Contender(label, cfg, Path(tmp) / label))
            for c in contenders:
                c.warm_up(warmup)
            for _ in range(updates):
                for c in contenders:
                    c.measure_update()
        finally:
            for c in contenders:
                c.close()
            torch.set_num_threads(default_threads)
    return {c.label: c.result() for c in contenders}


def simple(cfg: Config) -> Config:
    """The same config with every speed lever off."""
    off = PerfConfig(channels_last=False, amp="none", tf32=False, compile=False, micro_batch=0, cpu_heap=False,
                     batched_inference=False)
    return dataclasses.replace(cfg, perf=off)


def with_overrides(cfg: Config, overrides: list[str]) -> Config:
    """``cfg`` with ``KEY=VALUE`` overrides applied (and validated)."""
    pairs = [item.partition("=") for item in overrides]
    bad = [key for key, sep, _ in pairs if not sep]
    if bad:
        raise MdpoError(f"--compare takes KEY=VALUE items, got {bad[0]!r}")
    return overridden(cfg, {key: value for key, _, value in pairs})


def bench(cfg: Config, warmup: int = 1, updates: int = 2, reference: bool = True,
          compare: list[str] | None = None) -> dict:
    """Measure ``cfg`` ("fast"), and beside it the simple configuration or, with ``compare``,
    ``cfg`` with those overrides."""
    configs = {"fast": cfg}
    if compare:
        configs = {"base": cfg, "compare": with_overrides(cfg, compare)}
    elif reference:
        configs["simple"] = simple(cfg)
    rows = measure(configs, warmup, updates)
    result = {"config": {"preset": cfg.preset, "algo": cfg.algo, "game": cfg.env.game, "device": cfg.device,
                         "num_envs": cfg.env.num_envs, "perf": dataclasses.asdict(cfg.perf), "updates": updates,
                         "warmup": warmup, "compare": compare or [], "torch_threads": cfg.torch_threads or "auto",
                         "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
                         "cpu": cpu_features() if device_type(cfg.device) == "cpu" else ""},
              **rows}
    if len(rows) == 2:
        # the headline ratio: fast / simple (the speed-up), or compare / base
        faster, slower = (rows["compare"], rows["base"]) if compare else (rows["fast"], rows["simple"])
        result["ratio"] = faster["env_steps_per_s"] / slower["env_steps_per_s"]
        result["update_ratios"] = [b / a for a, b in zip(faster["update_seconds"], slower["update_seconds"])]
    return result


def format_table(result: dict) -> str:
    c = result["config"]
    rows = [name for name in ("fast", "simple", "base", "compare") if name in result]
    lines = [f"mdpo bench: {c['algo']} on {c['game']} ({c['preset']} preset, {c['num_envs']} envs, {c['device']}), "
             f"{c['updates']} measured updates each after {c['warmup']} warm-up, interleaved; "
             f"torch threads {c['torch_threads']}, OMP_WAIT_POLICY={c['omp_wait_policy'] or 'unset'}"
             + (f"; CPU {c['cpu']}" if c.get("cpu") else ""),
             f"{'config':<8}{'env steps/s':>13}{'env s':>9}{'infer s':>9}{'adv s':>8}{'update s':>10}"
             f"{'update peak MB':>16}{'RSS before MB':>15}"]
    for name in rows:
        r = result[name]
        lines.append(f"{name:<8}{r['env_steps_per_s']:>13.1f}{r['env_s']:>9.2f}{r['inference_s']:>9.2f}"
                     f"{r['advantages_s']:>8.2f}{r['update_s']:>10.2f}{r['update_peak_mb']:>16.0f}"
                     f"{r['update_start_mb']:>15.0f}")
    scope = result[rows[0]]["peak_scope"]
    if scope != "update phase":
        lines.append(f"(peak memory: the process's {scope} peak; this system cannot reset it per phase)")
    if "ratio" in result:
        label = "speed-up over the simple configuration"
        if c["compare"]:
            label = f"compare ({' '.join(c['compare'])}) / base"
        per_update = ", ".join(f"{x:.2f}" for x in result["update_ratios"])
        lines.append(f"{label}: {result['ratio']:.2f}x (update by update: {per_update})")
    return "\n".join(lines)


def side_by_side(argv: list[str]) -> dict:
    """``mdpo bench ARGV`` (one configuration, JSON) in a process alone, then in two processes at once."""
    cmd = [sys.executable, "-m", "mdpo.cli", "bench", *argv, "--no-reference", "--json"]

    def finish(process: subprocess.Popen) -> dict:
        out, err = process.communicate()
        if process.returncode:
            last = err.strip().splitlines()[-1:] or [f"exit {process.returncode}"]
            raise MdpoError(f"a bench process failed: {last[0]}")
        return json.loads(out)

    def launch() -> subprocess.Popen:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    alone = finish(launch())
    pair = [launch(), launch()]
    together = [finish(p) for p in pair]
    speed = alone["fast"]["env_steps_per_s"]
    return {"config": alone["config"], "alone": speed,
            "side_by_side": [r["fast"]["env_steps_per_s"] for r in together],
            "slowdown": [speed / r["fast"]["env_steps_per_s"] for r in together]}


def format_side_by_side(result: dict) -> str:
    c = result["config"]
    return "\n".join([
        f"mdpo bench --side-by-side: {c['algo']} on {c['game']} ({c['preset']} preset, {c['num_envs']} envs, "
        f"{c['device']}), {c['updates']} measured updates per process after {c['warmup']} warm-up; torch threads "
        f"{c['torch_threads']} per process, OMP_WAIT_POLICY={c['omp_wait_policy'] or 'unset'}, {os.cpu_count()} cores",
        f"alone:        {result['alone']:.1f} env steps/s",
        f"side by side: {', '.join(f'{x:.1f}' for x in result['side_by_side'])} env steps/s",
        f"slowdown (alone / side by side): {', '.join(f'{x:.2f}x' for x in result['slowdown'])}",
    ])


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="env steps/s of the training loop, with a speed-up ratio")
    add_config_arguments(p, skip=("out_dir", "run_name", "checkpoint_every", "total_steps", "eval.", "track", "wandb."))
    p.add_argument("--warmup", type=int, default=1, help="updates before measuring, per configuration")
    p.add_argument("--updates", type=int, default=2, help="measured updates per configuration")
    p.add_argument("--no-reference", action="store_true", help="skip the simple configuration")
    p.add_argument("--compare", nargs="+", metavar="KEY=VALUE",
                   help="measure beside the configuration the same one with these fields changed "
                        "(e.g. perf.micro_batch=0 torch_threads=1) instead of the simple one")
    p.add_argument("--side-by-side", action="store_true",
                   help="this configuration in a process alone, then two such processes at once: what sharing "
                        "the machine costs, as a slowdown")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    if args.warmup < 0 or args.updates < 1:
        raise MdpoError("--warmup must be >= 0 and --updates >= 1")
    cfg = config_from_args(args)
    if args.side_by_side:
        if args.compare:
            raise MdpoError("--side-by-side measures one configuration: drop --compare")
        result = side_by_side([a for a in args.argv_[1:] if a != "--side-by-side"])  # [0] is "bench"
        print(json.dumps(result, indent=2) if args.json else format_side_by_side(result))
        return
    result = bench(cfg, args.warmup, args.updates, not args.no_reference, args.compare)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
