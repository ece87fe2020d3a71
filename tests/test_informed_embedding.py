"""Informed embedding (docs/format.md 5.2 step 5, embedder revision 7): the carriers'
moves start from each pair plus what the synchronisation template adds to it."""

from __future__ import annotations

import numpy as np
import pytest

import provmark
from provmark._detect import grid_pairs, observe, read_luma
from provmark._embed import mark_array, template_pair_offsets, tile_symbols
from provmark._keys import normalize_key
from provmark._layout import keyed_layout
from provmark._template import keyed_template, template_factor


@pytest.mark.parametrize("factor", [1, 2, 4])
def test_the_offsets_are_the_pairs_of_the_written_template(factor):
    """The template as apply_block_deltas writes it (tile[y % Q, x % Q] times the
    block's amplitude, on the luma), read by the detector's pair transform."""
    tile = keyed_template(b"informed", factor).tile
    rng = np.random.default_rng(factor)
    nby, nbx = 23, 19  # not a multiple of the tile's blocks
    tamp = rng.uniform(0.0, 3.0, (nby, nbx)).astype(np.float32)
    y, x = np.mgrid[0:nby * 16, 0:nbx * 16]
    plane = tile[y % tile.shape[0], x % tile.shape[1]] * np.repeat(
        np.repeat(tamp, 16, axis=0), 16, axis=1)
    expected = grid_pairs(plane.astype(np.float32))
    got = template_pair_offsets(tile, tamp)
    assert got.shape == expected.shape == (nby, nbx, 2, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert np.abs(expected).max() > 0.5  # the template does reach the carriers


def _gradient(h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 110 + 60 * np.sin(x / 310.0) + 40 * np.cos(y / 270.0)
    g = 100 + 50 * np.cos((x + y) / 400.0)
    b = 120 + 45 * np.sin((x - y) / 350.0)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def test_a_large_smooth_image_reads_its_carriers_right_beside_the_template():
    """A 1408x1408 smooth image carries the template on the factor-2 lattice, near
    the carriers' frequencies. Written blind, it turned many channel bits before any
    attack; started from it, the written image reads (almost) every one right."""
    img = _gradient(1408, 1408)
    assert template_factor(*img.shape[:2]) == 2
    payload = provmark.Payload(provider=77, content_id=4242)
    key = normalize_key(b"informed embedding test")
    marked = mark_array(img, payload, key)
    assert marked.image is not None and marked.template_keep is not None
    layout = keyed_layout(key)
    signs = 1.0 - 2.0 * tile_symbols(payload, key).reshape(-1)
    seen = observe(grid_pairs(read_luma(marked.image)), layout.dither, 0, 0)
    right = seen.folded().reshape(-1) * signs
    wrong = int((right[layout.code_slots] < 0).sum())
    assert wrong <= 4, f"{wrong} of 400 channel bits wrong on the written image"
    det = provmark.detect(marked.image, key=key)
    assert det.payload == payload and det.sync_score > 9.5
