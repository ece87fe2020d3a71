"""The chained attacks follow their recipes, and ``chain`` composes registered attacks."""

from __future__ import annotations

import numpy as np
import pytest

from provmark.attacks import (
    brightness,
    chain,
    combined,
    crop,
    flip,
    get,
    jpeg,
    resize,
    screenshot,
    sharpen,
    social_media,
)


def test_screenshot_recipe(photo):
    out = screenshot(photo, width=256, border=4, quality=80)
    assert out.shape == (192 - 8, 256 - 8, 3)
    expected = jpeg(np.ascontiguousarray(resize(photo, size=(192, 256))[4:-4, 4:-4]), quality=80)
    np.testing.assert_array_equal(out, expected)
    assert screenshot(photo).shape == (960 - 16, 1280 - 16, 3)


def test_screenshot_validation(photo):
    with pytest.raises(ValueError, match="removes the whole 24x32 displayed image.*border <= 11"):
        screenshot(photo, width=32, border=12)


def test_social_media_limits_long_side_and_never_upscales_by_default(photo, psnr):
    out = social_media(photo, long_side=64)
    assert out.shape == (48, 64, 3)
    small = social_media(photo)  # 128 < 1080: no resize
    assert small.shape == photo.shape
    assert 25.0 < psnr(photo, small) < 45.0
    assert social_media(photo, long_side=256, upscale=True).shape == (192, 256, 3)


def test_social_media_recipe_without_resize(photo):
    expected = jpeg(sharpen(photo, amount=0.3, sigma=1.0), quality=75)
    np.testing.assert_array_equal(social_media(photo), expected)
    np.testing.assert_array_equal(social_media(photo, sharpen_amount=0.0), jpeg(photo, quality=75))


def test_combined_recipe(photo):
    out = combined(photo)
    assert out.shape == (round(96 * 0.71), round(128 * 0.71), 3)
    cropped = crop(photo, size=out.shape[:2], position="centre")
    np.testing.assert_array_equal(out, jpeg(brightness(cropped, factor=0.5), quality=60))
    assert out.mean() == pytest.approx(0.5 * cropped.mean(), rel=0.05)


def test_chain_equals_manual_composition_for_deterministic_steps(photo):
    out = chain(photo, ["flip", ("jpeg", {"quality": 50}), (get("rotate"), {"angle": 90})])
    expected = np.rot90(jpeg(flip(photo), quality=50))
    np.testing.assert_array_equal(out, expected)


def test_chain_randomness_comes_from_rng(photo):
    steps = [("crop", {"area": 0.5}), ("gaussian_noise", {"sigma": 3.0})]
    a = chain(photo, steps, rng=1)
    np.testing.assert_array_equal(a, chain(photo, steps, rng=1))
    np.testing.assert_array_equal(a, chain(photo, steps, rng=np.random.default_rng(1)))
    b = chain(photo, steps, rng=2)
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_chain_steps_get_independent_streams(texture):
    """A step's randomness does not depend on how much the previous steps drew:
    crop(area=1) draws an offset yet returns the whole image, flip draws nothing,
    and the noise step gets the same stream in both chains."""
    noise = ("gaussian_noise", {"sigma": 3.0})
    flipped = chain(texture, ["flip", noise], rng=5)
    cropped = chain(texture, [("crop", {"area": 1.0}), noise], rng=5)
    # texture is in [40, 215], so sigma-3 noise never clips and the noise is exactly recoverable
    np.testing.assert_array_equal(
        flipped.astype(int) - flip(texture), cropped.astype(int) - texture
    )


def test_chain_empty_and_errors(photo):
    out = chain(photo, [])
    np.testing.assert_array_equal(out, photo)
    assert not np.shares_memory(out, photo)
    with pytest.raises(KeyError, match="did you mean 'jpeg'"):
        chain(photo, ["jpg"])
    with pytest.raises(ValueError, match="step 0 must be a name"):
        chain(photo, [("jpeg", 50)])
    with pytest.raises(ValueError, match="steps must be a list"):
        chain(photo, "jpeg")
    with pytest.raises(ValueError, match="no parameter"):
        chain(photo, [("jpeg", {"qualty": 5})])
    with pytest.raises(ValueError, match="2-D array"):
        chain(photo[..., 0], ["jpeg"])
