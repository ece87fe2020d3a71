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
import scipy.fft

from ._detect import SOFT_RELATIVE, SOFT_SCALE, grid_pairs
from ._layout import BLOCK_PX, DITHER_BLOCKS, N_PILOT, PAIRS, TILE_BLOCKS, keyed_layout
from .kernels import DCT8_64, carrier_maps, fold_phase_features, pilot_cross_spectra

_C64 = DCT8_64
#: Threads of the pilot's batched 32x32 FFTs (scipy.fft's ``workers``), as the
#: template's transforms use: the Numba kernels beside them use both cores too. A
#: batch of fewer than FFT_THREADED_FROM transforms runs on one thread: a second
#: one's start-up costs more than it saves there (measured on 2 cores: 64
#: transforms 0.36 ms on one thread, 0.64 on two; 1024, 8.2 and 5.6 ms).
FFT_WORKERS = 2
FFT_THREADED_FROM = 256


def _fft_workers(transforms: int) -> int:
    return FFT_WORKERS if transforms >= FFT_THREADED_FROM else 1
#: Coarse pixel-phase step of the search. At +-2 px off the grid the pilot keeps
#: about 60% of its score: enough on large images, not on small crops, which get a
#: step of 2, and the smallest every phase (their blocks are few, so the finer
#: search stays cheap: about 65 ms for a 363x363 crop). Measured on JPEG 60 + crop
#: to 71% of the sides + brightness x0.5 of 512x512 photos (24 cases): the true grid
#: was among the candidates in 17 with step 2, in 21 with every phase.
COARSE_STEP = 4
FINE_STEP = 2
#: Images with fewer blocks than this use FINE_STEP, and with fewer than
#: EVERY_PHASE_BELOW_BLOCKS (under about 1 MP) every pixel phase: after strong
#: compression the pilot can keep its score only within a pixel of the true phase
#: (rocket, 1024 source, JPEG 60 + crop 71% + brightness x0.5: z 7.7-8.4 there,
#: under 4.5 one pixel off). Larger copies hold enough blocks for the coarser grid;
#: searching 1-2 MP copies again at every phase found nothing more (36 copies of
#: the >2 MP corpus images after that attack and 36 after a 50% crop, benchmarks/
#: RESULTS.md) and doubled the time of an unmarked 1080p image.
FINE_STEP_BELOW_BLOCKS = 8192
EVERY_PHASE_BELOW_BLOCKS = 4096
#: The best coarse phases refined at every pixel around them.
REFINE_TOP = 2
#: Pixel phases scored around the template's phase lock (each direction): the lock is
#: an integer shift of a plane that resampling may have moved by a fraction of a pixel.
LOCK_RADIUS = 1
#: The pilot feature's weight ``r / (s + SOFT_RELATIVE * r)``, ``s`` = SOFT_SCALE x the
#: median radius: the same noise model (a floor plus a part proportional to the
#: pair's radius) as the soft scores the decoder folds, from the same constants.


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


@lru_cache(maxsize=16)
def _pilot_template_pdd(key: bytes) -> np.ndarray:
    """:func:`pilot_template` with the pair axis first, (P, D, D)."""
    out = np.ascontiguousarray(np.moveaxis(pilot_template(key), -1, 0))
    out.setflags(write=False)
    return out


def block_features(coef: np.ndarray) -> np.ndarray:
    """Complex feature ``w(r) exp(4i theta)`` of every block pair: (..., nby, nbx, P)
    from coefficient pairs (..., nby, nbx, P, 2); the weight's scale is the median
    radius of each leading index's plane."""
    c = coef[..., 0].astype(np.float64) + 1j * coef[..., 1]
    r = np.abs(c)
    lead = r.shape[:-3]
    med = np.median(r.reshape(lead + (-1,)), axis=-1).reshape(lead + (1, 1, 1))
    scale = np.maximum(med * SOFT_SCALE, 1e-3)
    unit2 = c / np.maximum(r, 1e-12)  # 0 where r is 0
    unit2 *= unit2
    return (r / (scale + SOFT_RELATIVE * r)) * (unit2 * unit2)


