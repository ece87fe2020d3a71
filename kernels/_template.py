"""Template-matching kernel: score every (rotation, vertical scale, horizontal scale)
hypothesis against a whitened magnitude spectrum.

For a hypothesis ``A = R(theta) diag(sy, sx)``, a template frequency ``f`` appears at
``g = R(theta) (fy / sy, fx / sx)`` (cycles per pixel) in the copy's spectrum; the
score is the mean spectrum value at the template's predicted peaks. The references
are ``provmark._template.score_grid_reference`` and, for
:func:`template_score_product`, ``_gather(spec, _predict(...)).mean()`` (NumPy),
checked in the tests.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit_fast, njit_inline, prange


@njit_inline
def _value_at(spec, gy, gx):
    """The half-spectrum ``spec`` at frequency ``(gy, gx)`` (cycles per pixel): the
    nearest bin, a negative horizontal frequency read at its mirror."""
    h = spec.shape[0]
    wr = spec.shape[1]
    if gx < 0.0:
        gy = -gy
        gx = -gx
    iy = int(round(gy * h))
    if iy < 0 or iy >= h:  # rare: a modulo on every peak cost a quarter of the search
        iy = iy % h
    ix = int(round(gx * ((wr - 1) * 2)))
    if ix > wr - 1:
        ix = wr - 1
    return spec[iy, ix]


@njit_inline
def _mean_at_peaks(spec, freqs, inv_y, inv_x, c, s):
    """Mean of the half-spectrum ``spec`` at the template peaks predicted for
    ``A = R(theta) diag(1 / inv_y, 1 / inv_x)`` (``c, s`` = cos, sin theta)."""
    nk = freqs.shape[0]
    acc = 0.0
    for k in range(nk):
        uy = freqs[k, 0] * inv_y
        ux = freqs[k, 1] * inv_x
        acc += _value_at(spec, c * uy - s * ux, s * uy + c * ux)
    return acc / nk


@njit_fast(parallel=True)
def template_score_grid(spec, freqs, inv_s, band, cos_t, sin_t, out):
    """``out[r, i, b]`` = mean over the template frequencies of ``spec`` at the peak
    predicted for rotation ``r``, vertical scale ``1/inv_s[i]`` and horizontal scale
    ``1/inv_s[i + b - band]`` (0 where that index falls outside ``inv_s``): the
    scale pairs within ``band`` steps of each other, i.e. a bounded aspect change.

    ``spec`` is an rfft2 half-spectrum (H, W//2 + 1) float32; ``freqs`` (K, 2)
    float64 (fy, fx); negative horizontal frequencies are read at their mirror.
    The vertical scale's share of each peak is computed once per ``(r, i)``.
    """
    nr = cos_t.shape[0]
    ni = inv_s.shape[0]
    nb = 2 * band + 1
    nk = freqs.shape[0]
    for idx in prange(nr * ni):
        r = idx // ni
        i = idx % ni
        c = cos_t[r]
        s = sin_t[r]
        cy = np.empty(nk)
        sy = np.empty(nk)
        for k in range(nk):
            uy = freqs[k, 0] * inv_s[i]
            cy[k] = c * uy
            sy[k] = s * uy
        for b in range(nb):
            j = i + b - band
            if j < 0 or j >= ni:
                out[r, i, b] = 0.0
                continue
            acc = 0.0
            for k in range(nk):
                ux = freqs[k, 1] * inv_s[j]
                acc += _value_at(spec, cy[k] - s * ux, sy[k] + c * ux)
            out[r, i, b] = acc / nk


@njit_fast(parallel=True)
def template_score_product(spec, freqs, inv_sy, inv_sx, cos_t, sin_t, out):
    """``out[i, j, r]`` = the score of :func:`template_score_grid` for vertical scale
    ``1/inv_sy[i]``, horizontal scale ``1/inv_sx[j]`` and rotation ``r``: every
    combination (the fine search around one coarse estimate)."""
    ny = inv_sy.shape[0]
    nx = inv_sx.shape[0]
    nr = cos_t.shape[0]
    for idx in prange(ny * nx):
        i = idx // nx
        j = idx % nx
        for r in range(nr):
            out[i, j, r] = _mean_at_peaks(spec, freqs, inv_sy[i], inv_sx[j], cos_t[r], sin_t[r])


@njit_fast
def coherent_best_scores(zk, steer, out):
    """``out[e, g]`` = the largest over ``u`` of ``Re(sum_k zk[e, g, k] * steer[e, k, u])``:
    each hypothesis ``g`` of estimate ``e`` (its template bins' weighted complex
    values) scored at the candidate tile origins ``u`` of that estimate (``steer``:
    the phase factors of each template frequency at each origin). The reference is
    ``np.einsum("egk,eku->egu", zk, steer).real.max(axis=2)``, checked in the tests.
    Serial: a few million multiply-adds (a BLAS product would start threads that
    spin on the other core).
    """
    ne, ng, nk = zk.shape
    nu = steer.shape[2]
    for e in range(ne):
        for g in range(ng):
            best = -1e300
            for u in range(nu):
                acc = 0.0
                for k in range(nk):
                    z = zk[e, g, k]
                    s = steer[e, k, u]
                    acc += z.real * s.real - z.imag * s.imag
                if acc > best:
                    best = acc
            out[e, g] = best


@njit_fast
def separable_origin_scores(weighted, inverse_noise, by, bx, ey, ex, lo, hi, out):
    """``out[i, j]`` = the coherent template score of hypothesis ``(i, j)`` whose bins
    and phase factors separate by axis: ``Re(sum_k weighted[b] * ey[i, k] * ex[j, k])
    / sqrt(0.5 * sum_k inverse_noise[b])``, ``b = (by[i, k], bx[j, k])``, for
    ``lo[i] <= j < hi[i]``; ``-inf`` elsewhere (``weighted``: the spectrum over its
    noise power, which saves a division per bin: half the time). (An axis-aligned
    resize read at a known tile origin: which bin a template peak falls in, and the
    phase it must have there, each depend on one axis's scale only.) The reference is
    ``tests/naive.py::separable_origin_scores``, checked in the tests. Serial: a few
    million multiply-adds."""
    ny, nk = by.shape
    nx = bx.shape[0]
    for i in range(ny):
        for j in range(nx):
            if j < lo[i] or j >= hi[i]:
                out[i, j] = -np.inf
                continue
            acc = 0.0
            weight = 0.0
            for k in range(nk):
                v = weighted[by[i, k], bx[j, k]]
                p = ey[i, k] * ex[j, k]
                acc += v.real * p.real - v.imag * p.imag
                # (double precision with or without the JIT)
                weight += np.float64(inverse_noise[by[i, k], bx[j, k]])
            out[i, j] = acc / np.sqrt(0.5 * weight)
