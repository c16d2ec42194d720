"""Which memory format is fastest with bf16 autocast on this CPU: one training step, interleaved.

Feeds :data:`hfssl.training.runtime.MEMORY_FORMAT`'s entry for CPUs with native
bf16. For each setting it builds an hfssl pretext model (small-stem ResNet-18 in 2D; ``resnet18_3d``
with ``--3d``) and times one full step (views + forward + backward + AdamW) on a fixed random batch;
the settings are **interleaved** (A B C A B C ...) so that load from other processes hits them
alike, and the median per setting is printed with its ratio to the first setting.

Usage::

    python benchmarks/bf16_memory_format.py                        # 2D, SimCLR + ROT, batch 64, 32 px
    python benchmarks/bf16_memory_format.py --methods rot --3d --batch-size 4 --image-size 28

Settings: fp32 NCHW (reference), bf16 NCHW, bf16 channels-last (``channels_last_3d`` for 3D).
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

import torch  # noqa: E402

SETTINGS = (("fp32 NCHW", False, False), ("bf16 NCHW", True, False), ("bf16 channels-last", True, True))


def make_step(method: str, batch: torch.Tensor, bf16: bool, channels_last: bool, three_d: bool):
    from hfssl.models import HfsslConfig
    from hfssl.pretext.factory import create_pretext_model

    torch.manual_seed(0)
    size = batch.shape[-1]
    cfg = (
        HfsslConfig(backbone="resnet18_3d", spatial_dims=3, image_size=size)
        if three_d
        else HfsslConfig(backbone="resnet18", image_size=size)
    )
    model = create_pretext_model(method, cfg).train()
    if channels_last:
        fmt = torch.channels_last_3d if three_d else torch.channels_last
        model = model.to(memory_format=fmt)
        batch = batch.contiguous(memory_format=fmt)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    after = getattr(model, "after_optimizer_step", None)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(pixel_values=batch, generator=gen).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if after is not None:
            after()

    return step


def compare(method: str, batch: torch.Tensor, rounds: int, three_d: bool) -> dict[str, float]:
    """Median seconds per step of each setting, measured interleaved over ``rounds`` rounds."""
    steps = {name: make_step(method, batch, bf16, cl, three_d) for name, bf16, cl in SETTINGS}
    for step in steps.values():  # warm-up (oneDNN primitive creation)
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default="simclr,rot", help="comma-separated pretext methods")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds (median)")
    parser.add_argument("--3d", dest="three_d", action="store_true", help="resnet18_3d on volumes")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from hfssl.training.runtime import native_bf16_cpu

    shape = (args.batch_size, 1) + (args.image_size,) * (3 if args.three_d else 2)
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, native bf16 {native_bf16_cpu()}, "
        f"batch {shape}, {args.rounds} interleaved rounds",
        flush=True,
    )
    batch = torch.rand(*shape)
    for method in args.methods.split(","):
        medians = compare(method.strip(), batch, args.rounds, args.three_d)
        ref = medians[SETTINGS[0][0]]
        cells = [f"{name} {args.batch_size / t:7.1f} img/s (x{ref / t:.2f})" for name, t in medians.items()]
        print(f"{method:>6}: " + " | ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
