"""The tamper map: where in an image the decoded watermark is present, missing, or
cannot be judged.

Once the payload is decoded, the symbol that every slot of every block should carry
is known, so each block's two coefficient pairs are local evidence that the mark is
there. This module owns turning that evidence into a map an analyst can read, with
thresholds whose error rates are known. ``docs/inspect.md`` explains it for users.

Per symbol ``i`` (two per 16x16-pixel block), with ``err`` the angle of the pair
from the expected bit's lattice point (wrapped to ``[-pi/4, pi/4)``):

* ``u_i = sin(pi/8 - |err|) / sqrt(V)``, ``V = 1/2 - sin(pi/4) / (pi/2)``. Without
  the mark (content pasted or inpainted, another payload) the angle relative to the
  keyed dither is uniform, so ``u_i`` has mean 0 and variance 1 whatever the image,
  and is bounded (``|u_i| <= 1.71``);
* weight ``w_i = r / (s + 0.3 r)`` (``r`` the pair's radius, ``s`` a quarter of the
  median radius): ``w_i * u_i * sqrt(V)`` is exactly the normalised margin that
  :func:`provmark._detect.soft_scores` folds, so weak pairs count for little.

Over a window of ``k x k`` blocks centred on a block (``k <= 9`` < the 16-block tile,
so every symbol in it has its own slot and dither, independent of the others),
``z = sum(w u) / sqrt(sum(w**2))`` is approximately N(0, 1) where the mark is absent
(measured on unmarked photos with three keys: mean 0.05-0.09, sd 0.98-0.99, tails as
N(0, 1)). Where the mark is intact its expectation is
``E = sum(w mu) / sqrt(sum(w**2))``, ``mu`` the mean ``u`` that intact blocks of the
same texture class (block luma standard deviation) show *in this copy*: it is
calibrated on blocks well inside coarse windows that read significantly marked, which
absorbs compression (it weakens flat areas first) and leaves the tampered region out,
capped by what all blocks of the class show (:data:`MAX_MISSING_SHARE`).
Classes: six bins of the block's luma standard deviation, each split by whether at
least 10% of the block's pixels are clipped (the embedder's change is cut off there).
The spread ``sigma`` of intact windows around E is measured on the same reference
blocks (per class, from the 5% quantile of ``z - E``; at least 0.6): about 0.2-0.6
on clean copies, up to 1.1 in flat areas after JPEG 50. Each block is judged on the
smallest window (5x5, 7x7 or 9x9 blocks) where ``E >= 2.326 (1 + sigma)``; then it is

* **missing** when ``z < min(E / (1 + sigma), Z_PRESENT)``: the threshold that makes
  both errors equal between N(0, 1) (mark absent) and N(E, sigma) (intact), at most
  1% each per window under that condition, capped at the one-sided 0.1% point of
  the null so that significant evidence of the mark is never called missing;
* **inconclusive** when even the 9x9 window falls short (an intact mark would not
  stand out from noise: flat areas after strong compression, a weakly marked copy,
  partly clipped blocks with no reference) or the block is saturated (mean luma
  within 1 grey level of 0 or 255, where the embedder writes nothing);
* **present** otherwise.

A window's verdict rests on all of its blocks, so the centres of missing windows
spill past the true edge, unevenly. Near them every block is then
redrawn on its own evidence (``n_b``, ``d_b``, ``e_b``: the block's ``sum(w u)``,
``sum(w**2)`` and ``sum(w mu)``): log-likelihood ratio
``e_b (n_b - e_b / 2) / d_b`` between intact ``N(e_b, d_b)`` and missing
``N(0, d_b)``, pooled along edges by a Potts prior whose exact optimum is a minimum
cut, then a 2x2-block opening; regions without a missing window are dropped, and
blocks with no evidence of their own (partly clipped, no reference) next to a
region are inconclusive. Box edges of 160-px pastes then land within about a
block of the truth (``docs/inspect.md``).

References
----------
J. Fridrich, M. Goljan, "Images with self-correcting capabilities", ICIP 1999, and
C.-Y. Lin, S.-F. Chang, "A robust image authentication method distinguishing JPEG
compression from malicious manipulation", IEEE Trans. CSVT 11(2), 2001 (locating
tampering from a mark's local presence, tolerating compression).
D. M. Greig, B. T. Porteous, A. H. Seheult, "Exact maximum a posteriori estimation
for binary images", J. Royal Statistical Society B 51(2), 1989 (the minimum cut).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import _codec
from ._keys import normalize_key
from ._layout import BLOCK_PX, DITHER_BLOCKS, TILE_BLOCKS, keyed_layout
from ._payload import Payload
from .kernels import aqim_soft_observe

#: Variance of ``sin(pi/8 - |e|)`` for ``e`` uniform on ``[-pi/4, pi/4)`` (null).
NULL_VARIANCE = 0.5 - math.sin(math.pi / 4) / (math.pi / 2)
#: Side of the analysis window, in 16-px blocks (5 blocks = 80 px): the smallest
#: tried; where the mark is weak the window grows up to MAX_WINDOW_BLOCKS.
WINDOW_BLOCKS = 5
MAX_WINDOW_BLOCKS = 9
#: Missing regions smaller than this many blocks (3x3, 48x48 px) are not reported:
#: they are below the resolution of windows 5-9 blocks wide, and on untouched JPEG
#: copies such specks are threshold noise (a 2x2-block one turned up at quality 92).
MIN_REGION_BLOCKS = 9
#: One-sided 0.1% point of N(0, 1): above it the mark is significantly present.
Z_PRESENT = 3.09
#: One-sided 1% point of N(0, 1): the error rate each decision is held to.
Z_ERROR = 2.326
#: With the null N(0, 1) and intact windows spread by ``sigma`` around E, the
#: threshold ``t = E / (1 + sigma)`` makes both errors equal, and they are at most
#: 1% when ``E >= Z_ERROR * (1 + sigma)``.
#: Floor of the measured spread of intact windows (clean copies measure 0.2-0.6).
SIGMA_FLOOR = 0.6
#: A block class needs this many reference blocks for its own spread estimate.
MIN_SPREAD_BLOCKS = 40
#: Side of the coarse windows whose significant blocks calibrate the expected strength.
REFERENCE_BLOCKS = 9
#: Texture classes: block luma standard deviation (grey levels) bin edges.
TEXTURE_EDGES = (1.5, 3.0, 6.0, 12.0, 24.0)
#: Pixels at or beyond these luma levels count as clipped; a block with at least
#: CLIPPED_FRACTION of them is in the "partly clipped" half of the classes.
CLIP_LEVELS = (2.0, 253.0)
CLIPPED_FRACTION = 0.1
N_CLASSES = 2 * (len(TEXTURE_EDGES) + 1)
#: A block class needs this many reference symbols to be calibrated on its own.
MIN_REFERENCE = 48
#: The intact mean of a class is at most what all its usable blocks show over
#: (1 - this share): a map may find up to this share of a class's blocks missing. The
#: reference (blocks deep inside significant windows) is chosen for reading high;
#: where the mark is strong almost every window is significant and the cap does not
#: bind, but where strong compression left it weak and uneven (JPEG 30 or WebP 50 on a
#: small image: the flat sky loses it, texture keeps it) the few significant windows
#: overstated it, and the rest of the copy was called missing. On 154 compressed,
#: untampered corpus copies (session 22) the maps with over 2% missing went from 13
#: (worst 97%, 53%, 52%) to 10 (worst 29%) at 0.6; 0.5 and 0.25 did better there (9,
#: 6) but lost the tests' pasted quarters (a donor's texture can fill most of a class).
MAX_MISSING_SHARE = 0.6
#: Blocks whose mean luma is this close to 0 or 255 carry no mark (the embedder's
#: floor is limited to 5x the headroom: below ~1 grey level it is under the rounding noise).
SATURATION_HEADROOM = 1.0

#: Coefficient pairs below this radius (LL-DCT units) are unreadable (uint8 rounding
#: alone moves a coefficient by ~0.3); an intact mark never leaves a non-saturated
#: block's pair this small (the embedder's floor is >= 5 there).
UNREADABLE_RADIUS = 2.0
#: The weight an unreadable pair gets is that of a pair of this radius.
NOMINAL_RADIUS = 2.0

#: Smoothness of the block-level boundary (:func:`_refine_boundaries`): the cost, in
#: log-likelihood units, of each pair of side-by-side blocks labelled differently
#: (diagonal pairs: this over sqrt(2)). A block's own evidence is weak (log-likelihood
#: ratio of mean 0.7-2.4 and sd 1.2-2.2 on clean copies), so this pools it along an
#: edge. On 160 pastes of 160x160 px into four marked 1024 photos the worst box edge
#: was off by 13 px in the median with 0.35, 0.5, 0.7 and 1.0, and by at most 31 px
#: with 0.5 against 56-59 px with the others (larger values also swallow strips
#: between a region and the image border, where a boundary costs nothing).
BOUNDARY_BETA = 0.5
#: A block takes part in the boundary only with an intact-mark expectation of at
#: least this many standard deviations of its own (``e_b / sqrt(d_b)``; 1.2-2.2 for
#: typical blocks, 0 for partly clipped blocks whose class has no reference).
MIN_BLOCK_EVIDENCE = 0.5

#: Codes of :attr:`TamperMap.state`.
NOT_ANALYSED, PRESENT, MISSING, INCONCLUSIVE = 0, 1, 2, 3
STATE_NAMES = {NOT_ANALYSED: "not analysed", PRESENT: "present", MISSING: "missing",
               INCONCLUSIVE: "inconclusive"}


@dataclass(frozen=True, eq=False)
class TamperMap:
    """Result of :func:`tamper_map`.

    Block-level arrays are ``(nby, nbx)`` over the analysed grid (block ``(by, bx)``
    covers plane pixels ``oy + 16*by ..`` and ``ox + 16*bx ..``); the image-level
    properties are ``(H, W)`` arrays in the examined image's own pixels, mapped back
    through the resampling when the copy was resized or rotated.

    Attributes
    ----------
    block_z : (nby, nbx) float64
        Window z-score: about N(0, 1) where the mark is absent.
    block_expected : (nby, nbx) float64
        Expected z of an intact mark in the same window (texture-calibrated).
    block_state : (nby, nbx) uint8
        :data:`PRESENT`, :data:`MISSING` or :data:`INCONCLUSIVE`.
    block_window : (nby, nbx) int64
        Side (blocks) of the window each block was judged on.
    origin : (int, int)
        Grid origin ``(oy, ox)`` in the analysed plane.
    shape : (int, int)
        ``(H, W)`` of the examined image.
    resampled : bool
        True when the analysed plane is a resampled copy (resize/rotation undone).
    summary : dict
        JSON-ready figures: fractions of the analysed area, bounding boxes of the
        missing regions (image pixels), windows, calibration.
    """

    block_z: np.ndarray = field(repr=False)
    block_expected: np.ndarray = field(repr=False)
    block_state: np.ndarray = field(repr=False)
    block_window: np.ndarray = field(repr=False)
    origin: tuple[int, int]
    shape: tuple[int, int]
    resampled: bool
    summary: dict = field(compare=False)
    _mapping: object = field(repr=False, compare=False)
    _state: np.ndarray = field(repr=False, compare=False)

    def to_image(self, block_array: np.ndarray, fill=np.nan) -> np.ndarray:
        """Map a ``(nby, nbx)`` block array to the image's ``(H, W)`` pixels."""
        arr = np.asarray(block_array)
        if arr.shape != self.block_state.shape:
            raise ValueError(f"expected a {self.block_state.shape} block array, got {arr.shape}")
        if isinstance(fill, float) and np.isnan(fill) and arr.dtype.kind != "f":
            arr = arr.astype(np.float32)
        return self._mapping.expand(arr, fill)

    @property
    def state(self) -> np.ndarray:
        """``(H, W)`` uint8: NOT_ANALYSED, PRESENT, MISSING or INCONCLUSIVE."""
        return self._state

    @property
    def missing(self) -> np.ndarray:
        """``(H, W)`` bool mask of the pixels where the mark is missing."""
        return self._state == MISSING

    @property
    def inconclusive(self) -> np.ndarray:
        """``(H, W)`` bool mask of the pixels that cannot be judged."""
        return self._state == INCONCLUSIVE

    @property
    def z(self) -> np.ndarray:
        """``(H, W)`` float32 window z-score (NaN outside the analysed grid)."""
        return self.to_image(self.block_z.astype(np.float32))

    @property
    def ratio(self) -> np.ndarray:
        """``(H, W)`` float32 ``z / expected``: about 1 where the mark is intact, 0
        where it is gone; NaN where not analysed or inconclusive."""
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(self.block_state == INCONCLUSIVE, np.nan,
                         self.block_z / self.block_expected)
        return self.to_image(r.astype(np.float32))

    def to_dict(self) -> dict:
        """The summary (no per-pixel arrays)."""
        return dict(self.summary)


