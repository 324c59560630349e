"""Figures and tables of the CPU studies in docs/results/cpu/, drawn from the run folders committed there.

    python3 scripts/cpu_study_report.py                  # every figure and table, from docs/results/cpu/runs
    python3 scripts/cpu_study_report.py --add runs/cpu   # first copy new runs in (config, metrics, eval only)

Run folders are told apart by their names (scripts/cpu_study.sh gives them): ``minatar-*`` are the
five-game MinAtar study, ``ablation-*`` the search for the cause of the MinAtar gap (issue 27), ``precision-*``
MinAtar PPO in bf16 (beside the study's float32 runs), ``procgen-*`` StarPilot, ``gap-*`` StarPilot PPO with
the Procgen authors' network start or precision (why ours lies above theirs), ``pilot-*`` the search for a
MiniGrid task where PPO overfits, ``gen-*`` the train/test study on the task it found (issue 28; drawn by
``mdpo report`` into generalization/), ``clip-*`` why MDPO learned slower there, ``minigrid-*`` the earlier
MiniGrid train/test study. The training return is
``charts/episodic_return`` (the mean return of the episodes that ended in an update); a run's "last 3" is its
mean over the last 3 updates (about 25k env steps on MinAtar); on Procgen the return at a step is the mean of
the last 100 episodes, the statistic the Procgen authors' logs give, averaged over +-0.1M as the published points
are. Their own StarPilot runs (openai/train-procgen, ``results/easy-all-run{0,1,2}/progress-starpilot.csv``:
``eprewmean`` and ``eplenmean`` of the first 62 updates, as many as ours) are in ``published/`` and are drawn
and tabled with the same statistic.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mdpo.analysis.report import write_report  # noqa: E402
from mdpo.logger import read_metrics  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results" / "cpu"
KEPT = ("config.json", "metrics.jsonl", "eval.json", "resumes.jsonl")
THEIRS = "Procgen authors' PPO"  # openai/train-procgen's easy-mode runs: TensorFlow, float32, procgen 0.9
MINATAR_GAMES = ("Breakout", "SpaceInvaders", "Asterix", "Freeway", "Seaquest")
# (env steps, return, source) as published (../shared/reference.md section 6); "~" values read off plots
PUBLISHED = {
    "MinAtar/Breakout-v1": [(1e6, 15, "PPO, gymnax-blines, no sticky actions (~)"),
                            (1e6, 10.3, "Pgx PPO, mean of 2 training returns"),
                            (1e6, 9, "actor-critic, MinAtar paper (~)"), (0, 0.48, "random")],
    "MinAtar/SpaceInvaders-v1": [(1e6, 55, "PPO, gymnax-blines, no sticky actions (~)"),
                                 (1e6, 59.6, "Pgx PPO, 1 seed, evaluation"), (0, 2.9, "random")],
    "MinAtar/Asterix-v1": [(1e6, 2, "PPO, gymnax-blines, no sticky actions (~)"), (0, 0.53, "random")],
    "MinAtar/Freeway-v1": [(1e6, 28, "PPO, gymnax-blines, no sticky actions (~)"), (0, 0.14, "random")],
    "MinAtar/Seaquest-v1": [],
    "starpilot": [(0, 1.53, "random")],  # the Procgen authors' runs are drawn whole (published/)
}
OVERFITS = (0.5, 0.15)  # issue 28: PPO overfits where train >= 0.5 of the return range and train - test >= 0.15
COLOURS = {THEIRS: "black", "ppo": "tab:blue", "ppo, glorot init": "tab:purple", "ppo, float32": "tab:cyan",
           "mdpo": "tab:orange", "mdpo (mean)": "tab:orange",
           "mdpo (sum)": "tab:green", "2 agents, alpha 0 (sum)": "tab:gray"}


def load(run: Path) -> dict:
    cfg = json.loads((run / "config.json").read_text())
    rows = read_metrics(run)
    train = [(r["global_step"], r["charts/episodic_return"]) for r in rows if "charts/episodic_return" in r]
    lengths = [r["charts/episodic_length"] for r in rows if "charts/episodic_return" in r]
    evals = [(r["global_step"], r["eval/train_return"], r["eval/test_return"]) for r in rows if "eval/test_return" in r]
    entropy = [(r["global_step"], r["losses/entropy"]) for r in rows if "losses/entropy" in r]
    approx_kl = [(r["global_step"], r["losses/approx_kl"]) for r in rows if "losses/approx_kl" in r]
    final = json.loads((run / "eval.json").read_text())["summary"] if (run / "eval.json").exists() else None
    batch = cfg["env"]["num_envs"] * cfg["ppo"]["num_steps"]
    speeds = [r["charts/SPS"] for r in rows if r.get("charts/SPS")]
    out = {"name": run.name, "game": cfg["env"]["game"], "algo": cfg["algo"], "seed": cfg["seed"], "cfg": cfg,
           "train": train, "evals": evals, "entropy": entropy, "approx_kl": approx_kl, "final": final,
           "steps": train[-1][0] if train else 0,
           "last3": float(np.mean([v for _, v in train[-3:]])) if train else float("nan"),
           "at_half": _at(train, 5e5), "lengths": lengths,
           "update_s": sum(batch / s for s in speeds), "sps": float(np.mean(speeds)) if speeds else float("nan")}
    return {**out, "last100": [(step, last_episodes(out, step)) for step, _ in train]}


def published_starpilot() -> list[dict]:
    """The Procgen authors' three easy-mode StarPilot runs, as far as ours go: their ``eprewmean`` per update is
    the mean of the last 100 episodes already."""
    rows = np.genfromtxt(RESULTS / "published" / "train-procgen-starpilot-easy.csv", delimiter=",", names=True,
                         dtype=None, encoding="utf-8")
    runs = []
    for seed, name in enumerate(sorted(set(rows["run"]))):
        mine = rows[rows["run"] == name]
        runs.append({"name": f"{name} (openai/train-procgen)", "algo": THEIRS, "seed": seed, "final": None,
                     "steps": int(mine["total_timesteps"][-1]), "lengths": list(mine["eplenmean"]),
                     "last100": list(zip(mine["total_timesteps"].tolist(), mine["eprewmean"].tolist()))})
    return runs


def _nearest(train: list[tuple[int, float]], step: float) -> int | None:
    """The index of the update that ends nearest ``step``, or None where the run stopped before it."""
    if not train or train[-1][0] < step * 0.98:
        return None
    return min(range(len(train)), key=lambda j: abs(train[j][0] - step))


def _at(train: list[tuple[int, float]], step: float) -> float:
    """The training return around ``step``: the mean of the 3 updates that end nearest it."""
    i = _nearest(train, step)
    return float("nan") if i is None else float(np.mean([v for _, v in train[max(0, i - 2):i + 1]]))


def last_episodes(run: dict, step: float, episodes: int = 100) -> float:
    """The mean return of the last ``episodes`` training episodes up to ``step``, as baselines' ``eprewmean``
    keeps it: each update's mean return weighted by its count of episodes, estimated as the update's env
    steps over their mean length (the metrics keep the mean, not the count); nan before ``step``."""
    train, batch = run["train"], run["cfg"]["env"]["num_envs"] * run["cfg"]["ppo"]["num_steps"]
    end = _nearest(train, step)
    if end is None:
        return float("nan")
    total = weighted = 0.0
    for i in range(end, -1, -1):
        count = min(batch / run["lengths"][i], episodes - total)
        total, weighted = total + count, weighted + count * train[i][1]
        if total >= episodes:
            break
    return weighted / total


def around(last100: list[tuple[int, float]], step: float, width: float = 1e5) -> float:
    """The published Procgen statistic at ``step``: the last-100-episodes mean returns (``run["last100"]``) of
    every update within ``width`` of it, averaged (the reference's points average the authors' logs over +-0.1M)."""
    if _nearest(last100, step) is None:
        return float("nan")
    return float(np.mean([v for s, v in last100 if abs(s - step) <= width]))


def smooth(values: list[float], width: int = 5) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    return np.array([x[max(0, i - width + 1):i + 1].mean() for i in range(len(x))])


def seed_band(runs: list[dict], key: str, column: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps and (mean, min, max) over seeds, on the steps all seeds reached."""
    length = min(len(r[key]) for r in runs)
    steps = np.array([row[0] for row in runs[0][key][:length]])
    ys = np.stack([smooth([row[column] for row in r[key][:length]]) for r in runs])
    return steps, ys.mean(0), ys.min(0), ys.max(0)


