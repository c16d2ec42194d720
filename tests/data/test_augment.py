"""Batched 2D/3D augmentations: exactness of flips/rot90, masks follow images, reproducibility."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hfssl.data.augment import (
    AUGMENTATION_PRESETS,
    Compose,
    ContrastiveViews,
    RandomBrightnessContrast,
    RandomFlip,
    RandomGaussianBlur,
    RandomGaussianNoise,
    RandomResizedCrop,
    RandomRot90,
    RandomRotation,
    RandomScale,
    get_augmentation,
)
from hfssl.errors import ConfigError


def _batch(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def _blocks(batch: int, spatial_dims: int, cells: int = 4, cell: int = 8, seed: int = 0) -> torch.Tensor:
    """Binary images of ``cells``^dims random blocks, each ``cell`` pixels wide (sharp, piecewise flat)."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand((batch, 1) + (cells,) * spatial_dims, generator=g) > 0.5).float()
    for d in range(2, 2 + spatial_dims):
        x = x.repeat_interleave(cell, d)
    return x


ALL_OPS = [
    lambda p: RandomFlip(p=p),
    lambda p: RandomRot90(p=p),
    lambda p: RandomRotation(30, p=p),
    lambda p: RandomScale((0.8, 1.2), p=p),
    lambda p: RandomResizedCrop(scale=(0.3, 1.0), p=p),
    lambda p: RandomGaussianBlur((0.5, 1.5), p=p),
    lambda p: RandomGaussianNoise((0.05, 0.1), p=p),
    lambda p: RandomBrightnessContrast(0.4, 0.4, p=p),
]


@pytest.mark.parametrize("make", ALL_OPS)
@pytest.mark.parametrize("shape", [(6, 1, 12, 12), (3, 1, 8, 8, 8)])
def test_shapes_dtypes_and_identity_at_p0(make, shape):
    x = _batch(*shape)
    y = make(1.0)(x, generator=torch.Generator().manual_seed(1))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not torch.equal(y, x)
    assert torch.equal(make(0.0)(x), x)


@pytest.mark.parametrize("name", AUGMENTATION_PRESETS)
@pytest.mark.parametrize("shape", [(5, 1, 16, 16), (2, 1, 8, 8, 8)])
def test_presets_keep_shape_range_and_masks_binary(name, shape):
    x = _batch(*shape)
    masks = (x > 0.5).to(torch.uint8)
    aug = get_augmentation(name, spatial_dims=len(shape) - 2, seed=0)
    y, m = aug(x, masks)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert m.shape == masks.shape and m.dtype == torch.uint8
    assert set(m.unique().tolist()) <= {0, 1}
    assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0
    if name == "none":
        assert torch.equal(y, x) and torch.equal(m, masks)


def test_preset_ladder_matches_the_paper():
    def spec(name):
        return [
            (type(t).__name__, t.p, getattr(t, "degrees", None), getattr(t, "scale", None))
            for t in get_augmentation(name).transforms
        ]

    assert spec("S1") == [("RandomFlip", 0.5, None, None)]
    assert spec("S2") == [("RandomRot90", 0.5, None, None)]
    assert spec("S3") == [("RandomFlip", 0.5, None, None), ("RandomRotation", 0.3, (-10.0, 10.0), None)]
    assert spec("S4") == [("RandomRot90", 0.5, None, None), ("RandomRotation", 0.3, (-20.0, 20.0), None)]
    s5 = [
        ("RandomFlip", 0.5, None, None),
        ("RandomRot90", 0.5, None, None),
        ("RandomRotation", 0.6, (-30.0, 30.0), None),
    ]
    assert spec("S5") == s5
    assert spec("S6") == s5 + [("RandomScale", 0.4, None, (0.8, 1.2))]
    assert spec("none") == [] and spec("Aug-S3") == spec("s3")


