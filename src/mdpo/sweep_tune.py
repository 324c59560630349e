"""Ray Tune, the engine under ``mdpo sweep``; imported only when trials must run.

Why Tune rather than bare ``ray.remote`` tasks: each thing a sweep needs is a Tune setting, where
tasks would leave it to us: per-trial CPU/GPU requests, fractional GPUs included
(``tune.with_resources``); trials queued until the cluster has room; a trial whose worker died
started again (``FailureConfig.max_failures``); and callbacks on every trial state change, which
print the progress. Tune's own checkpoints and experiment restore are not used: a trial's progress
lives in its mdpo run folder, which ``mdpo.sweep_trial.run_trial`` continues from.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import sys
from pathlib import Path

import ray
from ray import tune
from tqdm import tqdm

from mdpo.config import to_dict
from mdpo.errors import MdpoError
from mdpo.runtime import on_stop_signals
from mdpo.sweep_spec import Spec, Trial, gpu_share
from mdpo.sweep_trial import run_trial, trial_state


def run_trials(todo: list[Trial], spec: Spec, total: int, address: str | None,
               num_cpus: int | None, num_gpus: int | None) -> list[str]:
    """Run the unfinished trials ``todo`` (of ``total``); returns the names of those that failed for good."""
    gpu = start_ray(spec, address, num_cpus, num_gpus, len(todo))
    # Tune logs every trial failure with a traceback; Progress reports it in one line instead.
    logging.getLogger("ray.tune.execution.tune_controller").setLevel(logging.CRITICAL)
    progress = Progress(todo, total, spec.max_failures)
    try:
        configs = {t.name: to_dict(t.config) for t in todo}
        trainable = tune.with_resources(tune.with_parameters(trainable_trial, configs=configs),
                                        {"cpu": spec.cpu, "gpu": gpu})
        with on_stop_signals(as_sigint, (signal.SIGTERM,)):
            tune.Tuner(
                trainable,
                param_space={"trial": tune.grid_search(list(configs))},
                run_config=tune.RunConfig(
                    name=".tune", storage_path=str(spec.out_dir), verbose=0, callbacks=[progress],
                    failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                ),
            ).fit()
    finally:
        progress.close()
        ray.shutdown()
    return progress.failed


def as_sigint(signum, frame) -> None:
    """Tune ends a run cleanly on SIGINT (its trials stop, Ray shuts down); SIGTERM from a scheduler or
    `timeout` does the same instead of killing the driver, whose local Ray then dies with a crash report."""
    os.kill(os.getpid(), signal.SIGINT)


def trainable_trial(params: dict, configs: dict[str, dict]) -> None:
    tune.report({"started_from": run_trial(configs[params["trial"]])})


def start_ray(spec: Spec, address: str | None, num_cpus: int | None, num_gpus: int | None, trials: int) -> float:
    """Join the cluster at ``address``, or start a Ray on this machine sized by num_cpus/num_gpus;
    returns the GPU each trial reserves (the spec's, or a share of the GPUs there, said on stdout)."""
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}  # trials' errors come back through Tune
    if address:
        if num_cpus is not None or num_gpus is not None:
            raise MdpoError("--num-cpus/--num-gpus size a local Ray; a cluster brings its own resources")
        check_reachable(address)
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            hint = "; a cluster with token authentication also needs RAY_AUTH_MODE=token and its token"
            raise MdpoError(f"cannot join the Ray cluster at {address}: {str(exc).splitlines()[0]}{hint}") from None
    else:
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, **quiet)
    have = ray.cluster_resources()
    cpus, gpus = have.get("CPU", 0), have.get("GPU", 0)
    gpu = spec.gpu
    if gpu is None:
        gpu = gpu_share(gpus, cpus, spec.cpu, trials)
        if gpus:
            print(f"[sweep] {gpus:g} GPU(s): each trial reserves {gpu:g} of one (--gpus-per-trial to change, "
                  "0 to keep trials on the CPU)")
    if not address and (spec.cpu > cpus or gpu > gpus):
        ray.shutdown()
        raise MdpoError(f"each trial asks for {spec.cpu:g} CPU and {gpu:g} GPU, but this machine's Ray "
                        f"has {cpus:g} CPU and {gpus:g} GPU")
    return gpu


def check_reachable(address: str) -> None:
    """Fail fast on a HOST:PORT nobody answers at: Ray itself would keep retrying for many minutes."""
    host, _, port = address.split("://")[-1].rpartition(":")
    if not (host and port.isdigit()):
        return  # "auto": Ray finds the cluster started on this machine, or says there is none
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as exc:
        reason = exc.strerror or exc
        raise MdpoError(f"nothing answers at {address} ({reason}); is the Ray head running there?") from None


class Progress(tune.Callback):
    """One line per trial state change, and a bar of the trials done, running and failed."""

    def __init__(self, todo: list[Trial], total: int, max_failures: int):
        self.run_dirs = {t.name: t.run_dir for t in todo}
        self.max_failures = max_failures
        self.running = 0
        self.failed: list[str] = []
        self.bar = tqdm(total=total, initial=total - len(todo), unit="trial", dynamic_ncols=True)
        self.show()

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running += 1
        from_checkpoint = trial_state(self.run_dirs[trial.config["trial"]]) == "checkpoint"
        self.say(trial, "running from its checkpoint" if from_checkpoint else "running")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.running -= 1
        self.bar.update(1)
        self.say(trial, "done")

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.running -= 1
        self.say(trial, f"failed ({error_line(trial)}); retry {trial.num_failures}/{self.max_failures}")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.running -= 1
        self.failed.append(trial.config["trial"])
        self.say(trial, f"failed ({error_line(trial)}); no retries left, traceback in {trial.path}")

    def say(self, trial, state: str) -> None:
        tqdm.write(f"[sweep] {trial.config['trial']}: {state}", file=sys.stdout)
        self.show()

    def show(self) -> None:
        self.bar.set_postfix_str(f"running={self.running} failed={len(self.failed)}")

    def close(self) -> None:
        self.bar.close()


def error_line(trial) -> str:
    """The latest failure of a trial in one line: its ``SomeError: message`` line, else its first line."""
    path = Path(trial.error_file or "")
    latest = path.read_text().split("Failure # ")[-1] if path.is_file() else ""
    lines = [line.strip() for line in latest.splitlines()[1:] if line.strip()]  # [0]: "N (occurred at ...)"
    errors = [line for line in lines if re.match(r"[\w.]*(Error|Exception|Interrupt)\b", line)]
    return (errors[-1:] or lines[:1] or ["unknown error"])[0][:160]
