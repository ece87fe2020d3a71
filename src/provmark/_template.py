"""Geometric synchronisation template: a faint keyed pattern whose spectrum reveals
how a copy was resized, squashed or rotated.

The mark's own symbols cannot show the geometry without already knowing it, so the
embedder also adds a periodic template: the sum of :data:`N_FREQS` keyed cosines on
the 1/64 cycle-per-pixel lattice, in the band 0.11..0.19 cycles per pixel (above the
QIM carriers, below what JPEG removes), at an amplitude that follows the local
texture (about 0.13 grey levels per cosine on flat areas, 0.35 on texture). Its
spectrum is a constellation of sharp peaks. An affine change ``p' = A p`` of the
image moves each peak from ``f`` to ``A^-T f`` (cropping leaves the magnitude alone),
so matching the known constellation against the whitened magnitude spectrum of the
copy recovers ``A``: a coarse search over horizontal/vertical scale and rotation,
then a least-squares fit of the sub-bin peak positions. The copy is then resampled
back onto the embedding grid and the block-grid search of :mod:`provmark._sync`
finishes the job. Refs: S. Pereira and T. Pun, "Robust template matching for affine
resistant image watermarks", IEEE TIP 9(6), 2000; M. Kutter, SPIE 3528, 1998.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import scipy.fft

from ._keys import derive_rng
from .kernels import template_score_grid

#: Period of the template tile (pixels) and number of keyed cosines.
PERIOD = 64  # a power of two: the apply kernel wraps with a bit mask
N_FREQS = 16
#: Radial band of the template (cycles per pixel).
BAND = (0.11, 0.19)
#: Per-block amplitude (grey levels per cosine) from the mean carrier-pair radius.
#: The flat-area minimum was 0.06: a 1920x1080 photo that is mostly sky (rocket),
#: screenshotted (x0.667, JPEG 80), then scored 1.2-2.2 and the geometry was found in
#: 2 of 6 copies; at 0.13 it scores 2.3-3.0 and is found in 6 of 6, for 0.4 dB of PSNR
#: (46.6 -> 46.2) and no pattern visible at 3x zoom on the sky.
AMP_MIN, AMP_MAX, AMP_SLOPE = 0.13, 0.35, 0.003
#: Sources smaller than this carry no template: at 512x512 its spectral peaks stayed
#: at the level of an unmarked image (scores 0.9-1.4 against 1-2 unmarked, 4
#: at 1024x1024) while its energy cost the QIM mark JPEG-30 and blur robustness.
MIN_PIXELS = 600_000
#: Scale range searched (each axis) and rotation range (degrees).
SCALE_RANGE = (0.45, 2.3)
ROTATIONS = np.arange(-6.0, 6.01, 2.0)


@dataclass(frozen=True, eq=False)
class Template:
    tile: np.ndarray  # (PERIOD, PERIOD) float32, unit-amplitude cosines summed
    freqs: np.ndarray  # (N_FREQS, 2) float64 (fy, fx) cycles per pixel, fx > 0


@lru_cache(maxsize=16)
def keyed_template(key: bytes) -> Template:
    """The key's template tile and its frequencies."""
    rng = derive_rng(key, "sync-template")
    lo, hi = BAND[0] * PERIOD, BAND[1] * PERIOD
    cand = [(ky, kx) for ky in range(-PERIOD // 2, PERIOD // 2) for kx in range(1, PERIOD // 2)
            if lo <= np.hypot(ky, kx) <= hi]
    cand = np.array(cand)
    # Spread the directions: pick from angular sectors so no two peaks crowd.
    ang = np.arctan2(cand[:, 0], cand[:, 1])
    sectors = np.linspace(-np.pi / 2, np.pi / 2, N_FREQS + 1)
    chosen = []
    for a, b in zip(sectors[:-1], sectors[1:]):
        idx = np.flatnonzero((ang >= a) & (ang < b))
        chosen.append(cand[rng.choice(idx)])
    k = np.array(chosen, dtype=np.float64)
    phase = rng.uniform(0, 2 * np.pi, N_FREQS)
    yy, xx = np.mgrid[0:PERIOD, 0:PERIOD].astype(np.float64)
    tile = np.zeros((PERIOD, PERIOD))
    for (ky, kx), ph in zip(k, phase):
        tile += np.cos(2 * np.pi * (ky * yy + kx * xx) / PERIOD + ph)
    tile = tile.astype(np.float32)
    tile.setflags(write=False)
    freqs = k / PERIOD
    freqs.setflags(write=False)
    return Template(tile, freqs)


def block_amplitude(coef: np.ndarray) -> np.ndarray:
    """Per-block template amplitude (nby, nbx) float32 from the carrier pairs
    (all zero for images below :data:`MIN_PIXELS`)."""
    if coef.shape[0] * coef.shape[1] * 256 < MIN_PIXELS:
        return np.zeros(coef.shape[:2], np.float32)
    r = np.hypot(coef[..., 0], coef[..., 1]).mean(axis=2)
    return np.clip(AMP_MIN + AMP_SLOPE * r, AMP_MIN, AMP_MAX).astype(np.float32)


def whitened_spectrum(y: np.ndarray) -> np.ndarray:
    """Magnitude spectrum (rfft2) of the high-passed, windowed luma, divided by its
    local mean so that peaks stand out against the image's own spectrum."""
    hp = y - cv2.GaussianBlur(y, (0, 0), 3.0)
    h, w = hp.shape
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    mag = np.abs(scipy.fft.rfft2(hp * win, workers=2)).astype(np.float32)
    return mag / (cv2.blur(mag, (9, 9)) + 1e-6)


def coarse_scales() -> np.ndarray:
    """Scale hypotheses of the coarse search (log-spaced, about 1% apart)."""
    return np.exp(np.linspace(np.log(SCALE_RANGE[0]), np.log(SCALE_RANGE[1]), 160))


def score_grid_reference(spec, freqs, scales_y, scales_x, rotations_deg):
    """Plain NumPy twin of :func:`provmark.kernels.template_score_grid`."""
    sy, sx = np.meshgrid(scales_y, scales_x, indexing="ij")
    out = np.empty((len(rotations_deg), len(scales_y), len(scales_x)))
    for r, rot in enumerate(rotations_deg):
        th = np.full(sy.shape, np.deg2rad(rot))
        out[r] = _gather(spec, _predict(freqs, sy, sx, th)).mean(axis=-1)
    return out


def _gather(spec: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Spectrum values at frequencies ``g`` (..., K, 2) in cycles per pixel."""
    h = spec.shape[0]
    w = (spec.shape[1] - 1) * 2
    gy, gx = g[..., 0], g[..., 1]
    neg = gx < 0
    gy = np.where(neg, -gy, gy)
    gx = np.abs(gx)
    iy = np.rint(gy * h).astype(np.int64) % h
    ix = np.minimum(np.rint(gx * w).astype(np.int64), spec.shape[1] - 1)
    return spec[iy, ix]


def _predict(freqs: np.ndarray, sy: np.ndarray, sx: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Observed frequencies for ``A = R(theta) diag(sy, sx)`` (g = A^-T f)."""
    c, s = np.cos(theta), np.sin(theta)
    fy, fx = freqs[:, 0], freqs[:, 1]
    # A^-T = R(theta) diag(1/sy, 1/sx) for a rotation R.
    uy = fy / sy[..., None]
    ux = fx / sx[..., None]
    gy = c[..., None] * uy - s[..., None] * ux
    gx = s[..., None] * uy + c[..., None] * ux
    return np.stack([gy, gx], axis=-1)


@dataclass(frozen=True)
class AffineEstimate:
    """``A`` maps embedding-grid pixel coordinates (y, x) to the copy's; ``score``
    is the mean whitened spectral value at the predicted peaks (about 1.6-2 on an
    unmarked image, 2.5-5 on a marked one)."""

    matrix: np.ndarray
    score: float
    scale_y: float
    scale_x: float
    rotation: float
    hypotheses: int


def estimate_affine(y: np.ndarray, key: bytes) -> AffineEstimate:
    """Estimate the resize (per axis) and rotation of a copy from the template."""
    tpl = keyed_template(key)
    spec = whitened_spectrum(y)
    tolerant = cv2.dilate(spec, np.ones((5, 5), np.uint8))
    scales = coarse_scales()
    grid = np.empty((len(ROTATIONS), len(scales), len(scales)), np.float32)
    th = np.deg2rad(ROTATIONS)
    template_score_grid(tolerant, tpl.freqs, 1.0 / scales, 1.0 / scales, np.cos(th), np.sin(th),
                        grid)
    hyps = grid.size
    r, i, j = np.unravel_index(int(np.argmax(grid)), grid.shape)
    best = (float(grid[r, i, j]), float(scales[i]), float(scales[j]), float(ROTATIONS[r]))
    # Local refinement of scale and rotation on the exact spectrum.
    _, by, bx, br = best
    fine_s = np.exp(np.linspace(-0.012, 0.012, 13))
    fine_r = np.deg2rad(br + np.arange(-1.5, 1.51, 0.25))
    gy_, gx_, gr_ = np.meshgrid(by * fine_s, bx * fine_s, fine_r, indexing="ij")
    vals = _gather(cv2.dilate(spec, np.ones((3, 3), np.uint8)),
                   _predict(tpl.freqs, gy_, gx_, gr_)).mean(axis=-1)
    hyps += vals.size
    i = np.unravel_index(int(np.argmax(vals)), vals.shape)
    sy0, sx0, th0 = float(gy_[i]), float(gx_[i]), float(gr_[i])
    m = _least_squares(spec, tpl.freqs, _predict(tpl.freqs, np.array(sy0), np.array(sx0),
                                                    np.array(th0)))
    if m is None:
        c, s = np.cos(th0), np.sin(th0)
        minv_t = np.array([[c, -s], [s, c]]) @ np.diag([1 / sy0, 1 / sx0])
    else:
        minv_t = m
    a = np.linalg.inv(minv_t).T  # g = A^-T f  =>  A = (M)^-T with M = A^-T
    score = float(_gather(spec, (minv_t @ tpl.freqs.T).T).mean())
    sy_e, sx_e = float(np.hypot(a[0, 0], a[1, 0])), float(np.hypot(a[0, 1], a[1, 1]))
    rot = float(np.rad2deg(np.arctan2(a[1, 0], a[0, 0])))
    return AffineEstimate(a, score, sy_e, sx_e, rot, hyps)


def _least_squares(spec, freqs, pred):
    """Fit ``M`` (g = M f) to the sub-bin positions of the peaks near ``pred``."""
    h = spec.shape[0]
    w = (spec.shape[1] - 1) * 2
    rows, targets, weights = [], [], []
    for f, g in zip(freqs, pred):
        if g[1] < 0:
            f, g = -f, -g
        cy, cx = g[0] * h, g[1] * w
        iy0, ix0 = int(round(cy)), int(round(cx))
        best_v, by, bx = -1.0, 0, 0
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                yy, xx = (iy0 + dy) % h, ix0 + dx
                if 1 <= xx < spec.shape[1] - 1 and spec[yy, xx] > best_v:
                    best_v, by, bx = float(spec[yy, xx]), iy0 + dy, xx
        if best_v < 2.5:
            continue  # this peak did not survive: leave it out of the fit
        # Parabolic sub-bin refinement along each axis.
        def sub(vm, v0, vp):
            den = vm - 2 * v0 + vp
            return 0.0 if den >= 0 else 0.5 * (vm - vp) / den
        oy = sub(spec[(by - 1) % h, bx], spec[by % h, bx], spec[(by + 1) % h, bx])
        ox = sub(spec[by % h, bx - 1], spec[by % h, bx], spec[by % h, bx + 1])
        rows.append(f)
        targets.append([(by + oy) / h, (bx + ox) / w])
        weights.append(best_v)
    if len(rows) < 5:
        return None
    f = np.array(rows)
    g = np.array(targets)
    wts = np.sqrt(np.array(weights))[:, None]
    sol, *_ = np.linalg.lstsq(f * wts, g * wts, rcond=None)
    return sol.T  # g = M f  with  M = sol.T


def warp_to_grid(y: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Resample the copy ``y`` back onto the embedding grid (inverse of ``A``),
    centre to centre; returns a float32 luma plane."""
    h, w = y.shape
    inv = np.linalg.inv(a)
    corners = np.array([[0, 0], [0, w], [h, 0], [h, w]], np.float64)
    back = corners @ inv.T
    hn = int(np.ceil(back[:, 0].max() - back[:, 0].min()))
    wn = int(np.ceil(back[:, 1].max() - back[:, 1].min()))
    hn, wn = max(hn, 16), max(wn, 16)
    # OpenCV wants (x, y): src(x_s) = A_xy dst(x_d) + t with WARP_INVERSE_MAP.
    a_xy = np.array([[a[1, 1], a[1, 0]], [a[0, 1], a[0, 0]]])
    # Pixel centres: index (n - 1) / 2 is the middle of an n-pixel axis.
    c_src = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    c_dst = np.array([(wn - 1) / 2.0, (hn - 1) / 2.0])
    t = c_src - a_xy @ c_dst
    mat = np.hstack([a_xy, t[:, None]]).astype(np.float64)
    return cv2.warpAffine(y, mat, (wn, hn), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)
