"""``provmark.embed``: write the keyed, tiled angle-QIM mark into an image's luma.

Orchestration only; the arithmetic is in :mod:`provmark.kernels`. Steps:
RGB -> luma -> Haar LL -> 8x8 DCT -> angle-QIM on coefficient pairs (per-symbol
change capped by the block's texture) -> optional global scaling to honour the PSNR
floor -> the luma change is added to R, G and B alike -> round and clip to uint8.
"""

from __future__ import annotations

import contextvars
import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from . import _codec, _convolutional
from ._image import ImageError, as_rgb_array, check_min_size
from ._keys import normalize_key
from ._layout import BLOCK_PX, PAIRS, keyed_layout
from ._payload import Payload
from ._template import N_FREQS, block_amplitude, keyed_template, template_factor
from .kernels import (DCT8_64, add_enlarged_change, aqim_embed_deltas, apply_block_deltas,
                      change_bound)

_C64 = DCT8_64


@dataclass(frozen=True)
class Strength:
    """Embedding strength in LL-band DCT units (1 unit ~ 0.09 grey levels peak).

    r_floor : minimum radius of every coefficient pair: the signal written into flat
        blocks, where there is no texture to hide in. On smooth blocks it is lowered
        to ``floor_base + floor_gain * activity`` (activity: RMS of the block's
        texture and detail coefficients) so that skies show no mottling.
    margin : how far inside its decision region every symbol is pushed (coefficient
        units); compression noise below this leaves the symbol intact.
    min_angle : minimum angular margin (radians, at most pi/8 = 0.39).
    cap_base, cap_texture : a symbol's change is capped at
        ``cap_base + cap_texture * texture`` so strong edges are not scarred.
    min_psnr : if the mark would bring the PSNR below this (dB), its changes are cut
        to that budget, the costliest first (:func:`fit_budget`; robustness then
        drops; :func:`check_embeddable` tells beforehand).
    max_change : no pixel changes by more than this many grey levels; in flat
        neighbourhoods the bound is tighter (:func:`change_limit`).
    """

    r_floor: float = 16.0
    floor_base: float = 6.0
    floor_gain: float = 2.0
    margin: float = 28.0
    min_angle: float = 0.12
    cap_base: float = 14.0
    cap_texture: float = 0.9
    min_psnr: float = 40.0
    max_change: float = 12.0

    def adapted(self, texture: float = 1.0, floor: float = 1.0) -> Strength:
        """The adaptive strength's two knobs (:func:`mark_array`).

        ``texture`` multiplies the margins and caps (what textured blocks pay);
        ``floor`` multiplies the floor's cap ``r_floor`` and its slope ``floor_gain``
        with the block's activity, so that blocks with some texture get a larger
        floor. ``floor_base``, the floor of truly flat blocks, is never raised: a
        1.5x floor there showed as mottling on rocket's sky at 1x.
        """
        return Strength(self.r_floor * floor, self.floor_base, self.floor_gain * floor,
                        self.margin * texture, min(self.min_angle * texture, 0.3),
                        self.cap_base * texture, self.cap_texture * texture, self.min_psnr,
                        self.max_change)

    def scaled(self, factor: float) -> Strength:
        return Strength(self.r_floor * factor, self.floor_base * factor, self.floor_gain,
                        self.margin * factor,
                        min(self.min_angle * factor, 0.3), self.cap_base * factor,
                        self.cap_texture * factor, self.min_psnr, self.max_change)


DEFAULT_STRENGTH = Strength()


class EmbedError(ImageError):
    """The image cannot carry a mark that reads back reliably (too flat, saturated,
    too small or too busy for the PSNR floor); the message says what to try."""


#: A slot whose mean soft score per observation, signed by its bit, is below this
#: after embedding is "weak": its cap is raised and the block re-embedded.
WEAK_SLOT = 0.3
#: Coefficient pairs below this radius (LL-DCT units; uint8 rounding adds about
#: 0.3 per coefficient) are taken as unreadable by the embed-time check.
MIN_READABLE_RADIUS = 2.0
#: Cap multipliers of the re-embedding passes given to weak slots.
BOOST_PASSES = (3.0, 8.0)