def test_preset_errors():
    with pytest.raises(ConfigError, match="unknown augmentation preset"):
        get_augmentation("S7")
    with pytest.raises(ConfigError, match="spatial_dims"):
        get_augmentation("S1", spatial_dims=4)
    with pytest.raises(ConfigError, match="3D batch"):
        get_augmentation("S1", spatial_dims=2)(_batch(2, 1, 4, 4, 4))
    with pytest.raises(ConfigError, match="float images"):
        get_augmentation("S1")(torch.zeros(2, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="outside"):
        RandomFlip(p=1.5)


# ------------------------------------------------------------------------------ exact ops


@pytest.mark.parametrize("shape", [(4, 2, 6, 7), (3, 1, 4, 5, 6)])
def test_flip_is_torch_flip(shape):
    x = _batch(*shape)
    for axis in range(len(shape) - 2):
        assert torch.equal(RandomFlip(p=1.0, axes=[axis])(x), torch.flip(x, dims=(axis + 2,)))


def test_rot90_2d_is_torch_rot90():
    x = _batch(4, 1, 9, 9)
    for k in (1, 2, 3):
        assert torch.equal(RandomRot90(p=1.0, ks=[k])(x), torch.rot90(x, k, dims=(2, 3)))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_rot90_3d_is_a_true_rotation_about_each_axis(axis):
    x = _batch(2, 1, 5, 5, 5)
    quarter = RandomRot90(p=1.0, axes=[axis], ks=[1])
    plane = {0: (3, 4), 1: (2, 4), 2: (2, 3)}[axis]
    once = quarter(x)
    assert torch.equal(once, torch.rot90(x, 1, dims=plane))
    assert not torch.equal(once, x)
    twice = quarter(once)
    # a half turn flips both in-plane axes (a reflection applied twice would be the identity)
    assert torch.equal(twice, torch.flip(x, dims=plane))
    assert torch.equal(quarter(quarter(twice)), x)  # four quarter turns: identity
    # the voxel on the rotation axis stays put, a voxel off it moves
    centre = (slice(None), slice(None), 2, 2, 2)
    assert torch.equal(once[centre], x[centre])


def test_rot90_needs_square_planes():
    x = _batch(2, 1, 4, 6, 6)  # only the D-axis rotation (H-W plane) is square
    out = RandomRot90(p=1.0, seed=0)(x)
    assert torch.equal(
        out, torch.stack([torch.rot90(x[i], k, dims=(2, 3)) for i, k in enumerate(_ks(out, x))])
    )
    with pytest.raises(ConfigError, match="square"):
        RandomRot90(p=1.0, axes=[1])(x)
    with pytest.raises(ConfigError, match="square"):
        RandomRot90(p=1.0)(_batch(2, 1, 4, 6))


def _ks(out: torch.Tensor, x: torch.Tensor) -> list[int]:
    ks = []
    for i in range(x.shape[0]):
        ks.append(next(k for k in (1, 2, 3) if torch.equal(out[i], torch.rot90(x[i], k, dims=(2, 3)))))
    return ks


def test_masks_get_the_same_exact_transform():
    x = _batch(16, 1, 8, 8)
    aug = Compose([RandomFlip(p=0.5), RandomRot90(p=0.5)], seed=3)
    y, m = aug(x, x.clone())
    assert torch.equal(y, m)
    assert not torch.equal(y, x)
    x3 = _batch(8, 1, 6, 6, 6)
    y3, m3 = Compose([RandomFlip(p=0.7), RandomRot90(p=0.7)], seed=3)(x3, x3.clone())
    assert torch.equal(y3, m3)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomRotation(30, p=1.0, seed=0),
        lambda: RandomScale((0.7, 1.3), p=1.0, seed=0),
        lambda: RandomResizedCrop(scale=(0.2, 1.0), seed=0),
    ],
)
def test_masks_follow_resampling_transforms(spatial_dims, make):
    cell = 8 if spatial_dims == 2 else 4
    x = _blocks(16 if spatial_dims == 2 else 4, spatial_dims, cell=cell)
    y, m = make()(x, x.clone())
    assert set(m.unique().tolist()) <= {0.0, 1.0}  # nearest: binary masks stay binary
    same = ((y > 0.5).float() == m).float().mean()
    moved = ((x > 0.5).float() == m).float().mean()
    assert same > 0.98  # bilinear image vs nearest mask differ only along block edges
    assert moved < 0.95  # ... while the transform did move things


