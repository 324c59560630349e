"""The training loop, as Stable-Baselines3's ``learn``: a ``Trainer`` advanced an update at a time, with
evaluation, checkpoints, logging and progress on schedule, and a clean stop on SIGINT/SIGTERM;
``train`` starts a run (``mdpo.resume.resume`` continues one)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from tqdm import tqdm

from mdpo.config import Config
from mdpo.console import describe, eta, postfix
from mdpo.envs import split_warning
from mdpo.logger import Logger
from mdpo.memory import checked_device
from mdpo.runs import EVAL, kept_checkpoint, run_dir_for, run_lock, start_run_dir, write_json
from mdpo.runtime import ThreadShare, bf16_warning, configure_process, on_stop_signals
from mdpo.tracking import WandbTracker
from mdpo.trainer import Trainer


class Interrupted(KeyboardInterrupt):
    """A second SIGINT/SIGTERM (or the first one outside the update loop); the message says what is kept."""


class StopRequest:
    """SIGINT/SIGTERM during training: the first asks to stop after the current update (``signal``
    names it); a second one, or one outside the update loop, interrupts at once."""

    def __init__(self):
        self.signal: str | None = None
        self.training = False  # inside the update loop, where the first signal finishes the update

    def handler(self, signum, frame) -> None:
        if self.signal or not self.training:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        tqdm.write(f"{self.signal}: finishing this update, then writing a checkpoint")


def learn(t: Trainer, progress: bool = True, verbose: bool = False) -> Path:
    """Train to ``total_steps``, checkpointing and evaluating on schedule; returns the run folder.
    ``progress`` shows a progress bar; ``verbose`` prints what the run is about to do and an ETA.

    The first SIGINT/SIGTERM finishes the current update, writes a checkpoint and returns; a
    second one (or the first during the final evaluation) raises ``Interrupted`` at once.
    """
    cfg = t.cfg
    say = tqdm.write if verbose else lambda line: None
    for line in describe(t):
        say(line)
    tracker = WandbTracker(cfg, t.run_dir) if cfg.track else None
    logger = Logger(t.run_dir, resume_step=t.global_step if t.update_idx else None, tracker=tracker)
    if tracker and tracker.offline:
        say(f"W&B: no login, recording offline in {t.run_dir / 'wandb'} (upload with `wandb sync`)")
    bar = tqdm(total=t.num_updates * t.batch_steps, initial=t.global_step, unit="step", unit_scale=True,
               disable=not progress, dynamic_ncols=True)
    first = t.update_idx
    stop = StopRequest()
    threads = None if cfg.torch_threads or t.device.type != "cpu" else ThreadShare()
    try:
        with on_stop_signals(stop.handler):
            stop.training = True
            while t.update_idx < t.num_updates and not stop.signal:
                start = time.perf_counter()
                if threads:
                    threads.adjust()
                metrics = t.update()
                last = t.update_idx == t.num_updates
                if cfg.eval.every and t.update_idx % cfg.eval.every == 0 and not last:
                    metrics.update(t.evaluate(cfg.eval.episodes, progress)[0])
                logger.log(t.global_step, metrics)
                bar.update(t.batch_steps)
                bar.set_postfix(postfix(metrics), refresh=False)
                if t.update_idx == first + 1 and not last:
                    say(eta(t, time.perf_counter() - start))
                if last or stop.signal or t.update_idx % cfg.checkpoint_every == 0:
                    t.save()
            stop.training = False
            if t.update_idx >= t.num_updates and not stop.signal:
                bar.set_postfix(postfix(final_evaluation(t, logger, progress)), refresh=True)
    except KeyboardInterrupt:
        kept = kept_checkpoint(t.saved_update)
        if t.saved_update is not None:
            kept += f"; continue with `mdpo train --resume {t.run_dir}`"
        raise Interrupted(f"interrupted at update {t.update_idx}: {kept}") from None
    finally:
        bar.close()
        logger.close()
        t.close()
    return t.run_dir


def final_evaluation(t: Trainer, logger: Logger, progress: bool) -> dict[str, float]:
    """``eval.final_episodes`` per split into eval.json (and the log); returns the summary."""
    cfg = t.cfg
    summary, results = t.evaluate(cfg.eval.final_episodes, progress)
    logger.log(t.global_step, summary)
    write_json(t.run_dir / EVAL, {
        "global_step": t.global_step, "update": t.update_idx, "episodes": cfg.eval.final_episodes,
        "greedy": cfg.eval.greedy, "summary": summary, "agents": results,
    })
    return summary


def train(cfg: Config, progress: bool = True, verbose: bool = False) -> Path:
    """Start a new run from a resolved config; returns its run folder."""
    device = checked_device(cfg)  # fail before a run folder exists
    for warning in (split_warning(cfg.env), bf16_warning(cfg.perf.amp, device)):
        if warning:
            tqdm.write(f"warning: {warning}", file=sys.stderr)
    run_dir = run_dir_for(cfg)
    with run_lock(run_dir):
        start_run_dir(run_dir, cfg)
        configure_process(cfg, device)
        return learn(Trainer(cfg, run_dir), progress, verbose)
