"""The ``mdpo`` command. Every config field is a flag (``--ppo.lr 3e-4``, ``--env.game coinrun``);
``--preset`` and ``--algo`` pick the starting point. Errors in user input print one line."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from mdpo.config import ALGOS, PRESETS, Config, field_docs, resolve
from mdpo.errors import MdpoError

# Subcommands that live in their own modules; each module has register(subparsers).
COMMAND_MODULES: tuple[str, ...] = (
    "bench", "analysis.robustness", "analysis.tsne", "analysis.ablate", "report", "sweep", "demo",
)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per config field, e.g. ``--ppo.lr``; only flags given on the command line apply."""
    parser.add_argument("--preset", default=argparse.SUPPRESS, help=f"starting point: {', '.join(PRESETS)}")
    parser.add_argument("--algo", default=argparse.SUPPRESS,
                        help=f"algorithm: {', '.join(ALGOS)} (sets num_agents, alpha, base_loss) or a label")
    parser.add_argument("--game", dest="env.game", default=argparse.SUPPRESS, help="shortcut for --env.game")
    group = parser.add_argument_group("config fields (see `mdpo flags`)")
    for key, (typ, doc, default) in field_docs().items():
        if key in ("preset", "algo"):
            continue
        flags = [f"--{key}"] + ([f"--{key.replace('_', '-')}"] if "_" in key else [])
        group.add_argument(*flags, dest=key, default=argparse.SUPPRESS, metavar=typ.__name__.upper(),
                           help=f"{doc} (default: {default!r})")


def config_from_args(args: argparse.Namespace, default_preset: str = "smoke") -> Config:
    given = {k: v for k, v in vars(args).items() if "." in k or k in field_docs()}
    given = {k: v for k, v in given.items() if k not in ("preset", "algo")}
    return resolve(getattr(args, "preset", default_preset), getattr(args, "algo", None), given)


def _print_eval(results: list[dict]) -> None:
    print(f"{'agent':>6} {'split':>6} {'episodes':>9} {'mean return':>12}")
    for i, agent in enumerate(results):
        for split, r in agent.items():
            mean = sum(r["returns"]) / len(r["returns"])
            print(f"{i:>6} {split:>6} {len(r['returns']):>9} {mean:>12.3f}")


def cmd_train(args: argparse.Namespace) -> None:
    from mdpo.train import resume, train

    if args.resume:
        given = {k: v for k, v in vars(args).items() if "." in k or k in field_docs()}
        run_dir = resume(args.resume, given, progress=not args.quiet)
    else:
        cfg = config_from_args(args)
        run_dir = train(cfg, progress=not args.quiet)
    _report_run(run_dir)


def _report_run(run_dir: Path) -> None:
    eval_path = Path(run_dir) / "eval.json"
    if eval_path.exists():
        data = json.loads(eval_path.read_text())
        _print_eval(data["agents"])
        summary = data["summary"]
        print("  ".join(f"{k}={v:.3f}" for k, v in summary.items() if "/agent" not in k))
    else:
        print("stopped before the end; continue with the command below")
    print(f"run folder: {run_dir}")
    print(f"resume: mdpo train --resume {run_dir}")


def cmd_eval(args: argparse.Namespace) -> None:
    from mdpo.evaluate import evaluate_cohort, summarize
    from mdpo.runs import load_agents, write_json
    from mdpo.runtime import resolve_device

    device = resolve_device(args.device)
    cfg, agents, state = load_agents(args.run_dir, device)
    episodes = args.episodes or cfg.eval.final_episodes
    results = evaluate_cohort(agents, cfg, episodes, ("rerun", state["update"]), device, args.greedy)
    summary = summarize(results, cfg.env)
    out = Path(args.out) if args.out else Path(args.run_dir) / "reeval.json"
    write_json(out, {"global_step": state["global_step"], "update": state["update"], "episodes": episodes,
                     "greedy": args.greedy, "summary": summary, "agents": results})
    _print_eval(results)
    print("  ".join(f"{k}={v:.3f}" for k, v in summary.items() if "/agent" not in k))
    print(f"written: {out}")
    if args.gif:
        from mdpo.analysis.gif import write_gifs

        for path in write_gifs(agents, cfg, args.gif, Path(args.run_dir), device, args.greedy):
            print(f"written: {path}")


def cmd_flags(args: argparse.Namespace) -> None:
    """Every config field with its default and doc, as a Markdown table (the README's reference)."""
    print("| flag | default | meaning |\n|---|---|---|")
    for key, (_, doc, default) in field_docs().items():
        print(f"| `--{key}` | `{default!r}` | {doc} |")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise MdpoError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mdpo", description="Mutual distillation policy optimisation.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train PPO / MDPO (a cohort of agents)")
    add_config_arguments(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="re-evaluate a run's checkpoint on training and test levels")
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=0, help="episodes per split (default: eval.final_episodes)")
    p.add_argument("--greedy", action="store_true", help="argmax actions instead of sampling")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="where to write the results (default: RUN_DIR/reeval.json)")
    p.add_argument("--gif", type=int, default=0, metavar="N",
                   help="also write RUN_DIR/episodes-agentI.gif: N held-out episodes per agent")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("flags", help="list every config field (Markdown)")
    p.set_defaults(func=cmd_flags)

    for name in COMMAND_MODULES:
        importlib.import_module(f"mdpo.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.func(args)
    except MdpoError as exc:
        print(f"mdpo: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