def compute_deltas(rgb: np.ndarray, tile_bits: np.ndarray, dither: np.ndarray,
                   strength: Strength, boost: np.ndarray | None = None,
                   offset: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run the delta kernel over every whole block; returns ``(delta, coef)``, each
    symbol's move starting from its pair plus ``offset`` (the template's share of
    it, :func:`template_pair_offsets`; None: from the pair alone)."""
    nby, nbx = rgb.shape[0] // BLOCK_PX, rgb.shape[1] // BLOCK_PX
    delta = np.zeros((nby, nbx, PAIRS.shape[0], 2), np.float32)
    coef = np.zeros_like(delta)
    if boost is None:
        boost = np.ones(tile_bits.shape, np.float64)
    if offset is None:
        offset = np.zeros_like(delta)
    aqim_embed_deltas(rgb, PAIRS, tile_bits, dither, boost, _C64, float(strength.r_floor),
                      float(strength.floor_base), float(strength.floor_gain),
                      float(strength.margin), float(strength.min_angle),
                      float(strength.cap_base), float(strength.cap_texture), offset, delta,
                      coef)
    return delta, coef


def template_pair_offsets(tile: np.ndarray, tamp: np.ndarray) -> np.ndarray:
    """What the template adds to every carrier pair: (nby, nbx, P, 2) float32.

    The template is written as ``tile[y % Q, x % Q] * tamp[by, bx]`` on every
    channel alike, so on the luma; its pairs are linear in it, and the tile's
    period Q is a whole number of blocks: the pairs of the tile's own ``Q / 16``
    blocks a side, scaled by each block's amplitude. On a large source the template's
    coarse lattice (factors 2 and 4: 0.03-0.09 cycles a pixel) lies where the
    carriers are: written blind, it turned 50-99 of the 400 channel bits of flat
    artworks (lxqt-cloud, ukui-mouse, lomiri-fossa) before any attack. The carriers' moves
    start from the pair plus this share (informed embedding: I. Cox, M. Miller and
    A. McKellips, "Watermarking as communications with side information", Proc.
    IEEE 87(7), 1999).
    """
    from ._detect import grid_pairs

    m = tile.shape[0] // BLOCK_PX
    unit = grid_pairs(np.ascontiguousarray(tile, np.float32))  # (m, m, P, 2)
    nby, nbx = tamp.shape
    reps = (-(-nby // m), -(-nbx // m), 1, 1)
    return (np.tile(unit, reps)[:nby, :nbx] * tamp[:, :, None, None]).astype(np.float32)


def fit_budget(coef: np.ndarray, delta: np.ndarray, tile_bits: np.ndarray,
               dither: np.ndarray, budget: float, sensitivity=None
               ) -> tuple[np.ndarray, float]:
    """The changes ``delta`` cut to the squared-error ``budget`` (per channel, summed
    over pixels; the chain is orthonormal, so it is the coefficients' squared change),
    and the attenuation that cost: ``sqrt(energy kept / energy asked)``, 1 when they fit.

    Changes that do not fit are not scaled down alike: a pair whose angle is cheap to
    move (small radius) buys as much of the reader's soft score for a fraction of the
    energy of a busy block's. Each pair keeps the share :func:`budget_shares` gives it
    (``sensitivity``: a callable returning :func:`ssim_sensitivity` of the image, called
    only when the budget binds, or None).
    """
    energy = float(np.square(delta, dtype=np.float64).sum())
    if energy <= budget:
        return delta, 1.0
    if budget <= 0:
        return np.zeros_like(delta), 0.0
    share = budget_shares(coef, delta, tile_bits, dither, budget,
                          None if sensitivity is None else sensitivity())
    kept = (delta * share[..., None]).astype(np.float32)
    return kept, math.sqrt(float(np.square(kept, dtype=np.float64).sum()) / energy)


#: Bisection steps on the multiplier of :func:`budget_shares` (searched from 1e-12 to
#: 1e12 on a log scale: 60 halvings pin it to double precision).
BUDGET_STEPS = 60


def budget_shares(coef: np.ndarray, delta: np.ndarray, tile_bits: np.ndarray,
                  dither: np.ndarray, budget: float,
                  sensitivity: np.ndarray | None = None) -> np.ndarray:
    """Per pair, the share ``t`` in [0, 1] of its change that maximises the summed
    gain in the reader's soft score ``sum(g t)`` under ``sum(c t^2) <= budget``.

    ``g`` is what the whole change adds to the pair's soft score (signed by its symbol,
    the score of :func:`provmark._detect.observe`, both read with the marked image's
    noise floor) and ``c`` its squared change. The gain is taken as linear in ``t``
    (the margin is a distance to the decision boundary and the change moves the pair
    along it), so the optimum is ``t = min(1, g / (2 lam c))`` for the multiplier
    ``lam`` that spends the budget (the Karush-Kuhn-Tucker conditions of a concave
    quadratic program: S. Boyd and L. Vandenberghe, *Convex Optimization*, 2004,
    5.5.3; the same water-filling as power allocation over parallel channels, T. M.
    Cover and J. A. Thomas, *Elements of Information Theory*, 9.4). A pair whose
    change gains nothing keeps none of it. With ``sensitivity`` (per block, see
    :func:`ssim_sensitivity`) the ratio is taken against ``c (1 + SSIM_WEIGHT *
    sensitivity)``: the budget is still the plain energy, but a change in a flat
    neighbourhood, which costs SSIM most, must buy more. Shape ``coef.shape[:3]``.
    """
    from ._detect import SOFT_CLIP, SOFT_RELATIVE, SOFT_SCALE, _observations

    marked = coef + delta
    floor = max(float(np.median(np.hypot(marked[..., 0], marked[..., 1]))) * SOFT_SCALE, 1e-3)
    tsz = tile_bits.shape[0]
    before = _observations(np.ascontiguousarray(coef, dtype=np.float32), dither, 0, 0, floor,
                           SOFT_RELATIVE, SOFT_CLIP, tsz, None)
    after = _observations(np.ascontiguousarray(marked, dtype=np.float32), dither, 0, 0,
                          floor, SOFT_RELATIVE, SOFT_CLIP, tsz, None)
    sign = 1.0 - 2.0 * tile_bits.reshape(-1)[before.slot]  # positive score = bit 0
    gain = np.maximum(sign * (after.score - before.score), 0.0)
    cost = np.square(delta, dtype=np.float64).sum(axis=-1).ravel()
    # Gain per unit of (SSIM-weighted) energy; a change that costs nothing is kept whole.
    weighted = cost
    if sensitivity is not None:
        weighted = cost * (1.0 + SSIM_WEIGHT * np.repeat(sensitivity.ravel(), coef.shape[2]))
    ratio = np.divide(gain, weighted, out=np.full_like(cost, np.inf), where=cost > 0)
    lo, hi = 1e-12, 1e12
    for _ in range(BUDGET_STEPS):
        lam = math.sqrt(lo * hi)
        t = np.minimum(1.0, ratio / (2.0 * lam))
        if float((cost * t * t).sum()) > budget:
            lo = lam
        else:
            hi = lam
    return np.minimum(1.0, ratio / (2.0 * hi)).reshape(coef.shape[:3])


#: Weight of a block's SSIM sensitivity in the cost :func:`budget_shares` compares
#: gains with. Cut by energy alone, the budget went to small-radius pairs, which sit in
#: flat neighbourhoods where SSIM is most sensitive: a 384x288 photo (coffee) then fell
#: to a weaker template under the SSIM floor (gain 0.5) and its screenshot was lost;
#: with the weight 3 it kept 0.7, as before. On the corpus' ten PSNR-bound images
#: under 1.3 MP (bar15 set, 632 copies) 3 read as many copies as 0 (526), 10 fewer (520).
SSIM_WEIGHT = 3.0


def ssim_sensitivity(rgb: np.ndarray, var: np.ndarray | None = None) -> np.ndarray:
    """Per whole block, the mean over its pixels and channels of ``C2 / (2 var +
    C2)``, ``var`` being the variance of SSIM's 7x7 window there (:class:`SSIMReference`):
    what a small change costs SSIM relative to a flat window (1 flat, near 0 busy;
    adding noise of variance ``v`` to a window lowers its contrast-structure term by
    about ``v / (2 var + C2)``, Wang et al. 2004). ``var``: those variances when an
    :class:`SSIMReference` of ``rgb`` computed them already."""
    from .kernels import box_moments

    nby, nbx = rgb.shape[0] // BLOCK_PX, rgb.shape[1] // BLOCK_PX
    C = SSIMReference
    if var is None:
        x = np.ascontiguousarray(rgb, dtype=np.uint8)
        mean = np.zeros(x.shape, np.float64)
        var = np.zeros(x.shape, np.float64)  # the 3-pixel border stays 0: counted as flat
        box_moments(x, C._HALF, C._NORM, mean, var)
    sens = C._C2 / (2.0 * var[:nby * BLOCK_PX, :nbx * BLOCK_PX] + C._C2)
    return sens.reshape(nby, BLOCK_PX, nbx, BLOCK_PX, 3).mean(axis=(1, 3, 4))


def psnr_budget(n_pixels: int, min_psnr: float) -> float:
    """Squared error (per channel, summed over pixels) that keeps the PSNR at
    ``min_psnr``, less what uint8 rounding adds (about 1/12 per pixel)."""
    return n_pixels * (255.0**2 / 10 ** (min_psnr / 10.0) - 1.0 / 12.0)


def template_energy(tamp: np.ndarray) -> float:
    """Squared error of the template with per-block amplitudes ``tamp``: its 16 unit
    cosines average 8 per pixel."""
    return float(np.square(tamp, dtype=np.float64).sum()) * BLOCK_PX * BLOCK_PX * N_FREQS / 2


#: Share of a small source's extra template gain kept whatever the QIM mark needs.
#: All of it: on the corpus (73 images, 9 attacks), keeping half lost the geometry of
#: five busy 0.26-0.5 MP photos at the PSNR floor (astronaut, grace-hopper, two
#: hugin photos, motorcycle: 27 of their 30 resized, rotated or squashed copies),
#: which the full gain reads; the QIM mark they then lack is tolerated by
#: MAX_WRONG_SLOT_SHARE. A mark refused that way is tried again with less of the
#: extra gain kept (TEMPLATE_FALLBACK_KEEPS): a 320x300 black-and-white drawing read
#: back with 33 of 120 code bits wrong beside the full template.
TEMPLATE_KEEP = 1.0
#: What a mark refused beside the full template tries next, in turn: these shares of
#: the template's extra gain (0: the base amplitudes), then no template (None). Each
#: step gives the QIM mark more of the budget. With the steps 0 and None alone,
#: hugin-pantheon (360x405, busy) fell from the full gain to the base amplitudes and
#: lost every resized and rotated copy; its marks now keep 0.3 and 0.5 of the gain and
#: read 49 of 60 bar15 copies instead of 39.
TEMPLATE_FALLBACK_KEEPS = (0.7, 0.5, 0.3, 0.0, None)
#: Where the PSNR floor binds and the template written with the mark does not lock on
#: the written image itself (its coherent match, :func:`provmark._template.phase_lock`,
#: under the detector's :data:`provmark._detect.LOCK_Z`), no copy of it will lock
#: either: the mark is written without a template (embedder revision 8), and the
#: carriers get the budget. gimp-slider-help, a white help page (locks 3.7 and 5.2,
#: where every other corpus image locks from 6.3) then read 34-38 of its 400 channel
#: bits wrong at rest instead of 100-110, and 56 of its 68 bar15 copies instead of 48:
#: none of its resized copies read either way. Checked only where the budget binds
#: (only there does the template take from the carriers; a lock costs 5-10 ms at
#: 1920x1080).
BARE_BELOW_LOCK = True


def template_locks(marked: np.ndarray, key: bytes) -> bool:
    """Whether the template written in ``marked`` locks on it as the detector's lock
    on a copy would (:data:`provmark._detect.LOCK_Z`), at its own lattice factor."""
    from ._detect import LOCK_Z, read_luma
    from ._template import phase_lock

    plane = np.ascontiguousarray(read_luma(marked), np.float32)
    return phase_lock(plane, key, template_factor(*marked.shape[:2]))[0] >= LOCK_Z


def fit_template(full: np.ndarray, base: np.ndarray, qim_energy: float, budget: float,
                 keep: float = TEMPLATE_KEEP) -> np.ndarray:
    """The template's amplitudes within the PSNR budget: of the extra gain of a small
    source (``full`` over ``base``, the 1 MP amplitudes) at least the share ``keep``
    stays, and the rest is given up before the QIM mark is attenuated."""
    if qim_energy + template_energy(full) <= budget:
        return full
    floor = base + keep * (full - base)
    if qim_energy + template_energy(floor) >= budget:
        return floor.astype(np.float32)
    lo, hi = keep, 1.0
    for _ in range(16):  # bisection on the share of the extra gain kept
        mid = 0.5 * (lo + hi)
        if qim_energy + template_energy(base + mid * (full - base)) <= budget:
            lo = mid
        else:
            hi = mid
    return (base + lo * (full - base)).astype(np.float32)


def _slot_agreement(coef, delta, tile_bits, dither):
    """Mean signed soft score per slot that the detector will see on the marked image
    (computed from ``coef + delta``; rounding to uint8 and the per-pixel
    clamp move it only slightly), and the code-bit decisions it implies."""
    from ._detect import soft_scores

    marked = coef + delta
    # Pairs smaller than the uint8 rounding noise will not survive being written
    # out (a saturated white block "decodes" at 1e-13 in float): count them as 0.
    weak = np.hypot(marked[..., 0], marked[..., 1]) < MIN_READABLE_RADIUS
    marked[weak] = 0.0
    score, count = soft_scores(marked, dither)
    sign = 1.0 - 2.0 * tile_bits
    return sign * score / np.maximum(count, 1.0)


def plan_embedding(rgb: np.ndarray, payload: Payload, key: bytes, strength: float = 1.0,
                   min_psnr: float = 40.0, texture_gain: float = 1.0,
                   floor_factor: float = 1.0, boost: np.ndarray | None = None,
                   template_keep: float | None = TEMPLATE_KEEP, template_gain: float = 1.0,
                   informed: bool = False
                   ) -> tuple[np.ndarray, float, int, np.ndarray, int, np.ndarray]:
    """Compute the coefficient changes for ``payload`` and check them.

    Returns ``(delta, scale, wrong_code_bits, template_amplitude, wrong_slots,
    boost)``: ``delta`` already fitted to the PSNR budget, ``scale`` the attenuation
    that cost (:func:`fit_budget`); the image is not touched. See :func:`_closed_loop`
    for the weak-slot boosting (``boost``: the cap multipliers to start from, per tile
    slot). A strength under 1 also spends at most its square of the budget: where the
    budget binds, lowering the targets alone would leave the energy (and the SSIM
    cost) where it was. ``informed``: the moves start from each pair plus the
    template's share of it (:func:`template_pair_offsets`; see :func:`_mark_once`).
    """
    layout = keyed_layout(key)
    code_bits = _codec.encode(payload, key)
    tile_bits = tile_symbols(payload, key)
    params = DEFAULT_STRENGTH.scaled(strength).adapted(texture_gain, floor_factor)
    tile = keyed_template(key, template_factor(*rgb.shape[:2])).tile if informed else None
    return _closed_loop(rgb, tile_bits, layout, params, min_psnr, code_bits, boost,
                        template_keep, template_gain, min(1.0, strength) ** 2, tile)


def tile_symbols(payload: Payload, key: bytes) -> np.ndarray:
    """The (T, T, P) symbols of the tile carrying ``payload`` under ``key``."""
    code_bits = _codec.encode(payload, key)
    return keyed_layout(key).tile_bits(_convolutional.encode(code_bits, _codec.CHANNEL_BITS))


def _closed_loop(rgb, tile_bits, layout, params, min_psnr, code_bits, boost=None,
                 template_keep=TEMPLATE_KEEP, template_gain=1.0, budget_share=1.0,
                 template_tile=None):
    """Embed, look at what the detector will read, and give the slots that came out
    weak (busy blocks whose rotation hit the cap) a larger cap. The QIM changes get
    ``budget_share`` of what the PSNR floor leaves beside the template; returns
    ``(delta, scale, wrong_code_bits, template_amplitude, wrong_slots)``, where the
    wrong code bits are counted after the inner (Viterbi) decoder, as the detector
    would see them, and the wrong slots (channel bits) before it. With
    ``template_tile`` (the template's tile), the moves start from each pair plus the
    template's share of it once its amplitudes are fitted, and the budget and the
    prediction see that share too."""
    channel_bits = tile_bits.reshape(-1)[layout.code_slots]
    channel_sign = 1.0 - 2.0 * channel_bits
    h, w = rgb.shape[:2]
    dither = layout.dither
    boost = np.ones(tile_bits.shape, np.float64) if boost is None else boost
    agreement = None
    full = None
    budget = psnr_budget(h * w, min_psnr)
    known: list[np.ndarray] = []

    def sensitivity() -> np.ndarray:  # computed once, and only if the budget binds
        if not known:
            known.append(_OriginalMoments.sensitivity_of(rgb))
        return known[0]

    for extra in (None,) + BOOST_PASSES:
        if extra is not None:
            boost = np.where(agreement < WEAK_SLOT, np.maximum(boost, extra), boost)
        delta, coef = compute_deltas(rgb, tile_bits, dither, params, boost)
        if full is None:
            factor = template_factor(h, w)
            full, base = block_amplitude(coef, factor), block_amplitude(coef, factor, (1.0, 1.0))
        tamp = np.zeros_like(full) if template_keep is None else fit_template(
            full, base, float(np.square(delta, dtype=np.float64).sum()), budget, template_keep)
        if template_gain != 1.0:
            tamp = (tamp * np.float32(template_gain)).astype(np.float32)
        start = coef
        if template_tile is not None and np.any(tamp):
            # The moves again, from the pairs with the template's share added.
            offset = template_pair_offsets(template_tile, tamp)
            delta, _ = compute_deltas(rgb, tile_bits, dither, params, boost, offset)
            start = coef + offset
        qim_budget = budget - template_energy(tamp)
        delta, scale = fit_budget(start, delta, tile_bits, dither, budget_share * qim_budget,
                                  sensitivity)
        agreement = _slot_agreement(start, delta, tile_bits, dither)
        # Agreement is signed by the symbol (positive = right); the Viterbi decoder
        # wants positive = bit 0.
        soft = agreement.reshape(-1)[layout.code_slots] * channel_sign
        if np.all(soft * channel_sign > 0):
            # Every channel bit has the right sign: the codeword itself reaches the
            # largest possible correlation, so maximum-likelihood decoding returns it
            # (skips the Viterbi pass, 0.6 ms at 1920x1080).
            wrong = 0
        else:
            decided, _ = _convolutional.decode(soft, code_bits.size)
            wrong = int((decided != code_bits).sum())
        if wrong == 0 and (agreement > WEAK_SLOT).mean() > 0.9:
            break
    return (delta, scale, wrong, tamp, int((agreement.reshape(-1)[layout.code_slots] < 0).sum()),
            boost)


def _read_back(marked: np.ndarray, code_bits: np.ndarray, key: bytes,
               tile_bits: np.ndarray) -> tuple[int, np.ndarray | None]:
    """Code bits the detector gets wrong (after Viterbi) on the written image, and,
    when some are, the written image's mean signed soft score per slot (as
    :func:`_slot_agreement`)."""
    from ._detect import calibrated_scores, grid_pairs, read_luma, soft_scores

    layout = keyed_layout(key)
    coef = grid_pairs(read_luma(marked))
    code_score = calibrated_scores(coef, key)
    decided, _ = _convolutional.decode(code_score[layout.code_slots], code_bits.size)
    wrong = int((decided != code_bits).sum())  # positive score = bit 0
    if wrong == 0:
        return 0, None
    score, count = soft_scores(coef, layout.dither)
    return wrong, (1.0 - 2.0 * tile_bits) * score / np.maximum(count, 1.0)


#: Passes that boost the slots read weak in the written image when it does not read
#: back (the prediction cannot see uint8 clipping: on a white-background document,
#: half of every change in the white is clipped away), and the cap multiplier they
#: give those slots. Images with more than SATURATED_SHARE of their pixels within
#: SATURATED_LEVELS of black or white are always read back (a quarter: documents on
#: white; a photo with a dark background, such as astronaut with 10-20%, is not read
#: back for that alone, which kept 11 ms off a 1920x1080 embed).
REALITY_PASSES = 2
REALITY_BOOST = 8.0
SATURATED_SHARE = 0.25
SATURATED_LEVELS = 4


#: A mark whose channel bits are predicted wrong in more than this share before any
#: attack is refused (typical photos predict none wrong). It was 5%: busy photos of
#: 0.1-0.2 MP at the 40 dB floor predict 6-13% wrong, and such marks (their written
#: image must still read back) survived JPEG 50, WebP 50 and blur 1.5 (384x288
#: bluebells, 466x372 screenshot), where a refusal leaves the image unmarked.
MAX_WRONG_SLOT_SHARE = 0.15


@dataclass(frozen=True)
class Marked:
    """Outcome of :func:`mark_array`: ``image`` is None when the mark is refused."""

    image: np.ndarray | None
    wrong_code_bits: int  # after the Viterbi decoder (0 = reads back)
    wrong_slots: int  # channel bits predicted wrong before decoding
    scale: float  # attenuation imposed by the PSNR floor (1 = none)
    texture_gain: float = 1.0  # the adaptive gain on margins and caps (1 = none)
    floor_factor: float = 1.0  # the adaptive gain on the textured-block floor (1 = none)
    template_keep: float | None = TEMPLATE_KEEP  # share of its extra gain kept (None: no template)
    read_back: bool = False  # refused after reading the written image back
    template_gain: float = 1.0  # template amplitude multiplier (< 1: lowered for SSIM)
    strength: float = 1.0  # the strength it was written with
    clip_gain: float | None = None  # change-limit gain of the clipping compensation (None: none)
    extension: float = 0.0  # strength of the extension carriers (0: none written)


#: Adaptive strength: images with fewer tile repetitions than this (under about
#: 0.5 MP) have little redundancy against compression, so they get a stronger mark
#: while the SSIM to the original stays at least ADAPT_MIN_SSIM (busy photos have no
#: headroom: hubble_deep_field is at 0.980 with the default and keeps it). First the
#: floor of blocks with some texture is raised ADAPT_FLOOR times (never the floor of
#: flat blocks), then the margins and caps by up to ADAPT_MAX with what SSIM is left.
#: Why the floor first: a darkened and recompressed copy (JPEG 60 + crop to 71% +
#: brightness x0.5) loses every pair whose radius falls under about 16 units, read
#: right 50-75% of the time against 97% above (rocket and retina at 512x512). On
#: rocket and retina at 512x512, 16 copies each at the true grid, the floor first
#: decoded 9 and 16 where margins and caps alone decoded 4 and 12, at the same SSIM
#: (benchmarks/RESULTS.md, session 4 tuning notes).
ADAPT_BELOW_TILES = 8
ADAPT_FLOOR = 2.0
ADAPT_MAX = 2.0
ADAPT_MIN_SSIM = 0.982


class SSIMReference:
    """Structural similarity to a fixed uint8 RGB image, mean over the channels.

    The definition of scikit-image's ``structural_similarity`` with its defaults (7x7
    uniform window, sample covariance, K1 = 0.01, K2 = 0.03, data range 255, the
    3-pixel border left out), which the robustness benchmark reports (agreement
    checked in ``tests/test_api.py``). The reference's window statistics are computed
    once; each comparison is one fused kernel pass (``kernels/_quality.py``), about
    2 ms at 512x512. Over SSIM_CHECK_PIXELS they are not kept (48 bytes a pixel:
    2.4 GB for a 50 MP scan) and each comparison is one pass of :func:`ssim`.
    Z. Wang et al., "Image quality assessment: from error visibility to structural
    similarity", IEEE TIP 13(4), 2004.
    """

    _C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    _HALF = 3  # 7x7 window; also the border left out of the mean
    _NORM = 49.0 / 48.0

    def __init__(self, reference: np.ndarray):
        from .kernels import box_moments

        self._x = np.ascontiguousarray(reference, dtype=np.uint8)
        self._ux = self._vx = None
        if self._x.shape[0] * self._x.shape[1] > SSIM_CHECK_PIXELS:
            return
        self._ux = np.zeros(self._x.shape, np.float64)
        self._vx = np.zeros(self._x.shape, np.float64)
        box_moments(self._x, self._HALF, self._NORM, self._ux, self._vx)

    def score(self, image: np.ndarray) -> float:
        from .kernels import ssim_mean_against

        y = np.ascontiguousarray(image, dtype=np.uint8)
        if self._ux is None:
            return ssim(self._x, y)
        return float(ssim_mean_against(self._x, y, self._ux, self._vx, self._HALF,
                                       self._C1, self._C2, self._NORM))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two uint8 RGB images (as :class:`SSIMReference`, in one pass that
    keeps no planes of window moments: for a single comparison)."""
    from .kernels import ssim_mean

    C = SSIMReference
    return float(ssim_mean(np.ascontiguousarray(a, dtype=np.uint8),
                           np.ascontiguousarray(b, dtype=np.uint8), C._HALF, C._C1, C._C2,
                           C._NORM))


