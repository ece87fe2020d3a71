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


# ------------------------------------------- one demodulation, and the decoding floor


def test_one_observation_pass_gives_both_folds(marked_pairs):
    """read_grid demodulates a grid once: the plain fold and the calibrated scores
    from the shared observations equal those computed from the pairs alone."""
    from provmark._detect import observe

    seen = observe(marked_pairs, keyed_layout(KEY).dither, 3, 5)
    plain, counts = soft_scores(marked_pairs, keyed_layout(KEY).dither, 3, 5)
    np.testing.assert_array_equal(seen.folded(), plain)
    np.testing.assert_array_equal(seen.counts(), counts)
    np.testing.assert_array_equal(calibrated_scores(None, KEY, seen=seen),
                                  calibrated_scores(marked_pairs, KEY, 3, 5))


def test_a_grid_under_the_floor_is_read_not_decoded_and_costs_nothing(photo_factory):
    """An unmarked image's aligned grid (pilot z about N(0, 1)) is read but not
    decoded: it counts no decoding, says why, and a decodable grid above the floor
    still decodes, its bound counting only the grids decoded."""
    from provmark import _detect

    img = photo_factory("coffee", 512, 512)
    det = provmark.detect(img, key=KEY, search=False)
    assert abs(det.sync_score) < _detect.DECODE_MIN_Z  # this image's aligned pilot
    assert det.payload is None and det.false_alarm_probability == 1.0
    assert det.details["grids_read"] == 1 and det.details["decode_attempts"] == 0
    assert "pilot z" in det.reason and str(_detect.DECODE_MIN_Z) in det.reason

    import cv2

    marked = provmark.embed(img, PAYLOAD, key=KEY)
    small = cv2.resize(marked, (256, 256), interpolation=cv2.INTER_AREA)  # found by search
    det = provmark.detect(small, key=KEY)
    assert det.payload == PAYLOAD and det.sync_score >= _detect.DECODE_MIN_Z
    assert det.details["decode_attempts"] < det.details["grids_read"]  # the aligned grid
    p_dec = det.details["decode_attempts"] * _codec.false_alarm_per_channel_attempt()
    assert det.details["long_lists"] == 0
    assert det.false_alarm_probability == pytest.approx(
        p_dec * min(1.0, det.hypotheses * _detect.pilot_p_value(det.sync_score)), rel=1e-9)


def test_the_floor_changes_no_outcome_on_attacked_copies(photo_factory, monkeypatch):
    """On weak marks (JPEG 30 and 20, a crop of each) the payloads read with the floor
    are those read without it: no copy decodes below it."""
    import cv2

    from provmark import _detect

    img = photo_factory("astronaut", 512, 512)
    marked = provmark.embed(img, PAYLOAD, key=KEY)
    copies = []
    for q in (30, 20):
        _, buf = cv2.imencode(".jpg", marked, [cv2.IMWRITE_JPEG_QUALITY, q])
        jpg = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        copies += [jpg, np.ascontiguousarray(jpg[37:, 21:])]
    floored = [provmark.detect(c, key=KEY) for c in copies]
    monkeypatch.setattr(_detect, "DECODE_MIN_Z", -np.inf)
    unfloored = [provmark.detect(c, key=KEY) for c in copies]
    assert [d.payload for d in floored] == [d.payload for d in unfloored]
    assert sum(d.payload == PAYLOAD for d in floored) >= 2  # some of them are read
    assert all(d.details["decode_attempts"] == d.details["grids_read"] for d in unfloored)


def test_the_blind_search_decodes_its_best_candidate_only(photo_factory, monkeypatch):
    """With every template stage off, a JPEG'd crop is read by the blind search's best
    candidate alone; an unmarked image costs that search one decoding, not three."""
    import cv2

    from provmark import _detect

    for stage in ("lock_on_copy", "resample_estimates", "coherent_estimates",
                  "coherent_scales", "coherent_rotations", "coherent_uncropped",
                  "enlargements", "pilot_scales", "pilot_rotations", "edge_rotation",
                  "self_reference"):
        monkeypatch.setattr(_detect._Search, stage, lambda self: False)
    img = photo_factory("coffee", 512, 512)
    marked = provmark.embed(img, PAYLOAD, key=KEY)
    _, buf = cv2.imencode(".jpg", np.ascontiguousarray(marked[37:437, 21:421]),
                          [cv2.IMWRITE_JPEG_QUALITY, 60])
    det = provmark.detect(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED), key=KEY)
    assert det.payload == PAYLOAD and det.offset == ((16 - 37) % 16, (16 - 21) % 16)
    assert len(det.details["candidates"]) == _detect.SEARCH_DECODES
    assert det.details["candidates"][0][1:3] == det.offset  # the best one decoded
    plain = provmark.detect(img, key=KEY)
    assert plain.payload is None and plain.details["decode_attempts"] == _detect.BLIND_DECODES
