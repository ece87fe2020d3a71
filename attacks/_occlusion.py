"""Occlusion and smearing attacks: covering a rectangle (flat colour, blur, noise),
inpainting it away, and pasting a patch of other content over it.

Every attack here edits one axis-aligned rectangle that has the image's aspect
ratio and ``area`` times its pixel count (each side scaled by ``sqrt(area)``),
placed at random (from ``rng``), centred or at an explicit ``(top, left)``; the
pixels outside the rectangle are returned unchanged.
"""

from __future__ import annotations

import math
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
    make_rng,
    resolve_position,
    to_uint8,
)

__all__ = ["occlude", "inpaint", "paste_patch"]

Position = Union[str, tuple[int, int]]


def _rectangle(
    shape: tuple[int, int], area: float, position: Position, rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the edited rectangle."""
    area = check_number("area", area, low=0.0, high=1.0, low_inclusive=False)
    height, width = shape
    side = math.sqrt(area)
    rh = min(height, max(1, round(height * side)))
    rw = min(width, max(1, round(width * side)))
    top, left = resolve_position(position, (rh, rw), (height, width), rng)
    return top, left, rh, rw


def occlude(
    image: NDArray[np.uint8],
    *,
    area: float = 0.25,
    position: Position = "random",
    fill: str = "flat",
    fill_colour: tuple[int, int, int] = (0, 0, 0),
    blur_sigma: float = 8.0,
    rng: RNGLike = None,
) -> NDArray[np.uint8]:
    """Cover a rectangle with a flat colour, a heavy blur of itself, or noise.

    Stands for a sticker, caption box or logo laid over the picture
    (``fill="flat"``), a privacy blur of a face or licence plate (``"blur"``), and
    a corrupted or scribbled-over region (``"noise"``).

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    area : float, optional
        Fraction of the pixel area covered, in (0, 1]; larger is stronger.
        Benchmarks typically use 0.1 to 0.4.
    position : {"random", "centre"} or (int, int), optional
        Placement of the rectangle: uniform over all placements (from ``rng``),
        centred, or an explicit ``(top, left)``.
    fill : {"flat", "blur", "noise"}, optional
        What covers the rectangle: ``fill_colour``; the rectangle itself blurred
        with a Gaussian of ``blur_sigma`` (using its surroundings as context);
        or uniform random RGB noise (from ``rng``).
    fill_colour : (int, int, int), optional
        RGB colour for ``fill="flat"``.
    blur_sigma : float, optional
        Gaussian standard deviation in pixels for ``fill="blur"``, > 0.
    rng : numpy.random.Generator, int or None, optional
        Source of the position (if random) and of the noise fill.

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        A new array, equal to the input outside the rectangle.
    """
    rgb = check_image(image)
    fill = check_choice("fill", fill, ("flat", "blur", "noise"))
    colour = check_colour("fill_colour", fill_colour)
    blur_sigma = check_number("blur_sigma", blur_sigma, low=0.0, low_inclusive=False)
    gen = make_rng(rng)
    height, width = rgb.shape[:2]
    top, left, rh, rw = _rectangle((height, width), area, position, gen)
    out = rgb.copy()
    region = (slice(top, top + rh), slice(left, left + rw))
    if fill == "flat":
        out[region] = colour
    elif fill == "noise":
        out[region] = gen.integers(0, 256, size=(rh, rw, 3), dtype=np.uint8)
    else:
        margin = int(math.ceil(3.0 * blur_sigma))
        t0, l0 = max(0, top - margin), max(0, left - margin)
        t1, l1 = min(height, top + rh + margin), min(width, left + rw + margin)
        blurred = cv2.GaussianBlur(
            rgb[t0:t1, l0:l1], (0, 0), sigmaX=blur_sigma, sigmaY=blur_sigma,
            borderType=cv2.BORDER_REFLECT_101,
        )
        out[region] = blurred[top - t0 : top - t0 + rh, left - l0 : left - l0 + rw]
    return out


def inpaint(
    image: NDArray[np.uint8],
    *,
    area: float = 0.1,
    position: Position = "random",
    method: str = "telea",
    radius: int = 3,
    rng: RNGLike = None,
) -> NDArray[np.uint8]:
    """Erase a rectangle and fill it by inpainting from its surroundings (OpenCV).

    Stands for object removal / "magic eraser" / content-aware fill, which
    smears the surrounding texture into the region and destroys whatever mark
    it held.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    area : float, optional
        Fraction of the pixel area erased, in (0, 1); larger is stronger.
    position : {"random", "centre"} or (int, int), optional
        Placement of the rectangle (see :func:`occlude`).
    method : {"telea", "ns"}, optional
        Telea's fast marching method or the Navier-Stokes based method.
    radius : int, optional
        Neighbourhood radius in pixels considered by the inpainting, >= 1.
    rng : numpy.random.Generator, int or None, optional
        Source of the position when ``position="random"``.

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        A new array, equal to the input outside the rectangle.

    References
    ----------
    .. [1] A. Telea, "An image inpainting technique based on the fast marching
           method", Journal of Graphics Tools 9(1), 2004.
    .. [2] M. Bertalmio, A. L. Bertozzi, G. Sapiro, "Navier-Stokes, fluid
           dynamics, and image and video inpainting", CVPR 2001.
    """
    rgb = check_image(image)
    area = check_number("area", area, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[
        check_choice("method", method, ("telea", "ns"))
    ]
    radius = check_int("radius", radius, low=1)
    gen = make_rng(rng)
    height, width = rgb.shape[:2]
    top, left, rh, rw = _rectangle((height, width), area, position, gen)
    if rh >= height and rw >= width:
        raise ValueError(
            f"the {rh}x{rw} rectangle covers the whole {height}x{width} image, so there is "
            f"nothing to inpaint from: use a smaller area"
        )
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[top : top + rh, left : left + rw] = 255
    filled = cv2.inpaint(rgb, mask, float(radius), flag)
    out = rgb.copy()
    out[top : top + rh, left : left + rw] = filled[top : top + rh, left : left + rw]
    return out


def _synthetic_texture(shape: tuple[int, int], rng: np.random.Generator) -> NDArray[np.uint8]:
    """A natural-looking stand-in for foreign content: smooth colour blobs plus grain."""
    h, w = shape
    coarse = rng.uniform(0.0, 255.0, size=(max(2, h // 8 + 2), max(2, w // 8 + 2), 3))
    smooth = cv2.resize(coarse.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0.0, 12.0, size=(h, w, 3)).astype(np.float32)
    return to_uint8(smooth + grain)


def paste_patch(
    image: NDArray[np.uint8],
    *,
    area: float = 0.25,
    source: NDArray[np.uint8] | None = None,
    position: Position = "random",
    rng: RNGLike = None,
) -> NDArray[np.uint8]:
    """Paste a patch of other content over a rectangle (a collage or copy-paste forgery).

    Stands for a collage, a meme template, or splicing a region from another
    picture. The patch is a window of ``source`` at a random offset (from
    ``rng``; ``source`` is first enlarged with bicubic resizing if it is
    smaller than the rectangle), or, when no ``source`` is given, a synthetic
    texture (smooth colour blobs plus grain) drawn from ``rng``.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    area : float, optional
        Fraction of the pixel area replaced, in (0, 1]; larger is stronger.
    source : ndarray, shape (h, w, 3), dtype uint8, optional
        Image the patch is taken from (not modified).
    position : {"random", "centre"} or (int, int), optional
        Placement of the rectangle in ``image`` (see :func:`occlude`).
    rng : numpy.random.Generator, int or None, optional
        Source of the position, the window in ``source`` and the synthetic texture.

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        A new array, equal to the input outside the rectangle.
    """
    rgb = check_image(image)
    gen = make_rng(rng)
    height, width = rgb.shape[:2]
    top, left, rh, rw = _rectangle((height, width), area, position, gen)
    if source is None:
        patch = _synthetic_texture((rh, rw), gen)
    else:
        src = check_image(source, name="source")
        sh, sw = src.shape[:2]
        if sh < rh or sw < rw:
            grow = max(rh / sh, rw / sw)
            size = (max(rw, math.ceil(sw * grow)), max(rh, math.ceil(sh * grow)))
            src = cv2.resize(src, size, interpolation=cv2.INTER_CUBIC)
            sh, sw = src.shape[:2]
        st = int(gen.integers(0, sh - rh + 1))
        sl = int(gen.integers(0, sw - rw + 1))
        patch = src[st : st + rh, sl : sl + rw]
    out = rgb.copy()
    out[top : top + rh, left : left + rw] = patch
    return out
