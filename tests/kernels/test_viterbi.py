"""The Viterbi kernel against exhaustive maximum-likelihood decoding (``tests/naive.py``)
and the encoder of :mod:`provmark._convolutional` against the code's definition."""

from __future__ import annotations

import numpy as np
import pytest

import naive
from provmark import _convolutional as conv
from provmark.kernels import viterbi_decode


@pytest.mark.nojit
@pytest.mark.parametrize("seed", range(6))
def test_viterbi_is_maximum_likelihood(seed):
    rng = np.random.default_rng(seed)
    n_info = 9
    bits = rng.integers(0, 2, n_info)
    coded = naive.conv_encode_full(bits)
    # Noisy enough that the decision is not the transmitted word in every case.
    llr = (1 - 2 * coded) * 1.0 + rng.normal(0, 1.2, coded.size)
    next_state, outputs = conv.trellis()
    path = np.empty(n_info + conv.TAIL, np.int64)
    metric = viterbi_decode(llr.astype(np.float64), next_state, outputs, path)
    ref_bits, ref_metric = naive.ml_decode_bruteforce(llr, n_info)
    np.testing.assert_array_equal(path[:n_info], ref_bits)
    assert np.all(path[n_info:] == 0)
    assert metric == pytest.approx(ref_metric, rel=1e-12, abs=1e-9)


@pytest.mark.nojit
def test_encoder_matches_definition():
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, 40)
    full = naive.conv_encode_full(bits)
    n_channel = full.size - 4
    kept = conv.kept_positions(bits.size, n_channel)
    np.testing.assert_array_equal(conv.encode(bits, n_channel), full[kept])


def test_free_distance_is_ten():
    """The (171, 133) code's free distance is 10: every nonzero input of up to 12 bits
    (whose error events cover all short ones) has an unpunctured codeword weight >= 10,
    and 10 is reached."""
    weights = [naive.conv_encode_full([(w >> i) & 1 for i in range(12)]).sum()
               for w in range(1, 2**12)]
    assert min(weights) == 10


def test_decoder_corrects_scattered_strong_errors():
    rng = np.random.default_rng(2)
    bits = rng.integers(0, 2, 200).astype(np.uint8)
    coded = conv.encode(bits, 400)
    soft = (1.0 - 2.0 * coded) * rng.uniform(0.5, 1.5, 400)
    # Flip 8 channel bits far apart (more than a constraint length between them).
    flips = np.arange(10, 400, 48)[:8]
    soft[flips] *= -1
    decided, reliability = conv.decode(soft, 200)
    np.testing.assert_array_equal(decided, bits)
    assert reliability.shape == (200,) and np.all(reliability > 0)


def test_reliability_marks_the_error_region():
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2, 200).astype(np.uint8)
    coded = conv.encode(bits, 400)
    soft = (1.0 - 2.0 * coded) * rng.uniform(0.8, 1.2, 400)
    soft[200:230] = -soft[200:230]  # a burst the code cannot repair
    decided, reliability = conv.decode(soft, 200)
    wrong = np.flatnonzero(decided != bits)
    assert wrong.size > 0
    # The wrong bits are among the least reliable quarter.
    assert np.all(np.argsort(np.argsort(reliability))[wrong] < 50)


def test_puncturing_rejects_impossible_lengths():
    with pytest.raises(ValueError):
        conv.kept_positions(200, 500)
    with pytest.raises(ValueError):
        conv.kept_positions(200, 300)
