"""The tilt of a copy read off its straight edges (provmark._skew)."""

from __future__ import annotations

import numpy as np
import pytest

from provmark import attacks
from provmark._detect import read_luma
from provmark._skew import MIN_PROMINENCE, edge_rotation


@pytest.mark.parametrize("angle", [1.0, -1.0, 2.0, -2.0, 5.0, -5.0])
def test_the_tilt_of_a_dialog_is_read_to_a_tenth_of_a_degree(image_factory, angle):
    """A UI dialog tilted and cropped (as a photo editor straightens): the angle, in
    the detector's convention (``hypothesis_matrix(1, angle)`` turns the copy back;
    for ``attacks.rotate`` that is the attack's own angle), within 0.1 degree."""
    img = image_factory["dialog"](360, 380)
    found = edge_rotation(read_luma(attacks.rotate(img, angle=angle, crop=True)))
    assert found is not None
    rotation, prominence = found
    assert rotation == pytest.approx(angle, abs=0.1)
    assert prominence >= MIN_PROMINENCE


def test_the_sign_is_the_one_that_turns_the_copy_back(image_factory):
    """Turned back by the estimate, the tilted dialog's edges are straight: the copy
    turned back has no estimate (its tilt is within the angles left out)."""
    from provmark._sync import resample_to_grid

    img = image_factory["dialog"](360, 380)
    y = read_luma(attacks.rotate(img, angle=3.0, crop=True))
    rotation, _ = edge_rotation(y)
    assert rotation == pytest.approx(3.0, abs=0.1)
    back, _ = resample_to_grid(y, 1.0, rotation)
    assert edge_rotation(back) is None


@pytest.mark.parametrize("angle", [0.0, 0.2])
def test_an_untilted_copy_has_no_estimate(image_factory, angle):
    """Straight edges (or tilted by less than MIN_ANGLE): nothing to try, the other
    stages read the copy as it is."""
    img = image_factory["dialog"](360, 380)
    copy = attacks.rotate(img, angle=angle, crop=True) if angle else img
    assert edge_rotation(read_luma(copy)) is None


@pytest.mark.parametrize("make", ["noise", "flat", "gradient"])
def test_no_edges_no_estimate(image_factory, make):
    """Noise has no straight edges, a flat or smooth image none at all: no angle stands
    out, and nothing is tried (tilted or not)."""
    img = image_factory[make](384)
    for copy in (img, attacks.rotate(img, angle=4.0, crop=True)):
        assert edge_rotation(read_luma(copy)) is None


def test_a_small_copy_is_looked_at_within_its_margins():
    """A copy too small for the border left out has no estimate (and no error)."""
    y = np.zeros((20, 300), np.float32)
    y[:, 150:] = 200.0
    assert edge_rotation(y) is None
