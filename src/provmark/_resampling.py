"""The scale of an enlarged copy, read off its interpolation traces.

A copy enlarged by ``L`` (bilinear, bicubic, Lanczos) is a fixed interpolation of its
source's samples: a pixel's curvature (its second difference) depends on where it
falls between two source samples, which repeats every ``L`` copy pixels along each
resized axis. The mean absolute second difference along an axis, as a function of
position, therefore carries a spectral line at ``1 / L`` cycles per pixel (seen at
``1 - 1 / L`` when ``L < 2``), whatever the image shows. A 360-px photo enlarged
x3.56 to a 1280-px screenshot shows it 35-90 robust deviations above the rest of the
spectrum, and its frequency gives ``L`` within 0.05%. These are the copies the
template loses: the enlargement pushes the template's peaks down to the low
frequencies where the image's own content is strongest.

The lines JPEG's blocks leave (``k / 16`` cycles per pixel) are ignored, and so are
lines below :data:`MIN_FREQUENCY` (image content, enlargements beyond x6). An
enlargement whose own line falls on ``k / 16`` (x3.2 or x4 exactly: a source a multiple
of 80 px wide enlarged to 1280) is therefore not read here: a line's frequency alone
cannot tell it from JPEG's. An estimate
is only a hypothesis: the pilot decides (:meth:`provmark._detect._Search.enlargements`).

Refs: A. C. Popescu and H. Farid, "Exposing digital forgeries by detecting traces of
resampling", IEEE Trans. Signal Processing 53(2), 2005 (periodic correlations of an
interpolated signal); M. Kirchner, "Fast and reliable resampling detection by spectral
analysis of fixed linear predictor residue", ACM MM&Sec 2008 (the residue's spectrum).
"""

from __future__ import annotations

import numpy as np
import scipy.fft

#: Largest span (pixels) of the copy whose profile is taken, centred: the line's
#: frequency is read to a fraction of a bin (1 / WINDOW), enough for the pilot.
WINDOW = 1024
#: Lines across the axis averaged: every second one (half the cost; the enlarged
#: screenshots' lines still read at 16-64 deviations).
ACROSS_STEP = 2
#: Lines below this frequency (an enlargement over x6, or x1.2 seen aliased) are the
#: image's own content: smooth art and skies peak there (lxqt-after-rain: 25
#: deviations at 0.033).
MIN_FREQUENCY = 1.0 / 6.0
#: Bins either side of JPEG's lines ignored: ``k / 16`` cycles a pixel, the 8x8 luma
#: blocks and, after 4:2:0, the 16x16 chroma ones (a 4096-px photo at JPEG 50 showed
#: 3/16 on both axes); a Hann window spreads a line over two bins each side.
JPEG_GUARD_BINS = 3
#: A line is read at this many robust deviations (median absolute deviation) above
#: the median of the band. Unmarked corpus images, as they are and as JPEG, peak at
#: up to 9 in the band; enlarged copies at 22-90.
MIN_LINE_Z = 12.0
#: Lines read per axis, strongest first.
LINES = 2
#: Where only one axis shows a line, it is also read as an enlargement alike on both
#: if the other axis shows the same frequency at this many deviations
#: (:func:`paired_enlargements`): a page of text modulates its rows' curvature line
#: by line, which spreads their line (a help page enlarged x1.5: 8.9 on its rows,
#: 27.7 on its columns).
MIN_PAIRED_LINE_Z = 6.0
#: Largest ratio of the two axes' scales (an aspect change of 25%).
MAX_ASPECT = 1.0 / 0.75


def _axis_spectrum(y: np.ndarray, axis: int):
    """The robust z of every frequency of the curvature profile along ``axis`` (0:
    rows, 1: columns) of the luma plane ``y``, the band searched for lines, the
    magnitude spectrum and the profile's length: ``(z, band, spectrum, n)``, or None
    when the profile is too short or flat."""
    n_along = y.shape[axis]
    if n_along < 64:
        return None
    # the central window, WINDOW a side at most; every ACROSS_STEP-th line across the
    # axis (the line's strength is the same on every one)
    starts = [max(0, (d - WINDOW) // 2) for d in y.shape]
    win = y[starts[0]:starts[0] + WINDOW, starts[1]:starts[1] + WINDOW]
    if axis == 0:
        win = win[:, ::ACROSS_STEP].astype(np.float32)
        curvature = np.abs(2.0 * win[1:-1] - win[:-2] - win[2:]).mean(axis=1)
    else:
        win = win[::ACROSS_STEP].astype(np.float32)
        curvature = np.abs(2.0 * win[:, 1:-1] - win[:, :-2] - win[:, 2:]).mean(axis=0)
    profile = curvature.astype(np.float64) - curvature.mean()
    n = len(profile)
    spectrum = np.abs(scipy.fft.rfft(profile * np.hanning(n)))
    freq = np.arange(len(spectrum)) / n
    band = freq >= MIN_FREQUENCY
    jpeg_lines = np.round(freq * 16.0) / 16.0
    band &= np.abs(freq - jpeg_lines) * n > JPEG_GUARD_BINS
    if band.sum() < 16:
        return None
    values = spectrum[band]
    median = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - median)))
    if spread <= 0.0:
        return None
    return (spectrum - median) / spread, band, spectrum, n


