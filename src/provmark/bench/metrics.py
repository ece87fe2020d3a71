"""Image-quality and detection metrics of the benchmark: PSNR, SSIM, MS-SSIM, and
TPR at a fixed false-positive rate.

MS-SSIM is implemented here (NumPy/SciPy) so that the benchmark has a perceptual
metric that needs no network download at run time (LPIPS would fetch network
weights). The detection metric follows WAVES: the true-positive rate at a fixed
false-positive rate, computed from per-image p-values (see :func:`tpr_at_fpr` and
``docs/bench.md``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "MS_SSIM_WEIGHTS",
    "psnr",
    "ssim",
    "ms_ssim",
    "luma",
    "binomial_p_value",
    "tpr_at_fpr",
    "empirical_tpr_at_fpr",
]

#: Exponents of the five scales of MS-SSIM, from Wang, Simoncelli & Bovik (2003),
#: fitted to their human-observer experiment.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def luma(image: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB uint8 image as float64 (grey levels 0..255)."""
    rgb = np.asarray(image, dtype=np.float64)
    if rgb.ndim == 2:
        return rgb
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def psnr(reference: np.ndarray, test: np.ndarray, *, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (inf if equal)."""
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(test, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """SSIM of two RGB uint8 images: scikit-image's ``structural_similarity`` with its
    defaults (7x7 uniform window), averaged over the three channels."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(np.asarray(reference), np.asarray(test),
                                       channel_axis=2, data_range=255))


def _ssim_terms(x: np.ndarray, y: np.ndarray, *, sigma: float, truncate: float,
                data_range: float, k1: float, k2: float) -> tuple[float, float]:
    """Mean SSIM (luminance x contrast-structure map) and mean contrast-structure
    term of one scale.

    Local statistics use a Gaussian window (``sigma``, radius ``truncate*sigma``);
    the border where the window would leave the image is cropped before averaging,
    as scikit-image does for SSIM.
    """
    from scipy import ndimage

    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2

    def blur(a):
        return ndimage.gaussian_filter(a, sigma=sigma, truncate=truncate, mode="reflect")

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    cs = (2 * cxy + c2) / (vx + vy + c2)
    pad = int(truncate * sigma + 0.5)
    crop = (slice(pad, -pad or None), slice(pad, -pad or None))
    return float((lum * cs)[crop].mean()), float(cs[crop].mean())


def _downsample2(a: np.ndarray) -> np.ndarray:
    """2x2 average, then every second pixel (the low-pass of Wang et al.'s code)."""
    h, w = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
    a = a[:h, :w]
    return 0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2])


