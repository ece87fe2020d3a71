"""Angle-QIM modulation and soft demodulation on pairs of LL-band DCT coefficients.

The mark lives in the luma's one-level Haar LL band, cut into 8x8 blocks (16x16
image pixels). Each block carries ``P`` symbols; symbol ``p`` is the angle of the
vector formed by two DCT coefficients of equal frequency and transposed
orientation, e.g. ``(D[0, 2], D[2, 0])``. A bit is written by moving that angle onto
the keyed lattice ``d + b*pi/4 + k*pi/2`` (:data:`ANGLE_PERIOD`) (angle quantisation index modulation:
Chen & Wornell, 2001, applied to the angle as in Ourique et al., "Angle QIM",
ICASSP 2005). Why an angle:

* **gain invariance** — contrast, gamma and brightness changes scale both
  coefficients alike, so the angle (and the decision) does not move; a fixed-step
  QIM breaks (Pérez-González et al., 2005, discuss the same problem for RDM);
* **blur invariance** — the two coefficients have the same spatial frequency, so an
  isotropic blur attenuates both equally and leaves the angle alone;
* **built-in masking** — the change needed is proportional to the local energy at
  that frequency, so texture takes more and flat areas less. A radius floor keeps a
  minimum signal in flat blocks and a per-block cap (from the block's texture,
  Watson 1993 in spirit) bounds the visible change at strong edges.

Kernels here are leaf functions: contiguous arrays in, preallocated outputs, no
validation. Decisions (lattice rounding) are compiled without fastmath.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import njit_exact, njit_fast, njit_inline, prange

#: Angle lattice period of one bit value; bit 0 and bit 1 points alternate every
#: half period and a symbol decodes correctly within a quarter period. pi/2 beat pi
#: on blur, median and contrast at equal PSNR (benchmarks/RESULTS.md, tuning notes).
ANGLE_PERIOD = math.pi / 2.0
_SPACING = ANGLE_PERIOD / 2.0
_HALF_WIDTH = ANGLE_PERIOD / 4.0

# Luma weights (ITU-R BT.601, as OpenCV's RGB2GRAY and JPEG use).
WR = 0.299
WG = 0.587
WB = 0.114


#: Only DCT coefficients with both indices below LOW are computed per block; every
#: coefficient pair must lie there (checked in ``provmark._layout``).
LOW = 3


@njit_fast
def luma_rows(rgb_rows, y0, n, width, luma):
    """BT.601 luma (float64, unrounded) of ``n`` rows from ``y0`` and the first
    ``width`` pixels of an RGB image viewed as (H, W*3) uint8, into ``luma[:n]``.

    One contiguous pass per row (the compiler vectorises the three-way
    de-interleave), so the per-block measurements below read a plain float plane.
    """
    for r in range(n):
        row = rgb_rows[y0 + r]
        out = luma[r]
        for x in range(width):
            out[x] = WR * row[3 * x] + WG * row[3 * x + 1] + WB * row[3 * x + 2]


@njit_inline
def haar_row(top, bottom, width, ll_row, detail_row):
    """One row of the one-level Haar transform from two rows of a plane: the LL
    sample of each 2x2 cell, ``(a + b + c + d) / 2``, into ``ll_row[:width]``, and
    the energy of its three detail coefficients into ``detail_row[:width]``.

    Inlined (:func:`~provmark.kernels._jit.njit_inline`): the embedder's
    :func:`_row_features` and the detector's :func:`luma_pair_coeffs` keep their own
    arithmetic options.
    """
    for x in range(width):
        a = top[2 * x]
        b = top[2 * x + 1]
        c = bottom[2 * x]
        d = bottom[2 * x + 1]
        ll_row[x] = (a + b + c + d) * 0.5
        h = (a + b - c - d) * 0.5
        v = (a - b + c - d) * 0.5
        g = (a - b - c + d) * 0.5
        detail_row[x] = h * h + v * v + g * g


@njit_inline
def dct_rows(ll, c, u, out_row):
    """Row ``u`` of the first (column) pass of the 8x8 DCT of every block of a block
    row's LL samples ``ll`` (8, width): ``out_row[x] += sum_i c[u, i] * ll[i, x]``,
    accumulated in ``i`` order (inlined, as :func:`haar_row`)."""
    for i in range(8):
        cu = c[u, i]
        ll_row = ll[i]
        for x in range(out_row.shape[0]):
            out_row[x] += cu * ll_row[x]




@njit_fast
def _row_features(luma, c, pairs, coefs, texture, detail):
    """Haar LL -> the low DCT coefficients of every block of one block row.

    ``luma`` is the row's (16, nbx*16) luma (:func:`luma_rows`). Fills
    ``coefs[bx, u, v]`` for ``u, v < LOW``, and per block the ``texture``: the RMS of
    the LL-band DCT coefficients with ``u + v >= 3`` that carry no symbol (found by
    Parseval — the total energy of the orthonormal block minus the computed low
    coefficients — so the other 55 coefficients never need computing), and the
    ``detail``: the RMS of the three Haar detail bands (fine texture). The Haar step
    and the first DCT pass run along the whole row (contiguous, vectorised); only the
    last 9x8 products are per block. Compiled with the restricted fastmath set:
    these are measurements, not decisions (the decisions are in
    :func:`aqim_target`, compiled exactly).
    """
    nbx = coefs.shape[0]
    width = nbx * 8
    ll = np.empty((8, width), np.float64)
    cell_detail = np.empty(width, np.float64)
    energy = np.zeros(nbx, np.float64)
    detail_energy = np.zeros(nbx, np.float64)
    for i in range(8):
        ll_row = ll[i]
        haar_row(luma[2 * i], luma[2 * i + 1], width, ll_row, cell_detail)
        for bx in range(nbx):
            e = 0.0
            s = 0.0
            for j in range(8):
                q = ll_row[bx * 8 + j]
                e += q * q
                s += cell_detail[bx * 8 + j]
            energy[bx] += e
            detail_energy[bx] += s
    # First DCT pass (columns) for the LOW rows needed, along the whole row.
    tmp = np.zeros((LOW, width), np.float64)
    for u in range(LOW):
        dct_rows(ll, c, u, tmp[u])
    for bx in range(nbx):
        excluded = 0.0
        n = 64
        for u in range(LOW):
            for v in range(LOW):
                s = 0.0
                for j in range(8):
                    s += tmp[u, bx * 8 + j] * c[v, j]
                coefs[bx, u, v] = s
                used = u + v < 3
                for p in range(pairs.shape[0]):
                    if ((pairs[p, 0] == u and pairs[p, 1] == v)
                            or (pairs[p, 2] == u and pairs[p, 3] == v)):
                        used = True
                if used:
                    excluded += s * s
                    n -= 1
        texture[bx] = math.sqrt(max(energy[bx] - excluded, 0.0) / n)
        detail[bx] = math.sqrt(detail_energy[bx] / 192.0)


@njit_exact
def aqim_target(c1, c2, bit, dither, r_floor, margin, min_angle):
    """Where to move the pair ``(c1, c2)`` so that it decodes as ``bit`` with a margin.

    The bit's lattice is ``t = dither + bit*pi/4 + k*pi/2``; its decision region is
    ``|theta - t| < pi/8``. The radius is raised to at least ``r_floor``; the angle
    is then moved just far enough to lie ``margin`` coefficient units inside the
    region (at most to the lattice point itself). A pair that already decodes with
    that margin is left alone: textured blocks pay only what robustness needs
    (informed embedding, cf. distortion-compensated QIM in Chen & Wornell 2001).
    ``min_angle`` (radians) is a floor on the angular margin: block-DCT leakage
    under blur or resampling turns angles a little even in strong texture.
    Returns the target pair ``(t1, t2)``.
    """
    r = math.hypot(c1, c2)
    theta = math.atan2(c2, c1)
    base = dither + bit * _SPACING
    k = math.floor((theta - base) / ANGLE_PERIOD + 0.5)
    t = base + k * ANGLE_PERIOD
    err = theta - t  # in [-pi/4, pi/4)
    rr = r if r > r_floor else r_floor
    need = math.asin(min(1.0, margin / rr)) if rr > 0.0 else _HALF_WIDTH
    if need < min_angle:
        need = min_angle
    room = _HALF_WIDTH - need
    if room < 0.0:
        room = 0.0
    if err > room:
        err = room
    elif err < -room:
        err = -room
    return rr * math.cos(t + err), rr * math.sin(t + err)


@njit_exact
def aqim_margin(c1, c2, dither):
    """Signed distance (coefficient units) of a pair from the bit decision boundary:
    positive inside a bit-0 region, negative inside a bit-1 region."""
    r = math.hypot(c1, c2)
    theta = math.atan2(c2, c1)
    k = math.floor((theta - dither) / ANGLE_PERIOD + 0.5)
    a = abs(theta - dither - k * ANGLE_PERIOD)  # in [0, 2 * half width]
    return r * math.sin(_HALF_WIDTH - a)


@njit_exact(parallel=True)
def aqim_embed_deltas(rgb, pairs, bits, dither, boost, c, r_floor, floor_base, floor_gain,
                      margin, min_angle, cap_base, cap_texture, offset, out_delta, out_coef):
    """Compute the coefficient change for every symbol of every whole block.

    Parameters (all preallocated, C-contiguous)
    ----------
    rgb : (H, W, 3) uint8
    pairs : (P, 4) int64, rows ``(u1, v1, u2, v2)``
    bits : (T, T, P) int64 tile of 0/1 symbols (tile phase 0 at the image origin)
    dither : (D, D, P) float64 keyed angle offsets in [0, ANGLE_PERIOD); its period
        D is a multiple of T (see ``provmark._layout``)
    boost : (T, T, P) float64 per-slot multiplier of the change cap (1 everywhere
        on the first pass; raised on slots that did not decode, see ``provmark._embed``)
    c : (8, 8) float64 DCT matrix
    r_floor, floor_base, floor_gain, margin, min_angle, cap_base, cap_texture : float
        strength parameters (see
        :func:`aqim_target`); the change of one symbol is capped at
        ``(cap_base + cap_texture * hypot(texture, detail)) * boost[slot]``.
    offset : (nby, nbx, P, 2) float32 change already added to each pair by other
        means (the synchronisation template): the symbol's move starts from the pair
        plus it, so that the sum lands on the lattice (informed embedding). The
        block's masking (floor, cap) is measured on the image itself.
    out_delta : (nby, nbx, P, 2) float32 change to add to each coefficient pair
    out_coef : (nby, nbx, P, 2) float32 original coefficient pairs (diagnostics)
    """
    nby, nbx, npairs, _ = out_delta.shape
    tsz = bits.shape[0]
    dsz = dither.shape[0]
    rgb_rows = rgb.reshape(rgb.shape[0], rgb.shape[1] * 3)
    for by in prange(nby):
        luma = np.empty((16, nbx * 16), np.float64)
        luma_rows(rgb_rows, by * 16, 16, nbx * 16, luma)
        dct = np.empty((nbx, LOW, LOW), np.float64)
        texture = np.empty(nbx, np.float64)
        detail = np.empty(nbx, np.float64)
        _row_features(luma, c, pairs, dct, texture, detail)
        for bx in range(nbx):
            activity = math.sqrt(texture[bx] * texture[bx] + detail[bx] * detail[bx])
            cap = cap_base + cap_texture * activity
            # Near black or white a floor signal would be clipped away (and only
            # cost quality): keep it within the block's headroom. The DC of the
            # LL-band DCT is 16 x the block's mean luma.
            mean = dct[bx, 0, 0] / 16.0
            headroom = min(mean, 255.0 - mean)
            floor = min(r_floor, max(headroom, 0.0) * 5.0)
            # On smooth areas (sky, gradients) a full floor shows as mottling: there
            # it grows with the block's activity from ``floor_base`` upwards.
            floor = min(floor, floor_base + floor_gain * activity)
            ty = by % tsz
            tx = bx % tsz
            dy = by % dsz
            dx = bx % dsz
            for p in range(npairs):
                c1 = dct[bx, pairs[p, 0], pairs[p, 1]]
                c2 = dct[bx, pairs[p, 2], pairs[p, 3]]
                s1 = c1 + offset[by, bx, p, 0]
                s2 = c2 + offset[by, bx, p, 1]
                t1, t2 = aqim_target(s1, s2, bits[ty, tx, p], dither[dy, dx, p], floor,
                                     margin, min_angle)
                d1 = t1 - s1
                d2 = t2 - s2
                mag = math.sqrt(d1 * d1 + d2 * d2)
                slot_cap = cap * boost[ty, tx, p]
                if mag > slot_cap:
                    d1 *= slot_cap / mag
                    d2 *= slot_cap / mag
                out_delta[by, bx, p, 0] = d1
                out_delta[by, bx, p, 1] = d2
                out_coef[by, bx, p, 0] = c1
                out_coef[by, bx, p, 1] = c2


@njit_exact(parallel=True)
def apply_block_deltas(rgb, pairs, delta, c, scale, limit, template, tamp, out):
    """Add ``scale * delta`` (LL-band DCT changes) and a synchronisation template
    to every channel of ``rgb``.

    The inverse DCT of a change confined to a few coefficients is the sum of their
    basis images; the inverse Haar of an LL-only change adds ``dLL / 2`` to each of
    the four pixels under it. Adding the same luma change to R, G and B leaves
    chroma (B - Y, R - Y) unchanged. The change of every 2x2 pixel cell (one LL
    sample) is clamped to ``+-limit[ly, lx]`` grey levels (``limit`` (nby*8, nbx*8)
    float32: a visibility bound that is tight in flat neighbourhoods and loose in
    texture); values are rounded half up and clipped to 0..255. Pixels outside whole
    blocks are copied.

    ``template`` is a periodic (Q, Q) float32 tile, Q a power of two, added as
    ``template[y % Q, x % Q]
    * tamp[by, bx]`` (``tamp`` (nby, nbx) float32 per-block amplitudes; all zero
    adds nothing). It is summed with the QIM change, and the sum clamped to the
    same limit, before the single rounding.
    """
    h = rgb.shape[0]
    w = rgb.shape[1]
    q = template.shape[0]
    use_template = False
    for by in range(tamp.shape[0]):
        for bx in range(tamp.shape[1]):
            if tamp[by, bx] != 0.0:
                use_template = True
    nby, nbx, npairs, _ = delta.shape
    wb = nbx * 16
    # Rows as flat (W*3) uint8 runs, so that the final add is one contiguous loop.
    rgb_rows = rgb.reshape(h, w * 3)
    out_rows = out.reshape(h, w * 3)
    for by in prange(nby):
        # Change of every LL sample of this block row: the sum of the changed
        # coefficients' basis images.
        dll = np.zeros((8, nbx * 8), np.float64)
        for bx in range(nbx):
            for p in range(npairs):
                d1 = 0.5 * scale * delta[by, bx, p, 0]
                d2 = 0.5 * scale * delta[by, bx, p, 1]
                u1 = pairs[p, 0]
                v1 = pairs[p, 1]
                u2 = pairs[p, 2]
                v2 = pairs[p, 3]
                for i in range(8):
                    a1 = d1 * c[u1, i]
                    a2 = d2 * c[u2, i]
                    for j in range(8):
                        dll[i, bx * 8 + j] += a1 * c[v1, j] + a2 * c[v2, j]
        # Per pixel row, everything laid out at pixel resolution first (the LL change
        # and its limit repeated twice, the template row tiled, each block's template
        # amplitude), so the per-pixel loops run over contiguous arrays and
        # vectorise.
        change = np.empty(wb, np.float64)
        bound = np.empty(wb, np.float64)
        amplitude = np.zeros(wb, np.float32)
        tiled = np.zeros(wb, np.float32)
        step = np.empty(wb, np.int16)
        step3 = np.empty(wb * 3, np.int16)
        if use_template:
            for xx in range(wb):
                amplitude[xx] = tamp[by, xx >> 4]
        for r in range(16):
            yy = by * 16 + r
            if r % 2 == 0:
                dll_row = dll[r >> 1]
                limit_row = limit[by * 8 + (r >> 1)]
                for xx in range(wb):
                    lim = np.float64(limit_row[xx >> 1])
                    v = dll_row[xx >> 1]
                    if v > lim:
                        v = lim
                    if v < -lim:
                        v = -lim
                    change[xx] = v
                    bound[xx] = lim
            if use_template:
                template_row = template[yy % q]
                for x0 in range(0, wb, q):
                    n = min(q, wb - x0)
                    tiled[x0:x0 + n] = template_row[:n]
            # The sum is clamped to the same limit before the single rounding (a
            # float32 template term, as the reference computes it).
            for xx in range(wb):
                d = change[xx] + tiled[xx] * amplitude[xx]
                lim = bound[xx]
                if d > lim:
                    d = lim
                if d < -lim:
                    d = -lim
                step[xx] = np.int16(np.floor(d + 0.5))
            # The pixel values are integers, so round(v + d) = v + round(d): the
            # change is rounded once per pixel and added to R, G and B as an integer.
            for xx in range(wb):
                s = step[xx]
                step3[3 * xx] = s
                step3[3 * xx + 1] = s
                step3[3 * xx + 2] = s
            in_row = rgb_rows[yy]
            out_row = out_rows[yy]
            for k in range(wb * 3):
                val = np.int16(in_row[k]) + step3[k]
                out_row[k] = np.uint8(min(max(val, 0), 255))
            for k in range(wb * 3, w * 3):
                out_row[k] = in_row[k]
    for yy in prange(nby * 16, h):
        out_rows[yy, :] = rgb_rows[yy, :]


@njit_exact(parallel=True)
def luma_pair_coeffs(y, oy, ox, pairs, c, out):
    """Extract the coefficient pairs of every whole block of a float luma plane.

    ``(oy, ox)`` is the pixel origin of the block grid (0..15 each); block
    ``(by, bx)`` covers rows ``oy + 16*by ...``. ``out`` is (nby, nbx, P, 2) float32.
    A block row at a time: its Haar LL and the first DCT pass (only the DCT rows the
    pairs use) run along the whole row, contiguous; the last 8 products per
    coefficient are per block. The sums keep the order of the per-block formula.
    """
    nby, nbx, npairs, _ = out.shape
    width = nbx * 8
    needed = np.zeros(8, np.bool_)
    for p in range(npairs):
        needed[pairs[p, 0]] = True
        needed[pairs[p, 2]] = True
    for by in prange(nby):
        ll = np.empty((8, width), np.float64)
        detail = np.empty(width, np.float64)  # not needed here
        y0 = oy + 16 * by
        for i in range(8):
            haar_row(y[y0 + 2 * i, ox:ox + 2 * width],
                           y[y0 + 2 * i + 1, ox:ox + 2 * width], width, ll[i], detail)
        tmp = np.zeros((8, width), np.float64)
        for u in range(8):
            if needed[u]:
                dct_rows(ll, c, u, tmp[u])
        for bx in range(nbx):
            for p in range(npairs):
                for q in range(2):
                    u = pairs[p, 2 * q]
                    v = pairs[p, 2 * q + 1]
                    s = 0.0
                    for j in range(8):
                        s += tmp[u, bx * 8 + j] * c[v, j]
                    out[by, bx, p, q] = s


@njit_exact
def aqim_soft_score(c1, c2, dither, scale, rel, clip):
    """One observation's soft score: the decision margin (:func:`aqim_margin`, positive
    means bit 0) divided by ``scale + rel * radius`` and clipped to ``[-clip, clip]``."""
    m = aqim_margin(c1, c2, dither) / (scale + rel * math.sqrt(c1 * c1 + c2 * c2))
    if m > clip:
        return clip
    if m < -clip:
        return -clip
    return m


@njit_exact(parallel=True)
def aqim_soft_observe(coef, dither, ty, tx, tsz, scale, rel, clip, out_score, out_slot):
    """Soft-demodulate every symbol: one observation per pair.

    Block ``(by, bx)`` sits at tile position ``((by + ty) % tsz, (bx + tx) % tsz)``
    and dither position ``((by + ty) % D, (bx + tx) % D)``. ``out_score`` (nby, nbx,
    P) float64 receives each pair's decision margin (:func:`aqim_margin`, positive
    means bit 0) divided by ``scale + rel * radius`` and clipped to ``[-clip,
    clip]``: a pair wiped out by compression has a margin near zero and counts for
    little, and no single block can dominate. ``out_slot`` (nby, nbx, P) int64
    receives the flat index ``(py * tsz + px) * P + p`` of that slot (``tsz``: tile
    size in blocks). The detector folds observations by slot
    (``provmark._detect.fold_observations``), or weighs them by class first
    (``provmark._detect.calibrated_scores``).
    """
    nby, nbx, npairs, _ = coef.shape
    dsz = dither.shape[0]
    for by in prange(nby):
        py = (by + ty) % tsz
        qy = (by + ty) % dsz
        for bx in range(nbx):
            px = (bx + tx) % tsz
            qx = (bx + tx) % dsz
            for p in range(npairs):
                m = aqim_soft_score(coef[by, bx, p, 0], coef[by, bx, p, 1],
                                    dither[qy, qx, p], scale, rel, clip)
                out_score[by, bx, p] = m
                out_slot[by, bx, p] = (py * tsz + px) * npairs + p


@njit_exact(parallel=True)
def add_enlarged_change(base, change, out):
    """Add a change made at half resolution (the coarse layer) to an image.

    ``out = clip(floor(base + up(change) + 0.5), 0, 255)`` on the top-left
    ``2h x 2w`` pixels, ``base`` copied elsewhere. ``up`` enlarges the change by 2
    bilinearly with pixel centres aligned and edges replicated, as OpenCV's
    ``INTER_LINEAR`` does: output row ``2i`` takes rows ``i - 1`` and ``i`` with
    weights 1/4 and 3/4, row ``2i + 1`` rows ``i`` and ``i + 1`` with 3/4 and 1/4
    (columns alike). ``base``, ``out`` (H, W, C) uint8; ``change`` (h, w, C) int16,
    ``2h <= H``, ``2w <= W``. The weights are multiples of 1/16, so an integer change
    is enlarged exactly and the one rounding is that of ``floor(v + 0.5)``. The
    reference is ``tests/naive.py::add_enlarged_change`` (``cv2.resize``); no
    (H, W, C) float plane is written (600 MB at 50 MP).
    """
    hh, ww, nch = base.shape
    h, w = change.shape[0], change.shape[1]
    for yy in prange(hh):
        if yy >= 2 * h:
            for xx in range(ww):
                for c in range(nch):
                    out[yy, xx, c] = base[yy, xx, c]
            continue
        i = yy // 2
        if yy % 2 == 0:
            r0, r1, a0 = max(i - 1, 0), i, 0.25
        else:
            r0, r1, a0 = i, min(i + 1, h - 1), 0.75
        for xx in range(ww):
            if xx >= 2 * w:
                for c in range(nch):
                    out[yy, xx, c] = base[yy, xx, c]
                continue
            j = xx // 2
            if xx % 2 == 0:
                c0, c1, b0 = max(j - 1, 0), j, 0.25
            else:
                c0, c1, b0 = j, min(j + 1, w - 1), 0.75
            for c in range(nch):
                v = (a0 * (b0 * change[r0, c0, c] + (1.0 - b0) * change[r0, c1, c])
                     + (1.0 - a0) * (b0 * change[r1, c0, c] + (1.0 - b0) * change[r1, c1, c]))
                k = math.floor(base[yy, xx, c] + v + 0.5)
                out[yy, xx, c] = min(max(k, 0), 255)
