"""A sweep spec: a grid over config fields, expanded into one resolved config per trial.

    preset: smoke                     # every trial's starting point (a grid axis too, if you like)
    grid:                             # every combination is one trial
      env.game: [coinrun, bigfish]
      algo: [ppo, mdpo]
      seed: [1, 2, 3]
    overrides:                        # the same for every trial
      total_steps: 256
    resources: {cpu: 1, gpu: 0.5}     # per trial; fractional GPUs share a device (default gpu: a share)
    max_failures: 2                   # retries of a trial that dies, each from its last checkpoint
    out_dir: sweeps/smoke             # the sweep folder (default: sweeps/<spec file name>)

Grid and override keys are config fields (``mdpo flags``). Each trial is an ordinary run folder
``out_dir/NAME`` whose name comes from its grid point alone (``coinrun-mdpo-s1``, plus e.g.
``-alpha0.5`` for every other field that varies), so running the same spec again finds it.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mdpo.config import Config, get_field
from mdpo.errors import MdpoError
from mdpo.presets import DEFAULT_PRESET
from mdpo.resolve import resolve

SPEC_KEYS = ("preset", "grid", "overrides", "resources", "max_failures", "out_dir")
SET_BY_SWEEP = ("out_dir", "run_name")
ALWAYS_NAMED = ("env.game", "algo", "seed")


@dataclass
class Spec:
    grid: dict[str, list]
    overrides: dict[str, Any]
    out_dir: Path
    cpu: float = 1.0
    gpu: float | None = None  # None: a share of the GPUs there are (``gpu_share``)
    max_failures: int = 2


@dataclass
class Trial:
    name: str
    config: Config

    @property
    def run_dir(self) -> Path:
        return Path(self.config.out_dir) / self.name


def read_spec_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MdpoError(f"sweep spec {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise MdpoError(f"sweep spec {path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise MdpoError(f"sweep spec {path} must be a mapping with keys {', '.join(SPEC_KEYS)}")
    return data


def merge(spec: dict, flags: dict) -> dict:
    """Command-line flags over a spec file: grid, overrides and resources key by key, the rest whole."""
    out = dict(spec)
    for key in ("grid", "overrides", "resources"):
        if flags.get(key):
            out[key] = {**_mapping(out.get(key), key), **flags[key]}
    out.update({k: v for k, v in flags.items() if k not in ("grid", "overrides", "resources") and v is not None})
    return out


def build_spec(data: dict, default_out_dir: str | Path) -> Spec:
    """Check a spec's shape (keys, lists, resources); field names and values are checked by ``expand``."""
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise MdpoError(f"unknown sweep spec key(s) {', '.join(unknown)}; allowed: {', '.join(SPEC_KEYS)}")
    grid = _mapping(data.get("grid"), "grid")
    overrides = _mapping(data.get("overrides"), "overrides")
    if "preset" in data:
        overrides.setdefault("preset", data["preset"])
    if not grid:
        raise MdpoError("the sweep grid is empty: give at least one field with a list of values, "
                        "e.g. grid: {env.game: [coinrun, bigfish]}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise MdpoError(f"grid field {key} needs a non-empty list of values, got {values!r}")
    both = sorted(set(grid) & set(overrides))
    if both:
        raise MdpoError(f"{', '.join(both)}: both a grid field and a fixed override; give each once")
    for key in SET_BY_SWEEP:
        if key in grid or key in overrides:
            raise MdpoError(f"{key} is set by the sweep (each trial's folder is OUT_DIR/NAME); "
                            "choose the sweep folder with the spec's out_dir or --out_dir")
    resources = _mapping(data.get("resources"), "resources")
    if set(resources) - {"cpu", "gpu"}:
        raise MdpoError(f"resources takes cpu and gpu (per trial), got {', '.join(map(str, resources))}")
    cpu, gpu = resources.get("cpu", 1), resources.get("gpu")
    if not _number(cpu) or cpu <= 0 or not (gpu is None or _number(gpu) and gpu >= 0):
        raise MdpoError(f"resources need cpu > 0 and gpu >= 0 per trial, got cpu={cpu!r} gpu={gpu!r}")
    max_failures = data.get("max_failures", 2)
    if not isinstance(max_failures, int) or isinstance(max_failures, bool) or max_failures < 0:
        raise MdpoError(f"max_failures must be a whole number >= 0, got {max_failures!r}")
    out_dir = Path(data.get("out_dir") or default_out_dir).resolve()  # absolute: trials run elsewhere
    return Spec(grid, overrides, out_dir, float(cpu), None if gpu is None else float(gpu), max_failures)


def expand(spec: Spec) -> list[Trial]:
    """One resolved, validated config per grid point, in grid order; bad fields or values raise here."""
    varying = [key for key, values in spec.grid.items() if len(values) > 1 and key not in ALWAYS_NAMED]
    trials: dict[str, Trial] = {}
    for point in itertools.product(*spec.grid.values()):
        values = {**spec.overrides, **dict(zip(spec.grid, point))}
        try:
            cfg = resolve(values.pop("preset", DEFAULT_PRESET), None, values)
        except MdpoError as exc:
            raise MdpoError(f"sweep spec: {exc}") from None
        name = trial_name(cfg, varying)
        if name in trials:
            raise MdpoError(f"two grid points give the same trial {name}; remove the duplicate value")
        cfg.out_dir, cfg.run_name = str(spec.out_dir), name
        trials[name] = Trial(name, cfg)
    return list(trials.values())


def trial_name(cfg: Config, varying: list[str]) -> str:
    """``game-algo-sSEED`` plus ``-FIELDvalue`` for every other varying field (its last name part)."""
    parts = [cfg.env.game, cfg.algo, f"s{cfg.seed}"]
    parts += [f"{key.rsplit('.', 1)[-1]}{get_field(cfg, key)}" for key in varying]
    return re.sub(r"[^\w.+=-]", "_", "-".join(parts))


def parse_grid_flag(text: str) -> tuple[str, list[str]]:
    """``--grid env.game=coinrun,bigfish`` -> ``('env.game', ['coinrun', 'bigfish'])``."""
    key, sep, values = text.partition("=")
    if not sep or not key or not values:
        raise MdpoError(f"--grid takes FIELD=VALUE1,VALUE2,... got {text!r}")
    return key, values.split(",")


def _mapping(value: Any, key: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MdpoError(f"{key} must be a mapping of config fields, got {value!r}")
    return dict(value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def gpu_share(gpus: float, cpus: float, cpu_per_trial: float, trials: int) -> float:
    """The GPU each trial reserves where the spec does not say: none without GPUs, else an equal share
    among the trials that run at once (as many as the CPUs allow), at most one each. A trial that
    reserves no GPU does not see one (Ray hides it), so 0 would keep every trial on the CPU."""
    if not gpus:
        return 0.0
    at_once = max(1, min(trials, int(cpus // cpu_per_trial)))
    return math.floor(min(1.0, gpus / at_once) * 10000) / 10000  # Ray takes fractions to 4 decimals
