"""The cohort trainer: K agents collect, compute advantages and update together.

K = 1 is plain PPO (or SPO); K >= 2 adds mutual distillation (see ``mdpo.update``). Each agent has
its own envs, reward normaliser and rollout slice; one Adam covers all agents' parameters.

An uninterrupted run keeps its environments for its whole life, as the authors' loop does.
envpool's env state cannot be saved, so a resumed run starts fresh envs, seeded from the run seed
and the update it resumes at: it equals an uninterrupted run that restarted its envs at that update
(``Trainer.start_envs``), bit for bit on CPU. The rollout before the restart bootstrapped from the
value of its last observation, as at any rollout end, so the learning targets stay correct.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from mdpo.analysis.frames import held_out_frames
from mdpo.analysis.perturb import random_conv
from mdpo.bound import bound_estimates
from mdpo.cohort import CohortPolicy
from mdpo.config import Config, to_dict
from mdpo.console import describe, eta, postfix
from mdpo.distill import DISTILL_REWARDS
from mdpo.envs import Monitor, make_env, split_warning, step_monitored
from mdpo.errors import MdpoError
from mdpo.evaluate import evaluate_cohort, summarize
from mdpo.logger import Logger
from mdpo.memory import checked_device
from mdpo.resolve import agent_env
from mdpo.rollout import Rollout, gae
from mdpo.runs import (
    EVAL,
    build_agents,
    load_agents,
    run_dir_for,
    run_lock,
    save_checkpoint,
    start_run_dir,
    write_json,
)
from mdpo.runtime import (
    autocast,
    configure_backends,
    configure_cpu_allocator,
    derive_seed,
    on_stop_signals,
    sample_actions,
    with_device_flags,
)
from mdpo.timing import PhaseTimer
from mdpo.tracking import WandbTracker
from mdpo.update import distill_rewards, update
from mdpo.update_metrics import check_finite, update_metrics


def num_updates(cfg: Config) -> int:
    """Updates of a run: ``total_steps`` per agent, rounded up to whole rollouts."""
    return math.ceil(cfg.total_steps / (cfg.env.num_envs * cfg.ppo.num_steps))


class Interrupted(KeyboardInterrupt):
    """A second SIGINT/SIGTERM (or the first one outside the update loop); the message says what is kept."""


class Trainer:
    """Everything a checkpoint holds, and the loop that advances it.

    ``progress`` shows a progress bar; ``verbose`` prints what the run is about to do and an ETA.
    """

    def __init__(self, cfg: Config, run_dir: Path, state: dict | None = None, progress: bool = True,
                 verbose: bool = False):
        self.cfg, self.run_dir, self.progress, self.verbose = cfg, Path(run_dir), progress, verbose
        self.device = checked_device(cfg)
        configure_backends(cfg.perf.tf32)
        if self.device.type == "cpu":
            configure_cpu_allocator(cfg.perf.cpu_heap)
        self.timer = PhaseTimer(self.device)
        if cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        k, n, t = cfg.cohort.num_agents, cfg.env.num_envs, cfg.ppo.num_steps
        self.batch_steps = n * t  # env steps per agent per update
        self.num_updates = num_updates(cfg)
        self.update_idx = state["update"] if state else 0
        self.global_step = state["global_step"] if state else 0
        self.saved_update = self.update_idx if state else None  # of the newest checkpoint on disk
        self.monitors = [Monitor(cfg.ppo.gamma, cfg.ppo.reward_clip, cfg.ppo.norm_reward, self.device)
                         for _ in range(k)]
        self.envs: list = []
        self.start_envs()
        first = self.envs[0]
        obs_shape, num_actions, self.obs_kind = first.obs_shape, first.num_actions, first.obs_kind
        if any(e.obs_shape != obs_shape or e.num_actions != num_actions for e in self.envs):
            raise MdpoError("all agents' environments must share observation shape and action count")
        if cfg.drac.coef and self.obs_kind != "rgb":
            raise MdpoError(f"DrAC augments colour frames; {cfg.env.game} has {self.obs_kind} observations")
        self.spec = {"obs_shape": list(obs_shape), "num_actions": num_actions, "obs_kind": self.obs_kind}
        self.agents = build_agents(cfg, self.spec, self.device)
        if cfg.net.encoder_from and not state:
            self.copy_encoder(cfg.net.encoder_from, cfg.net.encoder_agent)
        if cfg.net.freeze_encoder:
            for agent in self.agents:
                agent.encoder.requires_grad_(False)
        self.policy = CohortPolicy(self.agents, cfg.perf.batched_inference)  # refreshed before each use
        self.optimizer = torch.optim.Adam(self.agents.parameters(), lr=cfg.ppo.lr, eps=cfg.ppo.adam_eps,
                                          fused=self.device.type == "cuda")  # one kernel per step, no host syncs
        self.generator = torch.Generator(self.device).manual_seed(cfg.seed)
        self.rollout = Rollout.allocate(k, t, n, obs_shape, self.device, self.next_obs[0].dtype)
        self.stop_signal: str | None = None
        self.training = False  # inside the update loop, where the first signal finishes the update
        self.test_frames: torch.Tensor | None = None  # held-out frames for the bound's estimates
        self.teacher: int | None = None  # peer_target=best: the current teacher
        self.recent_returns = torch.zeros(k, 2, device=self.device)  # (sum, episodes) since the last pick
        if state:
            self.load_state_dict(state)

    # ---- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "config": to_dict(self.cfg),
            "update": self.update_idx,
            "global_step": self.global_step,
            "spec": self.spec,
            "agents": self.agents.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "monitors": [m.state_dict() for m in self.monitors],
            "generator": self.generator.get_state(),
            "teacher": self.teacher,
            "recent_returns": self.recent_returns,
        }

    def load_state_dict(self, state: dict) -> None:
        try:
            self.agents.load_state_dict(state["agents"])
            self.optimizer.load_state_dict(with_device_flags(state["optimizer"], self.optimizer))
        except (RuntimeError, ValueError, KeyError) as exc:
            raise MdpoError(f"checkpoint does not fit this config ({str(exc).splitlines()[0]})") from None
        for monitor, s in zip(self.monitors, state["monitors"]):
            monitor.load_state_dict(s)
        saved = state["generator"].cpu()
        if saved.numel() == self.generator.get_state().numel():
            self.generator.set_state(saved)
        else:  # saved by another kind of device (CPU vs CUDA): its stream cannot continue here
            self.generator.manual_seed(derive_seed(self.cfg.seed, "generator", self.update_idx))
        self.teacher = state["teacher"]
        self.recent_returns = state["recent_returns"].to(self.device)

    def copy_encoder(self, run_dir: str, source_agent: int) -> None:
        _, source, _ = load_agents(run_dir, self.device)
        if not 0 <= source_agent < len(source):
            raise MdpoError(f"net.encoder_agent={source_agent} but {run_dir} has {len(source)} agent(s)")
        try:
            for agent in self.agents:
                agent.encoder.load_state_dict(source[source_agent].encoder.state_dict())
        except RuntimeError:
            raise MdpoError(f"the encoder in {run_dir} does not fit this network (net.width/hidden differ)") from None

    def start_envs(self) -> None:
        """(Re)create every agent's envs, seeded from the run seed and the current update (so a
        resumed run can repeat them); episodes in progress are abandoned."""
        for env in self.envs:
            env.close()
        self.envs, self.next_obs = [], []
        for i, monitor in enumerate(self.monitors):
            agent_part = 0 if self.cfg.cohort.same_env_seed else i
            seed = derive_seed(self.cfg.seed, "train", agent_part, self.update_idx)
            env = make_env(agent_env(self.cfg, i), self.cfg.env.num_envs, seed, self.device, "train")
            self.envs.append(env)
            self.next_obs.append(monitor.attach(env))

    # ---- one update: collect, advantages, learn ----------------------------------------------

    @torch.no_grad()
    def collect(self) -> None:
        """``num_steps`` steps of every agent's envs into the rollout buffer. The host waits for the
        device once per step: for the actions of all agents, sampled in one call and copied in one."""
        r = self.rollout
        self.policy.refresh()
        for t in range(self.cfg.ppo.num_steps):
            obs = torch.stack(self.next_obs)
            with autocast(self.cfg.perf.amp, self.device):
                logits, values = self.policy(obs)
            actions, logprobs = sample_actions(logits, self.generator)
            r.obs[:, t], r.actions[:, t], r.logprobs[:, t], r.values[:, t] = obs, actions, logprobs, values
            host_actions = actions.cpu()
            with self.timer("env"):
                for i, step in enumerate(step_monitored(self.monitors, host_actions)):
                    r.rewards[i, t], r.dones[i, t], r.valids[i, t] = step.reward, step.done, step.valid
                    r.episode_ends[i, t] = step.episode_end
                    r.episode_returns[i, t], r.episode_lengths[i, t] = step.episode_return, step.episode_length
                    self.next_obs[i] = step.obs

    @torch.no_grad()
    def advantages(self, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
        r, p = self.rollout, self.cfg.ppo
        self.policy.refresh()
        with autocast(self.cfg.perf.amp, self.device):
            next_value = self.policy(torch.stack(self.next_obs))[1]
        rewards = r.rewards
        if self.cfg.cohort.distill in DISTILL_REWARDS and len(self.agents) > 1 and alpha > 0:
            after = torch.cat([r.obs[:, 1:], torch.stack(self.next_obs).unsqueeze(1)], dim=1)
            rewards = rewards + distill_rewards(self.agents, after, r.dones, self.cfg, alpha)
        return gae(rewards, r.values, r.dones, r.valids, next_value, p.gamma, p.gae_lambda)

    def alpha(self) -> float:
        """The distillation weight at this update (linear warm-up when ``alpha_warmup`` > 0)."""
        c = self.cfg.cohort
        return c.alpha * min(1.0, (self.update_idx + 1) / c.alpha_warmup) if c.alpha_warmup else c.alpha

    def pick_teacher(self) -> None:
        """peer_target=best: every ``teacher_every`` updates the agent with the best mean episodic
        return since the last pick becomes the teacher (PIEKD-style)."""
        c = self.cfg.cohort
        if c.peer_target != "best" or self.update_idx % c.teacher_every:
            return
        sums, counts = self.recent_returns.cpu().unbind(1)
        if counts.min() > 0:
            self.teacher = int((sums / counts).argmax())
        self.recent_returns.zero_()

    def iteration(self) -> dict[str, float]:
        """One update of the whole cohort; returns its metrics."""
        cfg, r = self.cfg, self.rollout
        start = time.perf_counter()
        lr = cfg.ppo.lr * (1.0 - self.update_idx / self.num_updates) if cfg.ppo.anneal_lr else cfg.ppo.lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr  # also where a resumed run changed ppo.lr
        self.pick_teacher()
        alpha = self.alpha()
        with self.timer("collect"):
            self.collect()
        with self.timer("advantages"):
            adv, returns = self.advantages(alpha)
        batch = {name: r.flat(name) for name in ("obs", "actions", "logprobs", "values", "valids")}
        batch["advantages"] = adv.flatten(1)
        batch["returns"] = returns.flatten(1)
        with self.timer("update"):
            stats = update(self.agents, self.optimizer, batch, cfg, self.generator, alpha, self.teacher)
        check_finite(stats, self.agents, self.update_idx, self.saved_update)
        ends = r.episode_ends.float()
        self.recent_returns += torch.stack([(r.episode_returns * ends).sum((1, 2)), ends.sum((1, 2))], dim=1)
        self.global_step += self.batch_steps
        self.update_idx += 1
        metrics = update_metrics(r, stats, returns, cfg, self.update_idx, lr, time.perf_counter() - start)
        if cfg.cohort.num_agents > 1:
            metrics["distill/alpha"] = alpha
            if cfg.cohort.peer_target == "best":
                metrics["distill/teacher"] = -1 if self.teacher is None else self.teacher
        return metrics

    def evaluate(self, episodes: int) -> tuple[dict[str, float], list[dict]]:
        label = f"evaluating (update {self.update_idx})" if self.progress else None
        results = evaluate_cohort(self.agents, self.cfg, episodes, ("update", self.update_idx), self.device,
                                  self.cfg.eval.greedy, label)
        summary = summarize(results, self.cfg.env)
        if self.cfg.eval.bound:
            summary.update(self.bound())
        return summary, results

    def bound(self) -> dict[str, float]:
        """bound/* estimates on frames of the last rollout and on a fixed set of held-out frames (the
        robustness terms need colour frames; other observations get only the peers' distance)."""
        cfg = self.cfg
        count = cfg.eval.bound_frames
        rgb = self.obs_kind == "rgb"
        if self.test_frames is None and rgb:
            self.test_frames = held_out_frames(cfg.env, count, derive_seed(cfg.seed, "bound")).to(self.device)
        generator = torch.Generator(self.device).manual_seed(derive_seed(cfg.seed, "bound", self.update_idx))
        obs = self.rollout.obs.flatten(1, 2)  # (K, T*N, *obs_shape)
        pick = torch.randperm(obs.shape[1], generator=generator, device=self.device)[:count]
        with autocast(cfg.perf.amp, self.device):
            return bound_estimates(self.agents, obs[:, pick], self.test_frames, generator,
                                   random_conv if rgb else None)

    # ---- the loop ------------------------------------------------------------------------------

    def run(self) -> Path:
        """Train to ``total_steps``, checkpointing and evaluating on schedule; returns the run folder.

        The first SIGINT/SIGTERM finishes the current update, writes a checkpoint and returns; a
        second one (or the first during the final evaluation) raises ``Interrupted`` at once.
        """
        cfg = self.cfg
        for line in describe(self):
            self.say(line)
        tracker = WandbTracker(cfg, self.run_dir) if cfg.track else None
        logger = Logger(self.run_dir, resume_step=self.global_step if self.update_idx else None, tracker=tracker)
        if tracker and tracker.offline:
            self.say(f"W&B: no login, recording offline in {self.run_dir / 'wandb'} (upload with `wandb sync`)")
        bar = tqdm(total=self.num_updates * self.batch_steps, initial=self.global_step, unit="step",
                   unit_scale=True, disable=not self.progress, dynamic_ncols=True)
        first = self.update_idx
        try:
            with self.stop_on_signals():
                self.training = True
                while self.update_idx < self.num_updates and not self.stop_signal:
                    start = time.perf_counter()
                    metrics = self.iteration()
                    last = self.update_idx == self.num_updates
                    if cfg.eval.every and self.update_idx % cfg.eval.every == 0 and not last:
                        metrics.update(self.evaluate(cfg.eval.episodes)[0])
                    logger.log(self.global_step, metrics)
                    bar.update(self.batch_steps)
                    bar.set_postfix(postfix(metrics), refresh=False)
                    if self.update_idx == first + 1 and not last:
                        self.say(eta(self, time.perf_counter() - start))
                    if last or self.stop_signal or self.update_idx % cfg.checkpoint_every == 0:
                        save_checkpoint(self.run_dir, self.state_dict())
                        self.saved_update = self.update_idx
                self.training = False
                if self.update_idx >= self.num_updates and not self.stop_signal:
                    bar.set_postfix(postfix(self.final_evaluation(logger)), refresh=True)
        except KeyboardInterrupt:
            kept = (f"the checkpoint of update {self.saved_update} is kept; continue with `mdpo train --resume "
                    f"{self.run_dir}`" if self.saved_update is not None else "no checkpoint had been written yet")
            raise Interrupted(f"interrupted at update {self.update_idx}: {kept}") from None
        finally:
            bar.close()
            logger.close()
            for env in self.envs:
                env.close()
        return self.run_dir

    def final_evaluation(self, logger: Logger) -> dict[str, float]:
        """``eval.final_episodes`` per split into eval.json (and the log); returns the summary."""
        cfg = self.cfg
        summary, results = self.evaluate(cfg.eval.final_episodes)
        logger.log(self.global_step, summary)
        write_json(self.run_dir / EVAL, {
            "global_step": self.global_step, "update": self.update_idx, "episodes": cfg.eval.final_episodes,
            "greedy": cfg.eval.greedy, "summary": summary, "agents": results,
        })
        return summary

    def say(self, line: str) -> None:
        if self.verbose:
            tqdm.write(line)

    def stop_on_signals(self):
        """The first SIGINT/SIGTERM asks for a clean stop; a second one interrupts at once."""

        def handler(signum, frame):
            if self.stop_signal or not self.training:
                raise KeyboardInterrupt
            self.stop_signal = signal.Signals(signum).name
            tqdm.write(f"{self.stop_signal}: finishing this update, then writing a checkpoint")

        return on_stop_signals(handler)


def train(cfg: Config, progress: bool = True, verbose: bool = False) -> Path:
    """Start a new run from a resolved config; returns its run folder."""
    checked_device(cfg)  # fail before a run folder exists
    warning = split_warning(cfg.env)
    if warning:
        tqdm.write(f"warning: {warning}", file=sys.stderr)
    run_dir = run_dir_for(cfg)
    with run_lock(run_dir):
        start_run_dir(run_dir, cfg)
        return Trainer(cfg, run_dir, progress=progress, verbose=verbose).run()
