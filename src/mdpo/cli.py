"""The ``mdpo`` command. Every config field is a flag (``--ppo.lr 3e-4``, ``--env.game coinrun``);
``--preset`` and ``--algo`` pick the starting point. Errors in user input print one line."""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import sys
from pathlib import Path

from mdpo.config import Config, field_docs, get_field
from mdpo.errors import MdpoError
from mdpo.presets import ALGOS, PRESETS
from mdpo.resolve import resolve
from mdpo.resume import RESUMABLE, RunFinished, resume
from mdpo.train import train

# Subcommands that live in their own modules; each module has register(subparsers).
COMMAND_MODULES: tuple[str, ...] = (
    "bench", "analysis.robustness", "analysis.tsne", "analysis.ablate", "analysis.report", "sweep", "demo",
)
DEFAULT_PRESET = "paper"


class _Parser(argparse.ArgumentParser):
    """One ``mdpo: error:`` line for bad arguments, and ``--help`` that shows the defaults of the
    ``--preset``/``--algo`` given on the same command line."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # --ppo.l must not silently mean --ppo.lr
        super().__init__(*args, **kwargs)
        self.given: list[str] = []

    def parse_known_args(self, args=None, namespace=None):
        self.given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        command = self.prog.removeprefix("mdpo").strip()
        raise MdpoError(f"{command}: {message}" if command else message)

    def format_help(self) -> str:
        defaults = _help_defaults(self.given)
        for action in self._actions:
            key, doc = getattr(action, "config_key", None), getattr(action, "config_doc", "")
            if key:
                action.help = f"{doc} (default: {get_field(defaults, key)!r})"
        return super().format_help()


def _flag_value(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _help_defaults(argv: list[str]) -> Config:
    """The config that ``--preset``/``--algo`` in ``argv`` start from (the default preset's if
    they are missing or wrong: the error comes when the command runs)."""
    try:
        return resolve(_flag_value(argv, "--preset") or DEFAULT_PRESET, _flag_value(argv, "--algo"))
    except MdpoError:
        return resolve(DEFAULT_PRESET)


def add_config_arguments(parser: argparse.ArgumentParser, skip: tuple[str, ...] = (),
                         defaults_from: str | None = None) -> None:
    """One flag per config field, e.g. ``--ppo.lr``; only flags given on the command line apply.

    ``skip`` leaves out fields (or ``section.`` prefixes) the command does not honour;
    ``defaults_from`` names where the defaults come from when it is not a preset (help text).
    """
    def config_flag(container, *flags: str, key: str, doc: str, **kwargs) -> None:
        action = container.add_argument(*flags, dest=key, default=argparse.SUPPRESS, **kwargs)
        action.config_key, action.config_doc = key, doc
        if defaults_from:
            action.config_key = None
            action.help = f"{doc} (default: {defaults_from})"

    if "preset" not in skip:
        config_flag(parser, "--preset", key="preset", metavar="PRESET",
                    doc=f"starting point: {', '.join(PRESETS)}")
    if "algo" not in skip:
        config_flag(parser, "--algo", key="algo", metavar="ALGO",
                    doc=f"algorithm: {', '.join(ALGOS)} (sets num_agents, alpha, base_loss, drac)")
    if "env.game" not in skip:
        config_flag(parser, "--game", key="env.game", metavar="GAME", doc="shortcut for --env.game")
    group = parser.add_argument_group("config fields (see `mdpo flags`)")
    for key, (typ, doc, _) in field_docs().items():
        if key in ("preset", "algo") or key in skip or key.startswith(tuple(s for s in skip if s.endswith("."))):
            continue
        flags = [f"--{key}"] + ([f"--{key.replace('_', '-')}"] if "_" in key else [])
        extra = {"nargs": "?", "const": "true"} if typ is bool else {}  # `--ppo.anneal_lr` alone means true
        config_flag(group, *flags, key=key, doc=doc, metavar=typ.__name__.upper(), **extra)


def given_fields(args: argparse.Namespace) -> dict:
    """The config fields given on the command line (preset and algo included)."""
    return {k: v for k, v in vars(args).items() if "." in k or k in field_docs()}


def config_from_args(args: argparse.Namespace, default_preset: str = DEFAULT_PRESET) -> Config:
    given = given_fields(args)
    preset, algo = given.pop("preset", default_preset), given.pop("algo", None)
    return resolve(preset, algo, given)


def unrecognized(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    """A one-line error for unknown arguments, suggesting the nearest real flag of ``parser``."""
    options = [action.option_strings[0] for action in parser._actions if action.option_strings]
    flags = [arg.split("=", 1)[0] for arg in extras if arg.startswith("--")]
    parts = []
    for flag in flags:
        bare = flag[2:].replace("-", "_")
        nearest = [o for o in options if o.rsplit(".", 1)[-1].lstrip("-") == bare]
        nearest = nearest or difflib.get_close_matches(flag, options, n=2, cutoff=0.7)
        parts.append(flag + (f" (did you mean {' or '.join(nearest[:2])}?)" if nearest else ""))
    command = parser.prog.removeprefix("mdpo").strip()
    what = f"argument{'s' if len(parts) > 1 else ''} {', '.join(parts)}" if parts else f"arguments {' '.join(extras)}"
    return f"{command + ': ' if command else ''}unrecognized {what}"


def _print_eval(results: list[dict]) -> None:
    print(f"{'agent':>6} {'split':>6} {'episodes':>9} {'mean return':>12}")
    for i, agent in enumerate(results):
        for split, r in agent.items():
            mean = sum(r["returns"]) / len(r["returns"])
            print(f"{i:>6} {split:>6} {len(r['returns']):>9} {mean:>12.3f}")


def cmd_train(args: argparse.Namespace) -> None:
    if args.resume:
        try:
            run_dir = resume(args.resume, given_fields(args), progress=not args.quiet, verbose=True)
        except RunFinished as done:
            print(done)
            return
    else:
        run_dir = train(config_from_args(args), progress=not args.quiet, verbose=True)
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
    from mdpo.runs import load_agents, require_colour_frames, write_json
    from mdpo.runtime import resolve_device

    if args.episodes is not None and args.episodes < 1:
        raise MdpoError(f"--episodes must be at least 1, got {args.episodes}")
    device = resolve_device(args.device)
    cfg, agents, state = load_agents(args.run_dir, device)
    if args.gif:
        require_colour_frames(args.run_dir, "--gif")
    episodes = args.episodes or cfg.eval.final_episodes
    results = evaluate_cohort(agents, cfg, episodes, ("rerun", state["update"]), device, args.greedy, "evaluating")
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


def _leaf_parsers(parser: argparse.ArgumentParser):
    """Every parser that runs a command, below ``parser``."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):
            yield from _leaf_parsers(child)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mdpo", description="Mutual distillation policy optimisation.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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
        args, extras = build_parser().parse_known_args(argv)
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
