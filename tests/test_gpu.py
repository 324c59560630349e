"""On CUDA, the loop computes what it computes on the CPU (run with ``pytest -m gpu`` on a GPU machine).

The update, the grouped cohort inference, a compiled network, sampling and Procgen's steps are
compared with the same computation on the CPU in float32 (TF32 off), bf16 autocast with float32;
collection is checked to wait for the GPU once per step; whole runs train on CUDA and move between
devices through their checkpoints.
"""

import copy
import json
import warnings

import pytest
import torch
from torch import nn

from mdpo.bench import bench
from mdpo.envs.procgen import ProcgenEnv
from mdpo.grouped import GroupedPolicy
from mdpo.nets import ActorCritic, sample_actions
from mdpo.optimize import cohort_loss, optimize
from mdpo.resolve import resolve
from mdpo.resume import resume
from mdpo.rollout import Batch
from mdpo.runs import load_checkpoint
from mdpo.runtime import configure_backends, cudnn_autotuning
from mdpo.train import train
from mdpo.trainer import Trainer

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
OBS = (3, 32, 32)
# float32 on both devices, summed in different orders by different kernels (cuDNN's Winograd or FFT
# convolutions among them): relative to the size of what is compared. Two Adam steps of lr 5e-4 move a
# parameter by up to 1e-3; a gradient that is nearly zero (Adam divides by its size) may step
# differently by a fraction of lr, a wrong update by lr.
FORWARD = {"rtol": 1e-4, "atol": 1e-5}
PARAM_TOLERANCE = 5e-5


@pytest.fixture(autouse=True)
def float32_and_the_same_algorithms():
    configure_backends(tf32=False)
    with cudnn_autotuning(False):  # cuDNN's heuristics pick the algorithms, not timings that vary by run
        yield


def _agents(k: int, device: torch.device, channels_last: bool = True) -> nn.ModuleList:
    torch.manual_seed(0)
    agents = nn.ModuleList(ActorCritic(OBS, 15, hidden=64) for _ in range(k)).to(device)
    if channels_last:
        for agent in agents:
            agent.use_channels_last()
    return agents


def _batch(k: int, device: torch.device, size: int = 64) -> Batch:
    g = torch.Generator().manual_seed(1)
    batch = Batch(
        obs=torch.randint(0, 256, (k, size, *OBS), generator=g, dtype=torch.uint8),
        actions=torch.randint(0, 15, (k, size), generator=g),
        logprobs=-2.7 + 0.3 * torch.randn(k, size, generator=g),
        values=torch.randn(k, size, generator=g),
        advantages=torch.randn(k, size, generator=g),
        returns=torch.randn(k, size, generator=g),
        valids=torch.rand(k, size, generator=g) > 0.2,
    )
    return Batch(*(field.to(device) for field in batch))


def _flat(agents: nn.ModuleList) -> torch.Tensor:
    return torch.cat([p.detach().cpu().flatten() for p in agents.parameters()])