def ms_ssim(reference: np.ndarray, test: np.ndarray, *, weights=MS_SSIM_WEIGHTS,
            sigma: float = 1.5, truncate: float = 3.5, data_range: float = 255.0,
            k1: float = 0.01, k2: float = 0.03) -> float:
    """Multi-scale structural similarity (MS-SSIM) of two images; for RGB images the
    mean over the three channels (so that a change of colour only counts too).

    At each of the ``M = len(weights)`` scales the contrast-structure map
    ``cs = (2 s_xy + C2) / (s_x^2 + s_y^2 + C2)`` is computed with Gaussian windows
    (``sigma`` 1.5, 11x11) and averaged over the positions where the window lies
    inside the image; at the coarsest scale the SSIM map ``l * cs``, with
    ``l = (2 m_x m_y + C1) / (m_x^2 + m_y^2 + C1)``, is averaged instead, and

        MS-SSIM = mean(l_M cs_M) ** w_M * prod_{j<M} mean(cs_j) ** w_j

    with the exponents of Wang et al. (:data:`MS_SSIM_WEIGHTS`), as in the
    authors' reference code. Between scales the images are low-passed by a 2x2
    mean and subsampled by 2 (an odd last row or column is dropped). Negative means
    (anti-correlated images) are clipped to 0 before the power, as common
    implementations do. With one weight it is single-scale SSIM with a Gaussian
    window (scikit-image's ``gaussian_weights=True, use_sample_covariance=False``).
    Averaging over R, G and B (rather than using luma) keeps marks that change only
    chroma, such as invisible-watermark's, from scoring as untouched.

    Parameters
    ----------
    reference, test : ndarray
        HxW grey or HxWxC images of equal shape, values in ``[0, data_range]``;
        with channels, MS-SSIM is computed per channel and averaged.
    weights : sequence of float
        One exponent per scale, finest first.

    Returns
    -------
    float
        1.0 for identical images, lower as structure is lost.

    References
    ----------
    Z. Wang, E. P. Simoncelli, A. C. Bovik, "Multiscale structural similarity for
    image quality assessment", Proc. 37th Asilomar Conference on Signals, Systems
    and Computers, 2003, pp. 1398-1402.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    >>> ms_ssim(img, img)
    1.0
    """
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(test, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {x.shape} vs {y.shape}")
    if x.ndim == 3:
        return float(np.mean([
            ms_ssim(x[..., c], y[..., c], weights=weights, sigma=sigma, truncate=truncate,
                    data_range=data_range, k1=k1, k2=k2) for c in range(x.shape[2])]))
    weights = tuple(float(w) for w in weights)
    if not weights:
        raise ValueError("weights must name at least one scale")
    radius = int(truncate * sigma + 0.5)
    smallest = min(x.shape) >> (len(weights) - 1)
    if smallest < 2 * radius + 2:
        raise ValueError(
            f"a {x.shape[1]}x{x.shape[0]} image is too small for {len(weights)} scales with "
            f"a {2 * radius + 1}-pixel window: use at least {(2 * radius + 2) << (len(weights) - 1)} "
            "pixels a side or fewer weights")
    result = 1.0
    for j, w in enumerate(weights):
        full, cs = _ssim_terms(x, y, sigma=sigma, truncate=truncate, data_range=data_range,
                               k1=k1, k2=k2)
        if j == len(weights) - 1:
            result *= max(full, 0.0) ** w
        else:
            result *= max(cs, 0.0) ** w
            x, y = _downsample2(x), _downsample2(y)
    return float(result)


def binomial_p_value(matches: int, n_bits: int) -> float:
    """``P(Binomial(n_bits, 1/2) >= matches)``: the chance that ``matches`` or more of
    ``n_bits`` decoded bits agree with a uniformly random message by luck."""
    from scipy.stats import binom

    if matches <= 0:
        return 1.0
    return float(binom.sf(matches - 1, n_bits, 0.5))


def tpr_at_fpr(positive_p: np.ndarray, fpr: float) -> float:
    """True-positive rate at false-positive rate ``fpr`` from valid p-values.

    A p-value ``p`` is valid when ``P(p <= a) <= a`` for an unmarked image, for
    every ``a``; declaring "marked" when ``p <= fpr`` then has a false-positive rate
    of at most ``fpr`` with no negatives needed, and the TPR is the fraction of
    marked images with ``p <= fpr``.

    Examples
    --------
    >>> tpr_at_fpr(np.array([1e-9, 1e-5, 0.5, 1.0]), 1e-3)
    0.5
    """
    p = np.asarray(positive_p, dtype=np.float64)
    if p.size == 0:
        return math.nan
    return float(np.mean(p <= fpr))


def empirical_tpr_at_fpr(positive_scores: np.ndarray, negative_scores: np.ndarray,
                         fpr: float) -> tuple[float, float] | None:
    """TPR at ``fpr`` with the threshold set on the negatives' scores.

    The threshold is the smallest value that at most ``floor(fpr * n)`` of the ``n``
    negative scores exceed; a positive is detected when its score is strictly above
    it (higher score = more evidence of a mark). An empirical threshold cannot
    certify a rate below ``1/n``: when ``n < 1/fpr`` this returns None.

    Returns
    -------
    (tpr, threshold) or None
    """
    neg = np.sort(np.asarray(negative_scores, dtype=np.float64))[::-1]
    pos = np.asarray(positive_scores, dtype=np.float64)
    n = neg.size
    if n == 0 or n * fpr < 1.0 - 1e-9:
        return None
    allowed = int(math.floor(n * fpr + 1e-9))
    threshold = float(neg[allowed]) if allowed < n else -math.inf
    tpr = float(np.mean(pos > threshold)) if pos.size else math.nan
    return tpr, threshold
