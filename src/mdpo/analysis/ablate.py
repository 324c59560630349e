"""``mdpo ablate frozen-encoder --from RUN_DIR`` (paper section 5.4, Figure 5): the trained encoder
of one agent of RUN_DIR, frozen, under fresh actor and critic heads trained with plain PPO. Every
other setting is RUN_DIR's (that agent's environment, seed, steps, hyperparameters). The result is
an ordinary run folder, labelled ``frozen-<source algo>`` so that reports compare the sources."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mdpo.config import Config, from_dict, set_field, to_dict
from mdpo.console import report_run
from mdpo.errors import MdpoError
from mdpo.flags import add_config_arguments, given_fields
from mdpo.presets import ALGOS
from mdpo.resolve import agent_env, overridden
from mdpo.runs import CHECKPOINT, load_config


def frozen_encoder_config(source: str | Path, agent: int = 0, overrides: dict[str, Any] | None = None) -> Config:
    source = Path(source).resolve()
    src = load_config(source)
    if not (source / CHECKPOINT).exists():
        raise MdpoError(f"no checkpoint in {source}: nothing to take the encoder from")
    if not 0 <= agent < src.cohort.num_agents:
        raise MdpoError(f"--agent {agent} but {source} has {src.cohort.num_agents} agent(s)")
    cfg = from_dict(to_dict(src))
    cfg.env = agent_env(src, agent)
    cfg.cohort.agent_env, cfg.cohort.level_split = [], "shared"
    for key, value in ALGOS["ppo"].items():
        set_field(cfg, key, value)
    cfg.algo = f"frozen-{src.algo}"
    cfg.net.encoder_from, cfg.net.encoder_agent, cfg.net.freeze_encoder = str(source), agent, True
    cfg.out_dir, cfg.run_name = str(source.parent), f"{source.name}-frozen{agent}"
    return overridden(cfg, overrides or {})


# Fields the ablation sets itself: it is PPO with --from's encoder, frozen.
SET_BY_ABLATION = ("preset", "algo", "cohort.", "net.encoder_from", "net.encoder_agent", "net.freeze_encoder")


def cmd_frozen_encoder(args: argparse.Namespace) -> None:
    from mdpo.train import train

    overrides = given_fields(args)
    cfg = frozen_encoder_config(args.source, args.agent, overrides)
    report_run(train(cfg, progress=not args.quiet, verbose=True))


def register(sub: argparse._SubParsersAction) -> None:
    ablate = sub.add_parser("ablate", help="ablations of trained runs (frozen-encoder: paper Figure 5)")
    kinds = ablate.add_subparsers(dest="ablation", required=True)
    p = kinds.add_parser("frozen-encoder", help="train fresh PPO heads on a run's frozen encoder")
    p.add_argument("--from", dest="source", required=True, metavar="RUN_DIR", help="the run whose encoder is frozen")
    p.add_argument("--agent", type=int, default=0, help="which agent supplies the encoder (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_arguments(p, skip=SET_BY_ABLATION, defaults_from="as in --from")
    p.set_defaults(func=cmd_frozen_encoder)
