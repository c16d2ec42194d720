"""MoCo's feature queue: a fixed-size FIFO of key embeddings used as negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hfssl.errors import ConfigError
from hfssl.pretext.blocks.distributed import gather_no_grad


class MemoryQueue(nn.Module):
    """Fixed-size FIFO queue of ``size`` L2-normalised ``dim``-d keys (MoCo, He et al. 2020).

    Stored as buffers, so it moves with ``.to(device)`` and is saved in the state dict.
    It starts with random unit vectors, as in the MoCo reference. Per training step:
    ``loss = info_nce(q, k, queue.features)`` and then ``queue.enqueue(k)``; ``enqueue``
    gathers the keys of all processes (without gradient), so every rank holds the same queue.
    Batches may wrap around the end of the buffer; ``size`` need not be a multiple of the
    (global) batch size.
    """

    queue: torch.Tensor
    ptr: torch.Tensor

    def __init__(self, size: int, dim: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ConfigError(
                f"queue size and dim must be >= 1, got size={size} dim={dim}", "use e.g. size=65536"
            )
        init = F.normalize(torch.randn(size, dim, generator=generator), dim=1)
        self.register_buffer("queue", init)
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.queue.shape[0]

    @property
    def features(self) -> torch.Tensor:
        """The current negatives, ``(size, dim)``, detached."""
        return self.queue.detach()

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, gather: bool = True) -> None:
        """Gather ``keys`` (B, dim) from all processes, normalise, and replace the oldest entries."""
        if keys.dim() != 2 or keys.shape[1] != self.queue.shape[1]:
            raise ValueError(f"keys must be (B, {self.queue.shape[1]}), got {tuple(keys.shape)}")
        keys = gather_no_grad(keys) if gather else keys.detach()
        keys = F.normalize(keys.to(self.queue.dtype), dim=1)
        n = keys.shape[0]
        if n >= self.size:  # more keys than room: keep the newest ones
            self.queue.copy_(keys[-self.size :])
            self.ptr.zero_()
            return
        idx = (int(self.ptr) + torch.arange(n, device=self.queue.device)) % self.size
        self.queue[idx] = keys
        self.ptr.fill_((int(self.ptr) + n) % self.size)
