"""Typed run configuration: sections of fields with one-line docs, presets and overrides.

A config is resolved in layers: defaults (the paper's Table 2) -> preset -> algorithm alias ->
explicit overrides (``section.field=value``). The resolved config is saved with every run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, get_type_hints

import yaml

from mdpo.errors import MdpoError


def _f(default: Any, doc: str) -> Any:
    """A dataclass field with a one-line doc (shown by ``--help`` and ``mdpo flags``)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass
class EnvConfig:
    game: str = _f("bigfish", "Procgen game (one of the 16) or 'coins' (the toy of paper section 4.1)")
    mode: str = _f("hard", "Procgen distribution mode: easy or hard")
    num_envs: int = _f(64, "parallel environments per agent")
    num_levels: int = _f(500, "training levels (0 = the full level distribution)")
    start_level: int = _f(0, "first training level")
    num_threads: int = _f(0, "envpool worker threads per agent (0 = min(num_envs, cores))")
    agreement: float = _f(1.0, "coins only: probability that background colour agrees with coin side")


@dataclass
class PPOConfig:
    base_loss: str = _f("ppo", "policy loss: ppo (clipped ratio) or spo (simple policy optimisation)")
    num_steps: int = _f(256, "rollout horizon per environment")
    lr: float = _f(5e-4, "Adam learning rate")
    adam_eps: float = _f(1e-5, "Adam epsilon")
    anneal_lr: bool = _f(False, "linearly decay the learning rate to 0")
    epochs: int = _f(3, "passes over each rollout")
    num_minibatches: int = _f(8, "minibatches per epoch")
    gamma: float = _f(0.999, "discount factor")
    gae_lambda: float = _f(0.95, "GAE lambda")
    clip_coef: float = _f(0.2, "ratio clip (PPO) / trust-region epsilon (SPO); also clips the value loss")
    clip_vloss: bool = _f(True, "clip the value loss around the old values")
    vf_coef: float = _f(0.5, "value loss coefficient")
    ent_coef: float = _f(0.01, "entropy bonus coefficient")
    max_grad_norm: float = _f(0.5, "gradient norm clip, applied to each agent separately")
    norm_adv: bool = _f(True, "normalise advantages per minibatch")
    norm_reward: bool = _f(True, "divide rewards by a running std of the discounted return")
    reward_clip: float = _f(10.0, "clip normalised rewards to +-this")


@dataclass
class NetConfig:
    width: int = _f(1, "IMPALA-CNN channel multiplier (2 for the scaled-up ablation)")
    hidden: int = _f(256, "hidden units after the conv stack")
    encoder_from: str = _f("", "run folder whose trained encoder initialises every agent (ablations)")
    encoder_agent: int = _f(0, "which agent of encoder_from supplies the encoder")
    freeze_encoder: bool = _f(False, "keep the encoder fixed; train only the actor and critic heads")


@dataclass
class CohortConfig:
    num_agents: int = _f(1, "agents trained together (1 = plain PPO/SPO, >=2 = mutual distillation)")
    distill: str = _f("kl", "distillation loss between peers (see mdpo.distill.DISTILL_LOSSES)")
    alpha: float = _f(1.0, "weight of the distillation term")
    detach_peer: bool = _f(False, "stop gradients through the peer (classic DML); the paper does not")
    temperature: float = _f(1.0, "distil softened policies (logits / T), loss scaled by T^2")
    alpha_warmup: int = _f(0, "ramp alpha linearly from 0 over this many updates (0 = constant)")
    peer_target: str = _f("each", "each: average the loss over peers (DML); mean: distil towards the "
                                  "peers' average policy; best: the best recent agent teaches the rest, one-way")
    teacher_every: int = _f(10, "peer_target=best: re-pick the teacher (best mean return) every this many updates")
    level_split: str = _f("shared", "shared: every agent trains on the same levels; disjoint: the training "
                                    "levels are cut into one block per agent")
    same_env_seed: bool = _f(True, "all agents' envs share one seed, as in the authors' code")
    agent_env: list = _f([], "per-agent env overrides, e.g. [{agreement: 1.0}, {agreement: 0.5}]")


