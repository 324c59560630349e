"""Device choice, backend and allocator settings, seed derivation and signal handlers."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import signal
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch

from mdpo.errors import MdpoError

if TYPE_CHECKING:
    from mdpo.config import Config


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MdpoError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return torch.device(name)


def device_type(name: str) -> str:
    """'cuda' or 'cpu': the kind of device ``name`` (a config's ``device``) resolves to here, without failing."""
    return "cuda" if name.startswith("cuda") or (name == "auto" and torch.cuda.is_available()) else "cpu"


def autocast(amp: str, device: torch.device):
    """The autocast context for ``perf.amp`` (a no-op for 'none')."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16")


def cpu_bf16() -> str:
    """How this CPU computes bfloat16: 'native' (oneDNN's kernels on AVX512_BF16 or AMX-BF16 instructions),
    'emulated' (oneDNN's kernels on plain AVX-512, or with oneDNN capped below bf16 by ONEDNN_MAX_CPU_ISA), or
    'fallback' (no oneDNN bf16 kernels, below AVX-512: ATen's own path)."""
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "fallback"
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    capped = cap not in ("ALL", "DEFAULT") and not any(isa in cap for isa in ("BF16", "AMX", "AVX10"))
    return "native" if {"avx512_bf16", "amx_bf16"} & set(flags) and not capped else "emulated"


# bf16 against float32, PPO on StarPilot, on one AVX-512 CPU with oneDNN capped (docs/results/cpu)
BF16_COST = {"emulated": "about 2x slower", "fallback": "about 11x slower"}


def bf16_warning(amp: str, device: torch.device) -> str | None:
    """A warning for ``perf.amp`` bf16 on a CPU without native bf16, where it is slower than float32."""
    kind = cpu_bf16() if amp == "bf16" and device.type == "cpu" else "native"
    if kind == "native":
        return None
    return (f"--perf.amp bf16 on this CPU is {kind} (no AVX512_BF16 or AMX instructions for oneDNN) and runs "
            f"{BF16_COST[kind]} than float32; --perf.amp none is faster here")


def configure_backends(tf32: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True


@contextmanager
def cudnn_autotuning(enabled: bool):
    """cuDNN's autotuner (``cudnn.benchmark``) on or off for the block. It times every convolution
    algorithm once per new input shape: worth it for training's fixed shapes, a waste where the
    batch changes size at every step (an evaluation's envs finishing one by one)."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


# glibc's mallopt parameters and the values they have once its dynamic mmap threshold has settled
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_GLIBC_SETTLED = {_M_MMAP_MAX: 65536, _M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 64 << 20}
_HEAP_ONLY = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: 2**31 - 1}  # the largest value mallopt takes


def libc():
    """The C library, or None where it cannot be loaded."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"))
    except (OSError, TypeError):
        return None


def configure_cpu_allocator(heap: bool) -> bool:
    """With ``heap``, serve every CPU allocation from malloc's heap and keep freed memory there (up to
    2 GB free at its top). An update allocates and frees hundreds of MB of activations per minibatch;
    by default glibc maps each block over 32 MB afresh and unmaps it when freed, and the kernel
    zero-fills every page again on first touch (high system time). Without ``heap``: glibc's defaults
    as they stand once its dynamic mmap threshold has settled. Returns False where there is no glibc.
    """
    mallopt = getattr(libc(), "mallopt", None)
    if mallopt is None:
        return False
    for param, value in (_HEAP_ONLY if heap else _GLIBC_SETTLED).items():
        mallopt(param, value)
    return True


def configure_process(cfg: Config, device: torch.device) -> None:
    """The process-wide settings a run's config asks for: torch threads (0 leaves torch's choice),
    TF32 and cuDNN autotuning, and on the CPU malloc's heap. Entry points call it before training."""
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    configure_backends(cfg.perf.tf32)
    if device.type == "cpu":
        configure_cpu_allocator(cfg.perf.cpu_heap)


class ThreadShare:
    """``torch_threads`` 0: before each update, as many torch threads as the cores that other processes left
    free during the last one (at least 1, at most the threads torch started with). Threads of two runs
    that together outnumber the cores wait on each other at every parallel op: measured on 2 cores, two
    MinAtar trainings side by side with 2 threads each ran 4x slower than one alone. Others' load is the
    busy time of this process's cores (/proc/stat) less its own CPU time; without /proc/stat, nothing changes.
    Numbers can differ in the last bits between thread counts: ``--torch_threads N`` fixes the count."""

    def __init__(self):
        self.cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.most = torch.get_num_threads()
        self.last = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        """(time, busy seconds of this process's cores, this process's CPU seconds), or None."""
        try:
            with open("/proc/stat") as f:
                lines = {row[0]: row[1:] for row in map(str.split, f) if row and row[0].startswith("cpu")}
            ticks = [[int(x) for x in lines[f"cpu{core}"][:8]] for core in self.cores]
        except (OSError, KeyError, ValueError):
            return None
        busy = sum(sum(t) - t[3] - t[4] for t in ticks) / os.sysconf("SC_CLK_TCK")  # less idle and iowait
        own = os.times()
        return time.monotonic(), busy, own.user + own.system

    def adjust(self) -> int:
        """Set and return the torch threads for the next update."""
        now = self._sample()
        if now is not None and self.last is not None and now[0] > self.last[0]:
            others = ((now[1] - self.last[1]) - (now[2] - self.last[2])) / (now[0] - self.last[0])
            threads = max(1, min(self.most, round(len(self.cores) - others)))
            if threads != torch.get_num_threads():
                torch.set_num_threads(threads)
        self.last = now
        return torch.get_num_threads()


def release_free_memory() -> None:
    """Hand the free memory malloc keeps back to the kernel (glibc; a no-op elsewhere)."""
    trim = getattr(libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


def derive_seed(*parts: object) -> int:
    """A 31-bit seed that depends on every part (e.g. run seed, agent, update), without collisions
    between nearby runs that simple sums like ``seed + update`` would have."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


# Adam's settings that say how it computes on its device, not what it computes
DEVICE_FLAGS = ("fused", "foreach", "capturable")


def with_device_flags(saved: dict, optimizer: torch.optim.Optimizer) -> dict:
    """An optimizer's saved state with ``optimizer``'s device flags. ``load_state_dict`` restores the
    saved ``param_groups`` whole, flags included: a CPU run resumed on CUDA would step a non-fused Adam
    whose step counts live on the GPU (a host sync per parameter per step), and save it so again."""
    groups = [{**group, **{flag: now[flag] for flag in DEVICE_FLAGS if flag in now}}
              for group, now in zip(saved["param_groups"], optimizer.param_groups)]
    return {**saved, "param_groups": groups}


@contextmanager
def on_stop_signals(handler, signals=(signal.SIGINT, signal.SIGTERM)):
    """``handler`` handles ``signals`` during the block; outside the main thread, where Python cannot
    set handlers, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, signal.SIG_DFL if h is None else h)  # None: a handler set outside Python (Ray's)
