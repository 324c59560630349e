"""The edges of a run: resume overrides, finished runs, non-finite values, full disks, half-written
metrics, two processes on one run folder, bad config files, unsafe checkpoints, interrupts (of a run
and of the worker processes of a demo), run names and counts, sizes that cannot fit in memory."""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from processes import alive, descendants

from mdpo import memory
from mdpo.cli import main
from mdpo.demo import RESULTS
from mdpo.errors import MdpoError
from mdpo.logger import Logger, read_metrics
from mdpo.memory import check_fits, rollout_bytes
from mdpo.resolve import resolve
from mdpo.resume import resume
from mdpo.rollout import Rollout
from mdpo.runs import CHECKPOINT, CONFIG, EVAL, METRICS, RESUMES, load_checkpoint, run_lock, save_checkpoint
from mdpo.runtime import with_device_flags
from mdpo.train import train
from mdpo.workers import run_tasks


def _error_line(capsys, argv, code=2):
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


COINS = {"env.game": "coins"}  # the toy's episodes last at most 10 steps: quick evaluations


@pytest.fixture
def half_run(tiny):
    """A finished 2-update run (checkpoint at update 2) that ``--total_steps 128`` extends."""
    return train(tiny("mdpo", total_steps=64, run_name="run", **COINS), progress=False)


def _rows(run_dir):
    return read_metrics(run_dir)


# ---- 1, 2: resume overrides and finished runs -----------------------------------------------------


def test_resume_applies_allowed_overrides_and_records_them(half_run):
    resume(half_run, {"total_steps": 128, "ppo.lr": 1e-3, "eval.final_episodes": 2}, progress=False)
    cfg = json.loads((half_run / CONFIG).read_text())
    assert cfg["total_steps"] == 128 and cfg["ppo"]["lr"] == 1e-3 and cfg["eval"]["final_episodes"] == 2
    (record,) = [json.loads(line) for line in (half_run / RESUMES).read_text().splitlines()]
    assert record["update"] == 2 and record["changes"] == {
        "total_steps": [64, 128], "ppo.lr": [0.0005, 0.001], "eval.final_episodes": [1, 2]}
    state = load_checkpoint(half_run)
    assert state["optimizer"]["param_groups"][0]["lr"] == 1e-3
    lrs = {row["global_step"]: row["charts/learning_rate"] for row in _rows(half_run) if "charts/learning_rate" in row}
    assert lrs == {32: 5e-4, 64: 5e-4, 96: 1e-3, 128: 1e-3}
    assert (half_run / "eval-64.json").exists()  # the first end's final evaluation is kept, by step


@pytest.mark.parametrize("flags, field", [
    (["--env.num_envs", "3"], "env.num_envs"), (["--seed", "2"], "seed"),
    (["--algo", "ppo"], "algo"), (["--preset", "paper"], "preset"), (["--ppo.ent_coef", "0.02"], "ppo.ent_coef"),
    (["--env.game", "coinrun"], "env.game"),
])
def test_resume_rejects_fields_that_define_the_run(capsys, half_run, flags, field):
    before = (half_run / CONFIG).read_text()
    err = _error_line(capsys, ["train", "--resume", str(half_run), "--total_steps", "128", *flags])
    assert f"--{field} cannot change when resuming" in err
    assert (half_run / CONFIG).read_text() == before and not (half_run / RESUMES).exists()


def test_resuming_a_finished_run_says_so_and_does_nothing(capsys, half_run):
    files = {name: (half_run / name).read_bytes() for name in (METRICS, "eval.json", CHECKPOINT)}
    assert main(["train", "--resume", str(half_run), "--env.game", "coins"]) == 0  # unchanged value: fine
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and "is finished" in out and "--total_steps" in out
    assert files == {name: (half_run / name).read_bytes() for name in files}


def test_a_resumed_run_steps_the_optimizer_of_its_own_device(half_run, tmp_path):
    # the checkpoint as a run on CUDA writes it (fused Adam), resumed on the CPU: the run goes on as the
    # CPU run does, and its next checkpoint says so
    plain = tmp_path / "plain"
    shutil.copytree(half_run, plain)
    state = load_checkpoint(half_run)
    for group in state["optimizer"]["param_groups"]:
        group["fused"] = True
    save_checkpoint(half_run, state)
    for run in (half_run, plain):
        resume(run, {"total_steps": 128}, progress=False)
    resumed, expected = load_checkpoint(half_run), load_checkpoint(plain)
    assert [group["fused"] for group in resumed["optimizer"]["param_groups"]] == [False]
    for key, value in expected["agents"].items():
        assert torch.equal(resumed["agents"][key], value), key


