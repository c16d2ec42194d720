"""Backbone sizes and training throughput: parameters and forward+backward images/s per backbone.

One line per backbone (``HfsslModel``, random init, train mode): parameter count, pooled
embedding size, batch size used, and the median seconds per forward+backward step of a batch
(loss = mean squared pooled embedding), as images (or volumes) per second. 2D backbones run at
batch 64; 3D ones at ``--batch-size-3d`` (default 8: a 28^3 ResNet-18 step at batch 64 takes
minutes on a laptop CPU). The batch used is printed.

Usage::

    python benchmarks/models.py                        # CPU, all backbones
    python benchmarks/models.py --device cuda --batch-size-3d 64
    python benchmarks/models.py --only resnet18-28 vit_tiny-28 --steps 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# label -> HfsslConfig kwargs (1-channel inputs, as MedMNIST)
BACKBONES: dict[str, dict] = {
    "resnet18-28": dict(backbone="resnet18", image_size=28),
    "resnet18-64": dict(backbone="resnet18", image_size=64),
    "resnet50-64": dict(backbone="resnet50", image_size=64),
    "vit_tiny-28": dict(backbone="vit_tiny_patch16_224", image_size=28, backbone_kwargs={"patch_size": 4}),
    "convnext_atto-64": dict(backbone="convnext_atto", image_size=64),
    "unet3d_encoder-28^3": dict(backbone="unet3d_encoder", spatial_dims=3, image_size=28),
    "resnet18_3d-28^3": dict(backbone="resnet18_3d", spatial_dims=3, image_size=28),
}


def bench_one(
    label: str, kwargs: dict, batch_2d: int, batch_3d: int, steps: int, warmup: int, device: str
) -> str:
    """Build one backbone, time ``steps`` forward+backward passes, return its table line."""
    import torch

    from hfssl import HfsslConfig, HfsslModel
    from hfssl.models.backbones import SMALL_STEM_BASES

    config = HfsslConfig(**kwargs)
    model = HfsslModel(config).to(device).train()
    n_params = sum(p.numel() for p in model.parameters())
    batch = batch_3d if config.spatial_dims == 3 else batch_2d
    x = torch.rand(batch, config.in_chans, *([config.image_size] * config.spatial_dims), device=device)
    times = []
    for i in range(warmup + steps):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        loss = model(x).pooler_output.pow(2).mean()
        loss.backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    step = statistics.median(times)
    has_resnet_stem = config.backbone in SMALL_STEM_BASES or config.backbone == "resnet18_3d"
    stem = "small" if config.small_input_stem else ("std" if has_resnet_stem else "-")
    return (
        f"| {label:<20} | {n_params / 1e6:8.2f} M | {config.feature_dim:5d} | {stem:5} | {batch:5d} "
        f"| {step:8.3f} s | {batch / step:9.1f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64, help="2D batch size")
    parser.add_argument("--batch-size-3d", type=int, default=8, help="3D batch size")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--only", nargs="*", default=None, choices=sorted(BACKBONES), metavar="LABEL")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"# hfssl backbones, forward+backward, device={args.device}, torch {torch.__version__}, "
        f"threads={torch.get_num_threads()}, steps={args.steps} (+{args.warmup} warm-up)"
    )
    print("| backbone             |   params   |   dim | stem  | batch | s / step   |  images/s |")
    print("|----------------------|------------|-------|-------|-------|------------|-----------|")
    for label in args.only or BACKBONES:
        line = bench_one(
            label, BACKBONES[label], args.batch_size, args.batch_size_3d, args.steps, args.warmup, args.device
        )
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