@dataclass
class EvalConfig:
    every: int = _f(10, "evaluate every this many updates (0 = only at the end)")
    episodes: int = _f(10, "episodes per split per periodic evaluation")
    final_episodes: int = _f(100, "episodes per split in the final evaluation (eval.json)")
    bound: bool = _f(True, "with each evaluation, log the bound's terms (bound/*: peer TV, robustness)")
    bound_frames: int = _f(256, "frames per split for the bound's estimates")
    greedy: bool = _f(False, "argmax actions instead of sampling (the paper samples)")


@dataclass
class DracConfig:
    coef: float = _f(0.0, "DrAC regulariser weight (0 = off; --algo drac sets 0.1, its paper's value)")
    augment: str = _f("crop", "DrAC augmentation: crop, conv (random convolution) or jitter (colour)")


@dataclass
class PerfConfig:
    channels_last: bool = _f(True, "NHWC convolutions (same float32 math, faster on CPU and GPU)")
    amp: str = _f("none", "reduced-precision matmuls/convs: none or bf16 (losses and log-softmax stay float32)")
    tf32: bool = _f(False, "allow TF32 matmuls/convs on NVIDIA GPUs")
    compile: bool = _f(False, "torch.compile the networks")
    micro_batch: int = _f(256, "frames per agent per chunk of a minibatch: gradients accumulate over chunks, so the "
                               "update's peak memory scales with it (0 = the whole minibatch at once)")
    cpu_heap: bool = _f(True, "CPU: keep freed activations in malloc's heap instead of unmapping them (glibc), "
                              "so each minibatch does not page-fault its memory in again")
    batched_inference: bool = _f(True, "collection and advantages run the K agents as one grouped forward pass")


