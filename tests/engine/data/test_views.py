"""View spaces: rotations (the paper's) and the lossless dihedral group."""

from __future__ import annotations

import pytest
import torch

from engine.data.transforms import rotate_batch, test_view_angles
from engine.data.views import DIHEDRAL_ELEMENTS, Dihedral, Rotations, view_space
from engine.errors import ConfigError


def _image(size: int = 6) -> torch.Tensor:
    return torch.arange(3 * size * size, dtype=torch.float32).view(1, 3, size, size)


def test_dihedral_elements_are_the_eight_distinct_symmetries() -> None:
    x = _image()
    seen = Dihedral().apply(x.repeat(8, 1, 1, 1), torch.arange(8.0))
    flat = {tuple(view.flatten().tolist()) for view in seen}
    assert len(flat) == 8
    # Every element is a permutation of the pixels: nothing is interpolated or lost.
    for view in seen:
        assert torch.equal(view.flatten().sort().values, x.flatten().sort().values)


def test_dihedral_element_meanings() -> None:
    x = _image()
    identity, half_turn, mirror = Dihedral().apply(x.repeat(3, 1, 1, 1), torch.tensor([0, 1, 2.0]))
    assert torch.equal(identity, x[0])
    assert torch.equal(half_turn, torch.rot90(x[0], 2, dims=(-2, -1)))
    assert torch.equal(mirror, x[0].flip(-1))
    assert DIHEDRAL_ELEMENTS[0] == (0, False)


def test_dihedral_views_keep_each_image_with_its_own_element() -> None:
    batch = torch.stack([_image()[0] + 1000 * k for k in range(4)])
    ids = torch.tensor([3.0, 0.0, 5.0, 3.0])
    out = Dihedral().apply(batch, ids)
    for k in range(4):
        single = Dihedral().apply(batch[k : k + 1], ids[k : k + 1])
        assert torch.equal(out[k], single[0])


def test_dihedral_training_views_are_distinct_per_image_and_seeded() -> None:
    ids = Dihedral().training(5, 8, torch.Generator().manual_seed(1)).view(5, 8)
    for row in ids:
        assert sorted(row.tolist()) == list(range(8))
    again = Dihedral().training(5, 8, torch.Generator().manual_seed(1)).view(5, 8)
    assert torch.equal(ids, again)
    few = Dihedral().training(50, 3, torch.Generator().manual_seed(2)).view(50, 3)
    assert all(len(set(row.tolist())) == 3 for row in few)
    assert set(few.flatten().tolist()) == set(range(8))


def test_dihedral_test_views_and_their_limit() -> None:
    assert Dihedral().test(4).tolist() == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match="1 to 8"):
        Dihedral().test(9)


def test_dihedral_needs_square_images() -> None:
    with pytest.raises(ValueError, match="square"):
        Dihedral().apply(torch.zeros(1, 3, 4, 6), torch.zeros(1))


def test_rotation_views_match_the_paper_and_offset_by_half_a_step() -> None:
    assert torch.equal(Rotations().test(4), test_view_angles(4))
    assert Rotations().test(4, offset=True).tolist() == [45.0, 135.0, 225.0, 315.0]
    x = torch.rand(2, 3, 8, 8)
    angles = torch.tensor([30.0, -60.0])
    assert torch.equal(Rotations().apply(x, angles), rotate_batch(x, angles))


def test_view_space_by_name() -> None:
    assert isinstance(view_space("rotations"), Rotations)
    assert isinstance(view_space("dihedral"), Dihedral)
    with pytest.raises(ConfigError):
        view_space("shears")  # type: ignore[arg-type]
