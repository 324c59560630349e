"""``mdpo sweep``: a grid of trials on Ray (a local one, or a cluster by address), each trial an
ordinary run folder under one sweep folder.

    SWEEP_DIR/NAME/     one mdpo run folder per grid point (mdpo.runs), NAME from the grid point
    SWEEP_DIR/report/   ``mdpo report`` over all trials, written when the last one has finished
    SWEEP_DIR/.tune/    Ray Tune's bookkeeping (error tracebacks of failed trials); not needed to resume

Resuming lives in the run folders, not in Ray: a trial whose folder holds eval.json is done, one
with checkpoint.pt continues from it, any other starts afresh (``mdpo.sweep_trial``). Ray retrying
a trial that died and a re-run of the whole sweep after an interruption both go through that one
rule, so neither repeats finished work. Ray itself is imported only when trials must run.

On a cluster (``--address``), trials run on any node and write their run folders themselves: every
node needs mdpo installed and the sweep folder at the same path on shared storage (NFS or alike),
and the command runs on a node of the cluster, usually the head.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mdpo.config import field_docs, get_field
from mdpo.errors import MdpoError
from mdpo.flags import add_config_arguments
from mdpo.runs import CONFIG, load_config
from mdpo.sweep_spec import Spec, Trial, build_spec, expand, merge, parse_grid_flag, read_spec_file
from mdpo.sweep_trial import trial_state

INSTALL_HINT = 'mdpo sweep needs Ray Tune: pip install -e ".[sweep]" (or pip install "ray[tune]")'


def check_folders(trials: list[Trial]) -> None:
    """A trial folder from an earlier run of the sweep must hold the config this spec gives it."""
    keys = list(field_docs())
    for trial in trials:
        if not (trial.run_dir / CONFIG).exists():
            continue
        saved = load_config(trial.run_dir)
        changed = [key for key in keys if get_field(saved, key) != get_field(trial.config, key)]
        if changed:
            raise MdpoError(f"{trial.run_dir} holds a run with a different {', '.join(changed[:3])}; "
                            "re-run the spec it started from, or give this sweep another --out_dir")


def write_sweep_report(spec: Spec, trials: list[Trial]) -> Path:
    """``mdpo report`` over the trials that have finished, into SWEEP_DIR/report."""
    from mdpo.analysis.report import write_report

    finished = [t.run_dir for t in trials if trial_state(t.run_dir) == "done"]
    if not finished:
        raise MdpoError(f"no trial in {spec.out_dir} has finished yet; nothing to report")
    return write_report(finished, spec.out_dir / "report")


def sweep(spec: Spec, address: str | None = None, num_cpus: int | None = None,
          num_gpus: int | None = None) -> Path:
    """Run every unfinished trial of the spec, then write the report; returns the report's path."""
    trials = expand(spec)
    check_folders(trials)
    todo = [t for t in trials if trial_state(t.run_dir) != "done"]
    for trial in trials:
        if trial not in todo:
            print(f"[sweep] {trial.name}: done (earlier)")
    failed: list[str] = []
    if todo:
        failed = load_engine().run_trials(todo, spec, len(trials), address, num_cpus, num_gpus)
    if failed:
        raise MdpoError(f"{len(failed)} trial(s) failed: {', '.join(failed)} (tracebacks under "
                        f"{spec.out_dir / '.tune'}); run the same command again to retry them")
    unfinished = [t.name for t in trials if trial_state(t.run_dir) != "done"]
    if unfinished:
        raise MdpoError(f"the sweep stopped with {len(unfinished)} trial(s) unfinished; "
                        "run the same command again to continue them from their checkpoints")
    report = write_sweep_report(spec, trials)
    print(f"[sweep] all {len(trials)} trials done in {spec.out_dir}; report: {report}")
    return report


def load_engine():
    """The Ray Tune engine (mdpo.sweep_tune), or a one-line error saying how to install Ray."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray never phones home
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's classic reporter is silent at verbose=0
    try:
        import ray.tune  # noqa: F401  (the [tune] extra brings pandas and pyarrow too)
    except ImportError:
        raise MdpoError(INSTALL_HINT) from None
    from mdpo import sweep_tune

    return sweep_tune


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="a grid of runs on Ray: locally, or on a cluster with --address",
                       description="Run a grid of trials on Ray; running the same command again resumes it.")
    p.add_argument("spec", nargs="?", help="sweep spec YAML (see examples/sweep-smoke.yaml); flags override it")
    p.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2",
                   help="a grid axis, e.g. --grid env.game=coinrun,bigfish (repeatable)")
    p.add_argument("--cpus-per-trial", type=float, help="CPUs each trial reserves (default 1)")
    p.add_argument("--gpus-per-trial", type=float,
                   help="GPUs each trial reserves, fractions share one (default: an equal share of the GPUs, if any, "
                        "among the trials that run at once; 0 keeps trials on the CPU)")
    p.add_argument("--max-failures", type=int, help="retries of a trial that dies, from its checkpoint (default 2)")
    p.add_argument("--address", help="join a running Ray cluster: auto or HOST:PORT (default: start a local Ray)")
    p.add_argument("--num-cpus", type=int, help="local Ray only: CPUs it may use (default: all of this machine)")
    p.add_argument("--num-gpus", type=int, help="local Ray only: GPUs it may use (default: all of this machine)")
    p.add_argument("--report-only", action="store_true", help="only (re)write the report of the finished trials")
    add_config_arguments(p, skip=("run_name",))  # trials are named after their grid point
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    fields = field_docs()
    overrides = {k: v for k, v in vars(args).items() if "." in k or k in fields}
    flags = {
        "grid": dict(parse_grid_flag(text) for text in args.grid),
        "overrides": {k: v for k, v in overrides.items() if k != "out_dir"},
        "resources": {k: v for k, v in (("cpu", args.cpus_per_trial), ("gpu", args.gpus_per_trial)) if v is not None},
        "max_failures": args.max_failures,
        "out_dir": overrides.get("out_dir"),
    }
    data = read_spec_file(args.spec) if args.spec else {}
    spec = build_spec(merge(data, flags), Path("sweeps") / (Path(args.spec).stem if args.spec else "sweep"))
    if args.report_only:
        print(f"report: {write_sweep_report(spec, expand(spec))}")
    else:
        sweep(spec, args.address, args.num_cpus, args.num_gpus)
