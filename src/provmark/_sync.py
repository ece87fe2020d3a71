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

from ._layout import BLOCK_PX, DITHER_BLOCKS, N_PILOT, PAIRS, TILE_BLOCKS, keyed_layout
from .kernels import DCT8_64, luma_pair_coeffs

_C64 = DCT8_64
#: Coarse pixel-phase step of the search. At +-2 px off the grid the pilot keeps
#: about 60% of its score: enough on large images, not on small crops, which get a
#: step of 2, and the smallest every phase (their blocks are few, so the finer
#: search stays cheap: about 65 ms for a 363x363 crop). Measured on JPEG 60 + crop
#: to 71% of the sides + brightness x0.5 of 512x512 photos (24 cases): the true grid
#: was among the candidates in 17 with step 2, in 21 with every phase.
COARSE_STEP = 4
FINE_STEP = 2
#: Images with fewer blocks than this use FINE_STEP, and with fewer than
#: EVERY_PHASE_BELOW_BLOCKS (under about 0.26 MP) every pixel phase. When a FINE_STEP
#: search does not decode, detect() searches again at every phase
#: (``search(..., every_phase=True)``): after strong compression the pilot can keep its
#: score only within a pixel of the true phase.
FINE_STEP_BELOW_BLOCKS = 4096
EVERY_PHASE_BELOW_BLOCKS = 1024
#: The best coarse phases refined at every pixel around them.
REFINE_TOP = 2


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
    share = 0.5 * N_PILOT / (TILE_BLOCKS * TILE_BLOCKS * npairs)  # pilot share / 2
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


def phase_step(y: np.ndarray) -> int:
    """Pixel-phase step of :func:`search` for the plane ``y`` (1: every phase)."""
    blocks = (y.shape[0] // BLOCK_PX) * (y.shape[1] // BLOCK_PX)
    if blocks < EVERY_PHASE_BELOW_BLOCKS:
        return 1
    return FINE_STEP if blocks < FINE_STEP_BELOW_BLOCKS else COARSE_STEP


def search(y: np.ndarray, key: bytes, *, top: int = 3, every_phase: bool = False,
           scored: dict | None = None) -> tuple[list[SyncCandidate], int]:
    """Search the pixel phase (coarse grid, then refined) and the tile phase.

    Returns the ``top`` best distinct candidates (best first) and the number of
    grid hypotheses scored (pixel phases x tile phases). ``every_phase`` scores all
    256 pixel phases whatever the plane's size. ``scored`` (a dict, filled in) keeps
    the phases already scored on this plane and key, so that a second search of the
    same plane scores only the new ones.
    """
    if scored is None:
        scored = {}

    def score(oy: int, ox: int) -> None:
        oy %= BLOCK_PX
        ox %= BLOCK_PX
        if (oy, ox) in scored:
            return
        z, ty, tx = _phase_candidates(y, key, oy, ox)
        scored[(oy, ox)] = SyncCandidate(z, oy, ox, ty, tx)

    step = 1 if every_phase else phase_step(y)
    for oy in range(0, BLOCK_PX, step):
        for ox in range(0, BLOCK_PX, step):
            score(oy, ox)
    half = step // 2
    for cand in sorted(scored.values(), key=lambda c: -c.z)[:REFINE_TOP if half else 0]:
        for dy in range(-half, half + 1):
            for dx in range(-half, half + 1):
                score(cand.oy + dy, cand.ox + dx)
    best = sorted(scored.values(), key=lambda c: -c.z)[:top]
    return best, len(scored) * DITHER_BLOCKS * DITHER_BLOCKS


#: Exhaustive scale sweep (sources without a template, i.e. under 0.6 MP): the grid
#: scales tried, geometric steps of 0.4%. The pilot score falls to the null level
#: about 0.4% off the true scale on a 512x512 source (measured: z 11.3 at the scale,
#: 5.8 at +0.38%), so the step keeps every scale within 0.2% of a tried one.
#: Up to 3.0: a screenshot of a 512-px image shown at 1280 px is a 2.5x upscale.
SWEEP_RANGE = (0.4, 3.0)
SWEEP_RATIO = 1.004
#: Rotations swept at scale 1 (degrees; rotated and cropped copies keep their scale):
#: 0.3-degree steps keep a 512-px copy's edge within 0.7 px of a tried angle.
SWEEP_ROTATION_STEP = 0.3
SWEEP_ROTATION_MAX = 6.0
#: Pixel-phase step of the sweep's quick score (the full search refines).
SWEEP_PHASE_STEP = 4
#: Resampled planes smaller than this (pixels, either side) are not scored, nor are
#: those larger than the largest source that might carry no usable template (the
#: template is embedded from 0.6 MP up; some 1 MP sources' templates do not score).
SWEEP_MIN_SIDE = 192
SWEEP_MAX_PIXELS = 1_200_000


def sweep_hypotheses() -> list[tuple[float, float]]:
    """``(scale, rotation_degrees)`` pairs of the sweep: rotations at scale 1, then
    scales at rotation 0, each ordered from the identity outwards (mild changes
    first); the identity itself is left out (the ordinary search covers it)."""
    lo, hi = SWEEP_RANGE
    logs = np.arange(np.log(lo), np.log(hi), np.log(SWEEP_RATIO))
    logs = logs[np.abs(logs) > np.log(SWEEP_RATIO) / 2]
    logs = logs[np.argsort(np.abs(logs), kind="stable")]
    n = int(round(SWEEP_ROTATION_MAX / SWEEP_ROTATION_STEP))
    angles = [sign * i * SWEEP_ROTATION_STEP for i in range(1, n + 1) for sign in (1, -1)]
    return [(1.0, float(a)) for a in angles] + [(float(np.exp(v)), 0.0) for v in logs]


def hypothesis_matrix(scale: float, rotation: float) -> np.ndarray:
    """``A`` (copy = A @ grid, (y, x) order) of an isotropic scale and a rotation."""
    t = np.deg2rad(rotation)
    return scale * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def resample_to_grid(y: np.ndarray, scale: float, rotation: float = 0.0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The copy ``y`` brought back to the grid, assuming it was resized by ``scale``
    and rotated by ``rotation`` degrees; returns the plane and the 2x2 matrix ``A``
    (copy = A @ grid) that :class:`provmark._detect.GridLocation` uses to map back."""
    import cv2

    if rotation:
        from ._template import warp_to_grid

        a = hypothesis_matrix(scale, rotation)
        return np.ascontiguousarray(warp_to_grid(y, a), dtype=np.float32), a
    h, w = y.shape
    nh, nw = max(1, round(h / scale)), max(1, round(w / scale))
    interp = cv2.INTER_AREA if scale > 1 else cv2.INTER_CUBIC
    plane = np.ascontiguousarray(cv2.resize(y, (nw, nh), interpolation=interp), dtype=np.float32)
    return plane, np.diag([h / nh, w / nw])


def quick_score(y: np.ndarray, key: bytes, step: int = SWEEP_PHASE_STEP) -> float:
    """Best pilot z over a coarse pixel-phase grid and every tile phase."""
    best = -np.inf
    for oy in range(0, BLOCK_PX, step):
        for ox in range(0, BLOCK_PX, step):
            best = max(best, _phase_candidates(y, key, oy, ox)[0])
    return float(best)
