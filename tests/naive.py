"""Slow, obviously-correct reference implementations of every ``provmark.kernels`` kernel.

The oracles are PyWavelets (``pywt.dwt2(x, 'haar', mode='periodization')``),
``scipy.fft.dctn(..., norm='ortho')`` and plain NumPy/``math`` loops, all in float64.
Nothing here imports ``provmark``: the angle-QIM formulas are written again from their
definitions (lattice ``dither + bit*pi/4 + k*pi/2``, decision half-width ``pi/8``) so a
kernel cannot agree with its reference by sharing a bug. Speed is irrelevant; clarity
is the point (the stumpy ``tests/naive.py`` habit, STYLE.md).
"""

from __future__ import annotations

import math

import numpy as np
import pywt
import scipy.fft

BLOCK = 8  # LL-band DCT block size
BLOCK_PX = 2 * BLOCK  # one LL block covers 16x16 image pixels
#: Angle lattice period of one bit value (radians); bit 1 sits half a period from bit 0.
PERIOD = math.pi / 2.0
#: Half-width of a decision region: a symbol decodes correctly within PERIOD / 4.
HALF_WIDTH = PERIOD / 4.0


# --------------------------------------------------------------------- transforms


def haar_dwt2(x):
    """``cA, (cH, cV, cD)`` of a one-level orthonormal Haar DWT (float64, PyWavelets)."""
    return pywt.dwt2(np.asarray(x, np.float64), "haar", mode="periodization")


def haar_idwt2(ca, ch, cv, cd):
    """Inverse of :func:`haar_dwt2` (float64, PyWavelets)."""
    coeffs = tuple(np.asarray(b, np.float64) for b in (ca, ch, cv, cd))
    return pywt.idwt2((coeffs[0], coeffs[1:]), "haar", mode="periodization")


def block_dct(x, n=BLOCK):
    """Orthonormal 2-D DCT-II of every ``n x n`` block, one ``scipy.fft.dctn`` per block."""
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    for i in range(0, x.shape[0], n):
        for j in range(0, x.shape[1], n):
            out[i:i + n, j:j + n] = scipy.fft.dctn(x[i:i + n, j:j + n], norm="ortho")
    return out


def block_idct(x, n=BLOCK):
    """Inverse of :func:`block_dct`, one ``scipy.fft.idctn`` per block."""
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    for i in range(0, x.shape[0], n):
        for j in range(0, x.shape[1], n):
            out[i:i + n, j:j + n] = scipy.fft.idctn(x[i:i + n, j:j + n], norm="ortho")
    return out


