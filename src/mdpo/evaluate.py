"""Episodes on training levels and on held-out test levels, and their summary metrics."""

from __future__ import annotations

import math

import torch
from torch import nn

from mdpo.config import Config, EnvConfig, agent_env
from mdpo.envs import Monitor, make_env, score_range
from mdpo.runtime import derive_seed, sample_actions


@torch.no_grad()
def run_episodes(agent: nn.Module, env_cfg: EnvConfig, split: str, episodes: int, seed: int,
                 device: torch.device, greedy: bool = False) -> dict[str, list[float]]:
    """One episode on each of ``episodes`` parallel envs (counting each env's first episode only,
    so short episodes are not over-represented). Returns raw per-episode returns and lengths."""
    env = make_env(env_cfg, episodes, seed, device, split)
    monitor = Monitor(gamma=1.0, clip=math.inf, normalize=False, device=device)
    obs = monitor.attach(env)
    generator = torch.Generator(device).manual_seed(seed)
    returns = torch.zeros(episodes, device=device)
    lengths = torch.zeros(episodes, device=device)
    finished = torch.zeros(episodes, dtype=torch.bool, device=device)
    while not bool(finished.all()):
        logits, _ = agent(obs)
        actions, _ = sample_actions(logits, generator, greedy)
        step = monitor.step(actions)
        first = step.episode_end & ~finished
        returns = torch.where(first, step.episode_return, returns)
        lengths = torch.where(first, step.episode_length, lengths)
        finished |= step.episode_end
        obs = step.obs
    env.close()
    return {"returns": returns.tolist(), "lengths": lengths.tolist()}


def evaluate_cohort(agents: nn.ModuleList, cfg: Config, episodes: int, seed_parts: tuple,
                    device: torch.device, greedy: bool = False) -> list[dict]:
    """For each agent: episodes on its own training levels and on the test levels. All agents
    meet the same levels (same seeds), so their results are paired."""
    results = []
    for i, agent in enumerate(agents):
        results.append({
            split: run_episodes(agent, agent_env(cfg, i), split, episodes,
                                derive_seed(cfg.seed, "eval", split, *seed_parts), device, greedy)
            for split in ("train", "test")
        })
    return results


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
