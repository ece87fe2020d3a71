"""What the colour attacks do, checked against Pillow's enhancers and OpenCV's
colour conversions where those are the reference."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image, ImageEnhance

from provmark.attacks import (
    brightness,
    colour_temperature,
    contrast,
    curves,
    gamma,
    grayscale,
    hue,
    saturation,
)


def _hue_degrees(img):
    hsv = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
    return hsv[..., 0], hsv[..., 1], hsv[..., 2]


@pytest.mark.parametrize("factor", [0.6, 0.8, 1.2, 1.4])
def test_brightness_matches_pillow_and_moves_the_mean(factor, photo):
    out = brightness(photo, factor=factor)
    ref = np.asarray(ImageEnhance.Brightness(Image.fromarray(photo)).enhance(factor))
    assert np.abs(out.astype(int) - ref).max() <= 1
    if factor < 1:
        assert out.mean() == pytest.approx(factor * photo.mean(), rel=0.01)
    else:
        assert out.mean() > photo.mean() * (1 + (factor - 1) * 0.7)


def test_brightness_one_is_identity(photo):
    np.testing.assert_array_equal(brightness(photo, factor=1.0), photo)


@pytest.mark.parametrize("factor", [0.5, 0.8, 1.2, 1.5])
def test_contrast_matches_pillow(factor, photo):
    out = contrast(photo, factor=factor)
    ref = np.asarray(ImageEnhance.Contrast(Image.fromarray(photo)).enhance(factor))
    assert np.abs(out.astype(int) - ref).max() <= 1
    spread = out.astype(float).std() / photo.astype(float).std()
    assert (spread < 1.0) if factor < 1 else (spread > 1.0)


def test_contrast_zero_is_flat_mean_grey(photo):
    out = contrast(photo, factor=0.0)
    assert len(np.unique(out)) == 1
    luma_mean = cv2.cvtColor(np.ascontiguousarray(photo), cv2.COLOR_RGB2GRAY).mean()
    assert abs(int(out[0, 0, 0]) - luma_mean) <= 1


def test_gamma_direction_endpoints_and_inverse(photo):
    assert gamma(photo, gamma=1.4).mean() < photo.mean() < gamma(photo, gamma=0.7).mean()
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)
    for g in (0.7, 1.4):
        out = gamma(ramp, gamma=g)[0, :, 0].astype(int)
        assert out[0] == 0 and out[-1] == 255
        assert (np.diff(out) >= 0).all()
    back = gamma(gamma(ramp, gamma=1.4), gamma=1 / 1.4)[0, 64:, 0].astype(int)
    assert np.abs(back - np.arange(64, 256)).max() <= 2
    with pytest.raises(ValueError, match=r"gamma must be in \(0, inf\)"):
        gamma(photo, gamma=0.0)


@pytest.mark.parametrize("shift", [20.0, -20.0, 90.0])
def test_hue_shifts_hue_keeps_saturation_value_and_greys(shift, texture):
    img = texture.copy()
    img[:8] = np.arange(40, 200, 160 / 128).astype(np.uint8)[None, :128, None]  # grey rows
    out = hue(img, shift=shift)
    h0, s0, v0 = _hue_degrees(img)
    h1, s1, v1 = _hue_degrees(out)
    np.testing.assert_array_equal(out[:8], img[:8])  # grey stays exactly grey
    colourful = s0 > 0.3
    delta = (h1 - h0 - shift + 180.0) % 360.0 - 180.0
    assert np.abs(delta[colourful]).mean() < 2.0
    assert np.abs(v1 - v0).max() <= 1.0 / 255 + 1e-6
    assert np.abs(s1 - s0)[colourful].mean() < 0.02


def test_hue_full_turn_is_identity_up_to_rounding(photo):
    assert np.abs(hue(photo, shift=360.0).astype(int) - photo).max() <= 1
    assert np.abs(hue(photo, shift=0.0).astype(int) - photo).max() <= 1


def test_saturation_zero_is_grayscale_and_two_is_more_colourful(photo):
    np.testing.assert_array_equal(saturation(photo, factor=0.0), grayscale(photo))
    chroma = lambda im: im.astype(float).std(axis=2).mean()  # noqa: E731
    assert chroma(saturation(photo, factor=2.0)) > 1.5 * chroma(photo)
    assert chroma(saturation(photo, factor=0.5)) < chroma(photo)


@pytest.mark.parametrize("factor", [0.0, 0.5, 1.5, 2.0])
def test_saturation_matches_pillow_color(factor, photo):
    out = saturation(photo, factor=factor)
    ref = np.asarray(ImageEnhance.Color(Image.fromarray(photo)).enhance(factor))
    assert np.abs(out.astype(int) - ref).max() <= 2


@pytest.mark.parametrize("weights", ["bt601", "bt709", "average"])
def test_grayscale_has_equal_channels(weights, photo):
    out = grayscale(photo, weights=weights)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_grayscale_bt601_matches_opencv_and_weights_differ(photo):
    ref = cv2.cvtColor(np.ascontiguousarray(photo), cv2.COLOR_RGB2GRAY)
    assert np.abs(grayscale(photo)[..., 0].astype(int) - ref).max() <= 1
    green = np.zeros((4, 4, 3), np.uint8)
    green[..., 1] = 200
    assert grayscale(green, weights="bt709")[0, 0, 0] == round(0.7152 * 200)
    assert grayscale(green, weights="average")[0, 0, 0] == round(200 / 3)
    with pytest.raises(ValueError, match="weights must be one of 'bt601', 'bt709', 'average'"):
        grayscale(photo, weights="luma")


@pytest.mark.parametrize("warmth", [0.1, -0.1])
def test_colour_temperature_moves_red_and_blue_oppositely(warmth, texture):
    out = colour_temperature(texture, warmth=warmth).astype(float)
    src = texture.astype(float)
    np.testing.assert_array_equal(out[..., 1], src[..., 1])
    sign = np.sign(warmth)
    assert sign * (out[..., 0].mean() - src[..., 0].mean()) > 5
    assert sign * (out[..., 2].mean() - src[..., 2].mean()) < -5
    with pytest.raises(ValueError, match=r"warmth must be in \[-1, 1\]"):
        colour_temperature(texture, warmth=1.5)


def test_curves_is_an_s_curve():
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)
    for strength in (0.5, 1.0, -0.5, -1.0):
        y = curves(ramp, strength=strength)[0, :, 0].astype(int)
        x = np.arange(256)
        assert y[0] == 0 and y[255] == 255 and abs(y[128] - 128) <= 1
        assert (np.diff(y) >= 0).all()  # monotonic: no tone reversal
        darker_shadows = (y[20:100] < x[20:100]).all()
        brighter_lights = (y[156:236] > x[156:236]).all()
        assert (darker_shadows and brighter_lights) == (strength > 0)
    np.testing.assert_array_equal(curves(ramp, strength=0.0), ramp)


def test_curves_strength_raises_midtone_contrast(texture):
    spreads = [curves(texture, strength=s).astype(float).std() for s in (0.0, 0.5, 1.0)]
    assert spreads[0] < spreads[1] < spreads[2]
