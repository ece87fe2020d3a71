"""Synchronisation kernels: the carrier coefficients of a block at every pixel
position (:func:`carrier_maps`), the fold of the pilot features of many pixel
phases at once (:func:`fold_phase_features`), and the pilot's cross-spectra of
those folds (:func:`pilot_cross_spectra`).

For each pixel phase, the coefficient pairs of the grid at that phase are read from
precomputed coefficient maps, turned into the complex feature ``w(r) exp(4i theta)``
(``w(r) = r / (s + rel * r)``, ``s`` set by the phase's median radius) and summed modulo the dither
period. The reference is ``provmark._sync.block_features`` followed by the fold of
``provmark._sync.tile_phase_scores`` (NumPy), checked in the tests; that of
:func:`carrier_maps` is ``tests/naive.py::carrier_maps`` and, at every phase,
:func:`provmark.kernels.luma_pair_coeffs`; that of :func:`pilot_cross_spectra` is
the NumPy body of ``tests/naive.py::folded_phase_scores``, and that of
:func:`histogram_median` ``np.median`` (equal, not just close).
"""

from __future__ import annotations

import numpy as np

from ._jit import njit_exact, njit_fast, prange


#: Bins of :func:`histogram_median`'s first pass: about 2 values a bin for the 2048
#: radii of a 512x512 copy, so the exact selection sorts only a handful.
MEDIAN_BINS = 1024


@njit_exact
def histogram_median(values, bins, work):
    """The median of ``values`` (finite), exactly as ``np.median``: the values
    are counted in :data:`MEDIAN_BINS` equal bins between their extremes, the bins
    holding the two middle ranks are found from the counts, and only their members
    are sorted. Quickselect's data-dependent branches cost about 14 ns a value on
    image radii (3.6 ms of the 256 phase folds of a 512x512 copy); this takes about
    half. ``bins`` (n,) int64 and ``work`` (n,) float64 are scratch space."""
    n = values.shape[0]
    if n == 0:
        return np.nan  # as np.median of nothing
    lo = values[0]
    hi = values[0]
    for i in range(1, n):
        v = values[i]
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    if not hi > lo:
        return lo
    nb = MEDIAN_BINS
    counts = np.zeros(nb + 1, np.int64)  # the largest value falls in bin nb
    scale = nb / (hi - lo)
    for i in range(n):
        b = int((values[i] - lo) * scale)
        bins[i] = b
        counts[b] += 1
    k1 = (n - 1) // 2  # the two middle ranks (equal for odd n)
    k2 = n // 2
    below = 0  # values in the bins before b1
    b1 = 0
    while below + counts[b1] <= k1:
        below += counts[b1]
        b1 += 1
    upto = below
    b2 = b1
    while upto + counts[b2] <= k2:
        upto += counts[b2]
        b2 += 1
    m = 0
    for i in range(n):
        if b1 <= bins[i] <= b2:
            work[m] = values[i]
            m += 1
    chosen = np.sort(work[:m])
    return 0.5 * (chosen[k1 - below] + chosen[k2 - below])


@njit_fast(parallel=True)
def fold_phase_features(maps, oys, oxs, nby, nbx, block, share, rel, out):
    """``out[i, p, qy, qx]`` = sum of the features of pair ``p`` over the blocks
    ``(by, bx)`` with ``by % D == qy`` and ``bx % D == qx`` of the grid at pixel
    origin ``(oys[i], oxs[i])``.

    ``maps`` (P, 2, Hm, Wm) float32: the pair coefficients of the block whose
    top-left pixel is at each position; ``nby x nbx`` blocks of ``block`` pixels
    are read at every phase. A feature is ``w(r) exp(4i theta)`` with
    ``w(r) = r / (s + rel * r)`` and ``s = max(share * median radius, 1e-3)``, the
    median over that phase's pairs. ``out`` (n, P, D, D) complex128 or complex64, D =
    ``out.shape[2]``, zeroed here.
    """
    n = oys.shape[0]
    npairs = maps.shape[0]
    d = out.shape[2]
    for i in prange(n):
        radii = np.empty(nby * nbx * npairs, np.float64)
        m = 0
        for by in range(nby):
            yy = oys[i] + block * by
            for bx in range(nbx):
                xx = oxs[i] + block * bx
                for p in range(npairs):
                    c1 = maps[p, 0, yy, xx]
                    c2 = maps[p, 1, yy, xx]
                    radii[m] = np.sqrt(c1 * c1 + c2 * c2)
                    m += 1
        s = max(histogram_median(radii, np.empty(m, np.int64), np.empty(m, np.float64))
                * share, 1e-3)
        for p in range(npairs):
            for qy in range(d):
                for qx in range(d):
                    out[i, p, qy, qx] = 0.0
        m = 0
        for by in range(nby):
            yy = oys[i] + block * by
            qy = by % d
            for bx in range(nbx):
                xx = oxs[i] + block * bx
                qx = bx % d
                for p in range(npairs):
                    r = radii[m]
                    m += 1
                    if r <= 0.0:
                        continue
                    c1 = maps[p, 0, yy, xx]
                    c2 = maps[p, 1, yy, xx]
                    w = r / (s + rel * r)
                    u = complex(c1 / r, c2 / r)
                    u2 = u * u
                    out[i, p, qy, qx] += w * (u2 * u2)


