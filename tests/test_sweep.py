import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import alive, descendants

from mdpo.cli import main
from mdpo.runs import run_dir_for, start_run_dir
from mdpo.sweep_spec import build_spec, expand, gpu_share

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sweep-smoke.yaml"
SMOKE_TRIALS = ("coinrun-ppo-s1", "coinrun-mdpo-s1", "bigfish-ppo-s1", "bigfish-mdpo-s1")


def _error_line(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("mdpo: error: "), err
    return err


def _spec_file(tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, message", [
    ("grid: {env.game: [coinrun], ppo.lrr: [0.001]}", "unknown config field 'ppo.lrr'"),
    ("grid: {env.game: [coinrun]}\noverrides: {ppo.lrr: 0.001}", "unknown config field 'ppo.lrr'"),
    ("preset: smoke\ngrid: {}", "the sweep grid is empty"),
    ("preset: smoke", "the sweep grid is empty"),
    ("grid: {env.game: []}", "needs a non-empty list"),
    ("grid: {env.game: [coinrun, pong]}", "unknown game 'pong'"),
    ("grid: {seed: [1, 2]}\noverrides: {seed: 3}", "both a grid field and a fixed override"),
    ("grid: {seed: [1, 1]}", "same trial"),
    ("grid: {seed: [1]}\noverrides: {run_name: x}", "run_name is set by the sweep"),
    ("grid: {seed: [1]}\nresources: {cpu: 0}", "cpu > 0"),
    ("grid: {seed: [1]}\nseeds: [1]", "unknown sweep spec key(s) seeds"),
    ("grid: [1", "not valid YAML"),
])
def test_bad_spec_is_a_one_line_error(capsys, tmp_path, text, message):
    err = _error_line(capsys, ["sweep", _spec_file(tmp_path, text), "--out_dir", str(tmp_path / "s")])
    assert message in err
    assert not (tmp_path / "s").exists()  # nothing started


def test_bad_flags_are_one_line_errors(capsys, tmp_path):
    assert "--grid takes FIELD=" in _error_line(capsys, ["sweep", "--grid", "seed"])
    assert "does not exist" in _error_line(capsys, ["sweep", str(tmp_path / "missing.yaml")])
    assert "nothing to report" in _error_line(
        capsys, ["sweep", "--grid", "seed=1,2", "--report-only", "--out_dir", str(tmp_path)])


def test_trial_names_come_from_the_grid_point(tmp_path):
    data = {"preset": "smoke", "grid": {"env.game": ["coinrun", "bigfish"], "cohort.alpha": [0.5, 1], "seed": [3]},
            "overrides": {"algo": "mdpo"}}
    trials = expand(build_spec(data, tmp_path))
    names = ["coinrun-mdpo-s3-alpha0.5", "coinrun-mdpo-s3-alpha1.0", "bigfish-mdpo-s3-alpha0.5",
             "bigfish-mdpo-s3-alpha1.0"]
    assert [t.name for t in trials] == names
    assert [t.name for t in expand(build_spec(data, tmp_path))] == names
    assert trials[1].run_dir == tmp_path.resolve() / names[1] and trials[1].config.cohort.alpha == 1.0
    assert trials[0].config.cohort.num_agents == 2 and trials[0].config.env.num_envs == 4  # algo, preset


def test_trial_names_stay_inside_the_sweep_folder(tmp_path):
    data = {"preset": "smoke", "grid": {"wandb.project": ["../up", "a/b", ".."]}}
    trials = expand(build_spec(data, tmp_path / "sweep"))
    assert [t.name for t in trials] == ["bigfish-ppo-s1-project.._up", "bigfish-ppo-s1-projecta_b",
                                        "bigfish-ppo-s1-project.."]
    assert all(t.run_dir.parent == tmp_path.resolve() / "sweep" for t in trials)


def test_a_folder_with_another_config_is_refused(capsys, tmp_path):
    spec = build_spec({"preset": "smoke", "grid": {"env.game": ["coinrun"]}}, tmp_path)
    cfg = expand(spec)[0].config
    cfg.total_steps *= 2
    run_dir = run_dir_for(cfg)
    run_dir.mkdir(parents=True)
    start_run_dir(run_dir, cfg)
    err = _error_line(capsys, ["sweep", "--preset", "smoke", "--grid", "env.game=coinrun", "--out_dir", str(tmp_path)])
    assert "holds a run with a different total_steps" in err


def test_trials_share_the_gpus_unless_the_spec_says(tmp_path):
    assert build_spec({"grid": {"seed": [1]}}, tmp_path).gpu is None
    assert build_spec({"grid": {"seed": [1]}, "resources": {"gpu": 0}}, tmp_path).gpu == 0
    assert gpu_share(0, 16, 1, 4) == 0  # no GPU here
    assert gpu_share(1, 16, 1, 4) == 0.25  # 4 trials at once
    assert gpu_share(1, 2, 1, 4) == 0.5  # 2 CPUs: 2 trials at once
    assert gpu_share(1, 16, 1, 3) == 0.3333
    assert gpu_share(2, 16, 1, 1) == 1  # one trial uses one GPU


