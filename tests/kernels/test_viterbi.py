"""The Viterbi kernel against exhaustive maximum-likelihood decoding (``tests/naive.py``)
and the encoder of :mod:`provmark._convolutional` against the code's definition."""

from __future__ import annotations

import numpy as np
import pytest

import naive
from provmark import _convolutional as conv
from provmark.kernels import viterbi_decode


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


def test_encoder_matches_definition():
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, 40)
    full = naive.conv_encode_full(bits)
    n_channel = full.size - 4
    kept = conv.kept_positions(bits.size, n_channel)
    np.testing.assert_array_equal(conv.encode(bits, n_channel), full[kept])


def test_generators_are_the_modules():
    assert tuple(conv.GENERATORS) == naive.CONV_GENERATORS
    assert conv.CONSTRAINT == naive.CONV_CONSTRAINT


def test_free_distance_is_24():
    """The (463, 535, 733, 745) code's free distance is 24 (Larsen 1973): every
    nonzero input of up to 12 bits (whose error events cover all short ones) has an
    unpunctured codeword weight >= 24, and 24 is reached."""
    weights = [naive.conv_encode_full([(w >> i) & 1 for i in range(12)]).sum()
               for w in range(1, 2**12)]
    assert min(weights) == 24


def test_punctured_error_events_stay_heavy():
    """Puncturing 512 mother bits to 400 keeps every short error event (an input
    burst of up to 10 bits, at any position) at a channel weight of at least 16."""
    n_info, n_channel = 120, 400
    lightest = []
    for start in range(0, n_info - 10, 7):
        best = 10**9
        for w in range(1, 2**10, 2):  # the event starts with a 1
            bits = np.zeros(n_info, np.int64)
            bits[start:start + 10] = [(w >> i) & 1 for i in range(10)]
            best = min(best, int(conv.encode(bits, n_channel).sum()))
        lightest.append(best)
    assert min(lightest) >= 16


def test_decoder_corrects_scattered_strong_errors():
    rng = np.random.default_rng(2)
    bits = rng.integers(0, 2, 120).astype(np.uint8)
    coded = conv.encode(bits, 400)
    soft = (1.0 - 2.0 * coded) * rng.uniform(0.5, 1.5, 400)
    # Flip 16 channel bits, 3 within every span of about two constraint lengths.
    flips = np.concatenate([np.arange(5, 400, 75), np.arange(12, 400, 75),
                            np.arange(30, 400, 75)])[:16]
    soft[flips] *= -1
    decided, reliability = conv.decode(soft, 120)
    np.testing.assert_array_equal(decided, bits)
    assert reliability.shape == (120,) and np.all(reliability > 0)


def test_reliability_marks_the_error_region():
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2, 120).astype(np.uint8)
    coded = conv.encode(bits, 400)
    soft = (1.0 - 2.0 * coded) * rng.uniform(0.8, 1.2, 400)
    soft[200:260] = -soft[200:260]  # a burst the code cannot repair
    decided, reliability = conv.decode(soft, 120)
    wrong = np.flatnonzero(decided != bits)
    assert wrong.size > 0
    # The wrong bits are among the least reliable third.
    assert np.all(np.argsort(np.argsort(reliability))[wrong] < 40)


def test_puncturing_rejects_impossible_lengths():
    assert conv.kept_positions(120, 400).size == 400
    with pytest.raises(ValueError):
        conv.kept_positions(120, 600)  # more than the mother code
    with pytest.raises(ValueError):
        conv.kept_positions(120, 300)  # more than a quarter punctured


@pytest.mark.parametrize("seed", range(4))
def test_list_viterbi_matches_exhaustive_ranking(seed):
    from provmark.kernels import list_viterbi_decode

    rng = np.random.default_rng(100 + seed)
    n_info, n_list = 8, 5
    bits = rng.integers(0, 2, n_info)
    coded = naive.conv_encode_full(bits)
    llr = (1 - 2 * coded) * 1.0 + rng.normal(0, 1.5, coded.size)
    next_state, outputs = conv.trellis()
    paths = np.empty((n_list, n_info + conv.TAIL), np.int64)
    metrics = np.empty(n_list)
    list_viterbi_decode(llr.astype(np.float64), next_state, outputs, paths, metrics)
    ref_paths, ref_metrics = naive.list_ml_bruteforce(llr, n_info, n_list)
    for k in range(n_list):
        np.testing.assert_array_equal(paths[k, :n_info], ref_paths[k])
        assert np.all(paths[k, n_info:] == 0)
        assert metrics[k] == pytest.approx(ref_metrics[k], rel=1e-12, abs=1e-9)
    # Rank 0 is the plain Viterbi decision.
    path = np.empty(n_info + conv.TAIL, np.int64)
    best = viterbi_decode(llr.astype(np.float64), next_state, outputs, path)
    np.testing.assert_array_equal(path, paths[0])
    assert best == pytest.approx(metrics[0])


def test_list_viterbi_refuses_a_trellis_that_is_not_a_shift_register():
    """The merge of two sorted survivor lists needs exactly two predecessors a state."""
    from provmark.kernels import list_viterbi_decode

    next_state, outputs = conv.trellis()
    broken = next_state.copy()
    other = int(np.flatnonzero(next_state[:, 0] != next_state[0, 0])[0])
    broken[other, 0] = broken[0, 0]  # state 0's successor now has three predecessors
    paths, metrics = np.empty((4, 16), np.int64), np.empty(4)
    with pytest.raises(ValueError, match="predecessors"):
        list_viterbi_decode(np.zeros(conv.RATE * 16), broken, outputs, paths, metrics)


def test_list_decode_finds_the_runner_up():
    """A word whose metric is just below the best is in the list (what rescues a
    decision with a few wrong bits when the CRC rejects the best)."""
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2, 120).astype(np.uint8)
    coded = conv.encode(bits, 400)
    soft = (1.0 - 2.0 * coded) * rng.uniform(0.5, 1.5, 400) + rng.normal(0, 1.1, 400)
    candidates = conv.decode_list(soft, 120, 8)
    assert len(candidates) == 8
    words = [c for c, _ in candidates]
    assert len({w.tobytes() for w in words}) == 8  # distinct
    single, _ = conv.decode(soft, 120)
    np.testing.assert_array_equal(words[0], single)
