import json
import os
import subprocess
import sys

import pytest
import torch

from mdpo.bench import bench, cpu_features, format_side_by_side, format_table, simple
from mdpo.cli import main
from mdpo.errors import MdpoError
from mdpo.runtime import bf16_warning, cpu_bf16
from mdpo.timing import MemoryProbe


def test_compare_runs_both_configurations_and_reports_their_ratio(tiny):
    result = bench(tiny("mdpo"), warmup=0, updates=2, compare=["perf.micro_batch=4", "perf.cpu_heap=false"])
    base, other = result["base"], result["compare"]
    assert len(base["update_seconds"]) == len(other["update_seconds"]) == 2
    assert result["ratio"] == pytest.approx(other["env_steps_per_s"] / base["env_steps_per_s"])
    assert base["update_peak_mb"] > 0 and base["update_start_mb"] > 0
    table = format_table(result)
    assert "compare (perf.micro_batch=4 perf.cpu_heap=false) / base" in table and "update peak MB" in table


def test_side_by_side_runs_the_bench_alone_then_two_at_once(capsys):
    flags = ["--preset", "cartpole", "--warmup", "0", "--updates", "2", "--torch_threads", "1"]
    assert main(["bench", *flags, "--side-by-side", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["alone"] > 0 and len(result["side_by_side"]) == 2
    assert result["slowdown"] == pytest.approx([result["alone"] / x for x in result["side_by_side"]])
    assert result["config"]["torch_threads"] == 1 and result["config"]["game"] == "CartPole-v1"
    text = format_side_by_side(result)
    assert "alone:" in text and "slowdown (alone / side by side)" in text


def test_side_by_side_measures_one_configuration(capsys):
    assert main(["bench", "--preset", "cartpole", "--side-by-side", "--compare", "torch_threads=1"]) == 2
    assert "drop --compare" in capsys.readouterr().err


def test_the_table_names_the_cpu_and_its_bf16(tiny):
    assert cpu_features().endswith(f"bf16: {cpu_bf16()}")
    assert f"CPU {cpu_features()}" in format_table(bench(tiny(), warmup=0, updates=1, reference=False))


def test_bf16_without_native_instructions_is_named_and_warned_of():
    """oneDNN capped below its bf16 instructions (as on a CPU without them): AVX-512 alone emulates bf16,
    AVX2 has no oneDNN bf16 kernels at all; a new run in bf16 says what it costs."""
    code = ("import torch; from mdpo.runtime import bf16_warning, cpu_bf16; "
            "print(cpu_bf16()); print(bf16_warning('bf16', torch.device('cpu')))")

    def capped(isa: str) -> list[str]:
        env = {**os.environ, "ONEDNN_MAX_CPU_ISA": isa, "ATEN_CPU_CAPABILITY": isa.split("_")[0].lower()}
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              check=True).stdout.splitlines()

    kind, warning = capped("AVX2")
    assert kind == "fallback" and "11x slower than float32; --perf.amp none is faster here" in warning
    kind, warning = capped("AVX512_CORE")
    assert kind in ("emulated", "fallback") and warning.startswith(f"--perf.amp bf16 on this CPU is {kind}")
    assert cpu_bf16() in ("native", "emulated", "fallback")
    assert bf16_warning("none", torch.device("cpu")) is None


def test_simple_reference_turns_every_lever_off(tiny):
    off = simple(tiny("mdpo")).perf
    assert (off.channels_last, off.amp, off.micro_batch, off.cpu_heap, off.batched_inference) == (
        False, "none", 0, False, False)


def test_bad_compare_item_is_an_error(tiny):
    with pytest.raises(MdpoError, match="KEY=VALUE"):
        bench(tiny(), updates=1, compare=["perf.micro_batch"])


def test_negative_micro_batch_is_one_line_error(capsys):
    assert main(["train", "--preset", "smoke", "--perf.micro_batch", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "perf.micro_batch must be >= 0" in err


def test_memory_probe_sees_a_peak_after_reset():
    probe = MemoryProbe(torch.device("cpu"))
    probe.reset()
    before = probe.current_bytes()
    block = torch.ones(64 * 2**20 // 4)  # 64 MB, touched
    assert probe.peak_bytes() >= before + 60 * 2**20
    del block
