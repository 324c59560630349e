"""The cohort's peer schedule: alpha's warm-up, the best-teacher pick and its state."""

import torch

from mdpo.config import CohortConfig
from mdpo.rollout import Rollout
from mdpo.schedule import PeerSchedule

CPU = torch.device("cpu")


def test_alpha_warms_up_linearly_then_stays():
    schedule = PeerSchedule(CohortConfig(num_agents=2, alpha=2.0, alpha_warmup=4), CPU)
    assert [schedule.alpha(u) for u in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert PeerSchedule(CohortConfig(num_agents=2, alpha=0.3), CPU).alpha(0) == 0.3


def test_teacher_is_the_agent_with_best_recent_return():
    schedule = PeerSchedule(CohortConfig(num_agents=3, peer_target="best", teacher_every=2), CPU)
    schedule.recent_returns = torch.tensor([[10.0, 5.0], [9.0, 3.0], [1.0, 1.0]])  # means 2, 3, 1
    assert schedule.pick_teacher(1) is None  # not a picking update
    assert schedule.pick_teacher(2) == 1 and schedule.recent_returns.sum() == 0
    assert schedule.metrics(0.5) == {"distill/alpha": 0.5, "distill/teacher": 1}


def test_no_pick_until_every_agent_finished_an_episode():
    schedule = PeerSchedule(CohortConfig(num_agents=2, peer_target="best", teacher_every=1), CPU)
    schedule.recent_returns = torch.tensor([[10.0, 5.0], [0.0, 0.0]])
    assert schedule.pick_teacher(0) is None and schedule.metrics(1.0)["distill/teacher"] == -1


def test_the_tally_counts_finished_episodes_and_the_state_round_trips():
    schedule = PeerSchedule(CohortConfig(num_agents=2, peer_target="best"), CPU)
    rollout = Rollout.allocate(2, 3, 2, (4,), CPU, torch.float32)
    rollout.episode_ends[0, 1, 0] = rollout.episode_ends[1, 2, 1] = rollout.episode_ends[1, 0, 0] = True
    rollout.episode_returns[0, 1, 0], rollout.episode_returns[1, 2, 1], rollout.episode_returns[1, 0, 0] = 4.0, 1.0, 3.0
    rollout.episode_returns[0, 0, 0] = 100.0  # not an episode end: not counted
    schedule.tally(rollout)
    assert schedule.recent_returns.tolist() == [[4.0, 1.0], [4.0, 2.0]]
    restored = PeerSchedule(CohortConfig(num_agents=2, peer_target="best"), CPU)
    restored.load_state_dict(schedule.state_dict())
    assert torch.equal(restored.recent_returns, schedule.recent_returns) and restored.teacher is None
    assert restored.pick_teacher(0) == 0  # mean 4 against 2


def test_one_agent_reports_no_distillation():
    assert PeerSchedule(CohortConfig(num_agents=1), CPU).metrics(1.0) == {}