def test_an_optimizer_takes_its_own_device_flags_from_a_saved_state():
    param = torch.nn.Parameter(torch.ones(3))
    param.grad = torch.ones(3)
    saved = torch.optim.Adam([param], fused=False)  # as the CPU builds it
    saved.step()
    fused = torch.optim.Adam([param], fused=True)  # as CUDA builds it (CPU has a fused Adam too)
    fused.load_state_dict(with_device_flags(saved.state_dict(), fused))
    assert fused.param_groups[0]["fused"] is True and fused.state[param]["step"].dtype == torch.float32
    fused.step()
    assert fused.state[param]["step"].item() == 2


# ---- 3: non-finite values -------------------------------------------------------------------------


def test_a_non_finite_update_stops_before_its_checkpoint(capsys, half_run):
    good = load_checkpoint(half_run)
    err = _error_line(capsys, ["train", "--resume", str(half_run), "--total_steps", "128", "--ppo.lr", "1e6",
                               "--quiet"])
    assert "update 3: the" in err and "became non-finite" in err and "checkpoint of update 2 is kept" in err
    kept = load_checkpoint(half_run)
    assert kept["update"] == 2
    for key, value in good["agents"].items():
        assert torch.equal(kept["agents"][key], value)
    assert max(row["global_step"] for row in _rows(half_run)) == 64  # nothing of update 3 logged


@pytest.mark.parametrize("flag, value, message", [
    ("--ppo.lr", "inf", "ppo.lr: inf is not a finite number"),
    ("--cohort.alpha", "nan", "cohort.alpha: nan is not a finite number"),
    ("--total_steps", "inf", "total_steps: 'inf' is not an integer"),
    ("--ppo.adam_eps", "0", "ppo.adam_eps must be > 0"),
    ("--ppo.max_grad_norm", "nan", "ppo.max_grad_norm: nan is not a finite number"),
    ("--ppo.lr", "-1", "ppo.lr must be > 0"),
    ("--ppo.gamma", "1.5", "ppo.gamma must be in [0, 1]"),
    ("--cohort.temperature", "0", "cohort.temperature must be > 0"),
    ("--eval.every", "-1", "eval.every must be >= 0"),
])
def test_non_finite_and_out_of_range_numbers_are_rejected(capsys, tmp_path, flag, value, message):
    err = _error_line(capsys, ["train", "--preset", "smoke", "--out_dir", str(tmp_path), flag, value])
    assert message in err
    assert not any(tmp_path.iterdir())


def test_logger_keeps_non_finite_metrics_and_says_so(capsys, tmp_path):
    logger = Logger(tmp_path)
    logger.log(1, {"a": math.nan, "b": 2.0})
    logger.log(2, {"a": math.inf, "b": 3.0})
    logger.close()
    assert _rows(tmp_path) == [{"global_step": 1, "a": None, "b": 2.0}, {"global_step": 2, "a": None, "b": 3.0}]
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mdpo: warning: a is nan at step 1 (null in metrics.jsonl)"]


# ---- 4: full disks --------------------------------------------------------------------------------


def _full(path):
    """Make writes to ``path`` fail as on a full disk (ENOSPC)."""
    os.symlink("/dev/full", path)


def test_a_failed_checkpoint_write_keeps_the_last_good_one(capsys, half_run):
    good = (half_run / CHECKPOINT).read_bytes()
    _full(half_run / (CHECKPOINT + ".tmp"))
    with pytest.raises(MdpoError, match=r"could not write checkpoint.pt \(no space left in .*\)"):
        save_checkpoint(half_run, load_checkpoint(half_run))
    assert not (half_run / (CHECKPOINT + ".tmp")).is_symlink()  # the temporary file is gone
    _full(half_run / (CHECKPOINT + ".tmp"))
    err = _error_line(capsys, ["train", "--resume", str(half_run), "--total_steps", "128", "--quiet"])
    assert "no space left" in err
    assert (half_run / CHECKPOINT).read_bytes() == good and not (half_run / (CHECKPOINT + ".tmp")).is_symlink()


