import pytest
import torch

from mdpo.config import EnvConfig
from mdpo.envs import make_env
from mdpo.envs.coins import AGENT_RGB, AGREEMENTS, COIN_RGB, HEIGHT, MAX_STEPS, STAY, CoinsEnv, parse_agreement
from mdpo.errors import MdpoError
from mdpo.resolve import agent_env, resolve
from mdpo.trainer import Trainer

CPU = torch.device("cpu")
RED = torch.tensor([255, 0, 0], dtype=torch.uint8)


def read_frames(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """From pixels alone: (coin side, colour side) per frame, +1 right / -1 left."""
    row = frames[:, :, HEIGHT // 2].permute(0, 2, 1)  # (N, W, 3)
    coin = (row == COIN_RGB).all(-1).float().argmax(-1)
    agent = (row == AGENT_RGB).all(-1).float().argmax(-1)
    red = (frames[:, :, 0, 0] == RED).all(-1)
    return torch.sign(coin - agent), torch.where(red, 1, -1)


def test_frames_show_the_level():
    env = CoinsEnv(64, 0.5, seed=0, device=CPU)
    obs = env.reset()
    assert obs.dtype == torch.uint8 and obs.shape == (64, *env.obs_shape)
    coin_side, colour_side = read_frames(obs)
    assert torch.equal(coin_side, env.coin_side) and torch.equal(colour_side, env.colour_side)


def test_reaching_the_coin_pays_and_starts_a_new_level():
    env = CoinsEnv(256, 1.0, seed=1, device=CPU)
    env.reset()
    towards = STAY + env.coin_side
    distance = (env.coin - env.agent).abs()
    first_done = torch.full((256,), -1)
    for t in range(1, MAX_STEPS + 1):
        step = env.step(towards)
        assert step.valid.all()
        fresh = step.done & (first_done < 0)
        assert (step.reward[fresh] == 1).all() and (step.reward[~step.done] == 0).all()
        first_done[fresh] = t
    assert torch.equal(first_done, distance)  # each env ended exactly when it reached its coin


def test_walking_away_times_out_without_reward():
    env = CoinsEnv(128, 1.0, seed=2, device=CPU)
    env.reset()
    away = STAY - env.coin_side
    for t in range(1, MAX_STEPS + 1):
        step = env.step(away)
        assert step.reward.sum() == 0
        assert bool(step.done.all()) == (t == MAX_STEPS)
    assert (env.t == 0).all()  # every env restarted on a fresh level


@pytest.mark.parametrize("agreement", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_colour_agrees_with_coin_side_at_the_requested_rate(agreement):
    n = 20_000
    env = CoinsEnv(n, agreement, seed=3, device=CPU)
    coin_side, colour_side = read_frames(env.reset())
    agree = (coin_side == colour_side).float().mean().item()
    tolerance = 4 * (0.25 / n) ** 0.5  # four standard deviations of a proportion
    assert abs(agree - agreement) <= tolerance
    assert abs((coin_side > 0).float().mean().item() - 0.5) <= tolerance


def test_new_levels_after_resets_keep_the_rate():
    env = CoinsEnv(500, 0.25, seed=4, device=CPU)
    env.reset()
    agree = []
    for _ in range(40):
        step = env.step(torch.full((500,), STAY))
        coin_side, colour_side = read_frames(step.obs)
        agree.append((coin_side == colour_side)[step.done].float())
    rate = torch.cat(agree).mean().item()
    assert abs(rate - 0.25) < 0.03


def test_seeded_and_deterministic():
    def frames(seed):
        env = CoinsEnv(32, 0.5, seed, CPU)
        out = [env.reset()]
        for _ in range(15):
            out.append(env.step(torch.full((32,), STAY + 1)).obs)
        return torch.stack(out)

    assert torch.equal(frames(5), frames(5))
    assert not torch.equal(frames(5), frames(6))


def test_test_split_reverses_the_colour():
    cfg = EnvConfig(game="coins", agreement=0.9)
    assert make_env(cfg, 4, 0, CPU, "train").agreement == 0.9
    assert make_env(cfg, 4, 0, CPU, "test").agreement == pytest.approx(0.1)


def test_agreement_names_and_errors():
    assert [parse_agreement(name) for name in AGREEMENTS] == [1.0, 0.5, 0.0]
    assert parse_agreement("0.3") == 0.3
    for bad in ("sometimes", "1.5", "-0.1"):
        with pytest.raises(MdpoError, match="bad agreement"):
            parse_agreement(bad)
    with pytest.raises(MdpoError, match="env.agreement"):
        resolve("smoke", "ppo", {"env.game": "coins", "env.agreement": 2.0})


def test_each_agent_trains_and_is_evaluated_on_its_own_distribution(tmp_path):
    cfg = resolve("smoke", "mdpo", {
        "env.game": "coins", "env.agreement": 1.0, "cohort.agent_env": [{}, {"agreement": 0.0}],
        "env.num_envs": 64, "ppo.num_steps": 8, "net.hidden": 16, "eval.bound": False, "torch_threads": 1,
    })
    trainer = Trainer(cfg, tmp_path)
    trainer.collect()
    frames = trainer.rollout.obs.flatten(1, 2)  # (K, T*N, C, H, W): every frame each agent trained on
    rates = []
    for agent_frames in frames:
        coin_side, colour_side = read_frames(agent_frames)
        rates.append((coin_side == colour_side).float().mean().item())
    assert rates == [1.0, 0.0]
    # evaluate_cohort evaluates agent i on agent_env(cfg, i): its own levels, and their reverse as test
    splits = [[make_env(agent_env(cfg, i), 1, 0, CPU, s).agreement for s in ("train", "test")] for i in range(2)]
    assert splits == [[1.0, 0.0], [0.0, 1.0]]
