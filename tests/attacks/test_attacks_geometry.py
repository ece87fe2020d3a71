"""What the geometric attacks do: windows come from the right place, sizes follow
the parameters, rotations are exact at 90 degrees and leave no empty corners."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provmark.attacks import crop, flip, perspective, resize, resize_down_up, rotate


def _origin(window):
    """(top, left) of a window cut from the ``coords`` image (R = row, G = col)."""
    return int(window[0, 0, 0]), int(window[0, 0, 1])


@pytest.mark.parametrize("area", [0.75, 0.5, 0.25])
def test_crop_area_keeps_that_fraction_of_pixels(area, coords):
    out = crop(coords, area=area, position="centre")
    kept = out.shape[0] * out.shape[1] / (coords.shape[0] * coords.shape[1])
    assert kept == pytest.approx(area, rel=0.03)
    assert out.shape[0] / out.shape[1] == pytest.approx(coords.shape[0] / coords.shape[1], rel=0.03)


def test_crop_centre_and_explicit_offset(coords):
    out = crop(coords, area=0.25, position="centre")
    assert out.shape == (48, 64, 3)
    assert _origin(out) == (24, 32)
    out = crop(coords, size=(10, 20), position=(5, 7))
    np.testing.assert_array_equal(out, coords[5:15, 7:27])
    out = crop(coords, size=(96, 128), position=(0, 0))
    np.testing.assert_array_equal(out, coords)


def test_crop_random_is_a_true_window_and_moves_with_the_seed(coords):
    origins = set()
    for seed in range(12):
        out = crop(coords, area=0.5, rng=seed)
        top, left = _origin(out)
        h, w = out.shape[:2]
        np.testing.assert_array_equal(out, coords[top : top + h, left : left + w])
        origins.add((top, left))
    assert len(origins) > 6


def test_crop_validation(coords):
    with pytest.raises(ValueError, match=r"area must be in \(0, 1\]"):
        crop(coords, area=0.0)
    with pytest.raises(ValueError, match=r"area must be in \(0, 1\]"):
        crop(coords, area=1.5)
    with pytest.raises(ValueError, match="larger than the 96x128 image"):
        crop(coords, size=(97, 10))
    with pytest.raises(ValueError, match=r"does not fit.*largest valid offset is \(top=86, left=118\)"):
        crop(coords, size=(10, 10), position=(90, 0))
    with pytest.raises(ValueError, match="position must be one of"):
        crop(coords, position="middle")


@given(
    h=st.integers(1, 40), w=st.integers(1, 40),
    area=st.floats(0.01, 1.0), seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=60, deadline=None)
def test_crop_always_fits(h, w, area, seed):
    img = np.zeros((h, w, 3), np.uint8)
    out = crop(img, area=area, rng=seed)
    assert 1 <= out.shape[0] <= h and 1 <= out.shape[1] <= w


@pytest.mark.parametrize("scale", [0.5, 0.75, 1.5, 2.0])
def test_resize_scale_sets_shape(scale, photo):
    out = resize(photo, scale=scale)
    assert out.shape == (round(96 * scale), round(128 * scale), 3)
    assert abs(out.mean() - photo.mean()) < 2.0


def test_resize_aspect_change_and_explicit_size(photo):
    assert resize(photo, scale=(0.5, 2.0)).shape == (48, 256, 3)
    assert resize(photo, size=(33, 77), interpolation="lanczos").shape == (33, 77, 3)


def test_resize_nearest_doubling_duplicates_pixels(photo):
    out = resize(photo, scale=2.0, interpolation="nearest")
    for dy in (0, 1):
        for dx in (0, 1):
            np.testing.assert_array_equal(out[dy::2, dx::2], photo)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear", "bicubic", "area", "lanczos"])
def test_resize_interpolations_all_differ_but_agree_roughly(interpolation, photo, psnr):
    out = resize(photo, scale=0.5, interpolation=interpolation)
    ref = resize(photo, scale=0.5, interpolation="area")
    assert psnr(out, ref) > 22.0


def test_resize_validation(photo):
    with pytest.raises(ValueError, match="interpolation must be one of 'nearest', 'bilinear'"):
        resize(photo, interpolation="cubic")
    with pytest.raises(ValueError, match=r"scale \(y\) must be in \(0, inf\)"):
        resize(photo, scale=0)
    with pytest.raises(ValueError, match="scale must be a number or a"):
        resize(photo, scale=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="size height must be an integer"):
        resize(photo, size=(0, 10))


def test_resize_down_up_loses_more_detail_at_smaller_scales(photo, psnr):
    scores = [psnr(photo, resize_down_up(photo, scale=s)) for s in (0.75, 0.5, 0.25)]
    assert scores[0] > scores[1] > scores[2]
    assert resize_down_up(photo, scale=0.35).shape == photo.shape


def test_rotate_90_is_exact(coords):
    np.testing.assert_array_equal(rotate(coords, angle=90), np.rot90(coords))
    np.testing.assert_array_equal(rotate(coords, angle=-90), np.rot90(coords, k=-1))
    np.testing.assert_array_equal(rotate(coords, angle=180), coords[::-1, ::-1])


def test_rotate_zero_is_identity(photo):
    np.testing.assert_array_equal(rotate(photo, angle=0), photo)
    np.testing.assert_array_equal(rotate(photo, angle=0, crop=False), photo)


@pytest.mark.parametrize("angle", [1.0, 2.0, 5.0, 10.0, 30.0, -45.0, 100.0])
def test_rotate_crop_has_no_border_and_is_the_inner_rectangle(angle, texture):
    out = rotate(texture, angle=angle)
    assert out.min() >= 40  # texture is in [40, 215]: a black fill would show up
    h, w = out.shape[:2]
    c, s = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))

    def extent(width, height):
        """Bounding box, in the input frame, of the output rectangle turned back."""
        return width * c + height * s, width * s + height * c

    # valid: the pixel centres of the output map inside the input's pixel centres
    ew, eh = extent(w - 1, h - 1)
    assert ew <= 127 + 1e-3 and eh <= 95 + 1e-3
    # maximal: one more pixel in both directions would leave the input
    ew, eh = extent(w, h)
    assert ew > 127 or eh > 95


def test_rotate_without_crop_keeps_size_and_fills_corners(texture):
    out = rotate(texture, angle=10, crop=False, fill_colour=(255, 0, 255))
    assert out.shape == texture.shape
    for corner in (out[0, 0], out[0, -1], out[-1, 0], out[-1, -1]):
        np.testing.assert_array_equal(corner, (255, 0, 255))
    # the centre is still the image's centre
    np.testing.assert_allclose(out[40:56, 56:72].mean(), texture[40:56, 56:72].mean(), atol=6)


def test_rotate_validation(photo):
    with pytest.raises(ValueError, match="fill_colour must be an"):
        rotate(photo, crop=False, fill_colour=(0, 0))
    with pytest.raises(ValueError, match="crop must be True or False"):
        rotate(photo, crop="yes")
    with pytest.raises(ValueError, match="angle must be finite"):
        rotate(photo, angle=float("nan"))


@pytest.mark.parametrize("direction", ["horizontal", "vertical", "both"])
def test_flip_twice_is_identity(direction, photo):
    once = flip(photo, direction=direction)
    assert not np.array_equal(once, photo)
    np.testing.assert_array_equal(flip(once, direction=direction), photo)


def test_flip_directions(coords):
    np.testing.assert_array_equal(flip(coords, direction="horizontal"), coords[:, ::-1])
    np.testing.assert_array_equal(flip(coords, direction="vertical"), coords[::-1])
    np.testing.assert_array_equal(flip(coords, direction="both"), np.rot90(coords, 2))
    with pytest.raises(ValueError, match="direction must be one of"):
        flip(coords, direction="diagonal")


def test_perspective_zero_jitter_is_identity(photo):
    np.testing.assert_array_equal(perspective(photo, jitter=0.0, rng=3), photo)


def test_perspective_more_jitter_more_change(photo, psnr):
    for seed in range(3):
        mild = psnr(photo, perspective(photo, jitter=0.01, rng=seed))
        strong = psnr(photo, perspective(photo, jitter=0.1, rng=seed))
        assert mild > strong
    assert perspective(photo, jitter=0.1, rng=0).shape == photo.shape
    with pytest.raises(ValueError, match=r"jitter must be in \[0, 0.5\)"):
        perspective(photo, jitter=0.5)
