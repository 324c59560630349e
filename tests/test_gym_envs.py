"""Gymnasium and envpool families: spaces, autoreset masking (both kinds), episode statistics and GAE on
hand-computed cases, train/test seed splits, layout overlap warnings, one-line errors."""


import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

from mdpo.config import EnvConfig
from mdpo.envs import EpisodeMonitor, family_of, make_env, split_warning, step_all
from mdpo.envs.gym import GymnasiumEnv
from mdpo.envs.levels import SeedSplit
from mdpo.envs.staging import DeviceStaging
from mdpo.errors import MdpoError
from mdpo.resolve import resolve
from mdpo.rollout import gae

CPU = torch.device("cpu")


class Countdown(gymnasium.Env):
    """Episodes of 3 steps with rewards 1, 2, 3; the observation is (seed of the last reset, t)."""

    observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.level, self.t = -1 if seed is None else seed, 0
        return np.array([self.level, 0], np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.level, self.t], np.float32), float(self.t), self.t == 3, False, {}


class DictObs(Countdown):
    observation_space = gymnasium.spaces.Dict({"x": Countdown.observation_space})


gymnasium.register("mdpo-test/Countdown-v0", entry_point=Countdown)
gymnasium.register("mdpo-test/DictObs-v0", entry_point=DictObs)


def _steps(env, count):
    env.reset()
    monitor = EpisodeMonitor(env, CPU)
    return [monitor.step(torch.zeros(env.num_envs, dtype=torch.long)) for _ in range(count)]


@pytest.mark.parametrize("autoreset, valid, rewards", [
    (AutoresetMode.NEXT_STEP, [1, 1, 1, 0, 1, 1, 1, 0], [1, 2, 3, 0, 1, 2, 3, 0]),
    (AutoresetMode.SAME_STEP, [1, 1, 1, 1, 1, 1, 1, 1], [1, 2, 3, 1, 2, 3, 1, 2]),
])
def test_autoreset_masks_and_episode_statistics(autoreset, valid, rewards):
    env = GymnasiumEnv("mdpo-test/Countdown-v0", 2, seed=0, device=CPU, autoreset=autoreset)
    steps = _steps(env, 8)
    assert [int(s.valid[0]) for s in steps] == valid
    assert [float(s.reward[0]) for s in steps] == rewards
    ends = [t for t, s in enumerate(steps) if s.episode_end[0]]
    assert ends == ([2, 6] if autoreset == AutoresetMode.NEXT_STEP else [2, 5])
    assert all(float(steps[t].episode_return[0]) == 6.0 and float(steps[t].episode_length[0]) == 3.0 for t in ends)


@pytest.mark.parametrize("autoreset, expected", [
    # r = 1 2 3 | (reset) 1, values 0.5, bootstrap 0.5, gamma 0.9, lambda 0.8, by hand:
    # A4 = 1 + .45 - .5 = .95; A3 = 0 (not a transition); A2 = 3 - .5 = 2.5 (terminal);
    # A1 = 1.95 + .72 * 2.5 = 3.75; A0 = .95 + .72 * 3.75 = 3.65
    (AutoresetMode.NEXT_STEP, [3.65, 3.75, 2.5, 0.0, 0.95]),
    # r = 1 2 3 | 1 2: A4 = 2 + .45 - .5 = 1.95; A3 = .95 + .72 * 1.95 = 2.354; A2..A0 as above
    (AutoresetMode.SAME_STEP, [3.65, 3.75, 2.5, 2.354, 1.95]),
])
def test_gae_on_both_autoreset_kinds(autoreset, expected):
    env = GymnasiumEnv("mdpo-test/Countdown-v0", 1, seed=0, device=CPU, autoreset=autoreset)
    steps = _steps(env, 5)
    stack = lambda name: torch.stack([getattr(s, name) for s in steps])  # noqa: E731  (T, N)
    values = torch.full((5, 1), 0.5)
    adv, returns = gae(stack("reward"), values, stack("done"), stack("valid"), torch.full((1,), 0.5), 0.9, 0.8)
    assert adv[:, 0].tolist() == pytest.approx(expected)
    assert torch.equal(returns, adv + values)


def test_seed_split_reseeds_every_reset_within_its_split():
    def levels(split, seed=3):
        env = GymnasiumEnv("mdpo-test/Countdown-v0", 4, seed, CPU, seeds=SeedSplit(10, 5, split))
        return [int(level) for s in _steps(env, 40) for level in s.obs[:, 0]]

    train, test = levels("train"), levels("test")
    assert set(train) <= set(range(10, 15)) and len(set(train)) == 5  # autoresets drew new training seeds
    assert not set(test) & set(range(10, 15)) and len(set(test)) > 20
    assert levels("train") == train  # the run seed fixes the draws
    assert levels("train", seed=4) != train


def test_families_and_observations():
    cases = {"CartPole-v1": ((4,), torch.float32, "vector"), "MinAtar/Breakout-v1": ((4, 10, 10), torch.uint8, "grid"),
             "MiniGrid-DoorKey-5x5-v0": ((3, 7, 7), torch.uint8, "grid")}
    for game, (shape, dtype, kind) in cases.items():
        cfg = EnvConfig(game=game, num_levels=0)
        assert family_of(cfg) == "gymnasium"
        env = make_env(cfg, 3, seed=1, device=CPU)
        obs = env.reset()
        step = env.step(torch.zeros(3, dtype=torch.long))
        env.close()
        assert (env.obs_shape, env.obs_kind) == (shape, kind)
        assert obs.shape == step.obs.shape == (3, *shape) and obs.dtype == dtype
    assert obs.max() <= 10  # MiniGrid's object codes, not pixels