def test_independent_parameters_per_sample():
    x = _batch(1, 1, 10, 10).expand(32, 1, 10, 10).contiguous()
    for op in (RandomRot90(p=1.0), RandomRotation(30, p=1.0), RandomGaussianBlur((0.3, 2.0), p=1.0)):
        y = op(x, generator=torch.Generator().manual_seed(0))
        distinct = {tuple(y[i].flatten().tolist()) for i in range(32)}
        assert len(distinct) >= 3
    y = RandomFlip(p=0.5, seed=0)(x)
    changed = [not torch.equal(y[i], x[i]) for i in range(32)]
    assert 6 < sum(changed) < 26  # about half the samples


def test_reproducible_with_seed_and_generator():
    x = _batch(8, 1, 16, 16)
    a = get_augmentation("S6", seed=11)(x)
    b = get_augmentation("S6", seed=11)(x)
    c = get_augmentation("S6", seed=12)(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    aug = get_augmentation("S6")
    d = aug(x, generator=torch.Generator().manual_seed(11))
    assert torch.equal(a, d)
    op = RandomGaussianNoise(0.1, p=1.0, seed=5)
    assert not torch.equal(op(x), op(x))  # the stream advances between calls
    assert torch.equal(RandomGaussianNoise(0.1, p=1.0, seed=5)(x), RandomGaussianNoise(0.1, p=1.0, seed=5)(x))


# --------------------------------------------------------------------------- resampling geometry


def test_rotation_geometry():
    x = _batch(4, 1, 12, 12)
    quarter = RandomRotation((90.0, 90.0), p=1.0)(x)
    assert torch.allclose(quarter, torch.rot90(x, 1, dims=(2, 3)), atol=1e-5)
    # non-square images: a half turn is still exact (pixel-space rotation, not normalised-space)
    xr = _batch(3, 1, 6, 10)
    assert torch.allclose(
        RandomRotation((180.0, 180.0), p=1.0)(xr), torch.rot90(xr, 2, dims=(2, 3)), atol=1e-5
    )
    # 3D: quarter turns about all three axes give one of the 24 exact rotations of the cube
    x3 = _batch(1, 1, 6, 6, 6)
    assert torch.allclose(RandomRotation(0.0, p=1.0)(x3), x3, atol=1e-5)
    turned = RandomRotation((90.0, 90.0), p=1.0)(x3)
    planes = [(2, 3), (2, 4), (3, 4)]
    found = {tuple(x3.flatten().tolist()): x3}
    frontier = [x3]
    while frontier:  # the group generated by quarter turns about the three axes
        nxt = [torch.rot90(r, 1, dims=d) for r in frontier for d in planes]
        frontier = [r for r in nxt if tuple(r.flatten().tolist()) not in found]
        found.update({tuple(r.flatten().tolist()): r for r in frontier})
    rotations = list(found.values())
    assert len(rotations) == 24
    assert min(float((turned - r).abs().max()) for r in rotations) < 1e-5


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_fused_rotation_and_scale_match_sequential(spatial_dims):
    # a smooth image, so one interpolation (fused) and two (sequential) agree closely
    n = 16 if spatial_dims == 2 else 8
    coords = torch.meshgrid(*[torch.linspace(-1, 1, 24)] * spatial_dims, indexing="ij")
    smooth = 0.5 + 0.4 * torch.cos(2.0 * coords[-1]) * torch.sin(1.5 * coords[0])
    x = smooth.expand(n, 1, *smooth.shape).contiguous()
    rot, scale = RandomRotation(30, p=0.6), RandomScale((0.7, 1.3), p=0.4, isotropic=False)
    fused = Compose([rot, scale], seed=5)(x)
    g = torch.Generator().manual_seed(5)
    sequential = scale(rot(x, generator=g), generator=g)
    changed_fused = (fused - x).flatten(1).abs().amax(1) > 1e-4
    changed_seq = (sequential - x).flatten(1).abs().amax(1) > 1e-4
    assert torch.equal(changed_fused, changed_seq) and changed_fused.any()  # same random draws
    inner = (slice(None), slice(None)) + (slice(6, 18),) * spatial_dims
    # ~0.003 here; the matrices composed in the wrong order would give ~0.025 (scaling is anisotropic)
    assert float((fused - sequential)[inner].abs().max()) < 0.01


def test_scale_geometry():
    ones = torch.ones(2, 1, 16, 16)
    shrunk = RandomScale((0.5, 0.5), p=1.0)(ones)  # half size in the centre, zero padding around
    assert torch.allclose(shrunk[..., 4:12, 4:12], torch.ones(2, 1, 8, 8))
    assert float(shrunk[..., :3, :].abs().max()) == 0.0
    x = _batch(2, 1, 8, 8)
    assert torch.allclose(RandomScale((1.0, 1.0), p=1.0)(x), x, atol=1e-5)


def test_resized_crop():
    x = _batch(4, 1, 16, 16)
    whole = RandomResizedCrop(scale=(1.0, 1.0), ratio=(1.0, 1.0), seed=0)(x)
    assert torch.allclose(whole, x, atol=1e-5)
    small = RandomResizedCrop(size=8, scale=(1.0, 1.0), ratio=(1.0, 1.0), seed=0)(x)
    expected = F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False, antialias=False)
    assert small.shape == (4, 1, 8, 8) and torch.allclose(small, expected, atol=1e-5)
    x3 = _batch(2, 1, 8, 8, 8)
    y3, m3 = RandomResizedCrop(size=(4, 6, 6), scale=(0.3, 1.0), p=0.5, seed=0)(x3, (x3 > 0.5).long())
    assert y3.shape == (2, 1, 4, 6, 6) and m3.shape == (2, 1, 4, 6, 6) and m3.dtype == torch.long
    # a crop of a quarter of the area at the image's corner region reads only inside the image
    crop = RandomResizedCrop(scale=(0.25, 0.25), ratio=(1.0, 1.0), seed=1)
    ramp = torch.linspace(0, 1, 16).view(1, 1, 1, 16).expand(3, 1, 16, 16).contiguous()
    out = crop(ramp)
    widths = out[:, 0, 0, -1] - out[:, 0, 0, 0]
    # output pixel centres span 15/16 of the 8-pixel crop = 7.5 input pixels = 0.5 of the ramp
    assert torch.allclose(widths, torch.full((3,), 0.5), atol=1e-4)


