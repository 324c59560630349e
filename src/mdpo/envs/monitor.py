"""What the logger sees and what the learner sees of a VecEnv's steps, kept apart as Stable-Baselines3's
VecMonitor and VecNormalize: raw episode statistics (``EpisodeMonitor``) and normalised rewards
(``RewardNormalizer``, whose statistics a checkpoint keeps)."""

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
    reward: torch.Tensor  # as the env gave it
    done: torch.Tensor
    valid: torch.Tensor
    episode_end: torch.Tensor  # bool (N,): an episode finished here
    episode_return: torch.Tensor  # raw return of that episode (0 elsewhere)
    episode_length: torch.Tensor  # its length in real transitions (0 elsewhere)


class EpisodeMonitor:
    """Raw episode returns and lengths of ``env``'s episodes, from a reset the caller has just made
    (on ``device``, where the env's steps arrive). Steps with ``valid == False`` change nothing."""

    def __init__(self, env: VecEnv, device: torch.device):
        self.env = env
        zeros = torch.zeros(env.num_envs, device=device)
        self._return, self._length = zeros, zeros.clone()

    def step(self, actions: torch.Tensor) -> MonitoredStep:
        return self.record(self.env.step(actions))

    def record(self, s: Step) -> MonitoredStep:
        """The env's step ``s`` with the statistics of the episodes it ends."""
        valid_f = s.valid.float()
        self._return += (s.reward if s.score is None else s.score) * valid_f
        self._length += valid_f
        end = (s.done if s.game_over is None else s.game_over) & s.valid
        out = MonitoredStep(s.obs, s.reward, s.done, s.valid, end,
                            torch.where(end, self._return, 0.0), torch.where(end, self._length, 0.0))
        keep = (~end).float()
        self._return, self._length = self._return * keep, self._length * keep
        return out


class RewardNormalizer:
    """Rewards divided by the running std of the discounted return, then clipped (as baselines'
    VecNormalize: accumulate, update, scale, clip, reset at episode end); steps with ``valid ==
    False`` change nothing. Without ``normalize`` rewards pass unchanged and the statistics keep their
    start, so every run's checkpoint holds them alike."""

    def __init__(self, gamma: float, clip: float, normalize: bool, device: torch.device):
        self.gamma, self.clip, self.normalize = gamma, clip, normalize
        self.return_rms = RunningMeanStd(device)

    def start(self, num_envs: int, device: torch.device) -> None:
        """Fresh envs: no discounted return in progress; the statistics carry over."""
        self._discounted = torch.zeros(num_envs, device=device).double()

    def __call__(self, reward: torch.Tensor, done: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """What the learner sees of one step's ``reward``."""
        if not self.normalize:
            return reward
        self._discounted = torch.where(valid, self._discounted * self.gamma + reward.double(), self._discounted)
        self.return_rms.update(self._discounted, valid)
        scaled = (reward.double() / torch.sqrt(self.return_rms.var + 1e-8)).float()
        self._discounted = self._discounted * (~(done & valid)).double()
        return scaled.clamp(-self.clip, self.clip)

    def state_dict(self) -> dict:
        return {"return_rms": self.return_rms.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.return_rms.load_state_dict(state["return_rms"])


def step_monitored(monitors: Sequence[EpisodeMonitor], actions: Sequence[torch.Tensor]) -> Iterator[MonitoredStep]:
    """Each monitor's env stepped with its row of ``actions``, all at once where they can (``step_all``)."""
    for monitor, step in zip(monitors, step_all([m.env for m in monitors], actions)):
        yield monitor.record(step)
