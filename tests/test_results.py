"""The committed CPU study regenerates from the repository alone: its tables come out of its raw runs."""

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results" / "cpu"


@pytest.fixture(scope="module")
def report():
    """scripts/cpu_study_report.py as a module."""
    spec = importlib.util.spec_from_file_location("cpu_study_report", ROOT / "scripts" / "cpu_study_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_starpilot_runs_are_named_by_how_they_differ_from_the_study(report):
    """The study's runs are bf16 with mdpo's init; the gap study's change one of the two."""
    def run(algo, init, amp):
        return {"algo": algo, "cfg": {"net": {"init": init}, "perf": {"amp": amp}}}

    assert report.variant_of(run("ppo", "cleanrl", "bf16")) == "ppo"
    assert report.variant_of(run("mdpo", "cleanrl", "bf16")) == "mdpo"
    assert report.variant_of(run("ppo", "glorot", "bf16")) == "ppo, glorot init"
    assert report.variant_of(run("ppo", "cleanrl", "none")) == "ppo, float32"
    assert report.variant_of({"algo": report.THEIRS}) == report.THEIRS


def test_tables_regenerate_from_the_committed_runs(tmp_path):
    (tmp_path / "runs").symlink_to(RESULTS / "runs")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "cpu_study_report.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    assert (tmp_path / "tables.md").read_text() == (RESULTS / "tables.md").read_text()
    assert (tmp_path / "minatar-training-return.png").stat().st_size > 10_000


def test_no_checkpoint_is_committed():
    kept = {"config.json", "metrics.jsonl", "eval.json", "resumes.jsonl"}
    assert {p.name for p in (RESULTS / "runs").rglob("*") if p.is_file()} <= kept


def test_the_procgen_statistic_is_the_mean_of_the_last_episodes(report):
    """Baselines' eprewmean, from per-update means: an update of 100 env steps with episodes of mean length
    25 ended 4 of them; the last 5 episodes at update 3 are its 4 and one of update 2's."""
    run = {"cfg": {"env": {"num_envs": 2}, "ppo": {"num_steps": 50}},
           "train": [(100, 1.0), (200, 2.0), (300, 3.0)], "lengths": [10.0, 50.0, 25.0]}
    assert report.last_episodes(run, 300, episodes=5) == pytest.approx((4 * 3 + 1 * 2) / 5)
    assert report.last_episodes(run, 300, episodes=100) == pytest.approx((4 * 3 + 2 * 2 + 10 * 1) / 16)
    assert math.isnan(report.last_episodes(run, 1000))
    at = [report.last_episodes(run, step) for step in (100, 200, 300)]
    last100 = list(zip((100, 200, 300), at))
    assert report.around(last100, 200, width=100) == pytest.approx(sum(at) / 3)
    assert report.around(last100, 300, width=50) == pytest.approx(at[2])
    assert math.isnan(report.around(last100, 400))  # the run stopped before it


def test_study_status_tells_training_from_stopped_runs_and_names_the_resume_step(tmp_path):
    import fcntl
    import json

    import torch

    row = {"global_step": 8192, "charts/episodic_return": 2.5}
    for name in ("a", "b", "c"):  # a trains now, b was stopped, c finished
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    for name in ("a", "b"):
        torch.save({"global_step": 4096, "update": 1, "agents": {}, "spec": {}}, tmp_path / name / "checkpoint.pt")
    (tmp_path / "c" / "eval.json").write_text("{}")

    def status() -> dict[str, str]:
        out = subprocess.run(["bash", str(ROOT / "scripts" / "cpu_study.sh"), "status"], check=True,
                             env={**os.environ, "OUT_DIR": str(tmp_path)}, capture_output=True, text=True).stdout
        return {line.split()[0]: line for line in out.splitlines()}

    with open(tmp_path / "a" / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a training mdpo process holds it
        lines = status()
    assert lines["a"].endswith("training (checkpoint at 4,096)")
    assert lines["b"].endswith("stopped (checkpoint at 4,096)")
    assert lines["c"].endswith("finished") and "8,192 steps" in lines["c"]
    assert status()["a"].endswith("stopped (checkpoint at 4,096)")  # the lock went with its holder


def test_every_study_run_is_a_valid_mdpo_train_command():
    from mdpo.cli import build_parser
    from mdpo.flags import config_from_args

    def study(name: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(ROOT / "scripts" / "cpu_study.sh"), "list"], capture_output=True,
                              text=True, env={**os.environ, "STUDY": name})

    unknown = study("nope")
    assert unknown.returncode == 2 and not unknown.stdout
    names = unknown.stderr.split("(")[1].split(")")[0].replace(" or ", ", ").split(", ")
    assert {"minatar", "procgen", "gap"} <= set(names)
    for name in names:
        lines = study(name).stdout.splitlines()
        assert lines, name
        assert len({line.split()[0] for line in lines}) == len(lines), f"{name}: two runs share a folder"
        for line in lines:
            args, extras = build_parser().parse_known_args(["train", "--total_steps", "1000000", *line.split()[1:]])
            assert not extras, line
            config_from_args(args)  # an unknown value (a game, an init) raises here
    gap = study("gap").stdout
    assert "gap-starpilot-ppo-glorot-s1 " in gap and "--net.init glorot" in gap


def test_the_procgen_authors_runs_give_the_published_point_with_our_statistic(report):
    """Their three StarPilot logs (published/), put through the report's statistic, give the reference's 4.7 at
    0.5M; every run has the 62 updates ours have."""
    runs = report.published_starpilot()
    assert len(runs) == 3
    for run in runs:
        assert [step for step, _ in run["last100"]] == [16384 * i for i in range(1, 63)]
    assert sum(report.around(r["last100"], 5e5) for r in runs) / 3 == pytest.approx(4.7, abs=0.05)
