"""Input validation and conversion: what images provmark accepts and what it refuses.

Accepted: an HxWx3 uint8 RGB numpy array, or a PIL image in mode RGB (also L, P,
and RGBA/LA with a fully opaque alpha, which are converted). Refused with a message
that says what to do: 16-bit or float arrays, transparency, wrong shapes, images
too small to hold one tile, and images above the pixel limit (:func:`max_pixels`:
:data:`MAX_PIXELS` unless the ``PROVMARK_MAX_PIXELS`` environment variable or the
command line's ``--max-pixels`` raises it). The same limit bounds Pillow's own
decompression-bomb check (:func:`sync_pillow_limit`), so that Pillow never warns
about an image provmark accepts.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from ._errors import ProvmarkError
from ._layout import TILE_PX

#: Smallest side that holds one whole tile (every symbol slot at least once).
MIN_SIDE = TILE_PX
#: Default largest image accepted (pixels); 100 megapixels is 300 MB of RGB.
MAX_PIXELS = 100_000_000
#: Environment variable that sets another pixel limit (a positive integer).
MAX_PIXELS_ENV = "PROVMARK_MAX_PIXELS"
#: How the messages tell a user to raise the limit.
RAISE_LIMIT_HINT = f"--max-pixels N on the command line, or {MAX_PIXELS_ENV}=N in the environment"

_limit_override: int | None = None


class ImageError(ProvmarkError, ValueError):
    """The image cannot be watermarked or read as given; the message says why and what to do."""


def parse_pixel_limit(text: str, *, what: str = "pixel limit") -> int:
    """A pixel count from text: an integer (``200000000``) or an integral float
    (``2e8``), at least 1.

    Raises
    ------
    ImageError
        Anything else; the message names ``what``.
    """
    raw = str(text).strip().replace("_", "")
    try:
        value = int(raw)
    except ValueError:
        try:
            f = float(raw)
        except ValueError:
            f = float("nan")
        value = int(f) if f == f and f not in (float("inf"), float("-inf")) and f == int(f) else 0
    if value < 1:
        raise ImageError(f"{what} {text!r}: give a positive whole number of pixels, "
                         "e.g. 200000000 or 2e8")
    return value


def max_pixels() -> int:
    """The largest image (in pixels) provmark accepts now: the ``--max-pixels`` of
    the running command, else ``PROVMARK_MAX_PIXELS``, else :data:`MAX_PIXELS`."""
    if _limit_override is not None:
        return _limit_override
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return MAX_PIXELS
    return parse_pixel_limit(raw, what=f"environment variable {MAX_PIXELS_ENV}=")


@contextlib.contextmanager
def pixel_limit(limit: int | None):
    """Within the block, :func:`max_pixels` is ``limit`` (None: unchanged). For the
    command line's ``--max-pixels``; not thread-safe (one limit per process)."""
    global _limit_override
    previous = _limit_override
    if limit is not None:
        _limit_override = int(limit)
    try:
        yield
    finally:
        _limit_override = previous


def sync_pillow_limit(limit: int | None = None) -> int:
    """Make Pillow's decompression-bomb limit at least provmark's (``limit``,
    default :func:`max_pixels`) and return provmark's.

    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` (89.5 MP by default) and refuses
    above twice that; provmark accepts up to its own limit and refuses beyond it
    itself, from the header, before decoding. Pillow's limit is only ever raised
    (a caller's higher limit or ``None`` is kept), so no image provmark accepts
    triggers a ``DecompressionBombWarning``.
    """
    from PIL import Image

    n = max_pixels() if limit is None else int(limit)
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and current < n:
        Image.MAX_IMAGE_PIXELS = n
    return n


def too_large_message(what: str, width: int, height: int, limit: int, *,
                      header: bool = False) -> str:
    """The message for an image above the pixel limit (names the limit and how to
    raise it); ``header``: the size was read from a file's header, nothing decoded."""
    size = f"{width}x{height} ({width * height / 1e6:,.0f} megapixels)"
    state = f"{what}: its header says {size}" if header else f"{what} is {size}"
    return (f"{state}, above provmark's limit of {limit:,} pixels ({limit / 1e6:g} MP)"
            f"{'; refused before decoding' if header else ''}: downscale it, or raise the "
            f"limit with {RAISE_LIMIT_HINT}")


def _from_pil(image, what: str):
    mode = image.mode
    w, h = image.size
    limit = max_pixels()
    if w * h > limit:  # before any conversion allocates the pixels
        raise ImageError(too_large_message(what, w, h, limit))
    if mode in ("I;16", "I;16B", "I;16L", "I", "F") or mode.startswith("I;16"):
        raise ImageError(
            f"PIL image mode {mode!r} has more than 8 bits per channel: convert to 8-bit RGB "
            "first (e.g. scale to 0..255 and image.convert('RGB')) and keep the original")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        alpha = np.asarray(image.getchannel("A") if mode != "P" else image.convert("RGBA").getchannel("A"))
        if alpha.min() < 255:
            raise ImageError(
                "image has transparent pixels (alpha channel): provmark marks visible colour "
                "only; composite it onto a background first, e.g. "
                "Image.alpha_composite(Image.new('RGBA', im.size, 'white'), im).convert('RGB')")
    if mode == "CMYK":
        raise ImageError("CMYK images are not supported: convert to RGB with an ICC-aware tool first")
    return np.asarray(image.convert("RGB"))


def as_rgb_array(image, *, what: str = "image") -> tuple[np.ndarray, bool]:
    """Validate ``image`` and return ``(rgb, was_pil)`` with ``rgb`` a C-contiguous
    HxWx3 uint8 array (a view of the input when it already is one)."""
    was_pil = False
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        arr = _from_pil(image, what)
        was_pil = True
    elif isinstance(image, np.ndarray):
        arr = image
    else:
        raise TypeError(
            f"{what} must be an HxWx3 uint8 numpy array or a PIL.Image, not {type(image).__name__}")
    if arr.dtype != np.uint8:
        if arr.dtype == np.uint16:
            hint = "16-bit images are not supported: convert to 8 bits (e.g. (a >> 8).astype(np.uint8))"
        elif np.issubdtype(arr.dtype, np.floating):
            hint = "float images are not supported: convert to uint8 0..255 (e.g. np.clip(a*255, 0, 255).round().astype(np.uint8))"
        else:
            hint = "convert it to uint8 RGB"
        raise ImageError(f"{what} has dtype {arr.dtype}; {hint}")
    if arr.ndim == 2:
        raise ImageError(
            f"{what} is a 2-D (grayscale) array of shape {arr.shape}: pass an HxWx3 RGB array, "
            "e.g. np.repeat(gray[..., None], 3, axis=2)")
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageError(f"{what} has shape {arr.shape}; expected HxWx3 (RGB)")
    if arr.shape[2] == 4:
        if arr[..., 3].min() < 255:
            raise ImageError(
                f"{what} has 4 channels with transparent pixels (RGBA): composite it onto a "
                "background and pass HxWx3 RGB")
        arr = arr[..., :3]
    h, w = arr.shape[:2]
    limit = max_pixels()
    if h * w > limit:
        raise ImageError(too_large_message(what, w, h, limit))
    return np.ascontiguousarray(arr), was_pil


def check_min_size(h: int, w: int, *, what: str = "image") -> None:
    """Raise :class:`ImageError` if the image cannot hold one whole tile."""
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ImageError(
            f"{what} is {w}x{h}; the smallest that can carry the default payload is "
            f"{MIN_SIDE}x{MIN_SIDE} (one {TILE_PX}-pixel tile): upscale it or use a larger image")
