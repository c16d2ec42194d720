"""Images/s of one full pretraining step (views + forward + backward + optimiser), hfssl vs lightly.

What is measured, for each setting, is the median wall time of a training step on a fixed
batch of random grey images (64 px by default), as images per second (input images, not views):

* **SimCLR** and **BYOL** on a ResNet-18 (hfssl's small-stem ``HfsslModel``), hfssl's pretext
  model (``SimCLRForPretraining`` / ``BYOLForPretraining``: views, one backbone pass over both
  views, projector(/predictor), loss, AdamW step, EMA update) against the same step assembled
  from **lightly**'s building blocks (``SimCLRProjectionHead`` + ``NTXentLoss``;
  ``BYOLProjectionHead`` + ``BYOLPredictionHead`` + ``NegativeCosineSimilarity`` +
  ``update_momentum``) on the same backbone, batch, views (hfssl's batched augmentation, so the
  comparison is of the model/loss code, not of a data pipeline), optimiser and machine.
  Two hfssl paths: **fp32** (NCHW, no autocast) and the **default fast path** (what the trainer's
  defaults pick on this machine: channels-last on GPU or on CPUs with native bf16, bf16 autocast
  where the hardware supports it). Ratios are against lightly's default fp32 step.
* **ROT** and **MG** (no lightly counterpart): hfssl only.
* **FLOP/s**: the step's matmul/conv FLOPs (``torch.utils.flop_counter``, forward + backward)
  divided by its time, against this machine's measured peak: a large 1x1 convolution in
  channels-last (a plain GEMM through oneDNN) in fp32 and in bf16.
* **1 vs 2 processes** (gloo, DDP, one thread each, same per-process batch): ROT images/s.

Usage::

    python benchmarks/pretrain_throughput.py --quick          # ~1-2 min on a 2-core CPU
    python benchmarks/pretrain_throughput.py --batch-size 256 --steps 3
    python benchmarks/pretrain_throughput.py --device cuda --batch-size 256

``pip install lightly`` (the ``bench`` extra) for the comparison; without it, it is skipped.
On a shared machine the numbers are noisy: compare ratios from the same run only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch import nn  # noqa: E402


# ------------------------------------------------------------------------------ helpers
def backbone_config(image_size: int):
    from hfssl.models import HfsslConfig

    return HfsslConfig(backbone="resnet18", image_size=image_size)


def timed(step: Callable[[], None], steps: int, warmup: int, device: torch.device) -> float:
    """Median seconds of ``step`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    return timed_only(step, steps, device)


def timed_only(step: Callable[[], None], steps: int, device: torch.device) -> float:
    """Median seconds of ``steps`` calls of ``step``."""
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_flops(step: Callable[[], None]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def amp_context(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def hfssl_step(
    method: str,
    image_size: int,
    batch: torch.Tensor,
    device: torch.device,
    fast: bool,
    seed: int = 0,
    force_channels_last: bool = False,
):
    """A closure running one hfssl training step of ``method``, and a label of its settings."""
    from hfssl.pretext.factory import create_pretext_model
    from hfssl.training.runtime import native_bf16_cpu, resolve_channels_last

    torch.manual_seed(seed)
    model = create_pretext_model(method, backbone_config(image_size)).to(device).train()
    bf16 = fast and (torch.cuda.is_bf16_supported() if device.type == "cuda" else native_bf16_cpu())
    channels_last = force_channels_last or (
        fast and resolve_channels_last(None, device.type, backbone_is_cnn=True)
    )
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        batch = batch.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    gen = torch.Generator(device=device).manual_seed(seed)
    after = getattr(model, "after_optimizer_step", None)

    def step() -> None:
        with amp_context(device, bf16):
            loss = model(pixel_values=batch, generator=gen).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if after is not None:
            after()

    label = f"bf16={'on' if bf16 else 'off'}, channels_last={'on' if channels_last else 'off'}"
    return step, label


def lightly_step(method: str, image_size: int, batch: torch.Tensor, device: torch.device, seed: int = 0):
    """One step of the same method from lightly's heads/losses, hfssl's backbone and views (fp32)."""
    import copy

    from lightly.loss import NegativeCosineSimilarity, NTXentLoss
    from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead, SimCLRProjectionHead
    from lightly.models.utils import deactivate_requires_grad, update_momentum

    from hfssl.models import HfsslModel
    from hfssl.pretext.shared import make_contrastive_views
    from hfssl.pretext.simclr import SimCLRConfig

    torch.manual_seed(seed)
    cfg = backbone_config(image_size)
    backbone = HfsslModel(cfg).to(device).train()
    view_cfg = SimCLRConfig(backbone_config=cfg)  # same view settings as hfssl's contrastive methods
    views = view_cfg.view_maker()
    gen = torch.Generator(device=device).manual_seed(seed)
    dim = backbone.num_features

    def embed(x: torch.Tensor, net: nn.Module = backbone) -> torch.Tensor:
        return net.forward_features(x)[0]

    if method == "simclr":
        head = SimCLRProjectionHead(dim, 512, 256).to(device)  # hfssl SimCLR: 512 -> 512 -> 256
        criterion = NTXentLoss(temperature=0.1)
        opt = torch.optim.AdamW(list(backbone.parameters()) + list(head.parameters()), lr=1e-3)

        def step() -> None:
            a, b = make_contrastive_views(view_cfg, views, batch, gen)
            z_a, z_b = head(embed(torch.cat([a, b]))).chunk(2)
            loss = criterion(z_a, z_b)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        return step

    projector = BYOLProjectionHead(dim, 4096, 256).to(device)
    predictor = BYOLPredictionHead(256, 4096, 256).to(device)
    target_backbone, target_projector = copy.deepcopy(backbone), copy.deepcopy(projector)
    deactivate_requires_grad(target_backbone)
    deactivate_requires_grad(target_projector)
    criterion = NegativeCosineSimilarity()
    params = list(backbone.parameters()) + list(projector.parameters()) + list(predictor.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3)

    def step() -> None:
        a, b = make_contrastive_views(view_cfg, views, batch, gen)
        both = torch.cat([a, b])
        p_a, p_b = predictor(projector(embed(both))).chunk(2)
        with torch.no_grad():
            t_a, t_b = target_projector(embed(both, target_backbone)).chunk(2)
        loss = 0.5 * (criterion(p_a, t_b) + criterion(p_b, t_a))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        update_momentum(backbone, target_backbone, 0.996)
        update_momentum(projector, target_projector, 0.996)

    return step


def peak_flops(device: torch.device, quick: bool) -> dict[str, float]:
    """This machine's best measured matrix-multiply FLOP/s, fp32 and bf16.

    The best of a large 1x1 convolution in channels-last (a plain GEMM through oneDNN / cuDNN)
    and a square ``torch.mm`` (MKL / cuBLAS), each timed a few times.
    """
    if device.type == "cuda":
        conv_shape, mm_side = (64, 1024, 64), 8192
    else:
        conv_shape, mm_side = ((8, 512, 32), 1024) if quick else ((32, 512, 32), 2048)
    n, c, hw = conv_shape
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        conv = nn.Conv2d(c, c, 1, bias=False).to(
            device=device, dtype=dtype, memory_format=torch.channels_last
        )
        x = torch.randn(n, c, hw, hw, device=device, dtype=dtype).contiguous(
            memory_format=torch.channels_last
        )
        a = torch.randn(mm_side, mm_side, device=device, dtype=dtype)
        with torch.no_grad():
            t_conv = timed(lambda conv=conv, x=x: conv(x), steps=3, warmup=1, device=device)
            t_mm = timed(lambda a=a: a @ a, steps=3, warmup=1, device=device)
        out[name] = max(2 * n * hw * hw * c * c / t_conv, 2 * mm_side**3 / t_mm)
    return out


# ------------------------------------------------------------------------------ 1 vs 2 processes
def _ddp_worker(rank: int, world: int, port: int, batch: int, image_size: int, steps: int, queue) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from hfssl.pretext.factory import create_pretext_model

    torch.manual_seed(0)
    model = create_pretext_model("rot", backbone_config(image_size)).train()
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.AdamW(ddp.parameters(), lr=1e-3)
    x = torch.rand(batch, 1, image_size, image_size)
    gen = torch.Generator().manual_seed(rank)

    def step() -> None:
        loss = ddp(pixel_values=x, generator=gen).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    dist.barrier()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    dist.barrier()
    if rank == 0:
        queue.put(world * batch * steps / (time.perf_counter() - start))
    dist.destroy_process_group()


def process_scaling(batch: int, image_size: int, steps: int) -> dict[int, float]:
    import socket

    import torch.multiprocessing as mp

    out = {}
    ctx = mp.get_context("spawn")
    for world in (1, 2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        queue = ctx.SimpleQueue()
        mp.start_processes(
            _ddp_worker,
            args=(world, port, batch, image_size, steps, queue),
            nprocs=world,
            start_method="spawn",
        )
        out[world] = queue.get()
    return out


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=256, help="images per step (default 256)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per setting (median)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument(
        "--quick", action="store_true", help="batch 8, 2 timed steps, smaller peak test (~1-2 min)"
    )
    parser.add_argument("--skip-scaling", action="store_true", help="skip the 1 vs 2 process measurement")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_size, args.steps = 8, 2
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    from hfssl.training.runtime import native_bf16_cpu

    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"batch {args.batch_size}, {args.image_size} px, {args.steps} timed step(s)"
    )
    if device.type == "cpu":
        print(f"CPU: {torch.backends.cpu.get_cpu_capability()}, native bf16: {native_bf16_cpu()}")
    peak = peak_flops(device, args.quick)
    print(
        f"peak (best of 1x1 conv channels-last / mm): fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peak['bf16'] / 1e9:.1f} GFLOP/s"
    )

    try:
        import lightly

        have_lightly = True
        print(f"lightly {lightly.__version__}")
    except ImportError:
        have_lightly = False
        print("lightly is not installed (pip install lightly): skipping the comparison")

    batch = torch.rand(args.batch_size, 1, args.image_size, args.image_size, device=device)
    warmup = 1
    rows = []
    for method in ("simclr", "byol", "rot", "mg"):
        fp32_step, _ = hfssl_step(method, args.image_size, batch, device, fast=False)
        flops = step_flops(fp32_step)  # also the warm-up step
        t_fp32 = timed_only(fp32_step, args.steps, device)
        fast_step, fast_label = hfssl_step(method, args.image_size, batch, device, fast=True)
        if fast_label.startswith("bf16=off, channels_last=off"):
            t_fast = t_fp32  # the fast path is the fp32 path on this machine
        else:
            t_fast = timed(fast_step, args.steps, warmup, device)
        t_lightly = None
        if have_lightly and method in ("simclr", "byol"):
            t_lightly = timed(
                lightly_step(method, args.image_size, batch, device), args.steps, warmup, device
            )
        rows.append((method, t_fp32, t_fast, fast_label, t_lightly, flops))
        n = args.batch_size
        line = f"{method:>6}: hfssl fp32 {n / t_fp32:8.1f} img/s | fast path ({fast_label}) {n / t_fast:8.1f} img/s"
        if t_lightly is not None:
            line += (
                f" | lightly fp32 {n / t_lightly:8.1f} img/s | hfssl/lightly fp32 {t_lightly / t_fp32:.2f}x,"
                f" fast {t_lightly / t_fast:.2f}x"
            )
        line += (
            f" | {flops / 1e9:.1f} GFLOP/step, fp32 {flops / t_fp32 / 1e9:.1f} GFLOP/s"
            f" = {100 * flops / t_fp32 / peak['fp32']:.0f}% of fp32 peak"
        )
        print(line, flush=True)

    if have_lightly:
        for method, t_fp32, t_fast, _, t_lightly, _ in rows:
            if t_lightly is None:
                continue
            ok32 = "met" if t_lightly / t_fp32 >= 1.0 else "NOT met"
            okfast = "met" if t_lightly / t_fast >= 1.8 else "NOT met"
            print(
                f"targets {method}: fp32 >= 1.0x lightly: {t_lightly / t_fp32:.2f}x ({ok32}); "
                f"fast path >= 1.8x lightly fp32: {t_lightly / t_fast:.2f}x ({okfast})"
            )
    if device.type == "cpu" and not rows[2][3].startswith("bf16=off, channels_last=on"):
        # why the trainer keeps NCHW on CPUs without native bf16: channels-last fp32 for comparison
        cl_step, _ = hfssl_step("rot", args.image_size, batch, device, fast=False, force_channels_last=True)
        t_cl = timed(cl_step, args.steps, 1, device)
        t_rot = rows[2][1]
        print(
            f"   rot: fp32 channels-last {args.batch_size / t_cl:.1f} img/s vs NCHW {args.batch_size / t_rot:.1f} img/s "
            f"(channels-last x{t_rot / t_cl:.2f})"
        )
    if not args.skip_scaling and device.type == "cpu":
        per_proc = max(args.batch_size // 2, 2)
        scaling = process_scaling(per_proc, args.image_size, max(args.steps, 2))
        print(
            f"ROT, gloo DDP, {per_proc} images per process, 1 thread each: 1 process {scaling[1]:.1f} img/s, "
            f"2 processes {scaling[2]:.1f} img/s (x{scaling[2] / scaling[1]:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
