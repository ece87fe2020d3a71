"""The PSNR budget of a busy image (embedder revision 4): changes that do not fit are
cut pair by pair, where they buy the most soft score per unit of energy, not scaled
down alike (src/provmark/_embed.py ``fit_budget``, ``budget_shares``)."""

from __future__ import annotations

import numpy as np
import pytest

from provmark import Payload
from provmark._detect import SOFT_CLIP, SOFT_RELATIVE, SOFT_SCALE, _observations
from provmark._embed import (
    DEFAULT_STRENGTH,
    _slot_agreement,
    budget_shares,
    compute_deltas,
    fit_budget,
    mark_array,
    plan_embedding,
    psnr_budget,
    tile_symbols,
)
from provmark._keys import normalize_key
from provmark._layout import keyed_layout

pytestmark = pytest.mark.usefixtures("numba_one_thread")

KEY = normalize_key("budget test key")
PAYLOAD = Payload(provider=99, content_id=1234, label=1)


@pytest.fixture(scope="module")
def busy(photo_factory):
    """A busy 384x384 photo whose changes ask for more than twice a 44 dB budget (at
    40 dB the template takes most of the budget, and the closed loop adds boosts)."""
    rgb = photo_factory("astronaut", 384, 384)
    layout = keyed_layout(KEY)
    bits = tile_symbols(PAYLOAD, KEY)
    delta, coef = compute_deltas(rgb, bits, layout.dither, DEFAULT_STRENGTH)
    budget = psnr_budget(384 * 384, 44.0)
    assert float(np.square(delta, dtype=np.float64).sum()) > 2 * budget
    return rgb, coef, delta, bits, layout.dither, budget


def _gain(coef, delta, bits, dither):
    """Per pair, what its change adds to the soft score (signed by its symbol), read
    as budget_shares reads it."""
    marked = coef + delta
    floor = max(float(np.median(np.hypot(marked[..., 0], marked[..., 1]))) * SOFT_SCALE, 1e-3)
    args = (dither, 0, 0, floor, SOFT_RELATIVE, SOFT_CLIP, bits.shape[0], None)
    before = _observations(np.ascontiguousarray(coef), *args)
    after = _observations(np.ascontiguousarray(marked), *args)
    sign = 1.0 - 2.0 * bits.reshape(-1)[before.slot]
    return sign * (after.score - before.score)


def test_changes_that_fit_are_kept_whole(busy):
    _, coef, delta, bits, dither, _ = busy
    energy = float(np.square(delta, dtype=np.float64).sum())
    kept, attenuation = fit_budget(coef, delta, bits, dither, energy * 1.01)
    assert kept is delta and attenuation == 1.0
    kept, attenuation = fit_budget(coef, delta, bits, dither, 0.0)
    assert not kept.any() and attenuation == 0.0


def test_the_budget_is_spent_and_not_exceeded(busy):
    _, coef, delta, bits, dither, budget = busy
    kept, attenuation = fit_budget(coef, delta, bits, dither, budget)
    spent = float(np.square(kept, dtype=np.float64).sum())
    assert budget * 0.999 <= spent <= budget * (1 + 1e-5)
    energy = float(np.square(delta, dtype=np.float64).sum())
    assert attenuation == pytest.approx(np.sqrt(spent / energy), rel=1e-6)
    share = budget_shares(coef, delta, bits, dither, budget)
    assert share.shape == delta.shape[:3] and share.min() >= 0.0 and share.max() <= 1.0
    # Cut pair by pair: some pairs keep all of their change, others little or none.
    assert (share == 1.0).mean() > 0.05 and (share < 0.2).mean() > 0.05


