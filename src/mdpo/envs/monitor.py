"""What the learner sees vs what the logger sees: reward normalisation and raw episode statistics."""

from __future__ import annotations

from typing import Iterator, NamedTuple, Sequence

import torch

from mdpo.envs.base import Step, VecEnv, step_all


class RunningMeanStd:
    """Running mean and variance over masked batches (the parallel algorithm of Chan et al.)."""

    def __init__(self, device: torch.device):
        self.mean = torch.zeros((), dtype=torch.float64, device=device)
        self.var = torch.ones((), dtype=torch.float64, device=device)
        self.count = torch.full((), 1e-4, dtype=torch.float64, device=device)

    def update(self, x: torch.Tensor, mask: torch.Tensor) -> None:
        w = mask.to(torch.float64)
        n = w.sum()
        safe_n = n.clamp(min=1.0)
        x = x.to(torch.float64)
        batch_mean = (x * w).sum() / safe_n
        batch_var = ((x - batch_mean) ** 2 * w).sum() / safe_n
        total = self.count + n
        delta = batch_mean - self.mean
        new_mean = self.mean + delta * n / total
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        # an all-masked batch (n == 0) leaves the statistics unchanged
        self.mean, self.var, self.count = new_mean, m2 / total, total

    def state_dict(self) -> dict:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.var, self.count = (state[k].to(self.mean.device) for k in ("mean", "var", "count"))


class MonitoredStep(NamedTuple):
    obs: torch.Tensor
    reward: torch.Tensor  # normalised and clipped (what the learner sees)
    done: torch.Tensor
    valid: torch.Tensor
    episode_end: torch.Tensor  # bool (N,): an episode finished here
    episode_return: torch.Tensor  # raw return of that episode (0 elsewhere)
    episode_length: torch.Tensor  # its length in real transitions (0 elsewhere)


class Monitor:
    """Wraps a VecEnv: normalises rewards by the running std of the discounted return (as
    baselines' VecNormalize: accumulate, update, scale, clip, reset at episode end) and tracks
    raw episode returns and lengths. Steps with ``valid == False`` change nothing."""

    def __init__(self, gamma: float, clip: float, normalize: bool, device: torch.device):
        self.gamma, self.clip, self.normalize = gamma, clip, normalize
        self.return_rms = RunningMeanStd(device)
        self.env: VecEnv | None = None

    def attach(self, env: VecEnv) -> torch.Tensor:
        """Start a fresh set of episodes on ``env``; the normaliser's statistics carry over."""
        self.env = env
        obs = env.reset()
        zeros = torch.zeros(env.num_envs, device=obs.device)
        self._discounted, self._raw_return, self._length = zeros.double(), zeros.clone(), zeros.clone()
        return obs

    def step(self, actions: torch.Tensor) -> MonitoredStep:
        return self.record(self.env.step(actions))

    def record(self, s: Step) -> MonitoredStep:
        """What the learner and the logger see of the attached env's step ``s``."""
        valid_f = s.valid.float()
        self._raw_return += (s.reward if s.score is None else s.score) * valid_f
        self._length += valid_f
        reward = s.reward
        if self.normalize:
            self._discounted = torch.where(s.valid, self._discounted * self.gamma + s.reward.double(), self._discounted)
            self.return_rms.update(self._discounted, s.valid)
            reward = (s.reward.double() / torch.sqrt(self.return_rms.var + 1e-8)).float()
            reward = reward.clamp(-self.clip, self.clip)
        end = (s.done if s.game_over is None else s.game_over) & s.valid
        out = MonitoredStep(s.obs, reward, s.done, s.valid, end,
                            torch.where(end, self._raw_return, 0.0), torch.where(end, self._length, 0.0))
        keep = (~end).float()
        self._raw_return, self._length = self._raw_return * keep, self._length * keep
        self._discounted = self._discounted * (~(s.done & s.valid)).double()
        return out

    def state_dict(self) -> dict:
        return {"return_rms": self.return_rms.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.return_rms.load_state_dict(state["return_rms"])


def step_monitored(monitors: Sequence[Monitor], actions: Sequence[torch.Tensor]) -> Iterator[MonitoredStep]:
    """Each monitor's env stepped with its row of ``actions``, all at once where they can (``step_all``)."""
    for monitor, step in zip(monitors, step_all([m.env for m in monitors], actions)):
        yield monitor.record(step)