def curves(by_game: dict, key: str, columns: dict, ylabel: str, path: Path, published: bool) -> None:
    games = list(by_game)
    fig, axes = plt.subplots(1, len(games), figsize=(4.6 * len(games), 3.8), squeeze=False)
    for ax, game in zip(axes[0], games):
        for algo, runs in sorted(by_game[game].items(), key=lambda item: item[0] != "ppo"):
            for what, (column, style) in columns.items():
                steps, mean, low, high = seed_band(runs, key, column)
                label = f"{' '.join(filter(None, (algo, what)))} ({len(runs)} seeds)"
                line, = ax.plot(steps, mean, style, color=COLOURS.get(algo), label=label)
                ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.15)  # the band in its line's colour
        for step, value, source in PUBLISHED.get(game, []) if published else []:
            ax.plot([step], [value], "k_" if source == "random" else "k*", markersize=12)
            ax.annotate(source, (step, value), textcoords="offset points", xytext=(-6, 5), ha="right", fontsize=6.5)
        ax.set_title(game.removeprefix("MinAtar/"))
        ax.set_xlabel("env steps per agent")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _num(x: float) -> str:
    return "-" if x != x else f"{x:.2f}"


def _count(x: float) -> str:
    return "-" if x != x else f"{x:.0f}"


def _spread(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}" if values else "-"
    return f"{np.mean(values):.2f} ({min(values):.2f} to {max(values):.2f})"


