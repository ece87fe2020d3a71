"""Input validation and conversion: what images provmark accepts and what it refuses.

Accepted: an HxWx3 uint8 RGB numpy array, or a PIL image in mode RGB (also L, P,
and RGBA/LA with a fully opaque alpha, which are converted). Refused with a message
that says what to do: 16-bit or float arrays, transparency, wrong shapes, images
too small to hold one tile, and images beyond :data:`MAX_PIXELS`.
"""

from __future__ import annotations

import numpy as np

from ._layout import TILE_PX

#: Smallest side that holds one whole tile (every symbol slot at least once).
MIN_SIDE = TILE_PX
#: Largest image accepted (pixels); 100 megapixels is 300 MB of RGB.
MAX_PIXELS = 100_000_000


class ImageError(ValueError):
    """The image cannot be watermarked or read as given; the message says why and what to do."""


def _from_pil(image):
    mode = image.mode
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
        arr = _from_pil(image)
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
    if h * w > MAX_PIXELS:
        raise ImageError(
            f"{what} is {w}x{h} ({h * w / 1e6:.0f} megapixels), above the {MAX_PIXELS / 1e6:.0f}-megapixel "
            "limit: downscale it or mark it in tiles")
    return np.ascontiguousarray(arr), was_pil


def check_min_size(h: int, w: int, *, what: str = "image") -> None:
    """Raise :class:`ImageError` if the image cannot hold one whole tile."""
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ImageError(
            f"{what} is {w}x{h}; the smallest that can carry the default payload is "
            f"{MIN_SIDE}x{MIN_SIDE} (one {TILE_PX}-pixel tile): upscale it or use a larger image")
