"""A template that cannot lock is not written (embedder revision 8): where the PSNR
floor binds and the template written with the mark does not lock on the written
image itself, no copy will lock on it either, and the carriers get its budget
(src/provmark/_embed.py ``BARE_BELOW_LOCK``)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import provmark
from provmark import _embed as E
from provmark._detect import grid_pairs, observe, read_luma
from provmark._keys import normalize_key
from provmark._layout import keyed_layout

KEY = normalize_key("bare template test key")
PAYLOAD = provmark.Payload(provider=7, content_id=12345, label=1)


@pytest.fixture(scope="module")
def sparse_page():
    """A 1300x940 help page: ten short lines of black text on white, 98.5% of the
    pixels at 255 (gimp-slider-help in the corpus is of this kind)."""
    page = np.full((940, 1300, 3), 255, np.uint8)
    text = "Change the value using the default increment"
    for i, row in enumerate(range(80, 900, 90)):
        cv2.putText(page, text[: 20 + (i * 7) % 25], (300, row), cv2.FONT_HERSHEY_SIMPLEX,
                    1.0, (0, 0, 0), 2, cv2.LINE_AA)
    return page


def _wrong_channel_bits(image: np.ndarray) -> int:
    layout = keyed_layout(KEY)
    signs = 1.0 - 2.0 * E.tile_symbols(PAYLOAD, KEY).reshape(-1)
    seen = observe(grid_pairs(read_luma(image)), layout.dither, 0, 0)
    return int(((seen.folded().reshape(-1) * signs)[layout.code_slots] < 0).sum())


def test_a_template_that_cannot_lock_is_dropped_for_the_carriers(sparse_page, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(E, "BARE_BELOW_LOCK", False)
        with_template = E.mark_array(sparse_page, PAYLOAD, KEY)
    # The premise: the budget binds, and the template written does not lock.
    assert with_template.image is not None and with_template.template_keep is not None
    assert with_template.scale < 0.999
    assert not E.template_locks(with_template.image, KEY)

    bare = E.mark_array(sparse_page, PAYLOAD, KEY)
    assert bare.image is not None and bare.template_keep is None
    assert _wrong_channel_bits(bare.image) < _wrong_channel_bits(with_template.image)
    assert E._psnr(sparse_page, bare.image) >= 40.0
    det = provmark.detect(bare.image, key=KEY)
    assert det.payload == PAYLOAD
    assert det.sync_score > provmark.detect(with_template.image, key=KEY).sync_score


def test_a_photo_keeps_its_template(photo_factory):
    """A template that locks is kept, whether the budget binds or not."""
    img = photo_factory("astronaut", 512, 512)
    marked = E.mark_array(img, PAYLOAD, KEY)
    assert marked.template_keep is not None
    assert E.template_locks(marked.image, KEY)


def test_an_unmarked_image_does_not_lock(photo_factory):
    assert not E.template_locks(photo_factory("astronaut", 512, 512), KEY)
