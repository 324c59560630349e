"""How the agents of a cohort learn from each other over a run: the weight of distillation (alpha,
with its warm-up) and, under ``peer_target=best``, the teacher and the returns it is picked by.

The trainer asks it for alpha and the teacher at the start of each update and hands it each rollout's
finished episodes; its state travels in the checkpoint.
"""

from __future__ import annotations

import torch

from mdpo.config import CohortConfig
from mdpo.rollout import Rollout


class PeerSchedule:
    def __init__(self, cohort: CohortConfig, device: torch.device):
        self.cohort = cohort
        self.teacher: int | None = None  # peer_target=best: the current teacher
        self.recent_returns = torch.zeros(cohort.num_agents, 2, device=device)  # (sum, episodes) since the last pick

    def alpha(self, update: int) -> float:
        """The distillation weight of update ``update`` (counted from 0): linear warm-up over
        ``alpha_warmup`` updates, then ``alpha``."""
        c = self.cohort
        return c.alpha * min(1.0, (update + 1) / c.alpha_warmup) if c.alpha_warmup else c.alpha

    def pick_teacher(self, update: int) -> int | None:
        """peer_target=best: every ``teacher_every`` updates the agent with the best mean episodic
        return since the last pick becomes the teacher (PIEKD-style); returns the teacher."""
        c = self.cohort
        if c.peer_target == "best" and update % c.teacher_every == 0:
            sums, counts = self.recent_returns.cpu().unbind(1)
            if counts.min() > 0:
                self.teacher = int((sums / counts).argmax())
            self.recent_returns.zero_()
        return self.teacher

    def tally(self, rollout: Rollout) -> None:
        """Count the episodes that ended in ``rollout`` towards the next pick."""
        ends = rollout.episode_ends.float()
        self.recent_returns += torch.stack([(rollout.episode_returns * ends).sum((1, 2)), ends.sum((1, 2))], dim=1)

    def metrics(self, alpha: float) -> dict[str, float]:
        """distill/alpha (and distill/teacher, -1 before the first pick) of a cohort of several agents."""
        if self.cohort.num_agents == 1:
            return {}
        out = {"distill/alpha": alpha}
        if self.cohort.peer_target == "best":
            out["distill/teacher"] = -1 if self.teacher is None else self.teacher
        return out

    def state_dict(self) -> dict:
        return {"teacher": self.teacher, "recent_returns": self.recent_returns}

    def load_state_dict(self, state: dict) -> None:
        self.teacher = state["teacher"]
        self.recent_returns = state["recent_returns"].to(self.recent_returns.device)
