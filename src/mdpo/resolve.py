"""A run's config, resolved in layers: defaults (the paper's Table 2) -> preset -> algorithm alias ->
explicit overrides (``section.field=value``) -> the device's defaults for fields still unset; then
validated, so that a bad value is a one-line error before a run starts. The resolved config is saved
with every run. ``agent_env`` gives each agent its own environment (its levels, its overrides).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from mdpo.augment import AUGMENTATIONS
from mdpo.config import Config, EnvConfig, from_dict, get_field, set_field, to_dict
from mdpo.distill import DISTILL_LOSSES
from mdpo.envs import check_env_config
from mdpo.errors import MdpoError
from mdpo.losses import POLICY_LOSSES
from mdpo.nets import ENCODERS, INITS
from mdpo.presets import ALGOS, DEFAULT_PRESET, DEVICE_DEFAULTS, PRESETS
from mdpo.runtime import device_type

PEER_TARGETS = ("each", "mean", "best")
VECTORIZATIONS = ("sync", "async")
LEVEL_SPLITS = ("shared", "disjoint")
REDUCTIONS = ("mean", "sum")
AMP_MODES = ("none", "bf16")


def resolve(preset: str = DEFAULT_PRESET, algo: str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults -> preset -> algorithm alias -> explicit overrides, then the device's defaults
    (``DEVICE_DEFAULTS``) for fields neither the preset nor an override sets; validated."""
    if preset not in PRESETS:
        raise MdpoError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    cfg = Config()
    cfg.preset = preset
    for key, value in PRESETS[preset].items():
        set_field(cfg, key, value)
    overrides = dict(overrides or {})
    algo = algo or overrides.pop("algo", None) or "ppo"
    if algo not in ALGOS:
        raise MdpoError(f"unknown algorithm {algo!r}; choose from {', '.join(ALGOS)}")
    for key, value in ALGOS[algo].items():
        set_field(cfg, key, value)
    cfg.algo = algo
    for key, value in overrides.items():
        set_field(cfg, key, value)
    for key, value in DEVICE_DEFAULTS.get(device_type(cfg.device), {}).items():
        if key not in overrides and key not in PRESETS[preset]:
            set_field(cfg, key, value)
    validate(cfg)
    return cfg


# Numeric fields and the values they may take (checked by ``validate``).
AT_LEAST_ONE = ("total_steps", "checkpoint_every", "env.num_envs", "ppo.num_steps", "ppo.epochs",
                "ppo.num_minibatches", "net.width", "net.hidden", "cohort.num_agents", "cohort.teacher_every",
                "eval.episodes", "eval.final_episodes", "eval.bound_frames")
NON_NEGATIVE = ("torch_threads", "env.num_levels", "env.start_level", "env.num_threads", "ppo.vf_coef",
                "ppo.ent_coef", "net.head_layers", "net.encoder_agent", "cohort.alpha", "cohort.alpha_warmup",
                "eval.every", "drac.coef", "perf.micro_batch")
POSITIVE = ("ppo.lr", "ppo.adam_eps", "ppo.clip_coef", "ppo.max_grad_norm", "ppo.reward_clip",
            "cohort.temperature")
UNIT_INTERVAL = ("env.agreement", "ppo.gamma", "ppo.gae_lambda")


def overridden(cfg: Config, overrides: dict[str, Any]) -> Config:
    """A copy of ``cfg`` with ``overrides`` (``section.field``: value, strings parsed) set, validated."""
    changed = from_dict(to_dict(cfg))
    for key, value in overrides.items():
        set_field(changed, key, value)
    validate(changed)
    return changed


def check_ranges(cfg: Config) -> None:
    """One-line errors for numbers outside the range their field allows."""
    rules = ((AT_LEAST_ONE, lambda v: v >= 1, "at least 1"), (NON_NEGATIVE, lambda v: v >= 0, ">= 0"),
             (POSITIVE, lambda v: v > 0, "> 0"), (UNIT_INTERVAL, lambda v: 0 <= v <= 1, "in [0, 1]"))
    for keys, ok, wanted in rules:
        for key in keys:
            value = get_field(cfg, key)
            if not (math.isfinite(value) and ok(value)):
                raise MdpoError(f"{key} must be {wanted}, got {value!r}")


def validate(cfg: Config) -> None:
    """Check values that would otherwise fail deep inside training."""
    check_ranges(cfg)
    check_env_config(cfg.env)
    for i, over in enumerate(cfg.cohort.agent_env):
        if not isinstance(over, dict):
            raise MdpoError(f"cohort.agent_env[{i}] must be a mapping of env fields, got {over!r}")
        check_env_config(agent_env(cfg, i))
    if len(cfg.cohort.agent_env) > cfg.cohort.num_agents:
        raise MdpoError(
            f"cohort.agent_env has {len(cfg.cohort.agent_env)} entries for {cfg.cohort.num_agents} agents"
        )
    if "/" in cfg.run_name or cfg.run_name in (".", ".."):
        raise MdpoError(f"run_name {cfg.run_name!r} must be one folder name inside out_dir (no '/', not '.' or '..')")
    if cfg.device not in ("auto", "cpu", "cuda") and not cfg.device.startswith("cuda:"):
        raise MdpoError(f"bad device {cfg.device!r}; choose auto, cpu or cuda")
    batch = cfg.env.num_envs * cfg.ppo.num_steps
    if batch % cfg.ppo.num_minibatches:
        raise MdpoError(f"env.num_envs * ppo.num_steps = {batch} is not divisible by "
                        f"ppo.num_minibatches = {cfg.ppo.num_minibatches}")
    choices = {"ppo.base_loss": (cfg.ppo.base_loss, tuple(POLICY_LOSSES)),
               "cohort.distill": (cfg.cohort.distill, tuple(DISTILL_LOSSES)),
               "cohort.peer_target": (cfg.cohort.peer_target, PEER_TARGETS),
               "cohort.level_split": (cfg.cohort.level_split, LEVEL_SPLITS),
               "cohort.reduce": (cfg.cohort.reduce, REDUCTIONS),
               "perf.amp": (cfg.perf.amp, AMP_MODES),
               "env.vectorization": (cfg.env.vectorization, VECTORIZATIONS),
               "net.encoder": (cfg.net.encoder, ("auto", *ENCODERS)),
               "net.init": (cfg.net.init, tuple(INITS)),
               "drac.augment": (cfg.drac.augment, tuple(AUGMENTATIONS))}
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise MdpoError(f"unknown {key} {value!r}; choose from {', '.join(allowed)}")
    if cfg.cohort.level_split == "disjoint" and cfg.env.num_levels < cfg.cohort.num_agents:
        raise MdpoError("cohort.level_split=disjoint needs env.num_levels >= cohort.num_agents")


def agent_env(cfg: Config, agent: int) -> EnvConfig:
    """Agent ``agent``'s training environment: the shared env config, its block of levels under
    ``level_split=disjoint``, then its own ``agent_env`` overrides."""
    overrides = cfg.cohort.agent_env[agent] if agent < len(cfg.cohort.agent_env) else {}
    holder = Config(env=dataclasses.replace(cfg.env))
    if cfg.cohort.level_split == "disjoint":
        block = cfg.env.num_levels // cfg.cohort.num_agents
        holder.env.start_level, holder.env.num_levels = cfg.env.start_level + agent * block, block
    for key, value in overrides.items():
        set_field(holder, f"env.{key}", value)
    return holder.env
