"""What the occlusion attacks do: one rectangle of the requested area changes,
the rest of the image is untouched, and each fill behaves as described."""

from __future__ import annotations

import numpy as np
import pytest

from provmark.attacks import inpaint, occlude, paste_patch


def _changed(a, b):
    return (a != b).any(axis=2)


def _bbox(mask):
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


@pytest.mark.parametrize("area", [0.1, 0.25, 0.4])
@pytest.mark.parametrize("fill", ["flat", "noise"])
def test_occlude_changes_the_requested_fraction_in_one_rectangle(area, fill, texture):
    out = occlude(texture, area=area, fill=fill, rng=9)
    changed = _changed(out, texture)
    assert changed.mean() == pytest.approx(area, rel=0.05)
    top, bottom, left, right = _bbox(changed)
    # noise may by chance repeat an original pixel, so allow a few holes in the box
    assert changed[top:bottom, left:right].mean() > 0.98
    assert changed.sum() == pytest.approx((bottom - top) * (right - left), rel=0.02)


def test_occlude_flat_uses_the_colour_and_position(texture):
    out = occlude(texture, area=0.25, position=(10, 20), fill="flat", fill_colour=(1, 2, 3))
    assert (out[10:58, 20:84] == (1, 2, 3)).all()
    np.testing.assert_array_equal(out[:10], texture[:10])
    np.testing.assert_array_equal(out[:, :20], texture[:, :20])
    np.testing.assert_array_equal(out[58:], texture[58:])


def test_occlude_blur_smooths_only_the_rectangle(photo, hf_energy):
    out = occlude(photo, area=0.25, position="centre", fill="blur", blur_sigma=4.0)
    region = (slice(24, 72), slice(32, 96))
    assert hf_energy(out[region]) < 0.2 * hf_energy(photo[region])
    outside = np.ones(photo.shape[:2], bool)
    outside[region] = False
    np.testing.assert_array_equal(out[outside], photo[outside])
    # a blur keeps the local average
    assert abs(out[region].mean() - photo[region].mean()) < 3.0


def test_occlude_random_position_varies(texture):
    boxes = {_bbox(_changed(occlude(texture, area=0.1, rng=s), texture)) for s in range(8)}
    assert len(boxes) > 4


def test_occlude_validation(texture):
    with pytest.raises(ValueError, match="fill must be one of 'flat', 'blur', 'noise'"):
        occlude(texture, fill="grey")
    with pytest.raises(ValueError, match=r"area must be in \(0, 1\]"):
        occlude(texture, area=0.0)
    with pytest.raises(ValueError, match="fill_colour must be an"):
        occlude(texture, fill_colour=(300, 0, 0))


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_inpaint_fills_flat_and_smooth_images_plausibly(method):
    flat = np.full((64, 80, 3), (90, 140, 200), np.uint8)
    out = inpaint(flat, area=0.25, position="centre", method=method)
    err = np.abs(out.astype(int) - flat)
    # OpenCV's Telea leaves a few grey levels of ripple even on a flat image (max 4 here)
    assert err.max() <= 6 and err.mean() < 1.5
    # a smooth horizontal gradient is continued into the hole
    ramp = np.repeat(np.linspace(40, 200, 80)[None, :, None], 64, axis=0)
    grad = np.repeat(ramp, 3, axis=2).round().astype(np.uint8)
    out = inpaint(grad, area=0.1, position="centre", method=method)
    assert np.abs(out.astype(int) - grad).mean() < 8.0


def test_inpaint_changes_only_the_rectangle(texture):
    out = inpaint(texture, area=0.1, rng=5)
    changed = _changed(out, texture)
    top, bottom, left, right = _bbox(changed)
    assert (bottom - top) * (right - left) <= round(96 * 0.1**0.5) * round(128 * 0.1**0.5)
    assert 0.5 * 0.1 < changed.mean() <= 0.1 * 1.05
    with pytest.raises(ValueError, match=r"area must be in \(0, 1\)"):
        inpaint(texture, area=1.0)
    with pytest.raises(ValueError, match="method must be one of 'telea', 'ns'"):
        inpaint(texture, method="patchmatch")


def test_paste_patch_from_source(texture):
    source = np.zeros((200, 300, 3), np.uint8)
    source[..., 0] = np.arange(200)[:, None]  # R = source row
    source[..., 1] = np.arange(300)[None, :] % 256  # G = source column (mod 256)
    source[..., 2] = 7
    out = paste_patch(texture, area=0.25, source=source, position=(0, 0), rng=2)
    patch = out[:48, :64]
    assert (patch[..., 2] == 7).all()
    # the patch is a contiguous window of the source
    r0, c0 = int(patch[0, 0, 0]), int(patch[0, 0, 1])
    np.testing.assert_array_equal(patch[..., 0], source[r0 : r0 + 48, 0:64, 0])
    np.testing.assert_array_equal(patch[..., 1], (np.arange(c0, c0 + 64) % 256)[None, :].repeat(48, 0))
    np.testing.assert_array_equal(out[48:], texture[48:])
    np.testing.assert_array_equal(out[:, 64:], texture[:, 64:])


def test_paste_patch_synthetic_texture_depends_on_seed(texture):
    a = paste_patch(texture, area=0.25, position="centre", rng=1)
    b = paste_patch(texture, area=0.25, position="centre", rng=2)
    region = (slice(24, 72), slice(32, 96))
    assert not np.array_equal(a[region], b[region])
    assert _changed(a, texture)[region].mean() > 0.95
    assert a[region].astype(float).std() > 10  # textured, not flat


def test_paste_patch_validates_source(texture):
    with pytest.raises(ValueError, match="source has dtype float64"):
        paste_patch(texture, source=np.zeros((10, 10, 3)))
