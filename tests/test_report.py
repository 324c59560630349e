"""The report over synthetic run folders (config, metrics and evaluations written as train.py and the
probes write them): labels, sections, figures, self-contained HTML, no warnings."""

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from mdpo.analysis.collect import Series, find_runs
from mdpo.analysis.curves import band, smoothed
from mdpo.analysis.labels import label_runs, short_value
from mdpo.analysis.report import write_report
from mdpo.cli import main
from mdpo.config import dumps
from mdpo.envs import score_range
from mdpo.resolve import resolve


def write_run(root: Path, game: str = "coinrun", algo: str = "ppo", seed: int = 1, preset: str = "smoke",
              evals: int = 12, done: bool = True, probes: bool = False, name: str = "", **overrides) -> Path:
    """A run folder as train.py leaves it (plus robustness.json and tsne.json with ``probes``):
    ``evals`` periodic evaluations, test returns rising towards a level set by algorithm and seed."""
    cfg = resolve(preset, algo, {"env.game": game, "seed": seed, **overrides})
    path = root / (name or f"{game}-{algo}-s{seed}")
    path.mkdir(parents=True)
    (path / "config.json").write_text(dumps(cfg))
    rng = np.random.default_rng(seed)
    k = cfg.cohort.num_agents
    level = (6.0 if k > 1 else 4.0) + 0.5 * seed
    rows, step = [], cfg.total_steps // evals
    for i in range(1, evals + 1):
        agents = [{"eval/train_return": level * (1 - math.exp(-3 * i / evals)) + 2 + rng.normal(0, 0.3),
                   "eval/test_return": level * (1 - math.exp(-3 * i / evals)) + rng.normal(0, 0.3),
                   "distill/kl": 0.05 * math.exp(-i / evals) + rng.uniform(0, 0.01)} for _ in range(k)]
        for a in agents:
            a["eval/gap"] = a["eval/train_return"] - a["eval/test_return"]
        row = {"global_step": i * step, "charts/episodic_return": agents[0]["eval/train_return"],
               **{m: float(np.mean([a[m] for a in agents])) for m in agents[0] if k > 1 or m != "distill/kl"},
               "bound/robust_kl_test": 0.02 / k + rng.uniform(0, 0.005)}
        if k > 1:
            row.update({f"{m}/agent{j}": a[m] for j, a in enumerate(agents) for m in a})
            row.update({"bound/peer_tv": 0.1 * math.exp(-i / evals), "distill/alpha": cfg.cohort.alpha})
        rows.append(row)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if done:
        summary = {m: v for m, v in rows[-1].items() if m.startswith("eval/")}
        (path / "eval.json").write_text(json.dumps({"global_step": rows[-1]["global_step"], "summary": summary}))
    if probes:
        stats = {f: {"kl_mean": 0.1 / k + 0.01 * seed, "kl_std": 0.08 / k, "feature_mean": 0.2, "feature_std": 0.1}
                 for f in ("conv", "jitter")}
        settings = {"frames": 4, "perturbations": 3, "seed": 0, "families": ["conv", "jitter"]}
        (path / "robustness.json").write_text(json.dumps(
            {"global_step": cfg.total_steps, "settings": settings, "summary": stats, "agents": [stats] * k}))
        clouds = rng.normal(0, 1.0 / k, size=(2, 10, 2)) + np.array([[[0, 0]], [[5, 5]]])
        (path / "tsne.json").write_text(json.dumps(
            {"global_step": cfg.total_steps, "agent": 0, "settings": {**settings, "families": ["conv"]},
             "spread": 0.3 / k, "spread_per_frame": [0.3 / k] * 2,
             "embedding": {"originals": clouds.mean(1).tolist(), "perturbed": clouds.tolist()}}))
    return path


def _labels(tmp_path: Path, configs: list[dict]) -> tuple[list[str], dict]:
    """The labels of runs with these configs, in their order, and the abbreviations used."""
    for i, config in enumerate(configs):
        write_run(tmp_path, evals=2, name=f"run{i:02d}", **config)
    runs, _ = find_runs([tmp_path], tmp_path / "report")
    used = label_runs(runs)
    return [run.label for run in sorted(runs, key=lambda run: run.path.name)], used


