"""fold_phase_features (Numba) against its NumPy twin: provmark._sync.block_features
followed by the fold of tile_phase_scores."""

from __future__ import annotations

import numpy as np
import pytest

from provmark import _sync
from provmark._layout import DITHER_BLOCKS
from provmark.kernels import fold_phase_features


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("shape, phases", [((300, 333), [(0, 0), (7, 3)]),
                                           ((530, 530), [(15, 1), (2, 14), (8, 8)])])
def test_fold_phase_features_matches_reference(shape, phases, dtype):
    rng = np.random.default_rng(shape[0])
    maps = rng.normal(0, 20, (2, 2, shape[0] - 15, shape[1] - 15)).astype(np.float32)
    maps[:, :, 3, 5] = 0.0  # a zero pair contributes nothing (no division by zero)
    nby, nbx = maps.shape[2] // 16, maps.shape[3] // 16
    oys = np.array([p[0] for p in phases], np.int64)
    oxs = np.array([p[1] for p in phases], np.int64)
    out = np.empty((len(phases), 2, DITHER_BLOCKS, DITHER_BLOCKS), dtype)
    fold_phase_features(maps, oys, oxs, nby, nbx, 16, 0.25, 0.3, out)
    tol = 1e-6 if dtype == np.complex128 else 1e-5  # features are at most 1 / 0.3
    for i, (oy, ox) in enumerate(phases):
        coef = np.moveaxis(maps[:, :, oy::16, ox::16][:, :, :nby, :nbx], (0, 1), (2, 3))
        coef = coef.astype(np.float64)  # (nby, nbx, P, 2)
        c = coef[..., 0] + 1j * coef[..., 1]
        r = np.abs(c)
        s = max(np.median(r) * 0.25, 1e-3)
        feat = np.where(r > 0, r / (s + 0.3 * r) * (c / np.where(r > 0, r, 1)) ** 4, 0)
        d = DITHER_BLOCKS
        py, px = -(-nby // d) * d, -(-nbx // d) * d
        padded = np.zeros((py, px, 2), np.complex128)
        padded[:nby, :nbx] = feat
        ref = padded.reshape(py // d, d, px // d, d, 2).sum(axis=(0, 2))
        np.testing.assert_allclose(out[i], np.moveaxis(ref, -1, 0), rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", [(20, 23),
                                   (64, 97), (131, 70)])
def test_carrier_maps_match_reference(shape):
    import naive
    from provmark._layout import PAIRS
    from provmark.kernels import DCT8_64, carrier_maps

    y = np.random.default_rng(shape[1]).uniform(0, 255, shape).astype(np.float32)
    out = np.full((PAIRS.shape[0], 2, shape[0] - 15, shape[1] - 15), np.nan, np.float32)
    carrier_maps(y, PAIRS, DCT8_64, out)
    ref = naive.carrier_maps(y, PAIRS)
    # float32 sums of 256 terms of up to 255 * 0.125 each: within ~1e-3 absolute
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=2e-3)
    assert np.abs(ref).max() > 100  # the test compares real coefficients, not zeros


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("n", [1, 2, 5])
def test_pilot_cross_spectra_scores_match_reference(n, dtype):
    # folded_phase_scores runs pilot_cross_spectra (two phases packed in one inverse
    # transform, the odd last one alone); its plain twin is tests/naive.py
    import naive
    from provmark._layout import N_PILOT, TILE_BLOCKS

    key = b"kernel-agreement"
    rng = np.random.default_rng(n)
    d = DITHER_BLOCKS
    folded = rng.normal(0, 3, (n, 2, d, d)) + 1j * rng.normal(0, 3, (n, 2, d, d))
    # phase 0 carries the pilot at tile phase (5, 9): the scores must find it there
    pilot = np.fft.ifft2(_sync._pilot_template_pdd(key), axes=(-2, -1))
    folded[0] += 40 * np.roll(pilot, (-5, -9), axis=(-2, -1))
    folded = folded.astype(dtype)
    z = _sync.folded_phase_scores(folded, key)
    ref = naive.folded_phase_scores(folded.astype(np.complex128),
                                    _sync._pilot_template_pdd(key), N_PILOT, TILE_BLOCKS)
    # single precision transforms: z-scores (up to ~30 here) within 1e-4
    tol = 1e-9 if dtype == np.complex128 else 1e-4
    np.testing.assert_allclose(z, ref, rtol=tol, atol=tol)
    assert np.unravel_index(np.argmax(z[0]), z[0].shape) == (5, 9)
    # the lead axes are kept: one phase without a lead axis gives one (D, D) plane
    np.testing.assert_allclose(_sync.folded_phase_scores(folded[-1], key), ref[-1],
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_pilot_cross_spectra_matches_plain_sums(dtype):
    from provmark.kernels import pilot_cross_spectra

    rng = np.random.default_rng(7)
    d, n = 8, 3
    spec = (rng.normal(size=(n, 2, d, d)) + 1j * rng.normal(size=(n, 2, d, d))).astype(dtype)
    template = rng.normal(size=(2, d, d)) + 1j * rng.normal(size=(2, d, d))
    out = np.full((2, d, d), np.nan, dtype)
    energy = np.full(n, np.nan)
    pilot_cross_spectra(spec, template, out, energy)
    spec = spec.astype(np.complex128)
    cross = (np.conj(spec) * template).sum(axis=1)
    neg = np.roll(cross[:, ::-1, ::-1], 1, axis=(1, 2))  # X[-k]
    herm = 0.5 * (cross + np.conj(neg))
    tol = 1e-12 if dtype == np.complex128 else 1e-5  # out rounded to single precision
    np.testing.assert_allclose(out[0], herm[0] + 1j * herm[1], rtol=tol, atol=tol)
    np.testing.assert_allclose(out[1], herm[2], rtol=tol, atol=tol)
    np.testing.assert_allclose(energy, np.square(np.abs(spec)).sum(axis=(1, 2, 3)) / d ** 2,
                               rtol=tol)


def test_histogram_median_equals_numpy_median():
    from provmark.kernels import histogram_median

    rng = np.random.default_rng(3)
    cases = [np.array([2.5]), np.array([1.0, 3.0]), np.zeros(6), np.full(7, 4.25),
             np.array([0.0, 1e-300, 1e300]), np.linspace(0, 1, 2048)[::-1].copy()]
    for n in (2, 3, 4, 5, 8, 101, 2047, 2048, 5000):
        cases += [rng.random(n), np.round(rng.random(n) * 3),  # many ties
                  rng.exponential(size=n) ** 6,  # most values in the first bin
                  np.where(rng.random(n) < 0.5, 0.0, rng.random(n) + 1e6)]  # two clusters
    for values in cases:
        n = values.size
        got = histogram_median(values, np.empty(n, np.int64), np.empty(n))
        assert got == np.median(values), (n, got, np.median(values))
    assert np.isnan(histogram_median(np.empty(0), np.empty(0, np.int64), np.empty(0)))


def test_float32_median_of_the_template_search_equals_numpy():
    from provmark._template import _median32

    rng = np.random.default_rng(5)
    for n in (1, 2, 9, 10, 171_428):
        v = (rng.gamma(3, 0.4, n) + 0.5).astype(np.float32)
        assert _median32(v) == float(np.median(v))
        assert _median32(np.abs(v - _median32(v))) == float(np.median(np.abs(v - np.median(v))))
