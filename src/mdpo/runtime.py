"""Device choice and seed derivation."""

from __future__ import annotations

import hashlib

import torch

from mdpo.errors import MdpoError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MdpoError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return torch.device(name)


def autocast(amp: str, device: torch.device):
    """The autocast context for ``perf.amp`` (a no-op for 'none')."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16")


def configure_backends(tf32: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True


def derive_seed(*parts: object) -> int:
    """A 31-bit seed that depends on every part (e.g. run seed, agent, update), without collisions
    between nearby runs that simple sums like ``seed + update`` would have."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def sample_actions(logits: torch.Tensor, generator: torch.Generator | None,
                   greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Actions (int64) and their log-probabilities under ``logits``."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    if greedy:
        actions = logp.argmax(-1)
    else:
        actions = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(-1)
    return actions, logp.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
