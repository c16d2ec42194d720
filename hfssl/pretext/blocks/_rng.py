"""Random draws that are reproducible with an optional ``torch.Generator``.

Numbers are drawn on the generator's device (so a CPU generator reproduces the same views
whether the data sit on CPU or GPU) and then moved to the data's device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def rand(
    shape: Sequence[int], generator: torch.Generator | None, device: torch.device | str | None = None
) -> torch.Tensor:
    """Uniform [0, 1) float32 of ``shape`` on ``device``."""
    src = generator.device if generator is not None else device
    out = torch.rand(tuple(shape), generator=generator, device=src)
    return out if device is None else out.to(device)


def randint(
    low: int | torch.Tensor,
    high: int | torch.Tensor,
    shape: Sequence[int],
    generator: torch.Generator | None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Uniform integers in ``[low, high]`` (inclusive; bounds may be broadcastable tensors)."""
    u = rand(shape, generator, device)
    low_t = torch.as_tensor(low, device=u.device)
    high_t = torch.as_tensor(high, device=u.device)
    out = low_t + torch.floor(u * (high_t - low_t + 1).clamp(min=1)).long()
    return torch.minimum(out, torch.maximum(high_t, low_t)).long()


def bernoulli(
    p: float,
    shape: Sequence[int],
    generator: torch.Generator | None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Boolean tensor, True with probability ``p``."""
    return rand(shape, generator, device) < p
