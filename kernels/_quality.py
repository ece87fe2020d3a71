"""Image-quality kernel: the structural similarity map's mean, fused.

The embedder checks SSIM while it adapts its strength on small images
(``provmark._embed.SSIMReference``). The box filters are OpenCV's; this kernel fuses
the dozen element-wise steps that combine them, which NumPy runs as separate passes
over the image (about 13 ms at 512x512x3, against well under 1 ms here).

Reference: Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality
assessment: from error visibility to structural similarity", IEEE Trans. Image
Processing 13(4), 2004. The NumPy twin is ``tests/naive.py::ssim_mean``.
"""

from __future__ import annotations

from ._jit import njit_fast, prange


@njit_fast(parallel=True)
def ssim_mean(ux, vx, uy, yy, xy, c1, c2, norm, crop):
    """Mean of the SSIM map over ``[crop:-crop, crop:-crop]`` of every channel.

    Parameters (float32, (H, W, C), C-contiguous)
    ----------
    ux, vx : box means of the reference and its (sample-normalised) variance
    uy : box mean of the test image
    yy, xy : box means of ``y * y`` and ``x * y``
    c1, c2 : the stabilising constants ``(K1 L)**2`` and ``(K2 L)**2``
    norm : sample-covariance factor ``N / (N - 1)`` of the window
    crop : border width left out
    """
    h, w, nch = ux.shape
    rows = h - 2 * crop
    total = 0.0
    for i in prange(rows):
        row = 0.0
        yi = i + crop
        for j in range(crop, w - crop):
            for c in range(nch):
                mx = ux[yi, j, c]
                my = uy[yi, j, c]
                vy = norm * (yy[yi, j, c] - my * my)
                cov = norm * (xy[yi, j, c] - mx * my)
                row += ((2.0 * mx * my + c1) * (2.0 * cov + c2)
                        / ((mx * mx + my * my + c1) * (vx[yi, j, c] + vy + c2)))
        total += row
    return total / (rows * (w - 2 * crop) * nch)
