"""``mdpo robustness``: how far a policy and its encoder move when a frame is perturbed without
changing its meaning (paper section 5.3, Table 1; appendix E.4). Lower is more robust.

For every agent and perturbation family: mean and std over (frame, perturbation) pairs of
KL(pi(frame) || pi(perturbed frame)), and of the encoder's feature distance
||phi(perturbed) - phi(frame)|| / mean_frames ||phi(frame)||. Writes RUN_DIR/robustness.json.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from mdpo.config import Config
from mdpo.distill import kl
from mdpo.envs.frames import held_out_frames
from mdpo.errors import MdpoError
from mdpo.perturb import FAMILIES, JITTER_KEYS, PerturbSpec, perturb
from mdpo.runs import CHECKPOINT, ROBUSTNESS, load_agents, load_config, require_colour_frames, write_json
from mdpo.runtime import derive_seed, resolve_device

STATS = ("kl_mean", "kl_std", "feature_mean", "feature_std")


@torch.no_grad()
def encode(agent: nn.Module, frames: torch.Tensor, device: torch.device,
           batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Policy logits and encoder features (float32) of uint8 frames, in batches."""
    features = torch.cat([agent.encoder(chunk.to(device)).float() for chunk in frames.split(batch)])
    return agent.actor(features).float(), features


def perturbed_copies(frames: torch.Tensor, family: str, spec: PerturbSpec, copies: int, seed: int) -> torch.Tensor:
    """(N, copies, C, H, W): ``copies`` independent perturbations of each frame, fixed by ``seed``."""
    generator = torch.Generator().manual_seed(derive_seed(seed, "perturb", family))
    flat = perturb(family, frames.repeat_interleave(copies, 0), generator, spec)
    return flat.view(len(frames), copies, *frames.shape[1:])


def sensitivity(agent: nn.Module, frames: torch.Tensor, perturbed: torch.Tensor,
                device: torch.device) -> dict[str, float]:
    """KL and feature-distance statistics of one agent over every (frame, perturbation) pair."""
    copies = perturbed.shape[1]
    logits, features = encode(agent, frames, device)
    p_logits, p_features = encode(agent, perturbed.flatten(0, 1), device)
    divergence = kl(logits.repeat_interleave(copies, 0), p_logits)
    scale = features.norm(dim=-1).mean().clamp_min(1e-8)
    distance = (p_features - features.repeat_interleave(copies, 0)).norm(dim=-1) / scale
    return {"kl_mean": divergence.mean().item(), "kl_std": divergence.std().item(),
            "feature_mean": distance.mean().item(), "feature_std": distance.std().item()}


class Probe:
    """The held-out frames and their perturbed copies, built once per game and shared by runs."""

    def __init__(self, families: list[str], spec: PerturbSpec, frames: int, copies: int, seed: int):
        self.families, self.spec, self.frames, self.copies, self.seed = families, spec, frames, copies, seed
        self._sets: dict[tuple[str, str], tuple[torch.Tensor, dict[str, torch.Tensor]]] = {}

    def settings(self) -> dict:
        return {"frames": self.frames, "perturbations": self.copies, "seed": self.seed,
                "families": self.families, **dataclasses.asdict(self.spec)}

    def sets(self, cfg: Config) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        key = (cfg.env.game, cfg.env.mode)
        if key not in self._sets:
            frames = held_out_frames(cfg.env, self.frames, self.seed)
            self._sets[key] = frames, {f: perturbed_copies(frames, f, self.spec, self.copies, self.seed)
                                       for f in self.families}
        return self._sets[key]


def measure_run(run_dir: Path, probe: Probe, device: torch.device) -> dict:
    """Every agent of a run against the probe; also written to RUN_DIR/robustness.json."""
    cfg, agents, state = load_agents(run_dir, device)
    frames, perturbed = probe.sets(cfg)
    per_agent = [{f: sensitivity(agent, frames, perturbed[f], device) for f in probe.families} for agent in agents]
    summary = {f: {s: sum(a[f][s] for a in per_agent) / len(per_agent) for s in STATS} for f in probe.families}
    result = {"global_step": state["global_step"], "game": cfg.env.game, "mode": cfg.env.mode,
              "settings": probe.settings(), "summary": summary, "agents": per_agent}
    write_json(Path(run_dir) / ROBUSTNESS, result)
    return result


