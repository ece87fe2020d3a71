"""Colour-grading attacks: brightness, contrast, gamma, hue, saturation, grayscale,
colour temperature and an S-curve.

Point operations are applied through 256-entry lookup tables (exact and fast);
hue works in floating-point HSV so that shifts are not quantised to OpenCV's
2-degree 8-bit hue steps. Luma uses the ITU-R BT.601 weights (0.299, 0.587,
0.114), as Pillow's "L" mode and OpenCV's ``RGB2GRAY`` do.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from ._common import RNGLike, check_choice, check_image, check_number, to_uint8

__all__ = [
    "brightness",
    "contrast",
    "gamma",
    "hue",
    "saturation",
    "grayscale",
    "colour_temperature",
    "curves",
]

_BT601 = np.array([0.299, 0.587, 0.114])
_LUMA_WEIGHTS = {
    "bt601": _BT601,
    "bt709": np.array([0.2126, 0.7152, 0.0722]),
    "average": np.array([1.0, 1.0, 1.0]) / 3.0,
}
_LEVELS = np.arange(256, dtype=np.float64)


def _apply_lut(rgb: NDArray[np.uint8], lut: NDArray[np.float64]) -> NDArray[np.uint8]:
    """Apply a float LUT of shape (256,) (all channels) or (256, 3) (per channel)."""
    table = to_uint8(lut)
    table = table.reshape(1, 256, -1)
    if table.shape[2] == 1:
        table = table[:, :, 0]
    return np.ascontiguousarray(cv2.LUT(rgb, np.ascontiguousarray(table)))


def brightness(
    image: NDArray[np.uint8], *, factor: float = 1.2, rng: RNGLike = None
) -> NDArray[np.uint8]:
    """Scale every RGB value by ``factor`` (clipped), like Pillow's ``ImageEnhance.Brightness``.

    Stands for exposure compensation and the brightness slider of photo editors
    and phone galleries.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    factor : float, optional
        Multiplier >= 0; 1 is the identity, < 1 darker, > 1 brighter (saturating
        at 255). Benchmarks typically use 0.6 to 1.4.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        A new array.
    """
    rgb = check_image(image)
    factor = check_number("factor", factor, low=0.0)
    return _apply_lut(rgb, _LEVELS * factor)


def contrast(
    image: NDArray[np.uint8], *, factor: float = 0.8, rng: RNGLike = None
) -> NDArray[np.uint8]:
    """Scale deviations from the image's mean luma, like Pillow's ``ImageEnhance.Contrast``.

    ``out = m + factor * (image - m)`` where ``m`` is the mean BT.601 luma rounded
    to an integer, as Pillow computes it (Pillow then truncates; this rounds, so
    the two agree within one grey level). Stands for the contrast slider of photo
    editors and automatic "enhance" buttons.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    factor : float, optional
        Contrast factor >= 0; 1 is the identity, 0 a flat grey image, > 1 stronger
        contrast. Benchmarks typically use 0.5 to 1.5.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        A new array.
    """
    rgb = check_image(image)
    factor = check_number("factor", factor, low=0.0)
    channel_means = np.array(cv2.mean(rgb)[:3])
    mean = float(int(float(channel_means @ _BT601) + 0.5))
    return _apply_lut(rgb, mean + factor * (_LEVELS - mean))


def gamma(image: NDArray[np.uint8], *, gamma: float = 1.4, rng: RNGLike = None) -> NDArray[np.uint8]:
    """Power-law tone curve ``out = 255 * (image / 255) ** gamma``.

    Stands for gamma/levels adjustments and display-profile mismatches. The
    exponent convention is scikit-image's ``adjust_gamma``: ``gamma > 1`` darkens
    mid-tones, ``gamma < 1`` brightens them; black and white stay fixed.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    gamma : float, optional
        Exponent > 0; 1 is the identity. Benchmarks typically use 0.7 and 1.4.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        A new array.
    """
    rgb = check_image(image)
    g = check_number("gamma", gamma, low=0.0, low_inclusive=False)
    return _apply_lut(rgb, 255.0 * (_LEVELS / 255.0) ** g)


def hue(image: NDArray[np.uint8], *, shift: float = 20.0, rng: RNGLike = None) -> NDArray[np.uint8]:
    """Rotate the hue by ``shift`` degrees in HSV space, keeping saturation and value.

    Stands for the hue slider of photo editors and colour-cast filters. Grey
    pixels (R == G == B) have no hue and stay exactly grey.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    shift : float, optional
        Hue rotation in degrees (any real; taken modulo 360). Benchmarks
        typically use +-10 to +-20.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        A new array.

    References
    ----------
    .. [1] A. R. Smith, "Color gamut transform pairs", SIGGRAPH 1978 (HSV).
    """
    rgb = check_image(image)
    shift = check_number("shift", shift)
    hsv = cv2.cvtColor(rgb.astype(np.float32) / np.float32(255.0), cv2.COLOR_RGB2HSV)
    h = hsv[:, :, 0]
    h += np.float32(shift % 360.0)
    h %= np.float32(360.0)
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    out *= np.float32(255.0)
    return to_uint8(out)


def saturation(
    image: NDArray[np.uint8], *, factor: float = 1.5, rng: RNGLike = None
) -> NDArray[np.uint8]:
    """Scale colourfulness about each pixel's luma, like Pillow's ``ImageEnhance.Color``.

    ``out = Y + factor * (image - Y)`` with ``Y`` the BT.601 luma of the pixel, so
    luma is kept (up to clipping). Stands for the saturation/vibrance slider and
    "vivid" or "muted" filters.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    factor : float, optional
        Factor >= 0: 0 gives grayscale (same as :func:`grayscale`), 1 the
        identity, 2 doubles the chroma.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        A new array.
    """
    rgb = check_image(image)
    factor = check_number("factor", factor, low=0.0)
    src = rgb.astype(np.float32)
    luma = (src @ _BT601.astype(np.float32))[:, :, None]
    return to_uint8(luma + np.float32(factor) * (src - luma))


def grayscale(
    image: NDArray[np.uint8], *, weights: str = "bt601", rng: RNGLike = None
) -> NDArray[np.uint8]:
    """Convert to grey and return it as three equal channels.

    Stands for a black-and-white filter or a grayscale print/scan. Different
    tools use different weights, hence the choice.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    weights : {"bt601", "bt709", "average"}, optional
        Luma weights: ITU-R BT.601 (0.299, 0.587, 0.114; Pillow, OpenCV,
        Photoshop), BT.709 (0.2126, 0.7152, 0.0722; sRGB-aware tools) or the
        plain channel average.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        A new array with R == G == B.
    """
    rgb = check_image(image)
    w = _LUMA_WEIGHTS[check_choice("weights", weights, tuple(_LUMA_WEIGHTS))]
    grey = to_uint8(rgb.astype(np.float32) @ w.astype(np.float32))
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))


def colour_temperature(
    image: NDArray[np.uint8], *, warmth: float = 0.1, rng: RNGLike = None
) -> NDArray[np.uint8]:
    """Make the image warmer or cooler by scaling red and blue in opposite directions.

    ``R *= 1 + warmth`` and ``B *= 1 - warmth`` (clipped); green is unchanged.
    Stands for a white-balance change or a "warm"/"cool" filter.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    warmth : float, optional
        In [-1, 1]: positive is warmer (more red, less blue), negative cooler,
        0 the identity.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        A new array.
    """
    rgb = check_image(image)
    warmth = check_number("warmth", warmth, low=-1.0, high=1.0)
    gains = np.array([1.0 + warmth, 1.0, 1.0 - warmth])
    return _apply_lut(rgb, _LEVELS[:, None] * gains[None, :])


def curves(
    image: NDArray[np.uint8], *, strength: float = 0.5, rng: RNGLike = None
) -> NDArray[np.uint8]:
    """S-curve tone grading ("curves" tool), applied to each channel.

    ``y = (1 - s) * x + s * (1 - cos(pi * x)) / 2`` for ``x = image / 255``: a
    monotonic curve through (0, 0), (0.5, 0.5) and (1, 1) that darkens shadows
    and brightens highlights for ``s > 0`` (more mid-tone contrast, the
    "cinematic" grade) and does the opposite for ``s < 0``.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    strength : float, optional
        ``s`` in [-1, 1]; 0 is the identity, 1 the full raised-cosine S-curve.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        A new array.
    """
    rgb = check_image(image)
    s = check_number("strength", strength, low=-1.0, high=1.0)
    x = _LEVELS / 255.0
    y = (1.0 - s) * x + s * 0.5 * (1.0 - np.cos(np.pi * x))
    return _apply_lut(rgb, 255.0 * y)