def tile_phase_scores(features: np.ndarray, key: bytes) -> np.ndarray:
    """Pilot z-score for every tile phase ``(ty, tx)``: (..., D, D) from features
    (..., nby, nbx, P)."""
    d = DITHER_BLOCKS
    *lead, nby, nbx, npairs = features.shape
    py, px = -(-nby // d) * d, -(-nbx // d) * d
    padded = np.zeros((*lead, py, px, npairs), np.complex128)
    padded[..., :nby, :nbx, :] = features
    folded = padded.reshape(*lead, py // d, d, px // d, d, npairs).sum(axis=(-5, -3))
    return folded_phase_scores(np.moveaxis(folded, -1, -3), key)


def folded_phase_scores(folded: np.ndarray, key: bytes) -> np.ndarray:
    """Pilot z-score for every tile phase, (..., D, D), from features folded modulo
    the dither period, (..., P, D, D): complex128, or complex64 (the transforms are
    then in single precision, which halves their time; the scores agree to about
    1e-5, far inside their own noise)."""
    *lead, npairs, d, _ = folded.shape
    both, norm = _packed_correlations(folded, key)
    n = norm.shape[0]
    corr = np.empty((n, d, d), np.float64)
    corr[0::2] = both.real
    corr[1::2] = both.imag[:n // 2]
    corr /= norm[:, None, None]
    # corr[t] pairs F[q] with T[q + t]: the first block sits at tile phase t.
    return corr.reshape(*lead, d, d)


def best_tile_phases(folded: np.ndarray, key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The best tile phase of each of ``n`` pixel phases and its z: ``(z, t)``, (n,)
    each, ``t`` the flat index into :func:`folded_phase_scores`' (D, D) and ``z``
    equal to its value there, without building those planes (the best is taken on
    the packed inverse transforms; dividing by a phase's positive norm keeps its
    order, and float32 values stay distinct in float64)."""
    both, norm = _packed_correlations(folded, key)
    n = norm.shape[0]
    flat = both.reshape(both.shape[0], -1)
    t = np.empty(n, np.int64)
    v = np.empty(n, np.float64)
    t[0::2] = flat.real.argmax(axis=1)
    v[0::2] = flat.real[np.arange(flat.shape[0]), t[0::2]]
    if n > 1:
        t[1::2] = flat.imag[:n // 2].argmax(axis=1)
        v[1::2] = flat.imag[np.arange(n // 2), t[1::2]]
    return v / norm, t


def _packed_correlations(folded: np.ndarray, key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The pilot's correlation with folded features (..., P, D, D) at every cyclic
    tile shift, two pixel phases a plane: ``(both, norm)``, ``both`` (ceil(n / 2), D,
    D) holding phase ``2j`` in its real part and ``2j + 1`` in its imaginary part,
    ``norm`` (n,) each phase's null deviation (the z-score's divisor)."""
    *lead, npairs, d, _ = folded.shape
    if folded.dtype != np.complex64:
        folded = folded.astype(np.complex128, copy=False)
    flat = np.ascontiguousarray(folded).reshape(-1, npairs, d, d)
    n = flat.shape[0]
    # C(t) = Re sum_q F[q] conj(T[q + t]) for every cyclic shift t at once: the pairs'
    # cross-spectra are summed before the inverse transform (it is linear), whose real
    # part is taken two phases per transform (the kernel packs their Hermitian parts).
    spec = scipy.fft.fft2(flat, axes=(-2, -1), workers=_fft_workers(n * npairs))
    packed = np.empty(((n + 1) // 2, d, d), spec.dtype)
    energy = np.empty(n, np.float64)
    pilot_cross_spectra(spec, _pilot_template_pdd(key), packed, energy)
    both = scipy.fft.ifft2(packed, axes=(-2, -1), workers=_fft_workers(packed.shape[0]),
                           overwrite_x=True)
    share = 0.5 * N_PILOT / (TILE_BLOCKS * TILE_BLOCKS * npairs)  # pilot share / 2
    return both, np.sqrt(np.maximum(energy * share, 1e-12))


def _best_tile_phase(z: np.ndarray) -> tuple[float, int, int]:
    t = int(np.argmax(z))
    return float(z.flat[t]), t // z.shape[1], t % z.shape[1]


def _phase_candidates(y: np.ndarray, key: bytes, oy: int, ox: int) -> tuple[float, int, int]:
    coef = grid_pairs(y, oy, ox)
    return _best_tile_phase(tile_phase_scores(block_features(coef), key))


def pair_coefficient_maps(y: np.ndarray) -> np.ndarray:
    """The carrier coefficients of the 16x16 block whose top-left pixel is at every
    position: (P, 2, H - 15, W - 15) float32.

    A pair coefficient of a block is a fixed linear function of its 256 pixels
    (Haar LL then the 8x8 DCT: weight ``c[u, r // 2] c[v, s // 2] / 2`` on pixel
    ``(r, s)``), so over every position it is one separable 16-tap correlation of
    the plane: all 256 pixel phases for the cost of a few filter passes
    (:func:`provmark.kernels.carrier_maps`). Agrees with
    :func:`provmark.kernels.luma_pair_coeffs` to float32 rounding.
    """
    h, w = y.shape
    out = np.empty((PAIRS.shape[0], 2, h - BLOCK_PX + 1, w - BLOCK_PX + 1), np.float32)
    carrier_maps(np.ascontiguousarray(y, dtype=np.float32), PAIRS, _C64, out)
    return out


def _phase_candidates_batch(maps: np.ndarray, key: bytes, phases: list[tuple[int, int]]
                            ) -> list[tuple[float, int, int]]:
    """:func:`_phase_candidates` for many pixel phases at once, from
    :func:`pair_coefficient_maps` (every phase reads the same number of whole blocks:
    those of the phase that fits the fewest)."""
    hm, wm = maps.shape[2:]
    nby, nbx = hm // BLOCK_PX, wm // BLOCK_PX
    oys = np.array([p[0] for p in phases], np.int64)
    oxs = np.array([p[1] for p in phases], np.int64)
    # single precision: see folded_phase_scores
    folded = np.empty((len(phases), PAIRS.shape[0], DITHER_BLOCKS, DITHER_BLOCKS), np.complex64)
    fold_phase_features(maps, oys, oxs, nby, nbx, BLOCK_PX, SOFT_SCALE, SOFT_RELATIVE, folded)
    top, best = best_tile_phases(folded, key)
    d = DITHER_BLOCKS
    return [(float(zi), int(t) // d, int(t) % d) for zi, t in zip(top, best)]


def phase_step(y: np.ndarray) -> int:
    """Pixel-phase step of :func:`search` for the plane ``y`` (1: every phase)."""
    blocks = (y.shape[0] // BLOCK_PX) * (y.shape[1] // BLOCK_PX)
    if blocks < EVERY_PHASE_BELOW_BLOCKS:
        return 1
    return FINE_STEP if blocks < FINE_STEP_BELOW_BLOCKS else COARSE_STEP


class PhaseScores(dict):
    """The pixel phases already scored on one plane, ``(oy, ox) -> SyncCandidate``,
    and the plane's coefficient maps once computed (:func:`pair_coefficient_maps`),
    so that a second search of the same plane scores only new phases."""

    maps: np.ndarray | None = None


#: A search round scoring at least this many new phases computes the coefficient
#: maps once (:func:`pair_coefficient_maps`) instead of running the block kernel per
#: phase: the maps cost about as much as 1-3 single phases (measured: 512x512 0.7 ms
#: against 0.7 ms a phase, 1440x810 3.1 against 1.6, 1920x1080 6.3 against 2.5), so
#: the 9 phases around a template lock take 0.3-0.5 of their time that way.
BATCH_PHASES = 4
#: ... unless the plane is larger than this: the maps hold 16 bytes a pixel
#: (64 MB here; a 50 MP plane's would take 800 MB).
MAPS_MAX_PIXELS = 4_000_000


def search(y: np.ndarray, key: bytes, *, top: int = 3, every_phase: bool = False,
           scored: PhaseScores | None = None, near: tuple[int, int] | None = None,
           step: int | None = None) -> tuple[list[SyncCandidate], int]:
    """Search the pixel phase (coarse grid, then refined) and the tile phase.

    Returns the ``top`` best distinct candidates (best first) and the number of
    grid hypotheses scored (pixel phases x tile phases). ``every_phase`` scores all
    256 pixel phases whatever the plane's size. ``scored`` (filled in) keeps the
    phases already scored on this plane and key, so that a second search of the
    same plane scores only the new ones. ``near`` (a pixel origin, e.g. from the
    template's phase lock, :func:`provmark._template.phase_lock`) scores only the
    phases within :data:`LOCK_RADIUS` pixels of it. ``step`` sets the coarse grid's
    pixel-phase step (default :func:`phase_step`: every phase on a small plane).
    """
    if scored is None:
        scored = PhaseScores()

    def score_all(phases) -> None:
        todo = sorted({(oy % BLOCK_PX, ox % BLOCK_PX) for oy, ox in phases} - scored.keys())
        # Once the maps exist every phase is read from them, however few are new.
        if scored.maps is not None or (len(todo) >= BATCH_PHASES
                                       and min(y.shape) >= 2 * BLOCK_PX
                                       and y.size <= MAPS_MAX_PIXELS):
            if scored.maps is None:
                scored.maps = pair_coefficient_maps(y)
            results = _phase_candidates_batch(scored.maps, key, todo)
        else:
            results = [_phase_candidates(y, key, oy, ox) for oy, ox in todo]
        for (oy, ox), (z, ty, tx) in zip(todo, results):
            scored[(oy, ox)] = SyncCandidate(z, oy, ox, ty, tx)

    def around(cands, radius):
        return [(c.oy + dy, c.ox + dx) for c in cands
                for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]

    if near is not None:
        score_all(around([SyncCandidate(0.0, near[0], near[1], 0, 0)], LOCK_RADIUS))
    else:
        step = 1 if every_phase else (step or phase_step(y))
        score_all([(oy, ox) for oy in range(0, BLOCK_PX, step) for ox in range(0, BLOCK_PX, step)])
        if step > 1:
            best = sorted(scored.values(), key=lambda c: -c.z)[:REFINE_TOP]
            score_all(around(best, step // 2))
    best = sorted(scored.values(), key=lambda c: -c.z)[:top]
    return best, len(scored) * DITHER_BLOCKS * DITHER_BLOCKS


#: Exhaustive scale sweep (copies whose template was not found): the grid
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
#: those larger than the sweep can afford (larger sources' templates are seen at
#: their stronger lattice factors; some 1 MP sources' templates do not score).
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
    cands, _ = search(y, key, top=1, near=None) if step == 1 else (None, 0)
    if cands is not None:
        return float(cands[0].z)
    best = -np.inf
    for oy in range(0, BLOCK_PX, step):
        for ox in range(0, BLOCK_PX, step):
            best = max(best, _phase_candidates(y, key, oy, ox)[0])
    return float(best)
