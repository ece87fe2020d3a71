"""Blind synchronisation: find where the embedding grid lies in a cropped image.

A crop moves the image by an unknown number of pixels. The mark's geometry has two
parts to recover: the *pixel phase* of the 16x16-pixel block grid (0..15 in each
direction) and the *tile phase*, i.e. which block of the keyed 32x32-block dither
period sits at the image's first block. The tile phase is found for every cyclic
shift at once by FFT correlation of a keyed pilot (DESIGN.md section 3): each block
pair gives a complex feature ``w(r) * exp(4i*theta)`` whose expected value at a
pilot slot is ``(-1)**bit * exp(4i*d)`` (the angle-QIM lattice point), so the
pilot's match is a linear cross-correlation of the folded features with that
template. The pixel phase is searched on a coarse grid, then refined around the
best candidates. Refs: M. Kutter, SPIE 3528, 1998 (periodic self-reference);
S. Pereira and T. Pun, IEEE TIP 9(6), 2000 (template matching for resynchronisation).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._layout import BLOCK_PX, DITHER_BLOCKS, PAIRS, TILE_BLOCKS, keyed_layout
from .kernels import DCT8_64, luma_pair_coeffs

_C64 = DCT8_64
#: Coarse pixel-phase step of the search. At +-2 px off the grid the pilot keeps
#: about 60% of its score: enough on large images, not on small crops, which get a
#: step of 2 (their blocks are few, so the finer search stays cheap).
COARSE_STEP = 4
FINE_STEP = 2
#: Images with fewer blocks than this use FINE_STEP.
FINE_STEP_BELOW_BLOCKS = 4096


@dataclass(frozen=True)
class SyncCandidate:
    """One grid hypothesis: pixel origin ``(oy, ox)`` of the block grid in the image
    and tile phase ``(ty, tx)`` (blocks) of the first block; ``z`` is the pilot score."""

    z: float
    oy: int
    ox: int
    ty: int
    tx: int


@lru_cache(maxsize=16)
def pilot_template(key: bytes) -> np.ndarray:
    """FFT of the complex pilot template ``(D, D, P)`` (zero on code slots)."""
    layout = keyed_layout(key)
    slot = np.zeros(TILE_BLOCKS * TILE_BLOCKS * PAIRS.shape[0], np.float64)
    slot[layout.pilot_slots] = 1.0 - 2.0 * layout.pilot_bits
    reps = DITHER_BLOCKS // TILE_BLOCKS
    sign = np.tile(slot.reshape(TILE_BLOCKS, TILE_BLOCKS, -1), (reps, reps, 1))
    template = sign * np.exp(4j * layout.dither)
    spectrum = np.fft.fft2(template, axes=(0, 1))
    spectrum.setflags(write=False)
    return spectrum


def block_features(coef: np.ndarray) -> np.ndarray:
    """Complex feature ``w(r) exp(4i theta)`` of every block pair (nby, nbx, P)."""
    c = coef[..., 0].astype(np.float64) + 1j * coef[..., 1]
    r = np.abs(c)
    scale = max(float(np.median(r)) * 0.25, 1e-3)
    unit = np.where(r > 0, c / np.maximum(r, 1e-12), 0)
    return (r / (scale + 0.3 * r)) * unit**4


def tile_phase_scores(features: np.ndarray, key: bytes) -> np.ndarray:
    """Pilot z-score for every tile phase ``(ty, tx)``, shape (D, D)."""
    d = DITHER_BLOCKS
    nby, nbx, npairs = features.shape
    py, px = -(-nby // d) * d, -(-nbx // d) * d
    padded = np.zeros((py, px, npairs), np.complex128)
    padded[:nby, :nbx] = features
    folded = padded.reshape(py // d, d, px // d, d, npairs).sum(axis=(0, 2))
    # C(t) = Re sum_q F[q] conj(T[q + t]) for every cyclic shift t at once.
    spec = np.fft.fft2(folded, axes=(0, 1))
    corr = np.fft.ifft2(np.conj(spec) * pilot_template(key), axes=(0, 1)).real.sum(axis=2)
    energy = float(np.square(np.abs(folded)).sum())
    share = 0.5 * (1 - 2 * 200 / (TILE_BLOCKS * TILE_BLOCKS * npairs))  # pilot share / 2
    norm = np.sqrt(max(energy * share, 1e-12))
    # corr[t] pairs F[q] with T[q + t]: the first block sits at tile phase t.
    return corr / norm


def _phase_candidates(y: np.ndarray, key: bytes, oy: int, ox: int) -> tuple[float, int, int]:
    nby = (y.shape[0] - oy) // BLOCK_PX
    nbx = (y.shape[1] - ox) // BLOCK_PX
    coef = np.empty((nby, nbx, PAIRS.shape[0], 2), np.float32)
    luma_pair_coeffs(y, oy, ox, PAIRS, _C64, coef)
    z = tile_phase_scores(block_features(coef), key)
    t = int(np.argmax(z))
    return float(z.flat[t]), t // z.shape[1], t % z.shape[1]


def search(y: np.ndarray, key: bytes, *, top: int = 3) -> tuple[list[SyncCandidate], int]:
    """Search the pixel phase (coarse grid, then refined) and the tile phase.

    Returns the ``top`` best distinct candidates (best first) and the number of
    grid hypotheses scored (pixel phases x tile phases).
    """
    scored: dict[tuple[int, int], SyncCandidate] = {}

    def score(oy: int, ox: int) -> None:
        oy %= BLOCK_PX
        ox %= BLOCK_PX
        if (oy, ox) in scored:
            return
        z, ty, tx = _phase_candidates(y, key, oy, ox)
        scored[(oy, ox)] = SyncCandidate(z, oy, ox, ty, tx)

    blocks = (y.shape[0] // BLOCK_PX) * (y.shape[1] // BLOCK_PX)
    step = FINE_STEP if blocks < FINE_STEP_BELOW_BLOCKS else COARSE_STEP
    for oy in range(0, BLOCK_PX, step):
        for ox in range(0, BLOCK_PX, step):
            score(oy, ox)
    half = step // 2
    for cand in sorted(scored.values(), key=lambda c: -c.z)[:2]:
        for dy in range(-half, half + 1):
            for dx in range(-half, half + 1):
                score(cand.oy + dy, cand.ox + dx)
    best = sorted(scored.values(), key=lambda c: -c.z)[:top]
    return best, len(scored) * DITHER_BLOCKS * DITHER_BLOCKS
