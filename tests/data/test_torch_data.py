"""Arrow schema -> torch: bit-exact conversion, layouts, the dataset and the DataLoader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Array2D, Array3D, ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

from hfssl.data.augment import ContrastiveViews, get_augmentation
from hfssl.data.samplers import MajorityResampler
from hfssl.data.torch_data import (
    MedicalImageDataset,
    arrow_to_numpy,
    image_layout,
    make_dataloader,
    to_tensor_batch,
)
from hfssl.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def breast(data_dir) -> DatasetDict:
    from hfssl.data import load_source

    return load_source("breastmnist", data_dir=data_dir)


@pytest.fixture(scope="module")
def breast_npz(data_dir):
    with np.load(data_dir / "medmnist" / "breastmnist.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def adrenal(data_dir) -> DatasetDict:
    from hfssl.data import load_source

    return load_source("adrenalmnist3d", data_dir=data_dir)


def _rgb(n: int = 6, size: int = 5) -> Dataset:
    rng = np.random.default_rng(0)
    features = Features(
        {"image": Array3D((size, size, 3), "uint8"), "label": ClassLabel(names=["a", "b", "c"])}
    )
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return Dataset.from_dict({"image": images, "label": rng.integers(0, 3, n)}, features=features)


def test_arrow_to_numpy_is_bit_exact(breast, breast_npz):
    table = breast["train"].with_format("arrow")[:]
    images = arrow_to_numpy(table.column("image"))
    assert images.dtype == np.uint8 and images.shape == (546, 28, 28)
    np.testing.assert_array_equal(images, breast_npz["train_images"])
    np.testing.assert_array_equal(arrow_to_numpy(table.column("label")), breast_npz["train_labels"][:, 0])
    # a slice (non-zero offsets) and a select (indices mapping)
    np.testing.assert_array_equal(
        arrow_to_numpy(breast["train"].with_format("arrow")[100:110].column("image")),
        breast_npz["train_images"][100:110],
    )
    sub = breast["train"].select([9, 2, 500])
    np.testing.assert_array_equal(
        arrow_to_numpy(sub.with_format("arrow")[:].column("image")), breast_npz["train_images"][[9, 2, 500]]
    )


def test_arrow_to_numpy_rejects_ragged():
    import pyarrow as pa

    with pytest.raises(DataError, match="different shapes"):
        arrow_to_numpy(pa.array([[1, 2], [3]]))
    with pytest.raises(DataError, match="null"):
        arrow_to_numpy(pa.array([[1, 2], None]))


def test_to_tensor_batch_grey(breast, breast_npz):
    ref = torch.from_numpy(breast_npz["train_images"][:8]).float().unsqueeze(1) / 255
    for fmt in ("numpy", "torch", "arrow", None):
        batch = breast["train"].with_format(fmt)[:8]
        pixel_values, labels = to_tensor_batch(batch)
        assert pixel_values.shape == (8, 1, 28, 28) and pixel_values.dtype == torch.float32
        assert torch.equal(pixel_values, ref)
        assert labels.dtype == torch.long and labels.tolist() == breast_npz["train_labels"][:8, 0].tolist()


def test_to_tensor_batch_rgb_and_3d(adrenal):
    rgb = _rgb()
    pixel_values, labels = to_tensor_batch(rgb.with_format("numpy")[:4])
    raw = rgb.with_format("numpy")[:4]["image"]
    assert pixel_values.shape == (4, 3, 5, 5)
    assert torch.equal(pixel_values[:, 1], torch.from_numpy(raw[..., 1]).float() / 255)  # HWC -> CHW
    assert image_layout(rgb.features["image"]) == "hwc"
    vol, vlabels = to_tensor_batch(adrenal["train"].with_format("arrow")[:3])
    assert vol.shape == (3, 1, 28, 28, 28) and vlabels.shape == (3,)
    assert image_layout(adrenal["train"].features["image"]) == "3d"
    assert float(vol.max()) <= 1.0 and float(vol.min()) >= 0.0
    # no label column: labels is None; explicit layout overrides the guess
    pv, none = to_tensor_batch({"image": np.zeros((2, 6, 6, 3), np.uint8)}, layout="3d")
    assert pv.shape == (2, 1, 6, 6, 3) and none is None
    with pytest.raises(DataError, match="no image column"):
        to_tensor_batch({"pixels": np.zeros((2, 4, 4), np.uint8)})
    with pytest.raises(DataError, match="outside 0..255"):
        to_tensor_batch({"image": np.full((2, 4, 4), 300, np.int32)})


def test_multilabel_labels():
    features = Features({"image": Array2D((4, 4), "uint8"), "label": Sequence(Value("uint8"), length=3)})
    ds = Dataset.from_dict(
        {"image": np.zeros((2, 4, 4), np.uint8), "label": [[1, 0, 1], [0, 1, 0]]}, features=features
    )
    _, labels = to_tensor_batch(ds.with_format("arrow")[:])
    assert labels.dtype == torch.long and labels.tolist() == [[1, 0, 1], [0, 1, 0]]
    item = MedicalImageDataset(ds)[1]
    assert item["labels"].tolist() == [0, 1, 0] and item["image"].shape == (1, 4, 4)


def test_dataset_in_memory_and_lazy_agree(breast):
    from hfssl.data.imbalance import make_imbalanced

    split = make_imbalanced(breast, 10, seed=0).dataset["train"]  # a select()ed split
    eager = MedicalImageDataset(split)
    lazy = MedicalImageDataset(split, in_memory=False)
    auto_lazy = MedicalImageDataset(split, max_memory_bytes=1000)
    assert eager.in_memory and not lazy.in_memory and not auto_lazy.in_memory
    idx = [0, 17, 428, 5]
    a, b = eager.__getitems__(idx), lazy.__getitems__(idx)
    assert a["image"].dtype == torch.uint8 and a["image"].shape == (4, 1, 28, 28)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["labels"], b["labels"])
    assert len(eager) == 429
    assert torch.equal(eager[17]["image"], a["image"][1])


def test_dataset_needs_array_images():
    ds = Dataset.from_dict({"image": ["a.png", "b.png"], "label": [0, 1]})
    with pytest.raises(DataError, match="not a fixed-shape array"):
        MedicalImageDataset(ds)
    with pytest.raises(DataError, match="no image column"):
        MedicalImageDataset(ds.rename_column("image", "path"))


def test_dataloader_covers_the_split_in_order(breast, breast_npz):
    loader = make_dataloader(breast["validation"], batch_size=32)
    batches = list(loader)
    assert [len(b["labels"]) for b in batches] == [32, 32, 14]
    images = torch.cat([b["pixel_values"] for b in batches])
    ref = torch.from_numpy(breast_npz["val_images"]).float().unsqueeze(1) / 255
    assert torch.equal(images, ref)


def test_dataloader_shuffle_and_augment_are_seeded(breast):
    def first(seed, augment=None):
        loader = make_dataloader(breast["train"], batch_size=64, shuffle=True, seed=seed, augment=augment)
        return [next(iter(loader))["pixel_values"] for _ in range(2)]

    a, b, c = first(0), first(0), first(1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], a[1])  # a new order each epoch
    assert not torch.equal(a[0], c[0])
    s3 = first(0, get_augmentation("S3", seed=0))
    s3_again = first(0, get_augmentation("S3", seed=0))
    assert torch.equal(s3[0], s3_again[0]) and not torch.equal(s3[0], a[0])


def test_dataloader_with_sampler_and_views(breast):
    sampler = MajorityResampler(breast["train"], ratio=1.0, seed=0)
    loader = make_dataloader(
        breast["train"], batch_size=100, sampler=sampler, augment=ContrastiveViews(spatial_dims=2)
    )
    labels, batch = [], None
    for batch in loader:
        labels.append(batch["labels"])
        assert len(batch["views"]) == 2 and batch["views"][0].shape == batch["pixel_values"].shape
    assert torch.bincount(torch.cat(labels)).tolist() == [147, 147]
    with pytest.raises(ConfigError, match="sampler"):
        make_dataloader(breast["train"], shuffle=True, sampler=sampler)


def test_dataloader_with_workers_is_reproducible(breast):
    def run():
        loader = make_dataloader(
            breast["train"],
            batch_size=128,
            shuffle=True,
            num_workers=2,
            seed=3,
            augment=get_augmentation("S5"),
        )
        return [b["pixel_values"] for b in loader]

    first, second = run(), run()
    assert len(first) == 5
    assert all(torch.equal(x, y) for x, y in zip(first, second))


def test_workers_do_not_repeat_each_others_augmentations():
    image = np.random.default_rng(0).integers(0, 256, (12, 12), dtype=np.uint8)
    features = Features({"image": Array2D((12, 12), "uint8"), "label": ClassLabel(names=["a"])})
    same = Dataset.from_dict({"image": np.repeat(image[None], 64, 0), "label": [0] * 64}, features=features)
    loader = make_dataloader(same, batch_size=32, num_workers=2, augment=get_augmentation("S5"))
    b0, b1 = (b["pixel_values"] for b in loader)  # batch 0 from worker 0, batch 1 from worker 1
    assert not torch.equal(b0, b1)
