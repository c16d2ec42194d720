"""Measure how to store 2D MedMNIST images in a ``datasets.Dataset``: ``Image()`` vs ``Array2D``.

Builds the BreastMNIST train split both ways and times
  * building the Dataset (and, for arrays, ``Dataset.from_dict`` vs hfssl's direct Arrow builder),
  * reading every row as torch tensors through ``with_format("torch")`` (row by row and in one slice),
  * one pass of a ``torch.utils.data.DataLoader`` (batch 64, main process),
and checks that both formats give back the same pixels. Prints a table; the numbers justify the
array schema used by ``hfssl.data.medmnist``.

Usage:
    python benchmarks/data_format.py [--data-dir DIR] [--image-size 28] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable


def _best(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall time of ``repeats`` calls (and the last result)."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir", default=None, help="data root (default: $HFSSL_DATA_DIR, ~/.cache/hfssl/data)"
    )
    parser.add_argument("--image-size", type=int, default=28, choices=(28, 64, 128, 224))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from datasets import Array2D, ClassLabel, Dataset, Features, Image
    from PIL import Image as PILImage

    from hfssl.data.generic import column_to_numpy, dataset_from_arrays
    from hfssl.data.medmnist import fetch_medmnist, load_medmnist
    from hfssl.data.medmnist_info import get_info

    torch.set_num_threads(1)
    info = get_info("breastmnist")
    size = args.image_size
    path = fetch_medmnist("breastmnist", size, args.data_dir)
    with np.load(path) as npz:
        images, labels = npz["train_images"], npz["train_labels"][:, 0].astype(np.int64)
    n = len(images)
    names = list(info.labels)
    f_array = Features({"image": Array2D((size, size), "uint8"), "label": ClassLabel(names=names)})
    f_image = Features({"image": Image(), "label": ClassLabel(names=names)})

    rows: list[tuple[str, str, float]] = []

    t, ds_arr_dict = _best(
        lambda: Dataset.from_dict({"image": images, "label": labels}, features=f_array), args.repeats
    )
    rows.append(("build", "Array2D via Dataset.from_dict", t))
    t, ds_arr = _best(
        lambda: dataset_from_arrays({"image": images, "label": labels}, f_array, split="train"), args.repeats
    )
    rows.append(("build", "Array2D via hfssl dataset_from_arrays", t))
    pil = [PILImage.fromarray(a) for a in images]
    t, ds_img = _best(
        lambda: Dataset.from_dict({"image": pil, "label": labels}, features=f_image), args.repeats
    )
    rows.append(("build", "Image() (PNG-encoded) via from_dict", t))
    t, _ = _best(lambda: load_medmnist("breastmnist", size, args.data_dir), args.repeats)
    rows.append(("build", "load_medmnist end to end (cached MD5)", t))

    def rows_torch(ds):
        fmt = ds.with_format("torch")
        return [fmt[i]["image"] for i in range(len(fmt))]

    def slice_torch(ds):
        return ds.with_format("torch")[:]["image"]

    def loader(ds):
        dl = torch.utils.data.DataLoader(ds.with_format("torch"), batch_size=64, shuffle=True, num_workers=0)
        return sum(int(b["image"].shape[0]) for b in dl)

    for label, ds in (("Array2D", ds_arr), ("Image()", ds_img)):
        t, out = _best(lambda ds=ds: rows_torch(ds), args.repeats)
        rows.append(("read", f"{label}: every row, with_format('torch')[i]", t))
        first = out[0]
        t, out = _best(lambda ds=ds: slice_torch(ds), args.repeats)
        rows.append(("read", f"{label}: all rows, with_format('torch')[:]", t))
        whole = torch.stack(list(out)) if isinstance(out, list) else out
        whole = whole.reshape(n, size, size)  # Image() comes back channel-first: (N, 1, H, W)
        assert whole.shape[0] == n and torch.equal(whole.to(torch.uint8), torch.from_numpy(images)), label
        t, count = _best(lambda ds=ds: loader(ds), args.repeats)
        assert count == n
        rows.append(("read", f"{label}: DataLoader(batch 64) epoch", t))
        rows.append(
            ("note", f"{label}: tensor dtype {first.dtype}, shape {tuple(first.shape)}", float("nan"))
        )
    assert ds_arr.data.table.equals(ds_arr_dict.data.table)

    # Array2D alternatives: keep uint8 in the formatter, or materialise the split once.
    def loader_uint8(ds):
        fmt = ds.with_format("torch", dtype=torch.uint8)
        dl = torch.utils.data.DataLoader(fmt, batch_size=64, shuffle=True, num_workers=0)
        return sum(int(b["image"].shape[0]) for b in dl)

    t, count = _best(lambda: loader_uint8(ds_arr), args.repeats)
    assert count == n
    rows.append(("read", "Array2D: DataLoader epoch, with_format('torch', dtype=uint8)", t))
    t, out = _best(lambda: torch.from_numpy(column_to_numpy(ds_arr, "image", copy=True)), args.repeats)
    assert out.dtype == torch.uint8 and torch.equal(out, torch.from_numpy(images))
    rows.append(("read", "Array2D: all rows, hfssl column_to_numpy(copy=True) -> uint8 tensor", t))

    def loader_tensor(ds):
        x = torch.from_numpy(column_to_numpy(ds, "image", copy=True))
        y = torch.from_numpy(column_to_numpy(ds, "label", copy=True))
        dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64, shuffle=True)
        return sum(int(b[0].shape[0]) for b in dl)

    t, count = _best(lambda: loader_tensor(ds_arr), args.repeats)
    assert count == n
    rows.append(("read", "Array2D: column_to_numpy + TensorDataset DataLoader epoch", t))

    print(
        f"BreastMNIST {size}x{size} train split: {n} images, median of {args.repeats} runs, torch threads 1"
    )
    width = max(len(r[1]) for r in rows)
    for kind, what, t in rows:
        value = "" if t != t else f"{t * 1000:9.1f} ms"
        print(f"  {kind:<5} {what:<{width}} {value}")


if __name__ == "__main__":
    main()
