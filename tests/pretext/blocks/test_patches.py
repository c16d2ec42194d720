"""Grid patches: exact extraction, tiles never touch, jitter varies, exact labels."""

from __future__ import annotations

import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import (
    extract_patches,
    grid_patch_starts,
    grid_patches,
    hamming_permutation_set,
    jigsaw_tiles,
    patch_geometry,
    rotate_cubes,
    rpl_pairs,
    rubik_cubes,
)


def coord_image(batch: int, spatial: tuple[int, ...]) -> torch.Tensor:
    """Channels hold each pixel's coordinates, so a patch reveals where it was cut."""
    grids = torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in spatial], indexing="ij")
    return torch.stack(grids).unsqueeze(0).repeat(batch, 1, *([1] * len(spatial)))


@pytest.mark.parametrize("spatial", [(28, 28), (30, 31), (16, 16, 16)])
def test_extract_patches_equals_slicing(spatial: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, *spatial, generator=g)
    starts, size = grid_patch_starts(spatial, 3, grid=3, generator=g)
    tiles = extract_patches(x, starts, size)
    assert tiles.shape == (3, 3 ** len(spatial), 2, *size)
    for b in range(3):
        for t in range(starts.shape[1]):
            region = tuple(slice(int(s), int(s) + p) for s, p in zip(starts[b, t], size))
            torch.testing.assert_close(tiles[b, t], x[(b, slice(None), *region)])


@pytest.mark.parametrize("spatial,grid", [((28, 28), 3), ((64, 64), 3), ((16, 16, 16), 3), ((32, 32, 32), 2)])
def test_tiles_never_touch_and_jitter_varies(spatial: tuple[int, ...], grid: int) -> None:
    g = torch.Generator().manual_seed(1)
    starts, size = grid_patch_starts(spatial, 64, grid=grid, generator=g)
    _, gap, _ = patch_geometry(spatial, grid)
    dims = len(spatial)
    cells = starts.view(64, *([grid] * dims), dims)
    assert int(starts.min()) >= 0
    for d in range(dims):
        assert int((starts[..., d] + size[d]).max()) <= spatial[d]
        lo = cells.narrow(1 + d, 0, grid - 1)[..., d]
        hi = cells.narrow(1 + d, 1, grid - 1)[..., d]
        separation = hi - (lo + size[d])  # empty pixels between neighbours along dim d
        assert int(separation.min()) >= gap >= 1
        # relative offsets of neighbours differ between samples: no constant offset to exploit
        assert len(set(separation.reshape(64, -1)[:, 0].tolist())) > 1


def test_grid_patches_shapes_2d_and_3d() -> None:
    assert grid_patches(torch.rand(2, 1, 28, 28)).shape == (2, 9, 1, 7, 7)
    assert grid_patches(torch.rand(2, 1, 64, 64, 64), grid=2).shape[:3] == (2, 8, 1)
    with pytest.raises(ConfigError):
        grid_patches(torch.rand(1, 1, 6, 6), grid=3, gap=2, jitter=1)


@pytest.mark.parametrize("spatial", [(28, 28), (18, 18, 18)])
def test_rpl_label_is_the_relative_position(spatial: tuple[int, ...]) -> None:
    dims = len(spatial)
    x = coord_image(32, spatial)
    centre, other, label = rpl_pairs(x, generator=torch.Generator().manual_seed(2))
    num = 3**dims - 1
    assert int(label.min()) >= 0 and int(label.max()) < num and len(label.unique()) > 4
    cell = spatial[0] // 3
    corner = (0,) * dims
    start_c = torch.stack([centre[:, d][(slice(None), *corner)] for d in range(dims)], 1)
    start_o = torch.stack([other[:, d][(slice(None), *corner)] for d in range(dims)], 1)
    direction = torch.round((start_o - start_c) / cell).long()  # in {-1, 0, 1} per dim
    position = sum((direction[:, d] + 1) * 3 ** (dims - 1 - d) for d in range(dims))
    centre_index = num // 2
    assert not bool((position == centre_index).any())
    expected = position - (position > centre_index).long()
    assert torch.equal(expected, label)


@pytest.mark.parametrize("spatial,num_tiles", [((30, 30), 9), ((16, 16, 16), 8)])
def test_jigsaw_unpermuting_recovers_tile_order(spatial: tuple[int, ...], num_tiles: int) -> None:
    perms = hamming_permutation_set(num_tiles, 20, seed=0)
    x = coord_image(8, spatial)
    shuffled, labels = jigsaw_tiles(x, perms, generator=torch.Generator().manual_seed(3))
    tiles = grid_patches(
        x, round(num_tiles ** (1 / len(spatial))), generator=torch.Generator().manual_seed(3)
    )
    restored = torch.stack([shuffled[b, perms[labels[b]].argsort()] for b in range(8)])
    assert torch.equal(restored, tiles)
    assert not torch.equal(shuffled, tiles)
    # independent check: the restored tiles come from the grid cells in row-major order
    dims, grid = len(spatial), round(num_tiles ** (1 / len(spatial)))
    corner = restored[(slice(None), slice(None), slice(None), *([0] * dims))]  # (B, T, dims)
    cell = torch.floor(corner / (spatial[0] // grid)).long()
    index = sum(cell[..., d] * grid ** (dims - 1 - d) for d in range(dims))
    assert torch.equal(index, torch.arange(num_tiles).expand(8, -1))


@pytest.mark.parametrize("spatial,num_tiles", [((16, 16, 16), 8), ((20, 20), 4)])
def test_rubik_unrotating_and_unpermuting_recovers_cubes(spatial: tuple[int, ...], num_tiles: int) -> None:
    perms = hamming_permutation_set(num_tiles, 10, seed=0)
    x = torch.rand(6, 1, *spatial)
    out = rubik_cubes(x, perms, rotate_prob=0.7, generator=torch.Generator().manual_seed(4))
    assert out.mask is None
    assert not bool((out.hrot & out.vrot).any()) and int(out.hrot.sum()) > 0 and int(out.vrot.sum()) > 0
    tiles = grid_patches(x, 2, generator=torch.Generator().manual_seed(4))
    unrotated = rotate_cubes(out.cubes, out.hrot, out.vrot)
    restored = torch.stack([unrotated[b, perms[out.order[b]].argsort()] for b in range(6)])
    assert torch.equal(restored, tiles)


def test_rubik_rotations_are_180_degree_turns_in_3d() -> None:
    cubes = torch.randn(1, 2, 1, 4, 4, 4)
    h = rotate_cubes(cubes, torch.tensor([[1, 0]]), torch.tensor([[0, 0]]))
    v = rotate_cubes(cubes, torch.tensor([[0, 0]]), torch.tensor([[0, 1]]))
    torch.testing.assert_close(h[0, 0], torch.rot90(cubes[0, 0], 2, dims=(2, 3)))  # about D
    torch.testing.assert_close(h[0, 1], cubes[0, 1])
    torch.testing.assert_close(v[0, 1], torch.rot90(cubes[0, 1], 2, dims=(1, 2)))  # about W


def test_rubik_plus_mask_labels() -> None:
    perms = hamming_permutation_set(8, 10, seed=0)
    x = torch.rand(8, 1, 16, 16, 16)
    plain = rubik_cubes(x, perms, generator=torch.Generator().manual_seed(5))
    masked = rubik_cubes(x, perms, mask_prob=0.5, generator=torch.Generator().manual_seed(5))
    assert masked.mask is not None and 0 < int(masked.mask.sum()) < masked.mask.numel()
    changed = (masked.cubes != plain.cubes).flatten(2).any(-1)
    assert torch.equal(changed.long(), masked.mask)