def luma(rgb):
    """BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` in float64, no rounding."""
    rgb = np.asarray(rgb, np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


# ------------------------------------------------------------ LL-band block DCT


def ll_block_dcts(y, oy, ox, nby, nbx):
    """Full 8x8 DCT of the Haar LL band for each 16x16 pixel block, grid origin (oy, ox).

    Returns ``(dct, detail)``: ``dct`` is (nby, nbx, 8, 8); ``detail`` is (nby, nbx)
    the RMS of the three Haar detail bands (192 samples) over each block.
    """
    crop = np.asarray(y, np.float64)[oy:oy + BLOCK_PX * nby, ox:ox + BLOCK_PX * nbx]
    ca, (ch, cv, cd) = haar_dwt2(crop)
    dct = np.empty((nby, nbx, BLOCK, BLOCK))
    detail = np.empty((nby, nbx))
    for by in range(nby):
        for bx in range(nbx):
            sl = (slice(BLOCK * by, BLOCK * (by + 1)), slice(BLOCK * bx, BLOCK * (bx + 1)))
            dct[by, bx] = scipy.fft.dctn(ca[sl], norm="ortho")
            bands = np.concatenate([ch[sl].ravel(), cv[sl].ravel(), cd[sl].ravel()])
            detail[by, bx] = math.sqrt(np.mean(bands**2))
    return dct, detail


def pair_coeffs(y, oy, ox, pairs, nby, nbx):
    """(nby, nbx, P, 2): coefficients ``D[u1, v1]`` and ``D[u2, v2]`` of every block."""
    dct, _ = ll_block_dcts(y, oy, ox, nby, nbx)
    out = np.empty((nby, nbx, len(pairs), 2))
    for p, (u1, v1, u2, v2) in enumerate(np.asarray(pairs)):
        out[:, :, p, 0] = dct[:, :, u1, v1]
        out[:, :, p, 1] = dct[:, :, u2, v2]
    return out


def texture_rms(dct, pairs):
    """RMS of the DCT coefficients with ``u + v >= 3`` that carry no symbol."""
    u, v = np.indices((BLOCK, BLOCK))
    keep = u + v >= 3
    for u1, v1, u2, v2 in np.asarray(pairs):
        keep[u1, v1] = False
        keep[u2, v2] = False
    return math.sqrt(np.mean(dct[keep] ** 2))


# ------------------------------------------------------------------- angle QIM


def wrap(a, period):
    """``a`` reduced to ``[-period/2, period/2)``."""
    return (a + period / 2.0) % period - period / 2.0


def margin(c1, c2, dither):
    """Signed distance of the point ``(c1, c2)`` from the nearest decision boundary.

    The bit-0 lattice rays are at ``dither + k*PERIOD``; boundaries lie ``HALF_WIDTH``
    either side. The perpendicular distance of a point at radius ``r`` and angle
    ``a`` from a ray through the origin is ``r * sin(a)``: positive inside a bit-0
    region, negative inside a bit-1 region. Works element-wise on arrays.
    """
    r = np.hypot(c1, c2)
    a = np.abs(wrap(np.arctan2(c2, c1) - dither, PERIOD))  # angle to nearest bit-0 ray
    return r * np.sin(HALF_WIDTH - a)


def target(c1, c2, bit, dither, r_floor, margin_, min_angle):
    """Where angle-QIM moves ``(c1, c2)`` to write ``bit`` (see ``aqim_target``).

    1. radius ``R = max(r, r_floor)``;
    2. the angular margin wanted is ``need = max(asin(min(1, margin/R)), min_angle)``
       (the whole half-width if ``R == 0``);
    3. the angle moves the least it can to lie within ``HALF_WIDTH - need`` of the
       nearest lattice ray of ``bit`` (onto the ray if ``need >= HALF_WIDTH``).
    """
    r = math.hypot(c1, c2)
    theta = math.atan2(c2, c1)
    err = float(wrap(theta - (dither + bit * PERIOD / 2.0), PERIOD))  # angle past the ray
    big_r = max(r, r_floor)
    need = math.asin(min(1.0, margin_ / big_r)) if big_r > 0 else HALF_WIDTH
    need = max(need, min_angle)
    room = max(HALF_WIDTH - need, 0.0)
    moved = theta - err + min(max(err, -room), room)
    return big_r * math.cos(moved), big_r * math.sin(moved)


def embed_deltas(rgb, pairs, bits, dither, boost, *, r_floor, floor_base, floor_gain, margin,
                 min_angle, cap_base, cap_texture, offset=None):
    """Reference for ``aqim_embed_deltas``: returns ``(delta, coef)``, (nby, nbx, P, 2).

    Per whole 16x16 block: luma -> PyWavelets Haar LL -> ``scipy.fft.dctn``. The
    block's activity is ``hypot(texture, detail)`` (:func:`texture_rms`, the Haar
    detail RMS). The radius floor is the least of ``r_floor``, five times the block's
    headroom (distance of its mean luma from 0 or 255) and
    ``floor_base + floor_gain * activity``; each symbol's change is the move to
    :func:`target`, its length capped at ``cap_base + cap_texture * activity`` times
    the slot's ``boost``. Block ``(by, bx)`` writes ``bits[by % T, bx % T]`` (cap
    multiplier ``boost[by % T, bx % T]``) with ``dither[by % D, bx % D]``. With
    ``offset`` (nby, nbx, P, 2), the move starts from the pair plus its offset.
    """
    pairs = np.asarray(pairs)
    h, w = rgb.shape[:2]
    nby, nbx = h // BLOCK_PX, w // BLOCK_PX
    y = luma(rgb)
    dct, detail = ll_block_dcts(y, 0, 0, nby, nbx)
    tsz, dsz = bits.shape[0], dither.shape[0]
    delta = np.empty((nby, nbx, len(pairs), 2))
    coef = np.empty_like(delta)
    for by in range(nby):
        for bx in range(nbx):
            d = dct[by, bx]
            activity = math.hypot(texture_rms(d, pairs), detail[by, bx])
            cap = cap_base + cap_texture * activity
            mean = y[BLOCK_PX * by:BLOCK_PX * (by + 1), BLOCK_PX * bx:BLOCK_PX * (bx + 1)].mean()
            floor = min(r_floor, 5.0 * max(min(mean, 255.0 - mean), 0.0),
                        floor_base + floor_gain * activity)
            for p, (u1, v1, u2, v2) in enumerate(pairs):
                c1, c2 = d[u1, v1], d[u2, v2]
                s1, s2 = (c1, c2) if offset is None else (c1 + float(offset[by, bx, p, 0]),
                                                          c2 + float(offset[by, bx, p, 1]))
                t1, t2 = target(s1, s2, int(bits[by % tsz, bx % tsz, p]),
                                float(dither[by % dsz, bx % dsz, p]), floor, margin,
                                min_angle)
                move = np.array([t1 - s1, t2 - s2])
                length = float(np.hypot(*move))
                slot_cap = cap * float(boost[by % tsz, bx % tsz, p])
                if length > slot_cap:
                    move *= slot_cap / length
                delta[by, bx, p] = move
                coef[by, bx, p] = (c1, c2)
    return delta, coef


def ll_only_inverse_haar(dll):
    """Pixel change from an LL-band change alone, via ``pywt.idwt2`` (detail bands zero).

    Checks on the way that it is the 2x2 upsampling of ``dll / 2`` (the orthonormal
    Haar synthesis of an LL-only signal), which the kernel uses directly.
    """
    zeros = np.zeros_like(dll)
    pix = haar_idwt2(dll, zeros, zeros, zeros)
    upsampled = np.kron(dll, np.ones((2, 2))) / 2.0
    np.testing.assert_allclose(pix, upsampled, rtol=1e-12, atol=1e-12)
    return pix


def apply_deltas(rgb, pairs, delta, scale, max_change, template=None, tamp=None):
    """Reference for ``apply_block_deltas``: the marked uint8 image.

    The LL-band change of each block is ``scipy.fft.idctn`` of its coefficient
    changes (``scale * delta`` scattered into an 8x8 array, shared coefficients
    adding up); the pixel change is its inverse Haar (:func:`ll_only_inverse_haar`),
    clamped to ``+-max_change`` (a number, or an LL-resolution array: one limit per
    2x2 pixel cell), added to R, G and B alike, rounded half up
    (``floor(x + 0.5)``) and clipped to 0..255. Pixels outside whole blocks
    (``delta.shape[:2]`` blocks from the origin) are copied. With ``template`` (a
    (Q, Q) tile) and ``tamp`` (per-block amplitudes), ``template[y % Q, x % Q] *
    tamp[block]`` is added to the clamped change and the sum clamped again before the
    rounding.
    """
    pairs = np.asarray(pairs)
    nby, nbx = delta.shape[:2]
    dll = np.zeros((BLOCK * nby, BLOCK * nbx))
    for by in range(nby):
        for bx in range(nbx):
            coeffs = np.zeros((BLOCK, BLOCK))
            for p, (u1, v1, u2, v2) in enumerate(pairs):
                coeffs[u1, v1] += scale * delta[by, bx, p, 0]
                coeffs[u2, v2] += scale * delta[by, bx, p, 1]
            dll[BLOCK * by:BLOCK * (by + 1), BLOCK * bx:BLOCK * (bx + 1)] = scipy.fft.idctn(
                coeffs, norm="ortho")
    if np.ndim(max_change):
        max_change = np.kron(np.asarray(max_change, np.float64), np.ones((2, 2)))
    change = np.clip(ll_only_inverse_haar(dll), -max_change, max_change)
    if template is not None:
        q = template.shape[0]
        hh, ww = change.shape
        tiled = np.tile(np.asarray(template, np.float64), (hh // q + 1, ww // q + 1))[:hh, :ww]
        amp = np.kron(np.asarray(tamp, np.float64), np.ones((BLOCK_PX, BLOCK_PX)))
        change = np.clip(change + tiled * amp, -max_change, max_change)
    out = np.array(rgb, copy=True)
    region = np.asarray(rgb[:BLOCK_PX * nby, :BLOCK_PX * nbx], np.float64)
    marked = np.floor(region + change[..., None] + 0.5)
    out[:BLOCK_PX * nby, :BLOCK_PX * nbx] = np.clip(marked, 0, 255).astype(np.uint8)
    return out


def soft_observe(coef, dither, ty, tx, tsz, scale, rel, clip):
    """Reference for ``aqim_soft_observe``: ``(score, slot)``, each (nby, nbx, P):
    ``clip(margin / (scale + rel * radius), -clip, clip)`` read with
    ``dither[(by+ty) % D, (bx+tx) % D]``, and the flat index of tile slot
    ``((by+ty) % T, (bx+tx) % T, p)``."""
    coef = np.asarray(coef, np.float64)
    nby, nbx, npairs, _ = coef.shape
    dsz = dither.shape[0]
    by, bx, p = np.meshgrid(np.arange(nby), np.arange(nbx), np.arange(npairs), indexing="ij")
    d = dither[(by + ty) % dsz, (bx + tx) % dsz, p]
    c1, c2 = coef[..., 0], coef[..., 1]
    score = np.clip(margin(c1, c2, d) / (scale + rel * np.hypot(c1, c2)), -clip, clip)
    slot = (((by + ty) % tsz) * tsz + (bx + tx) % tsz) * npairs + p
    return score, slot


def soft_fold(coef, dither, ty, tx, scale, rel, clip, tsz):
    """Reference for the soft fold (``provmark._detect.fold_observations``):
    ``(score, weight)``, each (T, T, P) float64: the observations of :func:`soft_observe` summed per tile slot, and their count."""
    npairs = np.asarray(coef).shape[2]
    score, slot = soft_observe(coef, dither, ty, tx, tsz, scale, rel, clip)
    n = tsz * tsz * npairs
    return (np.bincount(slot.ravel(), score.ravel(), n).reshape(tsz, tsz, npairs),
            np.bincount(slot.ravel(), minlength=n).astype(np.float64).reshape(tsz, tsz, npairs))


# ------------------------------------------------------------ convolutional code


#: The inner code of provmark._convolutional, restated here (K=9, rate 1/4).
CONV_GENERATORS = (0o463, 0o535, 0o733, 0o745)
CONV_CONSTRAINT = 9


def conv_encode_full(bits, generators=CONV_GENERATORS, constraint=CONV_CONSTRAINT):
    """Rate-1/R convolutional encoder written from its definition: output ``j`` at
    time ``t`` is the parity of ``generator_j AND (b_t, b_{t-1}, ..., b_{t-K+1})`` with
    ``b_t`` in the generator's most significant bit; zero tail appended."""
    tail = constraint - 1
    seq = list(bits) + [0] * tail
    out = []
    for t in range(len(seq)):
        reg = 0
        for i in range(constraint):  # i = 0 is the newest bit
            bit = seq[t - i] if t - i >= 0 else 0
            reg |= bit << (constraint - 1 - i)
        out.extend(bin(reg & g).count("1") & 1 for g in generators)
    return np.array(out, dtype=np.int64)


def ml_decode_bruteforce(llr, n_info, generators=CONV_GENERATORS, constraint=CONV_CONSTRAINT):
    """Maximum-likelihood decoding by trying every input word (exponential: short
    words only). The metric is ``sum_j (1 - 2 c_j) * llr_j`` (positive llr = bit 0)."""
    best, best_bits = -math.inf, None
    for word in range(2**n_info):
        bits = [(word >> (n_info - 1 - i)) & 1 for i in range(n_info)]
        coded = conv_encode_full(bits, generators, constraint)
        metric = float(np.sum((1 - 2 * coded) * llr))
        if metric > best:
            best, best_bits = metric, bits
    return np.array(best_bits, dtype=np.int64), best


def list_ml_bruteforce(llr, n_info, n_list, generators=CONV_GENERATORS,
                       constraint=CONV_CONSTRAINT):
    """The ``n_list`` best input words by exhaustive search, best first, with their
    metrics (reference for the list Viterbi kernel; short words only)."""
    scored = []
    for word in range(2**n_info):
        bits = [(word >> (n_info - 1 - i)) & 1 for i in range(n_info)]
        coded = conv_encode_full(bits, generators, constraint)
        scored.append((float(np.sum((1 - 2 * coded) * llr)), bits))
    scored.sort(key=lambda x: -x[0])
    return [np.array(b, dtype=np.int64) for _, b in scored[:n_list]], [m for m, _ in scored[:n_list]]


def box_moments(x, half, norm):
    """Reference for ``provmark.kernels.box_moments``: window mean and variance by
    ``scipy.ndimage.uniform_filter`` in float64, as scikit-image's SSIM computes them
    (the interior ``[half:-half, half:-half]`` is what the kernel writes)."""
    from scipy.ndimage import uniform_filter

    x = np.asarray(x, np.float64)
    size = (2 * half + 1, 2 * half + 1, 1)
    mean = uniform_filter(x, size=size)
    var = norm * (uniform_filter(x * x, size=size) - mean * mean)
    return mean, var


def ssim_mean_against(x, y, half, c1, c2, norm):
    """Reference for ``provmark.kernels.ssim_mean_against``: the SSIM map from
    uniform filters in float64, averaged over the interior of every channel."""
    from scipy.ndimage import uniform_filter

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    size = (2 * half + 1, 2 * half + 1, 1)
    ux, uy = uniform_filter(x, size=size), uniform_filter(y, size=size)
    vx = norm * (uniform_filter(x * x, size=size) - ux * ux)
    vy = norm * (uniform_filter(y * y, size=size) - uy * uy)
    cov = norm * (uniform_filter(x * y, size=size) - ux * uy)
    s = ((2 * ux * uy + c1) * (2 * cov + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s[half:-half, half:-half].mean())

def change_bound(rgb, window, flat, slope, cap):
    """Reference for ``provmark.kernels.change_bound``, written from its definition:
    integer grey levels, 2x2 means rounded half up, a window x window box (border
    mirrored without repeating the edge sample, ``np.pad(mode="reflect")``) of the
    means and their squares, variance and bound in float32."""
    from numpy.lib.stride_tricks import sliding_window_view

    h8, w8 = rgb.shape[0] // 2, rgb.shape[1] // 2
    x = rgb[:2 * h8, :2 * w8].astype(np.int64)
    grey = (19596 * x[..., 0] + 38470 * x[..., 1] + 7470 * x[..., 2] + 32768) >> 16
    cells = ((grey[0::2, 0::2] + grey[0::2, 1::2] + grey[1::2, 0::2] + grey[1::2, 1::2] + 2)
             >> 2).astype(np.float64)
    lead = window // 2
    pad = ((lead, window - lead - 1),) * 2
    windows = (window, window)
    n = window * window
    mean = (sliding_window_view(np.pad(cells, pad, mode="reflect"), windows).sum((-1, -2))
            / n).astype(np.float32)
    square = (sliding_window_view(np.pad(cells * cells, pad, mode="reflect"), windows)
              .sum((-1, -2)) / n).astype(np.float32)
    var = np.maximum(square - mean * mean, np.float32(0.0))
    bound = np.float32(flat) + np.float32(slope) * np.sqrt(var)
    return np.minimum(np.maximum(bound, np.float32(flat)), np.float32(cap))


def carrier_maps(y, pairs):
    """Reference for ``provmark.kernels.carrier_maps``, from its definition: every
    block position's coefficient ``(u, v)`` as the 16x16 weighted sum
    ``sum_rs c[u, r // 2] c[v, s // 2] / 2 * y[y0 + r, x0 + s]`` (float64)."""
    from numpy.lib.stride_tricks import sliding_window_view

    c = scipy.fft.dct(np.eye(8), axis=0, norm="ortho")  # c[u, i]: row u the u-th basis
    windows = sliding_window_view(np.asarray(y, np.float64), (16, 16))
    out = np.empty((len(pairs), 2) + windows.shape[:2])
    for p, (u1, v1, u2, v2) in enumerate(pairs):
        for q, (u, v) in enumerate(((u1, v1), (u2, v2))):
            weight = np.outer(np.repeat(c[u], 2), np.repeat(c[v], 2)) / 2
            out[p, q] = np.einsum("ijrs,rs->ij", windows, weight)
    return out


def add_enlarged_change(base, change):
    """Reference for ``provmark.kernels.add_enlarged_change``: OpenCV's bilinear
    enlargement by 2 of the change (float64 through float32: the values are
    multiples of 1/16), added, rounded half up and clipped on the covered part."""
    import cv2

    h, w = change.shape[:2]
    up = cv2.resize(change.astype(np.float32), (2 * w, 2 * h),
                    interpolation=cv2.INTER_LINEAR).astype(np.float64)
    up = up.reshape(2 * h, 2 * w, change.shape[2])  # OpenCV drops a single channel axis
    out = base.copy()
    out[:2 * h, :2 * w] = np.clip(np.floor(base[:2 * h, :2 * w] + up + 0.5), 0, 255)
    return out


def folded_phase_scores(folded, template_pdd, n_pilot, tile_blocks):
    """Pilot z-score for every tile phase from folded features (..., P, D, D), the
    plain NumPy form of ``provmark._sync.folded_phase_scores`` (FFT correlation with
    the pilot template's spectrum ``template_pdd`` (P, D, D))."""
    npairs = folded.shape[-3]
    spec = np.fft.fft2(folded, axes=(-2, -1))
    cross = (np.conj(spec) * template_pdd).sum(axis=-3)
    corr = np.fft.ifft2(cross, axes=(-2, -1)).real
    energy = np.square(np.abs(folded)).sum(axis=(-3, -2, -1))
    share = 0.5 * n_pilot / (tile_blocks * tile_blocks * npairs)
    norm = np.sqrt(np.maximum(energy * share, 1e-12))
    return corr / np.asarray(norm)[..., None, None]


def separable_origin_scores(weighted, inverse_noise, by, bx, ey, ex, lo, hi):
    """Known-origin coherent scores (NY, NX), the plain NumPy form of
    ``provmark.kernels.separable_origin_scores``: every hypothesis ``(i, j)`` reads its
    bins ``weighted[by[i], bx[j]]`` (the spectrum over its noise power), turns them by
    ``ey[i] * ex[j]`` and is normalised to N(0, 1) by its bins' ``inverse_noise``;
    ``-inf`` outside ``lo[i] <= j < hi[i]``."""
    v = weighted[by[:, None, :], bx[None, :, :]].astype(np.complex128)  # (NY, NX, K)
    inv = inverse_noise[by[:, None, :], bx[None, :, :]].astype(np.float64)
    turned = (v * ey[:, None, :] * ex[None, :, :]).real
    z = turned.sum(axis=2) / np.sqrt(0.5 * inv.sum(axis=2))
    j = np.arange(bx.shape[0])
    inside = (j[None, :] >= lo[:, None]) & (j[None, :] < hi[:, None])
    return np.where(inside, z, -np.inf)