def test_resume_on_a_full_disk_says_so(capsys, half_run):
    _full(half_run / RESUMES)
    assert "could not write resumes.jsonl (no space left" in _error_line(
        capsys, ["train", "--resume", str(half_run), "--total_steps", "128"])


# ---- 5: half-written metrics ----------------------------------------------------------------------


def test_a_half_written_metrics_line_does_not_block_resume(half_run):
    with open(half_run / METRICS, "a") as f:
        f.write('{"global_step": 96, "charts/SPS"')  # killed during a write
    resume(half_run, {"total_steps": 128}, progress=False)
    steps = [row["global_step"] for row in _rows(half_run)]
    assert steps == sorted(steps) and steps[-1] == 128
    assert all(json.loads(line) for line in (half_run / METRICS).read_text().splitlines())


# ---- 6: two processes on one run folder -----------------------------------------------------------


def test_a_second_process_on_a_run_folder_is_refused(capsys, half_run):
    before = (half_run / METRICS).read_text()
    with run_lock(half_run):
        err = _error_line(capsys, ["train", "--resume", str(half_run), "--total_steps", "128"])
        assert f"run folder {half_run} is in use by another mdpo process (pid {os.getpid()})" in err
        err = _error_line(capsys, ["train", "--preset", "smoke", "--game", "coins", "--out_dir",
                                   str(half_run.parent), "--run_name", half_run.name])
        assert "in use by another mdpo process" in err
    assert (half_run / METRICS).read_text() == before


def test_a_killed_process_does_not_hold_the_lock(tmp_path):
    code = f"from mdpo.runs import run_lock; from pathlib import Path; import time\n" \
           f"with run_lock(Path({str(tmp_path)!r})):\n    print('locked', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(MdpoError, match="in use"), run_lock(tmp_path):
        pass
    proc.kill()
    proc.wait()
    with run_lock(tmp_path):
        pass


def test_a_start_that_died_before_its_first_checkpoint_leaves_nothing_behind(tiny, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / METRICS).write_text('{"global_step": 32, "stale": 1}\n{"global_step": 64, "stale": 1}\n')
    (run_dir / "events.out.tfevents.1.stale").write_bytes(b"x")
    train(tiny("ppo", run_name="run", **COINS), progress=False)
    assert all("stale" not in row for row in _rows(run_dir))
    assert not (run_dir / "events.out.tfevents.1.stale").exists()


# ---- 7: unknown algorithms, bad config files, missing devices --------------------------------------


@pytest.mark.parametrize("content, message", [
    ("[1, 2]", "a config must be a mapping of fields, got list"),
    ('{"ppo": {"lr": "fast"}}', "bad value for ppo.lr: 'fast' is not a number"),
    ('{"env": {"num_envs": [4]}}', "bad value for env.num_envs: [4] is not an integer"),
    ('{"ppo": 3}', "unknown config field 'ppo'"),
    ('{"ppo": {"env": {"game": "x"}}}', "unknown config field 'ppo.env'"),
    ("{not json", "is corrupt"),
])
def test_a_config_json_of_the_wrong_shape_is_a_one_line_error(capsys, half_run, content, message):
    (half_run / CONFIG).write_text(content)
    err = _error_line(capsys, ["eval", str(half_run)])
    assert message in err and str(half_run / CONFIG) in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_fails_before_a_run_folder_exists(capsys, tmp_path):
    err = _error_line(capsys, ["train", "--preset", "smoke", "--device", "cuda", "--out_dir", str(tmp_path)])
    assert "CUDA is not available" in err
    assert not any(tmp_path.iterdir())


# ---- 8: safe loading ------------------------------------------------------------------------------


