"""The grid search of provmark._sync and its every-phase retry in detect()."""

from __future__ import annotations

import numpy as np
import pytest

import provmark
from provmark import _sync
from provmark import attacks as A
from provmark._detect import read_luma
from provmark._keys import normalize_key
from provmark._layout import DITHER_BLOCKS


def test_phase_step_by_copy_size():
    assert _sync.phase_step(np.zeros((363, 363), np.float32)) == 1  # 484 blocks
    assert _sync.phase_step(np.zeros((1023, 1023), np.float32)) == 1  # 3969
    assert _sync.phase_step(np.zeros((1040, 1880), np.float32)) == _sync.FINE_STEP  # 7605
    assert _sync.phase_step(np.zeros((1440, 2560), np.float32)) == _sync.COARSE_STEP  # 14400


def test_batched_phase_scores_agree_with_the_block_kernel():
    """The coefficient maps (four separable filters) hold the same pairs as the block
    kernel at every phase, and the batched pilot scores match the per-phase ones
    where both read the same blocks."""
    from provmark._layout import PAIRS
    from provmark.kernels import DCT8_64, luma_pair_coeffs

    rng = np.random.default_rng(5)
    y = rng.uniform(0, 255, (303, 335)).astype(np.float32)  # 18x20 blocks at any phase
    key = normalize_key(None)
    maps = _sync.pair_coefficient_maps(y)
    for oy, ox in ((0, 0), (5, 9), (15, 15)):
        coef = np.empty((18, 20, 2, 2), np.float32)
        luma_pair_coeffs(y, oy, ox, PAIRS, DCT8_64, coef)
        got = np.moveaxis(maps[:, :, oy::16, ox::16][:, :, :18, :20], (0, 1), (2, 3))
        np.testing.assert_allclose(got, coef, rtol=1e-4, atol=2e-3)
    phases = [(0, 0), (5, 9), (15, 15), (3, 12)]
    batch = _sync._phase_candidates_batch(maps, key, phases)
    for (oy, ox), (z, ty, tx) in zip(phases, batch):
        z1, ty1, tx1 = _sync._phase_candidates(y, key, oy, ox)
        assert (ty, tx) == (ty1, tx1) and z == pytest.approx(z1, rel=1e-5)


def test_every_phase_scores_all_pixel_phases():
    y = np.random.default_rng(0).uniform(0, 255, (1040, 1880)).astype(np.float32)
    key = normalize_key(None)
    _, n_step = _sync.search(y, key)
    _, n_all = _sync.search(y, key, every_phase=True)
    assert n_all == 256 * DITHER_BLOCKS**2
    assert n_step < n_all


def test_every_phase_retry_finds_what_the_step_two_grid_misses(photo_factory, monkeypatch):
    """Rocket at 1024x1024 after JPEG 60 + crop to 71% + brightness x0.5: the pilot
    keeps its score only within a pixel of the true phase, so the step-2 grid's
    candidates miss it; detect() then tries every phase and decodes. (Run with the
    template's locks refused and the step-2 grid used from 1024 blocks up, as when
    this copy met the retry: today the template or the every-phase search find it
    first.)"""
    monkeypatch.setattr(provmark._detect, "LOCK_Z", float("inf"))
    monkeypatch.setattr(_sync, "EVERY_PHASE_BELOW_BLOCKS", 1024)
    img = photo_factory("rocket", 1024, 1024)
    payload, key = provmark.Payload(1000, 77), normalize_key("retry-0")
    marked = provmark.embed(img, payload, key=key)
    top, left = 71, 83
    copy = A.apply("combined", marked, quality=60, crop_side=0.71, brightness_factor=0.5,
                   position=(top, left))
    truth = (-top % 16, -left % 16, (top + (-top % 16)) // 16 % DITHER_BLOCKS,
             (left + (-left % 16)) // 16 % DITHER_BLOCKS)
    y = read_luma(copy)
    step_cands, _ = _sync.search(y, key)
    # The premise: the step-2 search alone does not hold the true grid.
    assert truth not in {(c.oy, c.ox, c.ty, c.tx) for c in step_cands}
    all_cands, _ = _sync.search(y, key, every_phase=True)
    assert (all_cands[0].oy, all_cands[0].ox, all_cands[0].ty, all_cands[0].tx) == truth
    det = provmark.detect(copy, key=key)
    assert det.found and det.payload == payload
    assert det.offset == truth[:2]
    assert det.false_alarm_probability <= 1e-9
    assert det.hypotheses > 256 * DITHER_BLOCKS**2  # the retry is counted