def run_table(runs: list[dict]) -> list[str]:
    lines = ["| run | env steps | training return, last 3 updates | final eval (64 episodes) | update time | "
             "env steps/s |", "|---|---|---|---|---|---|"]
    for r in sorted(runs, key=lambda r: r["name"]):
        f = r["final"] or {}
        final = _num(f["eval/test_return"]) if "eval/test_return" in f else "(not finished)"
        lines.append(f"| {r['name']} | {r['steps']:,} | {r['last3']:.2f} | {final} | {r['update_s'] / 60:.1f} min | "
                     f"{r['sps']:,.0f} |")
    return lines


def precision_of(run: dict) -> str:
    return {"none": "float32"}.get(run["cfg"]["perf"]["amp"], run["cfg"]["perf"]["amp"])


def variant_of(run: dict) -> str:
    """The algorithm, and where a StarPilot run differs from the study's (mdpo's init, bf16), how."""
    if run["algo"] == THEIRS:
        return THEIRS
    init, precision = run["cfg"]["net"]["init"], precision_of(run)
    return ", ".join([run["algo"]] + [f"{init} init"] * (init != "cleanrl") + [precision] * (precision != "bf16"))


def losses_of(run: dict) -> str:
    """PPO, or MDPO with its agents' losses averaged (the authors', and the only form before ``cohort.reduce``)
    or summed; a cohort without distillation (alpha 0) is named so."""
    cohort = run["cfg"]["cohort"]
    if run["algo"] == "ppo":
        return "ppo"
    name = run["algo"] if cohort["alpha"] else f"{cohort['num_agents']} agents, alpha 0"
    return f"{name} ({cohort.get('reduce', 'mean')})"


LABELS = {"algorithm": lambda r: r["algo"], "precision": precision_of, "agents' losses": losses_of}