class _Payload:
    """Unpickling this writes a file: what a malicious checkpoint could do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_checkpoints_load_weights_only_and_unsafe_ones_are_refused(half_run, tmp_path):
    state = torch.load(half_run / CHECKPOINT, weights_only=True)  # everything mdpo saves loads safely
    assert {"agents", "optimizer", "monitors", "generator", "config"} <= state.keys()
    marker = tmp_path / "pwned"
    torch.save({**state, "extra": _Payload(str(marker))}, half_run / CHECKPOINT)
    with pytest.raises(MdpoError, match="refusing to load it"):
        load_checkpoint(half_run)
    assert not marker.exists()


# ---- 9: interrupts --------------------------------------------------------------------------------


def test_a_second_ctrl_c_stops_at_once_with_one_line(long_training):
    proc, run_dir, wait_for = long_training("--checkpoint_every", "1", "--ppo.num_steps", "64")
    wait_for(lambda run: (run / CHECKPOINT).exists())
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("mdpo: interrupted at update") and "is kept" in err
    assert load_checkpoint(run_dir)["update"] >= 1


def _midway(out):
    """The demo's trainings that have logged an update and not yet evaluated."""
    return [run for run in out.iterdir() if run.is_dir() and (run / METRICS).exists() and not (run / EVAL).exists()]


def _demo_stopped_by(tmp_path, sig, kill_group=False):
    """A 2-seed demo, 2 trainings at a time, sent ``sig`` once one has finished and another is mid-way;
    returns the process, its output, the results written before the signal and the trainings then
    mid-way. (It waits for both: on a busy machine the second training may not have logged yet.)"""
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "mdpo.cli", "demo", "--seeds", "2", "--steps", "2048", "--jobs", "2",
           "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 180
    while not ((out / RESULTS).exists() and (out / RESULTS).read_text().endswith("\n") and _midway(out)):
        assert time.time() < deadline and proc.poll() is None, "the demo ended, or took too long, before a result"
        time.sleep(0.05)
    before, running = (out / RESULTS).read_text(), _midway(out)
    processes = descendants(proc.pid) | {proc.pid}
    signalled = time.time()
    if kill_group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)  # until the workers, which share its output pipes, are gone too
    assert time.time() - signalled < 30  # a training's update, a checkpoint: seconds
    deadline = time.time() + 5
    while any(alive(pid) for pid in processes) and time.time() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in processes if alive(pid)]  # workers included: no orphans
    return proc, err, out, before, running


@pytest.mark.parametrize("sig, kill_group", [
    (signal.SIGTERM, False),
    pytest.param(signal.SIGINT, True, marks=pytest.mark.slow),  # Ctrl-C at the terminal: the whole group
    pytest.param(signal.SIGKILL, False, marks=pytest.mark.slow),  # the parent dies: the kernel stops its workers
])
def test_a_stopped_demo_stops_its_workers_and_keeps_what_they_did(tmp_path, sig, kill_group):
    proc, err, out, before, running = _demo_stopped_by(tmp_path, sig, kill_group)
    kept = (out / RESULTS).read_text()
    finished = [json.loads(line) for line in kept.splitlines()]
    # what was written stays; a training in its last instant when the signal came may add its numbers
    assert kept.startswith(before) and 1 <= len(finished) < 4
    if sig != signal.SIGKILL:
        assert proc.returncode == 130 and "Traceback" not in err, err
        assert err.strip().splitlines() == [f"mdpo: {sig.name}: {len(finished)} of 4 trainings finished, their "
                                            f"numbers are in {out / RESULTS}; the stopped ones kept their checkpoints"]
    assert all((Path(result["run_dir"]) / EVAL).exists() for result in finished)
    stopped = [run for run in running if str(run) not in {result["run_dir"] for result in finished}]
    assert stopped  # each training stopped mid-way finished its update and wrote its checkpoint
    for run in stopped:
        assert load_checkpoint(run)["update"] >= 1
    assert not (out / "demo.json").exists()


@pytest.mark.parametrize("fn, task, message", [
    (resolve, ("nope",), "unknown preset 'nope'"),
    (os._exit, (3,), "a worker process died (exit code 3)"),
])
def test_a_failed_task_is_raised_in_the_parent_as_one_line(fn, task, message):
    results = []
    with pytest.raises(MdpoError, match=re.escape(message)):
        run_tasks(fn, [task], 1, results.append)
    assert results == []


# ---- 10: names and counts -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "."])
def test_a_run_name_is_one_folder_inside_out_dir(capsys, tmp_path, name):
    err = _error_line(capsys, ["train", "--preset", "smoke", "--game", "coins", "--out_dir", str(tmp_path / "out"),
                               "--run_name", name])
    assert f"run_name {name!r} must be one folder name inside out_dir (no '/', not '.' or '..')" in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("episodes", ["-3", "0"])
