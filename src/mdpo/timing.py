"""Wall-clock time per training phase (env stepping, inference, advantages, update), and the peak
memory of chosen phases."""

from __future__ import annotations

import resource
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import torch

_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def _status_kb(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in {_STATUS}")


class MemoryProbe:
    """Peak memory over a stretch of time: on CUDA the allocator's peak, on CPU the process's peak
    resident set (Linux: VmHWM, reset through /proc/self/clear_refs). Where the CPU peak cannot be
    reset, ``peak_bytes`` is the process's lifetime peak and ``scoped`` is False."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.scoped = True

    def current_bytes(self) -> int:
        if self.cuda:
            return torch.cuda.memory_allocated()
        try:
            return _status_kb("VmRSS") * 1024
        except OSError:
            return 0

    def reset(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            return
        try:
            _CLEAR_REFS.write_text("5")  # resets VmHWM to the current RSS
        except OSError:
            self.scoped = False

    def peak_bytes(self) -> int:
        if self.cuda:
            return torch.cuda.max_memory_allocated()
        try:
            if self.scoped:
                return _status_kb("VmHWM") * 1024
        except OSError:
            self.scoped = False
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PhaseTimer:
    """Accumulates seconds per named phase. With ``sync`` it waits for the GPU at phase edges, so
    the split is exact (the benchmark turns it on; training leaves it off to avoid syncs).

    Phases named in ``memory_phases`` also record their peak memory (``peak_bytes``, the largest over
    their runs) and the memory in use when they started (``start_bytes``, the latest); such phases
    must not nest inside each other.
    """

    def __init__(self, device: torch.device, sync: bool = False, memory_phases: tuple[str, ...] = ()):
        self.sync = sync and device.type == "cuda"
        self.seconds: dict[str, float] = defaultdict(float)
        self.memory = MemoryProbe(device)
        self.memory_phases = set(memory_phases)
        self.peak_bytes: dict[str, int] = defaultdict(int)
        self.start_bytes: dict[str, int] = {}

    @contextmanager
    def __call__(self, phase: str):
        if self.sync:
            torch.cuda.synchronize()
        tracked = phase in self.memory_phases
        if tracked:
            self.start_bytes[phase] = self.memory.current_bytes()
            self.memory.reset()
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.sync:
                torch.cuda.synchronize()
            self.seconds[phase] += time.perf_counter() - start
            if tracked:
                self.peak_bytes[phase] = max(self.peak_bytes[phase], self.memory.peak_bytes())

    def reset(self) -> None:
        self.seconds.clear()
        self.peak_bytes.clear()
        self.start_bytes.clear()
