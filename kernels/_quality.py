"""Image-quality kernels: the structural similarity index, fused, and the embedder's
per-cell change bound (:func:`change_bound`).

The embedder checks SSIM while it adapts its strength on small images
(``provmark._embed.SSIMReference``): the reference's window statistics once
(:func:`box_moments`), then one fused pass per candidate image
(:func:`ssim_mean_against`) that forms the test image's window sums and the SSIM map
and averages it, without the intermediate planes that box filters and NumPy
element-wise steps would write (about 2 ms at 512x512x3 on 2 cores, against 8 ms for
OpenCV box filters plus a fused combination). Window sums of integer pixel values are
accumulated in float64, so the running sums are exact.

Only interior pixels are computed: the SSIM mean leaves out a border of ``half`` pixels
(scikit-image's default, ``(win_size - 1) // 2``), where every window lies inside the
image, so no border rule is needed.

Reference: Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality
assessment: from error visibility to structural similarity", IEEE Trans. Image
Processing 13(4), 2004. The NumPy twins are ``tests/naive.py::box_moments`` and
``ssim_mean_against``.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit_exact, njit_fast, prange

#: Rows per parallel work item: each item slides its window down its rows (one row in,
#: one out) instead of summing all 2 * half + 1 rows for every output row.
_CHUNK = 32


@njit_fast(parallel=True)
def box_moments(x, half, norm, out_mean, out_var):
    """Window mean and variance of every interior pixel of ``x``.

    Parameters
    ----------
    x : (H, W, C) uint8, C-contiguous
    half : window half-width (the window is ``2 * half + 1`` pixels square)
    norm : variance normalisation (``N / (N - 1)`` for the sample variance)
    out_mean, out_var : (H, W, C) float64, written at ``[half:H-half, half:W-half]``
        only (the rest is left as it is)
    """
    h, w, nch = x.shape
    side = 2 * half + 1
    n = side * side
    rows = h - 2 * half
    for chunk in prange((rows + _CHUNK - 1) // _CHUNK):
        i0 = half + chunk * _CHUNK
        col = np.zeros((w, nch))
        col2 = np.zeros((w, nch))
        for r in range(i0 - half, i0 + half):
            for j in range(w):
                for c in range(nch):
                    v = np.float64(x[r, j, c])
                    col[j, c] += v
                    col2[j, c] += v * v
        for i in range(i0, min(i0 + _CHUNK, h - half)):
            # Slide the column sums down: add the window's new bottom row.
            for j in range(w):
                for c in range(nch):
                    v = np.float64(x[i + half, j, c])
                    col[j, c] += v
                    col2[j, c] += v * v
            _box_row(col, col2, i, half, n, norm, out_mean, out_var)
            for j in range(w):
                for c in range(nch):
                    v = np.float64(x[i - half, j, c])
                    col[j, c] -= v
                    col2[j, c] -= v * v


@njit_fast
def _box_row(col, col2, i, half, n, norm, out_mean, out_var):
    """Row ``i`` of :func:`box_moments` from the window's column sums."""
    w, nch = col.shape
    side = 2 * half + 1
    for c in range(nch):
        s = 0.0
        s2 = 0.0
        for j in range(side - 1):
            s += col[j, c]
            s2 += col2[j, c]
        for j in range(half, w - half):
            s += col[j + half, c]
            s2 += col2[j + half, c]
            m = s / n
            out_mean[i, j, c] = m
            out_var[i, j, c] = norm * (s2 / n - m * m)
            s -= col[j - half, c]
            s2 -= col2[j - half, c]


