"""Tests for the angle-QIM kernels: equivalence with ``tests/naive.py``, properties of
the scalar modulation (hypothesis), the JIT options, and the pure-Python bodies.

References are float64 (PyWavelets Haar LL, ``scipy.fft.dctn``, NumPy loops, the QIM
formulas written again from their definition); kernel outputs that are float32 are
compared within float32 rounding.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import naive
import provmark.kernels as kernels
from provmark.kernels import (
    ANGLE_PERIOD,
    dct_matrix,
    aqim_embed_deltas,
    aqim_margin,
    aqim_target,
    apply_block_deltas,
    luma_pair_coeffs,
    rgb_to_luma,
)
from provmark.kernels import _jit

EPS32 = float(np.finfo(np.float32).eps)
#: The exact float64 DCT matrix (the kernels take ``c`` as float64). DCT8.astype(float64)
#: would carry DCT8's float32 rounding (~3e-8 relative) into every coefficient.
C64 = dct_matrix(8)
HALF_WIDTH = ANGLE_PERIOD / 4.0
#: The production pairs (provmark._layout.PAIRS) plus one sharing a coefficient.
PAIRS = np.array([[0, 2, 2, 0], [1, 2, 2, 1]], dtype=np.int64)
SHARED_PAIRS = np.array([[0, 2, 2, 0], [1, 2, 2, 1], [0, 2, 1, 1]], dtype=np.int64)
#: Pairs anywhere in the 8x8 block (luma_pair_coeffs computes every row).
WIDE_PAIRS = np.array([[0, 2, 2, 0], [1, 2, 2, 1], [3, 4, 4, 3], [0, 7, 7, 0], [5, 6, 6, 5]],
                      dtype=np.int64)
#: Default embedding strength of provmark (provmark._embed.Strength).
DEFAULT_STRENGTH = dict(r_floor=16.0, floor_base=6.0, floor_gain=2.0, margin=28.0,
                        min_angle=0.12, cap_base=14.0, cap_texture=1.0)
_OFF = 1e6  # a floor or cap that never binds

HYP = settings(database=None, deadline=None, max_examples=300)

coordinate = st.floats(-500.0, 500.0, allow_nan=False, allow_infinity=False)
dither_st = st.floats(0.0, ANGLE_PERIOD, exclude_max=True)
bit_st = st.integers(0, 1)
r_floor_st = st.floats(0.0, 100.0)
margin_st = st.floats(0.01, 100.0)
min_angle_st = st.floats(0.0, 0.5)  # includes values past the half-width pi/8
gain_st = st.floats(0.01, 100.0)


def _target(c1, c2, bit, dither, r_floor, margin, min_angle):
    t1, t2 = aqim_target(float(c1), float(c2), int(bit), float(dither), float(r_floor),
                         float(margin), float(min_angle))
    return float(t1), float(t2)


def _margin(c1, c2, dither):
    return float(aqim_margin(float(c1), float(c2), float(dither)))


def _guaranteed_margin(radius, margin, min_angle):
    """Documented lower bound on |aqim_margin| after moving: ``margin`` coefficient
    units (or ``radius * sin(min_angle)`` if larger), but never more than the
    lattice point itself offers, ``radius * sin(pi/8)``."""
    return min(max(margin, radius * math.sin(min_angle)), radius * math.sin(HALF_WIDTH))


# ------------------------------------------------------------ aqim_target/margin


@HYP
@given(coordinate, coordinate, bit_st, dither_st, r_floor_st, margin_st, min_angle_st)
def test_aqim_target_decodes_as_bit_with_margin(c1, c2, bit, dither, r_floor, margin,
                                                min_angle):
    assume(math.hypot(c1, c2) > 1e-3)
    t1, t2 = _target(c1, c2, bit, dither, r_floor, margin, min_angle)
    radius = max(math.hypot(c1, c2), r_floor)
    assert math.hypot(t1, t2) == pytest.approx(radius, rel=1e-12)
    assert math.hypot(t1, t2) >= r_floor * (1 - 1e-12)
    signed = _margin(t1, t2, dither) * (1.0 if bit == 0 else -1.0)
    bound = _guaranteed_margin(radius, margin, min_angle)
    assert signed > 0.0
    assert signed >= bound - 1e-9 * radius


@HYP
@given(st.floats(1e-2, 500.0), st.floats(0.0, 1.0), bit_st, dither_st, st.integers(-4, 3),
       st.floats(-1.0, 1.0), margin_st, st.floats(0.0, 0.35))
def test_aqim_target_leaves_a_good_pair_alone(radius, floor_frac, bit, dither, k, frac,
                                              margin, min_angle):
    need = max(math.asin(min(1.0, margin / radius)), min_angle)
    assume(need < HALF_WIDTH)
    # A pair already inside the bit's region by at least the required margin.
    theta = dither + bit * ANGLE_PERIOD / 2 + k * ANGLE_PERIOD + frac * (HALF_WIDTH - need)
    c1, c2 = radius * math.cos(theta), radius * math.sin(theta)
    t1, t2 = _target(c1, c2, bit, dither, floor_frac * radius, margin, min_angle)
    assert t1 == pytest.approx(c1, abs=1e-9 * radius)
    assert t2 == pytest.approx(c2, abs=1e-9 * radius)


@HYP
@given(coordinate, coordinate, bit_st, dither_st, r_floor_st, margin_st, min_angle_st)
def test_aqim_target_is_idempotent(c1, c2, bit, dither, r_floor, margin, min_angle):
    assume(math.hypot(c1, c2) > 1e-3)
    t = _target(c1, c2, bit, dither, r_floor, margin, min_angle)
    tt = _target(*t, bit, dither, r_floor, margin, min_angle)
    scale = math.hypot(*t)
    assert tt == pytest.approx(t, abs=1e-9 * scale)


@HYP
@given(coordinate, coordinate, bit_st, dither_st, r_floor_st, margin_st, min_angle_st)
def test_aqim_target_matches_reference(c1, c2, bit, dither, r_floor, margin, min_angle):
    assume(math.hypot(c1, c2) > 1e-3)
    err = naive.wrap(math.atan2(c2, c1) - dither - bit * ANGLE_PERIOD / 2, ANGLE_PERIOD)
    assume(abs(abs(err) - ANGLE_PERIOD / 2) > 1e-9)  # a tie: either lattice point is right
    got = _target(c1, c2, bit, dither, r_floor, margin, min_angle)
    ref = naive.target(c1, c2, bit, dither, r_floor, margin, min_angle)
    assert got == pytest.approx(ref, abs=1e-9 * max(math.hypot(*ref), 1.0))


@HYP
@given(coordinate, coordinate, dither_st)
def test_aqim_margin_matches_reference(c1, c2, dither):
    got = _margin(c1, c2, dither)
    ref = float(naive.margin(c1, c2, dither))
    assert got == pytest.approx(ref, abs=1e-9 * max(math.hypot(c1, c2), 1.0))


@HYP
@given(coordinate, coordinate, dither_st, gain_st)
def test_aqim_margin_is_gain_invariant(c1, c2, dither, gain):
    assume(math.hypot(c1, c2) > 1e-3)
    m = _margin(c1, c2, dither)
    assert _margin(gain * c1, gain * c2, dither) == pytest.approx(
        gain * m, rel=1e-9, abs=1e-12 * gain * math.hypot(c1, c2))


@HYP
@given(coordinate, coordinate, bit_st, dither_st, r_floor_st, margin_st, min_angle_st,
       gain_st)
def test_aqim_target_is_gain_equivariant(c1, c2, bit, dither, r_floor, margin, min_angle,
                                         gain):
    # Contrast scales coefficients, floor and margin alike: the decision cannot move.
    assume(math.hypot(c1, c2) > 1e-3)
    err = naive.wrap(math.atan2(c2, c1) - dither - bit * ANGLE_PERIOD / 2, ANGLE_PERIOD)
    assume(abs(abs(err) - ANGLE_PERIOD / 2) > 1e-9)
    t = _target(c1, c2, bit, dither, r_floor, margin, min_angle)
    tg = _target(gain * c1, gain * c2, bit, dither, gain * r_floor, gain * margin, min_angle)
    assert tg == pytest.approx((gain * t[0], gain * t[1]),
                               abs=1e-9 * gain * max(math.hypot(*t), 1.0))


@HYP
@given(coordinate, coordinate, dither_st)
def test_aqim_margin_lattice_period(c1, c2, dither):
    # Rotating by ANGLE_PERIOD keeps the margin; by half of it (the other bit) flips it.
    r = math.hypot(c1, c2)
    assume(r > 1e-3)  # sqrt(c1*c1 + c2*c2) underflows below ~1e-154
    theta = math.atan2(c2, c1)
    m = _margin(c1, c2, dither)
    full = _margin(r * math.cos(theta + ANGLE_PERIOD), r * math.sin(theta + ANGLE_PERIOD),
                   dither)
    half = _margin(r * math.cos(theta + ANGLE_PERIOD / 2),
                   r * math.sin(theta + ANGLE_PERIOD / 2), dither)
    assert full == pytest.approx(m, abs=1e-9 * max(r, 1.0))
    assert half == pytest.approx(-m, abs=1e-9 * max(r, 1.0))
    assert abs(m) <= r * math.sin(HALF_WIDTH) * (1 + 1e-12)


@pytest.mark.parametrize("bit", [0, 1])
def test_aqim_zero_vector(bit):
    d = 0.3
    # No radius and no floor: nothing to move, no NaN.
    t = _target(0.0, 0.0, bit, d, 0.0, 28.0, 0.12)
    assert t == (0.0, 0.0)
    assert _margin(0.0, 0.0, d) == 0.0
    # A floor creates the signal from nothing, on the bit's side.
    t1, t2 = _target(0.0, 0.0, bit, d, 16.0, 28.0, 0.12)
    assert math.hypot(t1, t2) == pytest.approx(16.0, rel=1e-12)
    signed = _margin(t1, t2, d) * (1 if bit == 0 else -1)
    assert signed >= _guaranteed_margin(16.0, 28.0, 0.12) - 1e-9


# ------------------------------------------------------------- luma_pair_coeffs


@pytest.mark.parametrize("shape, offset", [
    ((40, 37), (5, 11)),
    ((300, 277), (0, 0)),
    ((300, 277), (5, 11)),
    ((300, 277), (15, 15)),
])
def test_luma_pair_coeffs_matches_reference(shape, offset, rng, textured_rgb):
    rgb = textured_rgb(*shape, rng)
    y = np.empty(shape, np.float32)
    rgb_to_luma(rgb, y)
    oy, ox = offset
    nby, nbx = (shape[0] - oy) // 16, (shape[1] - ox) // 16
    out = np.full((nby, nbx, len(WIDE_PAIRS), 2), np.nan, np.float32)
    luma_pair_coeffs(y, oy, ox, WIDE_PAIRS, C64, out)
    ref = naive.pair_coeffs(y, oy, ox, WIDE_PAIRS, nby, nbx)
    # The kernel adds the four float32 luma samples of an LL sample in float32: the
    # error is about one float32 ulp of the luma scale (measured <= 1.6 x that).
    np.testing.assert_allclose(out, ref, rtol=EPS32, atol=4 * EPS32 * float(np.abs(y).max()))


# ------------------------------------------------------------ aqim_embed_deltas


def _embed_deltas(rgb, pairs, bits, dither, strength, boost=None, offset=None):
    nby, nbx = rgb.shape[0] // 16, rgb.shape[1] // 16
    delta = np.full((nby, nbx, len(pairs), 2), np.nan, np.float32)
    coef = np.full_like(delta, np.nan)
    if boost is None:
        boost = np.ones(bits.shape, np.float64)
    if offset is None:
        offset = np.zeros_like(delta)
    aqim_embed_deltas(rgb, pairs, bits, dither, boost=boost, c=C64, offset=offset,
                      out_delta=delta, out_coef=coef,
                      **{k: float(v) for k, v in strength.items()})
    return delta, coef


def _tile(t, d, npairs, rng):
    bits = rng.integers(0, 2, size=(t, t, npairs)).astype(np.int64)
    dither = rng.uniform(0.0, ANGLE_PERIOD, size=(d, d, npairs))
    return bits, dither


STRENGTHS = {
    "default": DEFAULT_STRENGTH,
    # the per-symbol cap binds often
    "capped": dict(r_floor=40.0, floor_base=_OFF, floor_gain=0.0, margin=60.0, min_angle=0.3,
                   cap_base=10.0, cap_texture=0.5),
    # the pure target move, floor limited by headroom only
    "uncapped": dict(r_floor=16.0, floor_base=_OFF, floor_gain=0.0, margin=28.0,
                     min_angle=0.12, cap_base=_OFF, cap_texture=0.0),
    # the activity-dependent floor binds on most blocks
    "smooth_floor": dict(r_floor=60.0, floor_base=2.0, floor_gain=0.5, margin=10.0,
                         min_angle=0.05, cap_base=_OFF, cap_texture=0.0),
}


@pytest.mark.parametrize("boosted", [False, True])
@pytest.mark.parametrize("strength", list(STRENGTHS))
@pytest.mark.parametrize("image", ["noise", "textured"])
@pytest.mark.parametrize("t, d", [(2, 4), (3, 3)])
def test_aqim_embed_deltas_matches_reference(t, d, image, strength, boosted, rng,
                                             textured_rgb):
    h, w = 96, 80
    if image == "noise":
        rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    else:
        rgb = textured_rgb(h, w, rng)
    bits, dither = _tile(t, d, len(PAIRS), rng)
    boost = rng.uniform(0.3, 3.0, size=bits.shape) if boosted else np.ones(bits.shape)
    params = STRENGTHS[strength]
    delta, coef = _embed_deltas(rgb, PAIRS, bits, dither, params, boost)
    ref_delta, ref_coef = naive.embed_deltas(rgb, PAIRS, bits, dither, boost, **params)
    assert delta.shape == (6, 5, 2, 2)
    np.testing.assert_allclose(coef, ref_coef, rtol=EPS32, atol=1e-9 * np.abs(ref_coef).max())
    np.testing.assert_allclose(delta, ref_delta, rtol=4 * EPS32, atol=1e-5)


@pytest.mark.parametrize("strength", ["default", "uncapped"])
def test_aqim_embed_deltas_start_from_the_offset(strength, rng, textured_rgb):
    """With an offset (the template's share of each pair), kernel and reference agree,
    the original pairs are still reported, and the pair plus offset plus change is
    where the pair alone plus the change without offset was not: on the target."""
    rgb = textured_rgb(96, 80, rng)
    bits, dither = _tile(2, 4, len(PAIRS), rng)
    params = STRENGTHS[strength]
    offset = rng.normal(0.0, 6.0, size=(6, 5, len(PAIRS), 2)).astype(np.float32)
    delta, coef = _embed_deltas(rgb, PAIRS, bits, dither, params, offset=offset)
    ref_delta, ref_coef = naive.embed_deltas(rgb, PAIRS, bits, dither, np.ones(bits.shape),
                                             offset=offset, **params)
    np.testing.assert_allclose(coef, ref_coef, rtol=EPS32, atol=1e-9 * np.abs(ref_coef).max())
    np.testing.assert_allclose(delta, ref_delta, rtol=4 * EPS32, atol=1e-5)
    plain, plain_coef = _embed_deltas(rgb, PAIRS, bits, dither, params)
    np.testing.assert_array_equal(coef, plain_coef)  # the image's own pairs
    assert np.abs(delta - plain).max() > 1.0  # the move depends on the offset
    # Uncapped, the pair plus offset plus change sits at the same angle, modulo the
    # symbol's lattice period, as the pair plus the change planned without offset.
    if strength == "uncapped":
        moved = np.hypot(*np.moveaxis(plain, -1, 0)) > 1e-3  # (not left alone)
        ang = np.arctan2(*np.moveaxis(coef + offset + delta, -1, 0)[::-1])
        ang0 = np.arctan2(*np.moveaxis(coef + plain, -1, 0)[::-1])
        turn = np.angle(np.exp(1j * (ang - ang0) * (2 * np.pi / ANGLE_PERIOD)))
        assert moved.mean() > 0.5 and np.abs(turn[moved]).max() < 1e-3


def test_aqim_embed_deltas_branches(rng, textured_rgb):
    # The comparisons above are only as good as the cases they reach: check that the
    # cap, the "already good, leave alone" path and each radius floor limit occur,
    # with values known in closed form.
    rgb = textured_rgb(96, 80, rng)
    bits, dither = _tile(2, 4, len(PAIRS), rng)
    delta, _ = _embed_deltas(rgb, PAIRS, bits, dither, STRENGTHS["capped"])
    ref_delta, ref_coef = naive.embed_deltas(rgb, PAIRS, bits, dither, np.ones(bits.shape),
                                             **{**STRENGTHS["capped"], "cap_base": _OFF})
    capped = np.hypot(*np.moveaxis(ref_delta, -1, 0)) > np.hypot(*np.moveaxis(delta, -1, 0)) + 1
    assert capped.mean() > 0.25  # the cap binds on many symbols ...
    assert (~capped).any()  # ... but not on all
    # The boost multiplies the cap of its tile slot only.
    boost = np.ones(bits.shape)
    boost[0, 1, 1] = 0.0
    boosted, _ = _embed_deltas(rgb, PAIRS, bits, dither, STRENGTHS["capped"], boost)
    slot = (np.arange(6)[:, None] % 2 == 0) & (np.arange(5)[None, :] % 2 == 1)
    assert np.all(boosted[slot, 1] == 0.0)
    np.testing.assert_array_equal(boosted[~slot], delta[~slot])
    np.testing.assert_array_equal(boosted[slot, 0], delta[slot, 0])
    noise = rng.integers(0, 256, size=(96, 80, 3), dtype=np.uint8)
    gentle = dict(r_floor=0.0, floor_base=_OFF, floor_gain=0.0, margin=1.0, min_angle=0.0,
                  cap_base=_OFF, cap_texture=0.0)
    delta, _ = _embed_deltas(noise, PAIRS, bits, dither, gentle)
    moved = np.hypot(delta[..., 0], delta[..., 1])
    assert np.any(moved < 1e-9)  # a pair left alone (up to cos/atan2 rounding) ...
    assert np.any(moved > 1.0)  # ... and others moved

    # Flat blocks (all pair coefficients zero): the whole signal is the floor,
    # min(r_floor, 5 * headroom, floor_base + floor_gain * 0).
    flat = np.zeros((32, 48, 3), np.uint8)
    flat[:16, :16] = 2  # headroom 2 -> 10
    flat[16:, 16:32] = 253  # headroom 2 -> 10
    flat[:16, 16:32] = 128  # r_floor 16
    flat[16:, :16] = 0  # no headroom: no signal
    flat[:, 32:] = 128
    bits1, dither1 = _tile(1, 1, len(PAIRS), rng)
    strength = dict(gentle, r_floor=16.0)
    length = np.hypot(*np.moveaxis(_embed_deltas(flat, PAIRS, bits1, dither1, strength)[0],
                                   -1, 0))
    np.testing.assert_allclose(length[:, :2], [[[10.0] * 2, [16.0] * 2],
                                               [[0.0] * 2, [10.0] * 2]], rtol=1e-6, atol=1e-9)
    strength = dict(strength, floor_base=3.0, floor_gain=100.0)
    length = np.hypot(*np.moveaxis(_embed_deltas(flat, PAIRS, bits1, dither1, strength)[0],
                                   -1, 0))
    np.testing.assert_allclose(length[:, 2], 3.0, rtol=1e-6)


def test_aqim_embed_deltas_small(rng, textured_rgb):
    rgb = textured_rgb(48, 32, rng)
    bits, dither = _tile(2, 2, len(SHARED_PAIRS), rng)
    boost = rng.uniform(0.3, 3.0, size=bits.shape)
    delta, coef = _embed_deltas(rgb, SHARED_PAIRS, bits, dither, DEFAULT_STRENGTH, boost)
    ref_delta, ref_coef = naive.embed_deltas(rgb, SHARED_PAIRS, bits, dither, boost,
                                             **DEFAULT_STRENGTH)
    np.testing.assert_allclose(coef, ref_coef, rtol=EPS32, atol=1e-9 * np.abs(ref_coef).max())
    np.testing.assert_allclose(delta, ref_delta, rtol=4 * EPS32, atol=1e-5)


def test_embedded_pairs_decode_as_their_bits(rng, textured_rgb):
    # End to end through the references: coefficients + uncapped deltas decode as bits.
    rgb = textured_rgb(96, 80, rng)
    bits, dither = _tile(2, 4, len(PAIRS), rng)
    delta, coef = _embed_deltas(rgb, PAIRS, bits, dither, STRENGTHS["uncapped"])
    moved = coef.astype(np.float64) + delta
    by, bx, p = np.meshgrid(np.arange(6), np.arange(5), np.arange(len(PAIRS)), indexing="ij")
    m = naive.margin(moved[..., 0], moved[..., 1], dither[by % 4, bx % 4, p])
    want = bits[by % 2, bx % 2, p]
    assert np.all((m > 0) == (want == 0))


# ----------------------------------------------------------- apply_block_deltas


def _apply(rgb, pairs, delta, scale, max_change):
    out = np.zeros_like(rgb)
    nby, nbx = delta.shape[:2]
    limit = np.broadcast_to(np.asarray(max_change, np.float32), (8 * nby, 8 * nbx))
    apply_block_deltas(rgb, pairs, delta, C64, float(scale), np.ascontiguousarray(limit),
                       np.zeros((4, 4), np.float32), np.zeros((nby, nbx), np.float32), out)
    return out


#: At most this fraction of channel values may differ from the reference, and then
#: by one grey level: rounding half up of ``rgb + change`` can flip when ``change`` is
#: within float64 rounding of a half-integer (measured: 0 of 26100 here).
ROUNDING_TOLERANCE = 1e-4


@pytest.mark.parametrize("shape, pairs, scale, max_change", [
    ((40, 37), SHARED_PAIRS, 0.7, 6.0),
    ((100, 87), PAIRS, 1.0, 12.0),
    ((100, 87), SHARED_PAIRS, 0.7, 6.0),
    ((96, 80), PAIRS, 2.5, 3.0),
])
def test_apply_block_deltas_matches_reference(shape, pairs, scale, max_change, rng,
                                              textured_rgb):
    rgb = textured_rgb(*shape, rng)
    nby, nbx = shape[0] // 16, shape[1] // 16
    delta = (rng.normal(0.0, 40.0, size=(nby, nbx, len(pairs), 2))).astype(np.float32)
    out = _apply(rgb, pairs, delta, scale, max_change)
    ref = naive.apply_deltas(rgb, pairs, delta, scale, max_change)
    diff = out.astype(np.int16) - ref.astype(np.int16)
    assert np.abs(diff).max() <= 1
    assert np.count_nonzero(diff) <= ROUNDING_TOLERANCE * diff.size
    # Outside whole blocks nothing changes.
    np.testing.assert_array_equal(out[16 * nby:], rgb[16 * nby:])
    np.testing.assert_array_equal(out[:, 16 * nbx:], rgb[:, 16 * nbx:])
    # The clamp was reached, and the change stays within it (plus rounding).
    change = out.astype(np.int16) - rgb.astype(np.int16)
    assert np.abs(change).max() == math.floor(max_change + 0.5)
    # Clipping at 0 and 255 happened somewhere (near-black/white blocks).
    assert np.any((out == 0) & (rgb > 0)) or np.any((out == 255) & (rgb < 255))


def test_apply_block_deltas_adds_the_template_before_rounding(rng, textured_rgb):
    rgb = textured_rgb(70, 53, rng)
    nby, nbx = 70 // 16, 53 // 16
    delta = rng.normal(0, 10, (nby, nbx, len(PAIRS), 2)).astype(np.float32)
    template = rng.normal(0, 1.5, (8, 8)).astype(np.float32)  # Q must be a power of two
    tamp = rng.uniform(0, 0.8, (nby, nbx)).astype(np.float32)
    out = np.empty_like(rgb)
    # a limit that varies per LL sample: tight on one side, loose on the other
    limit = np.full((8 * nby, 8 * nbx), 12.0, np.float32)
    limit[:, : 4 * nbx] = rng.uniform(1.0, 4.0, (8 * nby, 4 * nbx))
    apply_block_deltas(rgb, PAIRS, delta, C64, 1.0, limit, template, tamp, out)
    ref = naive.apply_deltas(rgb, PAIRS, delta, 1.0, limit, template, tamp)
    diff = np.abs(out.astype(int) - ref)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    # and the template really is there: without it the image differs
    plain = _apply(rgb, PAIRS, delta, 1.0, 12.0)
    assert (plain != out).mean() > 0.2


def test_apply_block_deltas_identity_and_grey_change(rng, textured_rgb):
    rgb = textured_rgb(40, 37, rng)
    delta = np.zeros((2, 2, len(PAIRS), 2), np.float32)
    np.testing.assert_array_equal(_apply(rgb, PAIRS, delta, 1.0, 12.0), rgb)
    # The same luma change goes to R, G and B (chroma untouched) where nothing clips.
    mid = np.full((32, 32, 3), 100, np.uint8)
    mid[..., 1] = 120
    mid[..., 2] = 140
    delta = rng.normal(0.0, 20.0, size=(2, 2, len(PAIRS), 2)).astype(np.float32)
    out = _apply(mid, PAIRS, delta, 1.0, 12.0).astype(np.int16) - mid
    assert np.any(out != 0)
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_apply_block_deltas_rounds_to_nearest_and_clips():
    # A DC-only change: every pixel of the block moves by dc / 16 (idctn ortho gives
    # dc / 8 per LL sample, the LL-only inverse Haar half of that per pixel).
    pairs = np.array([[0, 0, 0, 0]], dtype=np.int64)  # both halves of the pair on DC
    rgb = np.zeros((16, 32, 3), np.uint8)
    rgb[:, :16] = 10
    rgb[:, 16:] = (0, 128, 254)
    for change, left, right in [(0.5 + 1e-6, 11, (1, 129, 255)),
                                (0.5 - 1e-6, 10, (0, 128, 254)),
                                (-0.5 + 1e-6, 10, (0, 128, 254)),
                                (-0.5 - 1e-6, 9, (0, 127, 253)),
                                (1.7, 12, (2, 130, 255)),
                                (-1.7, 8, (0, 126, 252))]:
        delta = np.full((1, 2, 1, 2), 8.0 * change, np.float32)  # DC = 16 * change
        out = _apply(rgb, pairs, delta, 1.0, 12.0)
        assert np.all(out[:, :16] == left), change
        assert np.all(out[:, 16:] == right), change
        np.testing.assert_array_equal(out, naive.apply_deltas(rgb, pairs, delta, 1.0, 12.0))


# ------------------------------------ aqim_soft_observe folded by slot (the soft fold)


def _fold(coef, dither, ty, tx, scale, rel, clip, tsz):
    from provmark._detect import fold_observations

    return fold_observations(coef, dither, ty, tx, float(scale), float(rel), float(clip), tsz)


@pytest.mark.parametrize("grid, ty, tx", [
    ((5, 3), 3, 1),
    ((13, 11), 0, 0),
    ((13, 11), 3, 1),
    ((13, 11), 5, 7),
    ((13, 11), 7, 2),
])
def test_aqim_soft_fold_matches_reference(grid, ty, tx, rng):
    tsz, dsz = 4, 8  # dither period D = 2T, as provmark._layout uses
    coef = rng.normal(0.0, 30.0, size=(*grid, 2, 2)).astype(np.float32)
    dither = rng.uniform(0.0, ANGLE_PERIOD, size=(dsz, dsz, 2))
    args = (5.0, 0.2, 1.0)
    score, weight = _fold(coef, dither, ty, tx, *args, tsz)
    ref_score, ref_weight = naive.soft_fold(coef, dither, ty, tx, *args, tsz)
    # On float32 coefficients the kernel's radius (c1*c1 + c2*c2) is a float32 sum, so
    # each observation is good to a few float32 ulps of its size, r / (scale + rel r).
    size = np.hypot(coef[..., 0], coef[..., 1]) / (args[0] + args[1] * np.hypot(
        coef[..., 0], coef[..., 1]))
    by, bx, p = np.indices(coef.shape[:3])
    folded_size = np.zeros_like(score)
    np.add.at(folded_size, ((by + ty) % tsz, (bx + tx) % tsz, p), size)
    assert np.all(np.abs(score - ref_score) <= 4 * EPS32 * folded_size + 1e-12)
    np.testing.assert_array_equal(weight, ref_weight)
    assert weight.sum() == coef.shape[0] * coef.shape[1] * coef.shape[2]
    if grid == (13, 11):  # the clip is reached, so it is tested
        raw = naive.margin(coef[..., 0].astype(float), coef[..., 1].astype(float), 0.0)
        assert np.abs(raw / (5.0 + 0.2 * np.hypot(coef[..., 0], coef[..., 1]))).max() > 0.5


def test_aqim_soft_fold_float64_is_exact(rng):
    # With float64 coefficients the only differences left are formula rounding.
    coef = rng.normal(0.0, 30.0, size=(13, 11, 2, 2))
    dither = rng.uniform(0.0, ANGLE_PERIOD, size=(8, 8, 2))
    score, weight = _fold(coef, dither, 5, 7, 5.0, 0.2, 1.0, 4)
    ref_score, ref_weight = naive.soft_fold(coef, dither, 5, 7, 5.0, 0.2, 1.0, 4)
    np.testing.assert_allclose(score, ref_score, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(weight, ref_weight)


@pytest.mark.parametrize("ty, tx", [(0, 0), (5, 7), (7, 2)])
def test_aqim_soft_fold_tile_phase(ty, tx, rng):
    # Write known bits at tile phase (ty, tx) with dither period 2T, then fold: the
    # right phase reads every slot correctly; the same tile slot with the other half
    # of the dither period (ty + T) does not.
    tsz, dsz, npairs = 4, 8, 2
    nby, nbx = 19, 17
    bits = rng.integers(0, 2, size=(tsz, tsz, npairs))
    dither = rng.uniform(0.0, ANGLE_PERIOD, size=(dsz, dsz, npairs))
    coef = np.empty((nby, nbx, npairs, 2), np.float32)
    for by in range(nby):
        for bx in range(nbx):
            for p in range(npairs):
                c = rng.normal(0.0, 30.0, size=2)
                coef[by, bx, p] = naive.target(
                    c[0], c[1], int(bits[(by + ty) % tsz, (bx + tx) % tsz, p]),
                    float(dither[(by + ty) % dsz, (bx + tx) % dsz, p]), 16.0, 28.0, 0.12)
    score, weight = _fold(coef, dither, ty, tx, 5.0, 0.2, 1.0, tsz)
    assert np.all((score > 0) == (bits == 0))
    assert np.all(weight > 0)
    wrong, _ = _fold(coef, dither, (ty + tsz) % dsz, tx, 5.0, 0.2, 1.0, tsz)
    assert np.mean((wrong > 0) == (bits == 0)) < 0.9


@pytest.mark.parametrize("grid, ty, tx", [
    ((5, 3), 3, 1),
    ((13, 11), 0, 0),
    ((13, 11), 5, 7),
])
def test_aqim_soft_observe_matches_reference_and_folds_to_the_fold(grid, ty, tx, rng):
    from provmark.kernels import aqim_soft_observe

    tsz, dsz = 4, 8
    coef = rng.normal(0.0, 30.0, size=(*grid, 2, 2))
    dither = rng.uniform(0.0, ANGLE_PERIOD, size=(dsz, dsz, 2))
    score = np.empty(coef.shape[:3])
    slot = np.empty(coef.shape[:3], np.int64)
    aqim_soft_observe(coef, dither, ty, tx, tsz, 5.0, 0.2, 1.0, score, slot)
    ref_score, ref_slot = naive.soft_observe(coef, dither, ty, tx, tsz, 5.0, 0.2, 1.0)
    np.testing.assert_allclose(score, ref_score, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(slot, ref_slot)
    # Folding the observations by slot gives the soft fold's tile.
    folded, weight = _fold(coef, dither, ty, tx, 5.0, 0.2, 1.0, tsz)
    np.testing.assert_allclose(np.bincount(slot.ravel(), score.ravel(), folded.size),
                               folded.ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.bincount(slot.ravel(), minlength=folded.size),
                                  weight.ravel())


@pytest.mark.parametrize("shape", [(23, 31, 3),
                                   (64, 80, 3), (40, 40, 1), (9, 7, 2)])
def test_box_moments_match_reference(shape, rng):
    from provmark.kernels import box_moments

    x = rng.integers(0, 256, shape).astype(np.uint8)
    mean = np.full(shape, -1.0)
    var = np.full(shape, -1.0)
    box_moments(x, 3, 49 / 48, mean, var)
    ref_mean, ref_var = naive.box_moments(x, 3, 49 / 48)
    inner = (slice(3, -3), slice(3, -3))
    np.testing.assert_allclose(mean[inner], ref_mean[inner], rtol=0, atol=1e-9)
    np.testing.assert_allclose(var[inner], ref_var[inner], rtol=1e-9, atol=1e-7)
    # the border is not written
    assert (mean[:3] == -1).all() and (mean[:, -3:] == -1).all()


@pytest.mark.parametrize("shape", [(23, 31, 3),
                                   (64, 80, 3), (40, 40, 1)])
@pytest.mark.parametrize("noise", [0.0, 6.0, 60.0])
def test_ssim_mean_against_matches_reference(shape, noise, rng):
    from provmark.kernels import box_moments, ssim_mean_against

    x = rng.integers(0, 256, shape).astype(np.uint8)
    y = np.clip(x + rng.normal(0, noise, shape), 0, 255).astype(np.uint8)
    ux, vx = np.zeros(shape), np.zeros(shape)
    box_moments(x, 3, 49 / 48, ux, vx)
    got = ssim_mean_against(x, y, ux, vx, 3, 6.5025, 58.5225, 49 / 48)
    assert got == pytest.approx(naive.ssim_mean_against(x, y, 3, 6.5025, 58.5225, 49 / 48),
                                rel=1e-9)
    if noise == 0.0:
        assert got == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("shape", [(23, 31, 3), (64, 80, 3), (40, 40, 1)])
@pytest.mark.parametrize("noise", [0.0, 6.0, 60.0])
def test_ssim_mean_matches_reference(shape, noise, rng):
    from provmark.kernels import ssim_mean

    x = rng.integers(0, 256, shape).astype(np.uint8)
    y = np.clip(x + rng.normal(0, noise, shape), 0, 255).astype(np.uint8)
    got = ssim_mean(x, y, 3, 6.5025, 58.5225, 49 / 48)
    assert got == pytest.approx(naive.ssim_mean_against(x, y, 3, 6.5025, 58.5225, 49 / 48),
                                rel=1e-9)
    if noise == 0.0:
        assert got == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("shape", [((64, 96, 3), (32, 48)), ((67, 99, 3), (33, 49)),
                                   ((40, 40, 1), (12, 20)), ((9, 7, 3), (4, 3))])
def test_add_enlarged_change_matches_reference(shape, rng):
    """Exactly equal: the enlarged integer change is a multiple of 1/16 (a third of
    the values clip at 0 or 255 with this range of changes)."""
    from provmark.kernels import add_enlarged_change

    (hh, ww, c), (h, w) = shape
    base = rng.integers(0, 256, (hh, ww, c)).astype(np.uint8)
    change = rng.integers(-40, 41, (h, w, c)).astype(np.int16)
    out = np.zeros_like(base)
    add_enlarged_change(base, change, out)
    np.testing.assert_array_equal(out, naive.add_enlarged_change(base, change))


@pytest.mark.parametrize("shape", [(16, 16, 3),
                                   (64, 96, 3), (37, 50, 3), (256, 176, 3)])
@pytest.mark.parametrize("content", ["noise", "flat", "edges"])
def test_change_bound_matches_reference(shape, content, rng):
    """Exactly equal: integer means, exact window sums, the same float32 steps."""
    from provmark.kernels import change_bound

    if content == "noise":
        rgb = rng.integers(0, 256, shape).astype(np.uint8)
    elif content == "flat":  # variance 0 up to rounding: the bound sits at ``flat``
        rgb = np.full(shape, 131, np.uint8)
    else:
        rgb = np.zeros(shape, np.uint8)
        rgb[:, shape[1] // 3:] = 250
        rgb[shape[0] // 2:, :, 1] = 40
    h8, w8 = shape[0] // 16 * 8, shape[1] // 16 * 8
    out = np.full((h8, w8), -1.0, np.float32)
    change_bound(rgb, 4, 3.0, 1.0, 12.0, out)
    expected = naive.change_bound(rgb[:h8 * 2, :w8 * 2], 4, 3.0, 1.0, 12.0)
    np.testing.assert_array_equal(out, expected)
    assert out.min() >= 3.0 and out.max() <= 12.0
    if content == "flat":
        assert (out == 3.0).all()
    if content == "edges":
        assert out.max() == 12.0  # a 250-level step: the std is far above the cap


def test_change_bound_grey_is_opencvs():
    """The grey weights are OpenCV 5's RGB2GRAY (as the embedder used before the kernel):
    checked over every colour, so that a different OpenCV is noticed, not followed."""
    cv2 = pytest.importorskip("cv2")
    if not cv2.__version__.startswith("5."):
        pytest.skip(f"the weights were taken from OpenCV 5; this is {cv2.__version__}")
    from provmark.kernels._quality import GREY_WEIGHTS

    r, g, b = np.meshgrid(np.arange(256), np.arange(256), np.arange(256), indexing="ij")
    rgb = np.stack([r, g, b], -1).astype(np.uint8).reshape(4096, 4096, 3)
    x = rgb.astype(np.int64)
    wr, wg, wb = GREY_WEIGHTS
    ours = (wr * x[..., 0] + wg * x[..., 1] + wb * x[..., 2] + 32768) >> 16
    np.testing.assert_array_equal(ours, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


# ------------------------------------------------------------------ JIT options


def _dispatchers():
    found = {}
    for module in (kernels, kernels._transforms, kernels._modulation, kernels._quality):
        for name, obj in vars(module).items():
            if isinstance(obj, numba.core.dispatcher.Dispatcher):
                found[f"{module.__name__}.{name}"] = obj
    return found


#: Kernels that quantise, round or decide: compiled without fastmath (_jit.EXACT).
DECISION_KERNELS = ("aqim_target", "aqim_margin", "aqim_embed_deltas", "apply_block_deltas",
                    "aqim_soft_observe", "change_bound")


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="no dispatchers when JIT is disabled")
def test_every_kernel_uses_the_jit_config():
    assert _jit.FASTMATH.isdisjoint({"fast", "nnan", "ninf"})
    exported = [name for name in kernels.__all__
                if isinstance(getattr(kernels, name), numba.core.dispatcher.Dispatcher)]
    assert set(exported) >= {"haar_dwt2", "haar_idwt2", "block_dct8", "block_idct8",
                             "rgb_to_luma", *DECISION_KERNELS, "luma_pair_coeffs"}
    found = _dispatchers()
    for name in exported:
        assert f"provmark.kernels.{name}" in found
    for name, disp in found.items():
        opts = disp.targetoptions
        assert opts.get("fastmath") is False or opts.get("fastmath") == _jit.FASTMATH, name
        assert opts.get("fastmath") is not True, name
        assert opts.get("nogil") is True, name
        # cache=True installs a FunctionCache; without it numba keeps a NullCache.
        assert isinstance(disp._cache, numba.core.caching.FunctionCache), name
    for name in DECISION_KERNELS:
        assert getattr(kernels, name).targetoptions["fastmath"] is False, name


# --------------------------------------------------------- pure-Python kernel bodies


def test_jit_state_is_as_configured():
    # In the NUMBA_DISABLE_JIT=1 subprocess the kernels must be plain functions, so
    # the tests there really run the Python bodies.
    is_dispatcher = isinstance(kernels.aqim_embed_deltas, numba.core.dispatcher.Dispatcher)
    assert is_dispatcher != bool(numba.config.DISABLE_JIT)


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="this is the launcher of the no-JIT run")
def test_kernel_bodies_without_jit():
    """Every kernel test (but the slow ones) once more with ``NUMBA_DISABLE_JIT=1``,
    in a subprocess: the kernels' pure-Python bodies must agree with the references
    too (a Numba-only behaviour, such as an integer overflow that wraps, shows as a
    disagreement). It runs beside the other tests on its xdist worker (about 22 s of
    one core), rather than after the suite."""
    here = Path(__file__).resolve().parent
    repo = here.parents[1]
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-m", "not slow", "-p", "no:cacheprovider",
         "-p", "no:xdist", str(here)],
        cwd=repo, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    assert int(summary.split(" passed")[0].split()[-1]) >= 150, summary
    # Only the two JIT-only tests skip there: this launcher and the dispatcher check.
    skipped = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) <= 2 and all("launcher" in line or "dispatchers" in line
                                     for line in skipped), skipped