def game_table(runs: list[dict], kind: str = "algorithm") -> list[str]:
    """One row per game and algorithm, with the published numbers; or per game and another ``LABELS`` kind,
    with each seed's return at 1M."""
    name_of, last = LABELS[kind], "published at 1M" if kind == "algorithm" else "per seed"
    lines = [f"| game | {kind} | seeds | training return at 0.5M | at 1M, mean (min-max) | final eval, mean | "
             f"{last} |", "|---|---|---|---|---|---|---|"]
    grouped = defaultdict(list)
    for r in runs:
        if r["final"]:
            grouped[r["game"], name_of(r)].append(r)
    order = {f"MinAtar/{g}-v1": i for i, g in enumerate(MINATAR_GAMES)}
    for (game, name), rs in sorted(grouped.items(), key=lambda kv: (order.get(kv[0][0], 9),
                                                                     kv[0][1] not in ("ppo", "float32"), kv[0][1])):
        if kind == "algorithm":
            extra = "; ".join(f"{v:g} {src}" for step, v, src in PUBLISHED.get(game, []) if step) or "-"
        else:
            extra = ", ".join(f"{r['last3']:.2f}" for r in sorted(rs, key=lambda r: r["seed"]))
        lines.append(f"| {game.removeprefix('MinAtar/')} | {name} | {len(rs)} | "
                     f"{_spread([r['at_half'] for r in rs])} | {_spread([r['last3'] for r in rs])} | "
                     f"{np.mean([r['final']['eval/test_return'] for r in rs]):.2f} | {extra} |")
    return lines


PHASES = ((1.5e5, 3e5), (4e5, 6e5), (8.5e5, float("inf")))  # early, middle and end of a 1M-step run


def phase_table(runs: list[dict]) -> list[str]:
    """Per game and ``losses_of``: the training return, the policy's entropy and PPO's approx_kl (how far an
    update moves the policy), each the mean over the updates in a phase of the run and over seeds."""
    def mean(rs: list[dict], key: str, low: float, high: float) -> float:
        return float(np.mean([np.mean([v for s, v in r[key] if low <= s <= high]) for r in rs]))
    heads = [f"{low / 1e6:g}M-" + ("end" if high == float("inf") else f"{high / 1e6:g}M") for low, high in PHASES]
    heads[0] += ": return, entropy, approx_kl"
    lines = [f"| game | agents' losses | seeds | {' | '.join(heads)} |", "|---|---|---|" + "---|" * len(PHASES)]
    groups = _by([r for r in runs if r["final"]], lambda r: (r["game"], losses_of(r)))
    for (game, name), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "ppo", kv[0][1])):
        cells = [f"{mean(rs, 'train', *p):.2f}, {mean(rs, 'entropy', *p):.3f}, {mean(rs, 'approx_kl', *p):.4f}"
                 for p in PHASES]
        lines.append(f"| {game.removeprefix('MinAtar/')} | {name} | {len(rs)} | {' | '.join(cells)} |")
    return lines