def _box_sum(a: np.ndarray, k: int) -> np.ndarray:
    """Sum of ``a`` over the ``k x k`` window centred on each element (``k`` odd;
    zero outside)."""
    r = k // 2
    p = np.pad(a, r)
    c = np.zeros((p.shape[0] + 1, p.shape[1] + 1), np.float64)
    np.cumsum(np.cumsum(p, axis=0), axis=1, out=c[1:, 1:])
    h, w = a.shape
    return c[k:k + h, k:k + w] - c[:h, k:k + w] - c[k:k + h, :w] + c[:h, :w]


def expected_tile_bits(payload: Payload, key: bytes) -> np.ndarray:
    """The ``(T, T, P)`` tile of symbols the embedder wrote for ``payload``: the
    channel bits (:func:`provmark._codec.encode_channel`, or the plain code bits of
    a codec without an inner code) in the keyed code slots, plus the pilot."""
    encode = getattr(_codec, "encode_channel", _codec.encode)
    return keyed_layout(key).tile_bits(encode(payload, key))


def _window_z(num, den, exp_num, k):
    s_den = _box_sum(den, k)
    ok = s_den > 1e-12
    root = np.sqrt(np.where(ok, s_den, 1.0))
    z = np.where(ok, _box_sum(num, k) / root, 0.0)
    e = np.where(ok, _box_sum(exp_num, k) / root, 0.0)
    return z, e


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    from scipy.ndimage import maximum_filter

    return maximum_filter(mask.astype(np.uint8), size=2 * r + 1, mode="constant").astype(bool)


