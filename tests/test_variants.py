"""Issue 6's options on real (tiny) runs: K=3 cohorts, schedules, per-agent levels, EERD, SPO."""

import json

import numpy as np
import pytest

from mdpo.envs import make_env
from mdpo.errors import MdpoError
from mdpo.resolve import agent_env, resolve
from mdpo.runtime import resolve_device
from mdpo.trainer import Trainer


def _levels_seen(env_cfg, steps=200):
    """Level seeds an env actually plays (reads envpool's info)."""
    env = make_env(env_cfg, 4, 0, resolve_device("cpu"))
    raw = env._env
    seen = set(raw.reset()[1]["level_seed"].tolist())
    for _ in range(steps):
        seen |= set(raw.step(np.random.randint(0, 15, 4))[4]["level_seed"].tolist())
    env.close()
    return seen


def test_disjoint_level_split_reaches_the_right_agents():
    cfg = resolve("smoke", "mdpo", {"env.game": "bigfish", "env.num_levels": 10, "env.start_level": 100,
                                     "cohort.level_split": "disjoint"})
    assert [(agent_env(cfg, i).start_level, agent_env(cfg, i).num_levels) for i in range(2)] == [(100, 5), (105, 5)]
    assert _levels_seen(agent_env(cfg, 0)) <= set(range(100, 105))
    assert _levels_seen(agent_env(cfg, 1)) <= set(range(105, 110))


def test_agent_env_overrides_reach_the_right_agents():
    cfg = resolve("smoke", "mdpo", {"env.game": "bigfish", "cohort.agent_env": [{"start_level": 7, "num_levels": 1}]})
    assert _levels_seen(agent_env(cfg, 0)) == {7}
    assert agent_env(cfg, 1).start_level == 0 and agent_env(cfg, 1).num_levels == cfg.env.num_levels


def test_bad_variant_options_are_errors():
    with pytest.raises(MdpoError, match="unknown cohort.distill"):
        resolve("smoke", "mdpo", {"cohort.distill": "wasserstein"})
    with pytest.raises(MdpoError, match="unknown cohort.peer_target"):
        resolve("smoke", "mdpo", {"cohort.peer_target": "worst"})
    with pytest.raises(MdpoError, match="unknown config field"):
        resolve("smoke", "mdpo", {"cohort.agent_env": [{"colour": 1}]})


@pytest.mark.parametrize("overrides", [
    {"cohort.num_agents": 3},
    {"cohort.num_agents": 3, "cohort.peer_target": "best", "cohort.teacher_every": 1},
    {"cohort.distill": "eerd"},
    {"cohort.distill": "js", "cohort.temperature": 2.0, "cohort.alpha_warmup": 4},
])
def test_variant_smoke_runs(tiny, tmp_path, overrides):
    trainer = Trainer(tiny("mdpo", **overrides), tmp_path / "run")
    metrics = [trainer.update() for _ in range(2)]
    k = trainer.cfg.cohort.num_agents
    assert f"losses/value_loss/agent{k - 1}" in metrics[-1]
    assert np.isfinite(metrics[-1][f"distill/{trainer.cfg.cohort.distill}"])
    if "cohort.alpha_warmup" in overrides:
        assert [m["distill/alpha"] for m in metrics] == [0.25, 0.5]
    if overrides.get("cohort.peer_target") == "best":
        assert trainer.schedule.teacher is None or 0 <= trainer.schedule.teacher < 3


def test_spo_runs_and_differs_from_ppo(tiny, tmp_path):
    runs = {}
    for algo in ("ppo", "spo"):
        trainer = Trainer(tiny(algo), tmp_path / algo)
        runs[algo] = [trainer.update() for _ in range(2)][-1]
    assert trainer.cfg.ppo.base_loss == "spo"
    assert json.dumps(runs["ppo"]["losses/policy_loss"]) != json.dumps(runs["spo"]["losses/policy_loss"])


def test_drac_smoke_run_logs_its_regulariser(tiny, tmp_path):
    trainer = Trainer(tiny("drac", **{"drac.augment": "conv"}), tmp_path / "run")
    metrics = trainer.update()
    assert trainer.cfg.drac.coef == 0.1 and metrics["losses/drac"] > 0
