"""Equivalence and round-trip tests for the Haar DWT, block DCT and luma kernels.

Each kernel is compared with its reference in ``tests/naive.py`` (PyWavelets, scipy.fft,
NumPy) on odd sizes. The kernels work in float32 and the references in float64, so
tolerances are a few float32 ulps of the data's magnitude.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft

import naive
from provmark.kernels import (
    DCT8,
    block_dct8,
    block_idct8,
    dct_matrix,
    haar_dwt2,
    haar_idwt2,
    rgb_to_luma,
)

EPS32 = float(np.finfo(np.float32).eps)

#: Even shapes including odd multiples of two (so M or N is odd) and extreme aspect.
HAAR_SHAPES = [
    (2, 2),
    (6, 10),
    (34, 18),
    (130, 66),
    (2, 258),
    (258, 2),
]
DCT_SHAPES = [
    (8, 8),
    (24, 40),
    (64, 8),
    (8, 64),
    (200, 136),
]


def _plane(shape, rng, scale=100.0):
    return np.ascontiguousarray(rng.normal(0.0, scale, size=shape).astype(np.float32))


def _dwt(x):
    m, n = x.shape[0] // 2, x.shape[1] // 2
    bands = [np.full((m, n), np.nan, np.float32) for _ in range(4)]
    haar_dwt2(x, *bands)
    return bands


def _idwt(ca, ch, cv, cd):
    x = np.full((2 * ca.shape[0], 2 * ca.shape[1]), np.nan, np.float32)
    haar_idwt2(ca, ch, cv, cd, x)
    return x


# ------------------------------------------------------------------------ Haar


@pytest.mark.parametrize("shape", HAAR_SHAPES)
def test_haar_dwt2_matches_pywt(shape, rng):
    x = _plane(shape, rng)
    ca, ch, cv, cd = _dwt(x)
    ref_a, (ref_h, ref_v, ref_d) = naive.haar_dwt2(x)
    atol = 4 * EPS32 * float(np.abs(x).max())
    for name, got, ref in [("cA", ca, ref_a), ("cH", ch, ref_h), ("cV", cv, ref_v),
                           ("cD", cd, ref_d)]:
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, ref, rtol=0, atol=atol, err_msg=name)


@pytest.mark.parametrize("shape", HAAR_SHAPES)
def test_haar_idwt2_matches_pywt(shape, rng):
    m, n = shape[0] // 2, shape[1] // 2
    bands = [_plane((m, n), rng) for _ in range(4)]
    x = _idwt(*bands)
    ref = naive.haar_idwt2(*bands)
    atol = 4 * EPS32 * max(float(np.abs(b).max()) for b in bands)
    np.testing.assert_allclose(x, ref, rtol=0, atol=atol)


@pytest.mark.parametrize("shape", HAAR_SHAPES)
def test_haar_round_trip(shape, rng):
    x = _plane(shape, rng)
    y = _idwt(*_dwt(x))
    np.testing.assert_allclose(y, x, rtol=1e-6, atol=1e-6 * float(np.abs(x).max()))


def test_haar_subband_orientation_and_swap_is_caught(rng):
    # Rows alternate 1, 0: the signal varies down the columns only, which PyWavelets
    # puts in cH (low-pass along each row, high-pass down the columns).
    stripes = np.zeros((6, 10), np.float32)
    stripes[0::2] = 1.0
    ca, ch, cv, cd = _dwt(stripes)
    ref_a, (ref_h, ref_v, ref_d) = naive.haar_dwt2(stripes)
    assert np.allclose(ref_h, 1.0) and np.allclose(ref_v, 0.0)  # the convention itself
    np.testing.assert_allclose(ch, ref_h, atol=1e-6)
    np.testing.assert_allclose(cv, ref_v, atol=1e-6)
    np.testing.assert_allclose(cd, ref_d, atol=1e-6)

    # On generic data cH and cV differ, so comparing with pywt band by band would
    # catch a forward transform that swapped them ...
    x = _plane((6, 10), rng)
    ca, ch, cv, cd = _dwt(x)
    _, (ref_h, ref_v, _) = naive.haar_dwt2(x)
    assert not np.allclose(ch, ref_v, atol=1.0)
    # ... and an inverse that swapped them (invisible-watermark's bug) fails the round trip.
    swapped = _idwt(ca, cv, ch, cd)
    assert np.abs(swapped - x).max() > 0.1 * float(np.abs(x).std())


# ------------------------------------------------------------------------- DCT


@pytest.mark.parametrize("n", [4, 8, 16])
def test_dct_matrix_is_scipy_dct(n, rng):
    c = dct_matrix(n)
    x = rng.normal(size=(n, 5))
    np.testing.assert_allclose(c @ x, scipy.fft.dct(x, axis=0, norm="ortho"),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c @ c.T, np.eye(n), atol=1e-13)


def test_dct8_constant():
    assert DCT8.dtype == np.float32 and DCT8.flags.c_contiguous
    np.testing.assert_array_equal(DCT8, dct_matrix(8).astype(np.float32))


def _block_dct(x):
    out = np.full_like(x, np.nan)
    block_dct8(x, out, DCT8)
    return out


def _block_idct(x):
    out = np.full_like(x, np.nan)
    block_idct8(x, out, DCT8)
    return out


def _dct_atol(x):
    # Two 8-term float32 dot products per output, plus the float32 DCT8 matrix.
    return 8 * EPS32 * float(np.abs(x).max())


@pytest.mark.parametrize("shape", DCT_SHAPES)
def test_block_dct8_matches_scipy(shape, rng):
    x = _plane(shape, rng)
    got = _block_dct(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, naive.block_dct(x), rtol=0, atol=_dct_atol(x))


@pytest.mark.parametrize("shape", DCT_SHAPES)
def test_block_idct8_matches_scipy(shape, rng):
    x = _plane(shape, rng)
    got = _block_idct(x)
    np.testing.assert_allclose(got, naive.block_idct(x), rtol=0, atol=_dct_atol(x))


@pytest.mark.parametrize("shape", DCT_SHAPES)
def test_block_dct8_round_trip(shape, rng):
    x = _plane(shape, rng)
    np.testing.assert_allclose(_block_idct(_block_dct(x)), x, rtol=0, atol=_dct_atol(x))


def test_block_dct8_blocks_are_independent():
    # A single impulse changes exactly its own 8x8 block of coefficients.
    x = np.zeros((24, 40), np.float32)
    x[13, 21] = 1.0
    got = _block_dct(x)
    nonzero = np.argwhere(np.abs(got) > 1e-6)
    assert set(map(tuple, nonzero // 8)) == {(1, 2)}


# ------------------------------------------------------------------------ luma


@pytest.mark.parametrize("shape", [(7, 13),
                                   (1, 1),
                                   (33, 517)])
def test_rgb_to_luma_matches_bt601(shape, rng):
    rgb = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 255, 255)
    out = np.full(shape, np.nan, np.float32)
    rgb_to_luma(rgb, out)
    ref = naive.luma(rgb)
    np.testing.assert_allclose(out, ref, rtol=2 * EPS32, atol=1e-5)
    # No rounding to integers: detection keeps every fraction.
    assert np.any(out != np.rint(out)) or shape == (1, 1)
