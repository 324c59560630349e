"""The environment a researcher brings: a ``module:Env-v0`` id or ``--env.packages`` registers it,
``--env.kwargs`` reach its constructor (and envpool's), and what cannot be found or taken is a one-line
error naming it."""

import json
import textwrap

import pytest
import torch

from mdpo.cli import main
from mdpo.config import EnvConfig, from_dict, parse_value, to_dict
from mdpo.envs import make_env
from mdpo.errors import MdpoError
from mdpo.logger import read_metrics
from mdpo.resolve import resolve

CPU = torch.device("cpu")

# Ten pulls an episode; arm ``good`` pays 1, the other 0; the observation tells nothing.
BANDIT = '''
import gymnasium
import numpy as np


class Bandit(gymnasium.Env):
    observation_space = gymnasium.spaces.Box(0, 1, (3,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def __init__(self, good=1):
        self.good = good

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(3, np.float32), float(action == self.good), self.t == 10, False, {}


gymnasium.register("{id}", entry_point=Bandit)
'''


@pytest.fixture
def write_module(tmp_path, monkeypatch):
    """Writes a module on sys.path that registers the bandit as ``env_id`` when imported."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, env_id: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(BANDIT).replace("{id}", env_id))
        return name

    return write


def test_a_module_id_trains_with_its_kwargs_and_learns(write_module, tmp_path):
    module = write_module("own_bandit_a", "BanditA-v0")
    flags = ["--preset", "cartpole", "--env.game", f"{module}:BanditA-v0", "--env.kwargs", "good=0",
             "--total_steps", "4096", "--eval.final_episodes", "8", "--torch_threads", "1", "--quiet",
             "--out_dir", str(tmp_path / "runs"), "--run_name", "bandit"]
    assert main(["train", *flags]) == 0
    run = tmp_path / "runs" / "bandit"
    assert json.loads((run / "config.json").read_text())["env"]["kwargs"] == {"good": 0}
    rows = read_metrics(run)
    assert rows[-1]["global_step"] == 4096
    assert rows[0]["charts/episodic_return"] < 8  # it starts near chance: 5 of 10 pulls pay
    assert rows[-1]["eval/train_return"] >= 9.5  # and learns that arm 0 pays (with arm 1 it would score 0)


def test_env_packages_are_imported_before_the_game_is_looked_up(write_module):
    write_module("own_bandit_b", "BanditB-v0")
    cfg = EnvConfig(game="BanditB-v0", packages=["own_bandit_b"], num_levels=0)
    env = make_env(cfg, 2, seed=0, device=CPU)
    assert tuple(env.reset().shape) == (2, 3)
    assert env.step(torch.ones(2, dtype=torch.long)).reward.tolist() == [1.0, 1.0]


def test_kwargs_reach_gymnasium_and_envpool():
    minatar = make_env(EnvConfig(game="MinAtar/Breakout-v1", num_levels=0, kwargs={"sticky_action_prob": 0.0}),
                       1, seed=0, device=CPU)
    assert minatar._env.envs[0].unwrapped.game.sticky_action_prob == 0.0
    for family in ("gymnasium", "envpool"):
        env = make_env(EnvConfig(game="CartPole-v1", family=family, num_levels=0, num_threads=1,
                                 kwargs={"max_episode_steps": 3}), 1, seed=0, device=CPU)
        env.reset()
        assert [bool(env.step(torch.zeros(1, dtype=torch.long)).done) for _ in range(3)] == [False, False, True]


@pytest.mark.parametrize("text, value", [
    ("sticky_action_prob=0.0,difficulty_ramping=false,mode=x", {"sticky_action_prob": 0.0,
                                                                 "difficulty_ramping": False, "mode": "x"}),
    ("{max_episode_steps: 1000}", {"max_episode_steps": 1000}),
    ("", {}),
])
def test_kwargs_are_typed(text, value):
    assert parse_value(text, dict, "env.kwargs") == value


def test_kwargs_and_packages_are_saved_with_the_config():
    cfg = resolve("minatar", None, {"env.kwargs": "sticky_action_prob=0.0", "env.packages": "json,os"})
    assert (cfg.env.kwargs, cfg.env.packages) == ({"sticky_action_prob": 0.0}, ["json", "os"])
    assert from_dict(json.loads(json.dumps(to_dict(cfg)))) == cfg


@pytest.mark.parametrize("overrides, message", [
    ({"env.kwargs": "good"}, "bad value for env.kwargs: 'good' is not a mapping"),
    ({"env.kwargs": "bogus=1"}, "env.kwargs {'bogus': 1} do not fit CartPole-v1: .*'bogus'"),
    ({"env.family": "envpool", "env.kwargs": "bogus=1"}, "envpool's CartPole-v1 takes no env.kwargs 'bogus'"),
    ({"env.family": "envpool", "env.kwargs": "seed=3"}, "env.kwargs seed: mdpo sets it from --seed"),
    ({"env.game": "bigfish", "env.kwargs": "start_level=3"}, "mdpo sets it from --env.start_level"),
    ({"env.game": "coins", "env.kwargs": "agreement=0.5"}, "coins takes no env.kwargs"),
    ({"env.packages": "no_such_module"}, "env.packages: cannot import no_such_module"),
    ({"env.game": "no_such_module:Env-v0"}, "no_such_module:Env-v0: cannot import no_such_module"),
    ({"env.game": "json:Env-v0"}, "json:Env-v0: Environment `Env` doesn't exist"),
    ({"env.game": "NoSuchNamespace/Env-v0"}, "Namespace NoSuchNamespace not found.*--env.packages"),
])
def test_what_cannot_be_found_or_taken_is_a_one_line_error(overrides, message):
    with pytest.raises(MdpoError, match=message) as info:
        resolve("cartpole", None, overrides)
    assert "\n" not in str(info.value)


def test_an_ale_id_without_ale_py_names_it_and_envpool_s_task():
    try:
        import ale_py  # noqa: F401
        pytest.skip("ale-py is installed here")
    except ImportError:
        pass
    with pytest.raises(MdpoError, match=r"^ALE/Pong-v5 needs the ale-py package: pip install ale-py, "
                                        r"or use envpool's Pong-v5$"):
        resolve("cartpole", None, {"env.game": "ALE/Pong-v5"})