#: Structural similarity floor of every mark at the default strength (or weaker) on
#: images up to SSIM_CHECK_PIXELS (the robustness benchmark's bar is 0.98; the aim
#: leaves a little room): a mark under it
#: is written again with a weaker QIM mark, then a weaker template
#: (:data:`SSIM_FALLBACKS`). On the corpus, two images were under 0.98: a dark
#: 880x705 photo of Neptune (0.976: flat black around a small bright disc) and a
#: 390x375 dialog screenshot (0.978, where the template alone cost 0.007).
MIN_SSIM = 0.9802
#: Larger images are not checked: their SSIM was at least 0.985 on the corpus (18
#: images over 2 MP; 0.9816 the lowest of 1.0-2 MP), and the check would double the
#: embed time of a 1024x1024 or 1920x1080 image. A mark with the clipping
#: compensation is checked whatever its size: on a 1.02 MP night map (flat black,
#: where a change can only brighten) it brought the SSIM to 0.976.
SSIM_CHECK_PIXELS = 1_000_000
#: ``(template gain, strength factor)`` pairs tried in turn until the SSIM holds and
#: the mark still reads back: the QIM strength first, the template (which carries the
#: geometry) after. Measured on the two corpus images under the floor (68 attacked
#: copies each, bar15 set): template first, the dark photo kept 44 of its copies and
#: the screenshot 36; strength first, 61 and 36 (60 and 30 without any floor).
SSIM_FALLBACKS = ((1.0, 0.85), (1.0, 0.7), (0.7, 1.0), (0.7, 0.85), (0.5, 1.0), (0.5, 0.8),
                  (0.3, 0.8), (0.3, 0.6), (0.0, 0.6))


