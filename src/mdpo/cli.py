"""The ``mdpo`` command. Every config field is a flag (``--ppo.lr 3e-4``, ``--env.game coinrun``);
``--preset`` and ``--algo`` pick the starting point. Errors in user input print one line."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from mdpo.config import field_docs
from mdpo.console import print_eval, report_run
from mdpo.errors import MdpoError
from mdpo.flags import FlagParser, add_config_arguments, config_from_args, given_fields, unrecognized
from mdpo.resume import RESUMABLE, RunFinished, resume
from mdpo.train import train

# Subcommands that live in their own modules; each module has register(subparsers).
COMMAND_MODULES: tuple[str, ...] = (
    "bench", "analysis.robustness", "analysis.tsne", "analysis.ablate", "analysis.report", "sweep", "demo",
)


def cmd_train(args: argparse.Namespace) -> None:
    if args.resume:
        try:
            run_dir = resume(args.resume, given_fields(args), progress=not args.quiet, verbose=True)
        except RunFinished as done:
            print(done)
            return
    else:
        run_dir = train(config_from_args(args), progress=not args.quiet, verbose=True)
    report_run(run_dir)


def cmd_eval(args: argparse.Namespace) -> None:
    from mdpo.evaluate import evaluate_checkpoint
    from mdpo.runs import load_agents, require_colour_frames, write_json
    from mdpo.runtime import resolve_device

    if args.episodes is not None and args.episodes < 1:
        raise MdpoError(f"--episodes must be at least 1, got {args.episodes}")
    device = resolve_device(args.device)
    if args.gif:
        require_colour_frames(args.run_dir, "--gif")
    record = evaluate_checkpoint(args.run_dir, args.episodes, device, args.greedy, "evaluating")
    out = Path(args.out) if args.out else Path(args.run_dir) / "reeval.json"
    write_json(out, record)
    print_eval(record["agents"])
    print("  ".join(f"{k}={v:.3f}" for k, v in record["summary"].items() if "/agent" not in k))
    print(f"written: {out}")
    if args.gif:
        from mdpo.analysis.gif import write_gifs

        cfg, agents, _ = load_agents(args.run_dir, device)
        for path in write_gifs(agents, cfg, args.gif, Path(args.run_dir), device, args.greedy):
            print(f"written: {path}")


def cmd_flags(args: argparse.Namespace) -> None:
    """Every config field with its default and doc, as a Markdown table (the README's reference)."""
    print("| flag | default | meaning |\n|---|---|---|")
    for key, (_, doc, default) in field_docs().items():
        print(f"| `--{key}` | `{default!r}` | {doc} |")


def _leaf_parsers(parser: argparse.ArgumentParser):
    """Every parser that runs a command, below ``parser``."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):
            yield from _leaf_parsers(child)


def build_parser() -> argparse.ArgumentParser:
    parser = FlagParser(prog="mdpo", description="Mutual distillation policy optimisation.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=FlagParser)

    p = sub.add_parser("train", help="train PPO / MDPO (a cohort of agents)")
    add_config_arguments(p)
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its checkpoint; flags given with it may change only "
                        f"{', '.join(RESUMABLE)} (saved in config.json, listed in resumes.jsonl), any other "
                        "is an error")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="re-evaluate a run's checkpoint on training and test levels")
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, help="episodes per split (default: the run's eval.final_episodes)")
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
    for leaf in _leaf_parsers(parser):
        leaf.set_defaults(parser_=leaf)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args, extras = build_parser().parse_known_args(argv)
        args.argv_ = argv  # the command line as given (bench --side-by-side passes it on)
        if extras:
            raise MdpoError(unrecognized(getattr(args, "parser_", None) or build_parser(), extras))
        args.func(args)
    except MdpoError as exc:
        print(f"mdpo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"mdpo: {exc or 'interrupted'}", file=sys.stderr)
        return 130
    except OSError as exc:  # e.g. a full disk where mdpo did not expect a write to fail
        print(f"mdpo: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
