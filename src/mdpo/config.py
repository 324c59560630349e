"""Typed run configuration: sections of fields with one-line docs, and how a field is read, set
and saved. How a run's config is put together and checked is ``mdpo.resolve``."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
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
    game: str = _f("bigfish", "Procgen game (one of the 16), 'coins' (the toy of paper section 4.1), a Gymnasium "
                              "id (CartPole-v1, MinAtar/Breakout-v1, MiniGrid-DoorKey-8x8-v0) or an envpool task "
                              "(Pong-v5)")
    family: str = _f("auto", "where env.game comes from: auto, procgen, coins, gymnasium or envpool (auto: in that "
                             "order, the first that knows the game)")
    mode: str = _f("hard", "Procgen distribution mode: easy or hard")
    num_envs: int = _f(64, "parallel environments per agent")
    num_levels: int = _f(500, "training levels (0 = the full level distribution); for Gymnasium envs, the reset "
                              "seeds of training episodes, test episodes use other seeds")
    start_level: int = _f(0, "first training level (or reset seed)")
    num_threads: int = _f(0, "envpool worker threads per agent (0 = min(num_envs, cores))")
    agreement: float = _f(1.0, "coins only: probability that background colour agrees with coin side")
    vectorization: str = _f("sync", "Gymnasium only: sync (one process) or async (a process per env)")
    kwargs: dict = _f({}, "keyword arguments for the env's constructor (Gymnasium's make, envpool's make), e.g. "
                          "sticky_action_prob=0.0,max_episode_steps=1000 or {sticky_action_prob: 0.0}")
    packages: list = _f([], "modules to import before env.game is looked up (packages that register Gymnasium "
                            "ids when imported), e.g. my_envs or my_envs,other_envs")


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
    encoder: str = _f("auto", "observation encoder: auto (by the observation's shape), impala, nature, grid, pooled "
                              "or mlp (see mdpo.nets.ENCODERS)")
    width: int = _f(1, "encoder channel (or unit) multiplier (2 for the scaled-up ablation)")
    hidden: int = _f(256, "features after the encoder (the mlp's units, and the heads' tanh layers)")
    head_layers: int = _f(0, "tanh layers of net.hidden units in each of the actor and critic heads (0 = linear heads)")
    init: str = _f("cleanrl", "weight init: cleanrl (orthogonal heads, actor std 0.01), lecun (Haiku's and Flax's "
                              "default, as in JAX codes such as Pgx) or glorot (TensorFlow 1's encoder, as in "
                              "openai/baselines; see mdpo.nets.INITS)")
    encoder_from: str = _f("", "run folder whose trained encoder initialises every agent (ablations)")
    encoder_agent: int = _f(0, "which agent of encoder_from supplies the encoder")
    freeze_encoder: bool = _f(False, "keep the encoder fixed; train only the actor and critic heads")


@dataclass
class CohortConfig:
    num_agents: int = _f(1, "agents trained together (1 = plain PPO/SPO, >=2 = mutual distillation)")
    distill: str = _f("kl", "distillation loss between peers (see mdpo.distill.DISTILL_LOSSES)")
    alpha: float = _f(1.0, "weight of the distillation term")
    detach_peer: bool = _f(False, "stop gradients through the peer (classic DML); the paper does not")
    reduce: str = _f("mean", "how the agents' losses add up: mean (the authors': each agent's gradient is 1/K of "
                             "its loss's, so the per-agent clip at ppo.max_grad_norm binds as a K-times larger "
                             "one would in PPO) or sum (each agent's gradient is its loss's, as in PPO)")
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
    micro_batch: int = _f(128, "frames per agent per chunk of a minibatch: gradients accumulate over chunks, so the "
                               "update's peak memory scales with it (0 = the whole minibatch at once, the default "
                               "on CUDA)")
    cpu_heap: bool = _f(True, "CPU: keep freed activations in malloc's heap instead of unmapping them (glibc), "
                              "so each minibatch does not page-fault its memory in again")
    batched_inference: bool = _f(True, "collection, advantages and evaluation run the K agents as one grouped "
                                       "forward pass")


@dataclass
class WandbConfig:
    project: str = _f("mdpo", "Weights & Biases project (with --track)")
    entity: str = _f("", "Weights & Biases team or user (default: your default entity)")


@dataclass
class Config:
    algo: str = _f("ppo", "algorithm: ppo, mdpo, spo, mdspo or drac (each sets num_agents, alpha, base_loss, drac)")
    preset: str = _f("paper", "the preset this config started from")
    seed: int = _f(1, "seed for networks, sampling and environments")
    total_steps: int = _f(50_000_000, "environment steps per agent")
    device: str = _f("auto", "auto, cpu or cuda")
    out_dir: str = _f("runs", "folder that holds run folders")
    run_name: str = _f("", "run folder name (default: game-algo-seed-time)")
    checkpoint_every: int = _f(25, "checkpoint every this many updates (and at the end, and on SIGINT/SIGTERM)")
    torch_threads: int = _f(0, "CPU threads for torch (0 = before each update, the cores other processes "
                                  "left free, at most torch's default)")
    track: bool = _f(False, "mirror metrics to Weights & Biases (pip install -e '.[wandb]'; offline without a login)")
    env: EnvConfig = field(default_factory=EnvConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    net: NetConfig = field(default_factory=NetConfig)
    cohort: CohortConfig = field(default_factory=CohortConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    drac: DracConfig = field(default_factory=DracConfig)
    perf: PerfConfig = field(default_factory=PerfConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)


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


TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
              list: "a list (a,b or [a, b])", dict: "a mapping (a=1,b=x or {a: 1, b: x})"}


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
            if not math.isfinite(value) or value != int(value):
                raise ValueError(text)
            return int(value)
        if typ is float:
            return float(text)
        if typ is list:
            value = yaml.safe_load(text)
            return value if isinstance(value, list) else [item.strip() for item in text.split(",") if item.strip()]
        if typ is dict:
            value = yaml.safe_load(text)
            return value if isinstance(value, dict) else _parse_pairs(text)
        return text
    except (ValueError, yaml.YAMLError):
        raise MdpoError(f"bad value for {key}: {text!r} is not {TYPE_NAMES[typ]}") from None


def _parse_pairs(text: str) -> dict[str, Any]:
    """'a=1,b=false' -> {'a': 1, 'b': False}: each value a YAML scalar, so it is typed; '' -> {}."""
    pairs = [item.split("=", 1) for item in text.split(",")] if text.strip() else []
    if any(len(pair) != 2 or not pair[0].strip() for pair in pairs):
        raise ValueError(text)
    return {key.strip(): yaml.safe_load(value) for key, value in pairs}


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
    elif typ is int and isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise MdpoError(f"bad value for {key}: {value!r} is not {TYPE_NAMES[typ]}")
    if typ is float and not math.isfinite(value):
        raise MdpoError(f"bad value for {key}: {value!r} is not a finite number")
    *path, name = key.split(".")
    target = cfg
    for part in path:
        target = getattr(target, part)
    setattr(target, name, value)


def get_field(cfg: Config, key: str) -> Any:
    """The value of ``section.name`` in a config."""
    return functools.reduce(getattr, key.split("."), cfg)


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a saved config; unknown or ill-typed fields are a one-line error."""
    if not isinstance(data, dict):
        raise MdpoError(f"a config must be a mapping of fields, got {type(data).__name__}")
    cfg = Config()
    for key, value in flatten(data).items():
        set_field(cfg, key, value)
    return cfg


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{'env': {'game': g}, 'seed': 1}`` -> ``{'env.game': g, 'seed': 1}``; keys already dotted stay."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not prefix and isinstance(value, dict) and key in {f.name for f in fields(Config)}:
            out.update(flatten(value, f"{key}."))
        else:
            out[prefix + key] = value
    return out


def dumps(cfg: Config) -> str:
    return json.dumps(to_dict(cfg), indent=2)