@pytest.mark.parametrize("configs, labels, used", [
    # seeds alone: the algorithm
    ([{"seed": 1}, {"seed": 2}, {"algo": "mdpo"}], ["ppo", "ppo", "mdpo"], {}),
    # a swept alpha names every mdpo run; what differs only between games (the demo's toy) does not
    ([{"algo": "mdpo", "cohort.alpha": 0.5}, {"algo": "mdpo"}, {"algo": "ppo"},
      {"game": "coins", "algo": "mdpo", "preset": "paper", "env.num_envs": 32,
       "cohort.agent_env": [{}, {"agreement": 0.5}]},
      {"game": "coins", "algo": "ppo", "preset": "paper", "env.num_envs": 32}],
     ["mdpo α=0.5", "mdpo α=1", "ppo", "mdpo α=1", "ppo"], {"α": "cohort.alpha"}),
    ([{"algo": "mdpo", "cohort.temperature": 2.0}, {"algo": "mdpo"}], ["mdpo T=2", "mdpo T=1"],
     {"T": "cohort.temperature"}),
    ([{"net.width": 2}, {}], ["ppo width=2", "ppo width=1"], {"width": "net.width"}),
    # presets that differ within a game name the runs instead of their many differing fields
    ([{"preset": "ppo-scaled", "total_steps": 2048, "env.num_envs": 8}, {"total_steps": 2048}],
     ["ppo [ppo-scaled]", "ppo [smoke]"], {"[name]": "preset"}),
])
def test_labels_name_only_what_differs_within_a_game(tmp_path, configs, labels, used):
    assert _labels(tmp_path, configs) == (labels, used)


def test_short_values():
    assert [short_value(v) for v in (40_000, 50_000_000, 2_500_000, 1024, 0.5, 1.0, 5e-4, True, "crop")] == \
        ["40k", "50M", "2.5M", "1024", "0.5", "1", "0.0005", "on", "crop"]
    assert short_value([{}, {"agreement": 0.5}]) == "[-, agreement:0.5]"


def test_band_is_a_bootstrap_over_the_seeds_present():
    seeds = [Series(np.array([10.0, 20, 30]), np.array([0.0, 1, 2])),
             Series(np.array([10.0, 20, 30]), np.array([2.0, 3, 4])),
             Series(np.array([10.0, 20]), np.array([4.0, 8]))]  # still running: no value at step 30
    b = band(seeds)
    assert b["steps"] == [10, 20, 30]
    assert b["mean"] == pytest.approx([2.0, 4.0, 3.0])
    for low, mean, high, present in zip(b["low"], b["mean"], b["high"], ([0, 2, 4], [1, 3, 8], [2, 4])):
        assert min(present) <= low < mean < high <= max(present)
    assert band(seeds) == b  # seeded
    one = band(seeds[:1])
    assert one["mean"] == [0, 1, 2] and all(math.isnan(x) for x in one["low"])


def test_smoothing_keeps_short_curves_and_the_trend_of_long_ones():
    steps = np.arange(90.0)
    short = Series(steps[:40], np.arange(40.0))
    assert smoothed(short) is short
    noisy = smoothed(Series(steps, steps + np.where(steps % 2, 1.0, -1.0)))  # window 3
    assert noisy.values[1:-1] == pytest.approx(steps[1:-1] + np.where(steps[1:-1] % 2, -1 / 3, 1 / 3))
    assert np.array_equal(noisy.steps, steps)


def _report(tmp_path: Path, runs: list[dict]) -> tuple[str, str, dict]:
    for config in runs:
        write_run(tmp_path / "runs", **config)
    out = tmp_path / "report"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's layout and font warnings included
        md = write_report([tmp_path / "runs"], out)
    return md.read_text(), (out / "report.html").read_text(), json.loads((out / "report.json").read_text())


def _self_contained(html: str) -> bool:
    sources = re.findall(r"""(?:src|href)\s*=\s*['"]?([^'" >]+)""", html)
    return bool(sources) and all(s.startswith("data:image/png;base64,") for s in sources)