def format_stat(stats: dict[str, float], name: str) -> str:
    return f"{stats[name + '_mean']:.3g} ± {stats[name + '_std']:.3g}"


def format_table(rows: list[tuple[str, dict]], families: list[str]) -> str:
    """One row per run and agent: KL and feature distance (mean +- std) per family."""
    header = ["run", "agent"] + [f"{f} {what}" for f in families for what in ("KL", "feature")]
    lines = [header]
    for name, result in rows:
        for i, agent in enumerate(result["agents"]):
            cells = [name, str(i)]
            for f in families:
                s = agent[f]
                cells += [format_stat(s, "kl"), format_stat(s, "feature")]
            lines.append(cells)
    widths = [max(len(line[j]) for line in lines) for j in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def check_runs(run_dirs: list[str], what: str) -> list[Path]:
    """Every folder is a run with a checkpoint of an agent that sees colour frames (which ``what``,
    the analysis, perturbs), checked before any work starts."""
    for run_dir in run_dirs:
        load_config(run_dir)
        if not (Path(run_dir) / CHECKPOINT).exists():
            raise MdpoError(f"no checkpoint in {run_dir}: the run has not saved one yet")
        require_colour_frames(run_dir, what)
    return [Path(d) for d in run_dirs]


def add_perturb_arguments(parser: argparse.ArgumentParser, frames: int, copies: int) -> None:
    """Options shared with ``mdpo tsne``: the probe frames and the perturbation settings."""
    default = PerturbSpec()
    parser.add_argument("--frames", type=int, default=frames, help=f"held-out frames (default {frames})")
    parser.add_argument("--perturbations", type=int, default=copies,
                        help=f"perturbed copies per frame (default {copies})")
    parser.add_argument("--layers", type=int, default=default.layers, help="stacked random conv layers")
    parser.add_argument("--kernel", type=int, default=default.kernel, help="random conv kernel size (odd)")
    for key in JITTER_KEYS:
        parser.add_argument(f"--{key}", type=float, default=getattr(default, key), help=f"{key} jitter strength")
    parser.add_argument("--seed", type=int, default=0, help="seed of the frames and perturbations")
    parser.add_argument("--device", default="auto")


def spec_from_args(args: argparse.Namespace) -> PerturbSpec:
    if args.frames < 1 or args.perturbations < 1:
        raise MdpoError("--frames and --perturbations must be at least 1")
    return PerturbSpec(args.layers, args.kernel, *(getattr(args, k) for k in JITTER_KEYS))


def parse_families(text: str) -> list[str]:
    families = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise MdpoError(f"unknown perturbation family {', '.join(unknown) or text!r}; "
                        f"choose from {', '.join(FAMILIES)}")
    return families


def cmd_robustness(args: argparse.Namespace) -> None:
    families = parse_families(args.families)
    probe = Probe(families, spec_from_args(args), args.frames, args.perturbations, args.seed)
    device = resolve_device(args.device)
    rows = []
    for run_dir in tqdm(check_runs(args.run_dirs, "mdpo robustness"), desc="robustness", unit="run", leave=False):
        rows.append((run_dir.name, measure_run(run_dir, probe, device)))
        tqdm.write(f"written: {run_dir / ROBUSTNESS}")
    print(f"{args.frames} held-out frames x {args.perturbations} perturbations each (seed {args.seed});"
          " lower is more robust")
    print(format_table(rows, families))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("robustness",
                       help="KL of each policy (and encoder distance) under random convs and colour jitter")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--families", default="conv,jitter", help=f"comma-separated, from {', '.join(FAMILIES)}")
    add_perturb_arguments(p, frames=32, copies=32)
    p.set_defaults(func=cmd_robustness)
