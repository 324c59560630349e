import json

import pytest
import torch
from torch import nn

from mdpo.cli import main
from mdpo.demo import ALGOS, METRICS, SETTINGS, colour_reliance, format_table, outcomes, plot, summarize
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
    """Three seeds: PPO's A follows the colour in all; MDPO's A follows the coin in seeds 1 and 2,
    and B caught A's shortcut in seed 3 only."""
    rows = []
    for seed, (anti, reliance, b) in enumerate([(0.0, 1.0, 0.1), (0.2, 0.8, 0.3), (0.1, 0.9, 0.5)], start=1):
        rows.append({"algo": "ppo", "seed": seed, "anti_return": anti, "correlated_return": 1.0,
                     "colour_reliance": reliance})
        rows.append({"algo": "mdpo", "seed": seed, "anti_return": 1 - anti, "correlated_return": 1.0,
                     "colour_reliance": 1 - reliance if seed < 3 else 0.6, "b_colour_reliance": b})
    return rows


def test_summary_is_the_mean_and_a_bootstrap_interval_inside_the_seeds_range():
    summary = summarize(_results())
    cell = summary["ppo"]["anti_return"]
    assert cell["seeds"] == 3 and cell["mean"] == pytest.approx(0.1)
    # three seeds: each extreme is drawn three times with probability 1/27 > 2.5%
    assert (cell["low"], cell["high"]) == pytest.approx((0.0, 0.2))
    assert summary["mdpo"]["colour_reliance"]["mean"] == pytest.approx((0.0 + 0.2 + 0.6) / 3)
    assert summary["mdpo"]["b_colour_reliance"]["mean"] == pytest.approx(0.3)
    assert "b_colour_reliance" not in summary["ppo"]
    for algo in ALGOS:
        for key in METRICS:
            values = [r[key] for r in _results() if r["algo"] == algo]
            c = summary[algo][key]
            assert 0 <= min(values) <= c["low"] <= c["mean"] <= c["high"] <= max(values) <= 1


def test_outcomes_count_seeds_by_colour_reliance():
    assert outcomes(_results()) == {"ppo": {"seeds": 3, "a_follows_coin": 0, "b_caught_shortcut": None},
                                    "mdpo": {"seeds": 3, "a_follows_coin": 2, "b_caught_shortcut": 1}}


def test_table_has_a_row_per_algorithm_and_counts_outcomes():
    results = _results()
    table = format_table(summarize(results), outcomes(results), 3, 40_000, 1.0, 0.5)
    lines = table.splitlines()
    assert len(lines) == 3 + len(ALGOS)
    assert "correlated levels, B on mixed; 3 seeds" in lines[0] and "95% bootstrap interval" in lines[0]
    assert "colour reliance < 0.5" in lines[1] and "colour reliance >= 0.5" in lines[1]
    assert all(title in lines[2] for title in [*METRICS.values(), "A follows coin", "B caught shortcut"])
    assert lines[3].startswith("PPO") and "0.10 [0.00, 0.20]" in lines[3] and lines[3].split()[-2:] == ["0/3", "-"]
    assert lines[4].startswith("MDPO") and "0.90 [0.80, 1.00]" in lines[4] and lines[4].split()[-2:] == ["2/3", "1/3"]


def test_one_seed_has_no_interval(tmp_path):
    results = [r for r in _results() if r["seed"] == 1]
    summary = summarize(results)
    assert "0.00 " in format_table(summary, outcomes(results), 1, 400, 1.0, 0.5).splitlines()[3]
    path = plot(summary, results, "one seed", tmp_path / "demo.png")
    assert path.stat().st_size > 0


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
    assert data["table"] in printed and len(data["table"].splitlines()) == 3 + len(ALGOS)
    assert len(data["runs"]) == seeds * len(ALGOS)
    for algo in ALGOS:
        assert {run["seed"] for run in data["runs"] if run["algo"] == algo} == set(range(1, seeds + 1))
        for key in METRICS:
            cell = data["summary"][algo][key]
            assert cell["seeds"] == seeds and 0 <= cell["low"] <= cell["mean"] <= cell["high"] <= 1
        # both learn their training levels; the toy's premise: A alone takes the colour shortcut
        assert data["summary"][algo]["correlated_return"]["mean"] > 0.9
    assert data["summary"]["ppo"]["colour_reliance"]["mean"] > 0.9
    assert data["outcomes"] == outcomes(data["runs"])
    assert all((out / f"{algo}-s{seed}" / "eval.json").exists() for algo in ALGOS for seed in range(1, seeds + 1))
