"""Lossy re-encoding attacks: JPEG (OpenCV and Pillow), WebP, AVIF, PNG palette.

Each function encodes the image to bytes in memory with a real codec and decodes
it back, exactly what happens when a platform re-saves an upload. Channel order is
converted for OpenCV (which encodes BGR) so that luma and chroma are computed from
the right primaries. AVIF needs a Pillow built with libavif; whether it is present
is decided once at import (:data:`AVIF_AVAILABLE`, :data:`AVIF_UNAVAILABLE_REASON`).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import PIL
from numpy.typing import NDArray
from PIL import Image

from ._common import AttackUnavailableError, RNGLike, check_choice, check_image, check_int

__all__ = [
    "AVIF_AVAILABLE",
    "AVIF_UNAVAILABLE_REASON",
    "jpeg",
    "jpeg_pillow",
    "webp",
    "avif",
    "png_quantize",
]


def _avif_support() -> tuple[bool, str]:
    from PIL import features

    try:
        ok = features.check_module("avif")
    except ValueError:  # Pillow < 11.2 does not know the module at all
        return False, (
            f"Pillow {PIL.__version__} has no AVIF plugin; AVIF needs Pillow >= 11.2 "
            f"built with libavif (pip install -U Pillow)"
        )
    if not ok:
        return False, (
            f"Pillow {PIL.__version__} was built without libavif, so it cannot encode AVIF; "
            f"install a Pillow wheel with AVIF support"
        )
    return True, ""


AVIF_AVAILABLE, AVIF_UNAVAILABLE_REASON = _avif_support()


def _cv2_roundtrip(rgb: NDArray[np.uint8], ext: str, params: list[int]) -> NDArray[np.uint8]:
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    ok, buf = cv2.imencode(ext, bgr, params)
    if not ok:  # pragma: no cover - OpenCV reports codec failures this way
        raise RuntimeError(f"OpenCV could not encode the image as {ext}")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if decoded is None:  # pragma: no cover
        raise RuntimeError(f"OpenCV could not decode its own {ext} output")
    return np.ascontiguousarray(decoded[:, :, ::-1])


def _pillow_roundtrip(rgb: NDArray[np.uint8], fmt: str, **options: object) -> NDArray[np.uint8]:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **options)
    buf.seek(0)
    with Image.open(buf) as decoded:
        return np.ascontiguousarray(np.array(decoded.convert("RGB"), dtype=np.uint8))


def jpeg(image: NDArray[np.uint8], *, quality: int = 75, rng: RNGLike = None) -> NDArray[np.uint8]:
    """JPEG re-encoding with OpenCV (libjpeg, 4:2:0 chroma subsampling).

    Stands for the most common real-world loss: an image re-saved as JPEG by a
    platform, an editor or a screenshot tool. OpenCV uses the IJG quality scaling
    of the Annex K quantisation tables and, by default, 4:2:0 chroma subsampling
    (chroma is halved in both directions).

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    quality : int, optional
        IJG quality factor in [1, 100]; lower is stronger. Benchmarks typically
        use 90, 75, 50, 30 and 20.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic); accepted for a uniform signature.

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        The decoded JPEG, a new array.

    References
    ----------
    .. [1] ITU-T T.81 | ISO/IEC 10918-1, "Digital compression and coding of
           continuous-tone still images", 1992.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((16, 16, 3), 120, dtype=np.uint8)
    >>> out = jpeg(img, quality=50)
    >>> out.shape, out.dtype
    ((16, 16, 3), dtype('uint8'))
    """
    rgb = check_image(image)
    quality = check_int("quality", quality, low=1, high=100)
    return _cv2_roundtrip(rgb, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality])


_SUBSAMPLING = ("4:2:0", "4:2:2", "4:4:4")


def jpeg_pillow(
    image: NDArray[np.uint8],
    *,
    quality: int = 75,
    subsampling: str = "4:2:0",
    rng: RNGLike = None,
) -> NDArray[np.uint8]:
    """JPEG re-encoding with Pillow, with a choice of chroma subsampling.

    Stands for JPEG written by Python-based pipelines and photo tools; unlike
    :func:`jpeg` the chroma subsampling can be chosen: ``"4:2:0"`` (web and camera
    default), ``"4:2:2"`` or ``"4:4:4"`` (full-resolution chroma, as in
    high-quality exports).

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    quality : int, optional
        IJG quality factor in [1, 100]; lower is stronger.
    subsampling : {"4:2:0", "4:2:2", "4:4:4"}, optional
        Chroma subsampling.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        The decoded JPEG, a new array.

    References
    ----------
    .. [1] ITU-T T.81 | ISO/IEC 10918-1, 1992.
    """
    rgb = check_image(image)
    quality = check_int("quality", quality, low=1, high=100)
    subsampling = check_choice("subsampling", subsampling, _SUBSAMPLING)
    return _pillow_roundtrip(rgb, "JPEG", quality=quality, subsampling=subsampling)


def webp(image: NDArray[np.uint8], *, quality: int = 75, rng: RNGLike = None) -> NDArray[np.uint8]:
    """Lossy WebP re-encoding with OpenCV (libwebp, VP8 intra coding, 4:2:0).

    Stands for the WebP conversion done by CDNs, browsers' "save as" and social
    platforms that serve WebP.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    quality : int, optional
        libwebp quality in [1, 100]; lower is stronger (100 is still lossy here).
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        The decoded WebP, a new array.

    References
    ----------
    .. [1] J. Zern, P. Massimino, J. Alakuijala, "WebP image format", RFC 9649, 2024.
    """
    rgb = check_image(image)
    quality = check_int("quality", quality, low=1, high=100)
    return _cv2_roundtrip(rgb, ".webp", [cv2.IMWRITE_WEBP_QUALITY, quality])


def avif(
    image: NDArray[np.uint8],
    *,
    quality: int = 75,
    speed: int = 6,
    rng: RNGLike = None,
) -> NDArray[np.uint8]:
    """Lossy AVIF (AV1 intra) re-encoding with Pillow's libavif plugin, 4:2:0.

    Stands for AVIF conversion by modern CDNs and image services. The encoder runs
    single-threaded so that the output bytes do not depend on the machine's core
    count (libaom's output changes with the number of threads).

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    quality : int, optional
        libavif quality in [0, 100]; lower is stronger.
    speed : int, optional
        Encoder speed in [0, 10] (libavif's default is 6); higher is faster and
        slightly worse. About 1 s for 1080p at speed 6, 0.1 s at speed 10.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        The decoded AVIF, a new array.

    Raises
    ------
    AttackUnavailableError
        If Pillow was built without AVIF support (see ``AVIF_UNAVAILABLE_REASON``).

    References
    ----------
    .. [1] Alliance for Open Media, "AV1 Image File Format (AVIF)", v1.1.0, 2022.
    """
    rgb = check_image(image)
    quality = check_int("quality", quality, low=0, high=100)
    speed = check_int("speed", speed, low=0, high=10)
    if not AVIF_AVAILABLE:
        raise AttackUnavailableError(f"avif is unavailable: {AVIF_UNAVAILABLE_REASON}")
    return _pillow_roundtrip(
        rgb, "AVIF", quality=quality, speed=speed, subsampling="4:2:0", max_threads=1
    )


def png_quantize(
    image: NDArray[np.uint8],
    *,
    colours: int = 64,
    dither: bool = True,
    rng: RNGLike = None,
) -> NDArray[np.uint8]:
    """Palette quantisation, as when an image is saved as an 8-bit (palette) PNG or GIF.

    Stands for "PNG-8" exports and optimisers (pngquant-style size reduction) and
    GIF conversion: the image is reduced to at most ``colours`` colours by
    median cut, optionally with Floyd-Steinberg error diffusion. PNG storage
    itself is lossless, so the palette reduction is the whole attack and no PNG
    bytes are written.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    colours : int, optional
        Palette size in [2, 256]; fewer is stronger.
    dither : bool, optional
        Floyd-Steinberg error diffusion (Pillow's default for quantisation).
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        The palette image expanded back to RGB, a new array.

    References
    ----------
    .. [1] P. Heckbert, "Color image quantization for frame buffer display",
           SIGGRAPH 1982 (median cut).
    .. [2] R. W. Floyd, L. Steinberg, "An adaptive algorithm for spatial
           greyscale", Proc. SID 17(2), 1976.
    """
    rgb = check_image(image)
    colours = check_int("colours", colours, low=2, high=256)
    if not isinstance(dither, (bool, np.bool_)):
        raise ValueError(f"dither must be True or False; got {dither!r}")
    pal = Image.fromarray(rgb).quantize(
        colors=colours,
        method=Image.Quantize.MEDIANCUT,
        dither=Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE,
    )
    return np.ascontiguousarray(np.array(pal.convert("RGB"), dtype=np.uint8))
