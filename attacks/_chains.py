"""Chained attacks that imitate real distribution paths (screenshot, social-media
upload, a combined benchmark attack) and :func:`chain`, which composes any
registered attacks.

The fixed chains are ordinary attacks (registered in the "chain" family); their
steps are the functions of this package, in the order a real pipeline applies
them: geometry first, then tone, then sharpening, then the lossy encoder.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from ._colour import brightness as _brightness
from ._common import (
    RNGLike,
    check_image,
    check_int,
    check_number,
    interpolation_flag,
)
from ._compression import jpeg as _jpeg
from ._filtering import sharpen as _sharpen
from ._geometry import Position
from ._geometry import crop as _crop

__all__ = ["screenshot", "social_media", "combined"]


def screenshot(
    image: NDArray[np.uint8],
    *,
    width: int = 1280,
    border: int = 8,
    quality: int = 80,
    interpolation: str = "bilinear",
    rng: RNGLike = None,
) -> NDArray[np.uint8]:
    """Screenshot of the image shown in a viewer, then shared as JPEG.

    Steps: the viewer scales the image to ``width`` pixels wide (aspect kept,
    ``round(H * width / W)`` high); the screenshot misses ``border`` pixels on
    every side; the capture is saved as JPEG at ``quality`` (OpenCV, 4:2:0).

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    width : int, optional
        Displayed width in pixels, >= 1.
    border : int, optional
        Pixels cut from each of the four sides after scaling, >= 0.
    quality : int, optional
        JPEG quality of the saved screenshot, in [1, 100]; lower is stronger.
    interpolation : {"bilinear", "nearest", "bicubic", "area", "lanczos"}, optional
        The viewer's resampling kernel.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (round(H * width / W) - 2 * border, width - 2 * border, 3), dtype uint8
        A new array.
    """
    rgb = check_image(image)
    width = check_int("width", width, low=1)
    border = check_int("border", border, low=0)
    quality = check_int("quality", quality, low=1, high=100)
    flag = interpolation_flag(interpolation)
    height = max(1, round(rgb.shape[0] * width / rgb.shape[1]))
    if 2 * border >= min(width, height):
        raise ValueError(
            f"border={border} removes the whole {height}x{width} displayed image: "
            f"use border <= {(min(width, height) - 1) // 2}"
        )
    shown = cv2.resize(rgb, (width, height), interpolation=flag)
    captured = shown[border : height - border, border : width - border]
    return _jpeg(np.ascontiguousarray(captured), quality=quality)


def social_media(
    image: NDArray[np.uint8],
    *,
    long_side: int = 1080,
    quality: int = 75,
    sharpen_amount: float = 0.3,
    upscale: bool = False,
    rng: RNGLike = None,
) -> NDArray[np.uint8]:
    """A social-media upload: downscale to a size limit, mild sharpening, JPEG.

    Steps: if the longer side exceeds ``long_side`` (or ``upscale`` is true) the
    image is resized so that its longer side is ``long_side`` (area resampling
    when shrinking, bicubic when enlarging); an unsharp mask of ``sharpen_amount``
    (sigma 1 px) restores apparent crispness; the result is re-encoded as JPEG
    at ``quality`` with 4:2:0 chroma, as Instagram-like platforms do.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    long_side : int, optional
        Longest side allowed by the platform, >= 1.
    quality : int, optional
        JPEG quality in [1, 100]; lower is stronger.
    sharpen_amount : float, optional
        Unsharp-mask amount >= 0 (0 disables sharpening).
    upscale : bool, optional
        Also enlarge images smaller than ``long_side`` (platforms usually do not).
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (h, w, 3), dtype uint8
        A new array whose longer side is ``long_side`` or less.
    """
    rgb = check_image(image)
    long_side = check_int("long_side", long_side, low=1)
    quality = check_int("quality", quality, low=1, high=100)
    sharpen_amount = check_number("sharpen_amount", sharpen_amount, low=0.0)
    if not isinstance(upscale, (bool, np.bool_)):
        raise ValueError(f"upscale must be True or False; got {upscale!r}")
    height, width = rgb.shape[:2]
    longest = max(height, width)
    out = rgb
    if longest > long_side or (upscale and longest < long_side):
        ratio = long_side / longest
        size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
        flag = cv2.INTER_AREA if ratio < 1.0 else cv2.INTER_CUBIC
        out = np.ascontiguousarray(cv2.resize(rgb, size, interpolation=flag))
    if sharpen_amount > 0.0:
        out = _sharpen(out, amount=sharpen_amount, sigma=1.0)
    return _jpeg(out, quality=quality)


def combined(
    image: NDArray[np.uint8],
    *,
    quality: int = 60,
    crop_side: float = 0.71,
    brightness_factor: float = 0.5,
    position: Position = "centre",
    rng: RNGLike = None,
) -> NDArray[np.uint8]:
    """A combined crop + brightness + JPEG attack, as reported in watermark benchmarks.

    Steps: crop a window of ``crop_side`` times each side (0.71 per side keeps
    about half the area), scale brightness by ``brightness_factor``, re-encode
    as JPEG at ``quality`` (OpenCV, 4:2:0). Benchmarks of learned watermarks
    report such a combination next to the single attacks because it is what an
    image typically suffers between generation and detection.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    quality : int, optional
        JPEG quality in [1, 100]; lower is stronger.
    crop_side : float, optional
        Fraction of each side kept, in (0, 1].
    brightness_factor : float, optional
        Brightness multiplier >= 0 (see :func:`brightness`).
    position : {"centre", "random"} or (int, int), optional
        Placement of the crop window (see :func:`crop`).
    rng : numpy.random.Generator, int or None, optional
        Source of the crop position when ``position="random"``.

    Returns
    -------
    ndarray, shape (round(H * crop_side), round(W * crop_side), 3), dtype uint8
        A new array.

    References
    ----------
    .. [1] P. Fernandez et al., "The Stable Signature: rooting watermarks in
           latent diffusion models", ICCV 2023.
    .. [2] B. An et al., "WAVES: benchmarking the robustness of image
           watermarks", ICML 2024.
    """
    rgb = check_image(image)
    quality = check_int("quality", quality, low=1, high=100)
    crop_side = check_number("crop_side", crop_side, low=0.0, high=1.0, low_inclusive=False)
    brightness_factor = check_number("brightness_factor", brightness_factor, low=0.0)
    height, width = rgb.shape[:2]
    size = (max(1, round(height * crop_side)), max(1, round(width * crop_side)))
    out = _crop(rgb, size=size, position=position, rng=rng)
    out = _brightness(out, factor=brightness_factor)
    return _jpeg(out, quality=quality)
