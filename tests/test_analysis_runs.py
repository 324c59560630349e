"""The analysis commands and the report over tiny real runs (bossfight, whose random-policy episodes
are short, so evaluations take seconds on a CPU)."""

import json
import re
import shutil

import pytest
import torch
from PIL import Image

from mdpo.analysis.report import write_report
from mdpo.cli import main
from mdpo.envs.frames import held_out_frames
from mdpo.resolve import resolve
from mdpo.runs import load_checkpoint
from mdpo.train import train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A PPO and an MDPO run: 4 updates, evaluated after 2 and at the end."""
    out = tmp_path_factory.mktemp("runs")
    made = {}
    for algo in ("ppo", "mdpo"):
        cfg = resolve("smoke", algo, {
            "env.game": "bossfight", "env.num_envs": 2, "ppo.num_steps": 16, "ppo.num_minibatches": 2,
            "ppo.epochs": 1, "total_steps": 128, "checkpoint_every": 2, "eval.every": 2, "eval.episodes": 1,
            "eval.final_episodes": 2, "out_dir": str(out), "run_name": f"bossfight-{algo}", "torch_threads": 1,
            "env.num_threads": 1, "net.hidden": 32,
        })
        made[algo] = train(cfg, progress=False)
    return made


def _error(capsys, argv):
    assert main(argv) == 2
    return capsys.readouterr().err.strip()


def test_held_out_frames_are_fixed_by_the_seed(runs):
    cfg = resolve("smoke", "ppo", {"env.game": "bossfight", "env.num_threads": 1})
    a = held_out_frames(cfg.env, 3, seed=4)
    assert a.shape == (3, 3, 64, 64) and a.dtype == torch.uint8
    assert torch.equal(a, held_out_frames(cfg.env, 3, seed=4))
    assert not torch.equal(a, held_out_frames(cfg.env, 3, seed=5))


def test_robustness_measures_every_agent_reproducibly(runs, capsys):
    argv = ["robustness", str(runs["ppo"]), str(runs["mdpo"]), "--frames", "4", "--perturbations", "3",
            "--families", "conv,hue", "--device", "cpu"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    first = json.loads((runs["mdpo"] / "robustness.json").read_text())
    assert len(first["agents"]) == 2 and set(first["summary"]) == {"conv", "hue"}
    assert first["settings"]["frames"] == 4 and first["settings"]["perturbations"] == 3
    assert re.search(r"bossfight-mdpo\s+1\s", table) and re.search(r"bossfight-ppo\s+0\s", table)
    assert main(argv) == 0
    assert json.loads((runs["mdpo"] / "robustness.json").read_text()) == first


def test_robustness_errors_are_one_line(runs, capsys, tmp_path):
    assert "not an mdpo run folder" in _error(capsys, ["robustness", str(tmp_path)])
    assert "unknown perturbation family" in _error(capsys, ["robustness", str(runs["ppo"]), "--families", "blur"])
    assert "odd kernel" in _error(capsys, ["robustness", str(runs["ppo"]), "--kernel", "2"])


def test_tsne_writes_figure_and_spread(runs, tmp_path, capsys):
    out = tmp_path / "tsne.png"
    argv = ["tsne", str(runs["ppo"]), str(runs["mdpo"]), "--frames", "2", "--perturbations", "10", "--agent", "0",
            "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    assert Image.open(out).size[0] > Image.open(out).size[1]  # two panels side by side
    result = json.loads((runs["mdpo"] / "tsne.json").read_text())
    assert len(result["spread_per_frame"]) == 2 and 0 < result["spread"] < 2
    # the 2-D points, kept so that the report can draw the picture again
    assert len(result["embedding"]["originals"]) == 2 and len(result["embedding"]["originals"][0]) == 2
    assert [len(cloud) for cloud in result["embedding"]["perturbed"]] == [10, 10]
    assert "--agent 2 but" in _error(capsys, ["tsne", str(runs["mdpo"]), "--agent", "2", "--device", "cpu"])


def test_eval_gif(runs, capsys):
    assert main(["eval", str(runs["mdpo"]), "--episodes", "1", "--gif", "2", "--device", "cpu"]) == 0
    for agent in (0, 1):
        gif = Image.open(runs["mdpo"] / f"episodes-agent{agent}.gif")
        assert gif.size == (2 * 64 * 2, 64 * 2 + 14) and gif.n_frames >= 2
    assert "episodes-agent1.gif" in capsys.readouterr().out


def test_frozen_encoder_ablation(runs):
    assert main(["ablate", "frozen-encoder", "--from", str(runs["mdpo"]), "--agent", "1", "--total_steps", "64",
                 "--eval.every", "0", "--quiet"]) == 0
    run_dir = runs["mdpo"].parent / "bossfight-mdpo-frozen1"
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["algo"] == "frozen-mdpo" and cfg["cohort"]["num_agents"] == 1 and cfg["net"]["freeze_encoder"]
    assert (run_dir / "eval.json").exists()
    new, source = load_checkpoint(run_dir)["agents"], load_checkpoint(runs["mdpo"])["agents"]
    encoder = [k for k in new if k.startswith("0.encoder.")]
    assert encoder and all(torch.equal(new[k], source[k.replace("0.", "1.", 1)]) for k in encoder)
    assert not torch.equal(new["0.actor.weight"], source["1.actor.weight"])
    shutil.rmtree(run_dir)  # keep the report's inputs to the two runs


def test_report_over_runs(runs, tmp_path, capsys):
    # a third run still in progress: a copy without its final evaluation, another seed
    partial = runs["ppo"].parent / "bossfight-ppo-partial"
    shutil.copytree(runs["ppo"], partial)
    config = json.loads((partial / "config.json").read_text())
    (partial / "config.json").write_text(json.dumps({**config, "seed": 2}))
    (partial / "eval.json").unlink()
    metrics = (partial / "metrics.jsonl").read_text().splitlines()
    (partial / "metrics.jsonl").write_text("\n".join(m for m in metrics if json.loads(m)["global_step"] <= 64) + "\n")
    not_a_run = tmp_path / "notes"
    not_a_run.mkdir()

    out = tmp_path / "report"
    md = write_report([runs["ppo"].parent, not_a_run], out)
    assert md == out / "report.md"
    for name in ("report.md", "report.html", "report.json", "curve-eval-test_return.png", "curve-distill-kl.png",
                 "agents-eval-test_return.png", "final_test.png", "aggregates.png", "robustness.png", "tsne.png"):
        assert (out / name).stat().st_size > 0, name
    text = md.read_text()
    for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (out / image).exists(), image
    html = (out / "report.html").read_text()
    sources = re.findall(r"""(?:src|href)=['"]([^'"]+)""", html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "notes: not a run folder" in text and "notes" in capsys.readouterr().err

    data = json.loads((out / "report.json").read_text())
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in data["runs"]}
    ppo_eval = json.loads((runs["ppo"] / "eval.json").read_text())["summary"]
    assert by_name["bossfight-ppo"]["test_return"] == ppo_eval["eval/test_return"]
    last = [json.loads(m) for m in metrics if json.loads(m)["global_step"] == 64 and "eval/test_return" in m][0]
    assert by_name["bossfight-ppo-partial"]["done"] is False and by_name["bossfight-ppo-partial"]["step"] == 64
    assert by_name["bossfight-ppo-partial"]["test_return"] == last["eval/test_return"]
    ppo_final = next(f for f in data["final"] if f["algorithm"] == "ppo")
    assert ppo_final["seeds"] == [1, 2]
    assert {a["algorithm"] for a in data["aggregates"]} == {"ppo", "mdpo"}
    assert {(p["x"], p["y"]) for p in data["improvement"]} == {("ppo", "mdpo"), ("mdpo", "ppo")}
    assert "robustness.json" in by_name["bossfight-mdpo"] and "Robustness (Table 1)" in text
    assert "t-SNE spread (Figure 4)" in text and "embedding" in by_name["bossfight-mdpo"]["tsne.json"]
    assert "| algorithm | tasks | runs | mean | median | IQM |" in text


def test_report_without_runs_is_an_error(tmp_path, capsys):
    assert "no runs to report" in _error(capsys, ["report", str(tmp_path), "--out", str(tmp_path / "r")])
