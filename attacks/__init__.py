"""Attack suite of provmark (installed as ``provmark.attacks``) for robustness benchmarks.

Every attack is a pure function ``name(image, *, <params>, rng=None) -> ndarray``
that takes an HxWx3 uint8 RGB array, never modifies it, and returns a new HxWx3
uint8 RGB array (geometric attacks may change the shape). Randomness comes only
from ``rng`` (a ``numpy.random.Generator``, an integer seed or None);
deterministic attacks accept and ignore it. The attacks stand for what happens to
an image between generation and detection: re-encoding, cropping and resizing,
filtering, colour grading, occlusion and inpainting, and chains of these. The
registry (:data:`ATTACKS`, :func:`get`, :func:`names`, :func:`apply`) gives each
attack a family, default parameters and a mild-to-strong severity grid.
"""

from ._chains import combined, screenshot, social_media
from ._colour import (
    brightness,
    colour_temperature,
    contrast,
    curves,
    gamma,
    grayscale,
    hue,
    saturation,
)
from ._common import INTERPOLATIONS, AttackUnavailableError
from ._compression import AVIF_AVAILABLE, avif, jpeg, jpeg_pillow, png_quantize, webp
from ._filtering import (
    box_blur,
    gaussian_blur,
    gaussian_noise,
    median_blur,
    salt_pepper,
    sharpen,
)
from ._geometry import crop, flip, perspective, resize, resize_down_up, rotate
from ._occlusion import inpaint, occlude, paste_patch
from ._registry import ATTACKS, FAMILIES, Attack, apply, chain, families, get, names

__all__ = [
    # registry
    "Attack",
    "ATTACKS",
    "FAMILIES",
    "AttackUnavailableError",
    "apply",
    "families",
    "get",
    "names",
    "chain",
    "INTERPOLATIONS",
    "AVIF_AVAILABLE",
    # compression
    "jpeg",
    "jpeg_pillow",
    "webp",
    "avif",
    "png_quantize",
    # geometry
    "crop",
    "resize",
    "resize_down_up",
    "rotate",
    "flip",
    "perspective",
    # filtering
    "gaussian_blur",
    "median_blur",
    "box_blur",
    "sharpen",
    "gaussian_noise",
    "salt_pepper",
    # colour
    "brightness",
    "contrast",
    "gamma",
    "hue",
    "saturation",
    "grayscale",
    "colour_temperature",
    "curves",
    # occlusion
    "occlude",
    "inpaint",
    "paste_patch",
    # chains
    "screenshot",
    "social_media",
    "combined",
]
