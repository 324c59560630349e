"""Episodes on training levels and on held-out test levels, and their summary metrics.

An evaluation counts the first episode of each of N parallel envs, never "the first N episodes to
finish" (which would favour short episodes). Every agent and split of a cohort runs at once, in one
loop, so a whole evaluation takes about as long as its longest episode.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from mdpo.config import Config, EnvConfig
from mdpo.envs import SPLITS, EpisodeMonitor, make_env, score_range, step_monitored
from mdpo.grouped import GroupedPolicy
from mdpo.nets import sample_actions
from mdpo.resolve import agent_env
from mdpo.runs import load_agents
from mdpo.runtime import cudnn_autotuning, derive_seed


@dataclass
class Job:
    """``episodes`` episodes of one agent on one split."""

    agent: nn.Module
    env_cfg: EnvConfig
    split: str
    seed: int


@torch.no_grad()
def play(jobs: list[Job], episodes: int, device: torch.device, greedy: bool = False,
         progress: str | None = None, batched: bool = True) -> list[dict[str, list[float]]]:
    """Run every job's ``episodes`` parallel envs in one loop until each env has ended its first
    episode. With ``progress`` (a label), a bar counts finished episodes. Returns per job raw
    returns and lengths.

    Each step is one forward pass per agent over its jobs' unfinished envs or, with ``batched`` and
    several agents holding as many jobs each (a cohort's evaluation), one grouped pass for all agents
    (see ``mdpo.grouped``); each job samples its actions from its own generator either way, and every
    job's envs step at once (``envs.step_all``). cuDNN's autotuner is off meanwhile.
    """
    envs = [make_env(job.env_cfg, episodes, job.seed, device, job.split) for job in jobs]
    obs = torch.stack([env.reset() for env in envs])  # (jobs, N, C, H, W)
    monitors = [EpisodeMonitor(env, obs.device) for env in envs]
    generators = [torch.Generator(device).manual_seed(job.seed) for job in jobs]
    returns = torch.zeros(len(jobs), episodes, device=device)
    lengths = torch.zeros_like(returns)
    finished = torch.zeros(len(jobs), episodes, dtype=torch.bool, device=device)
    agents = list({id(job.agent): job.agent for job in jobs}.values())
    rows = [[j for j, job in enumerate(jobs) if job.agent is agent] for agent in agents]
    logits_of = _sequential_logits
    if batched and len(agents) > 1 and len({len(mine) for mine in rows}) == 1:
        logits_of = functools.partial(_grouped_logits, GroupedPolicy(agents), torch.tensor(rows, device=device))
    bar = tqdm(total=finished.numel(), desc=progress, unit="episode", disable=progress is None, leave=False)
    with cudnn_autotuning(False):  # the batch shrinks as episodes end: nearly every step a new shape to tune
        while not bool(finished.all()):
            actions = torch.zeros_like(returns, dtype=torch.long)
            for j, logits in logits_of(agents, rows, obs, finished):
                actions[j, ~finished[j]] = sample_actions(logits, generators[j], greedy)[0]
            for j, step in enumerate(step_monitored(monitors, actions.cpu())):
                first = step.episode_end & ~finished[j]
                returns[j] = torch.where(first, step.episode_return, returns[j])
                lengths[j] = torch.where(first, step.episode_length, lengths[j])
                finished[j] |= step.episode_end
                obs[j] = step.obs
            bar.update(int(finished.sum()) - bar.n)
    bar.close()
    for env in envs:
        env.close()
    return [{"returns": r.tolist(), "lengths": n.tolist()} for r, n in zip(returns, lengths)]


def _sequential_logits(agents, rows, obs, finished):
    """(job, logits of its unfinished envs) for every job with some, one forward pass per agent."""
    for agent, mine in zip(agents, rows):
        counts = (~finished[mine]).sum(1).tolist()
        if sum(counts):
            for j, part in zip(mine, agent(obs[mine][~finished[mine]])[0].split(counts)):
                if len(part):
                    yield j, part


def _grouped_logits(policy: GroupedPolicy, index: torch.Tensor, agents, rows, obs, finished):
    """``_sequential_logits`` as one grouped pass over the env slots still running for any agent;
    ``index`` is ``rows`` as a tensor (K, jobs per agent)."""
    running = (~finished[index]).any(0)  # (jobs per agent, N)
    logits = policy(obs[index][:, running])[0]  # (K, running slots, A)
    full = logits.new_zeros(*index.shape, finished.shape[1], logits.shape[-1])
    full[:, running] = logits
    for k, mine in enumerate(rows):
        for s, j in enumerate(mine):
            if not bool(finished[j].all()):
                yield j, full[k, s][~finished[j]]


def run_episodes(agent: nn.Module, env_cfg: EnvConfig, split: str, episodes: int, seed: int,
                 device: torch.device, greedy: bool = False) -> dict[str, list[float]]:
    """One agent on one split (see ``play``)."""
    return play([Job(agent, env_cfg, split, seed)], episodes, device, greedy)[0]


def evaluate_cohort(agents: nn.ModuleList, cfg: Config, episodes: int, seed_parts: tuple,
                    device: torch.device, greedy: bool = False, progress: str | None = None) -> list[dict]:
    """For each agent: episodes on its own training levels and on the test levels. All agents
    meet the same levels (same seeds), so their results are paired."""
    jobs = [Job(agent, agent_env(cfg, i), split, derive_seed(cfg.seed, "eval", split, *seed_parts))
            for i, agent in enumerate(agents) for split in SPLITS]
    results = iter(play(jobs, episodes, device, greedy, progress, cfg.perf.batched_inference))
    return [{split: next(results) for split in SPLITS} for _ in agents]


def evaluate_checkpoint(run_dir: str | Path, episodes: int | None, device: torch.device, greedy: bool = False,
                        progress: str | None = None) -> dict:
    """A fresh evaluation of a run's checkpoint, ``episodes`` per split (None: the run's
    ``eval.final_episodes``): the record ``mdpo eval`` writes, with its summary and per-agent returns."""
    cfg, agents, state = load_agents(run_dir, device)
    episodes = episodes or cfg.eval.final_episodes
    results = evaluate_cohort(agents, cfg, episodes, ("rerun", state["update"]), device, greedy, progress)
    return {"global_step": state["global_step"], "update": state["update"], "episodes": episodes, "greedy": greedy,
            "summary": summarize(results, cfg.env), "agents": results}


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def summarize(results: list[dict], env_cfg: EnvConfig) -> dict[str, float]:
    """eval/* metrics: returns, generalization gap and min-max normalised scores, averaged over
    agents, plus per-agent values suffixed /agentI when there are several agents."""
    per_agent = []
    bounds = score_range(env_cfg)
    for r in results:
        m = {"eval/train_return": _mean(r["train"]["returns"]), "eval/test_return": _mean(r["test"]["returns"])}
        m["eval/gap"] = m["eval/train_return"] - m["eval/test_return"]
        if bounds:
            lo, hi = bounds
            m["eval/train_score"] = (m["eval/train_return"] - lo) / (hi - lo)
            m["eval/test_score"] = (m["eval/test_return"] - lo) / (hi - lo)
        per_agent.append(m)
    out = {k: _mean([m[k] for m in per_agent]) for k in per_agent[0]}
    if len(per_agent) > 1:
        for i, m in enumerate(per_agent):
            out.update({f"{k}/agent{i}": v for k, v in m.items()})
    return out
