"""Synchronisation kernel: fold the pilot features of many pixel phases at once.

For each pixel phase, the coefficient pairs of the grid at that phase are read from
precomputed coefficient maps, turned into the complex feature ``w(r) exp(4i theta)``
(``w(r) = r / (s + rel * r)``, ``s`` set by the phase's median radius) and summed modulo the dither
period. The reference is ``provmark._sync.block_features`` followed by the fold of
``provmark._sync.tile_phase_scores`` (NumPy), checked in the tests.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit_fast, prange


@njit_fast(parallel=True)
def fold_phase_features(maps, oys, oxs, nby, nbx, block, share, rel, out):
    """``out[i, p, qy, qx]`` = sum of the features of pair ``p`` over the blocks
    ``(by, bx)`` with ``by % D == qy`` and ``bx % D == qx`` of the grid at pixel
    origin ``(oys[i], oxs[i])``.

    ``maps`` (P, 2, Hm, Wm) float32: the pair coefficients of the block whose
    top-left pixel is at each position; ``nby x nbx`` blocks of ``block`` pixels
    are read at every phase. A feature is ``w(r) exp(4i theta)`` with
    ``w(r) = r / (s + rel * r)`` and ``s = max(share * median radius, 1e-3)``, the
    median over that phase's pairs. ``out`` (n, P, D, D) complex128, D =
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
        s = max(np.median(radii) * share, 1e-3)
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
