"""``mdpo demo``: the spurious-colour toy of paper section 4.1, PPO alone against MDPO, on a CPU.

Agent A trains on ``correlated`` coin levels (the background colour always shows the coin side,
see ``mdpo.envs.coins``), either alone (PPO) or with agent B, which trains on ``mixed`` levels
where the colour means nothing (MDPO: each regularised by KL towards the other). Then, per seed:

  anti return        A's mean return on ``anti`` levels, where the colour points away from the coin
  correlated return  A's mean return on its own training distribution
  colour reliance    on ``anti`` levels, how often A's first move follows the colour rather than the
                     coin: P(colour's way) / (P(colour's way) + P(coin's way)) under A's policy,
                     each summed over the levels (1 = the colour decides, 0 = the coin decides)

For MDPO, B's colour reliance is recorded too: it tells whether B learned the coin or caught A's
shortcut. Every number lies in [0, 1]. The table gives the mean over seeds with a 95% percentile
bootstrap interval (seeds resampled; it stays inside the seeds' range), and counts seeds by outcome:
A follows the coin when its colour reliance is below 0.5, B caught A's shortcut when B's is 0.5 or
more. DEMO_DIR holds demo.json (every number), demo.png, one run folder per training (``ppo-sN``,
``mdpo-sN``) and results.jsonl (each training's numbers as it finishes).

Stopped (SIGINT, SIGTERM, or the death of the ``mdpo demo`` process), the demo stops its workers
(``mdpo.workers``): each running training finishes its update and writes its checkpoint, and the
finished ones' numbers stay in results.jsonl.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import torch

from mdpo.analysis.stats import bootstrap_mean
from mdpo.config import Config, EnvConfig
from mdpo.envs.coins import AGREEMENTS, STAY, CoinsEnv, parse_agreement
from mdpo.errors import MdpoError
from mdpo.evaluate import run_episodes
from mdpo.resolve import resolve
from mdpo.runs import EVAL, append_json_line, load_agents, write_json
from mdpo.runtime import derive_seed
from mdpo.train import train
from mdpo.workers import Stopped, run_tasks

# Everything the demo changes from the paper's defaults, in one place. A small network and short
# rollouts train an agent in seconds on one CPU core. The entropy bonus is 0.03 instead of 0.01
# for both algorithms: at 0.01 the two MDPO agents often settled together on a policy that follows
# the colour on one background and the coin on the other, and stopped exploring.
DEMO_CONFIG = {
    "env.game": "coins", "env.num_envs": 32, "ppo.num_steps": 16, "ppo.num_minibatches": 4,
    "ppo.gamma": 0.99, "ppo.ent_coef": 0.03, "net.hidden": 64, "device": "cpu", "torch_threads": 1,
    "eval.every": 0, "eval.bound": False, "eval.final_episodes": 32, "checkpoint_every": 1_000_000,
}
SETTINGS = {"full": {"seeds": 8, "steps": 40_000}, "quick": {"seeds": 3, "steps": 40_000}}
EVAL_LEVELS = 500
ALGOS = {"ppo": "PPO  (A alone)", "mdpo": "MDPO (A with B)"}
METRICS = {"anti_return": "anti return", "correlated_return": "correlated return",
           "colour_reliance": "colour reliance"}
FOLLOWS_COLOUR = 0.5  # colour reliance from which an agent counts as following the colour
RESULTS = "results.jsonl"


def demo_config(algo: str, seed: int, steps: int, a_levels: float, b_levels: float, out: Path) -> Config:
    overrides = {**DEMO_CONFIG, "seed": seed, "total_steps": steps, "env.agreement": a_levels,
                 "out_dir": str(out), "run_name": f"{algo}-s{seed}"}
    if algo == "mdpo":
        overrides["cohort.agent_env"] = [{}, {"agreement": b_levels}]
    return resolve("paper", algo, overrides)


@torch.no_grad()
def colour_reliance(agent: torch.nn.Module, levels: int, seed: int, device: torch.device) -> float:
    """On ``anti`` levels: P(first move goes the colour's way) / P(it goes left or right at all)
    under the agent's policy, summed over ``levels`` levels."""
    env = CoinsEnv(levels, AGREEMENTS["anti"], seed, device)
    probs = torch.softmax(agent(env.reset())[0], dim=-1)
    to_colour = probs.gather(1, (STAY + env.colour_side)[:, None]).sum()
    to_coin = probs.gather(1, (STAY + env.coin_side)[:, None]).sum()
    return float(to_colour / (to_colour + to_coin))


def measure(run_dir: Path, seed: int) -> dict[str, float]:
    """Agent A (agent 0 of the run) on ``anti`` and ``correlated`` levels and its colour reliance;
    for MDPO also B's colour reliance (did B learn the coin, or catch A's shortcut?)."""
    device = torch.device("cpu")
    _, agents, _ = load_agents(run_dir, device)
    out = {}
    for name in ("anti", "correlated"):
        env_cfg = EnvConfig(game="coins", agreement=AGREEMENTS[name])
        returns = run_episodes(agents[0], env_cfg, "train", EVAL_LEVELS, derive_seed(seed, "demo", name), device)
        out[f"{name}_return"] = sum(returns["returns"]) / EVAL_LEVELS
    first_levels = derive_seed(seed, "demo", "first")
    out["colour_reliance"] = colour_reliance(agents[0], EVAL_LEVELS, first_levels, device)
    if len(agents) > 1:
        out["b_colour_reliance"] = colour_reliance(agents[1], EVAL_LEVELS, first_levels, device)
    return out


def train_and_measure(algo: str, seed: int, steps: int, a_levels: float, b_levels: float, out: Path) -> dict:
    """One training of the demo and its measurements; runs in a worker process."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    run_dir = train(demo_config(algo, seed, steps, a_levels, b_levels, out), progress=False)
    if not (run_dir / EVAL).exists():
        raise Stopped(f"{run_dir} stopped before its end")  # by SIGTERM, after writing its checkpoint
    result = {"algo": algo, "seed": seed, "run_dir": str(run_dir), **measure(run_dir, seed)}
    result["seconds"] = time.perf_counter() - start
    return result


def summarize(results: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """Per algorithm and metric (A's, and B's colour reliance where there is a B): mean over seeds
    and its 95% percentile-bootstrap interval."""
    summary = {}
    for algo in ALGOS:
        runs = [r for r in results if r["algo"] == algo]
        summary[algo] = {}
        for key in [*METRICS, "b_colour_reliance"]:
            values = [r[key] for r in runs if key in r]
            if values:
                mean, low, high = (float(x) for x in bootstrap_mean(values))
                summary[algo][key] = {"mean": mean, "low": low, "high": high, "seeds": len(values)}
    return summary


def outcomes(results: list[dict]) -> dict[str, dict[str, int | None]]:
    """Per algorithm, seeds counted by outcome: A follows the coin (colour reliance below
    FOLLOWS_COLOUR); B caught A's shortcut (B's colour reliance at least FOLLOWS_COLOUR), None
    without a B."""
    out = {}
    for algo in ALGOS:
        runs = [r for r in results if r["algo"] == algo]
        with_b = [r for r in runs if "b_colour_reliance" in r]
        out[algo] = {"seeds": len(runs),
                     "a_follows_coin": sum(r["colour_reliance"] < FOLLOWS_COLOUR for r in runs),
                     "b_caught_shortcut": sum(r["b_colour_reliance"] >= FOLLOWS_COLOUR for r in with_b)
                     if with_b else None}
    return out


def _levels(agreement: float) -> str:
    names = [name for name, value in AGREEMENTS.items() if value == agreement]
    return names[0] if names else f"agreement-{agreement:g}"


def _cell(cell: dict) -> str:
    if math.isnan(cell["low"]):
        return f"{cell['mean']:.2f}"
    return f"{cell['mean']:.2f} [{cell['low']:.2f}, {cell['high']:.2f}]"


def format_table(summary: dict, counts: dict, seeds: int, steps: int, a_levels: float, b_levels: float) -> str:
    columns = [*METRICS.values(), "A follows coin", "B caught shortcut"]
    lines = [f"A trains on {_levels(a_levels)} levels, B on {_levels(b_levels)}; {seeds} seeds, {steps:,} env "
             "steps per agent; mean over seeds [95% bootstrap interval]",
             f"seeds counted: A follows the coin = A's colour reliance < {FOLLOWS_COLOUR}; "
             f"B caught A's shortcut = B's colour reliance >= {FOLLOWS_COLOUR}",
             f"{'':<17}" + "".join(f"{title:>20}" for title in columns)]
    for algo, label in ALGOS.items():
        c = counts[algo]
        caught = "-" if c["b_caught_shortcut"] is None else f"{c['b_caught_shortcut']}/{c['seeds']}"
        cells = [_cell(summary[algo][key]) for key in METRICS] + [f"{c['a_follows_coin']}/{c['seeds']}", caught]
        lines.append(f"{label:<17}" + "".join(f"{cell:>20}" for cell in cells))
    return "\n".join(lines)


PANELS = {  # metric: demo.png's panel title and y label
    "anti_return": ("A: return on anti levels", "coins reached (fraction of levels)"),
    "correlated_return": ("A: return on correlated levels", "coins reached (fraction of levels)"),
    "colour_reliance": ("A: colour reliance on anti levels", "P(colour's way) / P(left or right)"),
    "b_colour_reliance": ("B: colour reliance on anti levels", "P(colour's way) / P(left or right)"),
}


def plot(summary: dict, results: list[dict], heading: str, path: Path) -> Path:
    """A panel per metric of A (and one for B's colour reliance): a bar per algorithm with its
    interval, each seed a dot."""
    from mdpo.analysis.plots import Bar, bar_grid, styles

    looks = styles(list(ALGOS))
    panels = {title: [Bar(ALGOS[algo].split()[0], looks[algo], *(cell[k] for k in ("mean", "low", "high")),
                          [r[key] for r in results if r["algo"] == algo])
                      for algo in ALGOS if (cell := summary[algo].get(key))]
              for key, (title, _) in PANELS.items()}
    return bar_grid(panels, heading, dict(PANELS.values()), path, ylim=(0, 1.05))


def run_demo(seeds: int, steps: int, out: Path, a_levels: float = 1.0, b_levels: float = 0.5,
             jobs: int = 1) -> dict:
    """Train PPO and MDPO on seeds 1..``seeds`` (``jobs`` at a time), measure A, write
    demo.json and demo.png into ``out``; returns what demo.json holds."""
    if out.exists() and any(out.iterdir()):
        raise MdpoError(f"{out} is not empty; pick another --out")
    for algo in ALGOS:  # a bad setting fails here, before any worker starts
        demo_config(algo, 1, steps, a_levels, b_levels, out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tasks = [(algo, seed, steps, a_levels, b_levels, out) for seed in range(1, seeds + 1) for algo in ALGOS]
    results = []

    def keep(r: dict) -> None:
        results.append(r)
        append_json_line(out / RESULTS, r)
        b = f"  (B: {r['b_colour_reliance']:.2f})" if "b_colour_reliance" in r else ""
        print(f"{r['algo']:>4} seed {r['seed']}: A anti {r['anti_return']:.2f}  correlated "
              f"{r['correlated_return']:.2f}  colour reliance {r['colour_reliance']:.2f}{b}  ({r['seconds']:.0f} s)")

    try:
        run_tasks(train_and_measure, tasks, jobs, keep)
    except Stopped as stop:
        raise Stopped(f"{stop}: {len(results)} of {len(tasks)} trainings finished, their numbers are in "
                      f"{out / RESULTS}; the stopped ones kept their checkpoints") from None
    results.sort(key=lambda r: (r["algo"], r["seed"]))
    summary, counts = summarize(results), outcomes(results)
    data = {
        "a_levels": a_levels, "b_levels": b_levels, "seeds": seeds, "steps_per_agent": steps,
        "eval_levels": EVAL_LEVELS, "interval": "95% percentile bootstrap over seeds", "config": DEMO_CONFIG,
        "seconds": time.perf_counter() - start, "summary": summary, "outcomes": counts, "runs": results,
        "table": format_table(summary, counts, seeds, steps, a_levels, b_levels),
    }
    write_json(out / "demo.json", data)
    plot(summary, results, f"Agent A trained on {_levels(a_levels)} levels: alone (PPO) or distilled with "
         f"B on {_levels(b_levels)} levels (MDPO)\n{seeds} seeds, {steps:,} env steps per agent; bar = mean, "
         "whisker = 95% bootstrap interval, dot = seed", out / "demo.png")
    return data


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the spurious-colour toy (paper 4.1): PPO alone vs MDPO, minutes on a CPU")
    p.add_argument("--quick", action="store_true",
                   help=f"{SETTINGS['quick']['seeds']} seeds instead of {SETTINGS['full']['seeds']}")
    p.add_argument("--seeds", type=int, help="seeds per algorithm")
    p.add_argument("--steps", type=int, help="env steps per agent")
    p.add_argument("--a-levels", default="correlated", help=f"A's levels: {', '.join(AGREEMENTS)} or a probability")
    p.add_argument("--b-levels", default="mixed", help="B's levels (MDPO only), as --a-levels")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="trainings run at once")
    p.add_argument("--out", help="demo folder (default: runs/demo-TIME)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> None:
    setting = SETTINGS["quick" if args.quick else "full"]
    seeds = setting["seeds"] if args.seeds is None else args.seeds
    steps = setting["steps"] if args.steps is None else args.steps
    if seeds < 1 or steps < 1 or args.jobs < 1:
        raise MdpoError("--seeds, --steps and --jobs must be at least 1")
    a_levels, b_levels = parse_agreement(args.a_levels), parse_agreement(args.b_levels)
    out = Path(args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    print(f"training {seeds} seeds of PPO and MDPO, {args.jobs} at a time, into {out}")
    data = run_demo(seeds, steps, out, a_levels, b_levels, args.jobs)
    print(data["table"])
    print(f"written: {out / 'demo.json'}, {out / 'demo.png'}  ({data['seconds']:.0f} s)")
