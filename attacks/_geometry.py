"""Geometric attacks: crop, resize, resize down-and-up, rotate, flip, perspective.

These desynchronise a watermark rather than add noise: they move, rescale or
warp the pixel grid. Warps use OpenCV with the pixel-centre convention (the
centre of pixel (row, col) is at (col, row)); a rotation turns about the image
centre, counter-clockwise for positive angles, as displayed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Union

import cv2
import numpy as np
from numpy.typing import NDArray

from ._common import (
    RNGLike,
    check_choice,
    check_colour,
    check_image,
    check_int,
    check_number,
    interpolation_flag,
    make_rng,
    resolve_position,
)

__all__ = ["crop", "resize", "resize_down_up", "rotate", "flip", "perspective"]

Position = Union[str, tuple[int, int]]


def _check_size(size: object, name: str = "size") -> tuple[int, int]:
    try:
        h, w = size  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a (height, width) pair of positive integers; got {size!r}"
        ) from None
    return check_int(f"{name} height", h, low=1), check_int(f"{name} width", w, low=1)


def crop(
    image: NDArray[np.uint8],
    *,
    area: float = 0.5,
    size: tuple[int, int] | None = None,
    position: Position = "random",
    rng: RNGLike = None,
) -> NDArray[np.uint8]:
    """Crop a window out of the image.

    Stands for a user or platform cropping the picture (reframing, removing a
    border, cutting out the subject). The window keeps the aspect ratio when
    given as an ``area`` fraction (each side is scaled by ``sqrt(area)``).

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    area : float, optional
        Fraction of the pixel area to keep, in (0, 1]; smaller is stronger.
        Ignored when ``size`` is given.
    size : (int, int), optional
        Explicit output ``(height, width)``; takes precedence over ``area``.
    position : {"random", "centre"} or (int, int), optional
        Where the window sits: uniformly at random among all placements (drawn
        from ``rng``), centred, or at an explicit ``(top, left)`` offset.
    rng : numpy.random.Generator, int or None, optional
        Source of randomness for ``position="random"``.

    Returns
    -------
    ndarray, shape (h, w, 3), dtype uint8
        The cropped window, a new array.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((100, 200, 3), dtype=np.uint8)
    >>> crop(img, area=0.25, position="centre").shape
    (50, 100, 3)
    >>> crop(img, size=(10, 20), position=(5, 7)).shape
    (10, 20, 3)
    """
    rgb = check_image(image)
    height, width = rgb.shape[:2]
    if size is not None:
        ch, cw = _check_size(size)
        if ch > height or cw > width:
            raise ValueError(
                f"crop size {ch}x{cw} is larger than the {height}x{width} image; "
                f"pass a size of at most ({height}, {width})"
            )
    else:
        area = check_number("area", area, low=0.0, high=1.0, low_inclusive=False)
        side = math.sqrt(area)
        ch = min(height, max(1, round(height * side)))
        cw = min(width, max(1, round(width * side)))
    top, left = resolve_position(position, (ch, cw), (height, width), make_rng(rng))
    return rgb[top : top + ch, left : left + cw].copy()


def _check_scale(scale: object) -> tuple[float, float]:
    if isinstance(scale, Sequence) and not isinstance(scale, str):
        if len(scale) != 2:
            raise ValueError(
                f"scale must be a number or a (scale_y, scale_x) pair; got {scale!r}"
            )
        sy, sx = scale
    else:
        sy = sx = scale
    return (
        check_number("scale (y)", sy, low=0.0, low_inclusive=False),
        check_number("scale (x)", sx, low=0.0, low_inclusive=False),
    )


def resize(
    image: NDArray[np.uint8],
    *,
    scale: float | tuple[float, float] = 0.5,
    size: tuple[int, int] | None = None,
    interpolation: str = "bilinear",
    rng: RNGLike = None,
) -> NDArray[np.uint8]:
    """Rescale the image (optionally changing its aspect ratio).

    Stands for a thumbnail, a platform's size limit, a zoomed screenshot or a
    stretched re-layout. OpenCV's resize does not low-pass filter before
    down-sampling except with ``interpolation="area"``, like most web tools.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    scale : float or (float, float), optional
        Scale factor, or a ``(scale_y, scale_x)`` pair for an aspect change.
        The output is ``round(H * scale_y) x round(W * scale_x)`` (at least 1).
        Ignored when ``size`` is given.
    size : (int, int), optional
        Explicit output ``(height, width)``; takes precedence over ``scale``.
    interpolation : {"bilinear", "nearest", "bicubic", "area", "lanczos"}, optional
        Resampling kernel.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (h, w, 3), dtype uint8
        The resized image, a new array.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((100, 200, 3), dtype=np.uint8)
    >>> resize(img, scale=0.5).shape
    (50, 100, 3)
    >>> resize(img, scale=(1.0, 0.5)).shape
    (100, 100, 3)
    >>> resize(img, size=(30, 40), interpolation="area").shape
    (30, 40, 3)
    """
    rgb = check_image(image)
    flag = interpolation_flag(interpolation)
    height, width = rgb.shape[:2]
    if size is not None:
        out_h, out_w = _check_size(size)
    else:
        sy, sx = _check_scale(scale)
        out_h = max(1, round(height * sy))
        out_w = max(1, round(width * sx))
    out = cv2.resize(rgb, (out_w, out_h), interpolation=flag)
    return np.ascontiguousarray(out)


def resize_down_up(
    image: NDArray[np.uint8],
    *,
    scale: float = 0.5,
    interpolation: str = "bilinear",
    rng: RNGLike = None,
) -> NDArray[np.uint8]:
    """Rescale by ``scale`` and back to the original size.

    Stands for an image that went through a low-resolution copy (a thumbnail,
    a preview, a chat app's reduced upload) and was blown back up: it keeps the
    geometry but loses the detail above the reduced Nyquist frequency.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    scale : float, optional
        Intermediate scale factor in (0, inf); the further from 1 below it, the
        stronger.
    interpolation : {"bilinear", "nearest", "bicubic", "area", "lanczos"}, optional
        Resampling kernel used both ways.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        A new array of the input's size.
    """
    rgb = check_image(image)
    scale = check_number("scale", scale, low=0.0, low_inclusive=False)
    flag = interpolation_flag(interpolation)
    height, width = rgb.shape[:2]
    small = cv2.resize(
        rgb, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=flag
    )
    return np.ascontiguousarray(cv2.resize(small, (width, height), interpolation=flag))


def _inner_rectangle(width: float, height: float, angle_rad: float) -> tuple[float, float]:
    """Largest axis-aligned rectangle inside a ``width x height`` one turned by ``angle``."""
    if width <= 0 or height <= 0:
        return 0.0, 0.0
    width_is_longer = width >= height
    long_side, short_side = (width, height) if width_is_longer else (height, width)
    sin_a, cos_a = abs(math.sin(angle_rad)), abs(math.cos(angle_rad))
    if short_side <= 2.0 * sin_a * cos_a * long_side or abs(sin_a - cos_a) < 1e-10:
        # Half-constrained: two corners of the rectangle touch the longer sides.
        x = 0.5 * short_side
        return (x / sin_a, x / cos_a) if width_is_longer else (x / cos_a, x / sin_a)
    cos_2a = cos_a * cos_a - sin_a * sin_a
    return (width * cos_a - height * sin_a) / cos_2a, (height * cos_a - width * sin_a) / cos_2a


def rotate(
    image: NDArray[np.uint8],
    *,
    angle: float = 5.0,
    crop: bool = True,
    fill_colour: tuple[int, int, int] = (0, 0, 0),
    interpolation: str = "bilinear",
    rng: RNGLike = None,
) -> NDArray[np.uint8]:
    """Rotate about the image centre, then crop the valid interior or keep the frame.

    Stands for straightening a scan or a photo of a print, or a deliberate
    small tilt. With ``crop=True`` (default) the output is the largest
    axis-aligned rectangle that holds only rotated image pixels, as photo editors
    do when straightening; with ``crop=False`` the output keeps the input size and
    the uncovered corners are filled with ``fill_colour``.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    angle : float, optional
        Rotation in degrees, counter-clockwise as displayed.
    crop : bool, optional
        Crop to the largest valid inner rectangle (default) or keep the size.
    fill_colour : (int, int, int), optional
        RGB colour of the uncovered corners when ``crop=False``.
    interpolation : {"bilinear", "nearest", "bicubic", "area", "lanczos"}, optional
        Resampling kernel ("area" acts as bilinear for warps).
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (h, w, 3), dtype uint8
        A new array; ``(H, W)`` when ``crop=False``, smaller (or transposed for
        90 degrees) when ``crop=True``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(6 * 4 * 3, dtype=np.uint8).reshape(6, 4, 3)
    >>> bool((rotate(img, angle=90) == np.rot90(img)).all())
    True
    >>> rotate(np.zeros((100, 100, 3), np.uint8), angle=45).shape
    (71, 71, 3)
    """
    rgb = check_image(image)
    angle = check_number("angle", angle)
    if not isinstance(crop, (bool, np.bool_)):
        raise ValueError(f"crop must be True or False; got {crop!r}")
    fill = check_colour("fill_colour", fill_colour)
    flag = interpolation_flag(interpolation)
    height, width = rgb.shape[:2]
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
    if not crop:
        out = cv2.warpAffine(
            rgb, matrix, (width, height), flags=flag,
            borderMode=cv2.BORDER_CONSTANT, borderValue=fill,
        )
        return np.ascontiguousarray(out)
    # The valid region is spanned by the pixel centres: (W-1) x (H-1).
    inner_w, inner_h = _inner_rectangle(width - 1.0, height - 1.0, math.radians(angle))
    out_w = max(1, int(math.floor(inner_w + 1e-6)) + 1)
    out_h = max(1, int(math.floor(inner_h + 1e-6)) + 1)
    matrix[0, 2] += (out_w - 1) / 2.0 - centre[0]
    matrix[1, 2] += (out_h - 1) / 2.0 - centre[1]
    # Replicate the border so rounding at the rectangle's edge never pulls in a fill colour.
    out = cv2.warpAffine(
        rgb, matrix, (out_w, out_h), flags=flag, borderMode=cv2.BORDER_REPLICATE
    )
    return np.ascontiguousarray(out)


def flip(
    image: NDArray[np.uint8], *, direction: str = "horizontal", rng: RNGLike = None
) -> NDArray[np.uint8]:
    """Mirror the image.

    Stands for a mirrored selfie, a flipped re-post (a common trick to evade
    duplicate detection) or a scanner's mirror mode.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    direction : {"horizontal", "vertical", "both"}, optional
        ``"horizontal"`` mirrors left-right, ``"vertical"`` top-bottom, ``"both"``
        is a 180-degree rotation.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        The mirrored image, a new array.
    """
    rgb = check_image(image)
    direction = check_choice("direction", direction, ("horizontal", "vertical", "both"))
    if direction == "horizontal":
        view = rgb[:, ::-1]
    elif direction == "vertical":
        view = rgb[::-1, :]
    else:
        view = rgb[::-1, ::-1]
    return view.copy()


def perspective(
    image: NDArray[np.uint8],
    *,
    jitter: float = 0.05,
    fill_colour: tuple[int, int, int] = (0, 0, 0),
    interpolation: str = "bilinear",
    rng: RNGLike = None,
) -> NDArray[np.uint8]:
    """Random perspective (keystone) warp by jittering the four corners.

    Stands for a photo of a screen or a print taken off-axis, or a keystone
    correction. Each corner moves independently by a uniform random offset of up
    to ``jitter * (W - 1)`` horizontally and ``jitter * (H - 1)`` vertically; the
    frame keeps its size and uncovered areas take ``fill_colour``.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    jitter : float, optional
        Largest corner displacement as a fraction of the side, in [0, 0.5).
    fill_colour : (int, int, int), optional
        RGB colour of areas the warped image does not cover.
    interpolation : {"bilinear", "nearest", "bicubic", "area", "lanczos"}, optional
        Resampling kernel ("area" acts as bilinear for warps).
    rng : numpy.random.Generator, int or None, optional
        Source of the corner offsets.

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        The warped image, a new array.
    """
    rgb = check_image(image)
    jitter = check_number("jitter", jitter, low=0.0, high=0.5, high_inclusive=False)
    fill = check_colour("fill_colour", fill_colour)
    flag = interpolation_flag(interpolation)
    gen = make_rng(rng)
    height, width = rgb.shape[:2]
    span = np.array([width - 1.0, height - 1.0])
    src = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]) * span
    dst = src + gen.uniform(-jitter, jitter, size=(4, 2)) * span
    if width < 2 or height < 2:
        return rgb.copy()
    matrix = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
    out = cv2.warpPerspective(
        rgb, matrix, (width, height), flags=flag,
        borderMode=cv2.BORDER_CONSTANT, borderValue=fill,
    )
    return np.ascontiguousarray(out)