@dataclass
class Config:
    algo: str = _f("ppo", "algorithm label; ppo/mdpo/spo/mdspo also set num_agents, alpha and base_loss")
    preset: str = _f("paper", "the preset this config started from")
    seed: int = _f(1, "seed for networks, sampling and environments")
    total_steps: int = _f(50_000_000, "environment steps per agent")
    device: str = _f("auto", "auto, cpu or cuda")
    out_dir: str = _f("runs", "folder that holds run folders")
    run_name: str = _f("", "run folder name (default: game-algo-seed-time)")
    checkpoint_every: int = _f(25, "checkpoint every this many updates (envs restart there)")
    torch_threads: int = _f(0, "CPU threads for torch (0 = torch's default)")
    env: EnvConfig = field(default_factory=EnvConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    net: NetConfig = field(default_factory=NetConfig)
    cohort: CohortConfig = field(default_factory=CohortConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    drac: DracConfig = field(default_factory=DracConfig)
    perf: PerfConfig = field(default_factory=PerfConfig)


PRESETS: dict[str, dict[str, Any]] = {
    # The paper's Table 2: hard mode, 500 training levels, 50M steps per agent.
    "paper": {},
    # CleanRL's ppo_procgen.py: easy mode, the full level distribution, 25M steps.
    "cleanrl": {"env.mode": "easy", "env.num_levels": 0, "total_steps": 25_000_000},
    # Figure 6: PPO with 2x width, 2x batch (envs) and 2x steps.
    "ppo-scaled": {"net.width": 2, "env.num_envs": 128, "total_steps": 100_000_000},
    # A few seconds of CPU per update: checks the whole pipeline, learns little.
    "smoke": {
        "env.num_envs": 4, "ppo.num_steps": 32, "ppo.num_minibatches": 2, "ppo.epochs": 2,
        "total_steps": 1024, "checkpoint_every": 4, "eval.every": 4, "eval.episodes": 2,
        "eval.final_episodes": 4, "device": "cpu",
    },
}

PEER_TARGETS = ("each", "mean", "best")
LEVEL_SPLITS = ("shared", "disjoint")
AMP_MODES = ("none", "bf16")

ALGOS: dict[str, dict[str, Any]] = {
    "ppo": {"cohort.num_agents": 1, "ppo.base_loss": "ppo"},
    "mdpo": {"cohort.num_agents": 2, "ppo.base_loss": "ppo", "cohort.alpha": 1.0},
    "spo": {"cohort.num_agents": 1, "ppo.base_loss": "spo"},
    "mdspo": {"cohort.num_agents": 2, "ppo.base_loss": "spo", "cohort.alpha": 1.0},
    "drac": {"cohort.num_agents": 1, "ppo.base_loss": "ppo", "drac.coef": 0.1},
}


def field_docs(cls: type = Config, prefix: str = "") -> dict[str, tuple[Any, str, Any]]:
    """Every leaf field as ``{'section.name': (type, doc, default)}``."""
    out: dict[str, tuple[Any, str, Any]] = {}
    hints = get_type_hints(cls)
    default = cls()
    for f in fields(cls):
        typ = hints[f.name]
        if is_dataclass(typ):
            out.update(field_docs(typ, f"{prefix}{f.name}."))
        else:
            out[prefix + f.name] = (typ, f.metadata.get("doc", ""), getattr(default, f.name))
    return out


@functools.cache
def _leaf_fields() -> dict[str, tuple[Any, str, Any]]:
    return field_docs()


def parse_value(text: str, typ: Any, key: str) -> Any:
    """Parse a command-line string into a field's type; a clear error names the field."""
    try:
        if typ is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if typ is int:
            value = float(text)  # accepts 50e6 and 1_000
            if value != int(value):
                raise ValueError(text)
            return int(value)
        if typ is float:
            return float(text)
        if typ is list:
            value = yaml.safe_load(text)
            if not isinstance(value, list):
                raise ValueError(text)
            return value
        return text
    except (ValueError, yaml.YAMLError):
        raise MdpoError(f"bad value for {key}: {text!r} is not a {typ.__name__}") from None


def set_field(cfg: Config, key: str, value: Any) -> None:
    """Set ``section.name`` on a config; values given as strings are parsed to the field's type."""
    docs = _leaf_fields()
    if key not in docs:
        raise MdpoError(f"unknown config field {key!r} (see `mdpo flags` for the list)")
    typ = docs[key][0]
    if isinstance(value, str) and typ is not str:
        value = parse_value(value, typ, key)
    elif typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif typ is int and isinstance(value, float) and value == int(value):
        value = int(value)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise MdpoError(f"bad value for {key}: {value!r} is not a {typ.__name__}")
    *path, name = key.split(".")
    target = cfg
    for part in path:
        target = getattr(target, part)
    setattr(target, name, value)


def resolve(preset: str = "paper", algo: str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults -> preset -> algorithm alias -> explicit overrides, then validated."""
    if preset not in PRESETS:
        raise MdpoError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    cfg = Config()
    cfg.preset = preset
    for key, value in PRESETS[preset].items():
        set_field(cfg, key, value)
    overrides = dict(overrides or {})
    algo = algo or overrides.pop("algo", None) or "ppo"
    if algo in ALGOS:
        for key, value in ALGOS[algo].items():
            set_field(cfg, key, value)
    cfg.algo = algo
    for key, value in overrides.items():
        set_field(cfg, key, value)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Check values that would otherwise fail deep inside training."""
    from mdpo.augment import AUGMENTATIONS
    from mdpo.distill import DISTILL_LOSSES
    from mdpo.envs import check_env_config
    from mdpo.losses import POLICY_LOSSES

    check_env_config(cfg.env)
    for i, over in enumerate(cfg.cohort.agent_env):
        if not isinstance(over, dict):
            raise MdpoError(f"cohort.agent_env[{i}] must be a mapping of env fields, got {over!r}")
        check_env_config(agent_env(cfg, i))
    if len(cfg.cohort.agent_env) > cfg.cohort.num_agents:
        raise MdpoError(
            f"cohort.agent_env has {len(cfg.cohort.agent_env)} entries for {cfg.cohort.num_agents} agents"
        )
    if cfg.ppo.base_loss not in POLICY_LOSSES:
        raise MdpoError(f"unknown ppo.base_loss {cfg.ppo.base_loss!r}; choose from {', '.join(POLICY_LOSSES)}")
    if cfg.cohort.distill not in DISTILL_LOSSES:
        raise MdpoError(f"unknown cohort.distill {cfg.cohort.distill!r}; choose from {', '.join(DISTILL_LOSSES)}")
    if cfg.device not in ("auto", "cpu", "cuda") and not cfg.device.startswith("cuda:"):
        raise MdpoError(f"bad device {cfg.device!r}; choose auto, cpu or cuda")
    positive = {
        "env.num_envs": cfg.env.num_envs, "ppo.num_steps": cfg.ppo.num_steps, "ppo.epochs": cfg.ppo.epochs,
        "ppo.num_minibatches": cfg.ppo.num_minibatches, "total_steps": cfg.total_steps,
        "cohort.num_agents": cfg.cohort.num_agents, "checkpoint_every": cfg.checkpoint_every,
        "eval.episodes": cfg.eval.episodes, "eval.final_episodes": cfg.eval.final_episodes,
        "net.width": cfg.net.width, "net.hidden": cfg.net.hidden, "eval.bound_frames": cfg.eval.bound_frames,
    }
    for key, value in positive.items():
        if value < 1:
            raise MdpoError(f"{key} must be at least 1, got {value}")
    batch = cfg.env.num_envs * cfg.ppo.num_steps
    if batch % cfg.ppo.num_minibatches:
        raise MdpoError(f"env.num_envs * ppo.num_steps = {batch} is not divisible by "
                        f"ppo.num_minibatches = {cfg.ppo.num_minibatches}")
    if not 0.0 <= cfg.ppo.gamma <= 1.0 or not 0.0 <= cfg.ppo.gae_lambda <= 1.0:
        raise MdpoError("ppo.gamma and ppo.gae_lambda must lie in [0, 1]")
    if cfg.ppo.lr <= 0:
        raise MdpoError(f"ppo.lr must be positive, got {cfg.ppo.lr}")
    if cfg.cohort.alpha < 0 or cfg.drac.coef < 0:
        raise MdpoError("cohort.alpha and drac.coef must be >= 0")
    choices = {"cohort.peer_target": (cfg.cohort.peer_target, PEER_TARGETS),
               "cohort.level_split": (cfg.cohort.level_split, LEVEL_SPLITS),
               "perf.amp": (cfg.perf.amp, AMP_MODES),
               "drac.augment": (cfg.drac.augment, tuple(AUGMENTATIONS))}
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise MdpoError(f"unknown {key} {value!r}; choose from {', '.join(allowed)}")
    if cfg.perf.micro_batch < 0:
        raise MdpoError(f"perf.micro_batch must be >= 0, got {cfg.perf.micro_batch}")
    if cfg.cohort.temperature <= 0 or cfg.cohort.teacher_every < 1 or cfg.cohort.alpha_warmup < 0:
        raise MdpoError("cohort.temperature must be > 0, cohort.teacher_every >= 1, cohort.alpha_warmup >= 0")
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


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a saved config; unknown or ill-typed fields are a one-line error."""
    cfg = Config()
    for key, value in _flatten(data).items():
        set_field(cfg, key, value)
    return cfg


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key in {f.name for f in fields(Config)}:
            out.update(_flatten(value, f"{key}."))
        else:
            out[prefix + key] = value
    return out


def dumps(cfg: Config) -> str:
    return json.dumps(to_dict(cfg), indent=2)
