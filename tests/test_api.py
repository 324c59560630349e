"""mdpo from Python: a config built in code, a training, its metrics and a fresh evaluation; ``import mdpo``
stays light."""

import subprocess
import sys

import pytest

import mdpo
from mdpo.errors import MdpoError


def test_configure_train_read_and_evaluate(tmp_path):
    cfg = mdpo.configure("cartpole", algo="mdpo", total_steps=512, torch_threads=1, out_dir=str(tmp_path),
                         run_name="py", eval={"final_episodes": 3}, **{"env.num_levels": 20})
    assert (cfg.cohort.num_agents, cfg.eval.final_episodes, cfg.env.num_levels) == (2, 3, 20)
    run = mdpo.fit(cfg, progress=False)
    assert run == tmp_path / "py"
    rows = mdpo.metrics(run)
    assert [row["global_step"] for row in rows if "charts/update" in row] == [256, 512]
    assert "eval/test_return/agent1" in rows[-1]
    summary = mdpo.evaluate_run(run, episodes=2, device="cpu")
    assert summary["eval/gap"] == summary["eval/train_return"] - summary["eval/test_return"]


def test_bad_input_is_a_one_line_error():
    with pytest.raises(MdpoError, match="unknown config field 'ppo.lr_'"):
        mdpo.configure("cartpole", ppo={"lr_": 1e-3})
    with pytest.raises(MdpoError, match="episodes must be at least 1, got 0"):
        mdpo.evaluate_run("no-such-run", episodes=0)


def test_importing_mdpo_imports_no_torch():
    code = "import sys, mdpo, mdpo.config; assert 'torch' not in sys.modules and 'fit' in dir(mdpo)"
    subprocess.run([sys.executable, "-c", code], check=True)