def test_shares_maximise_the_gain_for_the_energy(busy):
    """The optimum of sum(g t) under sum(c t^2) <= budget beats scaling every change
    alike, and no random feasible perturbation of it does better."""
    _, coef, delta, bits, dither, budget = busy
    gain = _gain(coef, delta, bits, dither)
    cost = np.square(delta, dtype=np.float64).sum(-1).ravel()
    share = budget_shares(coef, delta, bits, dither, budget).ravel()
    best = float((gain * share).sum())
    uniform = np.sqrt(budget / cost.sum())
    assert best > 1.2 * float((gain * uniform).sum())
    # A change that gains nothing is not written (one that costs nothing is kept).
    assert np.all(share[(gain <= 0) & (cost > 0)] == 0.0) and np.all(share[cost == 0] == 1.0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        other = np.clip(share + rng.normal(0, 0.05, share.shape), 0, 1)
        other *= min(1.0, np.sqrt(budget / float((cost * other * other).sum())))
        assert float((gain * other).sum()) <= best * (1 + 1e-6)


def test_more_of_the_mark_is_read_from_the_same_energy(busy):
    """What the detector reads on the marked pairs, summed over the code slots, is
    larger than with the changes scaled down alike to the same energy."""
    _, coef, delta, bits, dither, budget = busy
    code = keyed_layout(KEY).code_slots
    kept, _ = fit_budget(coef, delta, bits, dither, budget)
    alike = delta * np.float32(np.sqrt(budget / float(np.square(delta, dtype=np.float64).sum())))
    read_kept = _slot_agreement(coef, kept, bits, dither).reshape(-1)[code]
    read_alike = _slot_agreement(coef, alike, bits, dither).reshape(-1)[code]
    assert read_kept.sum() > 1.2 * read_alike.sum()
    assert (read_kept < 0).sum() < (read_alike < 0).sum()


def test_a_busy_small_photo_keeps_the_psnr_floor_and_reads_back(busy, psnr_db):
    rgb = busy[0]
    _, attenuation, wrong, _, _, _ = plan_embedding(rgb, PAYLOAD, KEY)
    assert wrong == 0 and attenuation < 0.7  # the budget binds, and is reported
    marked = mark_array(rgb, PAYLOAD, KEY)
    assert marked.image is not None and marked.scale < 0.7
    assert psnr_db(rgb, marked.image) >= 40.0


def test_a_weaker_strength_spends_less_of_a_binding_budget(busy):
    rgb = busy[0]
    full, _, _, _, _, _ = plan_embedding(rgb, PAYLOAD, KEY, strength=1.0)
    weak, _, _, _, _, _ = plan_embedding(rgb, PAYLOAD, KEY, strength=0.7)
    spent = float(np.square(full, dtype=np.float64).sum())
    spent_weak = float(np.square(weak, dtype=np.float64).sum())
    assert spent_weak == pytest.approx(0.49 * spent, rel=0.02)


def test_ssim_sensitivity_matches_its_definition(photo_factory):
    """Per block, the mean of C2 / (2 var + C2) over SSIM's 7x7 windows (sample
    variance, per channel), recomputed here with plain NumPy; 1 on a flat image."""
    from numpy.lib.stride_tricks import sliding_window_view

    from provmark._embed import ssim_sensitivity

    rgb = np.ascontiguousarray(photo_factory("coffee", 80, 64))
    got = ssim_sensitivity(rgb)
    assert got.shape == (4, 5)
    windows = sliding_window_view(rgb.astype(np.float64), (7, 7), axis=(0, 1))
    var = np.zeros(rgb.shape)
    var[3:-3, 3:-3] = windows.var(axis=(-2, -1), ddof=1)
    c2 = (0.03 * 255) ** 2
    want = (c2 / (2 * var + c2)).reshape(4, 16, 5, 16, 3).mean(axis=(1, 3, 4))
    np.testing.assert_allclose(got, want, rtol=1e-9)
    flat = np.full((64, 48, 3), 120, np.uint8)
    np.testing.assert_allclose(ssim_sensitivity(flat), 1.0)


def test_the_ssim_weight_moves_the_budget_to_busy_blocks(busy):
    """With the SSIM sensitivity, flat blocks keep less of their change and busy
    blocks more, for the same energy."""
    from provmark._embed import ssim_sensitivity

    rgb, coef, delta, bits, dither, budget = busy
    sens = ssim_sensitivity(rgb)
    plain = budget_shares(coef, delta, bits, dither, budget)
    weighted = budget_shares(coef, delta, bits, dither, budget, sens)
    cost = np.square(delta, dtype=np.float64).sum(-1)
    spent = lambda t: (cost * t * t).sum(axis=-1)  # noqa: E731  (energy per block)
    flat, busy_blocks = sens > np.quantile(sens, 0.75), sens < np.quantile(sens, 0.25)
    assert spent(weighted)[flat].sum() < spent(plain)[flat].sum()
    assert spent(weighted)[busy_blocks].sum() > spent(plain)[busy_blocks].sum()
    assert float((cost * weighted * weighted).sum()) == pytest.approx(budget, rel=1e-3)


def test_a_mark_refused_beside_the_full_template_keeps_part_of_its_gain(photo_factory,
                                                                        psnr_db):
    """A busy 288x288 photo cannot carry the QIM mark beside the template's full
    small-image gain; the embedder then tries 0.7, 0.5 and 0.3 of that extra gain
    before the base amplitudes (TEMPLATE_FALLBACK_KEEPS), and keeps the first that
    reads back."""
    from provmark._embed import TEMPLATE_FALLBACK_KEEPS, _mark_once, change_limit

    rgb = photo_factory("astronaut", 288, 288)
    key = KEY
    limit = change_limit(rgb)
    assert _mark_once(rgb, PAYLOAD, key, 1.0, 40.0, limit=limit).image is None
    tried = [_mark_once(rgb, PAYLOAD, key, 1.0, 40.0, limit=limit, template_keep=k)
             for k in TEMPLATE_FALLBACK_KEEPS]
    first = next(m for m in tried if m.image is not None)
    assert first.template_keep is not None and 0.0 < first.template_keep < 1.0
    marked = mark_array(rgb, PAYLOAD, key)
    assert marked.template_keep == first.template_keep
    assert psnr_db(rgb, marked.image) >= 40.0