def _reconstruct(seeds: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Seeds plus the parts of ``allowed`` 8-connected to them."""
    from scipy.ndimage import label

    both = seeds | allowed
    lab, _ = label(both, structure=np.ones((3, 3), bool))
    keep = np.unique(lab[seeds])
    return np.isin(lab, keep[keep > 0])


def symbol_evidence(plane: np.ndarray, oy: int, ox: int, ty: int, tx: int,
                    tile_bits: np.ndarray, dither: np.ndarray, *, stats: bool = True
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Per-symbol standardised score ``u`` and weight ``w`` ``(nby, nbx, P)``, and the
    block mean and standard deviation of the luma ``(nby, nbx)`` (None unless ``stats``).

    ``tile_bits`` is the ``(T, T, P)`` tile of expected symbols; block ``(by, bx)``
    holds slot ``((by+ty) % T, (bx+tx) % T)`` and dither ``((by+ty) % D, (bx+tx) % D)``.
    """
    from ._detect import SOFT_RELATIVE, SOFT_SCALE, grid_pairs

    y = np.ascontiguousarray(plane, dtype=np.float32)
    coef = grid_pairs(y, oy, ox)
    nby, nbx = coef.shape[:2]
    radius = np.hypot(coef[..., 0].astype(np.float64), coef[..., 1].astype(np.float64))
    # The detector's own demodulation: the decision margin over the radius (a scale
    # of 1e-30 in place of 0 keeps a zero pair at 0 instead of 0/0), unclipped, and
    # the slot each block holds at this tile phase. The margin is
    # r sin(pi/8 - |err|) for bit 0, its negative for bit 1.
    margin = np.empty(coef.shape[:3], np.float64)
    slot = np.empty(coef.shape[:3], np.int64)
    aqim_soft_observe(coef, dither, ty, tx, TILE_BLOCKS, 1e-30, 1.0, np.inf, margin, slot)
    bits = tile_bits.reshape(-1)[slot]
    u = (1.0 - 2.0 * bits) * margin / math.sqrt(NULL_VARIANCE)
    scale = max(float(np.median(radius)) * SOFT_SCALE, 1e-3)
    # A pair below the readable radius has no angle to speak of, yet an intact mark
    # would have put its floor there (flat fills, smooth inpainting): it counts as
    # a pair of nominal radius reading exactly the null mean, u = 0.
    unreadable = radius < UNREADABLE_RADIUS
    u[unreadable] = 0.0
    rw = np.maximum(radius, NOMINAL_RADIUS * unreadable)
    w = rw / (scale + SOFT_RELATIVE * rw)
    if not stats:
        return u, w, None, None
    blocks = y[oy:oy + nby * BLOCK_PX, ox:ox + nbx * BLOCK_PX].reshape(
        nby, BLOCK_PX, nbx, BLOCK_PX)
    mean = blocks.mean(axis=(1, 3), dtype=np.float64)
    sq = np.square(blocks, dtype=np.float64).mean(axis=(1, 3))
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    return u, w, mean, std


def _calibrate(u, w, usable, cls, z_ref):
    """Mean ``u`` of intact symbols per block class, from blocks well inside
    significantly marked coarse windows.

    Returns ``(mu, calibrated, counts, overall, ref)``: ``mu`` per class
    (``N_CLASSES``), whether each was measured (else filled in), reference symbols
    per class, the mean over all reference symbols, and the reference block mask.
    """
    from scipy.ndimage import minimum_filter

    sig = (z_ref >= Z_PRESENT) & usable
    # Keep only blocks whose whole coarse neighbourhood is significant, so the
    # border of a tampered region (half-significant windows) does not leak in.
    ref = minimum_filter(sig.astype(np.uint8), size=REFERENCE_BLOCKS // 2 + 1,
                         mode="nearest").astype(bool)
    if ref.sum() < 4:
        ref = sig
    mu = np.full(N_CLASSES, np.nan)
    counts = np.zeros(N_CLASSES, np.int64)
    wtot = w[ref].sum()
    overall = float((w * u)[ref].sum() / wtot) if wtot > 0 else 0.0
    for c in range(N_CLASSES):
        sel = ref & (cls == c)
        counts[c] = int(sel.sum()) * u.shape[-1]
        ww = w[sel]
        if counts[c] >= MIN_REFERENCE and ww.sum() > 0:
            mu[c] = float((ww * u[sel]).sum() / ww.sum())
    calibrated = ~np.isnan(mu)
    # Unclipped classes without enough reference take the nearest calibrated
    # unclipped class, never more than the overall mean (compression hurts flat
    # classes most, so borrowing from a busier class could overstate them). Partly
    # clipped classes are much weaker and vary: without a reference of their own
    # they expect nothing, i.e. they are inconclusive.
    n_tex = len(TEXTURE_EDGES) + 1
    have = np.flatnonzero(calibrated[:n_tex])
    for c in range(n_tex):
        if not calibrated[c]:
            mu[c] = (min(mu[have[np.argmin(np.abs(have - c))]], overall) if have.size
                     else overall)
    mu[n_tex:][~calibrated[n_tex:]] = 0.0
    # No class can expect more than its blocks show, all together, allowing for up to
    # MAX_MISSING_SHARE of them missing (see there).
    for c in range(N_CLASSES):
        sel = usable & (cls == c)
        ww = w[sel]
        if ww.sum() > 0:
            mu[c] = min(mu[c], float((ww * u[sel]).sum() / ww.sum()) / (1.0 - MAX_MISSING_SHARE))
    return np.maximum(mu, 0.0), calibrated, counts, overall, ref


def _shift(o: int, t: int, d: int) -> tuple[int, int]:
    """Move a grid origin ``o`` (pixels, 0..15) by ``d`` pixels, keeping it in 0..15
    by moving the tile phase ``t`` (blocks, modulo the dither period)."""
    o += d
    t += -(o // BLOCK_PX)
    return o % BLOCK_PX, t % DITHER_BLOCKS


def refine_origin(plane: np.ndarray, oy: int, ox: int, ty: int, tx: int,
                  tile_bits: np.ndarray, dither: np.ndarray, radius: int = 2
                  ) -> tuple[tuple[int, int, int, int], float]:
    """Hill-climb the grid origin by up to ``radius`` pixels per axis to the position
    where the expected symbols read strongest overall.

    The synchronisation search accepts a grid a pixel or two off when it still
    decodes (the payload has plenty of margin); the per-region evidence has none to
    spare, so the tamper map re-centres the grid first. Returns the origin and
    tile phase ``(oy, ox, ty, tx)`` and its overall z-score.
    """
    def score(cand):
        u, w, _, _ = symbol_evidence(plane, cand[0], cand[1], cand[2], cand[3],
                                     tile_bits, dither, stats=False)
        den = float(np.square(w).sum())
        return float((w * u).sum()) / math.sqrt(den) if den > 0 else -np.inf

    cur = (oy, ox, ty, tx)
    best = score(cur)
    moved = {(0, 0)}
    dy = dx = 0
    while True:
        step = None
        for sy, sx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            ny, nx = dy + sy, dx + sx
            if abs(ny) > radius or abs(nx) > radius or (ny, nx) in moved:
                continue
            moved.add((ny, nx))
            cand = (*_shift(oy, ty, ny)[:1], *_shift(ox, tx, nx)[:1],
                    _shift(oy, ty, ny)[1], _shift(ox, tx, nx)[1])
            if min(plane.shape[0] - cand[0], plane.shape[1] - cand[1]) < BLOCK_PX:
                continue
            sc = score(cand)
            if sc > best:
                best, step = sc, (ny, nx, cand)
        if step is None:
            return cur, best
        dy, dx, cur = step


#: A resampling estimate this close to the identity (matrix entries) may be noise:
#: the image's own luma is tried too and the grid that reads stronger is used.
NEAR_IDENTITY = 0.01


def _best_grid(rgb, location, tile_bits, dither):
    """The grid to analyse: the decoder's, re-centred (:func:`refine_origin`); when
    the decoder resampled by a near-identity transform, also the image's own luma at
    the corresponding origin, whichever reads stronger."""
    from ._detect import GridLocation, read_luma

    grid, best = refine_origin(location.plane, location.oy, location.ox, location.ty,
                               location.tx, tile_bits, dither)
    if (location.matrix is None
            or np.abs(np.asarray(location.matrix) - np.eye(2)).max() > NEAR_IDENTITY):
        return location, grid
    # Where the decoder's block (0, 0) lands in the image gives the own-luma origin.
    p = location.plane_to_image(np.array([[grid[0], grid[1]]], np.float64))[0]
    n = np.floor(np.round(p) / BLOCK_PX).astype(int)
    o = np.round(p).astype(int) - BLOCK_PX * n
    own = GridLocation(read_luma(rgb), int(o[0]), int(o[1]),
                       int((grid[2] - n[0]) % DITHER_BLOCKS), int((grid[3] - n[1]) % DITHER_BLOCKS),
                       None, rgb.shape[:2])
    grid2, score2 = refine_origin(own.plane, own.oy, own.ox, own.ty, own.tx, tile_bits,
                                  dither, radius=3)
    return (own, grid2) if score2 > best else (location, grid)


def _intact_spread(z: np.ndarray, e: np.ndarray, ref: np.ndarray, cls: np.ndarray
                   ) -> np.ndarray:
    """Spread of intact windows around their expectation, per block class.

    Measured on the reference blocks as ``-q05(z - E) / 1.645`` (the lower tail is
    the one that makes intact content read as missing; content makes it wider than
    N(0, 1) predicts after strong compression), floored at :data:`SIGMA_FLOOR`;
    classes with fewer than :data:`MIN_SPREAD_BLOCKS` reference blocks take the value
    of all reference blocks (1.0 when there are none).
    """
    resid = (z - e)[ref & (e > 0)]
    overall = (max(SIGMA_FLOOR, -float(np.quantile(resid, 0.05)) / 1.645)
               if resid.size >= MIN_SPREAD_BLOCKS else 1.0)
    sigma = np.full(N_CLASSES, overall)
    for c in range(N_CLASSES):
        r = (z - e)[ref & (e > 0) & (cls == c)]
        if r.size >= MIN_SPREAD_BLOCKS:
            sigma[c] = max(SIGMA_FLOOR, -float(np.quantile(r, 0.05)) / 1.645)
    return sigma


def block_classes(plane: np.ndarray, oy: int, ox: int, std: np.ndarray) -> np.ndarray:
    """Class of every block: texture bin of its luma standard deviation
    (:data:`TEXTURE_EDGES`), plus ``len(TEXTURE_EDGES) + 1`` when at least
    :data:`CLIPPED_FRACTION` of its pixels are clipped black or white (the embedder's
    change is cut off there, so such blocks carry a weaker mark: measured mean
    score 0.4-0.6 against 0.8-0.9 for unclipped busy blocks)."""
    nby, nbx = std.shape
    blocks = plane[oy:oy + nby * BLOCK_PX, ox:ox + nbx * BLOCK_PX].reshape(
        nby, BLOCK_PX, nbx, BLOCK_PX)
    clipped = ((blocks <= CLIP_LEVELS[0]) | (blocks >= CLIP_LEVELS[1])).mean(axis=(1, 3))
    texture = np.searchsorted(np.asarray(TEXTURE_EDGES), std, side="right")
    return texture + (len(TEXTURE_EDGES) + 1) * (clipped >= CLIPPED_FRACTION)


def _min_cut(llr: np.ndarray, nodes: np.ndarray, anchors: np.ndarray,
             beta: float) -> np.ndarray:
    """Exact MAP labelling (True = missing) of the ``nodes`` blocks under a Potts prior.

    Minimises ``sum_b [b missing] * llr_b + beta * (number of disagreeing neighbour
    pairs)`` over the 8-neighbourhood (diagonal pairs weigh ``beta / sqrt(2)``) by
    a minimum s-t cut (Greig, Porteous and Seheult 1989). ``anchors`` are blocks
    outside ``nodes`` fixed as present; any other block (no evidence, inconclusive,
    outside the image) couples to nothing.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, maximum_flow

    h, w = llr.shape
    ys, xs = np.nonzero(nodes)
    n = ys.size
    out = np.zeros((h, w), bool)
    if n == 0:
        return out
    index = np.full((h, w), -1, np.int64)
    index[ys, xs] = np.arange(n)
    source, sink = n, n + 1
    pay_if_present = np.maximum(-llr[ys, xs], 0.0)
    pay_if_missing = np.maximum(llr[ys, xs], 0.0)
    rows, cols, caps = [], [], []
    diag = beta / math.sqrt(2.0)
    for dy, dx, b in ((0, 1, beta), (1, 0, beta), (1, 1, diag), (1, -1, diag),
                      (0, -1, beta), (-1, 0, beta), (-1, -1, diag), (-1, 1, diag)):
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        ny, nx = np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)
        j = np.where(inside, index[ny, nx], -1)
        pair = j >= 0
        rows.append(np.flatnonzero(pair))
        cols.append(j[pair])
        caps.append(np.full(int(pair.sum()), b))
        pay_if_missing = pay_if_missing + b * (inside & ~pair & anchors[ny, nx])
    rows += [np.full(n, source), np.arange(n)]
    cols += [np.arange(n), np.full(n, sink)]
    caps += [pay_if_present, pay_if_missing]
    # maximum_flow needs integer capacities: a resolution of 1e-3 in log-likelihood.
    cap = np.round(np.concatenate(caps) * 1000.0).astype(np.int64)
    keep = cap > 0
    graph = coo_matrix((cap[keep].astype(np.int32), (np.concatenate(rows)[keep],
                                                     np.concatenate(cols)[keep])),
                       shape=(n + 2, n + 2)).tocsr()
    graph.sum_duplicates()
    flow = maximum_flow(graph, source, sink, method="dinic").flow
    residual = (graph - flow).tocsr()
    residual.data = np.maximum(residual.data, 0)
    residual.eliminate_zeros()
    reached = breadth_first_order(residual, source, directed=True,
                                  return_predecessors=False)
    label = np.zeros(n + 2, bool)
    label[reached] = True
    out[ys, xs] = label[:n]
    return out


def _refine_boundaries(state: np.ndarray, seeds: np.ndarray, num: np.ndarray,
                       den: np.ndarray, exp_num: np.ndarray, judged: np.ndarray,
                       reach: int) -> None:
    """Redraw the missing regions found by the windows block by block (in place).

    A window's verdict rests on all of its 25-81 blocks, so the centres of missing
    windows spill up to half a window past the true edge, unevenly (single-block
    spurs), and a bounding box drawn around them came out 16-80 px too large for
    a 160-px paste. Within ``reach`` blocks of the window verdicts
    (``seeds``), each block with evidence of its own is labelled by its own
    log-likelihood ratio between "intact" ``N(e_b, d_b)`` and "missing"
    ``N(0, d_b)`` (``n_b``, ``d_b``, ``e_b`` its ``sum(w u)``, ``sum(w^2)`` and
    ``sum(w mu)``) under a Potts smoothness prior (:data:`BOUNDARY_BETA`), solved
    exactly by a minimum cut; a 2x2-block opening then removes one-block-wide
    protrusions. Only regions that contain a window verdict are kept. Blocks
    without evidence of their own (``e_b / sqrt(d_b) <`` :data:`MIN_BLOCK_EVIDENCE`:
    partly clipped blocks whose class has no calibrated strength) cannot be
    placed on either side: a seed among them, or one next to a kept region, is
    inconclusive.
    """
    from scipy.ndimage import binary_opening

    with np.errstate(divide="ignore", invalid="ignore"):
        ok = den > 0
        llr = np.where(ok, exp_num * (num - exp_num / 2.0) / np.where(ok, den, 1.0), 0.0)
        evidence = np.where(ok, exp_num / np.sqrt(np.where(ok, den, 1.0)), 0.0)
    own = evidence >= MIN_BLOCK_EVIDENCE
    near = _dilate(seeds, reach) & judged
    cut = _min_cut(llr, near & own, own & judged & ~near, BOUNDARY_BETA)
    cut = binary_opening(cut, structure=np.ones((2, 2), bool))
    missing = _reconstruct(seeds & cut, cut)
    state[near & own] = PRESENT
    state[missing] = MISSING
    state[(seeds | (_dilate(missing, 1) & judged)) & ~own] = INCONCLUSIVE


def block_map(plane: np.ndarray, oy: int, ox: int, ty: int, tx: int,
              payload: Payload, key: bytes | str | None = None,
              window: int = WINDOW_BLOCKS, max_window: int = MAX_WINDOW_BLOCKS) -> dict:
    """Block-level tamper statistics on a luma plane with a known grid (see
    :func:`tamper_map`); returns a dict of ``(nby, nbx)`` arrays and calibration."""
    if window < 3 or window % 2 == 0 or max_window < window or max_window % 2 == 0:
        raise ValueError(f"window={window}, max_window={max_window}: use odd numbers of "
                         "blocks, 3 <= window <= max_window (e.g. 5 and 9)")
    k = normalize_key(key)
    layout = keyed_layout(k)
    tile_bits = expected_tile_bits(payload, k)
    u, w, mean, std = symbol_evidence(plane, oy, ox, ty, tx, tile_bits, layout.dither)
    usable = np.minimum(mean, 255.0 - mean) >= SATURATION_HEADROOM
    w = np.where(usable[..., None], w, 0.0)
    cls = block_classes(plane, oy, ox, std)

    num = (w * u).sum(axis=-1)
    den = np.square(w).sum(axis=-1)
    z_ref, _ = _window_z(num, den, den, REFERENCE_BLOCKS)
    mu, calibrated, counts, overall, ref = _calibrate(u, w, usable, cls, z_ref)
    exp_num = w.sum(axis=-1) * mu[cls]
    sigma_cls = _intact_spread(*_window_z(num, den, exp_num, window), ref, cls)
    sigma = sigma_cls[cls]
    e_min = Z_ERROR * (1.0 + sigma)

    # Each block is judged on the smallest window whose intact expectation reaches
    # Z_ERROR * (1 + sigma): full resolution where the mark is strong, larger windows
    # where it is weak, "inconclusive" where even the largest cannot separate.
    shape = num.shape
    z = np.zeros(shape)
    e = np.zeros(shape)
    used = np.zeros(shape, np.int64)
    conclusive = np.zeros(shape, bool)
    n_usable_frac = _box_sum(usable.astype(np.float64), max_window) / _box_sum(
        np.ones(shape), max_window)
    for kk in range(window, max_window + 1, 2):
        zk, ek = _window_z(num, den, exp_num, kk)
        ok = ~conclusive & (ek >= e_min) & usable
        if kk == max_window:
            ok |= ~conclusive & ~ok  # the largest window's figures for the rest
        z[ok] = zk[ok]
        e[ok] = ek[ok]
        used[ok] = kk
        conclusive |= (ek >= e_min) & usable & ok
    conclusive &= n_usable_frac >= 0.25
    state = np.full(shape, PRESENT, np.uint8)
    state[~conclusive] = INCONCLUSIVE
    seeds = conclusive & (z < np.minimum(e / (1.0 + sigma), Z_PRESENT))
    state[seeds] = MISSING
    if seeds.any():
        _refine_boundaries(state, seeds, num, den, exp_num, usable & conclusive,
                           max_window // 2)
    return {"z": z, "expected": e, "state": state, "window": used, "mu": mu,
            "sigma": sigma_cls, "calibrated": calibrated, "reference_counts": counts,
            "overall_mu": overall,
            "usable": usable, "classes": cls}


class _Mapping:
    """Block index of every image pixel (``-1`` outside the analysed grid)."""

    def __init__(self, location, h: int, w: int, nby: int, nbx: int,
                 origin: tuple[int, int]):
        self.h, self.w, self.nby, self.nbx = h, w, nby, nbx
        self.oy, self.ox = origin
        self.aligned = location.matrix is None
        if not self.aligned:
            py, px = _image_to_plane(location, h, w)
            iy = np.floor((py - self.oy) / BLOCK_PX + 0.5 / BLOCK_PX).astype(np.int32)
            ix = np.floor((px - self.ox) / BLOCK_PX + 0.5 / BLOCK_PX).astype(np.int32)
            inside = (iy >= 0) & (iy < nby) & (ix >= 0) & (ix < nbx)
            self.flat = np.where(inside, iy * nbx + ix, -1).astype(np.int32)

    def expand(self, arr: np.ndarray, fill) -> np.ndarray:
        """``(nby, nbx)`` block array -> ``(H, W)`` image array (``fill`` outside)."""
        if self.aligned:
            out = np.full((self.h, self.w), fill, dtype=arr.dtype)
            y1 = min(self.h, self.oy + self.nby * BLOCK_PX)
            x1 = min(self.w, self.ox + self.nbx * BLOCK_PX)
            big = np.repeat(np.repeat(arr, BLOCK_PX, axis=0), BLOCK_PX, axis=1)
            out[self.oy:y1, self.ox:x1] = big[:y1 - self.oy, :x1 - self.ox]
            return out
        ext = np.append(arr.reshape(-1), np.asarray(fill, dtype=arr.dtype))
        return ext[self.flat]  # index -1 picks the appended fill value


def _image_to_plane(loc, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Plane coordinates (float32 maps) of every image pixel, by inverting the affine
    map :meth:`GridLocation.plane_to_image` (exact: that map is affine)."""
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    img = loc.plane_to_image(pts)
    t = img[0]
    a = np.stack([img[1] - t, img[2] - t], axis=1)  # image = a @ plane + t
    inv = np.linalg.inv(a)
    yy = np.arange(h, dtype=np.float64)[:, None] - t[0]
    xx = np.arange(w, dtype=np.float64)[None, :] - t[1]
    py = inv[0, 0] * yy + inv[0, 1] * xx
    px = inv[1, 0] * yy + inv[1, 1] * xx
    return py.astype(np.float32), px.astype(np.float32)


def _regions(block_mask: np.ndarray, mapping: _Mapping, min_area: int) -> list[dict]:
    """Connected regions (8-connected, on the block grid) as image bounding boxes."""
    from scipy.ndimage import find_objects, label

    lab, n = label(block_mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return []
    img = mapping.expand(lab.astype(np.int32), 0)
    areas = np.bincount(img.reshape(-1), minlength=n + 1)
    out = []
    for i, sl in enumerate(find_objects(img, max_label=n), start=1):
        if sl is None or areas[i] < min_area:
            continue
        out.append({"top": int(sl[0].start), "left": int(sl[1].start),
                    "height": int(sl[0].stop - sl[0].start),
                    "width": int(sl[1].stop - sl[1].start), "area_px": int(areas[i])})
    out.sort(key=lambda r: -r["area_px"])
    return out


def tamper_map(image, location, payload: Payload, *, key: bytes | str | None = None,
               window: int = WINDOW_BLOCKS, max_window: int = MAX_WINDOW_BLOCKS
               ) -> TamperMap:
    """Where the decoded mark is present, missing or cannot be judged.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray or PIL.Image.Image
        The examined image (only its size is used; the pixels come from ``location``).
    location : provmark._detect.GridLocation
        From :func:`provmark._detect.locate`: the luma plane the decoder read (the
        image's own, or a resampled copy), the grid origin and the tile phase.
    payload : Payload
        The decoded payload (from the same detection).
    key : bytes or str or None, optional
        The key used for detection.
    window, max_window : int, default 5 and 9
        Odd window sides in 16-px blocks. Each block is judged on the smallest
        window (from ``window`` up to ``max_window``) in which an intact mark would
        be expected to reach ``Z_ERROR * (1 + sigma)``: 80 px where the mark is strong, up to 144 px
        where it is weak.

    Returns
    -------
    TamperMap
        Block-level statistics, image-sized maps (computed on first access) and a
        JSON-ready ``summary``.

    Notes
    -----
    See the module docstring (and ``docs/inspect.md``) for the statistic, its null
    distribution and the thresholds.

    Examples
    --------
    >>> import provmark
    >>> from provmark._detect import locate
    >>> det, loc = locate(image)  # doctest: +SKIP
    >>> tm = tamper_map(image, loc, det.payload)  # doctest: +SKIP
    >>> tm.summary["missing_fraction"]  # doctest: +SKIP
    0.25
    """
    from ._image import as_rgb_array

    rgb, _ = as_rgb_array(image)
    h, w = rgb.shape[:2]
    k = normalize_key(key)
    location, (oy, ox, ty, tx) = _best_grid(rgb, location, expected_tile_bits(payload, k),
                                            keyed_layout(k).dither)
    bm = block_map(location.plane, oy, ox, ty, tx, payload, k, window, max_window)
    st = bm["state"]
    mapping = _Mapping(location, h, w, *st.shape, origin=(oy, ox))
    state_img = mapping.expand(st, np.uint8(NOT_ANALYSED))
    counts = np.bincount(state_img.reshape(-1), minlength=4)
    analysed = int(counts[1:].sum())
    frac = {name: (float(counts[code]) / analysed if analysed else 0.0)
            for code, name in STATE_NAMES.items() if code != NOT_ANALYSED}
    block_area = BLOCK_PX * BLOCK_PX
    regions = _regions(st == MISSING, mapping, MIN_REGION_BLOCKS * block_area)
    inc_regions = _regions(st == INCONCLUSIVE, mapping, block_area)
    used = bm["window"][st != INCONCLUSIVE]
    summary = {
        "available": True,
        "missing_fraction": frac["missing"],
        "inconclusive_fraction": frac["inconclusive"],
        "present_fraction": frac["present"],
        "analysed_fraction": analysed / float(h * w),
        "missing_regions": regions[:20],
        "missing_region_count": len(regions),
        "inconclusive_regions": inc_regions[:20],
        "window_px": [window * BLOCK_PX, max_window * BLOCK_PX],
        "median_window_px": int(np.median(used)) * BLOCK_PX if used.size else None,
        "resampled": not mapping.aligned,
        "verdict": ("mark missing in part of the image" if regions
                    else "mark present wherever it can be judged"),
        "method": (f"z-score of the expected symbols over {window}..{max_window}-block "
                   f"windows ({window * BLOCK_PX}-{max_window * BLOCK_PX} px; N(0,1) "
                   "without the mark); missing when z < min(E/(1+s), "
                   f"{Z_PRESENT}), E the texture-calibrated expectation of an intact mark "
                   f"and s its measured spread, decided only where E >= {Z_ERROR}(1+s) "
                   "(each error <= 1% per window); inconclusive elsewhere and where the "
                   "content is saturated; near a missing window each block is then "
                   "relabelled on its own evidence (likelihood ratio, Potts prior, minimum "
                   "cut), blocks without evidence of their own there inconclusive"),
        "calibration": _calibration_summary(bm),
    }
    return TamperMap(block_z=bm["z"], block_expected=bm["expected"], block_state=st,
                     block_window=bm["window"], origin=(oy, ox),
                     shape=(h, w), resampled=not mapping.aligned, summary=summary,
                     _mapping=mapping, _state=state_img)


def _calibration_summary(bm: dict) -> dict:
    n = len(TEXTURE_EDGES) + 1
    mu = [round(float(v), 3) if ok else None for v, ok in zip(bm["mu"], bm["calibrated"])]
    return {"texture_edges": list(TEXTURE_EDGES),
            "mu_by_texture": mu[:n], "mu_by_texture_partly_clipped": mu[n:],
            "spread_by_texture": [round(float(v), 3) for v in bm["sigma"][:n]],
            "reference_symbols": [int(v) for v in bm["reference_counts"]],
            "overall_mu": round(float(bm["overall_mu"]), 3)}


def unavailable_summary(reason: str) -> dict:
    """The tamper summary when no map can be computed (no decoded watermark)."""
    return {"available": False, "reason": reason}
