"""Do hfssl's batched corruptions match ``medmnistc``'s (MedMNIST-C) statistics per severity?

``medmnistc`` 0.1.0 installs from PyPI but cannot be imported where the ImageMagick C library is
missing (its ``filter.py`` imports ``wand`` at module level), works on one PIL image at a time and
pulls in OpenCV and scikit-image. This script puts an installed copy on ``sys.path``
(``--medmnistc-path``, e.g. a ``pip install --target DIR --no-deps medmnistc scikit-image
opencv-python-headless lazy-loader imageio tifffile wand``), replaces ``wand`` by a stub (only
``motion_blur`` needs it, and that one is left out), and compares on the same images, per
corruption and severity, the mean shift, std ratio and PSNR of both implementations (uint8
outputs, as both store them) and the time per split.

Images: ``--n`` BreastMNIST test images at 64 px, bilinearly enlarged to 224 px (the side
MedMNIST-C's tables are tuned for, where hfssl's spatial scale factor is 1); ultrasound corruptions
on the grey image, fundus ones (``defocus_blur``, ``gaussian_noise``) on it as RGB.

Usage:
    python benchmarks/corruption_parity.py --medmnistc-path /tmp/mcpkgs [--n 16]
"""

from __future__ import annotations

import argparse
import sys
import time
import types


def _stub_wand() -> None:
    """``medmnistc.corruptions.filter`` imports ``wand`` at import time; only motion blur uses it."""
    for name in ("wand", "wand.image", "wand.api"):
        mod = types.ModuleType(name)
        sys.modules.setdefault(name, mod)
    sys.modules["wand.image"].Image = object  # type: ignore[attr-defined]
    sys.modules["wand.api"].library = None  # type: ignore[attr-defined]


def _stats(clean, out) -> tuple[float, float, float]:
    import numpy as np

    c = clean.astype(np.float64) / 255
    o = out.astype(np.float64) / 255
    mse = float(((o - c) ** 2).mean())
    psnr = float("inf") if mse == 0 else 10 * np.log10(1 / mse)
    return float(o.mean() - c.mean()), float(o.std() / c.std()), psnr


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--medmnistc-path", required=True, help="folder with medmnistc and its dependencies")
    parser.add_argument("--n", type=int, default=16, help="test images")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)

    sys.path.insert(0, args.medmnistc_path)
    _stub_wand()
    import numpy as np
    import torch
    from medmnistc.corruptions.registry import CORRUPTIONS_DS
    from PIL import Image

    from hfssl.data import load_source, to_tensor_batch
    from hfssl.data.corruptions import MODALITIES, apply_corruption

    torch.set_num_threads(1)
    test = load_source("breastmnist", image_size=64, data_dir=args.data_dir)["test"]
    x, _ = to_tensor_batch(test.with_format("arrow")[: args.n])
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False).clamp(0, 1)
    grey = (x[:, 0] * 255).round().to(torch.uint8).numpy()
    cases = [("ultrasound", "breastmnist", n) for n in MODALITIES["ultrasound"] if n != "motion_blur"]
    cases += [("fundus", "retinamnist", n) for n in ("defocus_blur", "gaussian_noise")]
    print(f"{args.n} BreastMNIST test images at 224 px; per severity: mean shift / std ratio / PSNR dB")
    print(
        f"{'corruption':<22} {'impl':<10} "
        + " ".join(f"{'sev ' + str(s):>20}" for s in range(1, 6))
        + "  time"
    )
    worst = 0.0
    for modality, table, name in cases:
        rgb = modality == "fundus"
        clean = np.repeat(grey[..., None], 3, -1) if rgb else grey
        batch = x.repeat(1, 3, 1, 1) if rgb else x
        mc = CORRUPTIONS_DS[table][name]
        rows = {"medmnistc": [], "hfssl": []}
        times = {"medmnistc": 0.0, "hfssl": 0.0}
        for s in range(1, 6):
            np.random.seed(0)
            t0 = time.perf_counter()
            outs = [np.asarray(mc.apply(Image.fromarray(img), severity=s - 1)) for img in clean]
            times["medmnistc"] += time.perf_counter() - t0
            ref = np.stack(outs).reshape(clean.shape)
            t0 = time.perf_counter()
            y = apply_corruption(batch, name, s, modality=modality, seed=0)
            times["hfssl"] += time.perf_counter() - t0
            ours = (y * 255).round().to(torch.uint8)
            ours = ours.permute(0, 2, 3, 1).numpy() if rgb else ours[:, 0].numpy()
            rows["medmnistc"].append(_stats(clean, ref))
            rows["hfssl"].append(_stats(clean, ours))
            worst = max(worst, abs(rows["medmnistc"][-1][2] - rows["hfssl"][-1][2]))
        for impl, vals in rows.items():
            cells = " ".join(f"{m:+.3f}/{r:.3f}/{p:5.1f}".rjust(20) for m, r, p in vals)
            print(f"{name:<22} {impl:<10} {cells}  {times[impl]:.2f}s")
    print(f"largest PSNR difference: {worst:.2f} dB")


if __name__ == "__main__":
    main()
