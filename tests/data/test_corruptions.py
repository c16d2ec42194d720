"""hfssl.data.corruptions: every corruption changes the image, grows with the severity, is
deterministic per (seed, image index), keeps shape/dtype/range in 2D and 3D; parsing refuses bad
names, severities and modalities; corrupt_dataset and the corrupt:P augmentation."""

from __future__ import annotations

import pytest
import torch

from hfssl.data.corruptions import (
    MODALITIES,
    SEVERITIES,
    RandomCorruption,
    apply_corruption,
    corrupt_dataset,
    corruptions_for,
    parse_corruption,
)
from hfssl.errors import ConfigError, DataError


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def _u8(x: torch.Tensor) -> torch.Tensor:  # what is stored: MedMNIST-C returns uint8 too
    return (x * 255).round() / 255


@pytest.fixture(scope="module")
def images(data_dir) -> dict[str, torch.Tensor]:
    """Real test images per modality: BreastMNIST 28 px, AdrenalMNIST3D 28 px; fundus: a smooth RGB
    64 px image with vessel-like lines (DRIVE's 584 px images are too slow for a unit test)."""
    from hfssl.data import load_source, to_tensor_batch

    breast, _ = to_tensor_batch(load_source("breastmnist", image_size=28)["test"].with_format("arrow")[:24])
    adrenal, _ = to_tensor_batch(
        load_source("adrenalmnist3d", image_size=28)["test"].with_format("arrow")[:6]
    )
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    base = 0.6 * torch.exp(-((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / 0.15)
    vessels = 0.25 * (torch.sin(30 * xx + 5 * yy) > 0.9).float()
    rgb = torch.stack([base + 0.2, base * 0.6 + vessels, base * 0.3]).clamp(0, 1)
    fundus = torch.stack([rgb, rgb.flip(-1), rgb.flip(-2), rgb.transpose(-1, -2)])
    return {"ultrasound": breast, "ct3d": adrenal, "fundus": fundus}


CASES = [(m, n) for m, table in MODALITIES.items() for n in table]


@pytest.mark.parametrize(("modality", "name"), CASES, ids=[f"{m}-{n}" for m, n in CASES])
def test_changes_image_monotone_in_severity_and_keeps_format(images, modality, name):
    x = images[modality]
    psnrs = []
    for severity in SEVERITIES:
        y = apply_corruption(x, name, severity, modality=modality, seed=0)
        assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
        psnrs.append(_psnr(_u8(y), x))
        if name == "pixelate":  # the statistic that grows: blocks, i.e. fewer distinct rows
            psnrs[-1] = float((y[..., 1:, :] != y[..., :-1, :]).any(-1).sum(-1).float().mean())
    assert psnrs[0] < 60, f"{name} severity 1 barely changes the image (PSNR {psnrs[0]:.1f} dB)"
    # the same artefact, stronger: PSNR falls with the severity (0.1 dB slack for uint8 rounding);
    # pixelate's PSNR is not monotone (a factor 1/2 aliases less than 0.6), its block count is
    assert all(b <= a + 0.1 for a, b in zip(psnrs, psnrs[1:])), psnrs
    assert psnrs[-1] < psnrs[0] - 1.0, psnrs


@pytest.mark.parametrize("modality", ["ultrasound", "ct3d"])
def test_deterministic_per_seed_and_image_index(images, modality):
    x = images[modality]
    for name in MODALITIES[modality]:
        a = apply_corruption(x, name, 3, modality=modality, seed=7)
        assert torch.equal(a, apply_corruption(x, name, 3, modality=modality, seed=7))
        # batching does not matter: image i is corrupted by its index, not its batch position
        tail = apply_corruption(x[2:], name, 3, modality=modality, seed=7, indices=range(2, len(x)))
        assert torch.allclose(a[2:], tail, atol=1e-6)
    noisy = "speckle_noise" if modality == "ultrasound" else "gaussian_noise"
    a = apply_corruption(x, noisy, 3, modality=modality, seed=0)
    assert not torch.equal(a, apply_corruption(x, noisy, 3, modality=modality, seed=1))


def test_parse_and_bad_input():
    assert parse_corruption("speckle_noise:3", "breastmnist", 2) == [("speckle_noise", 3)]
    assert parse_corruption("pixelate", "breastmnist") == [("pixelate", s) for s in SEVERITIES]
    everything = parse_corruption("all", "adrenalmnist3d", 3)
    assert len(everything) == len(corruptions_for("adrenalmnist3d")) * 5 == 20
    assert corruptions_for("drive") == tuple(MODALITIES["fundus"])
    with pytest.raises(ConfigError, match="unknown corruption 'fog'.*speckle_noise"):
        parse_corruption("fog", "breastmnist")
    for bad in ("speckle_noise:0", "speckle_noise:6", "speckle_noise:x", "speckle_noise:2.5"):
        with pytest.raises(ConfigError, match="is not 1-5"):
            parse_corruption(bad, "breastmnist")
    with pytest.raises(
        ConfigError, match=r"'defocus_blur' does not exist for breastmnist \(ultrasound, 2D\)"
    ):
        parse_corruption("defocus_blur", "breastmnist")
    with pytest.raises(ConfigError, match="'slice_dropout' does not exist for breastmnist"):
        parse_corruption("slice_dropout:1", "breastmnist")
    with pytest.raises(ConfigError, match="are for 3D images but adrenalmnist3d is 2D"):
        parse_corruption("all", "adrenalmnist3d", 2)
    with pytest.raises(DataError, match="has no corruption set"):
        parse_corruption("all", "pathmnist")
    with pytest.raises(DataError, match="float 2D batches"):
        apply_corruption(torch.zeros(2, 1, 4, 8, 8), "pixelate", 1, modality="ultrasound")


def test_corrupt_dataset_changes_images_only(data_dir):
    from hfssl.data import arrow_to_numpy, load_source

    test = load_source("breastmnist", image_size=28)["test"].select(range(16))
    out = corrupt_dataset(test, "jpeg_compression", 5, modality="ultrasound", seed=0)
    assert out.features == test.features and len(out) == len(test)
    assert out["label"] == test["label"]
    a = arrow_to_numpy(test.with_format("arrow")[:].column("image"))
    b = arrow_to_numpy(out.with_format("arrow")[:].column("image"))
    assert a.dtype == b.dtype and a.shape == b.shape and (a != b).any()


def test_random_corruption_augmentation(images):
    x = images["ultrasound"]
    assert torch.equal(RandomCorruption("breastmnist", p=0.0, seed=0)(x), x)
    y = RandomCorruption("breastmnist", p=1.0, seed=0)(x)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    changed = ((y - x).abs().flatten(1).amax(1) > 1e-6).float().mean()
    assert changed > 0.9
    assert torch.equal(y, RandomCorruption("breastmnist", p=1.0, seed=0)(x))
    masks = torch.ones(len(x), 1, 28, 28)
    _, m = RandomCorruption("breastmnist", p=1.0, seed=0)(x, masks)
    assert torch.equal(m, masks)
    with pytest.raises(ConfigError, match="outside"):
        RandomCorruption("breastmnist", p=1.5)
