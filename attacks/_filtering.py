"""Filtering and noise attacks: Gaussian, median and box blur, unsharp sharpening,
additive Gaussian noise and salt-and-pepper impulses.

Blurs are OpenCV filters with reflected borders (``BORDER_REFLECT_101``), applied
to each RGB channel; noise is drawn only from the ``rng`` argument.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from ._common import RNGLike, check_image, check_int, check_number, make_rng, to_uint8

__all__ = [
    "gaussian_blur",
    "median_blur",
    "box_blur",
    "sharpen",
    "gaussian_noise",
    "salt_pepper",
]


def _check_odd_ksize(ksize: object) -> int:
    k = check_int("ksize", ksize, low=1)
    if k % 2 == 0:
        raise ValueError(f"ksize must be odd (the kernel needs a centre pixel); got {k}: use {k + 1}")
    return k


def gaussian_blur(
    image: NDArray[np.uint8], *, sigma: float = 1.0, rng: RNGLike = None
) -> NDArray[np.uint8]:
    """Gaussian blur.

    Stands for defocus, a soft-focus or "smooth skin" filter, and the
    anti-aliasing low-pass of resampling pipelines. The kernel radius is about
    ``3 * sigma`` (OpenCV's choice for 8-bit images).

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    sigma : float, optional
        Standard deviation in pixels, >= 0 (0 returns a copy); larger is stronger.
        Benchmarks typically use 0.5 to 2.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        The blurred image, a new array.
    """
    rgb = check_image(image)
    sigma = check_number("sigma", sigma, low=0.0)
    if sigma == 0.0:
        return rgb.copy()
    out = cv2.GaussianBlur(rgb, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    return np.ascontiguousarray(out)


def median_blur(
    image: NDArray[np.uint8], *, ksize: int = 3, rng: RNGLike = None
) -> NDArray[np.uint8]:
    """Median filter over a ``ksize x ksize`` window.

    Stands for denoising filters (the classic cure for impulse noise) and
    "despeckle" in photo editors; it removes thin lines and isolated pixels while
    keeping edges.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    ksize : int, optional
        Odd window size >= 1 (1 returns a copy); larger is stronger.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        The filtered image, a new array.

    References
    ----------
    .. [1] J. W. Tukey, "Exploratory Data Analysis", Addison-Wesley, 1977.
    """
    rgb = check_image(image)
    k = _check_odd_ksize(ksize)
    if k == 1:
        return rgb.copy()
    return np.ascontiguousarray(cv2.medianBlur(rgb, k))


def box_blur(
    image: NDArray[np.uint8], *, ksize: int = 3, rng: RNGLike = None
) -> NDArray[np.uint8]:
    """Mean (box) filter over a ``ksize x ksize`` window.

    Stands for the cheapest blur in image tools and for pixel binning.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    ksize : int, optional
        Window size >= 1 (1 returns a copy); larger is stronger.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        The blurred image, a new array.
    """
    rgb = check_image(image)
    k = check_int("ksize", ksize, low=1)
    if k == 1:
        return rgb.copy()
    return np.ascontiguousarray(cv2.blur(rgb, (k, k), borderType=cv2.BORDER_REFLECT_101))


def sharpen(
    image: NDArray[np.uint8],
    *,
    amount: float = 1.0,
    sigma: float = 1.0,
    rng: RNGLike = None,
) -> NDArray[np.uint8]:
    """Unsharp-mask sharpening: ``image + amount * (image - gaussian_blur(image, sigma))``.

    Stands for the sharpening that phones, editors and social platforms apply
    after resizing.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    amount : float, optional
        Gain of the high-pass detail, >= 0 (0 returns a copy); larger is stronger.
    sigma : float, optional
        Radius (standard deviation, pixels) of the blur that defines "detail", > 0.
    rng : numpy.random.Generator, int or None, optional
        Ignored (the attack is deterministic).

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        The sharpened image, rounded and clipped, a new array.
    """
    rgb = check_image(image)
    amount = check_number("amount", amount, low=0.0)
    sigma = check_number("sigma", sigma, low=0.0, low_inclusive=False)
    src = rgb.astype(np.float32)
    blurred = cv2.GaussianBlur(
        src, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101
    )
    return to_uint8(src + np.float32(amount) * (src - blurred))


def gaussian_noise(
    image: NDArray[np.uint8], *, sigma: float = 5.0, rng: RNGLike = None
) -> NDArray[np.uint8]:
    """Additive white Gaussian noise, independent per pixel and channel.

    Stands for sensor noise in a photo of the image, film grain filters and
    deliberate noise added to break a watermark.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    sigma : float, optional
        Standard deviation in grey levels (0-255 scale), >= 0; larger is stronger.
    rng : numpy.random.Generator, int or None, optional
        Source of the noise.

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        The noisy image, rounded and clipped, a new array.
    """
    rgb = check_image(image)
    sigma = check_number("sigma", sigma, low=0.0)
    noise = make_rng(rng).standard_normal(rgb.shape, dtype=np.float32)
    noise *= np.float32(sigma)
    noise += rgb
    return to_uint8(noise)


def salt_pepper(
    image: NDArray[np.uint8], *, fraction: float = 0.01, rng: RNGLike = None
) -> NDArray[np.uint8]:
    """Salt-and-pepper (impulse) noise: a fraction of pixels set to black or white.

    Stands for dead or hot sensor pixels, bit errors in transmission and dust on
    a scan. Exactly ``round(fraction * H * W)`` distinct pixels are hit; each
    becomes black (0, 0, 0) or white (255, 255, 255) with equal probability.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    fraction : float, optional
        Fraction of pixels hit, in [0, 1]; larger is stronger.
    rng : numpy.random.Generator, int or None, optional
        Source of the pixel positions and values.

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        The corrupted image, a new array.
    """
    rgb = check_image(image)
    fraction = check_number("fraction", fraction, low=0.0, high=1.0)
    gen = make_rng(rng)
    out = rgb.copy()
    flat = out.reshape(-1, 3)
    n_hit = round(fraction * flat.shape[0])
    idx = gen.choice(flat.shape[0], size=n_hit, replace=False)
    flat[idx] = (gen.integers(0, 2, size=n_hit, dtype=np.uint8) * np.uint8(255))[:, None]
    return out
