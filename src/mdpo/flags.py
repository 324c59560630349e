"""Config fields as command-line flags, for every command that takes a config: one flag per field
(``--ppo.lr 3e-4``), ``--preset``/``--algo`` as the starting point, one-line errors, and ``--help``
that shows the defaults of the preset and algorithm on the same command line."""

from __future__ import annotations

import argparse
import difflib
import sys

from mdpo.config import Config, field_docs, get_field
from mdpo.errors import MdpoError
from mdpo.presets import ALGOS, DEFAULT_PRESET, PRESETS
from mdpo.resolve import resolve


class FlagParser(argparse.ArgumentParser):
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


def config_from_args(args: argparse.Namespace) -> Config:
    given = given_fields(args)
    preset, algo = given.pop("preset", DEFAULT_PRESET), given.pop("algo", None)
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