@njit_fast(parallel=True)
def ssim_mean_against(x, y, ux, vx, half, c1, c2, norm):
    """Mean SSIM of ``y`` against the reference ``x`` over the interior of every channel.

    Parameters
    ----------
    x, y : (H, W, C) uint8, C-contiguous (reference and test image)
    ux, vx : (H, W, C) float64 window mean and variance of ``x`` (:func:`box_moments`)
    half : window half-width, also the border left out of the mean
    c1, c2 : the stabilising constants ``(K1 L)**2`` and ``(K2 L)**2``
    norm : covariance normalisation (``N / (N - 1)``)
    """
    h, w, nch = x.shape
    side = 2 * half + 1
    n = side * side
    rows = h - 2 * half
    total = 0.0
    for chunk in prange((rows + _CHUNK - 1) // _CHUNK):
        i0 = half + chunk * _CHUNK
        sy = np.zeros((w, nch))
        syy = np.zeros((w, nch))
        sxy = np.zeros((w, nch))
        for r in range(i0 - half, i0 + half):
            _add_row(x, y, r, 1.0, sy, syy, sxy)
        part = 0.0
        for i in range(i0, min(i0 + _CHUNK, h - half)):
            _add_row(x, y, i + half, 1.0, sy, syy, sxy)
            part += _ssim_row(sy, syy, sxy, ux, vx, i, half, n, c1, c2, norm)
            _add_row(x, y, i - half, -1.0, sy, syy, sxy)
        total += part
    return total / (rows * (w - 2 * half) * nch)


@njit_fast
def _add_row(x, y, r, sign, sy, syy, sxy):
    """Add (``sign`` 1) or remove (-1) image row ``r`` from the window column sums."""
    w, nch = sy.shape
    for j in range(w):
        for c in range(nch):
            a = np.float64(x[r, j, c])
            b = np.float64(y[r, j, c])
            sy[j, c] += sign * b
            syy[j, c] += sign * (b * b)
            sxy[j, c] += sign * (a * b)


@njit_fast(parallel=True)
def ssim_mean(x, y, half, c1, c2, norm):
    """:func:`ssim_mean_against` in one pass, the reference's window sums slid along
    with the test image's: for a single comparison (the coarse layer's check on
    images of any size) it writes no (H, W, C) planes of moments (2.4 GB at 50 MP)."""
    h, w, nch = x.shape
    side = 2 * half + 1
    n = side * side
    rows = h - 2 * half
    total = 0.0
    for chunk in prange((rows + _CHUNK - 1) // _CHUNK):
        i0 = half + chunk * _CHUNK
        sx = np.zeros((w, nch))
        sxx = np.zeros((w, nch))
        sy = np.zeros((w, nch))
        syy = np.zeros((w, nch))
        sxy = np.zeros((w, nch))
        for r in range(i0 - half, i0 + half):
            _add_row(x, y, r, 1.0, sy, syy, sxy)
            _add_ref_row(x, r, 1.0, sx, sxx)
        part = 0.0
        for i in range(i0, min(i0 + _CHUNK, h - half)):
            _add_row(x, y, i + half, 1.0, sy, syy, sxy)
            _add_ref_row(x, i + half, 1.0, sx, sxx)
            part += _ssim_row_sums(sx, sxx, sy, syy, sxy, half, n, c1, c2, norm)
            _add_row(x, y, i - half, -1.0, sy, syy, sxy)
            _add_ref_row(x, i - half, -1.0, sx, sxx)
        total += part
    return total / (rows * (w - 2 * half) * nch)


@njit_fast
def _add_ref_row(x, r, sign, sx, sxx):
    """Add or remove row ``r`` of the reference from its window column sums."""
    w, nch = sx.shape
    for j in range(w):
        for c in range(nch):
            a = np.float64(x[r, j, c])
            sx[j, c] += sign * a
            sxx[j, c] += sign * (a * a)


@njit_fast
def _ssim_row_sums(sx, sxx, sy, syy, sxy, half, n, c1, c2, norm):
    """Sum of the SSIM map over one interior row, from both images' column sums."""
    w, nch = sy.shape
    side = 2 * half + 1
    row = 0.0
    for c in range(nch):
        t0 = 0.0
        t1 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for j in range(side - 1):
            t0 += sx[j, c]
            t1 += sxx[j, c]
            s1 += sy[j, c]
            s2 += syy[j, c]
            s3 += sxy[j, c]
        for j in range(half, w - half):
            t0 += sx[j + half, c]
            t1 += sxx[j + half, c]
            s1 += sy[j + half, c]
            s2 += syy[j + half, c]
            s3 += sxy[j + half, c]
            mx = t0 / n
            row += _ssim_value(mx, norm * (t1 / n - mx * mx), s1, s2, s3, n, c1, c2, norm)
            t0 -= sx[j - half, c]
            t1 -= sxx[j - half, c]
            s1 -= sy[j - half, c]
            s2 -= syy[j - half, c]
            s3 -= sxy[j - half, c]
    return row


@njit_fast
def _ssim_value(mx, vx, s1, s2, s3, n, c1, c2, norm):
    """SSIM of one window: reference mean and variance, test image's window sums of
    ``y``, ``y**2`` and ``x*y``."""
    my = s1 / n
    vy = norm * (s2 / n - my * my)
    cov = norm * (s3 / n - mx * my)
    return ((2.0 * mx * my + c1) * (2.0 * cov + c2)
            / ((mx * mx + my * my + c1) * (vx + vy + c2)))


@njit_fast
def _ssim_row(sy, syy, sxy, ux, vx, i, half, n, c1, c2, norm):
    """Sum of the SSIM map over the interior of row ``i``, from the column sums."""
    w, nch = sy.shape
    side = 2 * half + 1
    row = 0.0
    for c in range(nch):
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for j in range(side - 1):
            s1 += sy[j, c]
            s2 += syy[j, c]
            s3 += sxy[j, c]
        for j in range(half, w - half):
            s1 += sy[j + half, c]
            s2 += syy[j + half, c]
            s3 += sxy[j + half, c]
            row += _ssim_value(ux[i, j, c], vx[i, j, c], s1, s2, s3, n, c1, c2, norm)
            s1 -= sy[j - half, c]
            s2 -= syy[j - half, c]
            s3 -= sxy[j - half, c]
    return row


#: BT.601 luma of uint8 RGB in 16-bit fixed point, rounded: the grey level the
#: change bound is measured on (the weights and rounding of OpenCV 5's RGB2GRAY,
#: written out here so that the bound does not move with a library's version).
GREY_WEIGHTS = (19596, 38470, 7470)
_GREY_SHIFT = 16


@njit_exact(parallel=True)
def change_bound(rgb, window, flat, slope, cap, out):
    """Bound on the change of every 2x2 pixel cell (one LL sample) of the whole blocks.

    ``out`` (H8, W8) float32 covers the top-left ``2*H8 x 2*W8`` pixels of ``rgb``
    ((H, W, 3) uint8, C-contiguous). Per cell: the uint8 grey level of its four
    pixels (:data:`GREY_WEIGHTS`), their mean rounded half up, then the standard
    deviation of those means over a ``window`` x ``window`` neighbourhood (rows and
    columns ``-window//2 .. window - window//2 - 1`` around the cell, mirrored at
    the edges without repeating the edge sample), and
    ``out = clip(flat + slope * std, flat, cap)``. The window sums of integer means
    are exact in float64; the mean, variance and bound are formed in float32. The
    NumPy twin is ``tests/naive.py::change_bound``.

    Two parallel passes over rows (the cells, then the bounds), each row's work in a
    serial helper: written in place inside the parallel loops, the row loops did not
    vectorise (5 ms on one thread at 1920x1080, against 2.8 ms serial and 1.3 ms
    this way on 2 cores).
    """
    h8, w8 = out.shape
    rows = rgb.reshape(rgb.shape[0], rgb.shape[1] * 3)
    cells = np.empty((h8, w8), np.float64)
    for ly in prange(h8):
        _cell_row(rows, ly, cells[ly])
    for ly in prange(h8):
        _bound_row(cells, ly, window, flat, slope, cap, out[ly])


@njit_exact
def _cell_row(rows, ly, cells_row):
    """Row ``ly`` of :func:`change_bound`'s cells: the rounded mean grey level of
    every 2x2 pixel cell."""
    w8 = cells_row.shape[0]
    wr, wg, wb = GREY_WEIGHTS
    rnd = np.int32(1 << (_GREY_SHIFT - 1))
    grey = np.empty((2, 2 * w8), np.int32)
    for dy in range(2):
        row = rows[2 * ly + dy]
        g = grey[dy]
        for x in range(2 * w8):
            g[x] = (wr * np.int32(row[3 * x]) + wg * np.int32(row[3 * x + 1])
                    + wb * np.int32(row[3 * x + 2]) + rnd) >> _GREY_SHIFT
    for lx in range(w8):
        cells_row[lx] = (grey[0, 2 * lx] + grey[0, 2 * lx + 1] + grey[1, 2 * lx]
                         + grey[1, 2 * lx + 1] + 2) >> 2


@njit_exact
def _bound_row(cells, ly, window, flat, slope, cap, out_row):
    """Row ``ly`` of :func:`change_bound`'s output from all the cells."""
    h8, w8 = cells.shape
    lead = window // 2
    inv = 1.0 / (window * window)
    flat32 = np.float32(flat)
    slope32 = np.float32(slope)
    cap32 = np.float32(cap)
    # Column sums of the window's rows, then the horizontal window over them:
    # whole-row adds that vectorise (the sums are of integers, so exact in any
    # order); only the edge columns need the mirror.
    sums = np.zeros(w8, np.float64)
    squares = np.zeros(w8, np.float64)
    for t in range(window):
        row = cells[_mirror(ly - lead + t, h8)]
        for lx in range(w8):
            v = row[lx]
            sums[lx] += v
            squares[lx] += v * v
    box = np.zeros(w8, np.float64)
    box_sq = np.zeros(w8, np.float64)
    first, stop = lead, w8 - (window - lead - 1)
    inner = box[first:stop]
    inner_sq = box_sq[first:stop]
    for t in range(window):
        # Views, so that every index is non-negative (no wrap-around check).
        src = sums[t:t + stop - first]
        src_sq = squares[t:t + stop - first]
        for i in range(stop - first):
            inner[i] += src[i]
            inner_sq[i] += src_sq[i]
    for lx in range(w8):
        if first <= lx < stop:
            continue
        for t in range(window):
            k = _mirror(lx - lead + t, w8)
            box[lx] += sums[k]
            box_sq[lx] += squares[k]
    for lx in range(w8):
        mean = np.float32(box[lx] * inv)
        var = np.float32(box_sq[lx] * inv) - mean * mean
        if var < np.float32(0.0):
            var = np.float32(0.0)
        bound = flat32 + slope32 * np.sqrt(var)
        out_row[lx] = min(max(bound, flat32), cap32)


@njit_exact
def _mirror(i, n):
    """Index ``i`` reflected into ``0..n-1`` without repeating the edge (``-1 -> 1``,
    ``n -> n - 2``), as OpenCV's default border."""
    if i < 0:
        return -i
    if i >= n:
        return 2 * n - 2 - i
    return i
