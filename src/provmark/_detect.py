"""``provmark.detect``: read the mark back and decide, with a calibrated false-alarm
probability, whether it is there.

Steps: RGB -> float luma -> coefficient pairs of every block -> soft angle-QIM
scores folded over every tile repetition -> pilot correlation (sync score) ->
the 400 channel values, each observation weighted by what the pilot says about its
class (:func:`calibrated_scores`) -> Viterbi, then RS/CRC decoding with erasures (see
:mod:`provmark._codec`) -> :class:`Detection`. When the aligned grid does not
decode: template geometry, grid search, and with ``search="exhaustive"`` a sweep of
scales and rotations (:func:`_sweep`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, TypedDict

import numpy as np

from . import _codec
from ._image import as_rgb_array
from ._keys import key_fingerprint, normalize_key
from ._layout import (BLOCK_PX, DITHER_BLOCKS, EXTENSION_PAIRS, PAIRS, TILE_BLOCKS, TILE_PX,
                      extension_dither, keyed_layout)
from ._payload import Payload
from ._template import (MAX_FACTOR, AffineEstimate, CoherentSpectrum, coherent_grid,
                        coherent_search, grid_shape, lock_breadth, phase_lock, refine_affine,
                        refine_scales, refine_uncropped, rotation_sweep_grids,
                        scale_sweep_grids,
                        template_estimates, template_factor, uncropped_sweep, warp_from_origin,
                        warp_to_grid)
from .kernels import DCT8_64, aqim_soft_observe, luma_pair_coeffs, rgb_to_luma

if TYPE_CHECKING:
    from ._sync import SyncCandidate

_C64 = DCT8_64
#: Copies smaller than this (pixels, either side) are answered "not found" at once.
#: A copy under one tile (256 px) is still read: a downscaled copy of a larger
#: source is resampled back onto the grid by the template search.
MIN_READ_SIDE = 64
#: ``found`` requires the false-alarm probability to be at most this.
MAX_FALSE_ALARM = 1e-9
#: Per-observation soft scores are clipped to +-SOFT_CLIP (robust to outlier blocks).
SOFT_CLIP = 2.0
SOFT_SCALE = 0.25
SOFT_RELATIVE = 0.3


@dataclass(frozen=True)
class Detection:
    """Result of :func:`provmark.detect`.

    Attributes
    ----------
    found : bool
        True only when RS and CRC decoding agree and the false-alarm probability is
        at most 1e-9.
    payload : Payload or None
        The decoded payload when ``found``; never a guess otherwise.
    false_alarm_probability : float
        Upper bound on the probability that an unmarked image (or a wrong key) yields
        this result (decoder arithmetic x pilot evidence x hypotheses searched); 1.0
        when nothing was decoded.
    sync_score : float
        Pilot correlation z-score (about N(0, 1) without a mark; tens when marked).
    corrected_symbols, erasures : int
        Reed-Solomon byte errors corrected and bytes erased in the accepted decoding.
    hypotheses : int
        Synchronisation hypotheses tried (grid offset, scale, ...).
    offset : tuple of int
        Pixel offset ``(dy, dx)`` of the embedding grid found in the image.
    scale : float
        Estimated resize factor of the image relative to the marked original (of
        the grid that decoded: 2 when it is read on the copy reduced by 2,
        ``details["layer"] == "coarse"``, which is the coarse layer of an unresized
        copy or the fine mark of a copy enlarged twice; the two cannot be told apart).
    rotation : float
        Estimated rotation in degrees.
    blocks_used : int
        Number of 16x16-pixel blocks read.
    bit_reliability : float
        Mean |soft score| of the code bits (0 = noise, ~1 = clean).
    key_fingerprint : str
        Public fingerprint of the key used to read.
    reason : str
        Why nothing was found, or "decoded".
    details : SearchReport
        How the search went (a documented dict: :class:`SearchReport`); for
        explanations and analyses, not part of the stable result.
    """

    found: bool
    payload: Payload | None
    false_alarm_probability: float
    sync_score: float = 0.0
    corrected_symbols: int = 0
    erasures: int = 0
    hypotheses: int = 1
    offset: tuple[int, int] = (0, 0)
    scale: float = 1.0
    rotation: float = 0.0
    blocks_used: int = 0
    bit_reliability: float = 0.0
    key_fingerprint: str = ""
    reason: str = ""
    details: SearchReport = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict:
        """JSON-ready dictionary (payload expanded)."""
        d = {
            "found": self.found,
            "payload": None if self.payload is None else {
                "version": self.payload.version, "label": self.payload.label,
                "label_meaning": self.payload.label_meaning,
                "provider": self.payload.provider, "content_id": self.payload.content_id},
            "false_alarm_probability": self.false_alarm_probability,
            "sync_score": self.sync_score,
            "corrected_symbols": self.corrected_symbols,
            "erasures": self.erasures,
            "hypotheses": self.hypotheses,
            "offset": list(self.offset),
            "scale": self.scale,
            "rotation": self.rotation,
            "blocks_used": self.blocks_used,
            "bit_reliability": self.bit_reliability,
            "key_fingerprint": self.key_fingerprint,
            "reason": self.reason,
        }
        return d


def pilot_p_value(z: float) -> float:
    """One-sided tail bound ``P(Z >= z) <= exp(-z**2/2)`` of the pilot statistic.

    Under the null hypothesis the pilot bits are key-random and independent of the
    image, so the signed sum is a Rademacher sum with fixed magnitudes; Hoeffding's
    inequality gives the bound without assuming a distribution for the scores.
    """
    return 1.0 if z <= 0 else math.exp(-0.5 * z * z)


def read_luma(rgb: np.ndarray) -> np.ndarray:
    y = np.empty(rgb.shape[:2], np.float32)
    rgb_to_luma(rgb, y)
    return y


def coarse_plane(y: np.ndarray) -> np.ndarray:
    """The luma reduced by 2 (the mean of every 2x2 cell: INTER_AREA's exact
    halving), where the coarse layer's grid lies (:data:`provmark._embed.COARSE_MIN_SIDE`)."""
    import cv2

    h, w = y.shape[0] // 2, y.shape[1] // 2
    return cv2.resize(y[:2 * h, :2 * w].astype(np.float32, copy=False), (w, h),
                      interpolation=cv2.INTER_AREA)


#: The coarse layer is read on a copy whose reduced plane holds at least this many
#: pixels a side (a whole tile needs 256; a crop keeps part of one).
COARSE_READ_SIDE = 128


def read_both(rgb: np.ndarray, key: bytes) -> tuple[Payload | None, Payload | None]:
    """The payloads decoded on the aligned grids of the fine mark and of the coarse
    layer (None where nothing decodes): the embedder's check."""
    y = read_luma(rgb)
    return _read_plane(y, key), _read_plane(coarse_plane(y), key)


def read_coarse(rgb: np.ndarray, key: bytes) -> Payload | None:
    """The payload of the coarse layer on its aligned grid, or None."""
    return _read_plane(coarse_plane(read_luma(rgb)), key)


def _read_plane(plane: np.ndarray, key: bytes) -> Payload | None:
    from ._sync import SyncCandidate

    return _attempt(plane, key, SyncCandidate(0.0, 0, 0, 0, 0), 1).evaluation.result.payload


