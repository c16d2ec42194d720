"""Seconds per pretraining step of the 3D decoder methods (AE, MG, PCRL) at two decoder widths.

The 3D zoo's `cpu` budget slims the U-Net encoder to 16/32/64/128. With the paper's decoder widths
(256/128/64) the decoder is then wider than the encoder and dominates a step; the slim 64/32/16
keeps the decoder in proportion. This times what the zoo entries run: ``unet3d_encoder`` with the
slim encoder on 28^3 volumes, the recipe's batch (16; PCRL's two views included in its own
step), AdamW, fp32 (the resolved precision for 3D CNN training on CPUs whose bf16 conv3d
gradients are wrong; pass ``--dtype`` to check another), after one warm-up step. One JSON line
per method and width is appended to ``benchmarks/results/decoder_width.jsonl`` with the CPU
model, the thread count and the load average at the start (a shared machine reads slower).

    python benchmarks/decoder_width.py [--methods ae mg pcrl] [--steps 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from knn_lift import cpu_model  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "decoder_width.jsonl"
WIDTHS = {"paper": [256, 128, 64], "slim": [64, 32, 16]}
SLIM_ENCODER = [16, 32, 64, 128]


def time_steps(method: str, decoder: list[int], steps: int, batch: int) -> tuple[list[float], int]:
    import torch

    from hfssl.models import HfsslConfig
    from hfssl.pretext.factory import create_pretext_model

    torch.manual_seed(0)
    backbone = HfsslConfig(
        backbone="unet3d_encoder",
        in_chans=1,
        image_size=28,
        spatial_dims=3,
        backbone_kwargs={"channels": SLIM_ENCODER},
    )
    model = create_pretext_model(method, backbone, decoder_channels=decoder)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 1, 28, 28, 28)
    seconds = []
    for i in range(steps + 1):  # step 0 warms up the kernels
        t0 = time.perf_counter()
        out = model(pixel_values=x)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i:
            seconds.append(time.perf_counter() - t0)
    return seconds, sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", nargs="+", default=["ae", "mg", "pcrl"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    print(f"{'method':6} {'decoder':12} {'s/step':>7} {'params':>10}")
    by_method: dict[str, dict[str, float]] = {}
    for method in args.methods:
        for label, widths in WIDTHS.items():
            seconds, params = time_steps(method, widths, args.steps, args.batch)
            median = statistics.median(seconds)
            by_method.setdefault(method, {})[label] = median
            row = {
                "date": time.strftime("%Y-%m-%d"),
                "cpu": cpu_model(),
                "threads": torch.get_num_threads(),
                "load_at_start": round(load, 2),
                "method": method,
                "encoder": SLIM_ENCODER,
                "decoder": widths,
                "batch": args.batch,
                "seconds_per_step": [round(s, 3) for s in seconds],
                "median_s": round(median, 3),
                "parameters": params,
            }
            with RESULTS.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
            print(f"{method:6} {label + ' ' + '/'.join(map(str, widths)):12} {median:7.2f} {params:10d}")
    for method, t in by_method.items():
        print(f"{method}: the slim decoder's step is {t['paper'] / t['slim']:.1f}x faster")


if __name__ == "__main__":
    main()
