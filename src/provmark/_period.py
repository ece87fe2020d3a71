"""Self-reference: the geometry of a large copy from the period of the mark itself.

On flat areas the mark's pattern repeats exactly every 2x2 tiles (the dither's period,
512 pixels of the source), in part every tile (the symbols repeat, the dither does
not), and its template every 64 or 128 pixels, so a copy of a large, smooth image is
periodic: its autocorrelation peaks on a lattice spanned by ``A (P, 0)`` and
``A (0, P)`` for one of those periods ``P``, from which the geometry ``A`` (resize per
axis, rotation) follows directly, once ``P`` is guessed. That same periodicity puts a comb of spectral lines under
the template's constellation and misleads its magnitude search (ukui-city, 3640x2400
flat art: the constellation matched the comb at a quarter of the true scale, and alias
locks held at z 49-77 at wrong geometries), which is when this estimate is needed.
The estimate is only a hypothesis: the template lock and the mark's decoding decide.

Refs: M. Kutter, "Watermarking resisting to translation, rotation, and scaling",
Proc. SPIE 3528, 1998 (self-reference by a periodic mark's autocorrelation).
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.fft

#: How a lattice of peaks is read: each basis lag is one period, per axis, of one of
#: the periodic parts of the mark, in source pixels: two tiles (the exact period), one
#: tile (the symbols repeat, the dither does not) or the template's tile (64 or 128
#: pixels, :mod:`provmark._template`; the strongest part on smooth synthetic art).
#: One axis may show a part that the other does not (ukui-city x1.5: one tile on y, two
#: on x), so the mixed readings are tried after the equal ones; the lock decides.
READINGS = ((256, 256), (512, 512), (128, 128), (64, 64),
            (256, 512), (512, 256), (128, 256), (256, 128), (64, 128), (128, 64))
#: Lattices read (strongest first), and geometries returned at most.
LATTICES = 2
#: The copy is reduced by this (INTER_AREA) before the autocorrelation: the mark's
#: carriers (about 1/16 cycle per source pixel) stay below the reduced Nyquist limit
#: down to a copy at half the source's size, and the transform costs a quarter.
REDUCE = 2
#: Largest window (reduced pixels a side) whose autocorrelation is computed.
WINDOW = 1536
#: Lags under this (reduced pixels) are the image's own short-range correlation.
MIN_LAG = 48
#: Strongest autocorrelation peaks considered; pairs of them are tried as the two
#: period vectors, those whose lattice holds the most peak strength first.
TOP_PEAKS = 12
MAX_GEOMETRIES = 10
#: A lattice is read when both peaks of its pair stand at least this many robust
#: deviations above the lags' median and it holds at least this many of the
#: :data:`TOP_PEAKS`: on marked flat copies 4-9 peaks, the pair at 10-376 deviations
#: (ukui-city, smooth synthetic art); on unmarked copies of 2.1 MP or more, 2-3 peaks
#: (18 of 57 corpus copies had a perpendicular pair, each would cost 10 locks and 4
#: pilot searches).
MIN_PEAK_Z = 8.0
MIN_LATTICE_PEAKS = 4
#: A peak within this fraction of a period vector of a lattice point is on the lattice.
LATTICE_TOLERANCE = 0.03
#: Two period vectors of a resize, aspect change and rotation are perpendicular; a
#: pair further from that than this (degrees) is not the mark's lattice.
MAX_SKEW = 4.0
#: Apparent scale range accepted (the copy's tile over the source's) and the
#: largest rotation (degrees), as for the template's estimates.
SCALE_RANGE = (0.3, 6.0)
MAX_ROTATION = 6.0


def _whitened_autocorrelation(y: np.ndarray) -> np.ndarray:
    """Autocorrelation (lag (0, 0) at the centre) of the high-passed, reduced copy,
    its power spectrum divided by its local mean first: the mark's comb of lines
    stays, the image's broad spectrum is flattened."""
    small = cv2.resize(y, (y.shape[1] // REDUCE, y.shape[0] // REDUCE),
                       interpolation=cv2.INTER_AREA)
    h, w = (min(d, WINDOW) for d in small.shape)
    oy, ox = (small.shape[0] - h) // 2, (small.shape[1] - w) // 2
    win = small[oy:oy + h, ox:ox + w].astype(np.float32)
    hp = win - cv2.GaussianBlur(win, (0, 0), 2.0)
    power = np.abs(scipy.fft.rfft2(hp, workers=2)) ** 2
    power /= cv2.blur(power, (15, 15)) + 1e-12
    return np.fft.fftshift(scipy.fft.irfft2(power, s=hp.shape, workers=2))


def _peak(ac: np.ndarray, iy: int, ix: int) -> tuple[float, float]:
    """Sub-pixel lag of the peak at ``(iy, ix)`` (a parabola through its neighbours)."""
    def offset(m, c, p):
        if not (np.isfinite(m) and np.isfinite(p)):
            return 0.0  # a neighbour in the masked centre: no parabola
        d = m - 2 * c + p
        return 0.5 * (m - p) / d if d < 0 else 0.0

    h, w = ac.shape
    c = ac[iy, ix]
    dy = offset(ac[iy - 1, ix], c, ac[iy + 1, ix]) if 0 < iy < h - 1 else 0.0
    dx = offset(ac[iy, ix - 1], c, ac[iy, ix + 1]) if 0 < ix < w - 1 else 0.0
    return iy + dy, ix + dx


def period_geometries(y: np.ndarray) -> list[np.ndarray]:
    """Up to :data:`MAX_GEOMETRIES` candidate geometries ``A`` (copy = A @ source,
    (y, x) order, as :class:`provmark._template.AffineEstimate` matrices on the
    source's own grid), from pairs of perpendicular autocorrelation peaks read as the
    mark's period vectors; strongest pairs first. Empty when none fits."""
    ac = _whitened_autocorrelation(y)
    h, w = ac.shape
    cy, cx = h // 2, w // 2
    sample = ac[::4, ::4]  # the robust level and spread of the lags (a 16th suffices)
    level = float(np.median(sample))
    floor = level + MIN_PEAK_Z * 1.4826 * float(np.median(np.abs(sample - level)))
    ac[cy - MIN_LAG:cy + MIN_LAG + 1, cx - MIN_LAG:cx + MIN_LAG + 1] = -np.inf
    # Local maxima only (a peak's neighbours are not peaks), one of each +-lag pair.
    local = ac >= cv2.dilate(ac, np.ones((5, 5), np.uint8))
    local[:cy] = False
    local[cy, :cx + 1] = False
    idx = np.flatnonzero(local & np.isfinite(ac))
    if idx.size < 2:
        return []
    best = idx[np.argsort(ac.flat[idx])[::-1][:TOP_PEAKS]]
    lags = np.array([_peak(ac, *divmod(int(i), w)) for i in best]) - (cy, cx)
    strength = ac.flat[best].astype(np.float64)
    lattices = []
    for a in range(len(lags)):
        for b in range(a + 1, len(lags)):
            p, q = lags[a], lags[b]
            cos = abs(float(p @ q)) / (np.linalg.norm(p) * np.linalg.norm(q))
            if cos > np.sin(np.deg2rad(MAX_SKEW)) or min(strength[a], strength[b]) < floor:
                continue
            peaks, support = _lattice_support(lags, strength, p, q)
            if peaks >= MIN_LATTICE_PEAKS:
                lattices.append((support, p * REDUCE, q * REDUCE))
    lattices.sort(key=lambda s: -s[0])
    out: list[np.ndarray] = []
    for _, p, q in lattices[:LATTICES]:
        for periods in READINGS:
            m = _matrix(p, q, periods)
            if m is not None and not any(np.allclose(m, o, rtol=0, atol=1e-3 * np.abs(m).max())
                                         for o in out):
                out.append(m)
    return out[:MAX_GEOMETRIES]


def _lattice_support(lags: np.ndarray, strength: np.ndarray, p: np.ndarray, q: np.ndarray
                     ) -> tuple[int, float]:
    """How many of the peaks lie on the lattice spanned by ``p`` and ``q`` (within
    :data:`LATTICE_TOLERANCE` of a lattice point), and their summed strength: the
    mark's period explains its sums and differences too, a chance pair does not."""
    coords = np.linalg.solve(np.column_stack([p, q]), lags.T).T  # lags in (p, q) units
    off = np.abs(coords - np.rint(coords))
    on = (off.max(axis=1) < LATTICE_TOLERANCE) & (np.abs(np.rint(coords)).max(axis=1) <= 3)
    return int(on.sum()), float(strength[on].sum())


def _matrix(p: np.ndarray, q: np.ndarray, periods: tuple[int, int]) -> np.ndarray | None:
    """The geometry whose source periods ``periods`` (y, x; pixels) show as the lags
    ``p`` and ``q`` (copy pixels, (y, x)): the more vertical lag is the source's y
    period. None when the scales or the rotation are out of range."""
    if abs(p[0]) < abs(q[0]):
        p, q = q, p
    p = p if p[0] > 0 else -p  # the source's y period points down
    q = q if q[1] > 0 else -q  # its x period points right
    a = np.column_stack([p / periods[0], q / periods[1]])
    scale_y, scale_x = float(np.hypot(*a[:, 0])), float(np.hypot(*a[:, 1]))
    rotation = float(np.rad2deg(np.arctan2(a[1, 0], a[0, 0])))
    if not (SCALE_RANGE[0] <= min(scale_y, scale_x) and max(scale_y, scale_x) <= SCALE_RANGE[1]
            and abs(rotation) <= MAX_ROTATION):
        return None
    return a