def soft_scores(coef: np.ndarray, dither: np.ndarray, ty: int = 0, tx: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Folded soft scores ``(T, T, P)`` and observation counts from coefficient pairs
    ``(nby, nbx, P, 2)`` (tile phase ``(ty, tx)`` in blocks)."""
    seen = observe(coef, dither, ty, tx)
    return seen.folded(), seen.counts()


@dataclass(frozen=True)
class Observations:
    """Every coefficient pair's soft observation: ``score`` its clipped, normalised
    decision margin (positive means bit 0), ``slot`` the flat tile slot it folds into
    and ``radius`` the pair's radius, all flat (one per pair); ``shape`` the folded
    tile's ``(T, T, P)``. The plain fold (:meth:`folded`) and the pilot-calibrated
    one (:func:`calibrated_scores`) both read them: a grid is demodulated once."""

    score: np.ndarray
    slot: np.ndarray
    radius: np.ndarray
    shape: tuple[int, int, int]

    def folded(self) -> np.ndarray:
        """The plain fold: every observation summed into its slot."""
        n = math.prod(self.shape)
        return np.bincount(self.slot, self.score, n).reshape(self.shape)

    def counts(self) -> np.ndarray:
        """Observations per slot (float)."""
        n = math.prod(self.shape)
        return np.bincount(self.slot, minlength=n).astype(np.float64).reshape(self.shape)


def observe(coef: np.ndarray, dither: np.ndarray, ty: int = 0, tx: int = 0) -> Observations:
    """Soft-demodulate coefficient pairs ``(nby, nbx, P, 2)`` at tile phase ``(ty, tx)``
    with the detector's noise model."""
    # A margin is divided by the noise expected on it: a gain-invariant floor (the
    # median pair radius: contrast changes scale every margin alike) plus a part
    # proportional to the pair's own radius (block-DCT leakage under blur and
    # compression turns strong pairs by a small angle). Clipping keeps any single
    # block from dominating the sum. Tuned on JPEG/WebP/blur (benchmarks/RESULTS.md).
    coef = np.ascontiguousarray(coef, dtype=np.float32)
    radius = np.hypot(coef[..., 0], coef[..., 1])
    scale = max(float(np.median(radius)) * SOFT_SCALE, 1e-3)
    return _observations(coef, dither, ty, tx, scale, SOFT_RELATIVE, SOFT_CLIP, TILE_BLOCKS,
                         radius.ravel())


def fold_observations(coef, dither, ty, tx, scale, rel, clip, tsz=TILE_BLOCKS):
    """Every pair's clipped, normalised decision margin summed into its tile slot:
    the folded scores ``(tsz, tsz, P)`` (positive means bit 0) and the observation
    count of each slot."""
    seen = _observations(np.ascontiguousarray(coef), dither, ty, tx, scale, rel, clip, tsz,
                         None)
    return seen.folded(), seen.counts()


def _observations(coef, dither, ty, tx, scale, rel, clip, tsz, radius) -> Observations:
    """The kernel :func:`provmark.kernels.aqim_soft_observe` on ``coef``."""
    score = np.empty(coef.shape[:3], np.float64)
    slot = np.empty(coef.shape[:3], np.int64)
    aqim_soft_observe(coef, dither, ty, tx, tsz, scale, rel, clip, score, slot)
    return Observations(score.ravel(), slot.ravel(), radius, (tsz, tsz, coef.shape[2]))


#: Observation classes (quantiles of the pair radius) that the pilot calibrates.
CALIBRATION_CLASSES = 8
#: A class with fewer pilot observations than this takes the weight of all of them.
MIN_CLASS_PILOTS = 16
#: Regularises a class weight ``mu / (var + CALIBRATION_REG * mu**2)``: a class whose
#: few pilot observations happen to agree exactly must not drown the others.
CALIBRATION_REG = 0.25


@lru_cache(maxsize=16)
def _pilot_signs(key: bytes) -> np.ndarray:
    """(N_SLOTS,) float: +1 / -1 on pilot slots carrying bit 0 / 1, 0 on code slots."""
    layout = keyed_layout(key)
    sign = np.zeros(TILE_BLOCKS * TILE_BLOCKS * PAIRS.shape[0])
    sign[layout.pilot_slots] = 1.0 - 2.0 * layout.pilot_bits
    sign.setflags(write=False)
    return sign


def calibrated_scores(coef: np.ndarray | None, key: bytes, ty: int = 0, tx: int = 0,
                      seen: Observations | None = None) -> np.ndarray:
    """Folded soft scores (flat, one per tile slot) with every observation weighted by
    the reliability of its class, as measured on the pilot.

    The plain fold (:func:`soft_scores`) gives every pair the same weight function of
    its margin. After compression that is far from the log-likelihood ratio: on a
    smooth photo (a sky) most pairs are small and carry nothing (measured on rocket,
    512x512, WebP q50: pairs of radius < 7 read right 50% of the time, but weighed as
    much as the 85%-right textured ones). The pilot's 112 known bits tell, per class
    of pair radius, the mean ``mu`` and variance ``var`` of the observations signed by
    their bit; each class is weighted ``mu / var`` (the matched-filter weight of a
    Gaussian observation; negative means are set to 0). On 240 attacked copies (WebP,
    JPEG 20, blur, the combined attack; ``benchmarks/calibration_comparison.py``) the
    calibrated fold decoded 237, the plain one 231.

    The weights come from pilot slots only, which the code slots do not share, and
    the keyed whitening makes the decoded word uniform under the null whatever the
    weights: the false-alarm bound of :mod:`provmark._codec` is unchanged. The pilot
    *score* (the sync z) is computed from the unweighted fold, so this fit does not
    inflate it.
    """
    if seen is None:
        seen = observe(coef, keyed_layout(key).dither, ty, tx)
    obs, slot, radius = seen.score, seen.slot, seen.radius
    sign = _pilot_signs(key)[slot]
    pilot = sign != 0
    n_slots = TILE_BLOCKS * TILE_BLOCKS * PAIRS.shape[0]
    if pilot.sum() < MIN_CLASS_PILOTS:
        return np.bincount(slot, obs, n_slots)

    def weights(n, s1, s2):
        # mu / (var + reg mu^2) of the signed pilot observations, from their count
        # and first two sums (one pass per class instead of a mask each)
        mu = s1 / np.maximum(n, 1)
        var = np.maximum(s2 / np.maximum(n, 1) - mu * mu, 0.0)
        return np.maximum(mu, 0.0) / np.maximum(var + CALIBRATION_REG * mu * mu, 1e-12)

    edges = np.quantile(radius, np.linspace(0.0, 1.0, CALIBRATION_CLASSES + 1)[1:-1])
    cls = np.searchsorted(edges, radius)
    v = obs[pilot] * sign[pilot]
    in_class = cls[pilot]
    n = np.bincount(in_class, minlength=CALIBRATION_CLASSES).astype(np.float64)
    s1 = np.bincount(in_class, v, CALIBRATION_CLASSES)
    s2 = np.bincount(in_class, v * v, CALIBRATION_CLASSES)
    overall = weights(n.sum(), s1.sum(), s2.sum())
    w = np.where(n >= MIN_CLASS_PILOTS, weights(n, s1, s2), overall)
    if not np.any(w > 0):  # the pilot says nothing (no mark): the plain fold
        w[:] = 1.0
    return np.bincount(slot, obs * w[cls], n_slots)


def grid_pairs(y: np.ndarray, oy: int = 0, ox: int = 0,
               maps: np.ndarray | None = None) -> np.ndarray:
    """Coefficient pairs ``(nby, nbx, P, 2)`` of every whole block of the grid at
    pixel origin ``(oy, ox)``; read from ``maps`` (the plane's
    :func:`provmark._sync.pair_coefficient_maps`) when they were computed already."""
    nby = (y.shape[0] - oy) // BLOCK_PX
    nbx = (y.shape[1] - ox) // BLOCK_PX
    if maps is not None:
        grid = maps[:, :, oy::BLOCK_PX, ox::BLOCK_PX][:, :, :nby, :nbx]
        return np.ascontiguousarray(grid.transpose(2, 3, 0, 1))
    coef = np.empty((nby, nbx, PAIRS.shape[0], 2), np.float32)
    luma_pair_coeffs(y, oy, ox, PAIRS, _C64, coef)
    return coef


def extension_observations(y: np.ndarray, cand: SyncCandidate, key: bytes) -> Observations:
    """The extension carriers' observations (:data:`provmark._layout.EXTENSION_PAIRS`)
    on the grid ``cand`` of the plane ``y``, with the detector's noise model
    (:func:`observe`) and their own dither."""
    nby = (y.shape[0] - cand.oy) // BLOCK_PX
    nbx = (y.shape[1] - cand.ox) // BLOCK_PX
    coef = np.empty((nby, nbx, EXTENSION_PAIRS.shape[0], 2), np.float32)
    luma_pair_coeffs(np.ascontiguousarray(y, dtype=np.float32), cand.oy, cand.ox,
                     EXTENSION_PAIRS, _C64, coef)
    return observe(coef, extension_dither(key), cand.ty, cand.tx)


@dataclass(frozen=True)
class Evaluation:
    """Pilot statistic and decoding of one folded score tile (:func:`evaluate`)."""

    z: float  # pilot z-score
    result: _codec.DecodeResult
    reliability: float  # mean |soft score| of the code bits, scaled to the largest
    list_size: int = _codec.LIST_SIZE  # inner-decoder words tried (the bound counts them)


def pilot_z(score: np.ndarray, key: bytes) -> float:
    """The pilot's z-score on one folded score tile: its 112 known bits' scores,
    signed by the bits, summed, over the root of their sum of squares (about N(0, 1)
    without the mark)."""
    layout = keyed_layout(key)
    pilot = score.reshape(-1)[layout.pilot_slots]
    norm = math.sqrt(float(np.square(pilot).sum()))
    return float(((1.0 - 2.0 * layout.pilot_bits) * pilot).sum() / norm) if norm > 0 else 0.0


def evaluate(score: np.ndarray, key: bytes, code_score: np.ndarray | None = None,
             words_for: Callable[[float], int] | None = None) -> Evaluation:
    """Pilot statistic of one folded score tile, and decoding of its code slots (of
    ``code_score``, the calibrated fold, when given). Where the short list finds no
    codeword, ``words_for(z)`` (a search's :meth:`_Search.words_for`) may ask for a
    longer one than :data:`EXTENDED_LIST_Z` would."""
    layout = keyed_layout(key)
    z = pilot_z(score, key)
    flat = score.reshape(-1) if code_score is None else code_score.reshape(-1)
    # Positive score means bit 0; the codec wants positive = bit 1.
    soft = -flat[layout.code_slots]
    scale = float(np.mean(np.abs(flat))) or 1.0
    result = _codec.decode_channel(soft / scale, key)
    words = _codec.LIST_SIZE
    if result.payload is None and z >= EXTENDED_LIST_Z:
        words = _codec.EXTENDED_LIST_SIZE
        result = _codec.decode_channel(soft / scale, key, list_size=words)
    if result.payload is None and words_for is not None:
        more = words_for(z)  # (the shorter lists' words are its first: counted once)
        if more > words:
            words = more
            result = _codec.decode_channel(soft / scale, key, list_size=words)
    coded = soft / max(float(np.abs(soft).max()), 1e-12)
    return Evaluation(z, result, float(np.mean(np.abs(coded))), words)


#: A grid whose pilot z reaches this and whose short list found no codeword is decoded
#: again with the longer list (:data:`provmark._codec.EXTENDED_LIST_SIZE`). The list
#: size depends on the pilot slots only, which the code slots do not share: under the
#: null the decoded words stay uniform whatever the pilot says, and the bound counts
#: the words each attempt tried. An unmarked corpus copy's best pilot z is 5.8 at most
#: in 10,000 detections (usually 4-5), so the longer list almost never runs there.
EXTENDED_LIST_Z = 5.5
#: Longer lists still (:meth:`_Search.words_for`): the bound of an attempt is its
#: list's words times the pilot's tail over the hypotheses searched so far, so a grid
#: read early (few hypotheses) with a strong pilot can afford many more words than 16
#: and stay far under MAX_FALSE_ALARM. From LONG_LIST_Z, the list is as long as keeps
#: that attempt's bound, were it to decode, under LONG_LIST_SHARE of MAX_FALSE_ALARM
#: (at most LONG_LIST_MAX words, about 0.4 s; at most LONG_LIST_ATTEMPTS such lists a
#: detection). Each word tried counts in the bound whether the attempt decodes or
#: not, so a long list that fails makes later attempts' bounds larger: the share is
#: kept small (bar15, session 23: none of its copies was lost to it). An unmarked
#: image's aligned grid reads z >= 4.5 about once in 300,000, and by the time a search
#: has read many hypotheses, a pilot that high no longer affords a long list. Measured
#: on bar15: from z 5.0, +10 copies (the aligned grids of JPEG'd, WebP'd and contrasted
#: small images, crops whose template locked early); from 4.5, 2 more.
LONG_LIST_Z = 4.5
LONG_LIST_MAX = 1024
LONG_LIST_SHARE = 0.1
LONG_LIST_ATTEMPTS = 2


#: A grid whose pilot z is under this is read but not decoded: the pilot and the
#: code slots carry the mark alike, and no decodable copy shows so weak a pilot (the
#: weakest of bar15's 4646 decoded copies read 3.62, 1 under 4.0, 5 under 4.5;
#: session 19). An unmarked image's aligned grid and coarse plane read about N(0, 1),
#: so their two decodings (4-9 ms of its detection) are skipped 99% of the time. The
#: choice reads pilot slots only, which the code slots do not share: a grid that is
#: decoded decodes a null image with the same probability as before, and one that is
#: not counts nothing in the bound.
DECODE_MIN_Z = 2.5
#: A grid whose carriers did not decode is decoded again with the extension carriers
#: (:meth:`_Search._add`) where their own pilot reaches this: an unmarked image's or
#: a mark without them reads about N(0, 1) there, so 2% of such grids pay a second
#: decoding (counted in the bound). The smooth images' compressed copies that needed
#: them read 2.3-6.9 (benchmarks/RESULTS.md, session 25).
EXTENSION_MIN_Z = 2.0
#: The blind search of the coarse plane (:meth:`_Search.blind_coarse`) runs on copies
#: where at least this share of the aligned grid's blocks is flat (every carrier
#: pair's radius under :data:`FLAT_RADIUS`): the smooth images that carry a coarse
#: layer.
BLIND_COARSE_FLAT_SHARE = 0.75
FLAT_RADIUS = 8.0


def flat_share(y: np.ndarray) -> float:
    """Share of the aligned grid's blocks whose carrier pairs all have a radius under
    :data:`FLAT_RADIUS` (the grid the detection read first: cached)."""
    coef = grid_pairs(y)
    if coef.size == 0:
        return 0.0
    r2 = np.square(coef).sum(axis=3).max(axis=2)
    return float(np.mean(r2 < FLAT_RADIUS**2))


#: Grid candidates from the synchronisation search that are decoded.
SEARCH_DECODES = 3
#: ... except the blind search's (:meth:`_Search.blind`), where only the best is: the
#: copies it decoded were always its best candidate (bar15, session 19: 15 copies;
#: a scratch run with every other stage off on 70% crops under JPEG 50 and 30 and on
#: the combined attack, corpus images up to 2.5 MP: 116 more, and 35 read nothing at
#: any of the three), while the 2nd and 3rd were decoded on every unmarked image
#: (5-7 ms). A true grid ranked behind a noise peak scores under it (about 4.5 at
#: most on an unmarked copy), where decoding rarely succeeds (5 of bar15's 4646
#: decoded copies read under 4.5).
BLIND_DECODES = 1
#: A coherent template match (:func:`provmark._template.phase_lock`) at least this
#: strong sends the pilot search to the pixel phases around it. The best of the
#: 4096-65536 shifts of an unmarked plane scored 2.1-4.8 (scikit-image photos, their
#: crops and resized copies); marked copies after a crop, resize, rotation or aspect
#: change 8-19. A lock only decides where the pilot looks: a wrong one costs time,
#: never a false alarm (the decoder and the pilot must still agree).
LOCK_Z = 5.5
#: Resampled planes larger than this (pixels a side) are locked on a central window
#: first; planes over MAX_PLANE_PIXELS (a copy read as a strong downscale of a huge
#: source) are not resampled at all.
LOCK_WINDOW = 1024
#: Copies of at least this many pixels are also read by the geometry of the mark's own
#: period (:meth:`_Search.self_reference`): the period's comb of spectral lines misleads
#: the template's search on large flat copies that hold many periods (ukui-city,
#: 3640x2400, and its x0.5 copy of 2.2 MP), and a flat source whose template was
#: given up (ukui-city again: it disturbed the mark) has no other sign of its
#: geometry. Its screenshot (x0.35 to 1200x764, 0.92 MP, border cropped, JPEG 80)
#: showed the period's lattice (the coarse layer's at 2x2 tiles, the fine one's at 2
#: tiles), and the coarse layer read there at pilot z 9, where no other stage found
#: the scale (session 22; the limit was 2.1 MP). Under 0.5 MP (a 512x512 copy) the
#: autocorrelation is not computed: such a copy of a flat source holds too few
#: periods for a lattice, and the unmarked detection there is at its 80 ms bar. The
#: autocorrelation costs about 5 ms on a 1200x764 copy and 7-12 on a 1920x1080 one.
PERIOD_MIN_PIXELS = 500_000
#: Period geometries also searched without a template lock (each a pilot search of
#: the central window of the resampled copy, at most this many pixels a side): the
#: first readings of the strongest lattice (one and two tiles).
PERIOD_PILOT_ONLY = 2
PERIOD_PILOT_WINDOW = 1024
MAX_PLANE_PIXELS = 40_000_000
#: Geometry estimates of the template search that are resampled and locked.
TEMPLATE_ESTIMATES = 3
#: Estimates searched coherently (:meth:`_Search.coherent_estimates`) when those
#: locks did not decode: the magnitude search ranked the true geometry of the failed
#: copies of small screenshots, a night map and busy photos among its first 8, but
#: 1-2% off (`benchmarks/geometry_failures.py`, session 14).
COHERENT_ESTIMATES = 8
#: A coherent score this high sends its geometry to the lock (at most
#: :data:`COHERENT_LOCKS` of them, best first). The best of an unmarked copy's eight
#: grids scored 4.3-6.45 (356 resized, rotated and squashed corpus copies; 3% at 6.0 or
#: more); copies whose template the magnitude search missed, 6.4-9.0 where their
#: true geometry was in the grids. Like a lock, it only decides where to look.
COHERENT_Z = 6.0
COHERENT_LOCKS = 2
#: The coherent scale sweep (:meth:`_Search.coherent_scales`): its best scales scoring
#: at least this are locked (at most :data:`SCALE_SWEEP_LOCKS`). Measured (session 14)
#: on the plain resizes the other stages lose: 4.8-8.5 at the true scale, the sweep's
#: best on all 10; 3.6-5.35 on the same copies of the unmarked images.
SCALE_SWEEP_LOCK_Z = 5.0
SCALE_SWEEP_LOCKS = 2
#: The scale sweep's best few, read by the pilot instead of the template
#: (:meth:`_Search.pilot_scales`). A screenshot's crop removes the origin a copy
#: resized whole keeps, and a weak template's coherent score at the true scale then
#: sits among the sweep's noise: the screenshot chain's lost copies (session 18)
#: scored 4.1-4.7 there, 1st to 5th of the sweep's blocks, where unmarked copies'
#: best score 4.3-4.5; under :data:`SCALE_SWEEP_LOCK_Z`, and their phase locks were no
#: better (z 2.9-4.8, the origin wrong on 3 of 5). The best SCALE_PILOT_REFINE blocks'
#: scales are refined 10 times finer (:func:`provmark._template.refine_scales`; the
#: truths then ranked 1st to 3rd), and on a SCALE_PILOT_WINDOW-px window of the copy
#: resampled at each of the best SCALE_PILOT_TRIES the pilot is searched over every grid
#: phase (coarse pixel phases SCALE_PILOT_STEP apart, the best refined: a step of 4
#: missed the true phase at 4 of 17 scales near one truth, as the every-phase search
#: never did). It read 6.7-16.2 at the true scales and at most 5.7 elsewhere (9 copies,
#: 6 scales each, marked and unmarked); the stage's 657 gates on 219 unmarked corpus
#: copies (native, x0.75, the screenshot chain) read at most 5.60, median 4.28. Where
#: it reaches SCALE_PILOT_Z, the scales
#: within SCALE_PILOT_SPAN of it are searched near its grid and the best decoded (a
#: refined scale can still be 0.5% off: the score reads the nearest spectral bin, and
#: on a 384-px copy 0.5% moves the farthest peak by a third of a bin). Like a lock,
#: the gate only decides where to look; every phase it scores is counted.
SCALE_PILOT_REFINE = 12
SCALE_PILOT_TRIES = 3
SCALE_PILOT_WINDOW = 512
SCALE_PILOT_STEP = 2
SCALE_PILOT_Z = 6.0
#: Scales whose source would be under this a side (a tile less a quarter: a
#: screenshot's border crop) or within SCALE_PILOT_SAME of one tried are skipped.
SCALE_PILOT_SOURCE = 3 * TILE_PX // 4
SCALE_PILOT_SAME = 0.002
SCALE_PILOT_SPAN = (-0.006, -0.004, -0.002, 0.0, 0.002, 0.004, 0.006)
#: The enlargements read off the copy's interpolation traces
#: (:meth:`_Search.enlargements`, :mod:`provmark._resampling`). Measured (session 23)
#: on the screenshot chain's lost copies of 360-500 px sources (enlarged x2.5-3.6): the
#: lines gave the scale within 0.02%, the scale sweeps had missed it by 4% or more or
#: the step-2 gate had missed an odd grid phase (z 4.2 -> 9.8 at every phase), and the
#: pilot there read 7.9-11.2. At most ENLARGEMENT_TRIES scales (both readings of the
#: strongest lines) are gated at every grid phase, each 20-40 ms on an unmarked copy
#: that shows lines (an enlarged one; most photos show none and pay the 1-3 ms of the
#: lines alone). Like a lock, a gate only decides where to look; every phase it scores
#: is counted.
ENLARGEMENT_TRIES = 2
ENLARGEMENT_PILOT_Z = 6.0
#: Where only one axis shows a line and the other shows its frequency weaker
#: (:func:`provmark._resampling.paired_enlargements`: a page of text, whose lines
#: modulate its rows' curvature), the enlargement alike on both axes is gated on up
#: to ENLARGEMENT_WINDOW pixels of the copy, at every PAIRED_STEP-th grid phase. Text
#: on white carries its mark beside the letters only: a help page enlarged x1.5 read
#: its gate at 4.4-4.8 on 512 px and 7.2-9.2 on 1024 (session 31), and both payloads
#: then decode. Of the corpus' 73 unmarked images one offers such a reading
#: (skimage-astronaut, x1.21: its gate costs it 3-6 ms at every second phase, 8-10 at
#: every phase).
ENLARGEMENT_WINDOW = 1024
PAIRED_STEP = 2
#: The coherent rotation sweep (:meth:`_Search.coherent_rotations`), locked alike.
#: Measured (session 16) on the rotated copies (+-1, 2, 5 degrees, cropped) that the
#: other stages lost: a UI screenshot, a fractal, a busy photo and a tree against the
#: sky scored 6.7-9.3 at the truth (the sweep's best, within 0.3 degrees), a night map
#: 5.4-6.5; the same sweep on the same copies of the unmarked images 3.1-5.6 (864
#: copies, median 4.1).
ROTATION_SWEEP_LOCK_Z = 5.0
ROTATION_SWEEP_LOCKS = 2
#: The coherent rotation sweep's best few rotations, read by the pilot as the scale
#: sweep's are (:meth:`_Search.pilot_rotations`, with the gate of :meth:`_pilot_gate`).
#: Measured (session 20) on the tilted and cropped copies of small UI screenshots
#: that bar15 lost (im-configure, gimp-scale-dialog: the exhaustive search read them
#: at scale 1, so the geometry was what failed): their templates' coherent scores at
#: the truth (3.7-5.0) sat among the sweep's noise, under ROTATION_SWEEP_LOCK_Z, but
#: the truth was 1st to 3rd of the sweep's distinct rotations and the pilot there read
#: 7.6-12.3 (weaker marks 5.55-5.81); elsewhere, and on the unmarked copies, at most
#: 5.2. On 339 unmarked corpus copies up to 2.5 MP (native, rotated +1, -2 and +5
#: degrees and cropped, resized x0.75, the screenshot chain) the stage's 1017 gates
#: read at most 6.0, median 4.29, and 4 reached ROTATION_PILOT_Z: like a lock, a gate
#: only decides where to look (about 1% of unmarked copies pay a search and 3
#: decodings, every phase and decoding counted in the bound). A gate costs about 5-7
#: ms (the unmarked image pays every one): 2 gates instead of 3 read 63 instead of 64
#: of the 72 rotated copies of the six images the stage helps, for 13 ms instead of
#: 20 on an unmarked 512x512 photo. Rotations within ROTATION_PILOT_SAME degrees of
#: one tried are skipped; where a gate passes, the rotations ROTATION_PILOT_SPAN
#: degrees from it are searched and the best decoded.
ROTATION_PILOT_Z = 5.5
ROTATION_PILOT_TRIES = 2
ROTATION_PILOT_SAME = 0.1
ROTATION_PILOT_SPAN = (-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3)
#: The rotation of the copy's own straight edges (:meth:`_Search.edge_rotation`,
#: :mod:`provmark._skew`), gated by the pilot as the rotation sweep's best rotations
#: are (:meth:`_Search._pilot_gate`), and where it passes, the rotations ROTATION_PILOT_SPAN degrees from it
#: searched near that grid and the best decoded. Measured (session 24) on the tilted
#: and cropped copies under 0.3 MP that bar15 lost (UI screenshots and a building,
#: +-5 degrees): the template's sweeps had not listed the truth, the edges gave it
#: within 0.1 degree, and the pilot's peak there is about 0.2 degree wide: the gate
#: reads the estimate first (z 5.7-14 on those copies) and, where it reaches
#: EDGE_ROTATION_NEAR_Z without passing, 0.1 degree either side (a weaker copy's 5.7
#: at 4.9 degrees, 6.7 at the true 5.0). A gate costs 15-35 ms on a small copy; an
#: untilted copy, or one without straight edges, pays only the estimate (2.5 ms at
#: 512x512, 5 ms at 1080p).
EDGE_ROTATION_PILOT_Z = 6.0
EDGE_ROTATION_GATES = (0.0, -0.1, 0.1)
EDGE_ROTATION_NEAR_Z = 5.0
#: The edge gate reads a window of up to this many pixels a side (the sweeps' gates
#: read SCALE_PILOT_WINDOW). Text on white carries its mark only near the ink: on a
#: 1300x940 help page tilted +-1, +-2 and +-5 degrees and cropped (session 29), the
#: 512-px window read 4.6-6.4 at the edges' rotation and passed once in six, where the
#: copy read at its true geometry decodes; a 1024-px window read 6.6-8.7 and all six
#: decoded (768 px: 5.5-6.9, all six with the gates beside it). It costs only tilted
#: copies with straight edges, up to 4 times the 15-35 ms of a 512-px gate.
EDGE_ROTATION_WINDOW = 1024
#: The uncropped sweep (:meth:`_Search.coherent_uncropped`): its best hypotheses
#: refined and read on their aligned grid, at most this many; those whose pilot z
#: there reaches UNCROPPED_PILOT_Z are searched and decoded. Measured (session 17) on
#: the squashed copies (0.89 x 0.67) of small screenshots, a fractal and a night map
#: that the other stages lost: the truth was the sweep's best or second (scores
#: 3.7-7.2, refined 4.6-8.4; unmarked copies' best 3.4-5.9, median 4.2), its pilot z
#: 5.5-9.9 where the other hypotheses read -1.7-2.9.
UNCROPPED_TRIES = 2
UNCROPPED_PILOT_Z = 4.5
#: That aligned grid is read on the top-left window of at most this many pixels a side
#: of the copy resampled bilinearly (a third of the time of 768 px bicubic; the true
#: hypotheses of those copies read 0.1-0.5 lower, the others alike).
UNCROPPED_GATE_WINDOW = 512
#: A rotation of at most :data:`provmark._template.MAX_ROTATION` degrees cropped to its
#: valid area keeps at least this share of each side (a 2:1 image at 6 degrees: 0.83),
#: so the source may carry the lattice factor of a copy this much larger.
ROTATION_CROP_SIDE = 0.8
#: True resize factors considered when reading an apparent template scale as a
#: source's lattice factor (:func:`provmark._template.template_factor`).
RESIZE_RANGE = (0.15, 6.0)
#: The smallest part of a side that a crop is taken to keep when a copy's template
#: is read as a crop of a larger source (half the side: a crop to 25% of the area).
MIN_CROP_SIDE = 0.5
#: Lattice factors a source may carry, most common first.
FACTORS = tuple(2**i for i in range(MAX_FACTOR.bit_length()))


#: Scale sweep (``search="exhaustive"``): a scale whose quick pilot score reaches this
#: is searched and decoded at once (null maxima over a whole sweep: 4.8-5.4);
#: after a full sweep the best :data:`SWEEP_FINAL` scales are decoded in any case.
SWEEP_TRY_Z = 6.0
SWEEP_FINAL = 3


def hill_climb(n: int, start: int, value) -> int:
    """Index of a local maximum of ``value`` (a function of an index in ``0..n-1``)
    reached from ``start`` by moving to the better neighbour while one is better."""
    i = start
    while True:
        steps = [j for j in (i - 1, i + 1) if 0 <= j < n]
        j = max(steps, key=value, default=None)
        if j is None or value(j) <= value(i):
            return i
        i = j


def _is_near_identity(g) -> bool:
    return (abs(g.scale_y - 1) < 0.005 and abs(g.scale_x - 1) < 0.005
            and abs(g.rotation) < 0.25)


def read_grid(y: np.ndarray, key: bytes, oy: int = 0, ox: int = 0, ty: int = 0,
              tx: int = 0, maps: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """The plain folded tile (T, T, P), the calibrated code scores (flat) and the
    number of blocks read, for the grid at pixel origin ``(oy, ox)`` and tile phase
    ``(ty, tx)`` (``maps``: see :func:`grid_pairs`)."""
    coef = grid_pairs(y, oy, ox, maps)
    seen = observe(coef, keyed_layout(key).dither, ty, tx)
    return seen.folded(), calibrated_scores(None, key, seen=seen), coef.shape[0] * coef.shape[1]


def _plausible_factors(est: AffineEstimate, shape: tuple[int, int]) -> list[tuple[int, bool]]:
    """Lattice factors under which ``est`` reads as a resize within
    :data:`RESIZE_RANGE`, each with whether it needs a crop: ``(factor, cropped)``.

    The source is at least the copy over the resize (a crop only makes the copy
    smaller), so it carries at least that size's factor: that factor reads the copy
    as uncropped or lightly cropped and comes first. A larger factor means a source
    larger than that, cropped: a 1536x2048 source (factor 2) rotated 5 degrees and
    cropped to 1372x1935 reads as a factor-1 source at twice the size. The template
    cannot tell these readings apart (their constellations coincide), the mark can.
    A crop is taken to keep at least :data:`MIN_CROP_SIDE` of each side."""
    apparent = math.sqrt(est.scale_y * est.scale_x)
    out = []
    for f in FACTORS:
        if not RESIZE_RANGE[0] <= apparent / f <= RESIZE_RANGE[1]:
            continue
        # the smallest source, each axis by its own scale (an aspect change)
        source = (shape[0] * f / est.scale_y, shape[1] * f / est.scale_x)
        least = template_factor(*(int(d) for d in source))
        most = template_factor(*(int(d / MIN_CROP_SIDE) for d in source))
        if least <= f <= most:  # a source at least this large, cropped at most so far
            out.append((f, f > least))
    return sorted(out, key=lambda fc: (fc[1], abs(math.log(apparent / fc[0]))))


#: A resampled lock this strong but under :data:`LOCK_Z` is climbed towards
#: (:func:`_climb_to_lock`): the estimate is probably a few tenths of a percent off
#: (hugin-forest x0.75: 0.7464 x 0.7454, 0.11 degrees locked at z 5.2; the true
#: geometry at 11.5). Steps of the climb (relative scale of each axis, rotation in
#: degrees) and its length.
NEAR_LOCK_Z = 4.5
CLIMB_SCALE_STEP = 0.003
CLIMB_ROTATION_STEP = 0.1
CLIMB_MOVES = 12
#: A climb that has not reached :data:`LOCK_Z` after this many moves stops.
CLIMB_REACH = 3
#: The climb locks the central window of the resampled copy, at most this many
#: pixels a side, and a detection climbs once (its first near miss): climbing every
#: near miss on 1024-px windows made an unmarked 10 MP photo 2.2x slower to read.
CLIMB_WINDOW = 512


def _climb_to_lock(y, k, geo, factor):
    """Hill-climb the template lock of a near miss over the two scales and the
    rotation to its top (at most :data:`CLIMB_MOVES` moves, :data:`CLIMB_REACH` to
    reach the lock), every step scored on the same central window; returns the
    estimate there when it locks at :data:`LOCK_Z` or more, else None. The lock (not
    the pilot) is climbed: it is smooth over a few tenths of a percent, where the
    pilot is not."""
    from ._sync import hypothesis_matrix

    def lock_z(a):
        return _window_lock_z(y, k, a, factor, CLIMB_WINDOW)

    s, r = CLIMB_SCALE_STEP, CLIMB_ROTATION_STEP
    moves = [np.diag([1 + s, 1.0]), np.diag([1 - s, 1.0]), np.diag([1.0, 1 + s]),
             np.diag([1.0, 1 - s])]
    turns = [hypothesis_matrix(1.0, r), hypothesis_matrix(1.0, -r)]
    a = geo.matrix
    z = lock_z(a)  # the start, on the window the climb compares
    for move in range(CLIMB_MOVES):
        if move == CLIMB_REACH and z < LOCK_Z:
            return None  # noise climbs slowly: an unmarked copy gives up here
        cands = [a @ m for m in moves] + [t @ a for t in turns]
        zs = [lock_z(c) for c in cands]
        best = int(np.argmax(zs))
        if zs[best] <= z:
            break
        a, z = cands[best], zs[best]
    return geo.with_matrix(a) if z >= LOCK_Z else None


#: A lock that holds and does not decode is polished (:func:`_polish_lock`): the
#: coherent lock is smooth over about +-0.6 degrees and +-1% and peaks at the true
#: geometry, where the spectral estimate of a small copy can be 0.5-1 degree off
#: (im-bluebells, 288x384, rotated 2 degrees: estimated 2.8; the lock's z is 12.7 at
#: 2.0, 7.9 at 2.8). Steps of the polish (relative scale of each axis, rotation in
#: degrees), one level after another, and the sweeps over the three per level.
POLISH_STEPS = ((0.006, 0.3), (0.003, 0.12))
POLISH_SWEEPS = 3
#: The lock's peak is still a few tenths of a degree wide, the pilot's a tenth: the
#: pilot then scores the geometries this close around the polished one (rotations in
#: degrees, isotropic relative scales) on a central window of at most
#: :data:`FINE_WINDOW` pixels a side, and the best :data:`FINE_DECODES` are decoded.
FINE_ROTATIONS = (-0.2, -0.1, 0.0, 0.1, 0.2)
FINE_SCALES = (-0.002, -0.001, 0.0, 0.001, 0.002)
FINE_WINDOW = 768
FINE_DECODES = 3
#: Held locks searched finely, at most (each reading of the constellation, see
#: :func:`_plausible_factors`, locks alike: the mark tells which is right).
FINE_LOCKS = 2
#: A held lock is searched finely only where its median template bin reads at least
#: this z (:func:`provmark._template.lock_breadth`): a quantised gradient's grey-level
#: steps lock at z 6-10 on two to four bins, and each such lock cost a fine search of
#: about 0.3 s without ever decoding (a 300-px unmarked gradient took 0.3-1.2 s to
#: detect, photos 0.1 s). Measured (session 28) on the fine searches of corpus copies
#: resized, rotated, cropped and screenshotted: those that decoded had a median bin
#: of 1.01-2.10; those of 120 unmarked synthetic images 0.00-0.97 on gradients (50 of
#: 52 under 0.75), 0.90-1.53 on noise. Like a lock, it only decides where to look.
FINE_MIN_BREADTH = 0.75
#: A lock on a resampled copy holds only where its median template bin reads at least
#: this z as well: narrower locks are neither refined nor searched (:class:`_Lock`).
#: An unmarked 512x512 gradient's locks at estimates reading it as a 0.16-0.43
#: downscale (planes of up to 3000 px a side) cost 0.4-0.6 s there. Of the 632 locks
#: whose search decoded corpus copies under 0.6 MP (resized, rotated, cropped,
#: screenshotted; session 28), the narrowest read 0.54; about half of the gradients'
#: locks read under 0.3. Like a lock, it only decides where to look.
LOCK_MIN_BREADTH = 0.3


def _window_lock_z(y, k, a, factor, window) -> float:
    """The template lock's z on the central ``window`` of the copy resampled by ``a``
    (0 when the grid would hold fewer than four blocks a side)."""
    if min(grid_shape(y.shape, a)) < 4 * BLOCK_PX:
        return 0.0
    plane = np.ascontiguousarray(warp_to_grid(y, a, window), np.float32)
    return phase_lock(plane, k, factor)[0]


def _polish_lock(y, k, geo: AffineEstimate, factor) -> AffineEstimate:
    """Move the geometry ``geo`` to the top of the template lock: coordinate search over
    the log-scale of each axis and the rotation, a parabola through three points per
    coordinate, kept only where it scores better (:data:`POLISH_STEPS`)."""
    from ._sync import hypothesis_matrix

    def geometry(p):
        return hypothesis_matrix(1.0, p[2]) @ np.diag(np.exp(p[:2]))

    def z_at(p):
        return _window_lock_z(y, k, geometry(p), factor, FINE_WINDOW)

    p = np.array([math.log(geo.scale_y), math.log(geo.scale_x), geo.rotation])
    z = z_at(p)
    for scale_step, rotation_step in POLISH_STEPS:
        for _ in range(POLISH_SWEEPS):
            moved = False
            for axis, step in ((2, rotation_step), (0, scale_step), (1, scale_step)):
                unit = np.eye(3)[axis] * step
                z_up, z_down = z_at(p + unit), z_at(p - unit)
                curve = z_up - 2 * z + z_down
                # the parabola's vertex (at most two steps away), else a step uphill
                to = (float(np.clip(0.5 * (z_down - z_up) / curve, -2, 2)) if curve < 0
                      else (2.0 if z_up > z_down else -2.0))
                tries = [(z_up, 1.0), (z_down, -1.0)]
                if abs(to) >= 0.25:
                    tries.append((z_at(p + to * unit), to))
                best_z, best_to = max(tries)
                if best_z > z:
                    p, z, moved = p + best_to * unit, best_z, True
            if not moved:
                break
    return geo.with_matrix(geometry(p))


def _plane_to_copy(copy_shape, plane_shape, a, points) -> np.ndarray:
    """The copy positions (row, column; ``(..., 2)``) of ``points`` on a plane that
    :func:`provmark._template.warp_to_grid` made centre to centre with ``a``."""
    c_copy = (np.array(copy_shape[:2], np.float64) - 1.0) / 2.0
    c_plane = (np.array(plane_shape[:2], np.float64) - 1.0) / 2.0
    return (np.asarray(points, np.float64) - c_plane) @ np.asarray(a, np.float64).T + c_copy


def _copy_to_plane(copy_shape, plane_shape, a, point) -> tuple[int, int]:
    """Inverse of :func:`_plane_to_copy`, rounded to whole pixels."""
    c_copy = (np.array(copy_shape[:2], np.float64) - 1.0) / 2.0
    c_plane = (np.array(plane_shape[:2], np.float64) - 1.0) / 2.0
    p = np.linalg.solve(np.asarray(a, np.float64), np.asarray(point, np.float64) - c_copy)
    p = p + c_plane
    return int(round(p[0])), int(round(p[1]))


def _lock_resampled(y, k, geo, factor, report) -> _Lock:
    """Resample the copy onto the grid of ``geo`` and lock the template there (the
    attempt is recorded in ``report["locks"]``). A plane larger than
    :data:`LOCK_WINDOW` a side is first locked on its central window only: a wrong
    estimate of a large copy then costs a small resampling, not a whole one (an
    unmarked 13 MP photo spent 9.6 s in four full resamplings)."""
    shape = grid_shape(y.shape, geo.matrix)
    if min(shape) < 4 * BLOCK_PX or shape[0] * shape[1] > MAX_PLANE_PIXELS:
        return _Lock(None, (0, 0), geo, 0.0)
    if max(shape) > LOCK_WINDOW:
        window = np.ascontiguousarray(warp_to_grid(y, geo.matrix, LOCK_WINDOW), np.float32)
        z, _, _ = phase_lock(window, k, factor)
        if z < LOCK_Z:
            report["locks"].append({"factor": factor, "resampled": True, "z": round(z, 2),
                                    "window": LOCK_WINDOW})
            return _Lock(None, (0, 0), geo, z)
    plane = np.ascontiguousarray(warp_to_grid(y, geo.matrix), dtype=np.float32)
    z, oy, ox = phase_lock(plane, k, factor)
    record = {"factor": factor, "resampled": True, "z": round(z, 2),
              "scale_y": round(geo.scale_y, 5), "scale_x": round(geo.scale_x, 5),
              "rotation": round(geo.rotation, 3)}
    breadth = 0.0
    if z >= LOCK_Z:
        breadth = lock_breadth(plane, k, factor, (oy, ox))
        record["breadth"] = round(breadth, 2)
    report["locks"].append(record)
    return _Lock(plane, (oy, ox), geo, z, breadth)


@dataclass(frozen=True)
class Attempt:
    """One decoding of one grid hypothesis on one plane."""

    plane: np.ndarray  # the luma read: the image's own, or a resampled copy
    cand: SyncCandidate
    evaluation: Evaluation
    blocks: int  # 16x16-pixel blocks read
    #: Grid hypotheses searched (phases, scales, rotations) when this attempt was
    #: made: the pilot's multiple-testing count (:meth:`_Search.false_alarm`).
    pilot_hypotheses: int
    geometry: AffineEstimate | None = None  # set when ``plane`` is resampled
    seen: Observations | None = None  # the carriers' observations (one grid's)

    @property
    def decoded(self) -> bool:
        return self.evaluation.result.payload is not None


def _attempt(plane, k, cand, pilot_hypotheses, geometry=None, maps=None,
             words_for=None) -> Attempt:
    """Read the grid ``cand`` on ``plane`` and decode it, unless its pilot z is under
    :data:`DECODE_MIN_Z` (then it is read, not decoded, and counts nothing in the
    bound); ``words_for``: see :func:`evaluate`."""
    coef = grid_pairs(plane, cand.oy, cand.ox, maps)
    seen = observe(coef, keyed_layout(k).dither, cand.ty, cand.tx)
    return Attempt(plane, cand, _evaluate_seen([seen], k, words_for),
                   coef.shape[0] * coef.shape[1], pilot_hypotheses, geometry, seen)


def _evaluate_seen(seen: list[Observations], k: bytes, words_for=None) -> Evaluation:
    """The pilot z of the observations ``seen`` folded together (one grid's, or the
    same tile's on both layers), and their decoding unless that z is under
    :data:`DECODE_MIN_Z`; each grid's observations are calibrated by its own pilot
    (:func:`calibrated_scores`), so summing the calibrated folds weighs each layer by
    its reliability (maximal-ratio combining)."""
    score = sum(s.folded() for s in seen)
    z = pilot_z(score, k)
    if z < DECODE_MIN_Z:
        return Evaluation(z, _codec.DecodeResult(
            None, 0, 0, 0, f"pilot z {z:.1f}: under the {DECODE_MIN_Z} of any decodable mark"),
            0.0, list_size=0)
    return evaluate(score, k, sum(calibrated_scores(None, k, seen=s) for s in seen),
                    words_for)


@dataclass(frozen=True)
class _Lock:
    """A template lock on a copy resampled by ``geometry``: ``plane`` (None when the
    copy was not resampled whole), the grid ``origin`` in it, the lock's z and its
    ``breadth``, the median template bin's z there
    (:func:`provmark._template.lock_breadth`; 0 under :data:`LOCK_Z`)."""

    plane: np.ndarray | None
    origin: tuple[int, int]
    geometry: AffineEstimate
    z: float
    breadth: float = 0.0

    @property
    def held(self) -> bool:
        """Locked at :data:`LOCK_Z` or more on the template's bins broadly (at least
        :data:`LOCK_MIN_BREADTH`): a quantised gradient's steps lock on a few."""
        return self.plane is not None and self.z >= LOCK_Z and self.breadth >= LOCK_MIN_BREADTH


class _Search:
    """One detection's search: the decoding attempts made so far and the count of
    grid hypotheses searched, the two inputs of the false-alarm bound
    (:meth:`false_alarm`). Each stage returns whether a payload was decoded; the
    search stops at the first that does."""

    def __init__(self, y: np.ndarray, k: bytes):
        from ._sync import PhaseScores, SyncCandidate

        self.y, self.k = y, k
        self.hypotheses = 1
        self.attempts: list[Attempt] = []
        self._long_lists = 0  # attempts given a list longer than EXTENDED_LIST_SIZE
        self._extended: list[Attempt] = []  # the attempts that read the extension too
        self._aligned_extension: Observations | None = None  # its read on the aligned grid
        self.extension: list[dict] = []  # each extension read: its pilot z (details)
        self.coarse_search: dict | None = None  # the blind coarse search (details)
        self._add(_attempt(y, k, SyncCandidate(0.0, 0, 0, 0, 0), 1, words_for=self.words_for))
        self.on_copy = PhaseScores()  # the pixel phases scored on the copy as it is
        self.candidates: list[SyncCandidate] = []
        self.template: TemplateReport | None = None  # for Detection.details
        self.sweep: SweepReport | None = None  # for Detection.details
        self._swept: set[tuple[float, float]] = set()
        # each coherent sweep's geometries, best first: (z, factor, matrix)
        self._swept_best: dict[str, list[tuple[float, int, np.ndarray]]] = {}
        self._climbed = False
        self._copy_locks: list[int] = []  # factors whose template locked on the copy as it is
        self._coarse_planes: list[np.ndarray] = []  # planes of the coarse layer read
        self._both: list[Attempt] = []  # the attempts that read both layers as one
        self._estimates: list[AffineEstimate] = []  # the template's, best first
        self._spectrum: CoherentSpectrum | None = None  # the window they were read on

    @property
    def decoded(self) -> bool:
        return any(a.decoded for a in self.attempts)

    def words_for(self, z: float) -> int:
        """The longest list (a power of 2, at most :data:`LONG_LIST_MAX` words) that an
        attempt made now with pilot z ``z`` may try and still leave its bound, were it
        to decode, under :data:`LONG_LIST_SHARE` of :data:`MAX_FALSE_ALARM`; 0 when that
        is no longer than :data:`provmark._codec.EXTENDED_LIST_SIZE`, when ``z`` is
        under :data:`LONG_LIST_Z`, or after :data:`LONG_LIST_ATTEMPTS` such lists."""
        if z < LONG_LIST_Z or self._long_lists >= LONG_LIST_ATTEMPTS:
            return 0
        tail = min(1.0, self.hypotheses * pilot_p_value(z))
        spent = sum(_codec.false_alarm_per_channel_attempt(a.evaluation.list_size)
                    for a in self.attempts)
        budget = LONG_LIST_SHARE * MAX_FALSE_ALARM / tail - spent
        words = LONG_LIST_MAX
        while words > _codec.EXTENDED_LIST_SIZE and \
                _codec.false_alarm_per_channel_attempt(words) > budget:
            words //= 2
        if words <= _codec.EXTENDED_LIST_SIZE:
            return 0
        self._long_lists += 1
        return words

    def count(self, n: int) -> None:
        """Add ``n`` grid hypotheses to the bound (every one scored, decoded or not)."""
        self.hypotheses += n

    def try_candidates(self, plane, cands, geometry=None, maps=None,
                       limit: int | None = None) -> bool:
        """Decode the candidates not yet tried on ``plane`` until one decodes, at most
        ``limit`` of them (``maps``: see :func:`grid_pairs`)."""
        tried = {(a.cand.oy, a.cand.ox, a.cand.ty, a.cand.tx)
                 for a in self.attempts if a.plane is plane}
        new = [c for c in cands if (c.oy, c.ox, c.ty, c.tx) not in tried]
        for cand in new[:limit]:
            if self._add(_attempt(plane, self.k, cand, self.hypotheses, geometry, maps,
                                  self.words_for)):
                return True
        return False

    def _add(self, attempt: Attempt) -> bool:
        """Record a grid's reading; where the carriers alone did not decode, read the
        extension carriers on the same grid, and where their own pilot shows them
        (z >= :data:`EXTENSION_MIN_Z`), decode the two folded together, each
        calibrated by its own pilot (as :meth:`both_layers`). Every extension read
        counts one hypothesis, every such decoding its words. Returns whether a
        payload was decoded."""
        # The observations are dropped once read (tens of MB a grid at 50 MP).
        self.attempts.append(dataclasses.replace(attempt, seen=None))
        if attempt.decoded or attempt.seen is None:
            return attempt.decoded
        ext = extension_observations(attempt.plane, attempt.cand, self.k)
        if len(self.attempts) == 1:  # the aligned grid (also read by both_layers)
            self._aligned_extension = ext
        z = pilot_z(ext.folded(), self.k)
        self.count(1)
        self.extension.append({"z": round(z, 2)})
        if z < EXTENSION_MIN_Z:
            return False
        both = Attempt(attempt.plane, attempt.cand,
                       _evaluate_seen([attempt.seen, ext], self.k, self.words_for),
                       attempt.blocks, self.hypotheses, attempt.geometry)
        self.attempts.append(both)
        self._extended.append(both)
        return both.decoded

    def search_phases(self, plane, scored, **kw) -> list[SyncCandidate]:
        """The pilot's best grid candidates on ``plane`` (:func:`provmark._sync.search`),
        counting the phases not scored before."""
        from ._sync import search as sync_search

        n_before = len(scored) * DITHER_BLOCKS**2
        cands, n = sync_search(plane, self.k, top=SEARCH_DECODES, scored=scored, **kw)
        self.count(n - n_before)
        return cands

    def near(self, plane, origin, geometry=None, scored=None) -> bool:
        """Pilot search around a template lock's grid origin, then decoding."""
        from ._sync import PhaseScores

        scored = PhaseScores() if scored is None else scored
        cands = self.search_phases(plane, scored,
                                   near=(origin[0] % BLOCK_PX, origin[1] % BLOCK_PX))
        return self.try_candidates(plane, cands, geometry, scored.maps)

    def coarse_layer(self) -> bool:
        """The coarse layer on its aligned grid: the copy reduced by 2 (a smooth image's
        second mark, which survives compression where the fine one does not)."""
        from ._sync import SyncCandidate

        if min(self.y.shape) < 2 * COARSE_READ_SIDE:
            return False
        self.count(1)
        geometry = AffineEstimate(2.0 * np.eye(2), 0.0, 2.0, 2.0, 0.0, 1)
        self._coarse_planes.append(coarse_plane(self.y))
        return self.try_candidates(self._coarse_planes[-1], [SyncCandidate(0.0, 0, 0, 0, 0)],
                                   geometry)

    def both_layers(self) -> bool:
        """The fine and coarse layers' aligned grids read as one: where the coarse
        pilot shows the mark (z >= :data:`DECODE_MIN_Z`), and so does the fine pilot
        or the extension carriers' on the aligned grid (z >= :data:`EXTENSION_MIN_Z`),
        and nothing decoded alone, their observations are folded together, each
        calibrated by its own pilot (the coarse layer and the extension carry the
        same code bits in the same slots). A compressed smooth image can leave each
        too weak alone: on bar15 (session 22) it read both JPEG 30 copies of a 775x516
        photo of a drop on a leaf (fine pilot z 3.1-4.9, coarse 5.8-6.0, together
        5.1-6.3), none lost; in session 25 its WebP 50 copy, where the fine pilot read
        1.0, the coarse 6.7 and the extension 4.4, read on the coarse layer and the
        extension together (6.1). Each reading is calibrated on its own pilot:
        weights fitted on them together would let the weaker one's noise in at the
        stronger one's weight."""
        from ._sync import SyncCandidate

        if not self._coarse_planes:
            return False
        coarse = self._coarse_planes[0]
        first = [next(a for a in self.attempts if a.plane is p) for p in (self.y, coarse)]
        fine_shows, coarse_shows = (a.evaluation.z >= DECODE_MIN_Z for a in first)
        ext = self._aligned_extension
        if ext is not None and pilot_z(ext.folded(), self.k) < EXTENSION_MIN_Z:
            ext = None
        if not coarse_shows or not (fine_shows or ext is not None):
            return False
        self.count(1)
        dither = keyed_layout(self.k).dither
        seen = [observe(grid_pairs(p), dither)
                for p, shows in ((self.y, fine_shows), (coarse, True)) if shows]
        seen += [ext] if ext is not None else []
        attempt = Attempt(self.y, SyncCandidate(0.0, 0, 0, 0, 0),
                          _evaluate_seen(seen, self.k, self.words_for),
                          sum(a.blocks for a in first), self.hypotheses)
        self.attempts.append(attempt)
        self._both.append(attempt)
        return attempt.decoded

    def lock_on_copy(self) -> bool:
        """The template's coherent match on the copy as it is (a crop: it gives the
        pixel phase at once), for each lattice factor."""
        self.template = {"locks": []}
        for f in FACTORS:
            z, oy, ox = phase_lock(self.y, self.k, f)
            self.template["locks"].append({"factor": f, "resampled": False, "z": round(z, 2)})
            if z >= LOCK_Z:
                if self.near(self.y, (oy, ox), None, self.on_copy) or self.coarse_near(oy, ox):
                    return True
                self._copy_locks.append(f)
        return False

    def coarse_near(self, oy: int, ox: int) -> bool:
        """The coarse layer of a crop whose template locked with its tile origin at
        copy pixel ``(oy, ox)``: the layer's 32-px blocks start there too, modulo 32
        (the template's period is a multiple of 64), so the copy is reduced by 2 from
        that pixel's parity on and the pilot searched near the origin."""
        sy, sx = oy % 2, ox % 2
        plane = coarse_plane(self.y[sy:, sx:])
        if min(plane.shape) < COARSE_READ_SIDE:
            return False
        geometry = AffineEstimate(2.0 * np.eye(2), 0.0, 2.0, 2.0, 0.0, 1)
        self._coarse_planes.append(plane)
        return (self.near(plane, ((oy - sy) // 2, (ox - sx) // 2), geometry)
                or self.both_near(plane, sy, sx))

    def both_near(self, plane: np.ndarray, sy: int, sx: int) -> bool:
        """A crop's two layers read as one (as :meth:`both_layers` reads an uncropped
        copy's), where the coarse plane ``plane`` (the copy reduced by 2 from pixel
        ``(sy, sx)``) was searched and did not decode. Both layers start at the
        source's origin, so each coarse grid found gives the fine one: its first block
        at copy pixel ``p = s + 2 o`` (``o`` the coarse origin) has tile phase ``t``,
        the fine grid's first block lies at ``p mod 16``, ``p // 16`` fine blocks
        before it, with tile phase ``(2 t - p // 16) mod 32``. Of the coarse candidates
        whose pilot reaches :data:`DECODE_MIN_Z`, the one whose fine grid's pilot reads
        highest is decoded (each counted). On bar15's JPEG 60 + crop + brightness x0.5
        copies of smooth wallpapers (session 22) the coarse plane read z 5.3-6.0 and the
        fine grid 1.4-3.8, neither decoded; together 3 of 4 did."""
        from ._sync import SyncCandidate

        coarse = sorted((a for a in self.attempts if a.plane is plane
                         and a.evaluation.z >= DECODE_MIN_Z), key=lambda a: -a.evaluation.z)
        if not coarse:
            return False
        dither = keyed_layout(self.k).dither
        best = None
        for a in coarse[:SEARCH_DECODES]:
            c = a.cand
            py, px = sy + 2 * c.oy, sx + 2 * c.ox
            fine = SyncCandidate(0.0, py % BLOCK_PX, px % BLOCK_PX,
                                 (2 * c.ty - py // BLOCK_PX) % DITHER_BLOCKS,
                                 (2 * c.tx - px // BLOCK_PX) % DITHER_BLOCKS)
            coef = grid_pairs(self.y, fine.oy, fine.ox)
            seen = observe(coef, dither, fine.ty, fine.tx)
            z = pilot_z(seen.folded(), self.k)
            if best is None or z > best[0]:
                best = (z, fine, seen, coef.shape[0] * coef.shape[1] + a.blocks, a)
        self.count(len(coarse[:SEARCH_DECODES]))
        _, fine, seen, blocks, a = best
        both = [seen, observe(grid_pairs(plane, a.cand.oy, a.cand.ox), dither, a.cand.ty,
                              a.cand.tx)]
        attempt = Attempt(self.y, fine, _evaluate_seen(both, self.k, self.words_for), blocks,
                          self.hypotheses)
        self.attempts.append(attempt)
        self._both.append(attempt)
        return attempt.decoded

    def resample_estimates(self) -> bool:
        """The copy resampled by each of the template's best affine estimates, read
        under each plausible lattice factor, locked and decoded."""
        self._estimates, self._spectrum = template_estimates(self.y, self.k, COHERENT_ESTIMATES)
        if not self._estimates:
            return False
        self.count(self._estimates[-1].hypotheses)
        estimates = self._estimates[:TEMPLATE_ESTIMATES]
        best = estimates[0]
        self.template.update(score=best.score, scale_y=best.scale_y, scale_x=best.scale_x,
                             rotation=best.rotation, used=False)
        # A lattice that locked on the copy as it is without decoding is the base
        # constellation at that apparent scale: the copy may be a resize of a source
        # with a finer lattice (a 400x400 image upscaled x2 locks as factor 2), which
        # the spectral estimates can miss on an image with a strong spectrum of its own.
        estimates = [AffineEstimate(np.eye(2) * f, 0.0, f, f, 0.0, 0)
                     for f in self._copy_locks] + estimates
        tried: list[AffineEstimate] = []
        held_locks: list[tuple[_Lock, int]] = []
        for est in estimates:
            held = False
            for f, cropped in _plausible_factors(est, self.y.shape):
                geo = est.for_factor(f)
                if cropped and not held:
                    continue  # read as a crop of a larger source only once it locks
                if _is_near_identity(geo) or any(np.allclose(geo.matrix, g.matrix, atol=2e-3)
                                                 for g in tried):
                    held = held or (_is_near_identity(geo) and bool(self._copy_locks))
                    continue  # the copy as it is was locked above, or this one was tried
                tried.append(geo)
                lock = self.lock_estimate(geo, f)
                if lock is None:
                    continue
                held = True
                if self.near(lock.plane, lock.origin, lock.geometry):
                    self.template["used"] = True
                    return True
                held_locks.append((lock, f))
        # Locks that held without decoding are searched finely, best reading first.
        for lock, f in held_locks[:FINE_LOCKS]:
            if self.fine_search(lock, f):
                self.template["used"] = True
                return True
        return False

    def coherent_estimates(self) -> bool:
        """The template's estimates searched coherently around each
        (:func:`provmark._template.coherent_search`, under the first lattice factor
        that reads it as an uncropped resize), then the best geometries locked under
        each such reading, searched near the lock and decoded. An image's own spectral
        peaks (a screenshot's UI, a night map's lights) mislead the magnitude search
        by 1-2%, where the lock on a resampled plane no longer holds; the coherent
        score tolerates that error and peaks within about 0.5% of the truth."""
        if not self._estimates:
            return False
        by_factor: dict[int, list[AffineEstimate]] = {}
        for est in self._estimates:
            readings = [f for f, cropped in _plausible_factors(est, self.y.shape) if not cropped]
            if readings:
                by_factor.setdefault(readings[0], []).append(est)
        found = []
        for f, ests in by_factor.items():
            grid = coherent_grid(np.array([e.for_factor(f).matrix for e in ests]))
            zs, mats, n = coherent_search(self._spectrum, self.k, grid, f)
            self.count(n)
            # back on the base lattice, as the estimates are
            found += [(float(z), e.with_matrix(a * f)) for z, a, e in zip(zs, mats, ests)]
        found.sort(key=lambda c: -c[0])
        self.template["coherent"] = [round(z, 2) for z, _ in found[:COHERENT_LOCKS]]
        for z, est in found[:COHERENT_LOCKS]:
            if z < COHERENT_Z:
                break
            # Each reading of the constellation locks alike: the mark tells which is right.
            for f, cropped in _plausible_factors(est, self.y.shape):
                if cropped:
                    continue
                lock = self.lock_estimate(est.for_factor(f), f)
                if lock is not None and (self.near(lock.plane, lock.origin, lock.geometry)
                                         or self.fine_search(lock, f)):
                    self.template["used"] = True
                    return True
        return False

    def coherent_scales(self) -> bool:
        """The coherent score swept over isotropic resizes
        (:func:`provmark._template.scale_sweep_grids`, on the spectrum the magnitude
        search made), the best scales locked, searched near the lock and decoded:
        resized copies of small screenshots and busy photos whose template's
        magnitude estimates were all wrong (their true scale is the sweep's best)."""
        if self._spectrum is None:
            return False
        return self._lock_swept("coherent_scales", scale_sweep_grids(self.y.shape),
                                SCALE_SWEEP_LOCK_Z, SCALE_SWEEP_LOCKS)

    def coherent_rotations(self) -> bool:
        """The coherent score swept over rotations at scale 1
        (:func:`provmark._template.rotation_sweep_grids`), under each lattice factor a
        source of the copy's size could carry, the best rotations locked, searched near
        the lock and decoded: tilted or straightened and cropped copies of small
        screenshots, fractals and busy photos whose magnitude estimates were all wrong."""
        if self._spectrum is None:
            return False
        least = template_factor(*self.y.shape)
        most = template_factor(*(int(d / ROTATION_CROP_SIDE) for d in self.y.shape))
        return self._lock_swept("coherent_rotations", [
            (f, rotation_sweep_grids(self._spectrum, f)) for f in FACTORS if least <= f <= most],
            ROTATION_SWEEP_LOCK_Z, ROTATION_SWEEP_LOCKS)

    def coherent_uncropped(self) -> bool:
        """The coherent score swept over resizes of the whole image, each axis its own
        scale (:func:`provmark._template.uncropped_sweep`: aspect changes up to 25%,
        read at the tile origin an uncropped copy keeps), the best few refined; where
        the copy resampled from that origin shows the pilot on its aligned grid, the
        geometries around it are searched by the pilot and decoded: squashed or
        stretched copies of small screenshots and night maps whose magnitude
        estimates were all wrong."""
        import cv2

        if self._spectrum is None:
            return False
        found, n = uncropped_sweep(self._spectrum, self.k, self.y.shape, UNCROPPED_TRIES)
        self.count(n)
        report = self.template["coherent_uncropped"] = []
        for _, f, a in found:
            z, a, n = refine_uncropped(self._spectrum, self.k, a, f)
            self.count(n + 1)  # and the aligned grid's pilot below
            if min(grid_shape(self.y.shape, a)) < 4 * BLOCK_PX:
                continue
            plane = np.ascontiguousarray(
                warp_from_origin(self.y, a, UNCROPPED_GATE_WINDOW, cv2.INTER_LINEAR), np.float32)
            score, _ = soft_scores(grid_pairs(plane), keyed_layout(self.k).dither)
            report.append({"z": round(z, 2), "pilot_z": round(pilot_z(score, self.k), 2),
                           "scale_y": round(float(a[0, 0]), 5),
                           "scale_x": round(float(a[1, 1]), 5)})
            if report[-1]["pilot_z"] < UNCROPPED_PILOT_Z:
                continue
            # The source's grid starts at the copy's pixel (0, 0): the pilot looks
            # there, each axis's scale a little either way (the coherent peak is broad
            # along a short axis: a 311x466 copy's refined best was 0.08% off in y and
            # did not decode, the scales 0.1% from it did).
            geo = AffineEstimate(a, 0.0, 1.0, 1.0, 0.0, 0).with_matrix(a)
            if self._decode_best_of([geo.with_matrix(np.diag([1.0 + dy, 1.0 + dx]) @ a)
                                     for dy in FINE_SCALES for dx in FINE_SCALES],
                                    lambda plane, g: (0, 0), warp_from_origin):
                self.template.update(used=True, swept="coherent_uncropped")
                return True
        return False

    def pilot_scales(self) -> bool:
        """The coherent scale sweep's best few scales read by the pilot on a window of
        the copy resampled at each (every grid phase), and where it shows the mark, the
        scales around it searched near that grid and decoded: screenshots (resized,
        then cropped) whose template is too weak to lock (see :data:`SCALE_PILOT_Z`)."""
        self.template["pilot_scales"] = []
        # A source under SCALE_PILOT_SOURCE a side cannot have carried the mark (a
        # tile, less a border crop).
        sources = (c for c in self._swept_best.get("coherent_scales", [])
                   if min(grid_shape(self.y.shape, c[2])) >= SCALE_PILOT_SOURCE)
        refined, n = refine_scales(self._spectrum, self.k,
                                   list(itertools.islice(sources, SCALE_PILOT_REFINE)))
        self.count(n)
        tried: list[float] = []
        for _, _, a in refined:
            if len(tried) == SCALE_PILOT_TRIES:
                break
            scale = float(a[0, 0])
            # the same scale under another factor is the same plane
            if any(abs(scale / t - 1.0) < SCALE_PILOT_SAME for t in tried):
                continue
            tried.append(scale)
            if self._pilot_gate("pilot_scales", a, {"scale": round(scale, 5)},
                                [a * (1.0 + d) for d in SCALE_PILOT_SPAN], SCALE_PILOT_Z):
                return True
        return False

    def pilot_rotations(self) -> bool:
        """The coherent rotation sweep's best few rotations read by the pilot on a
        window of the copy resampled at each (every grid phase), and where it shows
        the mark, the rotations around it searched near that grid and decoded: tilted
        and cropped copies whose template is too weak to lock (see
        :data:`ROTATION_PILOT_Z`)."""
        from ._sync import hypothesis_matrix

        swept = self._swept_best.get("coherent_rotations")
        if not swept:  # the rotation sweep did not run
            return False
        self.template["pilot_rotations"] = []
        tried: list[float] = []
        for _, _, a in swept:
            if len(tried) == ROTATION_PILOT_TRIES:
                break
            angle = math.degrees(math.atan2(a[1, 0], a[0, 0]))
            if any(abs(angle - t) < ROTATION_PILOT_SAME for t in tried):
                continue
            tried.append(angle)
            if self._pilot_gate("pilot_rotations", a, {"rotation": round(angle, 3)},
                                [hypothesis_matrix(1.0, d) @ a for d in ROTATION_PILOT_SPAN],
                                ROTATION_PILOT_Z):
                return True
        return False

    def enlargements(self) -> bool:
        """The enlargements the copy's interpolation traces show
        (:func:`provmark._resampling.enlargements`), each read by the pilot on a window
        of the copy resampled by it (every grid phase), and where it shows the mark, the
        scales around it searched near that grid and decoded: small images enlarged
        into screenshots, whose template's peaks sank among the image's low
        frequencies (see :data:`ENLARGEMENT_PILOT_Z`)."""
        from ._resampling import enlargement_readings

        self.template["enlargements"] = []
        tried = 0
        found, paired_found = enlargement_readings(self.y)
        paired = not found
        for a in found or paired_found:
            if tried == ENLARGEMENT_TRIES:
                break
            if min(grid_shape(self.y.shape, a)) < SCALE_PILOT_SOURCE:
                continue
            tried += 1
            about = {"scale_y": round(float(a[0, 0]), 5), "scale_x": round(float(a[1, 1]), 5)}
            if paired:
                about["paired"] = True
            if self._pilot_gate("enlargements", a, about,
                                [a * (1.0 + d) for d in SCALE_PILOT_SPAN], ENLARGEMENT_PILOT_Z,
                                step=PAIRED_STEP if paired else 1,
                                window=ENLARGEMENT_WINDOW if paired else SCALE_PILOT_WINDOW):
                return True
        return False

    def edge_rotation(self) -> bool:
        """The rotation the copy's straight edges show (:func:`provmark._skew.edge_rotation`),
        read by the pilot on a window of the copy turned back by it (every grid phase),
        and beside it where the pilot is near; where it shows the mark, the rotations
        around it searched near that grid and decoded: tilted and cropped small
        screenshots and buildings whose template is too weak for the rotation sweeps
        (see :data:`EDGE_ROTATION_PILOT_Z`)."""
        from ._skew import edge_rotation
        from ._sync import hypothesis_matrix

        self.template["edge_rotation"] = []
        found = edge_rotation(self.y)
        if found is None:
            return False
        estimate, prominence = found
        for offset in EDGE_ROTATION_GATES:
            angle = float(estimate + offset)
            a = hypothesis_matrix(1.0, angle)
            if self._pilot_gate("edge_rotation", a, {"rotation": round(angle, 3),
                                                     "prominence": round(prominence, 1)},
                                [hypothesis_matrix(1.0, d) @ a for d in ROTATION_PILOT_SPAN],
                                EDGE_ROTATION_PILOT_Z, window=EDGE_ROTATION_WINDOW):
                return True
            if self.template["edge_rotation"][0]["pilot_z"] < EDGE_ROTATION_NEAR_Z:
                return False  # no sign of the mark at the estimate: not beside it either
        return False

    def _pilot_gate(self, name: str, a: np.ndarray, about: dict, around: list,
                    gate_z: float, step: int = SCALE_PILOT_STEP,
                    window: int = SCALE_PILOT_WINDOW) -> bool:
        """The pilot searched over every grid phase on a ``window``-px window of the
        copy resampled by ``a`` (reported under ``name`` with ``about``); where it
        reaches ``gate_z``, the geometries ``around`` searched near that grid and the
        best decoded (:meth:`_decode_best_of`)."""
        from ._sync import PhaseScores

        # bicubic: a bilinear gate lost a copy enlarged x1.16 (pilot z 16.2 -> 4.0)
        gate = np.ascontiguousarray(warp_to_grid(self.y, a, window), np.float32)
        cand = self.search_phases(gate, PhaseScores(), step=step)[0]
        self.template[name].append({**about, "pilot_z": round(cand.z, 2)})
        if cand.z < gate_z:
            return False
        # The grid point nearest the gate's centre, in the copy: every plane below is
        # centred on the copy too, so it falls near their centres, where a geometry a
        # little off moves it least.
        centre = (np.array(gate.shape, np.float64) - 1.0) / 2.0
        phase = np.array([cand.oy, cand.ox], np.float64)
        point = phase + BLOCK_PX * np.round((centre - phase) / BLOCK_PX)
        copy_point = _plane_to_copy(self.y.shape, gate.shape, a, point)
        geo = AffineEstimate(a, 0.0, 1.0, 1.0, 0.0, 0).with_matrix(a)
        if self._decode_best_of(
                [geo.with_matrix(m) for m in around],
                lambda plane, g: _copy_to_plane(self.y.shape, plane.shape, g.matrix,
                                                copy_point)):
            self.template.update(used=True, swept=name)
            return True
        return False

    def _lock_swept(self, name: str, sweeps, lock_z: float, locks: int) -> bool:
        """Score the coherent ``sweeps`` (``(factor, (E, G, 2, 2) geometries)`` each),
        count every hypothesis, report the best scores under ``name`` and lock the best
        ``locks`` geometries scoring at least ``lock_z``, each searched near its lock
        (and finely) and decoded."""
        found = []
        for f, grids in sweeps:
            zs, mats, n = coherent_search(self._spectrum, self.k, grids, f)
            self.count(n)
            found += [(float(z), f, a) for z, a in zip(zs, mats)]
        found.sort(key=lambda c: -c[0])
        self._swept_best[name] = found
        self.template[name] = [round(z, 2) for z, _, _ in found[:locks]]
        for z, f, a in found[:locks]:
            if z < lock_z:
                break
            # A sweep's best lies up to half a step (and the score's own spread) from
            # the truth, where a resampled lock often falls just short: its near
            # miss is climbed even when an estimate's was (session 16: a 364x459
            # screenshot rotated 1 degree, swept best at 0.66, locked at z 5.26).
            lock = self.lock_estimate(AffineEstimate(a, 0.0, 1.0, 1.0, 0.0, 0).with_matrix(a), f,
                                      climb=True)
            if lock is not None and (self.near(lock.plane, lock.origin, lock.geometry)
                                     or self.fine_search(lock, f)):
                self.template.update(used=True, swept=name)
                return True
        return False

    def fine_search(self, lock: _Lock, factor: int) -> bool:
        """A lock that held and did not decode: polish it (:func:`_polish_lock`), let
        the pilot score the geometries around it (:data:`FINE_ROTATIONS` x
        :data:`FINE_SCALES`, every phase scored is counted) and decode the best few.
        At most :data:`FINE_LOCKS` a detection (an unmarked copy rarely locks); a lock
        whose median template bin reads under :data:`FINE_MIN_BREADTH` is not searched
        (its ``breadth`` is reported under ``fine_skipped``)."""
        from ._sync import hypothesis_matrix

        if lock.breadth < FINE_MIN_BREADTH:
            self.template.setdefault("fine_skipped", []).append(round(lock.breadth, 2))
            return False
        polished = _polish_lock(self.y, self.k, lock.geometry, factor)
        return self._decode_best_of(
            [polished.with_matrix(hypothesis_matrix(1.0 + scale, rotation) @ polished.matrix)
             for rotation in FINE_ROTATIONS for scale in FINE_SCALES],
            lambda plane, g: phase_lock(plane, self.k, factor)[1:])

    def _decode_best_of(self, geometries, origin_of, warp=warp_to_grid) -> bool:
        """The pilot's best grid on the copy resampled by each of ``geometries``
        (``warp``, at most :data:`FINE_WINDOW` a side), searched near the grid
        origin that ``origin_of(plane, geometry)`` gives; the best
        :data:`FINE_DECODES` decoded."""
        from ._sync import PhaseScores

        scored = []
        for g in geometries:
            if min(grid_shape(self.y.shape, g.matrix)) < 4 * BLOCK_PX:
                continue
            plane = np.ascontiguousarray(warp(self.y, g.matrix, FINE_WINDOW), np.float32)
            oy, ox = origin_of(plane, g)
            cands = self.search_phases(plane, PhaseScores(), near=(oy % BLOCK_PX, ox % BLOCK_PX))
            scored.append((cands[0], plane, g))
        scored.sort(key=lambda c: -c[0].z)
        best = scored[:FINE_DECODES]
        self.template.setdefault("fine", []).append([round(c.z, 2) for c, _, _ in best])
        return any(self.try_candidates(plane, [cand], g) for cand, plane, g in best)

    def lock_estimate(self, geo: AffineEstimate, f: int, climb: bool = False) -> _Lock | None:
        """Lock the template on the copy resampled by ``geo``: a near miss is
        climbed to the lock first (:func:`_climb_to_lock`; the first near miss of a
        detection, or any when ``climb``), a lock is refined."""
        y, k, report = self.y, self.k, self.template
        lock = _lock_resampled(y, k, geo, f, report)
        if NEAR_LOCK_Z <= lock.z < LOCK_Z and (climb or not self._climbed):
            self._climbed = True
            climbed = _climb_to_lock(y, k, geo, f)
            if climbed is not None:
                lock = _lock_resampled(y, k, climbed, f, report)
        if not lock.held:
            return None
        # A lock tolerates a geometry error that the pilot does not (0.3 degrees or
        # 0.5% across a 512-px copy): refine it with the template's windows, and
        # keep whichever geometry locks more strongly (a refinement misled by one
        # window took a 1.4982 x 1.4998 estimate locked at z 22 to 1.4526 x 1.4916,
        # -0.37 degrees, still locked at z 6.8, and lost the mark).
        refined = lock.geometry.with_matrix(refine_affine(y, lock.geometry.matrix, k, f))
        if refined.matrix is not lock.geometry.matrix:
            better = _lock_resampled(y, k, refined, f, report)
            if better.held and better.z > lock.z:
                lock = better
        return lock

    def self_reference(self) -> bool:
        """The geometries read off the mark's own period (:mod:`provmark._period`) on
        a copy of at least :data:`PERIOD_MIN_PIXELS`, each locked under the lattice
        factors a source that size could carry, searched near the lock and decoded;
        then the first :data:`PERIOD_PILOT_ONLY` searched by the pilot alone on the
        resampled plane (a flat source whose template disturbed the mark is marked
        without it, and its period is then the only sign of its geometry)."""
        from ._period import period_geometries
        from ._sync import PhaseScores

        if self.y.size < PERIOD_MIN_PIXELS:
            return False
        geometries = period_geometries(self.y)
        for a in geometries:
            geo = AffineEstimate(a, 0.0, 1.0, 1.0, 0.0, 0).with_matrix(a)
            self.count(1)
            source = (self.y.shape[0] / geo.scale_y, self.y.shape[1] / geo.scale_x)
            least = template_factor(int(source[0]), int(source[1]))
            for f in FACTORS:
                if f < least:
                    continue
                lock = self.lock_estimate(geo, f)
                if lock is not None and self.near(lock.plane, lock.origin, lock.geometry):
                    self.template["used"] = True
                    return True
        for a in geometries[:PERIOD_PILOT_ONLY]:
            if min(grid_shape(self.y.shape, a)) < 4 * BLOCK_PX:
                continue
            geo = AffineEstimate(a, 0.0, 1.0, 1.0, 0.0, 0).with_matrix(a)
            plane = np.ascontiguousarray(warp_to_grid(self.y, a, PERIOD_PILOT_WINDOW),
                                         np.float32)
            if self.try_candidates(plane, self.search_phases(plane, PhaseScores()), geo):
                return True
        return False

    def blind(self) -> bool:
        """Blind grid search on the copy as it is (a crop whose template did not
        survive: strong compression of a flat image); its best candidate not yet
        tried is decoded (:data:`BLIND_DECODES`)."""
        self.candidates = self.search_phases(self.y, self.on_copy)
        return self.try_candidates(self.y, self.candidates, None, self.on_copy.maps,
                                   limit=BLIND_DECODES)

    def blind_coarse(self) -> bool:
        """Blind grid search on the copy reduced by 2: a crop of a smooth image whose
        template did not survive, or which has none, where the fine mark is gone and
        the coarse layer may not be; on copies that look like a smooth image's
        (:data:`BLIND_COARSE_FLAT_SHARE`). The reduction's 2x2 cells start at the
        crop's offset modulo 2 or not, which a compressed copy's borderline pilot feels
        (ukui-city's crops under the combined attack: the best grid decoded at one
        parity of four), so the four are read: the first searched at every pixel
        phase, the other three near its best (half a reduced pixel away), the best
        candidate of each decoded, then each read with the fine grid it gives
        (:meth:`both_near`). It runs before
        the mark's period is searched (:meth:`self_reference`), whose long lists on
        such a copy would otherwise take the bound's room."""
        from ._sync import PhaseScores

        if min(self.y.shape) < 2 * COARSE_READ_SIDE:
            return False
        flat = flat_share(self.y)
        if flat < BLIND_COARSE_FLAT_SHARE:
            return False
        self.coarse_search = {"flat_share": round(flat, 3), "parities": 0}
        geometry = AffineEstimate(2.0 * np.eye(2), 0.0, 2.0, 2.0, 0.0, 1)
        parities = ((0, 0), (0, 1), (1, 0), (1, 1))
        best = None  # the first parity's best pixel phase; the others are searched near it
        for sy, sx in parities:
            self.coarse_search["parities"] += 1
            plane = coarse_plane(self.y[sy:, sx:])
            self._coarse_planes.append(plane)
            scored = PhaseScores()
            cands = self.search_phases(plane, scored, near=best)
            if best is None and cands:
                best = (cands[0].oy, cands[0].ox)
            if self.try_candidates(plane, cands, geometry, scored.maps, limit=BLIND_DECODES):
                return True
        return any(self.both_near(plane, sy, sx)
                   for plane, (sy, sx) in zip(self._coarse_planes[-4:], parities))

    def false_alarm(self, best: Attempt) -> float:
        """The reported bound ``sum(p_dec) * min(1, m * exp(-z**2 / 2))``: the
        attempts, each decoding a null image with probability ``p_dec`` (its list's
        words), and the best attempt's pilot z, the best of ``m`` grid hypotheses."""
        if not best.decoded:
            return 1.0
        p_dec = sum(_codec.false_alarm_per_channel_attempt(a.evaluation.list_size)
                    for a in self.attempts)
        return min(1.0, p_dec * min(1.0, best.pilot_hypotheses
                                    * pilot_p_value(best.evaluation.z)))

    def outcome(self, image_shape: tuple[int, int]) -> tuple[Detection, GridLocation]:
        """The :class:`Detection` of the first decoded attempt (else of the attempt
        with the best pilot score) and where its grid lies."""
        decoded = [a for a in self.attempts if a.decoded]
        best = decoded[0] if decoded else max(self.attempts, key=lambda a: a.evaluation.z)
        res, cand, geo = best.evaluation.result, best.cand, best.geometry
        fap = self.false_alarm(best)
        found = res.payload is not None and fap <= MAX_FALSE_ALARM
        reason = res.reason if res.payload is None else (
            "decoded" if found else "decoded word not significant enough")
        report: SearchReport = {
            "decode_attempts": sum(a.evaluation.list_size > 0 for a in self.attempts),
            "grids_read": len(self.attempts),
            "long_lists": sum(a.evaluation.list_size > _codec.LIST_SIZE for a in self.attempts),
            "aligned_sync_score": self.attempts[0].evaluation.z,
            "candidates": [(c.z, c.oy, c.ox, c.ty, c.tx) for c in self.candidates],
            "tile_phase": (cand.ty, cand.tx), "template": self.template,
            "scale_sweep": self.sweep,
            "extension": self.extension,
            "blind_coarse": self.coarse_search,
            "layer": ("extended" if any(best is a for a in self._extended) else
                      "both" if any(best is a for a in self._both) else
                      "coarse" if any(best.plane is p for p in self._coarse_planes) else "fine")}
        detection = Detection(
            found=found, payload=res.payload if found else None,
            false_alarm_probability=fap, sync_score=best.evaluation.z,
            corrected_symbols=res.corrected_symbols if found else 0,
            erasures=res.erasures if found else 0, hypotheses=self.hypotheses,
            offset=(cand.oy, cand.ox),
            scale=1.0 if geo is None else round((geo.scale_y * geo.scale_x) ** 0.5, 5),
            rotation=0.0 if geo is None else round(geo.rotation, 3),
            blocks_used=best.blocks, bit_reliability=best.evaluation.reliability,
            key_fingerprint=key_fingerprint(self.k), reason=reason, details=report)
        return detection, GridLocation(best.plane, cand.oy, cand.ox, cand.ty, cand.tx,
                                       None if geo is None else geo.matrix, image_shape)

    def sweep_scales(self) -> bool:
        """Exhaustive sweep of rotations (at scale 1) and isotropic scales for copies
        whose template was not found (too weak in the copy's spectrum): every
        hypothesis the sweep could score is counted before any decoding, so the
        bound holds whatever point it stops at."""
        from ._sync import SWEEP_PHASE_STEP

        hyps, rotations, scales = _sweep_grid(self.y.shape)
        self.count(len(hyps) * (BLOCK_PX // SWEEP_PHASE_STEP) ** 2 * DITHER_BLOCKS**2)
        scores = _QuickScores(self.y, self.k)
        decoded = False
        for s, r in hyps:
            if scores(s, r) >= SWEEP_TRY_Z:
                decoded = self._try_geometry(*scores.climb(s, r, rotations, scales))
                if decoded:
                    break
        else:
            for z, s, r in scores.best(SWEEP_FINAL):
                if self._try_geometry(s, r):
                    decoded = True
                    break
        self.sweep = scores.report(len(hyps))
        return decoded

    def _try_geometry(self, s0: float, r0: float) -> bool:
        """Search and decode the copy resampled at one swept scale and rotation and
        at the two half steps around it."""
        from ._sync import SWEEP_RATIO, SWEEP_ROTATION_STEP, PhaseScores, resample_to_grid

        half_scale, half_angle = math.sqrt(SWEEP_RATIO), SWEEP_ROTATION_STEP / 2
        near = ((s0 * half_scale, r0), (s0 / half_scale, r0)) if r0 == 0 else (
            (s0, r0 + half_angle), (s0, r0 - half_angle))
        for s, r in ((s0, r0),) + near:
            if (round(s, 6), round(r, 4)) in self._swept:
                continue
            self._swept.add((round(s, 6), round(r, 4)))
            plane, a = resample_to_grid(self.y, s, r)
            cands = self.search_phases(plane, PhaseScores())
            if self.try_candidates(plane, cands, AffineEstimate(a, cands[0].z, s, s, r, 0)):
                return True
        return False


class LockRecord(TypedDict, total=False):
    """One template lock: its lattice ``factor``, whether the copy was
    ``resampled`` (by the estimate ``scale_y``, ``scale_x``, ``rotation``) or only
    a central ``window`` of it, and the lock's ``z``; from :data:`LOCK_Z` on, its
    ``breadth`` (the median template bin's z, :func:`provmark._template.lock_breadth`:
    it holds from :data:`LOCK_MIN_BREADTH`)."""

    factor: int
    resampled: bool
    z: float
    breadth: float
    window: int
    scale_y: float
    scale_x: float
    rotation: float


class TemplateReport(TypedDict, total=False):
    """The template search: every lock tried, and the best affine estimate (its
    spectral ``score``, scales and rotation) and whether a decoding ``used`` it;
    ``fine``: for each fine search (:meth:`_Search.fine_search`), the pilot z of the
    geometries it decoded; ``fine_skipped``: the median bin z
    (:func:`provmark._template.lock_breadth`) of each held lock not searched finely
    because it read under :data:`FINE_MIN_BREADTH`; ``coherent``, ``coherent_scales``,
    ``coherent_rotations``, ``coherent_uncropped``: the best scores of the coherent search around the
    estimates and of the coherent sweeps over scales and rotations
    (:meth:`_Search.coherent_estimates`, :meth:`_Search.coherent_scales`,
    :meth:`_Search.coherent_rotations`), when they ran; ``coherent_uncropped``: the
    uncropped sweep's refined hypotheses (:meth:`_Search.coherent_uncropped`), each
    with its coherent ``z``, the ``pilot_z`` of its aligned grid and its scales;
    ``pilot_scales``, ``pilot_rotations``: the scale or rotation of each gate read by
    the pilot (:meth:`_Search.pilot_scales`, :meth:`_Search.pilot_rotations`) with its
    ``pilot_z``; ``enlargements``: the ``scale_y`` and ``scale_x`` of each gate at an
    enlargement the copy's interpolation lines show (:meth:`_Search.enlargements`),
    with its ``pilot_z``; ``edge_rotation``: the ``rotation`` of each gate at the tilt
    the copy's straight edges show (:meth:`_Search.edge_rotation`), with the edges'
    ``prominence`` and the gate's ``pilot_z``; ``swept``: which of the sweeps found the
    geometry decoded."""

    locks: list[LockRecord]
    fine: list[list[float]]
    fine_skipped: list[float]
    coherent: list[float]
    coherent_scales: list[float]
    coherent_rotations: list[float]
    coherent_uncropped: list[dict[str, float]]
    pilot_scales: list[dict[str, float]]
    pilot_rotations: list[dict[str, float]]
    enlargements: list[dict[str, float]]
    edge_rotation: list[dict[str, float]]
    swept: str
    score: float
    scale_y: float
    scale_x: float
    rotation: float
    used: bool


class SweepReport(TypedDict):
    """The exhaustive sweep: geometries scored of those that fit, and the best."""

    hypotheses_scored: int
    of: int
    best_z: float | None
    best_scale: float | None
    best_rotation: float | None


class SearchReport(TypedDict):
    """``Detection.details``: how the search went (for ``--explain`` and analyses).

    decode_attempts : decodings tried (each counts in the false-alarm bound)
    grids_read : grids read, decoded or not (a pilot z under :data:`DECODE_MIN_Z` is
        not decoded)
    long_lists : how many of them also tried a longer list of the inner decoder
        (a pilot z of at least :data:`EXTENDED_LIST_Z`: 16 words, counted 4 times; or
        one the bound affords, :meth:`_Search.words_for`: up to 1024)
    aligned_sync_score : pilot z of the grid where an uncropped image has it
    candidates : ``(z, oy, ox, ty, tx)`` of the blind grid search's best candidates
    tile_phase : tile phase ``(ty, tx)`` of the reported attempt
    template : the template search: ``locks`` (each factor's lock on the copy and on
        every resampled estimate, with its z), and the best estimate's ``score``,
        ``scale_y``, ``scale_x``, ``rotation`` and whether it was ``used``; None
        when the aligned grid decoded
    scale_sweep : the exhaustive sweep (``hypotheses_scored``, ``of``, ``best_z``,
        ``best_scale``, ``best_rotation``); None unless it ran
    layer : ``"coarse"`` when the reported attempt read the coarse layer (the copy
        reduced by 2, docs/format.md 5.6; ``scale`` is then 2 for an unresized copy),
        ``"both"`` when it read the fine mark and the coarse layer together (an
        uncropped copy's aligned grids, or a crop's, the fine grid derived from the
        coarse one; neither decoded alone; ``scale`` 1), ``"extended"`` when it read
        the carriers and the extension carriers together (docs/format.md 5.8), else
        ``"fine"``
    extension : each extension read (a grid whose carriers did not decode): its
        pilot ``z``
    blind_coarse : the blind search of the coarse layer (:meth:`_Search.blind_coarse`):
        the copy's ``flat_share`` and the ``parities`` searched; None unless it ran
    """

    decode_attempts: int
    grids_read: int
    long_lists: int
    aligned_sync_score: float
    candidates: list[tuple[float, int, int, int, int]]
    tile_phase: tuple[int, int]
    template: TemplateReport | None
    scale_sweep: SweepReport | None
    extension: list[dict]
    layer: str
    blind_coarse: dict | None


def _sweep_grid(shape: tuple[int, int]):
    """The sweep's hypotheses that fit a copy of ``shape`` and their rotation and
    scale axes (neighbours are taken on these, so every hypothesis climbed to is
    one already counted)."""
    from ._sync import SWEEP_MAX_PIXELS, SWEEP_MIN_SIDE, sweep_hypotheses

    h, w = shape
    hyps = [(s, r) for s, r in sweep_hypotheses()
            if min(h, w) / s >= SWEEP_MIN_SIDE and h * w / s**2 <= SWEEP_MAX_PIXELS]
    return (hyps, sorted({r for s, r in hyps if r != 0}),
            sorted({s for s, r in hyps if r == 0}))


class _QuickScores(dict):
    """Quick pilot scores of swept geometries, ``(scale, rotation) -> z``, computed
    once each."""

    def __init__(self, y: np.ndarray, k: bytes):
        super().__init__()
        self.y, self.k = y, k

    def __call__(self, s: float, r: float) -> float:
        from ._sync import quick_score, resample_to_grid

        if (s, r) not in self:
            self[(s, r)] = quick_score(resample_to_grid(self.y, s, r)[0], self.k)
        return self[(s, r)]

    def climb(self, s, r, rotations, scales) -> tuple[float, float]:
        """Move to the best-scoring neighbour until none is better: the sweep meets
        the mark on the way out from the identity, often a step or two before the
        true geometry (a -2 degree copy decoded at -1.5 and reported it)."""
        on_rotation = r != 0
        axis = rotations if on_rotation else scales

        def at(j: int) -> tuple[float, float]:
            return (s, axis[j]) if on_rotation else (axis[j], r)

        return at(hill_climb(len(axis), axis.index(r if on_rotation else s),
                             lambda j: self(*at(j))))

    def best(self, n: int) -> list[tuple[float, float, float]]:
        return sorted(((z, s, r) for (s, r), z in self.items()), reverse=True)[:n]

    def report(self, of: int) -> SweepReport:
        if not self:  # a copy too large for any source the sweep covers
            return {"hypotheses_scored": 0, "of": 0, "best_z": None, "best_scale": None,
                    "best_rotation": None}
        z, s, r = self.best(1)[0]
        return {"hypotheses_scored": len(self), "of": of, "best_z": round(float(z), 3),
                "best_scale": round(float(s), 5), "best_rotation": round(float(r), 2)}


def detect(image, *, key: bytes | str | None = None, search: bool | str = True) -> Detection:
    """Look for a provmark watermark and decode its payload.

    The embedding grid is tried first where an uncropped image has it; if that does
    not decode, a blind search finds the grid's pixel offset and tile phase in a
    cropped copy (:mod:`provmark._sync`) and the best candidates are decoded.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray or PIL.Image.Image
        The image to examine (at least 256x256).
    key : bytes or str or None, optional
        The key used at embedding; ``None`` is the public default key.
    search : bool or "exhaustive", default True
        ``True``: when the aligned grid does not decode, estimate the geometry from
        the template and search the grid offset (crops, resizes, rotations and
        aspect changes whose template is visible in the copy's spectrum).
        ``"exhaustive"``: when nothing decoded, also sweep
        rotations (+-6 degrees) and scales (0.4 to 3.0) one hypothesis at a time
        (rotated or resized copies whose template was too weak to find); about 2-4 s more on a 512x512 image that carries no mark. ``False``:
        the aligned grid only.

    Returns
    -------
    Detection
        ``found`` is True only when decoding succeeded and the false-alarm
        probability is at most 1e-9; ``payload`` is None otherwise.

    Notes
    -----
    False-alarm probability: each decoding attempt succeeds on a null image with
    probability :func:`provmark._codec.false_alarm_per_channel_attempt` (about 5.8e-11;
    2.3e-10 for an attempt whose pilot z of at least 5.5 asked for the longer list, and
    1.45e-11 a word for the longer lists the bound affords a strong pilot read early),
    independently of the pilot slots (which the code slots do not share). With
    attempts whose ``p_dec`` sum to ``P`` and a pilot score ``z`` that was the best of
    ``m`` grid hypotheses, the reported bound is ``P * min(1, m * exp(-z**2 / 2))``.

    References
    ----------
    P. Fernandez et al., "The Stable Signature", ICCV 2023 (false-positive control
    of watermark detection); DESIGN.md section 3 (calibrated detection).
    """
    return locate(image, key=key, search=search)[0]


@dataclass(frozen=True)
class GridLocation:
    """Where the embedding grid lies in the luma plane that the decoding used.

    ``plane`` is the luma of the image (or of its resampled copy when a geometric
    transform was estimated); block ``(by, bx)`` of the grid starts at pixel
    ``(oy + 16*by, ox + 16*bx)`` of ``plane`` and holds tile slot
    ``((by + ty) % 16, (bx + tx) % 16)``.
    """

    plane: np.ndarray
    oy: int
    ox: int
    ty: int
    tx: int
    #: The 2x2 geometry ``A`` (copy = A @ grid, (y, x) order) when the plane is a
    #: resampled copy, else None (the plane is the image's own luma).
    matrix: np.ndarray | None = None
    image_shape: tuple[int, int] = (0, 0)

    def plane_to_image(self, yx: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` (y, x) pixel positions in ``plane`` to the image's pixels
        (the inverse of :func:`provmark._template.warp_to_grid`'s resampling)."""
        yx = np.asarray(yx, np.float64)
        if self.matrix is None:
            return yx.copy()
        return _plane_to_copy(self.image_shape, self.plane.shape, self.matrix, yx)


def locate(image, *, key: bytes | str | None = None, search: bool | str = True
           ) -> tuple[Detection, GridLocation]:
    """:func:`detect`, plus the grid location of the best decoding attempt (for
    per-region analysis such as the tamper map)."""
    if search not in (True, False, "exhaustive"):
        raise ValueError(f"search={search!r}: use True, False or 'exhaustive'")
    rgb, _ = as_rgb_array(image)
    h, w = rgb.shape[:2]
    k = normalize_key(key)
    y = read_luma(rgb)
    if min(h, w) < MIN_READ_SIDE:
        return (Detection(found=False, payload=None, false_alarm_probability=1.0,
                          hypotheses=0, key_fingerprint=key_fingerprint(k),
                          reason=f"image is {w}x{h}: under {MIN_READ_SIDE} px a side it holds "
                                 "too little of any mark to read"),
                GridLocation(y, 0, 0, 0, 0, None, (h, w)))
    run = _Search(y, k)  # the aligned grid is read first
    if search and not run.decoded:
        # The coarse layer's aligned grid (an uncropped, compressed smooth image),
        # both layers' aligned grids read as one, the template on the copy as it is
        # (a crop), then resampled by its affine
        # estimates (resizes, rotations, aspect changes), then the geometries the
        # coherent search finds around them, over isotropic scales, over rotations and
        # over both scales of an uncropped copy (estimates all wrong), then the scales
        # an enlargement's interpolation shows and the pilot at the sweeps' best scales
        # and rotations (a template too weak to lock), then the coarse layer
        # searched blind (a smooth copy's crop whose template did not lock), then the
        # mark's own period (large flat copies), then
        # the blind grid search (a crop whose template did not survive), then, when
        # asked, the exhaustive sweep.
        stages = [run.coarse_layer, run.both_layers, run.lock_on_copy, run.resample_estimates,
                  run.coherent_estimates, run.coherent_scales, run.coherent_rotations,
                  run.coherent_uncropped, run.enlargements, run.pilot_scales,
                  run.pilot_rotations, run.edge_rotation, run.blind_coarse,
                  run.self_reference, run.blind]
        if search == "exhaustive":
            stages.append(run.sweep_scales)
        for stage in stages:
            if stage():
                break
    return run.outcome((h, w))
