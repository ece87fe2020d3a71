"""template_score_grid (Numba) against its NumPy twin in provmark._template."""

from __future__ import annotations

import numpy as np
import pytest

from provmark import _template
from provmark.kernels import template_score_grid


@pytest.mark.parametrize("shape", [(64, 96), (257, 130), (300, 301)])
def test_template_score_grid_matches_reference(shape):
    rng = np.random.default_rng(sum(shape))
    h, w = shape
    spec = rng.random((h, w // 2 + 1)).astype(np.float32)
    freqs = _template.keyed_template(b"k").freqs
    sy = np.exp(rng.uniform(np.log(0.45), np.log(2.3), 9))
    sx = np.exp(rng.uniform(np.log(0.45), np.log(2.3), 7))
    rots = np.array([-6.0, -1.5, 0.0, 3.25])
    ref = _template.score_grid_reference(spec, freqs, sy, sx, rots)
    out = np.empty(ref.shape, np.float32)
    th = np.deg2rad(rots)
    template_score_grid(spec, freqs, 1.0 / sy, 1.0 / sx, np.cos(th), np.sin(th), out)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


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
    out = np.empty((1, 3, 3), np.float32)
    template_score_grid(spec, freqs, 1 / scales, 1 / scales, np.array([1.0]), np.array([0.0]), out)
    assert np.unravel_index(int(np.argmax(out)), out.shape) == (0, 0, 2)
    assert out[0, 0, 2] == pytest.approx(10.0)
