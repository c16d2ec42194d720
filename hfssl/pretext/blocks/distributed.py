"""Cross-process helpers for pretext losses and queues.

They are no-ops (return the input) unless ``torch.distributed`` is initialised with a world
size > 1, so the same code runs single-process, under ``accelerate launch`` and ``torchrun``.
All ranks must pass tensors of the same shape (use ``drop_last=True`` in the data loader).
"""

from __future__ import annotations

import torch


def is_distributed() -> bool:
    """True when ``torch.distributed`` is initialised with more than one process."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """Rank of this process (0 when not distributed)."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all ranks along dim 0, keeping the autograd graph.

    The backward pass sums the incoming gradients of every rank into this rank's slice
    (reduce-scatter), which is what contrastive losses need: a rank's embeddings act as
    negatives on every other rank and must receive those gradients too. A plain
    ``dist.all_gather`` silently drops them (the classic multi-GPU SimCLR bug).
    """
    if not is_distributed():
        return x
    import torch.distributed as dist
    from torch.distributed._functional_collectives import all_gather_single

    # all_gather_single is the autograd-aware, non-deprecated successor of
    # torch.distributed.nn.functional.all_gather in this torch version.
    return all_gather_single(x.contiguous(), 0, dist.group.WORLD)


@torch.no_grad()
def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all ranks along dim 0 without autograd (e.g. MoCo queue keys)."""
    if not is_distributed():
        return x.detach()
    import torch.distributed as dist

    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    return torch.cat(parts, dim=0)