def ablation_table(runs: list[dict], now: list[dict]) -> list[str]:
    """One row per game and setting of the search for the MinAtar gap, what each setting changed, its seeds'
    returns; ``now``: the study's PPO runs of the same games, the preset as it is now."""
    settings = defaultdict(list)
    for r in runs:
        settings[r["game"], r["name"].rsplit("-s", 1)[0].split("-", 2)[2]].append(r)
    for r in now:
        settings[r["game"], "the minatar preset now"].append(r)
    lines = ["| game | setting | encoder | hidden | head layers | init | lr | gamma | seeds | training return at 1M, "
             "per seed | mean | final eval, mean |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (game, name), rs in sorted(settings.items(), key=lambda kv: (kv[0][0], np.mean([r["last3"] for r in kv[1]]))):
        net, ppo = rs[0]["cfg"]["net"], rs[0]["cfg"]["ppo"]
        per_seed = ", ".join(f"{r['last3']:.2f}" for r in sorted(rs, key=lambda r: r["seed"]))
        finals = [r["final"]["eval/test_return"] for r in rs if r["final"]]
        lr = f"{ppo['lr']:g} {'annealed' if ppo['anneal_lr'] else 'constant'}"
        encoder = net["encoder"].replace("auto", "grid (auto)")
        lines.append(f"| {game.removeprefix('MinAtar/').removesuffix('-v1')} | {name} | {encoder} | {net['hidden']} | "
                     f"{net.get('head_layers', 0)} | "
                     f"{net.get('init', 'cleanrl')} | {lr} | {ppo['gamma']:g} | {len(rs)} | {per_seed} | "
                     f"{np.mean([r['last3'] for r in rs]):.2f} | {_num(float(np.mean(finals))) if finals else '-'} |")
    return lines


def minigrid_table(runs: list[dict]) -> list[str]:
    lines = ["| run | env steps | final eval: train seeds | final eval: test seeds | gap |", "|---|---|---|---|---|"]
    for r in sorted(runs, key=lambda r: r["name"]):
        f = r["final"] or {}
        lines.append(f"| {r['name']} | {r['steps']:,} | {_num(f.get('eval/train_return', float('nan')))} | "
                     f"{_num(f.get('eval/test_return', float('nan')))} | {_num(f.get('eval/gap', float('nan')))} |")
    return lines


def procgen_table(runs: list[dict]) -> list[str]:
    """A row per run (the Procgen authors' last) and then the mean of each variant's seeds (``variant_of``)."""
    lines = ["| run | algorithm | seed | env steps | training return at 0.5M (+-0.1M) | at 1M (0.9M-end) | "
             "episode length at 1M | final eval: test, train (100 episodes each) | update time | env steps/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    order = {"ppo": 0, "mdpo": 1, THEIRS: 3}
    runs = sorted(runs, key=lambda r: (order.get(variant_of(r), 2), variant_of(r), r["seed"]))
    points = {}
    for r in runs:
        lengths = [(step, length) for (step, _), length in zip(r["last100"], r["lengths"])]
        points[r["name"]] = (around(r["last100"], 5e5), around(r["last100"], 1e6), around(lengths, 1e6))
        f = r["final"] or {}
        final = f"{_num(f['eval/test_return'])}, {_num(f['eval/train_return'])}" if f else "-"
        speed = f"{r['update_s'] / 60:.0f} min | {r['sps']:,.0f}" if "sps" in r else "- | -"
        half, full, length = points[r["name"]]
        seed = r["seed"] if r["algo"] != THEIRS else "-"
        lines.append(f"| {r['name']} | {variant_of(r)} | {seed} | {r['steps']:,} | {_num(half)} | {_num(full)} | "
                     f"{_count(length)} | {final} | {speed} |")
    for algo, group in _by(runs, variant_of).items():
        half, full, length = (float(np.mean(v)) for v in zip(*(points[r["name"]] for r in group)))
        finals = [r["final"] for r in group if r["final"]]
        final = (f"{_num(np.mean([f['eval/test_return'] for f in finals]))}, "
                 f"{_num(np.mean([f['eval/train_return'] for f in finals]))}") if len(finals) == len(group) else "-"
        lines.append(f"| mean of {len(group)} | {algo} | | | {_num(half)} | {_num(full)} | {_count(length)} | {final} "
                     "| | |")
    return lines


def test_layouts_seen(game: str, levels: int) -> str:
    """The share of sampled test layouts that are also training layouts (``mdpo.envs.levels``)."""
    from mdpo.envs.gym import single_env
    from mdpo.envs.levels import split_overlap

    env = single_env(game)
    try:
        _, distinct, share = split_overlap(env, 0, levels)
    finally:
        env.close()
    return f"{distinct}; {share:.0%}"


def pilot_table(runs: list[dict]) -> list[str]:
    """One row per task and number of training layouts: final evaluation on training and test seeds."""
    lines = ["| task | training layouts | seeds | env steps | train return | test return | gap | distinct training "
             "layouts; test layouts also in training | PPO overfits? |", "|---|---|---|---|---|---|---|---|---|"]
    grouped = defaultdict(list)
    for r in runs:
        if r["final"]:
            grouped[r["game"], r["cfg"]["env"]["num_levels"], r["steps"]].append(r)
    for (game, levels, _), rs in sorted(grouped.items()):
        train = [r["final"]["eval/train_return"] for r in rs]
        test = [r["final"]["eval/test_return"] for r in rs]
        gap = [a - b for a, b in zip(train, test)]
        separate = len(rs) == 1 or min(train) > max(test)
        verdict = "yes" if min(train) >= OVERFITS[0] and min(gap) >= OVERFITS[1] and separate else "no"
        lines.append(f"| {game.removeprefix('MiniGrid-').removesuffix('-v0')} | {levels} | {len(rs)} | "
                     f"{rs[0]['steps']:,} | {_spread(train)} | {_spread(test)} | {_spread(gap)} | "
                     f"{test_layouts_seen(game, levels)} | {verdict} |")
    return lines


def clip_table(runs: list[dict]) -> list[str]:
    """One row per setting of the clip diagnosis: what each agent's update is, the gradient clip as it acts
    on PPO's scale of gradient (a cohort's mean hands each agent 1/K of its gradient), policy entropy and
    training return along the way, and the final evaluation."""
    lines = ["| setting | agents | alpha | agents' losses | max_grad_norm | clip on PPO's gradient scale | seeds | "
             "policy entropy at 0.15M | at 0.3M | training return at 0.3M | final eval: train, test |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    settings = _by(runs, lambda r: r["name"].rsplit("-s", 1)[0].removeprefix("clip-"))
    for name, rs in sorted(settings.items(), key=lambda kv: (kv[1][0]["algo"] != "ppo", kv[0])):
        cohort, clip = rs[0]["cfg"]["cohort"], rs[0]["cfg"]["ppo"]["max_grad_norm"]
        k, reduce = cohort["num_agents"], cohort.get("reduce", "mean")
        effective = clip * k if reduce == "mean" else clip
        finals = [r["final"] for r in rs if r["final"]]
        final = (f"{np.mean([f['eval/train_return'] for f in finals]):.2f}, "
                 f"{np.mean([f['eval/test_return'] for f in finals]):.2f}") if finals else "-"
        alpha, reduce = (f"{cohort['alpha']:g}", reduce) if k > 1 else ("-", "-")
        along = [_spread([_at(r[key], step) for r in rs]) for key, step in
                 (("entropy", 1.5e5), ("entropy", 3e5), ("train", 3e5))]
        lines.append(f"| {name} | {k} | {alpha} | {reduce} | {clip:g} | {effective:g} | {len(rs)} | "
                     f"{' | '.join(along)} | {final} |")
    return lines


def _by(runs: list[dict], label) -> dict[str, list[dict]]:
    """Runs grouped by ``label(run)``."""
    out = defaultdict(list)
    for r in runs:
        out[label(r)].append(r)
    return out


def add_runs(source: Path, runs_dir: Path) -> None:
    """Copy each finished run's config, metrics and evaluation (never a checkpoint) into ``runs_dir``."""
    for run in sorted(p for p in source.iterdir() if (p / "eval.json").exists()):
        dest = runs_dir / run.name
        dest.mkdir(parents=True, exist_ok=True)
        for name in KEPT:
            if (run / name).exists():
                shutil.copy2(run / name, dest / name)


def main(out: Path, add: list[Path]) -> None:
    runs_dir = out / "runs"
    for source in add:
        add_runs(source, runs_dir)
    runs = [load(p) for p in sorted(runs_dir.iterdir()) if (p / "config.json").exists() and read_metrics(p)]
    study = [r for r in runs if r["name"].startswith("minatar-")]
    ablation = [r for r in runs if r["name"].startswith("ablation-")]
    minigrid = [r for r in runs if r["name"].startswith("minigrid-")]
    precision = [r for r in runs if r["name"].startswith("precision-")]
    reduce = [r for r in runs if r["name"].startswith("reduce-")]
    procgen = [r for r in runs if r["name"].startswith("procgen-")]
    gap = [r for r in runs if r["name"].startswith("gap-")]
    pilot = [r for r in runs if r["name"].startswith("pilot-")]
    generalization = [r for r in runs if r["name"].startswith("gen-")]
    clip = [r for r in runs if r["name"].startswith("clip-")]
    sections = []
    if procgen:
        theirs = published_starpilot()
        panels = {"starpilot": _by(procgen + theirs, variant_of)}
        if gap:  # why PPO lies above the authors' curve: their network's start, their precision
            panels["starpilot: PPO with their init, or in their precision"] = _by(
                [r for r in procgen if r["algo"] == "ppo"] + gap + theirs, variant_of)
        curves(panels, "last100", {"": (1, "-")}, "mean return of the last 100 episodes",
               out / "procgen-starpilot.png", published=True)
        sections += ["## Procgen StarPilot, easy, full distribution", "", *procgen_table(procgen + gap + theirs), ""]
    if study:
        by_game: dict = {f"MinAtar/{g}-v1": defaultdict(list) for g in MINATAR_GAMES}
        for r in study:
            by_game[r["game"]][r["algo"]].append(r)
        curves({g: v for g, v in by_game.items() if v}, "train", {"": (1, "-")},
               "training return (per update, smoothed)", out / "minatar-training-return.png", published=True)
        sections += ["## MinAtar, per game", "", *game_table(study), "", "## MinAtar, per run", "", *run_table(study)]
    if ablation:
        games = {r["game"] for r in ablation}
        now = [r for r in study if r["algo"] == "ppo" and r["game"] in games and r["final"]]
        sections += ["", "## The MinAtar gap: one change at a time (PPO, 1M env steps)", "",
                     *ablation_table(ablation, now)]
    if precision:
        games = {r["game"] for r in precision}
        both = precision + [r for r in study if r["algo"] == "ppo" and r["game"] in games and r["final"]]
        curves({g: _by([r for r in both if r["game"] == g], lambda r: f"ppo {precision_of(r)}")
                for g in sorted(games)}, "train", {"": (1, "-")}, "training return (per update, smoothed)",
               out / "precision-minatar.png", published=False)
        sections += ["", "## float32 and bf16: MinAtar PPO, 1M env steps", "", *game_table(both, "precision")]
    if reduce:
        games = {r["game"] for r in reduce}
        both = reduce + [r for r in study if r["game"] in games and r["final"]]
        curves({g: _by([r for r in both if r["game"] == g], losses_of) for g in sorted(games)}, "train",
               {"": (1, "-")}, "training return (per update, smoothed)", out / "reduce-minatar.png", published=False)
        sections += ["", "## MinAtar MDPO: the agents' losses averaged or summed, 1M env steps", "",
                     *game_table(both, "agents' losses"), "", *phase_table(both)]
    if pilot:  # with the study's PPO runs (its seeds, its budget) as the last word on its task
        study_ppo = [r for r in generalization if r["algo"] == "ppo" and r["cfg"]["net"]["width"] == 1]
        sections += ["", "## The pilot: where does PPO overfit? (MiniGrid, PPO)", "", *pilot_table(pilot + study_ppo)]
    if generalization:  # mdpo report's aggregates: IQM with stratified-bootstrap intervals, P(improvement)
        report = write_report([runs_dir / r["name"] for r in generalization], out / "generalization")
        sections += ["", f"## Generalization: PPO against MDPO ([the report]({report.relative_to(out)}))"]
    if clip:
        sections += ["", "## MDPO's slow start on FourRooms: distillation or the gradient clip?", "", *clip_table(clip)]
    if minigrid:
        by_task: dict = defaultdict(lambda: defaultdict(list))
        for r in minigrid:
            by_task[r["game"]][r["algo"]].append(r)
        curves(by_task, "evals", {"train seeds": (1, "-"), "test seeds": (2, "--")}, "evaluation return",
               out / "minigrid-train-test.png", published=False)
        sections += ["", "## MiniGrid", "", *minigrid_table(minigrid)]
    (out / "tables.md").write_text("\n".join(sections).strip() + "\n")
    print((out / "tables.md").read_text())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--add", type=Path, nargs="*", default=[], metavar="RUNS_DIR",
                        help="folders of run folders to copy in first")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"the results folder (default {RESULTS})")
    args = parser.parse_args()
    main(args.out, args.add)