class _OriginalMoments:
    """The original image's SSIM window moments, computed once per :func:`mark_array`
    call. The adaptive strength, the SSIM floor and the extension each compare
    candidates with the original (:class:`SSIMReference`), and every closed loop
    weighs the budget by :func:`ssim_sensitivity`, which needs the same window
    variances: on a 512x512 photo they were computed 5 times, 30 of the embed's 117
    ms. Only the array ``mark_array`` was given is cached (a reduced copy, the coarse
    layer's, gets its own), and only while that call runs."""

    def __init__(self, rgb: np.ndarray):
        self.rgb = rgb
        self._reference: SSIMReference | None = None
        self._sensitivity: np.ndarray | None = None

    @staticmethod
    def _of(rgb: np.ndarray) -> "_OriginalMoments | None":
        current = _ORIGINAL.get()
        return current if current is not None and current.rgb is rgb else None

    @classmethod
    def reference_of(cls, rgb: np.ndarray) -> SSIMReference:
        memo = cls._of(rgb)
        if memo is None:
            return SSIMReference(rgb)
        if memo._reference is None:
            memo._reference = SSIMReference(rgb)
        return memo._reference

    @classmethod
    def sensitivity_of(cls, rgb: np.ndarray) -> np.ndarray:
        memo = cls._of(rgb)
        if memo is None:
            return ssim_sensitivity(rgb)
        if memo._sensitivity is None:
            # the reference's window variances, where it keeps them (not above
            # SSIM_CHECK_PIXELS, where the sensitivity computes its own)
            small = rgb.shape[0] * rgb.shape[1] <= SSIM_CHECK_PIXELS
            var = cls.reference_of(rgb)._vx if small else None
            memo._sensitivity = ssim_sensitivity(rgb, var)
        return memo._sensitivity