def test_without_ray_says_how_to_install(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.tune", None)
    err = _error_line(capsys, ["sweep", "--preset", "smoke", "--grid", "env.game=coinrun", "--out_dir", str(tmp_path)])
    assert 'pip install -e ".[sweep]"' in err


# ---- real sweeps on a local Ray (subprocesses, so that each has its own Ray) ----------------------


def _sweep_command(out_dir):
    return [sys.executable, "-m", "mdpo.cli", "sweep", str(EXAMPLE), "--out_dir", str(out_dir), "--num-cpus", "2"]


def _snapshot(run_dir):
    return {p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(run_dir.iterdir())}


def _lines(output):
    return [line for line in output.splitlines() if line.startswith("[sweep]")]


def test_an_address_nobody_answers_at_is_a_one_line_error(tmp_path):
    pytest.importorskip("ray.tune")
    command = [*_sweep_command(tmp_path)[:-2], "--address", "127.0.0.1:1"]  # without --num-cpus
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == ("mdpo: error: nothing answers at 127.0.0.1:1 (Connection refused); "
                                     "is the Ray head running there?")


def test_smoke_sweep_writes_run_folders_and_report(tmp_path):
    pytest.importorskip("ray.tune")
    out = tmp_path / "sweep"
    result = subprocess.run(_sweep_command(out), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in SMOKE_TRIALS:
        files = {p.name for p in (out / name).iterdir()}
        assert {"config.json", "checkpoint.pt", "metrics.jsonl", "eval.json"} <= files
        assert f"[sweep] {name}: running" in result.stdout and f"[sweep] {name}: done" in result.stdout
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted([*SMOKE_TRIALS, "report"])
    assert (out / "report" / "report.md").exists()
    assert "4/4" in result.stderr  # the progress bar

    before = {name: _snapshot(out / name) for name in SMOKE_TRIALS}
    again = subprocess.run(_sweep_command(out), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _lines(again.stdout)[:4] == [f"[sweep] {name}: done (earlier)" for name in SMOKE_TRIALS]
    assert {name: _snapshot(out / name) for name in SMOKE_TRIALS} == before


def _wait_for(condition, proc, log, seconds=300):
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline and proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)


@pytest.mark.slow
def test_sigterm_stops_the_sweep_and_its_ray(tmp_path):
    """SIGTERM (a scheduler, `timeout`) ends a sweep as Ctrl-C does: one line, its local Ray shut down,
    every trial's last checkpoint kept for the next run of the same command."""
    pytest.importorskip("ray.tune")
    out, log = tmp_path / "sweep", tmp_path / "sweep.log"
    with open(log, "w") as f:
        sweep = subprocess.Popen([*_sweep_command(out), "--checkpoint_every", "1"], stdout=f, stderr=subprocess.PIPE,
                                 text=True, start_new_session=True)
    try:
        _wait_for(lambda: any(_checkpoint_update(out / name) for name in SMOKE_TRIALS), sweep, log)
        procs = descendants(sweep.pid)
        sweep.send_signal(signal.SIGTERM)
        err = sweep.communicate(timeout=120)[1]
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    assert sweep.returncode == 2 and err.strip().splitlines()[-1].startswith("mdpo: error: the sweep stopped with")
    assert "Traceback" not in err and "SIGTERM received" not in err
    deadline = time.time() + 30
    while any(alive(pid) for pid in procs) and time.time() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in procs if alive(pid)]
    assert any((out / name / "checkpoint.pt").exists() for name in SMOKE_TRIALS)


def _checkpoint_update(run_dir):
    import torch

    try:
        return torch.load(run_dir / "checkpoint.pt", weights_only=False)["update"]
    except Exception:  # not there yet, or replaced while reading
        return None


def _worker_pid(run_dir):
    """The pid of the Ray worker training ``run_dir``: TensorBoard names its events file after it."""
    newest = max(run_dir.glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime_ns)
    return int(newest.name.split(".")[-2])


@pytest.mark.slow
def test_dead_trial_retries_and_killed_sweep_resumes(tmp_path):
    """Kill one trial's worker (Ray retries it from its checkpoint), then the whole sweep (a crash:
    every process at once); running the same command again finishes without redoing finished trials."""
    pytest.importorskip("ray.tune")
    out, log = tmp_path / "sweep", tmp_path / "first.log"
    with open(log, "w") as f:
        sweep = subprocess.Popen(_sweep_command(out), stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    victim, deadline = None, time.time() + 300
    try:
        while True:
            assert time.time() < deadline and sweep.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
            states = {name: ("done" if (out / name / "eval.json").exists() else _checkpoint_update(out / name))
                      for name in SMOKE_TRIALS}
            mid = [name for name, s in states.items() if s not in (None, "done") and s < 4 and name != victim]
            if victim is None and mid:
                victim = mid[0]
                os.kill(_worker_pid(out / victim), signal.SIGKILL)
            elif victim and mid and "done" in states.values():
                if f"{victim}: running from its checkpoint" in log.read_text():
                    break
        procs = descendants(sweep.pid) | {sweep.pid}
        os.killpg(sweep.pid, signal.SIGKILL)
        for pid in procs:  # Ray's workers run in sessions of their own
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        sweep.wait()
        while any(alive(pid) for pid in procs):
            time.sleep(0.1)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    first = log.read_text()
    assert f"[sweep] {victim}: failed (" in first and "retry 1/2" in first, first
    finished = [name for name in SMOKE_TRIALS if (out / name / "eval.json").exists()]
    unfinished = [name for name in SMOKE_TRIALS if name not in finished]
    interrupted = [name for name in unfinished if (out / name / "checkpoint.pt").exists()]
    assert finished and interrupted
    before = {name: _snapshot(out / name) for name in finished}

    second = subprocess.run(_sweep_command(out), capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    lines = _lines(second.stdout)
    for name in finished:
        assert f"[sweep] {name}: done (earlier)" in lines
        assert f"[sweep] {name}: running" not in lines
    for name in interrupted:
        assert f"[sweep] {name}: running from its checkpoint" in lines
        assert len(list((out / name).glob("events.out.tfevents.*"))) >= 2  # one per process that trained it
    assert {name: _snapshot(out / name) for name in finished} == before
    assert all((out / name / "eval.json").exists() for name in SMOKE_TRIALS)
    assert (out / "report" / "report.md").exists()