@njit_fast(parallel=True)
def carrier_maps(y, pairs, c, out):
    """The coefficient pairs of the 16x16 block whose top-left pixel is at every
    position of the luma plane ``y`` ((H, W) float32): ``out`` (P, 2, H - 15, W - 15)
    float32.

    Coefficient ``(u, v)`` of a block (Haar LL, then the 8x8 DCT ``c``) weighs pixel
    ``(r, s)`` by ``c[u, r // 2] c[v, s // 2] / 2``: a separable correlation whose
    16 taps come in equal pairs. So the sums of adjacent rows are formed once, each
    needed DCT row ``u`` is an 8-tap pass over them (every second row), the sums of
    adjacent columns of that, and each coefficient an 8-tap pass along the row:
    about 60 multiply-adds a pixel for all four carrier coefficients, in float32
    (agrees with the block kernel to float32 rounding).
    """
    h, w = y.shape
    npairs = pairs.shape[0]
    hm = h - 15
    wm = w - 15
    cw = np.empty((8, 8), np.float32)
    for u in range(8):
        for k in range(8):
            cw[u, k] = c[u, k]
    needed = np.zeros(8, np.bool_)
    for p in range(npairs):
        needed[pairs[p, 0]] = True
        needed[pairs[p, 2]] = True
    rowsum = np.empty((h - 1, w), np.float32)
    for r in prange(h - 1):
        top = y[r]
        bottom = y[r + 1]
        out_row = rowsum[r]
        for x in range(w):
            out_row[x] = top[x] + bottom[x]
    for y0 in prange(hm):
        colsum = np.empty((8, w - 1), np.float32)
        vertical = np.empty(w, np.float32)
        # The eight taps are written out so that the loop over x is the innermost
        # one and vectorises.
        r0 = rowsum[y0]
        r1 = rowsum[y0 + 2]
        r2 = rowsum[y0 + 4]
        r3 = rowsum[y0 + 6]
        r4 = rowsum[y0 + 8]
        r5 = rowsum[y0 + 10]
        r6 = rowsum[y0 + 12]
        r7 = rowsum[y0 + 14]
        for u in range(8):
            if not needed[u]:
                continue
            k0 = 0.5 * cw[u, 0]
            k1 = 0.5 * cw[u, 1]
            k2 = 0.5 * cw[u, 2]
            k3 = 0.5 * cw[u, 3]
            k4 = 0.5 * cw[u, 4]
            k5 = 0.5 * cw[u, 5]
            k6 = 0.5 * cw[u, 6]
            k7 = 0.5 * cw[u, 7]
            for x in range(w):
                vertical[x] = (k0 * r0[x] + k1 * r1[x] + k2 * r2[x] + k3 * r3[x]
                               + k4 * r4[x] + k5 * r5[x] + k6 * r6[x] + k7 * r7[x])
            pair_cols = colsum[u]
            for x in range(w - 1):
                pair_cols[x] = vertical[x] + vertical[x + 1]
        for p in range(npairs):
            for q in range(2):
                cols = colsum[pairs[p, 2 * q]]
                v = pairs[p, 2 * q + 1]
                k0 = cw[v, 0]
                k1 = cw[v, 1]
                k2 = cw[v, 2]
                k3 = cw[v, 3]
                k4 = cw[v, 4]
                k5 = cw[v, 5]
                k6 = cw[v, 6]
                k7 = cw[v, 7]
                # Views at the tap offsets: every index below is non-negative.
                c0 = cols[0:wm]
                c1 = cols[2:2 + wm]
                c2 = cols[4:4 + wm]
                c3 = cols[6:6 + wm]
                c4 = cols[8:8 + wm]
                c5 = cols[10:10 + wm]
                c6 = cols[12:12 + wm]
                c7 = cols[14:14 + wm]
                o = out[p, q, y0]
                for x in range(wm):
                    o[x] = (k0 * c0[x] + k1 * c1[x] + k2 * c2[x] + k3 * c3[x]
                            + k4 * c4[x] + k5 * c5[x] + k6 * c6[x] + k7 * c7[x])


@njit_fast(parallel=True)
def pilot_cross_spectra(spec, template, out, energy):
    """Cross-spectra of the pilot with the folded features of ``n`` pixel phases,
    two phases packed in each complex output, and the features' energies.

    ``spec`` (n, P, D, D) complex128 or complex64: the 2-D FFT of each phase's folded
    features (the sums are taken in double precision);
    ``template`` (P, D, D): the pilot template's FFT. The cross-spectrum of phase
    ``i`` is ``X_i = sum_p conj(spec[i, p]) * template[p]``; only the real part of
    its inverse transform is wanted, which is the inverse transform of its
    Hermitian part ``(X[k] + conj(X[-k])) / 2``. Two Hermitian spectra ``A, B``
    invert to real planes, so ``ifft2(A + iB)`` returns phase ``2j`` in its real
    part and ``2j + 1`` in its imaginary part: ``out`` (ceil(n / 2), D, D), of
    ``spec``'s type, holds ``A + iB`` (B = 0 for an odd last phase) and one inverse
    transform serves two phases. ``energy`` (n,) gets each phase's ``sum |folded|^2`` (Parseval:
    ``sum |spec|^2 / D^2``).
    """
    n = spec.shape[0]
    npairs = spec.shape[1]
    d = spec.shape[2]
    half = (n + 1) // 2
    for j in prange(half):
        cross = np.zeros((2, d, d), np.complex128)
        for k in range(2):
            i = 2 * j + k
            if i >= n:
                continue
            e = 0.0
            for p in range(npairs):
                for u in range(d):
                    for v in range(d):
                        f = spec[i, p, u, v]
                        cross[k, u, v] += f.conjugate() * template[p, u, v]
                        e += f.real * f.real + f.imag * f.imag
            energy[i] = e / (d * d)
        for u in range(d):
            nu = (d - u) % d
            for v in range(d):
                nv = (d - v) % d
                a = 0.5 * (cross[0, u, v] + cross[0, nu, nv].conjugate())
                b = 0.5 * (cross[1, u, v] + cross[1, nu, nv].conjugate())
                out[j, u, v] = a + 1j * b
