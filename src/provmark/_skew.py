"""The rotation of a tilted copy, read off its own straight edges.

Screenshots, documents, buildings and many generated scenes hold long horizontal
and vertical edges. A copy rotated by a few degrees (and cropped, as a photo editor
straightens a picture) shows them tilted by that angle. Projected across the right
direction, the strongest edge pixels pile up on a few lines (a sharp projection
profile); across any other they spread. The profile's sharpness (the sum of its
squared counts) over candidate angles therefore peaks at the tilt: the classic
estimate of a scanned page's skew. On the corpus's UI screenshots, buildings and
night map, rotated by 1, 2 and 5 degrees either way and cropped, it gave the angle
within 0.1 degree in 5-20 ms. Textures (foliage, clouds, fractals) show no clear
peak, and the angle of an untilted copy is 0, which every other stage reads: both
are left to the rest of the search. An estimate is only a hypothesis: the pilot
decides (:meth:`provmark._detect._Search.edge_rotation`).

The angles within :data:`MIN_ANGLE` of 0 are left out: bilinear resampling of fine
texture leaves a peak at 0 of its own (a rotated photo of bluebells read 0.00 at 108
deviations), and an untilted copy's edges peak there too.

Refs: W. Postl, "Detection of linear oblique structures and skew scan in digitized
documents", Proc. 8th Int. Conf. Pattern Recognition, 1986 (projection profiles
over candidate angles); D. S. Bloomberg, G. E. Kopec and L. Dasari, "Measuring
document image skew and orientation", Proc. SPIE 2422, 1995 (the sum of squared
profile counts as the sharpness).
"""

from __future__ import annotations

import cv2
import numpy as np

#: Largest span (pixels a side) of the copy looked at, centred: enough edge pixels
#: for an angle to 0.05 degree, at a fixed cost on large copies.
WINDOW = 1024
#: Pixels left out along the copy's border: a straightened copy's crop can hold a
#: row or column of interpolated border, an axis-aligned edge of its own.
MARGIN = 8
#: Strongest edge pixels kept per orientation (horizontal and vertical edges).
POINTS = 3000
#: Weakest edge kept (Sobel response, about 4 x the step in grey levels): the
#: one-level steps of a smooth gradient's quantisation are straight, parallel and
#: periodic, and their projections alias into peaks at any angle.
MIN_EDGE = 32.0
#: Fewest edge pixels (either orientation) an estimate is made from.
MIN_POINTS = 64
#: Rotations looked at (degrees either way; the detector's rotation searches cover 5).
MAX_ANGLE = 6.0
#: Coarse steps over the whole range, then fine steps around the coarse peak.
COARSE_STEP = 0.25
FINE_STEP = 0.05
#: Angles nearer 0 than this are not estimates (see the module's text).
MIN_ANGLE = 0.3
#: A peak is read at this many robust deviations (median absolute deviation) above
#: the median of the coarse angles' sharpness. The tilted corpus copies that the other
#: stages lost peaked at 7-17. Untilted copies with slanted lines of their own (power
#: lines, brush strokes) reach 14 at their lines' angle: 11 of 260 untilted corpus
#: copies had an estimate (session 24), each paying a gate for nothing.
MIN_PROMINENCE = 6.0


def _sharpness(points, angles: np.ndarray) -> np.ndarray:
    """Sum over both edge orientations of each angle's projection-profile sharpness,
    each orientation's normalised by its mean over ``angles``."""
    total = np.zeros(len(angles))
    t = np.deg2rad(angles)[:, None]
    for py, px, weight, horizontal in points:
        # The coordinate across the edges, once the copy is turned back by the angle
        # (rows for horizontal edges, columns for vertical ones), to whole pixels.
        across = (py * np.cos(t) + px * np.sin(t) if horizontal
                  else px * np.cos(t) - py * np.sin(t))
        bins = np.rint(across).astype(np.int64)
        bins -= bins.min(axis=1, keepdims=True)
        span = int(bins.max()) + 1
        bins += np.arange(len(angles))[:, None] * span
        profiles = np.bincount(bins.ravel(), np.broadcast_to(weight, bins.shape).ravel(),
                               span * len(angles)).reshape(len(angles), span)
        sharp = (profiles * profiles).sum(axis=1)
        total += sharp / max(float(sharp.mean()), 1e-12)
    return total


def _edge_points(y: np.ndarray):
    """The strongest horizontal and vertical edge pixels of the central window:
    ``(py, px, weight, horizontal)`` for each orientation, coordinates from the
    window's centre."""
    h, w = y.shape
    wh, ww = min(h, WINDOW), min(w, WINDOW)
    oy, ox = (h - wh) // 2, (w - ww) // 2
    win = np.ascontiguousarray(y[oy:oy + wh, ox:ox + ww], np.float32)
    points = []
    for dx, dy, horizontal in ((0, 1, True), (1, 0, False)):
        grad = cv2.Sobel(win, cv2.CV_32F, dx, dy, ksize=3)
        np.abs(grad, out=grad)
        inner = grad[MARGIN:-MARGIN, MARGIN:-MARGIN]
        if inner.size < 16 * 16:
            continue
        # The threshold from a sixteenth of the pixels (a full selection on a flat
        # image's many equal values was 300 ms), then every k-th pixel over it.
        sample = inner[::4, ::4].ravel()
        keep = min(POINTS // 16, sample.size)
        threshold = max(float(np.partition(sample, sample.size - keep)[sample.size - keep]),
                        MIN_EDGE)
        grad[:MARGIN] = 0.0
        grad[-MARGIN:] = 0.0
        grad[:, :MARGIN] = 0.0
        grad[:, -MARGIN:] = 0.0
        flat = np.flatnonzero(grad >= threshold)  # contiguous: 8x faster than the view's
        if flat.size < MIN_POINTS:
            continue
        if flat.size > 2 * POINTS:
            flat = flat[::flat.size // POINTS]
        iy, ix = np.divmod(flat, ww)
        points.append(((iy + oy - h / 2).astype(np.float64),
                       (ix + ox - w / 2).astype(np.float64),
                       grad.ravel()[flat].astype(np.float64), horizontal))
    return points


def edge_rotation(y: np.ndarray) -> tuple[float, float] | None:
    """The rotation of the copy's straight edges, as the detector's geometries write
    it (``provmark._sync.hypothesis_matrix(1, angle)`` brings the copy back), and its
    prominence; None when no angle from :data:`MIN_ANGLE` to :data:`MAX_ANGLE`
    either way stands :data:`MIN_PROMINENCE` deviations out, or the best angle is
    not a peak (it lies on the ends of the range or against the angles left out)."""
    points = _edge_points(y)
    if not points:
        return None
    coarse = np.arange(-MAX_ANGLE, MAX_ANGLE + 1e-9, COARSE_STEP)
    coarse = coarse[np.abs(coarse) >= MIN_ANGLE]
    sharp = _sharpness(points, coarse)
    i = int(np.argmax(sharp))
    median = float(np.median(sharp))
    spread = float(np.median(np.abs(sharp - median)))
    prominence = (float(sharp[i]) - median) / max(spread, 1e-12)
    if prominence < MIN_PROMINENCE or i in (0, len(coarse) - 1):
        return None
    fine = coarse[i] + np.arange(-COARSE_STEP, COARSE_STEP + 1e-9, FINE_STEP)
    fine = fine[np.abs(fine) >= MIN_ANGLE]
    j = int(np.argmax(_sharpness(points, fine)))
    if j in (0, len(fine) - 1):
        return None  # the flank of the peak at 0, or of one beyond the range
    return float(fine[j]), prominence