def test_report_over_games_algorithms_and_seeds(tmp_path):
    runs = [{"game": game, "algo": algo, "seed": seed, "probes": True}
            for game in ("coinrun", "bigfish") for algo in ("ppo", "mdpo") for seed in (1, 2)]
    runs.append({"game": "coinrun", "algo": "mdpo", "seed": 3, "done": False, "evals": 5})
    md, html, data = _report(tmp_path, runs)
    headings = re.findall(r"^## (.+)$", md, re.M)
    assert headings == ["Final returns (Figure 3)", "Learning curves", "Aggregate normalised test scores",
                        "Aggregate normalised train-test gap", "Robustness (Table 1)", "t-SNE spread (Figure 4)",
                        "Runs"]
    figures = re.findall(r"^!\[Figure (\d+)\]\(([^)]+)\)", md, re.M)
    assert [name for _, name in figures] == [
        "final_test.png", "curve-eval-test_return.png", "curve-eval-train_return.png", "curve-eval-gap.png",
        "curve-distill-kl.png", "curve-bound-peer_tv.png", "curve-bound-robust_kl_test.png",
        "agents-eval-test_return.png", "agents-eval-train_return.png", "aggregates.png", "gap-aggregates.png",
        "robustness.png", "tsne.png"]
    assert [int(n) for n, _ in figures] == list(range(1, len(figures) + 1))
    assert all((tmp_path / "report" / name).stat().st_size > 0 for _, name in figures)
    assert _self_contained(html) and html.count("<img") == len(figures)
    assert set(data["curves"]) == {"eval/test_return", "eval/train_return", "eval/gap", "bound/peer_tv",
                                   "bound/robust_kl_test", "distill/kl"}
    assert set(data["curves"]["eval/test_return"]) == {"coinrun", "bigfish"}
    assert set(data["curves"]["bound/peer_tv"]["coinrun"]) == {"mdpo"}  # a cohort metric: no ppo line
    mdpo = next(r for r in data["final"] if r["game"] == "coinrun" and r["algorithm"] == "mdpo")
    assert mdpo["seeds"] == [1, 2, 3] and min(mdpo["test_returns"]) <= mdpo["test_return"][1]
    assert mdpo["test_return"][2] <= max(mdpo["test_returns"])
    assert "Labels" not in headings and data["labels"] == {}


def test_the_gap_is_aggregated_like_the_scores(tmp_path):
    """IQM of the normalised train-test gap over 4 seeds = the mean of the middle two, by hand; and P(X < Y)
    of the gap: MDPO's runs (gap 2 by construction, as PPO's) against PPO's."""
    md, _, data = _report(tmp_path, [{"algo": algo, "seed": seed} for algo in ("ppo", "mdpo") for seed in (1, 2, 3, 4)])
    low, high = score_range(resolve("smoke", "ppo", {"env.game": "coinrun"}).env)
    for row in data["gap_aggregates"]:
        gaps = []
        for seed in (1, 2, 3, 4):
            summary = json.loads((tmp_path / "runs" / f"coinrun-{row['algorithm']}-s{seed}" / "eval.json")
                                 .read_text())["summary"]
            gaps.append((summary["eval/train_return"] - summary["eval/test_return"]) / (high - low))
        assert row["iqm"][0] == pytest.approx(np.mean(sorted(gaps)[1:3]))
        assert row["iqm"][1] <= row["iqm"][0] <= row["iqm"][2]
    pairs = {(p["x"], p["y"]): p["p"][0] for p in data["gap_improvement"]}
    assert pairs[("mdpo", "ppo")] == pytest.approx(1 - pairs[("ppo", "mdpo")])
    assert "| X | Y | tasks | P(gap X < gap Y) |" in md
    assert score_range(resolve("minigrid", "ppo", {}).env) == (0.0, 1.0)


def test_report_of_one_run_and_the_label_key(tmp_path):
    md, html, data = _report(tmp_path, [{"algo": "mdpo", "cohort.alpha": 0.5}])
    row = next(line for line in md.splitlines() if line.startswith("| coinrun | hard | mdpo |"))
    assert "[" not in row  # one seed: a mean without an interval
    assert data["final"][0]["test_return"][1] is None and data["labels"] == {} and _self_contained(html)
    two = [{"algo": "mdpo", "cohort.alpha": 0.5, "name": "half"}, {"algo": "mdpo"}]
    md, html, data = _report(tmp_path / "two", two)
    assert "| α | cohort.alpha | weight of the distillation term |" in md
    assert {r["algorithm"] for r in data["final"]} == {"mdpo α=0.5", "mdpo α=1"}


def test_tsne_without_points_is_left_out_of_the_picture(tmp_path):
    path = write_run(tmp_path / "runs", probes=True)
    tsne = json.loads((path / "tsne.json").read_text())
    del tsne["embedding"]
    (path / "tsne.json").write_text(json.dumps(tsne))
    write_report([tmp_path / "runs"], tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "t-SNE spread (Figure 4)" in md and "holds no 2-D points" in md and "tsne.png" not in md


def test_report_command_prints_the_tables_without_figures(tmp_path, capsys):
    write_run(tmp_path / "runs", algo="mdpo")
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    printed = capsys.readouterr().out
    assert "## Final returns (Figure 3)" in printed and "| coinrun | hard | mdpo |" in printed
    assert "![" not in printed and "Figure 1." not in printed
    assert printed.rstrip().endswith("report.html")