def test_envpool_atari_task():
    cfg = EnvConfig(game="Pong-v5", num_levels=0, num_threads=1)
    assert family_of(cfg) == "envpool"
    env = make_env(cfg, 2, seed=1, device=CPU)
    obs = env.reset()
    step = env.step(torch.zeros(2, dtype=torch.long))
    env.close()
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == torch.uint8 and env.obs_kind == "pixels"
    assert step.score is not None and step.game_over is not None  # statistics count the game, not lives
    with pytest.raises(MdpoError, match="no train/test level split"):
        make_env(EnvConfig(game="Pong-v5", num_levels=10), 1, seed=1, device=CPU)


def test_envpool_tasks_step_side_by_side_as_one_by_one():
    # Atari through send/recv (``step_all``): the same steps, lives and all, as stepping each env alone
    def run(together):
        envs = [make_env(EnvConfig(game="Breakout-v5", num_levels=0, num_threads=1), 2, seed=s, device=CPU)
                for s in (1, 2)]
        for env in envs:
            env.reset()
        g, steps = torch.Generator().manual_seed(0), []
        for _ in range(150):
            actions = torch.randint(0, 4, (2, 2), generator=g)
            steps += step_all(envs, actions) if together else [env.step(a) for env, a in zip(envs, actions)]
        for env in envs:
            env.close()
        return steps

    together, alone = run(True), run(False)
    assert any(step.done.any() for step in alone) and not all(step.valid.all() for step in alone)  # lives lost
    for a, b in zip(together, alone):
        for x, y in zip(a, b):
            assert torch.equal(x, y)


class _PackedOnCpu(DeviceStaging):
    """DeviceStaging's CUDA path (packed copies) with plain CPU buffers, to check the packing here."""

    def __init__(self):
        super().__init__(CPU)
        self.pinned = True

    def stage(self, name, array):
        return torch.from_numpy(array.copy())

    def to_device(self, *buffers):
        return list(buffers)


@pytest.mark.parametrize("lives", [False, True])
def test_the_packed_copy_gives_the_steps_of_the_direct_one(lives):
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 255, (4, 3, 8, 8), dtype=np.uint8)
    arrays = [rng.normal(size=4).astype(np.float32), rng.random(4) > 0.5, rng.random(4) > 0.5]
    if lives:
        arrays += [rng.normal(size=4).astype(np.float32), rng.random(4) > 0.5]
    direct, packed = DeviceStaging(CPU).step(obs, *arrays), _PackedOnCpu().step(obs, *arrays)
    for a, b in zip(direct, packed):
        assert (a is None) == (b is None) and (a is None or (a.dtype == b.dtype and torch.equal(a, b)))
    assert (direct.score is not None) == lives


def test_layout_overlap_warning():
    warning = split_warning(EnvConfig(game="MiniGrid-DoorKey-5x5-v0", num_levels=200))
    assert warning and "distinct layouts" in warning  # 5x5 has few layouts: test levels repeat training ones
    assert split_warning(EnvConfig(game="MiniGrid-MultiRoom-N2-S4-v0", num_levels=50)) is None
    assert split_warning(EnvConfig(game="CartPole-v1", num_levels=50)) is None  # cannot hash: no warning


@pytest.mark.parametrize("game, message", [
    ("Pendulum-v1", "Pendulum-v1 has Box actions; mdpo supports Discrete actions only"),
    ("mdpo-test/DictObs-v0", "Dict observations need a wrapper"),
    ("pacman", "unknown game 'pacman'"),
])
def test_unsupported_games_are_one_line_errors(game, message):
    with pytest.raises(MdpoError, match=message) as info:
        resolve("smoke", "ppo", {"env.game": game, "env.num_levels": 0})
    assert "\n" not in str(info.value)


def test_a_gymnasium_run_resumes_evaluates_and_reports(tmp_path, capsys):
    from mdpo.analysis.report import write_report
    from mdpo.cli import main
    from mdpo.logger import read_metrics

    flags = ["--preset", "cartpole", "--total_steps", "512", "--eval.final_episodes", "3", "--out_dir",
             str(tmp_path / "runs"), "--quiet", "--torch_threads", "1", "--env.num_levels", "20"]
    assert main(["train", *flags, "--algo", "mdpo", "--run_name", "cp"]) == 0
    assert main(["train", "--resume", str(tmp_path / "runs" / "cp"), "--total_steps", "1024", "--quiet"]) == 0
    run = tmp_path / "runs" / "cp"
    assert [r["global_step"] for r in read_metrics(run) if "charts/update" in r] == [256, 512, 768, 1024]
    assert (run / "eval-512.json").exists() and (run / "eval.json").exists()
    assert main(["eval", str(run), "--episodes", "2"]) == 0
    assert main(["robustness", str(run)]) == 2
    assert "works on colour frames; " in capsys.readouterr().err
    report = write_report([tmp_path / "runs"], tmp_path / "report").read_text()
    assert "CartPole-v1" in report
