"""Clipping compensation (embedder revision 5): on black and white a change can only
go one way, so uint8 clipping takes about half of every carrier's pattern; the
embedder gives the shortfall back where there is room (src/provmark/_embed.py
``compensate_clipping``), within the PSNR floor, and gives it up first where the
SSIM floor binds."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from provmark import Payload
from provmark import _embed as E
from provmark._detect import grid_pairs, read_luma
from provmark._keys import normalize_key
from provmark._layout import PAIRS
from provmark._template import keyed_template, template_factor
from provmark.kernels import apply_block_deltas

pytestmark = pytest.mark.usefixtures("numba_one_thread")

KEY = normalize_key("clipping test key")
PAYLOAD = Payload(provider=7, content_id=4242, label=1)


@pytest.fixture(scope="module")
def page():
    """Black text on white, 512x640: nearly every pixel sits at 0 or 255."""
    page = np.full((512, 640, 3), 255, np.uint8)
    for row in range(11):
        cv2.putText(page, "Change the value using the default increment", (8, 40 + 44 * row),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2, cv2.LINE_AA)
    assert E.saturated_share(page) > 0.9
    return page


@pytest.fixture(scope="module")
def written(page):
    """The plan for ``page`` and its plain write (no compensation)."""
    delta, *_, tamp, _, _ = E.plan_embedding(page, PAYLOAD, KEY)
    limit = E.change_limit(page)
    template = keyed_template(KEY, template_factor(*page.shape[:2])).tile
    out = np.empty_like(page)
    apply_block_deltas(page, PAIRS, delta, E._C64, 1.0, limit, template, tamp, out)
    return delta, limit, template, tamp, out


def _kept(page, image, delta):
    """Share of the planned carrier change the written ``image`` holds (its
    projection on ``delta``)."""
    got = grid_pairs(read_luma(image)) - grid_pairs(read_luma(page))
    return float((got * delta).sum() / np.square(delta).sum())


def test_compensation_gives_back_what_clipping_took(page, written):
    delta, limit, template, tamp, out = written
    before = _kept(page, out, delta)
    fixed = E.compensate_clipping(page, out, delta, limit, template, tamp, 40.0,
                                  E.CLIP_LIMIT_GAIN)
    after = _kept(page, fixed, delta)
    assert before < 0.6  # about half is clipped away on a page like this
    assert after > before + 0.15, (before, after)
    assert E._psnr(page, fixed) >= 40.0
    assert not np.shares_memory(fixed, page)


def test_compensation_never_spends_past_the_psnr_floor(page, written):
    """A pass that would bring the PSNR under the floor is not taken: with the floor
    at the plain write's own PSNR, the plain write comes back unchanged."""
    delta, limit, template, tamp, out = written
    floor = E._psnr(page, out) - 1e-6
    fixed = E.compensate_clipping(page, out, delta, limit, template, tamp, floor,
                                  E.CLIP_LIMIT_GAIN)
    assert E._psnr(page, fixed) >= floor
    kept_plain, kept_fixed = _kept(page, out, delta), _kept(page, fixed, delta)
    assert kept_fixed >= kept_plain - 1e-9


def test_the_mark_on_a_page_is_compensated_and_reads_back(page):
    import provmark

    marked = E.mark_array(page, PAYLOAD, KEY)
    assert marked.image is not None and marked.clip_gain is not None
    assert E._psnr(page, marked.image) >= 40.0
    assert provmark.detect(marked.image, key=KEY, search=False).payload == PAYLOAD


def test_a_photo_without_clipping_is_written_as_before(photo_factory):
    """Under CLIP_SHARE of saturated pixels nothing changes: the same pixels as with
    compensation turned off."""
    rgb = photo_factory("coffee", 384, 320)
    assert E.saturated_share(rgb) <= E.CLIP_SHARE
    on = E._mark_once(rgb, PAYLOAD, KEY, 1.0, 40.0)
    off = E._mark_once(rgb, PAYLOAD, KEY, 1.0, 40.0, clip_gain=None)
    assert on.clip_gain is None
    np.testing.assert_array_equal(on.image, off.image)


@pytest.mark.parametrize("large", [False, True])
def test_the_ssim_floor_gives_up_compensation_before_strength(photo_factory, monkeypatch,
                                                             large):
    """Where the SSIM floor binds, the first mark tried is the same strength without
    the compensation's larger limit, then without compensation; strength and template
    gain are lowered only after that. A compensated mark is checked whatever the
    image's size (``large``: as if it were over SSIM_CHECK_PIXELS, which are not
    checked otherwise)."""
    if large:
        monkeypatch.setattr(E, "SSIM_CHECK_PIXELS", 1000)
    calls = []
    real = E._mark_once

    def recording(*args, **kwargs):
        marked = real(*args, **kwargs)
        calls.append(marked)
        return marked

    def score(self, image):
        # Passes only the first mark written without compensation.
        last = calls[-1]
        assert np.array_equal(last.image, image)
        return 0.99 if last.clip_gain is None else 0.97

    # A screenshot-like image: a photo on a white page.
    small = np.full((384, 512, 3), 255, np.uint8)
    small[48:336, 64:448] = photo_factory("coffee", 384, 288)
    assert E.saturated_share(small) > E.CLIP_SHARE
    monkeypatch.setattr(E, "_mark_once", recording)
    monkeypatch.setattr(E.SSIMReference, "score", score)
    marked = E._mark_fine(small, PAYLOAD, KEY, 1.0, 40.0, adapt=False)
    assert marked.clip_gain is None
    assert marked.strength == 1.0 and marked.template_gain == 1.0
    gains = [m.clip_gain for m in calls]
    assert gains[0] == E.CLIP_LIMIT_GAIN and gains[-2:] == [1.0, None], gains
