"""Short run labels: the algorithm, and only what tells apart runs that would otherwise share one.

The config fields that differ between one algorithm's runs of one game (seeds aside) go into that
algorithm's labels, abbreviated: ``mdpo α=0.5``, ``ppo width=2``. Fields that differ only between
games (the demo's toy settings against a smoke run's) stay out. Where one algorithm's runs of a
game come from different presets, the preset names them (``ppo [ppo-scaled]``) and a field counts
only when it differs within one preset.
"""

from __future__ import annotations

import functools
from collections import defaultdict

from mdpo.analysis.collect import Run
from mdpo.config import Config, field_docs

# Fields that do not define the experiment: runs differing only in them are seeds of one another.
NOT_EXPERIMENT = {"seed", "run_name", "out_dir", "device", "torch_threads", "env.num_threads", "checkpoint_every",
                  "net.encoder_from", "env.game", "env.mode", "algo", "preset"}
ABBREVIATIONS = {
    "cohort.alpha": "α", "cohort.temperature": "T", "cohort.num_agents": "K", "cohort.alpha_warmup": "warmup",
    "cohort.detach_peer": "detach", "cohort.peer_target": "peer", "cohort.level_split": "split",
    "cohort.agent_env": "agent envs", "cohort.teacher_every": "teacher every", "total_steps": "steps",
    "env.num_envs": "envs", "env.num_levels": "levels", "env.agreement": "agree", "ppo.base_loss": "loss",
    "ppo.num_steps": "horizon", "ppo.num_minibatches": "minibatches", "ppo.ent_coef": "ent", "drac.coef": "drac",
    "drac.augment": "aug", "net.encoder_agent": "from agent",
}
PRESET_KEY = "[name]"
ALGO_ORDER = ("ppo", "mdpo", "spo", "mdspo", "drac")  # each baseline before its distilled form, as in the paper


def label_order(label: str) -> tuple[int, str]:
    """Sort key: known algorithms in ALGO_ORDER, each with its variants, then the rest by name."""
    algo = label.split(" ")[0]
    return (ALGO_ORDER.index(algo) if algo in ALGO_ORDER else len(ALGO_ORDER)), label


def run_order(run: Run) -> tuple:
    """Sort key of runs: by task, label, seed."""
    return run.task, label_order(run.label), run.cfg.seed, run.path.name


def abbreviation(field: str) -> str:
    return ABBREVIATIONS.get(field, field.rsplit(".", 1)[-1])


def short_value(value: object) -> str:
    """``40k``, ``50M``, ``0.5``, ``on``, ``[-, agreement:0.5]``."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int) and value >= 1_000_000 and value % 100_000 == 0:
        return f"{value / 1e6:g}M"
    if isinstance(value, int) and value >= 1_000 and value % 100 == 0:
        return f"{value / 1e3:g}k"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(map(short_value, value)) + "]"
    if isinstance(value, dict):
        return " ".join(f"{k}:{short_value(v)}" for k, v in value.items()) or "-"
    return str(value)


def _value(cfg: Config, field: str) -> object:
    return functools.reduce(getattr, field.split("."), cfg)


def label_runs(runs: list[Run]) -> dict[str, str]:
    """Set every run's label; returns the abbreviations the labels use, each with its config field
    (``PRESET_KEY`` where a preset name appears)."""
    experiment = [k for k in field_docs() if k not in NOT_EXPERIMENT and not k.startswith(("perf.", "eval."))]
    by_algo: dict[str, dict[tuple, list[Config]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        by_algo[run.cfg.algo][run.task].append(run.cfg)
    used: dict[str, str] = {}
    for algo, by_task in by_algo.items():
        show_preset = any(len({c.preset for c in cfgs}) > 1 for cfgs in by_task.values())
        groups: dict[tuple, list[Config]] = defaultdict(list)
        for task, cfgs in by_task.items():
            for cfg in cfgs:
                groups[task, cfg.preset if show_preset else ""].append(cfg)
        fields = [k for k in experiment if any(len({repr(_value(c, k)) for c in g}) > 1 for g in groups.values())]
        used.update({abbreviation(k): k for k in fields})
        if show_preset:
            used[PRESET_KEY] = "preset"
        for run in (r for r in runs if r.cfg.algo == algo):
            preset = f" [{run.cfg.preset}]" if show_preset else ""
            run.label = algo + preset + "".join(f" {abbreviation(k)}={short_value(_value(run.cfg, k))}" for k in fields)
    return used
