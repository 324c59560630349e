"""``mdpo tsne``: held-out frames, each perturbed many times, through each run's encoder and into a
t-SNE plane (paper Figure 4). A tighter cloud per frame means a more invariant representation.

The figure is backed by a number computed in feature space, not in the t-SNE plane (whose
distances mean little): the spread of a frame's cloud, mean ||phi(x_k) - centroid|| over
mean ||phi(x_k)||, averaged over frames. Each run gets RUN_DIR/tsne.json, which also holds the 2-D
points (so ``mdpo report`` can draw the picture again); the figure goes to --out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mdpo.analysis.robustness import Probe, add_perturb_arguments, check_runs, encode, spec_from_args
from mdpo.errors import MdpoError
from mdpo.perturb import FAMILIES
from mdpo.runs import TSNE, load_agents, write_json
from mdpo.runtime import resolve_device


def spread(clouds: torch.Tensor) -> list[float]:
    """Per frame of (frames, copies, D) features: mean distance to the cloud's centroid over the
    cloud's mean feature norm (0 = every perturbed copy encoded identically)."""
    distance = (clouds - clouds.mean(1, keepdim=True)).norm(dim=-1).mean(1)
    return (distance / clouds.norm(dim=-1).mean(1).clamp_min(1e-8)).tolist()


def embed(features: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = min(30.0, (len(features) - 1) / 3)
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)


def embedding(result: dict, title: str):
    """The picture's panel (a ``plots.Embedding``) from what a tsne.json holds."""
    from mdpo.analysis.plots import Embedding

    points = result["embedding"]
    return Embedding(title, np.array(points["originals"]), np.array(points["perturbed"]))


def cmd_tsne(args: argparse.Namespace) -> None:
    from mdpo.analysis.plots import tsne_grid

    if args.family not in FAMILIES:
        raise MdpoError(f"unknown perturbation family {args.family!r}; choose from {', '.join(FAMILIES)}")
    probe = Probe([args.family], spec_from_args(args), args.frames, args.perturbations, args.seed)
    if args.frames * (args.perturbations + 1) < 5:
        raise MdpoError("t-SNE needs at least 5 points: raise --frames or --perturbations")
    device = resolve_device(args.device)
    panels = []
    for run_dir in tqdm(check_runs(args.run_dirs, "mdpo tsne"), desc="t-SNE", unit="run", leave=False):
        cfg, agents, state = load_agents(run_dir, device)
        if not 0 <= args.agent < len(agents):
            raise MdpoError(f"--agent {args.agent} but {run_dir} has {len(agents)} agent(s)")
        frames, perturbed = probe.sets(cfg)
        _, originals = encode(agents[args.agent], frames, device)
        _, features = encode(agents[args.agent], perturbed[args.family].flatten(0, 1), device)
        per_frame = spread(features.view(args.frames, args.perturbations, -1))
        points = embed(torch.cat([originals, features]).cpu().numpy(), args.seed)
        result = {"global_step": state["global_step"], "game": cfg.env.game, "mode": cfg.env.mode,
                  "agent": args.agent, "settings": probe.settings(), "spread": float(np.mean(per_frame)),
                  "spread_per_frame": per_frame,
                  "embedding": {"originals": points[:args.frames].tolist(),
                                "perturbed": points[args.frames:].reshape(args.frames, -1, 2).tolist()}}
        write_json(run_dir / TSNE, result)
        title = f"{run_dir.name}\n{cfg.algo}, agent {args.agent}: spread {result['spread']:.3f}"
        panels.append(embedding(result, title))
        tqdm.write(f"{run_dir.name}: agent {args.agent} spread {result['spread']:.4f}  (written: {run_dir / TSNE})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tsne_grid(panels, out)
    print(f"written: {out}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tsne", help="t-SNE of each run's encoder features of perturbed frames, with a spread number")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--family", default="conv", help=f"perturbation family, from {', '.join(FAMILIES)}")
    p.add_argument("--agent", type=int, default=0, help="which agent of each run (default 0)")
    p.add_argument("--out", default="tsne.png", help="the figure (default ./tsne.png)")
    add_perturb_arguments(p, frames=1, copies=100)
    p.set_defaults(func=cmd_tsne)