_ORIGINAL: contextvars.ContextVar[_OriginalMoments | None] = contextvars.ContextVar(
    "provmark_original_moments", default=None)


def mark_array(rgb: np.ndarray, payload: Payload, key: bytes, strength: float = 1.0,
               min_psnr: float = 40.0, adapt: bool = True) -> Marked:
    """Write the mark into a copy of ``rgb`` (with the adaptive strength, see
    :data:`ADAPT_BELOW_TILES`, and the SSIM floor, :data:`MIN_SSIM`), or refuse when
    it would not read back; on a smooth image large enough, with a coarse layer
    (:func:`_with_coarse_layer`)."""
    token = _ORIGINAL.set(_OriginalMoments(rgb))
    try:
        return _mark_array(rgb, payload, key, strength, min_psnr, adapt)
    finally:
        _ORIGINAL.reset(token)


def _mark_array(rgb, payload, key, strength, min_psnr, adapt) -> Marked:
    marked = _mark_fine(rgb, payload, key, strength, min_psnr, adapt)
    if (marked.image is not None and min(rgb.shape[:2]) >= COARSE_MIN_SIDE
            and _psnr(rgb, marked.image) >= min_psnr + COARSE_HEADROOM):
        # smooth: add the coarse layer (a textured image's fine mark survives
        # compression, and its budget is spent)
        marked = _with_coarse_layer(rgb, marked, payload, key, strength, min_psnr) or marked
    if (marked.image is None or not adapt
            or rgb.shape[0] * rgb.shape[1] > EXTENSION_MAX_PIXELS):
        return marked
    return _with_extension(rgb, marked, payload, key, strength, min_psnr)


#: Extension carriers (embedder revision 6; :data:`provmark._layout.EXTENSION_PAIRS`,
#: docs/format.md 5.8). On a smooth image the carriers' flat-area floor falls in the
#: dead zone of WebP 50 and JPEG 30, and only its few textured blocks carry the
#: mark; there the extension pairs repeat every slot's symbol, lower in frequency,
#: where texture masks them. They get no floor (a flat block is left as it is), the
#: carriers' margins and texture-dependent cap but EXTENSION_CAP_SHARE of their base
#: cap: at the full base cap the extension turned the gradient of blocks along a
#: soft edge (lomiri-fossa's folds) into visible 16-px steps at 2x, at half it did
#: not, and read nearly as well (scratch runs on 5 smooth images, session 25). Their
#: change is added within what the per-pixel visibility bound (:func:`change_limit`)
#: left. Written on images up to
#: EXTENSION_MAX_PIXELS (the SSIM is checked there anyway: :data:`SSIM_CHECK_PIXELS`)
#: whose mark is at least EXTENSION_HEADROOM dB above the PSNR floor, at the first
#: of EXTENSION_STRENGTHS that keeps the PSNR floor and :data:`MIN_SSIM` and leaves
#: the mark reading back on its carriers alone. Measured on bar15 (session 25,
#: benchmarks/RESULTS.md).
EXTENSION_MAX_PIXELS = 1_000_000
EXTENSION_HEADROOM = 1.0
EXTENSION_STRENGTHS = (1.0, 0.6)
EXTENSION_CAP_SHARE = 0.5


def _with_extension(rgb: np.ndarray, marked: Marked, payload: Payload, key: bytes,
                    strength: float, min_psnr: float) -> Marked:
    """``marked`` with the extension carriers added (see :data:`EXTENSION_STRENGTHS`),
    or ``marked`` itself where they do not fit."""
    from ._layout import EXTENSION_PAIRS, extension_dither

    image = marked.image
    if _psnr(rgb, image) < min_psnr + EXTENSION_HEADROOM:
        return marked
    nby, nbx = rgb.shape[0] // BLOCK_PX, rgb.shape[1] // BLOCK_PX
    # What the visibility bound leaves of every LL cell (2x2 pixels) after the mark.
    # (elementwise maxima of strided views: NumPy's axis reductions took 9 ms at 0.3 MP)
    diff = np.abs(np.subtract(image[:nby * BLOCK_PX, :nbx * BLOCK_PX],
                              rgb[:nby * BLOCK_PX, :nbx * BLOCK_PX], dtype=np.int16))
    diff = np.maximum(np.maximum(diff[..., 0], diff[..., 1]), diff[..., 2])
    used = np.maximum(np.maximum(diff[0::2, 0::2], diff[0::2, 1::2]),
                      np.maximum(diff[1::2, 0::2], diff[1::2, 1::2]))
    room = np.maximum(change_limit(rgb) - used, 0.0).astype(np.float32)
    tile_bits = tile_symbols(payload, key)
    code_bits = _codec.encode(payload, key)
    dither = extension_dither(key)
    no_template = np.zeros((8, 8), np.float32)
    reference = _OriginalMoments.reference_of(rgb)
    for factor in EXTENSION_STRENGTHS:
        p = DEFAULT_STRENGTH.scaled(strength * factor)
        delta = np.empty((nby, nbx, EXTENSION_PAIRS.shape[0], 2), np.float32)
        coef = np.empty_like(delta)
        aqim_embed_deltas(image, EXTENSION_PAIRS, tile_bits, dither,
                          np.ones(tile_bits.shape), _C64, 0.0, 0.0, 0.0, p.margin,
                          p.min_angle, p.cap_base * EXTENSION_CAP_SHARE, p.cap_texture,
                          np.zeros_like(delta), delta, coef)
        out = np.empty_like(image)
        apply_block_deltas(image, EXTENSION_PAIRS, delta, _C64, 1.0, room, no_template,
                           np.zeros((nby, nbx), np.float32), out)
        if (_psnr(rgb, out) >= min_psnr and reference.score(out) >= MIN_SSIM
                and _read_back(out, code_bits, key, tile_bits)[0] == 0):
            return dataclasses.replace(marked, image=out, extension=strength * factor)
    return marked


