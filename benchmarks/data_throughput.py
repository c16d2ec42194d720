"""Data loading + augmentation throughput (images/s) of hfssl's torch bridge on real MedMNIST files.

Prints three tables:

1. Arrow -> uint8 conversion of a whole split: ``arrow_to_numpy`` versus the ``numpy`` formatter of
   ``datasets`` and per-row access (the numbers behind ``MedicalImageDataset``'s in-memory choice);
2. batched ``grid_sample`` rotation versus a per-sample ``torchvision`` loop (the numbers behind
   ``hfssl.data.augment``'s own batched code);
3. ``make_dataloader`` throughput for BreastMNIST 28 px, BreastMNIST 64 px and AdrenalMNIST3D 28^3,
   with 0 and 2 workers and the presets none, S3, S6 and contrastive views, batch 128, shuffled,
   augmentation in the loader's collate step (CPU) or, with ``--device cuda``, on the device batch.

Usage::

    python benchmarks/data_throughput.py --data-dir /path/to/data      # or set HFSSL_DATA_DIR
    python benchmarks/data_throughput.py --workers 0 --presets none S6 --seconds 1
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DATASETS = {  # label -> (source spec, image size)
    "breast-28 (2D)": ("breastmnist", 28),
    "breast-64 (2D)": ("breastmnist", 64),
    "adrenal3d-28 (3D)": ("adrenalmnist3d", 28),
}


def _augment(preset: str, spatial_dims: int, seed: int):
    from hfssl.data.augment import ContrastiveViews, get_augmentation

    if preset == "views":
        return ContrastiveViews(spatial_dims=spatial_dims, seed=seed)
    return None if preset == "none" else get_augmentation(preset, spatial_dims=spatial_dims, seed=seed)


def _timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def conversion_table(splits: dict) -> list[str]:
    """Seconds to get a whole train split as one uint8 array, three ways."""
    import numpy as np

    from hfssl.data.torch_data import arrow_to_numpy

    lines = [
        "| split | rows | arrow_to_numpy (s) | with_format('numpy')[:] (s) | per-row [i], extrapolated (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, split in splits.items():
        arrow = _timed(lambda s=split: arrow_to_numpy(s.with_format("arrow")[:].column("image")))
        fmt = _timed(lambda s=split: s.with_format("numpy")[:]["image"], repeat=1)
        view = split.with_format("numpy")
        rows = min(200, len(split))
        per_row = (
            _timed(lambda v=view, n=rows: [v[i]["image"] for i in range(n)], repeat=1) * len(split) / rows
        )
        same = np.array_equal(
            arrow_to_numpy(split.with_format("arrow")[:8].column("image")), view[:8]["image"].astype(np.uint8)
        )
        lines.append(
            f"| {name} | {len(split)} | {arrow:.4f} | {fmt:.3f} | {per_row:.2f} |"
            + ("" if same else " MISMATCH")
        )
    return lines


def rotation_table() -> list[str]:
    """Batched affine rotation vs a per-sample torchvision loop, 128 images of 28 px."""
    import torch
    import torchvision.transforms.v2.functional as TF

    from hfssl.data.augment import RandomRotation

    x = torch.rand(128, 1, 28, 28)
    op = RandomRotation(30, p=1.0, seed=0)
    angles = (torch.rand(128) * 60 - 30).tolist()
    batched = _timed(lambda: op(x), repeat=10)
    looped = _timed(lambda: torch.stack([TF.rotate(x[i], angles[i]) for i in range(128)]), repeat=3)
    return [
        "| rotation ±30°, 128 × 28² | ms per batch |",
        "|---|---:|",
        f"| hfssl batched grid_sample | {batched * 1e3:.2f} |",
        f"| torchvision v2 rotate, per-sample loop | {looped * 1e3:.2f} |",
        f"| speed-up | {looped / batched:.1f}x |",
    ]


def loader_throughput(split, spatial_dims: int, workers: int, preset: str, args) -> float:
    """Images/s over ``args.seconds`` of shuffled epochs (after one warm-up batch)."""
    import torch

    from hfssl.data.torch_data import make_dataloader

    device = torch.device(args.device)
    augment = _augment(preset, spatial_dims, args.seed)
    on_device = device.type != "cpu"
    loader = make_dataloader(
        split,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=workers,
        augment=None if on_device else augment,
        seed=args.seed,
        persistent_workers=workers > 0,
    )

    def consume(batch) -> int:
        pixels = batch["pixel_values"]
        if on_device:
            pixels = pixels.to(device, non_blocking=True)
            if augment is not None:
                augment(pixels)
        return pixels.shape[0]

    images, start, warm = 0, None, False
    while True:
        for batch in loader:
            n = consume(batch)
            if not warm:  # exclude worker start-up and first-call costs
                warm, start = True, time.perf_counter()
                continue
            images += n
            if time.perf_counter() - start >= args.seconds:
                if on_device:
                    torch.cuda.synchronize(device)
                return images / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", default=os.environ.get("HFSSL_DATA_DIR"), help="data root (has medmnist/)"
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--presets", nargs="+", default=["none", "S3", "S6", "views"])
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per cell")
    parser.add_argument("--device", default="cpu", help="cpu: augment in the loader; cuda: augment on device")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-micro", action="store_true", help="only the loader table")
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("pass --data-dir DIR or set HFSSL_DATA_DIR (the folder holding medmnist/)")

    import torch

    from hfssl.data import load_source
    from hfssl.utils.logging import set_verbosity

    set_verbosity("warning")
    if args.threads:
        torch.set_num_threads(args.threads)
    splits, dims = {}, {}
    for name, (spec, size) in DATASETS.items():
        splits[name] = load_source(spec, image_size=size, data_dir=args.data_dir)["train"]
        dims[name] = 3 if "3D" in name else 2

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, device {args.device}"
    )
    if not args.skip_micro:
        print("\nArrow -> uint8 array, whole train split\n")
        print("\n".join(conversion_table(splits)))
        print("\nBatched vs per-sample augmentation\n")
        print("\n".join(rotation_table()))

    print(f"\nLoader + augmentation throughput, images/s (batch {args.batch_size}, shuffled, train split)\n")
    header = "| data | workers | " + " | ".join(args.presets) + " |"
    print(header)
    print("|---|---:|" + "---:|" * len(args.presets))
    for name, split in splits.items():
        for workers in args.workers:
            cells = [f"{loader_throughput(split, dims[name], workers, p, args):,.0f}" for p in args.presets]
            print(f"| {name} | {workers} | " + " | ".join(cells) + " |", flush=True)
    print("\n(views = two ContrastiveViews per image; its images/s counts input images, not views)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