# ---------------------------------------------------------------------------------- intensity ops


def test_blur_matches_torchvision_and_keeps_constants():
    import torchvision.transforms.v2.functional as TF

    x = _batch(3, 1, 20, 20)
    sigma = 1.3
    ours = RandomGaussianBlur((sigma, sigma), p=1.0)(x)
    radius = 4  # ceil(3 * 1.3)
    ref = TF.gaussian_blur(x, kernel_size=[2 * radius + 1] * 2, sigma=[sigma, sigma])
    assert torch.allclose(ours, ref, atol=1e-5)
    # 3D: a volume constant along D blurs like its 2D slice (separable kernel, reflect padding)
    vol = x.unsqueeze(2).expand(3, 1, 10, 20, 20).contiguous()
    ours3 = RandomGaussianBlur((sigma, sigma), p=1.0)(vol)
    assert torch.allclose(ours3, ref.unsqueeze(2).expand_as(vol), atol=1e-5)
    const = torch.full((2, 1, 6, 6, 6), 0.4)
    assert torch.allclose(RandomGaussianBlur((0.5, 2.0), p=1.0)(const), const, atol=1e-6)
    assert RandomGaussianBlur((1.0, 2.0), p=1.0)(x).var() < x.var()


def test_noise_level_and_clipping():
    grey = torch.full((4, 1, 64, 64), 0.5)
    noisy = RandomGaussianNoise((0.1, 0.1), p=1.0, seed=0)(grey)
    assert abs(float((noisy - grey).std()) - 0.1) < 0.005
    clipped = RandomGaussianNoise((0.5, 0.5), p=1.0, seed=0)(grey)
    assert float(clipped.min()) == 0.0 and float(clipped.max()) == 1.0
    masks = torch.ones(4, 1, 64, 64, dtype=torch.long)
    _, m = RandomGaussianNoise(0.1, p=1.0)(grey, masks)
    assert m is masks  # intensity ops leave masks alone


