"""The grid search of provmark._sync and its every-phase retry in detect()."""

from __future__ import annotations

import numpy as np

import provmark
from provmark import _sync
from provmark import attacks as A
from provmark._detect import read_luma
from provmark._keys import normalize_key
from provmark._layout import DITHER_BLOCKS


def test_phase_step_by_copy_size():
    assert _sync.phase_step(np.zeros((363, 363), np.float32)) == 1  # 484 blocks
    assert _sync.phase_step(np.zeros((727, 727), np.float32)) == _sync.FINE_STEP  # 2025
    assert _sync.phase_step(np.zeros((1040, 1880), np.float32)) == _sync.COARSE_STEP  # 7605


def test_every_phase_scores_all_pixel_phases():
    y = np.random.default_rng(0).uniform(0, 255, (727, 727)).astype(np.float32)
    key = normalize_key(None)
    _, n_step = _sync.search(y, key)
    _, n_all = _sync.search(y, key, every_phase=True)
    assert n_all == 256 * DITHER_BLOCKS**2
    assert n_step < n_all


def test_every_phase_retry_finds_what_the_step_two_grid_misses(photo_factory):
    """Rocket at 1024x1024 after JPEG 60 + crop to 71% + brightness x0.5: the pilot
    keeps its score only within a pixel of the true phase, so the step-2 grid's
    candidates miss it; detect() then tries every phase and decodes."""
    img = photo_factory("rocket", 1024, 1024)
    payload, key = provmark.Payload(1000, 77), normalize_key("retry-0")
    marked = provmark.embed(img, payload, key=key)
    top, left = 101, 37
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
