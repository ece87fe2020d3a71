"""The grid search of provmark._sync: pixel phases, tile phases, the every-phase search."""

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


def test_best_tile_phases_equal_the_best_of_the_score_planes():
    """The batched search takes each pixel phase's best tile phase on the packed
    inverse transforms: the same index and the same z, bit for bit, as the best of
    the full score planes (odd and even phase counts: the last plane's imaginary
    half is empty)."""
    from provmark._layout import PAIRS

    rng = np.random.default_rng(8)
    key = normalize_key(None)
    for n in (1, 2, 7, 64):
        shape = (n, PAIRS.shape[0], DITHER_BLOCKS, DITHER_BLOCKS)
        folded = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
        planes = _sync.folded_phase_scores(folded, key).reshape(n, -1)
        z, t = _sync.best_tile_phases(folded, key)
        assert np.array_equal(t, planes.argmax(axis=1))
        assert np.array_equal(z, planes[np.arange(n), t])


def test_grid_pairs_read_from_the_maps_match_the_block_kernel():
    """detect() decodes candidates of a searched plane from its coefficient maps:
    the same pairs as the block kernel, every phase and size (a plane whose last
    rows or columns hold no whole block at that phase included)."""
    from provmark._detect import grid_pairs

    y = np.random.default_rng(6).uniform(0, 255, (301, 338)).astype(np.float32)
    maps = _sync.pair_coefficient_maps(y)
    for oy, ox in ((0, 0), (3, 14), (13, 2), (15, 15)):
        direct = grid_pairs(y, oy, ox)
        from_maps = grid_pairs(y, oy, ox, maps)
        assert from_maps.shape == direct.shape and from_maps.flags.c_contiguous
        np.testing.assert_allclose(from_maps, direct, rtol=1e-4, atol=2e-3)


def test_a_search_with_maps_scores_few_new_phases_from_them(monkeypatch):
    """Once a plane's maps exist, a later search round (the refinement around the
    best phases, fewer than BATCH_PHASES) reads them instead of running the block
    kernel once per phase (the scores are the batch's: every phase reads the blocks
    of the phase that fits the fewest)."""
    y = np.random.default_rng(7).uniform(0, 255, (1040, 1880)).astype(np.float32)
    key = normalize_key(None)
    scored = _sync.PhaseScores()
    _sync.search(y, key, scored=scored)
    assert scored.maps is not None and len(scored) > 64
    before = set(scored)
    calls = []
    monkeypatch.setattr(_sync, "_phase_candidates",
                        lambda *a: calls.append(a) or (0.0, 0, 0))
    _sync.search(y, key, scored=scored, near=(7, 9))
    assert not calls
    new = sorted(set(scored) - before)
    assert new
    batch = _sync._phase_candidates_batch(scored.maps, key, new)
    for phase, (z, ty, tx) in zip(new, batch):
        assert (scored[phase].z, scored[phase].ty, scored[phase].tx) == (z, ty, tx)


def test_the_phases_around_a_lock_are_scored_from_maps_within_the_pixel_cap(monkeypatch):
    """The 9 phases around a template lock are read from the plane's maps (they cost
    about as much as 1-3 single phases), unless the plane is over MAPS_MAX_PIXELS
    (16 bytes a pixel), where each phase runs the block kernel."""
    y = np.random.default_rng(3).uniform(0, 255, (300, 420)).astype(np.float32)
    key = normalize_key(None)
    scored = _sync.PhaseScores()
    _sync.search(y, key, scored=scored, near=(7, 9))
    assert len(scored) == 9 and scored.maps is not None
    for p, c in scored.items():  # single precision: another packing rounds otherwise
        z, ty, tx = _sync._phase_candidates_batch(scored.maps, key, [p])[0]
        assert (c.ty, c.tx) == (ty, tx) and c.z == pytest.approx(z, rel=1e-5)
    monkeypatch.setattr(_sync, "MAPS_MAX_PIXELS", y.size - 1)
    capped = _sync.PhaseScores()
    _sync.search(y, key, scored=capped, near=(7, 9))
    assert len(capped) == 9 and capped.maps is None
    z, ty, tx = _sync._phase_candidates(y, key, 7, 9)
    assert (capped[(7, 9)].z, capped[(7, 9)].ty, capped[(7, 9)].tx) == (z, ty, tx)


def test_every_phase_scores_all_pixel_phases():
    y = np.random.default_rng(0).uniform(0, 255, (1040, 1880)).astype(np.float32)
    key = normalize_key(None)
    _, n_step = _sync.search(y, key)
    _, n_all = _sync.search(y, key, every_phase=True)
    assert n_all == 256 * DITHER_BLOCKS**2
    assert n_step < n_all


def test_every_phase_search_finds_what_the_step_two_grid_misses(photo_factory, monkeypatch):
    """Rocket at 1024x1024 after JPEG 60 + crop to 71% + brightness x0.5: the pilot
    keeps its score only within a pixel of the true phase, so a step-2 grid's
    candidates miss it, and copies of this size (0.53 MP) are searched at every
    phase. (The template's locks are refused, so the blind search must find it; the
    blind search of the coarse layer, which this smooth upscale also carries and which
    runs first, is turned off: it reads the payload on the copy reduced by 2.)"""
    monkeypatch.setattr(provmark._detect, "LOCK_Z", float("inf"))
    monkeypatch.setattr(provmark._detect._Search, "blind_coarse", lambda self: False)
    img = photo_factory("rocket", 1024, 1024)
    payload, key = provmark.Payload(1000, 77), normalize_key("retry-0")
    marked = provmark.embed(img, payload, key=key)
    top, left = 71, 83
    copy = A.apply("combined", marked, quality=60, crop_side=0.71, brightness_factor=0.5,
                   position=(top, left))
    truth = (-top % 16, -left % 16, (top + (-top % 16)) // 16 % DITHER_BLOCKS,
             (left + (-left % 16)) // 16 % DITHER_BLOCKS)
    y = read_luma(copy)
    assert _sync.phase_step(y) == 1
    with monkeypatch.context() as m:  # the premise: a step-2 search misses the grid
        m.setattr(_sync, "EVERY_PHASE_BELOW_BLOCKS", 1024)
        assert _sync.phase_step(y) == _sync.FINE_STEP
        step_cands, _ = _sync.search(y, key)
    assert truth not in {(c.oy, c.ox, c.ty, c.tx) for c in step_cands}
    all_cands, _ = _sync.search(y, key, every_phase=True)
    assert (all_cands[0].oy, all_cands[0].ox, all_cands[0].ty, all_cands[0].tx) == truth
    det = provmark.detect(copy, key=key)
    assert det.found and det.payload == payload
    assert det.offset == truth[:2]
    assert det.false_alarm_probability <= 1e-9
    assert det.hypotheses >= 256 * DITHER_BLOCKS**2  # every phase is counted
