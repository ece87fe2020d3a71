"""Haar DWT and 8x8 block DCT kernels (forward and inverse) on float32 planes.

These are the building blocks of the signal chain (DESIGN.md section 3). They are
leaf kernels: contiguous float32 in, preallocated output, no validation. Their
references are ``pywt.dwt2(x, 'haar', mode='periodization')`` and
``scipy.fft.dctn(block, norm='ortho')``; ``tests/kernels`` checks that they agree.

Sub-band order and signs follow PyWavelets: ``cA, (cH, cV, cD)``, where ``cH``
(horizontal detail) is low-pass along each row and high-pass down the columns and
``cV`` the reverse, so these kernels and PyWavelets are interchangeable
(invisible-watermark swaps H and V on its inverse transform; the tests here would
catch that).
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import njit_fast, prange

_INV_SQRT2 = np.float32(1.0 / math.sqrt(2.0))


def dct_matrix(n: int = 8) -> np.ndarray:
    """Orthonormal DCT-II matrix ``C`` (float64) so that ``C @ x`` equals
    ``scipy.fft.dct(x, norm='ortho')``."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    c = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    c[0, :] = math.sqrt(1.0 / n)
    return c


DCT8 = dct_matrix(8).astype(np.float32)
#: The exact (float64) matrix, for the float64 modulation kernels: a float32 basis
#: made a change of exactly 0.5 grey round down.
DCT8_64 = dct_matrix(8)


@njit_fast(parallel=True)
def haar_dwt2(x, ca, ch, cv, cd):
    """One-level orthonormal 2-D Haar DWT of ``x`` (2M x 2N float32).

    Writes the four M x N sub-bands. Matches
    ``pywt.dwt2(x, 'haar', mode='periodization')`` sample for sample.
    """
    m, n = ca.shape
    for i in prange(m):
        for j in range(n):
            a = x[2 * i, 2 * j]
            b = x[2 * i, 2 * j + 1]
            c = x[2 * i + 1, 2 * j]
            d = x[2 * i + 1, 2 * j + 1]
            ca[i, j] = (a + b + c + d) * 0.5
            ch[i, j] = (a + b - c - d) * 0.5
            cv[i, j] = (a - b + c - d) * 0.5
            cd[i, j] = (a - b - c + d) * 0.5


@njit_fast(parallel=True)
def haar_idwt2(ca, ch, cv, cd, x):
    """Inverse of :func:`haar_dwt2`; writes the 2M x 2N plane ``x``."""
    m, n = ca.shape
    for i in prange(m):
        for j in range(n):
            a = ca[i, j]
            h = ch[i, j]
            v = cv[i, j]
            d = cd[i, j]
            x[2 * i, 2 * j] = (a + h + v + d) * 0.5
            x[2 * i, 2 * j + 1] = (a + h - v - d) * 0.5
            x[2 * i + 1, 2 * j] = (a - h + v - d) * 0.5
            x[2 * i + 1, 2 * j + 1] = (a - h - v + d) * 0.5


@njit_fast
def _sandwich8(src, dst, m, i0, j0, tmp):
    # dst_block = M @ src_block @ M.T for the 8x8 block at (i0, j0): the forward DCT
    # with M = C, the inverse with M = C.T.
    for u in range(8):
        for j in range(8):
            s = np.float32(0.0)
            for i in range(8):
                s += m[u, i] * src[i0 + i, j0 + j]
            tmp[u, j] = s
    for u in range(8):
        for v in range(8):
            s = np.float32(0.0)
            for j in range(8):
                s += tmp[u, j] * m[v, j]
            dst[i0 + u, j0 + v] = s


@njit_fast(parallel=True)
def _blocks8(x, out, m):
    nby = x.shape[0] // 8
    nbx = x.shape[1] // 8
    for by in prange(nby):
        tmp = np.empty((8, 8), np.float32)
        for bx in range(nbx):
            _sandwich8(x, out, m, by * 8, bx * 8, tmp)


@njit_fast
def block_dct8(x, out, c):
    """Orthonormal 2-D DCT-II of every 8x8 block of ``x`` (shape multiple of 8).

    ``c`` is :data:`DCT8`. Matches ``scipy.fft.dctn(block, norm='ortho')``.
    """
    _blocks8(x, out, c)


@njit_fast
def block_idct8(x, out, c):
    """Inverse of :func:`block_dct8` (``scipy.fft.idctn(block, norm='ortho')``)."""
    _blocks8(x, out, np.ascontiguousarray(c.T))


@njit_fast(parallel=True)
def rgb_to_luma(rgb, out):
    """BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` of an (H, W, 3) uint8 image
    into an (H, W) float32 plane (no rounding: detection keeps every fraction)."""
    h = rgb.shape[0]
    w = rgb.shape[1]
    for i in prange(h):
        for j in range(w):
            out[i, j] = (np.float32(0.299) * rgb[i, j, 0] + np.float32(0.587) * rgb[i, j, 1]
                         + np.float32(0.114) * rgb[i, j, 2])
