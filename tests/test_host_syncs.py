"""Collection waits for the device once per step: the actions of all agents, sampled in one call,
come to the host in one copy, and envs that can step asynchronously step side by side.

On CUDA a host sync is an op that reads a device tensor on the host. On the CPU nothing waits, so
these tests count the calls that would wait on CUDA (tests/test_gpu.py counts real syncs there).
"""

import torch
from torch.overrides import TorchFunctionMode

from mdpo.envs import step_all
from mdpo.envs.base import Step
from mdpo.nets import sample_actions
from mdpo.trainer import Trainer

# Tensor methods and functions that copy to the host or read a value there (multinomial checks its input)
HOST_READS = {torch.Tensor.cpu, torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.__bool__,
              torch.Tensor.__int__, torch.Tensor.__float__, torch.Tensor.nonzero, torch.nonzero, torch.multinomial,
              torch.Tensor.multinomial}


class CountHostReads(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in HOST_READS:
            self.calls.append(func.__name__)
        return func(*args, **(kwargs or {}))


def test_collection_reads_the_device_once_per_step(tiny, tmp_path):
    trainer = Trainer(tiny("mdpo", **{"env.game": "coins"}), tmp_path / "run")
    with CountHostReads() as counter:
        trainer.collect()
    assert counter.calls == ["cpu"] * trainer.cfg.ppo.num_steps


def test_sampling_is_multinomials_own_without_its_check():
    g = torch.Generator().manual_seed(0)
    for shape in ((2, 64, 15), (1, 7, 3), (3, 5, 15)):
        logits = 3 * torch.randn(shape, generator=g)
        ours, theirs = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
        actions, logprobs = sample_actions(logits, ours)
        expected = torch.stack([torch.multinomial(torch.log_softmax(row, -1).exp(), 1, generator=theirs).squeeze(-1)
                                for row in logits])  # one call per agent, as collection did
        assert torch.equal(actions, expected)
        assert torch.equal(ours.get_state(), theirs.get_state())
        torch.testing.assert_close(logprobs, torch.log_softmax(logits, -1).gather(-1, actions[..., None])[..., 0])


class TwoHalvesEnv:
    """Records the order of sends, receives and steps."""

    num_envs, num_actions, obs_shape = 2, 3, (3, 4, 4)

    def __init__(self, name, log, asynchronous):
        self.name, self.log = name, log
        if asynchronous:
            self.send = lambda actions: log.append(f"send {name}")
            self.recv = lambda: log.append(f"recv {name}") or self.result()

    def result(self):
        done = torch.zeros(2, dtype=torch.bool)
        return Step(torch.zeros(2, *self.obs_shape, dtype=torch.uint8), torch.zeros(2), done, ~done)

    def step(self, actions):
        self.log.append(f"step {self.name}")
        return self.result()


def test_envs_that_can_step_asynchronously_all_get_their_actions_first():
    log = []
    envs = [TwoHalvesEnv("a", log, True), TwoHalvesEnv("b", log, False), TwoHalvesEnv("c", log, True)]
    steps = list(step_all(envs, torch.zeros(3, 2, dtype=torch.long)))
    assert len(steps) == 3 and log == ["send a", "send c", "recv a", "step b", "recv c"]
