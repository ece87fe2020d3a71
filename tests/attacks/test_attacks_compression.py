"""What the compression attacks do: lower quality costs more PSNR, chroma
subsampling matters, channel order is right, palettes are respected."""

from __future__ import annotations

import numpy as np
import pytest

from provmark.attacks import ATTACKS, avif, jpeg, jpeg_pillow, png_quantize, webp


def _needs(name):
    if not ATTACKS[name].available:
        pytest.skip(ATTACKS[name].unavailable_reason)


@pytest.mark.parametrize("name", ["jpeg", "jpeg_pillow", "webp", "avif"])
def test_lower_quality_means_lower_psnr(name, photo, psnr):
    _needs(name)
    attack = ATTACKS[name]
    scores = [psnr(photo, attack(photo, quality=q)) for q in (90, 50, 20)]
    assert scores[0] > scores[1] > scores[2], scores
    assert 20.0 < scores[2] and scores[0] < 60.0  # lossy, but still the same picture


def test_jpeg_opencv_matches_pillow_420(photo):
    """Same libjpeg quality scaling and 4:2:0: the two encoders agree. A swapped
    R/B order in the OpenCV path would compute luma from the wrong primaries and
    differ by several grey levels on average."""
    for q in (90, 50):
        ref = jpeg_pillow(photo, quality=q, subsampling="4:2:0")
        diff = np.abs(jpeg(photo, quality=q).astype(int) - ref)
        assert diff.mean() < 1.0


def test_jpeg_keeps_colours_in_place():
    img = np.zeros((32, 32, 3), np.uint8)
    img[:, :16] = (220, 30, 30)  # red
    img[:, 16:] = (30, 30, 220)  # blue
    out = jpeg(img, quality=90).astype(int)
    assert out[:, :12, 0].mean() > 180 and out[:, :12, 2].mean() < 70
    assert out[:, 20:, 2].mean() > 180 and out[:, 20:, 0].mean() < 70


def test_444_subsampling_keeps_more_chroma_than_420(psnr):
    rng = np.random.default_rng(7)
    # colour stripes one pixel wide: pure chroma detail that 4:2:0 averages away
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, 0::2] = (200, 60, 60)
    img[:, 1::2] = (60, 60, 200)
    img = np.clip(img + rng.integers(-5, 6, img.shape), 0, 255).astype(np.uint8)
    full = psnr(img, jpeg_pillow(img, quality=90, subsampling="4:4:4"))
    sub = psnr(img, jpeg_pillow(img, quality=90, subsampling="4:2:0"))
    assert full > sub + 3.0


def test_jpeg_quality_and_subsampling_validation(photo):
    with pytest.raises(ValueError, match=r"quality must be an integer in \[1, 100\]; got 0"):
        jpeg(photo, quality=0)
    with pytest.raises(ValueError, match="quality must be an integer"):
        jpeg(photo, quality=50.5)
    with pytest.raises(ValueError, match="subsampling must be one of"):
        jpeg_pillow(photo, subsampling="4:1:1")
    with pytest.raises(ValueError, match=r"quality must be an integer in \[1, 100\]"):
        webp(photo, quality=101)


def test_avif_validation(photo):
    with pytest.raises(ValueError, match=r"speed must be an integer in \[0, 10\]"):
        avif(photo, speed=11)


def test_png_quantize_respects_palette_size(photo, psnr):
    previous = np.inf
    for colours in (128, 32, 8):
        out = png_quantize(photo, colours=colours)
        assert len(np.unique(out.reshape(-1, 3), axis=0)) <= colours
        score = psnr(photo, out)
        assert score < previous
        previous = score


def test_png_quantize_is_lossless_on_few_colours():
    img = np.zeros((16, 16, 3), np.uint8)
    img[:8] = (10, 200, 30)
    img[8:] = (250, 5, 90)
    np.testing.assert_array_equal(png_quantize(img, colours=4, dither=False), img)


def test_png_quantize_validation(photo):
    with pytest.raises(ValueError, match=r"colours must be an integer in \[2, 256\]"):
        png_quantize(photo, colours=1)
    with pytest.raises(ValueError, match="dither must be True or False"):
        png_quantize(photo, dither="yes")