def axis_lines(y: np.ndarray, axis: int) -> list[tuple[float, float]]:
    """The interpolation lines along ``axis`` (0: rows, 1: columns) of the luma plane
    ``y``: ``(frequency in cycles per pixel, robust z)``, strongest first."""
    return _lines(_axis_spectrum(y, axis))


def _lines(axis_spectrum) -> list[tuple[float, float]]:
    """The lines of :func:`_axis_spectrum`'s output at :data:`MIN_LINE_Z` or more,
    strongest first."""
    if axis_spectrum is None:
        return []
    z, band, spectrum, n = axis_spectrum
    lines: list[tuple[float, float]] = []
    for j in np.argsort(-np.where(band, z, -np.inf)):
        if not band[j] or z[j] < MIN_LINE_Z or len(lines) == LINES:
            break
        if not (z[j] >= z[max(j - 1, 0)] and z[j] >= z[min(j + 1, len(z) - 1)]):
            continue  # a shoulder of a stronger line
        lines.append((_centroid(spectrum, j) / n, float(z[j])))
    return lines


def _z_near(axis_spectrum, f: float) -> float:
    """The largest robust z of :func:`_axis_spectrum`'s output within a bin of the
    frequency ``f`` (cycles per pixel), in its band; 0 where there is none."""
    if axis_spectrum is None:
        return 0.0
    z, band, _, n = axis_spectrum
    j = int(round(f * n))
    near = slice(max(j - 1, 0), min(j + 2, len(z)))
    inside = band[near]
    return float(z[near][inside].max()) if inside.any() else 0.0


def _centroid(spectrum: np.ndarray, j: int) -> float:
    """The line's bin to a fraction (a parabola through the peak and its neighbours;
    a Hann-windowed line is nearly parabolic in log magnitude there)."""
    if j == 0 or j == len(spectrum) - 1:
        return float(j)
    a, b, c = np.log(spectrum[j - 1:j + 2] + 1e-12)
    den = a - 2.0 * b + c
    return float(j) if den >= 0.0 else j + 0.5 * float(a - c) / float(den)


def _scales(f: float) -> tuple[float, float]:
    """The two enlargements a line at ``f`` can mean: ``1 / f`` (x2 to x6), or, aliased,
    ``1 / (1 - f)`` (x1.2 to x2)."""
    return 1.0 / f, 1.0 / (1.0 - f)


def enlargements(y: np.ndarray) -> list[np.ndarray]:
    """Geometries ``A`` (copy = A @ grid, (y, x) order, diagonal) of the enlargements
    the copy's interpolation lines suggest, the strongest lines first. Both axes must
    show a line (a whole image was enlarged), and their scales differ by at most
    :data:`MAX_ASPECT`."""
    return enlargement_readings(y)[0]


def paired_enlargements(y: np.ndarray) -> list[np.ndarray]:
    """The enlargements alike on both axes that one axis's line and the same
    frequency on the other axis at :data:`MIN_PAIRED_LINE_Z` or more suggest, where
    :func:`enlargements` reads none (then only one axis shows a line), the strongest
    first."""
    return enlargement_readings(y)[1]


def enlargement_readings(y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(enlargements(y), paired_enlargements(y))`` from one reading of each axis's
    profile (at most one of the two is not empty)."""
    rows_spectrum, cols_spectrum = _axis_spectrum(y, 0), _axis_spectrum(y, 1)
    rows, cols = _lines(rows_spectrum), _lines(cols_spectrum)
    if rows and cols:
        found = [(min(zy, zx), sy, sx) for fy, zy in rows for fx, zx in cols
                 for sy in _scales(fy) for sx in _scales(fx)
                 if max(sy, sx) / min(sy, sx) <= MAX_ASPECT]
        return _distinct(found), []
    found = []
    for lines, other in ((rows, cols_spectrum), (cols, rows_spectrum)):
        for f, z in lines:
            z_other = _z_near(other, f)
            if z_other >= MIN_PAIRED_LINE_Z:
                found += [(min(z, z_other), s, s) for s in _scales(f)]
    return [], _distinct(found)


def _distinct(found: list[tuple[float, float, float]]) -> list[np.ndarray]:
    """The geometries ``diag(scale_y, scale_x)`` of ``(strength, scale_y, scale_x)``,
    the strongest first, without repeats (within 0.2%)."""
    out: list[np.ndarray] = []
    for _, sy, sx in sorted(found, key=lambda p: -p[0]):
        a = np.diag([sy, sx])
        if not any(np.allclose(a, b, rtol=2e-3) for b in out):
            out.append(a)
    return out