@pytest.mark.parametrize("algo", ["ppo", "mdpo"])
def test_an_update_on_cuda_matches_the_cpu(algo):
    # one minibatch per epoch: the epoch's permutation (drawn by each device's own generator) only
    # reorders the frames of that minibatch, so both devices take the same optimizer steps
    cfg = resolve("paper", algo, {"ppo.num_minibatches": 1, "ppo.epochs": 2, "perf.micro_batch": 16})
    k = cfg.cohort.num_agents
    results = []
    for device in (CPU, CUDA):
        agents = _agents(k, device)
        optimizer = torch.optim.Adam(agents.parameters(), lr=cfg.ppo.lr, eps=cfg.ppo.adam_eps,
                                     fused=device.type == "cuda")
        stats = optimize(agents, optimizer, _batch(k, device), cfg, torch.Generator(device).manual_seed(2), 1.0)
        results.append((_flat(agents), stats.stacked().cpu()))
    (cpu_params, cpu_stats), (cuda_params, cuda_stats) = results
    assert (cpu_params - _flat(_agents(k, CPU))).abs().max() > 1e-4  # the update moved the parameters
    assert (cuda_params - cpu_params).abs().max().item() < PARAM_TOLERANCE
    torch.testing.assert_close(cuda_stats, cpu_stats, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("k", [2, 3])
def test_grouped_cohort_inference_on_cuda_matches_each_agent(k):
    agents = _agents(k, CUDA)
    obs = torch.randint(0, 256, (k, 64, *OBS), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    logits, values = GroupedPolicy(agents)(obs.to(CUDA))
    with torch.no_grad():
        for i, agent in enumerate(agents):
            own_logits, own_values = agent(obs[i].to(CUDA))
            torch.testing.assert_close(logits[i], own_logits, **FORWARD)
            torch.testing.assert_close(values[i], own_values, **FORWARD)


def test_a_compiled_network_on_cuda_matches_eager():
    eager = _agents(2, CUDA)
    compiled = copy.deepcopy(eager)
    for agent in compiled:
        agent.compile()
    obs = torch.randint(0, 256, (64, *OBS), generator=torch.Generator().manual_seed(1), dtype=torch.uint8).to(CUDA)
    with torch.no_grad():
        for a, b in zip(eager, compiled):
            for x, y in zip(a(obs), b(obs)):
                torch.testing.assert_close(x, y, **FORWARD)
    cfg = resolve("paper", "mdpo", {"ppo.num_minibatches": 1, "ppo.epochs": 1})
    batch = _batch(2, CUDA)
    losses = [cohort_loss(agents, batch, cfg, 1.0)[0] for agents in (eager, compiled)]
    assert abs(losses[0].item() - losses[1].item()) < 1e-4 * max(1.0, abs(losses[0].item()))


def test_bf16_autocast_keeps_logits_and_losses_in_float32_and_close():
    agents = _agents(2, CUDA)
    batch = _batch(2, CUDA)
    cfg = resolve("paper", "mdpo")
    full, full_stats = cohort_loss(agents, batch, cfg, 1.0)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits, values = agents[0](batch.obs[0])
        half, half_stats = cohort_loss(agents, batch, cfg, 1.0)
    assert logits.dtype == values.dtype == half.dtype == torch.float32
    assert torch.isfinite(half_stats.stacked()).all()
    # bf16 rounds to 8 significant bits (0.4%), products accumulate in float32: within 2% of float32
    assert abs(half.item() - full.item()) < 2e-2 * max(1.0, abs(full.item()))


@pytest.mark.parametrize("first, then", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_run_moves_between_devices_through_its_checkpoint(tiny, first, then):
    run_dir = train(tiny("mdpo", **{"env.game": "coins", "device": first, "total_steps": 64}), progress=False)
    state = load_checkpoint(run_dir, CPU)
    assert state["update"] == 2 and all(t.device == CPU for t in state["agents"].values())
    resume(run_dir, {"device": then, "total_steps": 128}, progress=False)
    state = load_checkpoint(run_dir, CPU)
    assert state["update"] == 4
    assert state["optimizer"]["param_groups"][0]["fused"] == (then == "cuda")  # the device's Adam, not the saved one
    result = json.loads((run_dir / "eval.json").read_text())
    assert all(isinstance(v, float) for v in result["summary"].values())


def test_procgen_trains_and_benches_on_cuda(tiny):
    run_dir = train(tiny("mdpo", **{"env.game": "bigfish", "device": "cuda", "eval.every": 2,
                                    "total_steps": 96}), progress=False)
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["global_step"] for line in lines][-1] == 96
    assert all(isinstance(line["losses/value_loss"], float) for line in lines if "losses/value_loss" in line)
    assert any("eval/test_return" in line for line in lines[:-1])  # a periodic evaluation on CUDA
    result = bench(tiny("mdpo", **{"env.game": "bigfish", "device": "cuda"}), warmup=1, updates=1)
    assert result["ratio"] > 0 and result["fast"]["update_peak_mb"] > 0  # the CUDA allocator's peak


def test_collection_waits_for_the_gpu_once_per_step(tiny, tmp_path):
    trainer = Trainer(tiny("mdpo", **{"env.game": "bigfish", "device": "cuda"}), tmp_path / "run")
    trainer.collect()  # the first: buffers allocated and pinned
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.collect()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [f"{w.filename}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)]
    assert len(syncs) == trainer.cfg.ppo.num_steps, sorted(set(syncs))


def test_sampling_on_cuda_is_multinomials_own():
    logits = 3 * torch.randn(2, 64, 15, generator=torch.Generator().manual_seed(0)).to(CUDA)
    ours, theirs = torch.Generator(CUDA).manual_seed(1), torch.Generator(CUDA).manual_seed(1)
    actions, _ = sample_actions(logits, ours)
    expected = torch.stack([torch.multinomial(torch.log_softmax(row, -1).exp(), 1, generator=theirs).squeeze(-1)
                            for row in logits])
    assert torch.equal(actions, expected)


def test_procgen_steps_on_cuda_as_on_the_cpu():
    # pinned staging and the packed reward/done/valid copy give the CPU's numbers; actions may live anywhere
    envs = [ProcgenEnv("bigfish", "hard", 4, 0, 0, seed=3, device=device, num_threads=1) for device in (CPU, CUDA)]
    assert torch.equal(envs[0].reset(), envs[1].reset().cpu())
    g = torch.Generator().manual_seed(0)
    for t in range(100):
        actions = torch.randint(0, 15, (4,), generator=g)
        on_cpu, on_cuda = envs[0].step(actions), envs[1].step(actions.to(CUDA) if t % 2 else actions)
        for field, x, y in zip(on_cpu._fields, on_cpu, on_cuda):
            assert y.device.type == "cuda" and x.dtype == y.dtype and torch.equal(x, y.cpu()), (t, field)
    for env in envs:
        env.close()


def test_the_default_config_on_cuda_takes_whole_minibatches():
    assert resolve("paper", "mdpo").perf.micro_batch == 0
