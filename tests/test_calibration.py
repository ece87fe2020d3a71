"""The detector's pilot-calibrated observation weights (``provmark._detect.calibrated_scores``)."""

from __future__ import annotations

import numpy as np
import pytest

import provmark
from provmark import _codec
from provmark._detect import (
    calibrated_scores,
    evaluate,
    read_luma,
    soft_scores,
)
from provmark._keys import normalize_key
from provmark._layout import PAIRS, keyed_layout
from provmark.kernels import DCT8_64, luma_pair_coeffs

KEY = normalize_key("calibration-test")
PAYLOAD = provmark.Payload(provider=321, content_id=654321, label=1)


def _pairs(rgb: np.ndarray) -> np.ndarray:
    y = read_luma(rgb)
    coef = np.empty((y.shape[0] // 16, y.shape[1] // 16, PAIRS.shape[0], 2), np.float32)
    luma_pair_coeffs(y, 0, 0, PAIRS, DCT8_64, coef)
    return coef


@pytest.fixture(scope="module")
def marked_pairs(photo_factory):
    img = photo_factory("coffee", 512, 512)
    return _pairs(provmark.embed(img, PAYLOAD, key=KEY))


def _code_errors(flat: np.ndarray) -> int:
    layout = keyed_layout(KEY)
    bits = layout.tile_bits(_codec.encode_channel(PAYLOAD, KEY)).reshape(-1)[layout.code_slots]
    return int(((flat[layout.code_slots] > 0) != (bits == 0)).sum())


def test_clean_mark_reads_every_code_slot(marked_pairs):
    score = calibrated_scores(marked_pairs, KEY)
    assert score.shape == (keyed_layout(KEY).code_slots.size + keyed_layout(KEY).pilot_slots.size,)
    assert _code_errors(score) == 0
    plain, _ = soft_scores(marked_pairs, keyed_layout(KEY).dither)
    ev = evaluate(plain, KEY, code_score=score)
    assert ev.result.payload == PAYLOAD


def test_uninformative_class_is_discounted(marked_pairs):
    """Scramble the angle of every pair in the larger half of radii and shrink those
    pairs to the size of the small ones: they now carry nothing, yet the plain fold
    (normalised by the median radius) weighs them as much as the intact ones. The
    pilot sees it: the calibrated fold gets far fewer code slots wrong."""
    rng = np.random.default_rng(5)
    coef = marked_pairs.copy()
    radius = np.hypot(coef[..., 0], coef[..., 1])
    noisy = radius > np.median(radius)
    angle = rng.uniform(0, 2 * np.pi, noisy.sum())
    r_new = rng.uniform(0.5, 1.5, noisy.sum()) * np.median(radius)
    coef[noisy, 0] = r_new * np.cos(angle)
    coef[noisy, 1] = r_new * np.sin(angle)
    plain, _ = soft_scores(coef, keyed_layout(KEY).dither)
    calibrated = calibrated_scores(coef, KEY)
    plain_errors, cal_errors = _code_errors(plain.reshape(-1)), _code_errors(calibrated)
    assert cal_errors < 0.7 * plain_errors, (plain_errors, cal_errors)


def test_null_pairs_never_decode():
    """Random coefficient pairs (no mark): whatever weights the pilot fit gives, the
    decoder returns nothing."""
    rng = np.random.default_rng(6)
    dither = keyed_layout(KEY).dither
    for _ in range(200):
        coef = (rng.normal(0, 20, (32, 32, PAIRS.shape[0], 2))
                * rng.uniform(0.1, 3, (32, 32, 1, 1))).astype(np.float32)
        plain, _ = soft_scores(coef, dither)
        ev = evaluate(plain, KEY, code_score=calibrated_scores(coef, KEY))
        assert ev.result.payload is None


def test_tiny_input_falls_back_to_the_plain_fold():
    coef = np.random.default_rng(7).normal(0, 20, (2, 2, PAIRS.shape[0], 2)).astype(np.float32)
    plain, _ = soft_scores(coef, keyed_layout(KEY).dither)
    np.testing.assert_allclose(calibrated_scores(coef, KEY), plain.reshape(-1), rtol=1e-6,
                               atol=1e-9)
