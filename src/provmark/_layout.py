"""The tiled layout of the mark: which symbol slot carries what, keyed.

The image is cut into 16x16-pixel blocks (8x8 blocks of the Haar LL band). A tile
is 16x16 blocks (256x256 pixels) and repeats over the whole image, so any region of
about one tile carries the full codeword (DESIGN.md section 3, "tiling for
cropping"). Each block carries :data:`PAIRS_PER_BLOCK` symbols, so a tile has 512
symbol slots. A keyed permutation assigns them to:

* the 400 channel bits of the payload (its 120 Reed-Solomon code bits through the inner
  convolutional code, :mod:`provmark._codec`), scattered so that a local defect such
  as a strong edge or a flat patch hits unrelated bits, and
* 112 keyed pilot bits, whose correlation measures the presence and the alignment
  of the mark (the synchronisation score).

Every slot also gets a keyed dither (the angle-QIM lattice offset), which varies
over a 2x2-tile super-period (:data:`DITHER_BLOCKS`).

Extension carriers (embedder revision 6, docs/format.md 5.8): a second set of
coefficient pairs per block, :data:`EXTENSION_PAIRS`, may repeat every slot's
symbol (pair ``p`` of the extension carries pair ``p``'s symbol) under a dither of
its own (:func:`extension_dither`). A reader of the carriers alone reads the mark
as before; a reader of both folds the two (:mod:`provmark._detect`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._codec import CHANNEL_BITS
from ._keys import KeyStream
from .kernels import ANGLE_PERIOD

BLOCK_PX = 16
TILE_BLOCKS = 16
TILE_PX = BLOCK_PX * TILE_BLOCKS
#: Coefficient pairs ``(u1, v1, u2, v2)`` of the LL-band 8x8 DCT: equal frequency,
#: transposed orientation, low-mid band (survives JPEG and blur; see RESULTS.md).
PAIRS = np.array([[0, 2, 2, 0], [1, 2, 2, 1]], dtype=np.int64)
PAIRS_PER_BLOCK = PAIRS.shape[0]
from .kernels._modulation import LOW as _LOW  # noqa: E402

assert PAIRS.max() < _LOW, "the embed kernel computes only DCT indices below LOW"
N_SLOTS = TILE_BLOCKS * TILE_BLOCKS * PAIRS_PER_BLOCK
#: The dither repeats every 2x2 tiles: flat areas carry the same symbol pattern in
#: every tile, and compression then errs the same way in each; four dither variants
#: per slot make those errors independent again (measured: JPEG 30 on 512x512
#: photos went from 14/16 to 16/16 exact payloads).
DITHER_BLOCKS = 2 * TILE_BLOCKS
N_PILOT = N_SLOTS - CHANNEL_BITS


@dataclass(frozen=True, eq=False)
class KeyedLayout:
    """Key-dependent assignment of the tile's symbol slots (flat index into
    ``(TILE_BLOCKS, TILE_BLOCKS, PAIRS_PER_BLOCK)``)."""

    code_slots: np.ndarray  # (CHANNEL_BITS,) int64
    pilot_slots: np.ndarray  # (N_PILOT,) int64
    pilot_bits: np.ndarray  # (N_PILOT,) int64 0/1
    dither: np.ndarray  # (D, D, P) float64 in [0, ANGLE_PERIOD)

    def tile_bits(self, channel_bits: np.ndarray) -> np.ndarray:
        """The (T, T, P) int64 tile of symbols carrying ``channel_bits``
        (:func:`provmark._codec.encode_channel`) and the pilot."""
        flat = np.empty(N_SLOTS, dtype=np.int64)
        flat[self.code_slots] = channel_bits
        flat[self.pilot_slots] = self.pilot_bits
        return flat.reshape(TILE_BLOCKS, TILE_BLOCKS, PAIRS_PER_BLOCK)


@lru_cache(maxsize=64)
def keyed_layout(key: bytes) -> KeyedLayout:
    """Derive the layout for ``key`` (cached: one derivation per key and process)."""
    stream = KeyStream(key, "layout")
    perm = stream.permutation(N_SLOTS)
    code_slots = perm[:CHANNEL_BITS]
    pilot_slots = perm[CHANNEL_BITS:]
    pilot_bits = stream.integers(2, N_PILOT)
    dither = stream.uniform(0.0, ANGLE_PERIOD, DITHER_BLOCKS * DITHER_BLOCKS * PAIRS_PER_BLOCK
                            ).reshape(DITHER_BLOCKS, DITHER_BLOCKS, PAIRS_PER_BLOCK)
    for arr in (code_slots, pilot_slots, pilot_bits, dither):
        arr.setflags(write=False)
    return KeyedLayout(code_slots, pilot_slots, pilot_bits, dither)


#: The extension carriers' pairs, one per base pair: ``(1, 1) / (2, 2)`` and
#: ``(0, 1) / (1, 0)``, the LL-band DCT coefficients below :data:`LOW` that the
#: carriers leave free. They are lower in frequency than the carriers: of a smooth
#: image's textured blocks, WebP 50 and JPEG 30 keep more of them (measured on 8
#: smooth corpus images under 0.6 MP: their pilot read z 2-7 where the carriers'
#: read 0-5; benchmarks/RESULTS.md, session 25).
EXTENSION_PAIRS = np.array([[1, 1, 2, 2], [0, 1, 1, 0]], dtype=np.int64)
EXTENSION_PAIRS.setflags(write=False)
assert EXTENSION_PAIRS.shape == PAIRS.shape and EXTENSION_PAIRS.max() < _LOW
assert not set(map(tuple, EXTENSION_PAIRS.reshape(-1, 2))) & set(map(tuple, PAIRS.reshape(-1, 2)))


@lru_cache(maxsize=64)
def extension_dither(key: bytes) -> np.ndarray:
    """The extension carriers' keyed dither, (D, D, P) float64 in
    ``[0, ANGLE_PERIOD)``: a stream of its own, so that its errors are independent
    of the carriers'."""
    dither = KeyStream(key, "layout-extension").uniform(
        0.0, ANGLE_PERIOD, DITHER_BLOCKS * DITHER_BLOCKS * PAIRS_PER_BLOCK
    ).reshape(DITHER_BLOCKS, DITHER_BLOCKS, PAIRS_PER_BLOCK)
    dither.setflags(write=False)
    return dither
