import json
from pathlib import Path

import pytest
import torch

from mdpo.cli import main
from mdpo.console import device_note
from mdpo.resolve import resolve
from mdpo.resume import resume
from mdpo.runs import CHECKPOINT, load_checkpoint
from mdpo.train import learn, train
from mdpo.trainer import Trainer

RUN_FILES = ("config.json", "checkpoint.pt", "metrics.jsonl", "eval.json")


def _params(run_dir):
    return load_checkpoint(run_dir)["agents"]


def test_same_seed_same_metrics(tiny, tmp_path):
    cfg = tiny("mdpo")
    runs = []
    for name in ("a", "b"):
        trainer = Trainer(cfg, tmp_path / name)
        metrics = [trainer.update() for _ in range(2)]
        runs.append([{k: v for k, v in m.items() if k != "charts/SPS"} for m in metrics])
    assert json.dumps(runs[0]) == json.dumps(runs[1])  # NaN-aware (no episode ended yet)
    assert "distill/kl" in runs[0][0] and "losses/value_loss/agent1" in runs[0][0]


def test_resume_equals_a_straight_run_that_restarts_its_envs_there(tiny, tmp_path):
    # 2 updates + resume + 2 == 4 updates in one process with the envs restarted after update 2
    half = train(tiny("mdpo", total_steps=64, run_name="halves"), progress=False)
    assert load_checkpoint(half)["update"] == 2
    resumed = resume(half, {"total_steps": 128}, progress=False)
    trainer = Trainer(tiny("mdpo", total_steps=128), tmp_path / "straight")
    for update in range(4):
        if update == 2:
            trainer.start_envs()
        trainer.update()
    a, b = trainer.agents.state_dict(), _params(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps = [json.loads(line)["global_step"] for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 128


def test_envs_and_episodes_persist_across_checkpoints(tiny, tmp_path, monkeypatch):
    # checkpoints after updates 2 and 4 (16 steps x 2 envs each): the same env objects, and
    # episodes in progress at the first checkpoint go on counting their steps
    import mdpo.trainer

    trainer = Trainer(tiny("ppo", total_steps=128, **{"eval.final_episodes": 1}), tmp_path / "run")
    seen = []
    real_save = mdpo.trainer.save_checkpoint

    def spy(run_dir, state):
        seen.append((list(trainer.envs), trainer.monitors[0]._length.clone()))
        real_save(run_dir, state)

    monkeypatch.setattr(mdpo.trainer, "save_checkpoint", spy)
    (tmp_path / "run").mkdir()
    learn(trainer, progress=False)
    (envs_2, lengths_2), (envs_4, lengths_4) = seen
    assert all(a is b for a, b in zip(envs_2, envs_4))
    carried = lengths_4 > 32  # envs whose episode did not end between the checkpoints
    assert carried.any()
    assert torch.equal(lengths_4[carried], lengths_2[carried] + 32)


@pytest.mark.parametrize("algo", ["ppo", "mdpo"])
def test_smoke_run_writes_run_folder(tiny, algo):
    run_dir = train(tiny(algo), progress=False)
    for name in RUN_FILES:
        assert (run_dir / name).exists(), name
    assert list(run_dir.glob("events.out.tfevents.*"))
    result = json.loads((run_dir / "eval.json").read_text())
    agents = 2 if algo == "mdpo" else 1
    assert len(result["agents"]) == agents
    assert {"eval/train_return", "eval/test_return", "eval/gap", "eval/test_score",
            "bound/robust_kl_train", "bound/robust_tv_test"} <= result["summary"].keys()
    assert ("bound/peer_tv" in result["summary"]) == (algo == "mdpo")
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"losses/policy_loss", "losses/value_loss", "charts/SPS"} <= lines[0].keys()
    assert ("distill/kl" in lines[0]) == (algo == "mdpo")


def test_a_preset_that_keeps_a_run_off_the_gpu_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cpu = torch.device("cpu")
    assert "this machine has CUDA: add --device cuda" in device_note(resolve("smoke"), cpu)
    assert device_note(resolve("paper", overrides={"device": "cpu"}), cpu) == ""  # the user's choice
    assert device_note(resolve("smoke", overrides={"device": "cuda"}), torch.device("cuda")) == ""


def _error_line(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_game_is_one_line_error(capsys):
    err = _error_line(capsys, ["train", "--preset", "smoke", "--game", "pacman"])
    assert "unknown game 'pacman'" in err and "coinrun" in err


@pytest.mark.parametrize("argv, expected", [
    (["--ppo.lr", "fast"], "bad value for ppo.lr"),
    (["--env.mode", "medium"], "unknown mode 'medium'"),
    (["--ppo.num_minibatches", "3"], "not divisible"),
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--no.such_field", "1"], "unrecognized argument --no.such_field"),
    (["--lr", "3e-4"], "unrecognized argument --lr (did you mean --ppo.lr?)"),
    (["--algo", "mdp0"], "unknown algorithm 'mdp0'; choose from ppo, mdpo, spo, mdspo, drac"),
])
def test_bad_config_is_one_line_error(capsys, argv, expected):
    assert expected in _error_line(capsys, ["train", "--preset", "smoke", *argv])


def test_missing_and_corrupt_checkpoint_are_one_line_errors(tiny, capsys, tmp_path):
    assert "does not exist" in _error_line(capsys, ["eval", str(tmp_path / "nowhere")])
    run_dir = train(tiny("ppo"), progress=False)
    (run_dir / CHECKPOINT).write_bytes(b"not a checkpoint")
    assert "corrupt" in _error_line(capsys, ["eval", str(run_dir)])
    assert "corrupt" in _error_line(capsys, ["train", "--resume", str(run_dir)])
    (run_dir / CHECKPOINT).unlink()
    assert "no checkpoint" in _error_line(capsys, ["eval", str(run_dir)])


def test_eval_command_rereads_checkpoint(tiny, capsys):
    run_dir = train(tiny("mdpo"), progress=False)
    assert main(["eval", str(run_dir), "--episodes", "2", "--device", "cpu"]) == 0
    out = json.loads((Path(run_dir) / "reeval.json").read_text())
    assert len(out["agents"]) == 2 and len(out["agents"][0]["test"]["returns"]) == 2


def test_sigterm_writes_a_checkpoint_and_the_run_resumes(long_training):
    import signal

    proc, run_dir, wait_for = long_training("--checkpoint_every", "1000", "--ppo.num_steps", "16")
    wait_for(lambda run: (run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text().count("\n") >= 2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    state = load_checkpoint(run_dir)
    assert state["update"] >= 2 and not (run_dir / "eval.json").exists()
    assert "stopped before the end" in out
    resumed = resume(run_dir, {"total_steps": (state["update"] + 1) * 32}, progress=False)
    assert load_checkpoint(resumed)["update"] == state["update"] + 1 and (resumed / "eval.json").exists()
