"""template_score_grid and template_score_product (Numba) against their NumPy twins
in provmark._template; coherent_best_scores against an einsum."""

from __future__ import annotations

import numpy as np
import pytest

from provmark import _template
from provmark.kernels import template_score_grid


@pytest.mark.parametrize("shape, band", [((64, 96), 2), ((257, 130), 3), ((300, 301), 0)])
def test_template_score_grid_matches_reference(shape, band):
    rng = np.random.default_rng(sum(shape))
    h, w = shape
    spec = rng.random((h, w // 2 + 1)).astype(np.float32)
    freqs = _template.keyed_template(b"k").freqs
    scales = np.exp(np.sort(rng.uniform(np.log(0.3), np.log(6.0), 9)))
    rots = np.array([-6.0, -1.5, 0.0, 3.25])
    ref = _template.score_grid_reference(spec, freqs, scales, band, rots)
    out = np.empty(ref.shape, np.float32)
    th = np.deg2rad(rots)
    template_score_grid(spec, freqs, 1.0 / scales, band, np.cos(th), np.sin(th), out)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    # pairs beyond the ends of the scale list are scored 0
    if band:
        assert (out[:, 0, :band] == 0).all() and (out[:, -1, band + 1:] == 0).all()


@pytest.mark.parametrize("shape", [(64, 96), (257, 130)])
def test_template_score_product_matches_reference(shape):
    from provmark.kernels import template_score_product

    rng = np.random.default_rng(shape[0])
    h, w = shape
    spec = rng.random((h, w // 2 + 1)).astype(np.float32)
    freqs = _template.keyed_template(b"k").freqs
    sy = np.exp(rng.uniform(np.log(0.4), np.log(3.0), 5))
    sx = np.exp(rng.uniform(np.log(0.4), np.log(3.0), 4))
    th = np.deg2rad(np.array([-5.0, 0.0, 0.7]))
    out = np.full((5, 4, 3), np.nan, np.float32)
    template_score_product(spec, freqs, 1.0 / sy, 1.0 / sx, np.cos(th), np.sin(th), out)
    gy, gx, gr = np.meshgrid(sy, sx, th, indexing="ij")
    ref = _template._gather(spec, _template._predict(freqs, gy, gx, gr)).mean(axis=-1)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    assert ref.std() > 0  # different hypotheses read different bins


def test_template_score_grid_finds_a_planted_constellation():
    # Plant the template's peaks for sy=0.8, sx=1.25, 0 deg into a flat spectrum.
    h, w = 256, 256
    spec = np.ones((h, w // 2 + 1), np.float32)
    freqs = _template.keyed_template(b"k").freqs
    g = _template._predict(freqs, np.array(0.8), np.array(1.25), np.array(0.0))
    for gy, gx in g:
        if gx < 0:
            gy, gx = -gy, -gx
        spec[int(np.rint(gy * h)) % h, int(np.rint(gx * w))] = 10.0
    scales = np.array([0.8, 1.0, 1.25])
    out = np.empty((1, 3, 5), np.float32)  # band 2: every pair of the three scales
    template_score_grid(spec, freqs, 1 / scales, 2, np.array([1.0]), np.array([0.0]), out)
    # (sy index 0, sx index 2) is band offset +2, i.e. column 4
    assert np.unravel_index(int(np.argmax(out)), out.shape) == (0, 0, 4)
    assert out[0, 0, 4] == pytest.approx(10.0)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 7, 16, 9), (8, 125, 16, 72)])
def test_coherent_best_scores_matches_reference(shape):
    from provmark.kernels import coherent_best_scores

    e, g, k, u = shape
    rng = np.random.default_rng(sum(shape))
    zk = rng.normal(size=(e, g, k)) + 1j * rng.normal(size=(e, g, k))
    steer = np.exp(2j * np.pi * rng.random((e, k, u)))
    ref = np.einsum("egk,eku->egu", zk, steer).real.max(axis=2)
    out = np.empty((e, g))
    coherent_best_scores(zk, steer, out)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ny, nx, k", [(1, 1, 1), (7, 11, 16), (40, 33, 16)])
def test_separable_origin_scores_matches_reference(ny, nx, k):
    import naive

    from provmark.kernels import separable_origin_scores

    rng = np.random.default_rng(ny * 100 + nx)
    h, wc = 64, 33
    weighted = (rng.normal(size=(h, wc)) + 1j * rng.normal(size=(h, wc))).astype(np.complex64)
    inverse_noise = rng.uniform(0.5, 2.0, (h, wc)).astype(np.float32)
    by = rng.integers(0, h, (ny, k))
    bx = rng.integers(0, wc, (nx, k))
    ey = np.exp(2j * np.pi * rng.random((ny, k)))
    ex = np.exp(2j * np.pi * rng.random((nx, k)))
    lo = rng.integers(0, nx, ny)
    hi = np.minimum(lo + rng.integers(0, nx + 1, ny), nx)
    out = np.empty((ny, nx))
    separable_origin_scores(weighted, inverse_noise, by, bx, ey, ex, lo, hi, out)
    ref = naive.separable_origin_scores(weighted, inverse_noise, by, bx, ey, ex, lo, hi)
    np.testing.assert_array_equal(np.isinf(out), np.isinf(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(out[finite], ref[finite], rtol=1e-9, atol=1e-9)
