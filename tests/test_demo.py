import json

import pytest
import torch
from torch import nn

from mdpo.cli import main
from mdpo.demo import ALGOS, METRICS, SETTINGS, colour_reliance, format_table, summarize
from mdpo.envs.coins import AGENT_RGB, COIN_RGB, HEIGHT

CPU = torch.device("cpu")


class ColourFollower(nn.Module):
    """Right on red, left on cyan: reads only the top-left pixel."""

    def forward(self, obs):
        red = obs[:, 0, 0, 0] > obs[:, 1, 0, 0]
        logits = torch.full((len(obs), 3), -10.0)
        logits[:, 2] = torch.where(red, 10.0, -10.0)
        logits[:, 0] = torch.where(red, -10.0, 10.0)
        return logits, torch.zeros(len(obs))


class CoinFollower(nn.Module):
    """Towards the coin, wherever it is; stays a third of the time."""

    def forward(self, obs):
        row = obs[:, :, HEIGHT // 2].permute(0, 2, 1)
        coin = (row == COIN_RGB).all(-1).float().argmax(-1)
        agent = (row == AGENT_RGB).all(-1).float().argmax(-1)
        logits = torch.full((len(obs), 3), -10.0)
        logits[:, 1] = 0.0
        logits[torch.arange(len(obs)), 1 + torch.sign(coin - agent).long()] = float(torch.log(torch.tensor(2.0)))
        return logits, torch.zeros(len(obs))


def test_colour_reliance_tells_colour_from_coin():
    assert colour_reliance(ColourFollower(), 200, seed=0, device=CPU) == pytest.approx(1.0, abs=1e-3)
    # staying counts neither way: a coin follower that often stays still scores 0
    assert colour_reliance(CoinFollower(), 200, seed=0, device=CPU) == pytest.approx(0.0, abs=1e-3)


def _results():
    rows = []
    for seed, (anti, reliance) in enumerate([(0.0, 1.0), (0.2, 0.8), (0.1, 0.9)], start=1):
        rows.append({"algo": "ppo", "seed": seed, "anti_return": anti, "correlated_return": 1.0,
                     "colour_reliance": reliance})
        rows.append({"algo": "mdpo", "seed": seed, "anti_return": 1 - anti, "correlated_return": 1.0,
                     "colour_reliance": 1 - reliance})
    return rows


def test_summary_is_mean_and_t_interval_over_seeds():
    summary = summarize(_results())
    cell = summary["ppo"]["anti_return"]
    assert cell["seeds"] == 3 and cell["mean"] == pytest.approx(0.1)
    half = 4.302653 * 0.1 / 3 ** 0.5  # t(0.975, 2) * sd / sqrt(n)
    assert (cell["low"], cell["high"]) == pytest.approx((0.1 - half, 0.1 + half), abs=1e-5)
    assert summary["mdpo"]["colour_reliance"]["mean"] == pytest.approx(0.1)


def test_table_has_a_row_per_algorithm_and_a_column_per_metric():
    table = format_table(summarize(_results()), 3, 40_000, 1.0, 0.5)
    lines = table.splitlines()
    assert len(lines) == 2 + len(ALGOS)
    assert "correlated levels, B on mixed; 3 seeds" in lines[0] and "95% t-interval" in lines[0]
    assert all(title in lines[1] for title in METRICS.values())
    assert lines[2].startswith("PPO") and "0.10 [" in lines[2]
    assert lines[3].startswith("MDPO") and "0.90 [" in lines[3]


@pytest.mark.parametrize("argv, expected", [
    (["--a-levels", "sometimes"], "bad agreement 'sometimes'"),
    (["--seeds", "0"], "must be at least 1"),
])
def test_bad_demo_arguments_are_one_line_errors(capsys, tmp_path, argv, expected):
    assert main(["demo", "--out", str(tmp_path / "d"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err


def test_demo_refuses_a_used_folder(capsys, tmp_path):
    (tmp_path / "old.txt").write_text("x")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_demo_writes_its_numbers_and_plot(capsys, tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads((out / "demo.json").read_text())
    seeds = SETTINGS["quick"]["seeds"]
    assert (out / "demo.png").stat().st_size > 0
    assert data["table"] in printed and len(data["table"].splitlines()) == 2 + len(ALGOS)
    assert len(data["runs"]) == seeds * len(ALGOS)
    for algo in ALGOS:
        assert {run["seed"] for run in data["runs"] if run["algo"] == algo} == set(range(1, seeds + 1))
        for key in METRICS:
            cell = data["summary"][algo][key]
            assert cell["seeds"] == seeds and cell["low"] <= cell["mean"] <= cell["high"]
        # both learn their training levels; the toy's premise: A alone takes the colour shortcut
        assert data["summary"][algo]["correlated_return"]["mean"] > 0.9
    assert data["summary"]["ppo"]["colour_reliance"]["mean"] > 0.9
    assert all((out / f"{algo}-s{seed}" / "eval.json").exists() for algo in ALGOS for seed in range(1, seeds + 1))
