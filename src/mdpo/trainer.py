"""The cohort trainer: K agents collect, compute advantages and update together.

K = 1 is plain PPO (or SPO); K >= 2 adds mutual distillation (see ``mdpo.optimize``). Each agent has
its own envs, reward normaliser and rollout slice; one Adam covers all agents' parameters.

An uninterrupted run keeps its environments for its whole life, as the authors' loop does.
envpool's env state cannot be saved, so a resumed run starts fresh envs, seeded from the run seed
and the update it resumes at: it equals an uninterrupted run that restarted its envs at that update
(``Trainer.start_envs``), bit for bit on CPU. The rollout before the restart bootstrapped from the
value of its last observation, as at any rollout end, so the learning targets stay correct.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from mdpo.bound import bound_estimates
from mdpo.config import Config, to_dict
from mdpo.distill import DISTILL_REWARDS
from mdpo.envs import EpisodeMonitor, RewardNormalizer, make_env, step_monitored
from mdpo.envs.frames import held_out_frames
from mdpo.errors import MdpoError
from mdpo.evaluate import evaluate_cohort, summarize
from mdpo.grouped import GroupedPolicy
from mdpo.memory import checked_device
from mdpo.nets import build_agents, sample_actions
from mdpo.optimize import distill_rewards, optimize
from mdpo.perturb import random_conv
from mdpo.resolve import agent_env
from mdpo.rollout import Rollout, gae
from mdpo.runs import load_agents, save_checkpoint
from mdpo.runtime import autocast, derive_seed, with_device_flags
from mdpo.schedule import PeerSchedule
from mdpo.timing import PhaseTimer
from mdpo.update_metrics import check_finite, update_metrics


def num_updates(cfg: Config) -> int:
    """Updates of a run: ``total_steps`` per agent, rounded up to whole rollouts."""
    return math.ceil(cfg.total_steps / (cfg.env.num_envs * cfg.ppo.num_steps))


class Trainer:
    """A cohort in training: everything its checkpoint holds (agents, optimizer, reward normalisers,
    sampling generator, peer schedule, counters), its envs and rollout buffer, and the steps of one
    update. ``mdpo.train.learn`` runs the loop around it.

    ``state`` is a checkpoint to continue from; ``timer`` (a ``PhaseTimer``) receives the seconds of
    each phase (collect, env, advantages, update).
    """

    def __init__(self, cfg: Config, run_dir: Path, state: dict | None = None, timer: PhaseTimer | None = None):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.device = checked_device(cfg)
        self.timer = timer or PhaseTimer(self.device)
        k, n, t = cfg.cohort.num_agents, cfg.env.num_envs, cfg.ppo.num_steps
        self.batch_steps = n * t  # env steps per agent per update
        self.num_updates = num_updates(cfg)
        self.update_idx = state["update"] if state else 0
        self.global_step = state["global_step"] if state else 0
        self.saved_update = self.update_idx if state else None  # of the newest checkpoint on disk
        self.normalizers = [RewardNormalizer(cfg.ppo.gamma, cfg.ppo.reward_clip, cfg.ppo.norm_reward, self.device)
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
        self.policy = GroupedPolicy(self.agents, cfg.perf.batched_inference)  # refreshed before each use
        self.optimizer = torch.optim.Adam(self.agents.parameters(), lr=cfg.ppo.lr, eps=cfg.ppo.adam_eps,
                                          fused=self.device.type == "cuda")  # one kernel per step, no host syncs
        self.generator = torch.Generator(self.device).manual_seed(cfg.seed)
        self.rollout = Rollout.allocate(k, t, n, obs_shape, self.device, self.next_obs[0].dtype)
        self.test_frames: torch.Tensor | None = None  # held-out frames for the bound's estimates
        self.schedule = PeerSchedule(cfg.cohort, self.device)
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
            "monitors": [n.state_dict() for n in self.normalizers],  # a Monitor held these once: old checkpoints load
            "generator": self.generator.get_state(),
            **self.schedule.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        try:
            self.agents.load_state_dict(state["agents"])
            self.optimizer.load_state_dict(with_device_flags(state["optimizer"], self.optimizer))
        except (RuntimeError, ValueError, KeyError) as exc:
            raise MdpoError(f"checkpoint does not fit this config ({str(exc).splitlines()[0]})") from None
        for normalizer, s in zip(self.normalizers, state["monitors"]):
            normalizer.load_state_dict(s)
        saved = state["generator"].cpu()
        if saved.numel() == self.generator.get_state().numel():
            self.generator.set_state(saved)
        else:  # saved by another kind of device (CPU vs CUDA): its stream cannot continue here
            self.generator.manual_seed(derive_seed(self.cfg.seed, "generator", self.update_idx))
        self.schedule.load_state_dict(state)

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
        self.envs, self.monitors, self.next_obs = [], [], []
        for i, normalizer in enumerate(self.normalizers):
            agent_part = 0 if self.cfg.cohort.same_env_seed else i
            seed = derive_seed(self.cfg.seed, "train", agent_part, self.update_idx)
            env = make_env(agent_env(self.cfg, i), self.cfg.env.num_envs, seed, self.device, "train")
            obs = env.reset()
            self.envs.append(env)
            self.monitors.append(EpisodeMonitor(env, obs.device))
            normalizer.start(env.num_envs, obs.device)
            self.next_obs.append(obs)

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
                    reward = self.normalizers[i](step.reward, step.done, step.valid)
                    r.rewards[i, t], r.dones[i, t], r.valids[i, t] = reward, step.done, step.valid
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

    def update(self) -> dict[str, float]:
        """One update of the whole cohort: collect, advantages, optimize; returns its metrics."""
        cfg, r = self.cfg, self.rollout
        start = time.perf_counter()
        lr = cfg.ppo.lr * (1.0 - self.update_idx / self.num_updates) if cfg.ppo.anneal_lr else cfg.ppo.lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr  # also where a resumed run changed ppo.lr
        teacher = self.schedule.pick_teacher(self.update_idx)
        alpha = self.schedule.alpha(self.update_idx)
        with self.timer("collect"):
            self.collect()
        with self.timer("advantages"):
            adv, returns = self.advantages(alpha)
        with self.timer("update"):
            stats = optimize(self.agents, self.optimizer, r.batch(adv, returns), cfg, self.generator, alpha, teacher)
        check_finite(stats, self.agents, self.update_idx, self.saved_update)
        self.schedule.tally(r)
        self.global_step += self.batch_steps
        self.update_idx += 1
        metrics = update_metrics(r, stats, returns, cfg, self.update_idx, lr, time.perf_counter() - start)
        return {**metrics, **self.schedule.metrics(alpha)}

    def evaluate(self, episodes: int, progress: bool = False) -> tuple[dict[str, float], list[dict]]:
        """``episodes`` per split on train and test levels (and the bound's estimates): (summary, per agent)."""
        label = f"evaluating (update {self.update_idx})" if progress else None
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

    def save(self) -> None:
        """Checkpoint the run as it stands."""
        save_checkpoint(self.run_dir, self.state_dict())
        self.saved_update = self.update_idx

    def close(self) -> None:
        for env in self.envs:
            env.close()