@pytest.mark.parametrize("shape", [(5, 1, 12, 12), (3, 1, 6, 6, 6)])
def test_brightness_contrast_factors_per_sample(shape):
    # values in [0.3, 0.6] so that no factor in (0.6, 1.4) clips: the maths is checked exactly
    x = 0.3 + 0.3 * _batch(*shape)
    dims = tuple(range(1, x.ndim))
    bright = RandomBrightnessContrast(brightness=0.4, contrast=0.0, p=1.0, seed=0)(x)
    ratio = (bright / x).flatten(1)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-5)  # one factor per sample
    assert ratio[:, 0].min() >= 0.6 and ratio[:, 0].max() <= 1.4 and ratio[:, 0].unique().numel() == len(x)
    contrast = RandomBrightnessContrast(brightness=0.0, contrast=(0.5, 0.9), p=1.0, seed=0)(x)
    assert torch.allclose(contrast.mean(dims), x.mean(dims), atol=1e-6)  # around each image's mean
    scale = contrast.std(dim=dims) / x.std(dim=dims)
    assert scale.min() >= 0.5 - 1e-5 and scale.max() <= 0.9 + 1e-5
    assert torch.equal(RandomBrightnessContrast(brightness=0.0, contrast=0.0, p=1.0)(x), x)
    high = RandomBrightnessContrast(brightness=(2.0, 2.0), contrast=0.0, p=1.0)(x)
    assert float(high.max()) == 1.0  # clipped to the image range
    with pytest.raises(ConfigError, match="brightness"):
        RandomBrightnessContrast(brightness=1.5)  # a factor range reaching below 0


# ------------------------------------------------------------------------------ contrastive views


@pytest.mark.parametrize("shape", [(6, 1, 16, 16), (2, 1, 8, 8, 8)])
def test_contrastive_views(shape):
    x = _batch(*shape)
    views = ContrastiveViews(spatial_dims=len(shape) - 2, seed=0)
    v1, v2 = views(x)
    assert v1.shape == v2.shape == x.shape
    assert not torch.equal(v1, v2)
    w1, w2 = ContrastiveViews(spatial_dims=len(shape) - 2, seed=0)(x)
    assert torch.equal(v1, w1) and torch.equal(v2, w2)
    small = ContrastiveViews(spatial_dims=len(shape) - 2, size=4, seed=0)(x)[0]
    assert small.shape == x.shape[:2] + (4,) * (len(shape) - 2)
    plain = ContrastiveViews(
        spatial_dims=len(shape) - 2, crop_scale=None, flip_p=0, rot90_p=0, blur_p=0, noise_p=0
    )(x)
    assert torch.equal(plain[0], x) and torch.equal(plain[1], x)
    jittered = ContrastiveViews(
        spatial_dims=len(shape) - 2,
        crop_scale=None,
        flip_p=0,
        rot90_p=0,
        intensity_p=1.0,
        blur_p=0,
        noise_p=0,
    )(x)
    assert not torch.equal(jittered[0], x) and not torch.equal(jittered[0], jittered[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_same_result_on_gpu():
    x = _batch(8, 1, 16, 16)
    cpu = get_augmentation("S6", seed=0)(x)
    gpu = get_augmentation("S6", seed=0)(x.cuda())
    assert gpu.is_cuda and torch.allclose(gpu.cpu(), cpu, atol=1e-4)
