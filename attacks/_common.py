"""Shared plumbing of the attack suite: input validation, rng handling, rounding.

Every attack calls :func:`check_image` first and :func:`make_rng` for its
randomness, and turns float results back into uint8 with :func:`to_uint8`, so the
contract (HxWx3 uint8 RGB in, a new HxWx3 uint8 RGB array out, randomness only
from ``rng``) is enforced in one place. The parameter checkers raise
:class:`ValueError` with a message naming the parameter, the value received and
what is accepted.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Union

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "AttackUnavailableError",
    "RNGLike",
    "check_image",
    "make_rng",
    "to_uint8",
    "check_number",
    "check_int",
    "check_choice",
    "check_colour",
    "interpolation_flag",
    "INTERPOLATIONS",
    "resolve_position",
]

#: What ``rng`` accepts: anything :func:`numpy.random.default_rng` accepts.
RNGLike = Union[np.random.Generator, np.random.BitGenerator, np.random.SeedSequence, int, None]

#: Interpolation names accepted by the geometric attacks, mapped to OpenCV flags.
INTERPOLATIONS: Mapping[str, int] = MappingProxyType({
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
})


class AttackUnavailableError(RuntimeError):
    """An attack cannot run in this environment (e.g. Pillow built without AVIF)."""


def check_image(image: Any, name: str = "image") -> NDArray[np.uint8]:
    """Validate an HxWx3 uint8 RGB image and return it as a C-contiguous array.

    The returned array may share memory with ``image``: callers must not write to it.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(
            f"{name} must be a numpy array of shape (height, width, 3) and dtype uint8 (RGB); "
            f"got {type(image).__name__}: convert it with np.asarray(...) first"
        )
    if image.ndim == 2:
        raise ValueError(
            f"{name} is a 2-D array of shape {image.shape} (grayscale?); attacks expect an "
            f"HxWx3 RGB uint8 array: replicate the channel with np.repeat(img[..., None], 3, axis=2)"
        )
    if image.ndim != 3 or image.shape[2] != 3:
        hint = ""
        if image.ndim == 3 and image.shape[2] == 4:
            hint = " (RGBA?): drop or composite the alpha channel first, e.g. img[..., :3]"
        elif image.ndim == 3 and image.shape[0] == 3:
            hint = " (channels first?): move the channel axis last with np.moveaxis(img, 0, -1)"
        raise ValueError(
            f"{name} has shape {image.shape}; attacks expect an HxWx3 RGB array{hint}"
        )
    if image.dtype != np.uint8:
        hint = ""
        if np.issubdtype(image.dtype, np.floating):
            hint = (
                ": for floats in [0, 1] use np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)"
            )
        raise ValueError(f"{name} has dtype {image.dtype}; attacks expect uint8 RGB{hint}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name} has shape {image.shape}; it must have at least one pixel")
    return np.ascontiguousarray(image)


def make_rng(rng: RNGLike) -> np.random.Generator:
    """Return a numpy Generator from a Generator, seed or None (``np.random.default_rng``)."""
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"rng must be a numpy Generator, an integer seed or None; got {rng!r}"
        ) from exc


def to_uint8(values: NDArray[Any]) -> NDArray[np.uint8]:
    """Round to nearest and clip to [0, 255], returning a new contiguous uint8 array."""
    out = np.rint(values)
    np.clip(out, 0, 255, out=out)
    return np.ascontiguousarray(out, dtype=np.uint8)


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float after checking it is a finite real in the given range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number; got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value!r}")
    lo_ok = low is None or (value >= low if low_inclusive else value > low)
    hi_ok = high is None or (value <= high if high_inclusive else value < high)
    if not (lo_ok and hi_ok):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        lb = "[" if low_inclusive and low is not None else "("
        rb = "]" if high_inclusive and high is not None else ")"
        raise ValueError(f"{name} must be in {lb}{lo}, {hi}{rb}; got {value:g}")
    return value


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int after checking it is an integer in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer; got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else str(low)
        hi = "inf" if high is None else str(high)
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}]; got {value}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}; got {value!r}")
    return value


def check_colour(name: str, value: Any) -> tuple[int, int, int]:
    """Return an (R, G, B) tuple of ints in [0, 255] from a 3-sequence."""
    try:
        items = tuple(value)
    except TypeError:
        items = ()
    if len(items) != 3 or not all(
        isinstance(c, numbers.Integral) and not isinstance(c, bool) and 0 <= int(c) <= 255
        for c in items
    ):
        raise ValueError(f"{name} must be an (R, G, B) triple of integers in [0, 255]; got {value!r}")
    return (int(items[0]), int(items[1]), int(items[2]))


def interpolation_flag(name: str) -> int:
    """Map an interpolation name (see :data:`INTERPOLATIONS`) to its OpenCV flag."""
    return INTERPOLATIONS[check_choice("interpolation", name, tuple(INTERPOLATIONS))]


def resolve_position(
    position: Any,
    box: tuple[int, int],
    shape: tuple[int, int],
    rng: np.random.Generator,
) -> tuple[int, int]:
    """Top-left corner of a ``box`` (h, w) inside ``shape`` (H, W).

    ``position`` is ``"centre"`` (or ``"center"``), ``"random"`` (uniform over every
    placement that fits, drawn from ``rng``) or an explicit ``(top, left)`` pair.
    """
    bh, bw = box
    height, width = shape
    if isinstance(position, str):
        choice = check_choice("position", position, ("centre", "center", "random"))
        if choice == "random":
            top = int(rng.integers(0, height - bh + 1))
            left = int(rng.integers(0, width - bw + 1))
            return top, left
        return (height - bh) // 2, (width - bw) // 2
    try:
        top, left = position
    except (TypeError, ValueError):
        raise ValueError(
            f"position must be 'centre', 'random' or a (top, left) pair of integers; got {position!r}"
        ) from None
    top = check_int("position top", top, low=0)
    left = check_int("position left", left, low=0)
    if top + bh > height or left + bw > width:
        raise ValueError(
            f"a {bh}x{bw} region at (top={top}, left={left}) does not fit in a {height}x{width} "
            f"image: the largest valid offset is (top={height - bh}, left={width - bw})"
        )
    return top, left