#: The coarse layer (embedder revision 3). On smooth images the fine mark's flat-area
#: floor (about 0.4 grey levels on 16-px carriers) falls in the dead zone of WebP 50
#: and JPEG 30 (benchmarks/RESULTS.md, "What WebP 50 does to the carriers"): read at
#: the true grid, half the channel bits came out wrong. The same version-1 mark
#: written on the image reduced by 2 (INTER_AREA) and its change scaled back up
#: (bilinear) puts the carriers at 32 px, where WebP keeps 2-7 times more of them; a
#: reader sees it as the mark of a copy enlarged by 2 (the detector reads it on the
#: copy reduced by 2 right after the aligned grid,
#: :meth:`provmark._detect._Search.coarse_layer`). Writing at a lower resolution and
#: scaling the residual up: T. Bui et al., "TrustMark: universal watermarking for
#: arbitrary resolution images", arXiv:2311.18297, 2023.
#: Written only where the fine mark alone stays COARSE_HEADROOM dB or more above the
#: PSNR floor (the smooth images that lost WebP 50: 46-52 dB on the corpus; textured
#: photos are at 40-44 and keep their fine mark through compression), the coarse
#: mark alone fits under that floor unattenuated too, and the short side is at least
#: COARSE_MIN_SIDE (the reduced image must hold a whole tile).
COARSE_MIN_SIDE = 512
COARSE_HEADROOM = 5.0
#: The coarse layer is kept only while the SSIM to the original stays at least this
#: (the adaptive strength's aim, ADAPT_MIN_SSIM: the coarse layer does not spend
#: what the fine mark left under it).
COARSE_MIN_SSIM = 0.982
#: Strengths of the coarse layer tried in turn (relative to the fine mark's).
COARSE_STRENGTHS = (1.0, 0.6)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two uint8 images of the same shape."""
    import cv2

    mse = cv2.norm(a, b, cv2.NORM_L2SQR) / a.size
    return 10.0 * math.log10(255.0**2 / max(mse, 1e-12))


def _with_coarse_layer(rgb: np.ndarray, fine: Marked, payload: Payload, key: bytes,
                       strength: float, min_psnr: float) -> Marked | None:
    """The fine mark ``fine`` with the coarse layer (see :data:`COARSE_MIN_SIDE`)
    added, at the first of :data:`COARSE_STRENGTHS` where it fits, or None.

    The coarse mark is written on the fine-marked image reduced by 2, within the PSNR
    budget the fine mark left and unattenuated under ``min_psnr +``
    :data:`COARSE_HEADROOM` (else the next strength is tried), without a template (the fine mark's serves both) and
    without the adaptive strength or the fine mark's SSIM fallbacks (the reduced
    image of a 1-2 MP source is "small", but this is a second mark: stronger, it
    mottled debian-softwaves' sky at 2x; the SSIM that counts is the whole's). Its
    change, enlarged by 2, is added to the fine-marked image. It fits when the PSNR
    and the SSIM to the original stay at least ``min_psnr`` and
    :data:`COARSE_MIN_SSIM` and both marks still read back on their aligned grids."""
    import cv2

    from ._detect import read_both

    fine_image = fine.image
    h2, w2 = rgb.shape[0] // 2, rgb.shape[1] // 2
    left = 10.0 ** (-min_psnr / 10.0) - 10.0 ** (-_psnr(rgb, fine_image) / 10.0)
    # The coarse mark alone must fit under min_psnr + COARSE_HEADROOM too: a reduced
    # image with texture (the 1920x1080 upscale of a 512x512 photo is smooth at full
    # size, not at half) would spend the whole budget on it and cost SSIM.
    floor = max(-10.0 * math.log10(left), min_psnr + COARSE_HEADROOM)
    for factor in COARSE_STRENGTHS:
        small = cv2.resize(np.ascontiguousarray(fine_image[:2 * h2, :2 * w2]), (w2, h2),
                           interpolation=cv2.INTER_AREA)
        coarse = _mark_once(small, payload, key, strength * factor, floor, template_keep=None)
        if coarse.image is None or coarse.scale < 0.999:
            continue
        change = np.subtract(coarse.image, small, dtype=np.int16)
        del coarse, small  # the checks below read a 50 MP image within 4x its size
        out = np.empty_like(fine_image)
        add_enlarged_change(fine_image, change, out)
        del change
        if (_psnr(rgb, out) >= min_psnr and read_both(out, key) == (payload, payload)
                and ssim(rgb, out) >= COARSE_MIN_SSIM):
            return Marked(out, 0, fine.wrong_slots, fine.scale, fine.texture_gain,
                          fine.floor_factor, fine.template_keep, fine.read_back,
                          fine.template_gain, fine.strength)
    return None


def _mark_fine(rgb: np.ndarray, payload: Payload, key: bytes, strength: float,
               min_psnr: float, adapt: bool) -> Marked:
    """The fine mark alone (see :func:`mark_array`)."""
    limit = change_limit(rgb)
    marked, reference = _mark_adapted(rgb, payload, key, strength, min_psnr, adapt, limit)
    # A strength above the default is a request for a more visible, more robust mark:
    # the floor is the default's quality promise, as min_psnr is the caller's.
    if (marked.image is None or strength > 1.0
            or (rgb.shape[0] * rgb.shape[1] > SSIM_CHECK_PIXELS and marked.clip_gain is None)):
        return marked
    reference = reference or _OriginalMoments.reference_of(rgb)
    if reference.score(marked.image) >= MIN_SSIM:
        return marked
    # At every rung the clipping compensation is given up first: it buys robustness on
    # black and white but costs SSIM (on a 0.2 MP dialog screenshot it took the
    # template's gain down two more rungs, and the dialog's resized copies with it).
    clip_gains = (marked.clip_gain,) + CLIP_FALLBACKS if marked.clip_gain is not None else (None,)
    for gain, factor in ((marked.template_gain, 1.0),) + SSIM_FALLBACKS:
        for clip_gain in clip_gains:
            if (gain, factor, clip_gain) == (marked.template_gain, 1.0, marked.clip_gain):
                continue  # the mark itself
            weaker = _mark_once(rgb, payload, key, marked.strength * factor, min_psnr,
                                marked.texture_gain if factor == 1.0 else 1.0,
                                marked.floor_factor if factor == 1.0 else 1.0, limit=limit,
                                template_keep=marked.template_keep, template_gain=gain,
                                clip_gain=clip_gain)
            if weaker.image is not None and reference.score(weaker.image) >= MIN_SSIM:
                return weaker
    return marked


def _mark_adapted(rgb: np.ndarray, payload: Payload, key: bytes, strength: float,
                  min_psnr: float, adapt: bool, limit: np.ndarray
                  ) -> tuple[Marked, SSIMReference | None]:
    """The mark at the default strength, or stronger on a small image while the SSIM
    allows (:data:`ADAPT_BELOW_TILES`); also the SSIM reference if one was made."""
    base = _mark_once(rgb, payload, key, strength, min_psnr, limit=limit)
    # The QIM mark first: give up the template's extra gain (see TEMPLATE_KEEP), and
    # as a last resort the template itself (the mark then reads on the aligned grid
    # and after crops, not after resizes): a flat 3640x2400 artwork's coarse template
    # (factor 4, at the carriers' frequencies) left 72 of 120 code bits wrong, 11 at
    # the base amplitude.
    for keep in TEMPLATE_FALLBACK_KEEPS:
        if base.image is not None:
            break
        base = _mark_once(rgb, payload, key, strength, min_psnr, limit=limit, template_keep=keep)
    if (BARE_BELOW_LOCK and base.image is not None and base.template_keep is not None
            and base.scale < 0.999 and not template_locks(base.image, key)):
        bare = _mark_once(rgb, payload, key, strength, min_psnr, limit=limit, template_keep=None)
        base = bare if bare.image is not None else base
    tiles = (rgb.shape[0] // BLOCK_PX) * (rgb.shape[1] // BLOCK_PX) / 256.0
    if not adapt or base.image is None or tiles >= ADAPT_BELOW_TILES:
        return base, None
    reference = _OriginalMoments.reference_of(rgb)
    budget = 1.0 - ADAPT_MIN_SSIM
    # The raised floor first; the default's SSIM is only needed when it does not fit
    # (one SSIM evaluation, a third of the adaptive path's time, saved on most photos).
    start, deficit = base, None
    floored = _mark_once(rgb, payload, key, strength, min_psnr, floor_factor=ADAPT_FLOOR,
                         limit=limit, template_keep=base.template_keep)
    if floored.image is not None:
        floored_deficit = 1.0 - reference.score(floored.image)
        if floored_deficit <= budget:
            start, deficit = floored, floored_deficit
    if deficit is None:
        deficit = 1.0 - reference.score(base.image)
        if deficit > budget:
            return base, reference
    # SSIM's deficit grows about in proportion to the margins here (measured: retina
    # 0.0119 at 1.0, 0.0163 at 1.3, 0.0192 at 1.5): aim at the floor, then halfway,
    # and keep the start if neither holds.
    room = budget / deficit if deficit > 0 else ADAPT_MAX
    factor = min(ADAPT_MAX, room)
    for f in (factor, 1.0 + (factor - 1.0) / 2.0):
        if f < 1.1:
            break
        marked = _mark_once(rgb, payload, key, strength, min_psnr, f, start.floor_factor,
                            limit=limit, template_keep=base.template_keep)
        if marked.image is not None and reference.score(marked.image) >= ADAPT_MIN_SSIM:
            return marked, reference
    return start, reference


#: Bound of the change in flat neighbourhoods (grey levels) and its growth with the
#: local standard deviation of the luma (at LL resolution, a window of LIMIT_WINDOW
#: samples, i.e. about 8x8 pixels): a block that holds a small bright object in a flat
#: sky (rocket's mast tip) has texture, so its symbols may change a lot, but that
#: change spread over the block's flat part as a dark 16-px blotch (10 grey levels
#: against at most 3 elsewhere in the sky). Elsewhere the flat-area floor stays
#: under this bound.
LIMIT_FLAT = 3.0
LIMIT_SLOPE = 1.0
LIMIT_WINDOW = 4


def change_limit(rgb: np.ndarray, max_change: float = DEFAULT_STRENGTH.max_change
                 ) -> np.ndarray:
    """The change bound of every 2x2 pixel cell of the whole blocks (LL resolution,
    float32): ``LIMIT_FLAT + LIMIT_SLOPE * local std``, at most ``max_change``
    (:func:`provmark.kernels.change_bound`)."""
    nby, nbx = rgb.shape[0] // BLOCK_PX, rgb.shape[1] // BLOCK_PX
    out = np.empty((nby * 8, nbx * 8), np.float32)
    change_bound(np.ascontiguousarray(rgb), LIMIT_WINDOW, LIMIT_FLAT, LIMIT_SLOPE,
                 float(max_change), out)
    return out


#: Clipping compensation (embedder revision 5): images with more than CLIP_SHARE of
#: their pixels near black or white (:func:`saturated_share`: documents, UI on white,
#: night scenes; 5 of the corpus' 73) get up to CLIP_PASSES passes of
#: :func:`compensate_clipping`, with the change limit multiplied by CLIP_LIMIT_GAIN
#: where it gives back what clipping took. On the corpus' 12 most saturated images
#: (bar15, 788 copies) it read 723 copies against 696, none lost; gimp-slider-help 41
#: of 68 against 18 (27 with the limit gain 1). 6 passes read as many as 4.
#: Compensating the template's amplitude too spent the PSNR budget the carriers
#: needed (5 fewer copies on four images). From 5% of the pixels on (18 images) it
#: read 4 more copies of those 788 but cost a 1920x1080 photo with a black
#: background (14.7%) 90 ms of its 15 ms embed.
CLIP_SHARE = 0.25
CLIP_PASSES = 4
CLIP_LIMIT_GAIN = 2.0
#: What the SSIM floor tries, at each of its rungs, before the next: the limit gain 1,
#: then no compensation (the compensation costs SSIM on small screenshots).
CLIP_FALLBACKS = (1.0, None)


def compensate_clipping(rgb: np.ndarray, out: np.ndarray, delta: np.ndarray,
                        limit: np.ndarray, template: np.ndarray, tamp: np.ndarray,
                        min_psnr: float, limit_gain: float = 1.0) -> np.ndarray:
    """The written image ``out`` with what uint8 clipping took from the planned
    changes ``delta`` given back where there is room.

    On white a change can only darken and on black only brighten, so about half of
    every carrier's pattern is clipped away (gimp-slider-help, a white help page:
    its written image kept 0.47 of the planned change). Each pass reads the carriers
    of the written image, adds the shortfall (what the same write gives where nothing
    clips, less what it gave) to the changes asked for and writes again, with the
    change limit ``limit`` multiplied by ``limit_gain``: the clipped half comes back as
    a larger one-sided change (alternating projections between the changes that give
    the planned coefficients and those that stay within 0..255 and the change limit,
    in the manner of D. C. Youla and H. Webb,
    "Image restoration by the method of convex projections", IEEE Trans. Medical
    Imaging 1(2), 1982). The extra energy is paid from the PSNR budget: a pass that
    would bring the PSNR under ``min_psnr`` is not taken.
    """
    from ._detect import grid_pairs, read_luma

    coef = grid_pairs(read_luma(rgb))
    # What the same write gives where nothing clips (mid-grey): the carriers with the
    # change limit, the template's share of them and rounding, as the plan counts them.
    grey = np.full_like(rgb, 128)
    unclipped = np.empty_like(rgb)
    apply_block_deltas(grey, PAIRS, delta, _C64, 1.0, limit, template, tamp, unclipped)
    target = grid_pairs(read_luma(unclipped)) - grid_pairs(read_luma(grey))
    asked = delta.copy()
    bound = limit * np.float32(limit_gain) if limit_gain != 1.0 else limit
    for _ in range(CLIP_PASSES):
        asked += target - (grid_pairs(read_luma(out)) - coef)
        again = np.empty_like(out)
        apply_block_deltas(rgb, PAIRS, asked, _C64, 1.0, bound, template, tamp, again)
        if _psnr(rgb, again) < min_psnr:
            break
        out = again
    return out


def _mark_once(rgb: np.ndarray, payload: Payload, key: bytes, strength: float,
               min_psnr: float, texture_gain: float = 1.0, floor_factor: float = 1.0,
               limit: np.ndarray | None = None,
               template_keep: float | None = TEMPLATE_KEEP,
               template_gain: float = 1.0,
               clip_gain: float | None = CLIP_LIMIT_GAIN) -> Marked:
    """Write the mark at one strength, or refuse when it would not read back
    (:func:`_write_once`); where it is written beside a template on a coarse
    lattice (a source with a short side from 1400 px), write it again with the
    carriers' moves started from the template's share of each pair (embedder
    revision 7, docs/format.md 5.2 step 5), and keep that when it reads back.

    On the coarse lattices (factors 2 and 4, 0.03-0.09 cycles a pixel) the template
    lies on the carriers' frequencies: written blind beside it, flat artworks read
    50-99 of their 400 channel bits wrong before any attack; informed, none.
    Whether the template is kept at all is still decided with the blind moves: on
    ukui-city, whose blind mark did not read back beside it, an informed mark kept
    the template, at the SSIM that the coarse layer needed, and two bar15 copies
    read through that layer were lost (session 30). On the fine lattice the template
    is far from the carriers: informed moves there only moved small images' copies
    about (6 gained, 12 lost, WebP 50 among them), so they are not used.
    """
    kw = dict(texture_gain=texture_gain, floor_factor=floor_factor, limit=limit,
              template_keep=template_keep, template_gain=template_gain, clip_gain=clip_gain)
    marked = _write_once(rgb, payload, key, strength, min_psnr, **kw)
    if (marked.image is None or template_keep is None
            or template_factor(*rgb.shape[:2]) == 1):
        return marked
    informed = _write_once(rgb, payload, key, strength, min_psnr, informed=True, **kw)
    return informed if informed.image is not None else marked


def _write_once(rgb: np.ndarray, payload: Payload, key: bytes, strength: float,
                min_psnr: float, texture_gain: float = 1.0, floor_factor: float = 1.0,
                limit: np.ndarray | None = None,
                template_keep: float | None = TEMPLATE_KEEP,
                template_gain: float = 1.0,
                clip_gain: float | None = CLIP_LIMIT_GAIN, informed: bool = False) -> Marked:
    """Write the mark at one strength, or refuse when it would not read back.

    The closed loop predicts what the detector reads from the coefficient changes;
    uint8 rounding, the per-pixel clamp and the template move that a little. When
    the prediction leaves little margin (some channel bit predicted wrong, or the
    PSNR floor attenuated the mark) the written image itself is read back and must
    decode: the 2 Reed-Solomon parity bytes leave little slack for a wrong guess.
    """
    gains = {"texture_gain": texture_gain, "floor_factor": floor_factor,
             "template_keep": template_keep, "template_gain": template_gain}
    if limit is None:
        limit = change_limit(rgb)
    code_bits = _codec.encode(payload, key)
    tile_bits = tile_symbols(payload, key)
    # Read the written image back when the prediction may be wrong: clipped pixels,
    # or a coarse template lattice (factor 2 and 4: 0.03-0.09 cycles per pixel, where
    # the carriers are), which the prediction does not model. A flat 3640x2400
    # artwork predicted 0 wrong slots and read back with 72 of 120 code bits wrong.
    saturated = saturated_share(rgb)
    check = saturated > SATURATED_SHARE or template_factor(*rgb.shape[:2]) > 1
    if saturated <= CLIP_SHARE:
        clip_gain = None
    template = keyed_template(key, template_factor(*rgb.shape[:2])).tile
    boost = None
    for attempt in range(1 + REALITY_PASSES):
        delta, scale, wrong, tamp, wrong_slots, boost = plan_embedding(
            rgb, payload, key, strength, min_psnr, boost=boost, informed=informed, **gains)
        if wrong or wrong_slots > MAX_WRONG_SLOT_SHARE * _codec.CHANNEL_BITS:
            return Marked(None, wrong, wrong_slots, scale, strength=strength,
                          clip_gain=clip_gain, **gains)
        out = np.empty_like(rgb)
        apply_block_deltas(rgb, PAIRS, delta, _C64, 1.0, limit, template, tamp, out)
        if clip_gain is not None:
            out = compensate_clipping(rgb, out, delta, limit, template, tamp, min_psnr,
                                      clip_gain)
        if not (check or wrong_slots or scale < 0.999):
            return Marked(out, 0, wrong_slots, scale, strength=strength,
                          clip_gain=clip_gain, **gains)
        read_wrong, actual = _read_back(out, code_bits, key, tile_bits)
        if read_wrong == 0:
            return Marked(out, 0, wrong_slots, scale, strength=strength,
                          clip_gain=clip_gain, **gains)
        boost = np.where(actual < WEAK_SLOT, np.maximum(boost, REALITY_BOOST), boost)
    return Marked(None, read_wrong, wrong_slots, scale, read_back=True, strength=strength,
                  clip_gain=clip_gain,
                  **gains)


def saturated_share(rgb: np.ndarray) -> float:
    """Share of the pixels within SATURATED_LEVELS of black or white, where a change
    is clipped on one side (judged on the luma of a sample of about 65,000 pixels)."""
    import cv2

    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 65_536)))
    # Every step-th row whole, then every step-th column: the strided rows need no
    # copy, where gathering the sample first cost 0.5 ms at 1920x1080.
    grey = cv2.cvtColor(rgb[::step], cv2.COLOR_RGB2GRAY)[:, ::step]
    lo, hi = SATURATED_LEVELS, 255 - SATURATED_LEVELS
    return float(((grey <= lo) | (grey >= hi)).mean())


def refusal_detail(marked: Marked) -> str:
    """What went wrong, for :class:`EmbedError` and ``check_embeddable``."""
    if marked.read_back:
        return (f"the written image read back with {marked.wrong_code_bits} of "
                f"{_codec.CODE_BITS} code bits wrong, although {marked.wrong_slots} of "
                f"{_codec.CHANNEL_BITS} channel bits were predicted wrong: pixels clipped "
                "at black or white, or rounding, took the rest")
    return (f"{marked.wrong_slots} of {_codec.CHANNEL_BITS} channel bits predicted wrong "
            f"before any attack, {marked.wrong_code_bits} of {_codec.CODE_BITS} code bits "
            "after decoding")


def embed(image, payload: Payload, *, key: bytes | str | None = None,
          strength: float = 1.0, min_psnr: float = 40.0, adapt: bool = True):
    """Embed ``payload`` as an invisible, keyed watermark.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray or PIL.Image.Image
        RGB image at least 256x256. Not modified.
    payload : Payload
        Provider code, content ID and generation label to carry.
    key : bytes or str or None, optional
        Secret key; ``None`` uses the documented public key (anyone can read).
    strength : float, default 1.0
        Multiplies the default embedding strength. Higher is more robust and more
        visible.
    min_psnr : float, default 40.0
        PSNR floor in dB: the mark is attenuated if it would go below it.
    adapt : bool, default True
        On images under about 0.5 MP (fewer than 8 tile repetitions), strengthen
        the mark as long as the SSIM to the original stays at least 0.982: first
        the floor of blocks with some texture (2x), then the margins and caps
        paid by textured blocks (up to 2x); the floor of flat blocks is never
        raised. Small images have little redundancy. Then, on images up to 1 MP
        with room under the PSNR and SSIM floors, every symbol is written a
        second time on the extension carriers (docs/format.md 5.8). Costs SSIM
        checks and a few extra embedding passes on those images only. ``False``
        uses ``strength`` as given, without the extension.

    Notes
    -----
    At ``strength <= 1`` an image of up to 1 MP is also kept at an SSIM of at least
    0.98 to the original: a mark under it (a dark, mostly flat photo; a small
    screenshot) is written again with a weaker mark, then a weaker synchronisation
    template, as long as it still reads back.

    Returns
    -------
    Same type as ``image``: a new marked array (or PIL image).

    Raises
    ------
    ImageError
        The image is not HxWx3 uint8 RGB (or an equivalent PIL image), has
        transparency, or is smaller than 256x256.
    EmbedError
        The mark would not read back even without any attack (a flat, saturated or
        tiny image, or one too busy for ``min_psnr``). Nothing is returned unmarked
        silently.

    References
    ----------
    B. Chen and G. Wornell, "Quantization index modulation", IEEE Trans. Inf. Theory
    47(4), 2001. F. Ourique et al., "Angle QIM: a novel watermark embedding scheme
    robust against amplitude scaling distortions", ICASSP 2005.

    Examples
    --------
    >>> import numpy as np, provmark
    >>> rng = np.random.default_rng(0)
    >>> img = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    >>> marked = provmark.embed(img, provmark.Payload(provider=7, content_id=42))
    >>> provmark.detect(marked).payload
    Payload(provider=7, content_id=42, label=1)
    """
    if not isinstance(payload, Payload):
        raise TypeError(f"payload must be a provmark.Payload, not {type(payload).__name__}")
    if isinstance(strength, bool) or not (isinstance(strength, (int, float)) and 0 < strength <= 10):
        raise ValueError(f"strength={strength!r}: use a number in (0, 10]; 1.0 is the default")
    if isinstance(min_psnr, bool) or not (isinstance(min_psnr, (int, float)) and 20 <= min_psnr <= 80):
        raise ValueError(f"min_psnr={min_psnr!r}: use a value in [20, 80] dB")
    rgb, was_pil = as_rgb_array(image)
    h, w = rgb.shape[:2]
    check_min_size(h, w)
    k = normalize_key(key)
    if not isinstance(adapt, bool):
        raise TypeError(f"adapt must be True or False, not {adapt!r}")
    marked = mark_array(rgb, payload, k, strength, min_psnr, adapt)
    out = marked.image
    if out is None:
        raise EmbedError(
            f"the mark does not read back reliably from this {w}x{h} image "
            f"({refusal_detail(marked)}): the image is too flat, "
            f"saturated or small, or too busy for the {min_psnr:g} dB PSNR floor. Try a larger "
            "image or a higher strength (strength=1.5; on the command line --strength 1.5), "
            "or, in Python, a lower min_psnr (e.g. 38); provmark.check_embeddable (provmark "
            "check) explains")
    if was_pil:
        from PIL import Image
        return Image.fromarray(out, "RGB")
    return out
