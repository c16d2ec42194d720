"""Two CPU processes (gloo) must reproduce the single-process NT-Xent on the global batch.

Convention checked here (see hfssl.pretext.blocks.nt_xent): rank r returns the mean loss of
its own anchors against the gathered global batch; the mean over ranks equals the
single-process loss; the gradient reaching rank r's embeddings is ``world_size`` times the
matching slice of the single-process gradient; after DDP's gradient averaging the parameter
gradients equal the single-process ones exactly. The MoCo queue must end up identical on all
ranks and equal to enqueueing the global batch in one process.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp

from hfssl.pretext.blocks import MemoryQueue, NTXentLoss

WORLD, B, D_IN, D = 2, 4, 5, 3
TEMPERATURE = 0.2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.nn.Linear]:
    g = torch.Generator().manual_seed(0)
    z_a = torch.randn(WORLD * B, D, generator=g)
    z_b = torch.randn(WORLD * B, D, generator=g)
    x_a = torch.randn(WORLD * B, D_IN, generator=g)
    x_b = torch.randn(WORLD * B, D_IN, generator=g)
    torch.manual_seed(1)
    return z_a, z_b, x_a, x_b, torch.nn.Linear(D_IN, D)


def _worker(rank: int, port: int, out: dict[str, torch.Tensor]) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        z_a, z_b, x_a, x_b, model = _data()
        sl = slice(rank * B, (rank + 1) * B)
        a = z_a[sl].clone().requires_grad_(True)
        b = z_b[sl].clone().requires_grad_(True)
        loss = NTXentLoss(TEMPERATURE)(a, b)
        loss.backward()
        out["loss"][rank] = loss.detach()
        out["grad_a"][sl] = a.grad
        out["grad_b"][sl] = b.grad

        ddp = DistributedDataParallel(model)
        NTXentLoss(TEMPERATURE)(ddp(x_a[sl]), ddp(x_b[sl])).backward()
        out["weight_grad"][rank] = model.weight.grad
        del ddp  # freed while the process group lives (see test_distributed_redundancy_dino.py)

        queue = MemoryQueue(10, D, generator=torch.Generator().manual_seed(5))
        queue.enqueue(z_a[sl])
        out["queue"][rank] = queue.queue
        out["ptr"][rank] = queue.ptr
        dist.barrier()  # no rank tears its connections down while the other still reads (gloo aborts)
    finally:
        dist.destroy_process_group()
    # the results are in shared memory: skip the interpreter's teardown, where a gloo/DDP thread
    # still joinable aborted a rank now and then ('terminate called without an active exception',
    # again after 'del ddp'); an exception above still propagates and fails the test
    os._exit(0)


def test_nt_xent_two_processes_equal_single_process() -> None:
    z_a, z_b, x_a, x_b, model = _data()
    out = {
        "loss": torch.zeros(WORLD),
        "grad_a": torch.zeros(WORLD * B, D),
        "grad_b": torch.zeros(WORLD * B, D),
        "weight_grad": torch.zeros(WORLD, D, D_IN),
        "queue": torch.zeros(WORLD, 10, D),
        "ptr": torch.zeros(WORLD, dtype=torch.long),
    }
    for t in out.values():
        t.share_memory_()
    ctx = mp.start_processes(
        _worker, args=(_free_port(), out), nprocs=WORLD, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + 90
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("distributed workers did not finish within 90 s")

    a = z_a.clone().requires_grad_(True)
    b = z_b.clone().requires_grad_(True)
    single = NTXentLoss(TEMPERATURE)(a, b)
    single.backward()
    torch.testing.assert_close(out["loss"].mean(), single.detach())
    torch.testing.assert_close(out["grad_a"], WORLD * a.grad)
    torch.testing.assert_close(out["grad_b"], WORLD * b.grad)

    NTXentLoss(TEMPERATURE)(model(x_a), model(x_b)).backward()
    for r in range(WORLD):
        torch.testing.assert_close(out["weight_grad"][r], model.weight.grad)

    queue = MemoryQueue(10, D, generator=torch.Generator().manual_seed(5))
    queue.enqueue(z_a)
    for r in range(WORLD):
        torch.testing.assert_close(out["queue"][r], queue.queue)
        assert int(out["ptr"][r]) == int(queue.ptr) == WORLD * B