def test_eval_needs_at_least_one_episode(capsys, half_run, episodes):
    err = _error_line(capsys, ["eval", str(half_run), "--episodes", episodes])
    assert err == f"mdpo: error: --episodes must be at least 1, got {episodes}"
    assert not (half_run / "reeval.json").exists()


# ---- 11: sizes that cannot fit --------------------------------------------------------------------

FREE = 20_300_000_000  # what the tests below pretend the host has free


@pytest.fixture
def host_free(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: FREE)


@pytest.mark.parametrize("flags, message", [
    (["--preset", "paper", "--env.num_envs", "200000"],
     "the rollout needs 630.7 GB (env.num_envs=200,000 x ppo.num_steps=256 x 1 agent x 12,319 B per step) and the "
     "environments need 300.3 GB (1 agent x (env.num_envs=200,000 + 2 x eval.final_episodes=100) envs x about 1.5 MB), "
     "but 20.3 GB are available; lower env.num_envs, ppo.num_steps or eval.final_episodes"),
    (["--ppo.num_steps", "100000000"],
     "the rollout needs 4,927.6 GB (env.num_envs=4 x ppo.num_steps=100,000,000 x 1 agent x 12,319 B per step), but "
     "20.3 GB are available; lower env.num_envs or ppo.num_steps"),
    (["--eval.final_episodes", "10000000"],
     "the environments need 30,000.0 GB (1 agent x (env.num_envs=4 + 2 x eval.final_episodes=10,000,000) envs x "
     "about 1.5 MB), but 20.3 GB are available; lower env.num_envs or eval.final_episodes"),
    (["--game", "coins", "--algo", "mdpo", "--env.num_envs", "2000000"],  # the toy's envs live in the rollout's memory
     "the rollout needs 53.1 GB (env.num_envs=2,000,000 x ppo.num_steps=32 x 2 agents x 415 B per step), but "
     "20.3 GB are available; lower env.num_envs or ppo.num_steps"),
])
def test_sizes_that_cannot_fit_are_refused_before_the_run_folder(capsys, tmp_path, host_free, flags, message):
    err = _error_line(capsys, ["train", "--preset", "smoke", "--game", "coinrun", "--out_dir", str(tmp_path), *flags])
    assert err == f"mdpo: error: {message}"
    assert not any(tmp_path.iterdir())


def test_a_resume_that_cannot_fit_changes_nothing(capsys, monkeypatch, half_run):
    before = (half_run / CONFIG).read_text()
    monkeypatch.setattr(memory, "available_bytes", lambda device: 1000)
    err = _error_line(capsys, ["train", "--resume", str(half_run), "--total_steps", "128"])
    assert "the rollout needs 0.0 GB (env.num_envs=2 x ppo.num_steps=16 x 2 agents x 415 B per step)" in err
    assert (half_run / CONFIG).read_text() == before and not (half_run / RESUMES).exists()


def test_on_a_gpu_the_rollout_meets_the_gpus_memory_and_the_envs_the_hosts(monkeypatch):
    free = {"cuda": 10e9, "cpu": 1e12}
    monkeypatch.setattr(memory, "available_bytes", lambda device: free[device.type])
    cfg = resolve("paper", "mdpo", {"env.num_envs": 2000})
    with pytest.raises(MdpoError, match=r"^the rollout needs 12\.6 GB \(.*\), but 10\.0 GB are available on cuda; "
                                        r"lower env\.num_envs or ppo\.num_steps$"):
        check_fits(cfg, torch.device("cuda"))
    check_fits(cfg, torch.device("cpu"))  # the rollout and the envs together fit in the host's terabyte
    free.update(cuda=20e9, cpu=5e9)
    with pytest.raises(MdpoError, match=r"^the environments need 6\.6 GB .* available; lower env\.num_envs or eval"):
        check_fits(cfg, torch.device("cuda"))


def test_the_estimate_is_what_the_rollout_allocates(tiny):
    cfg = tiny("mdpo", **COINS)
    shape = (3, 8, 16)
    buffer = Rollout.allocate(2, cfg.ppo.num_steps, cfg.env.num_envs, shape, torch.device("cpu"))
    assert sum(t.nbytes for t in vars(buffer).values()) == rollout_bytes(cfg, shape, 1)
