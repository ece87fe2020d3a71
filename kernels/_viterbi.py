"""Soft-decision Viterbi decoder of a rate-1/R binary convolutional code.

The trellis is passed in as tables (``next_state``, ``outputs``) so the kernel knows
nothing of the particular generator polynomials; :mod:`provmark._convolutional` builds
them. Channel values are soft scores with *positive meaning bit 0* (the convention of
the angle-QIM demodulator); a punctured position carries 0. The branch metric is the
correlation ``sum_j (1 - 2 c_j) * llr_j`` over the branch's ``R`` coded bits, maximised over paths that start and end in
state 0 (a zero-terminated code).

Reference: A. J. Viterbi, "Error bounds for convolutional codes and an asymptotically
optimum decoding algorithm", IEEE Trans. Inf. Theory 13(2), 1967.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit_exact


@njit_exact
def _patterns(outputs):
    """(S, 2) index of each branch's coded-bit pattern (bit j of the index = output j)."""
    n_states = outputs.shape[0]
    pat = np.zeros((n_states, 2), np.int64)
    for s in range(n_states):
        for b in range(2):
            v = 0
            for j in range(outputs.shape[2]):
                v |= outputs[s, b, j] << j
            pat[s, b] = v
    return pat


@njit_exact
def _pattern_metrics(llr, base, rate, out):
    """``out[v]``: correlation of coded-bit pattern ``v`` with ``llr[base:base + R]``
    (every branch of a step uses one of these 2**R values)."""
    for v in range(out.shape[0]):
        total = 0.0
        for j in range(rate):
            lj = llr[base + j]
            total += -lj if (v >> j) & 1 else lj
        out[v] = total


@njit_exact
def viterbi_decode(llr, next_state, outputs, out_bits):
    """Maximum-likelihood input sequence of a zero-terminated rate-1/R code.

    Parameters (all preallocated, C-contiguous)
    ----------
    llr : (R * n,) float64 soft channel values, positive = bit 0, 0 = punctured
    next_state : (S, 2) int64, state reached from ``s`` on input bit ``b``
    outputs : (S, 2, R) int64, the R coded bits emitted on that branch
    out_bits : (n,) int64, receives the decoded input bits (the tail included)

    Returns the metric of the best path (float).
    """
    n = out_bits.shape[0]
    n_states = next_state.shape[0]
    neg = -1e300
    metric = np.full(n_states, neg)
    metric[0] = 0.0
    new = np.empty(n_states)
    prev_state = np.zeros((n, n_states), np.int64)
    prev_bit = np.zeros((n, n_states), np.int64)
    rate = outputs.shape[2]
    pat = _patterns(outputs)
    bm = np.empty(1 << rate)
    for t in range(n):
        _pattern_metrics(llr, rate * t, rate, bm)
        new[:] = neg
        for s in range(n_states):
            m = metric[s]
            if m <= neg:
                continue
            for b in range(2):
                cand = m + bm[pat[s, b]]
                ns = next_state[s, b]
                # Strict '>' keeps the first (lowest-state) survivor on ties, as the
                # reference does, so the two agree bit for bit.
                if cand > new[ns]:
                    new[ns] = cand
                    prev_state[t, ns] = s
                    prev_bit[t, ns] = b
        for s in range(n_states):
            metric[s] = new[s]
    s = 0
    for t in range(n - 1, -1, -1):
        out_bits[t] = prev_bit[t, s]
        s = prev_state[t, s]
    return metric[0]


@njit_exact
def list_viterbi_decode(llr, next_state, outputs, out_paths, out_metrics):
    """The ``L`` best input sequences of a zero-terminated rate-1/R code (parallel list
    Viterbi: every state keeps its ``L`` best survivors, ranked by metric).

    Parameters (all preallocated, C-contiguous)
    ----------
    llr, next_state, outputs : as :func:`viterbi_decode`; every state must have
        exactly two predecessors (any shift-register code's trellis has)
    out_paths : (L, n) int64, receives the decoded input bits of the ``L`` best
        paths ending in state 0, best first (the tail included)
    out_metrics : (L,) float64, their metrics; ``-inf`` where fewer than ``L`` paths
        exist (very short codes)

    Rank 0 is the maximum-likelihood path of :func:`viterbi_decode`. A state's new
    survivors are the merge of its two predecessors' sorted lists (each plus its
    branch metric): ``L`` steps instead of inserting ``2L`` candidates, half the
    time. Ties keep the earlier candidate (lower predecessor state, then lower rank),
    as inserting them in that order would. Each survivor stores only its
    predecessor (``state * L + rank``, int32): the input bit is the one whose branch
    leads from that state to this one.

    Reference: N. Seshadri and C.-E. W. Sundberg, "List Viterbi decoding algorithms
    with applications", IEEE Trans. Communications 42(2/3/4), 1994.
    """
    n_list, n = out_paths.shape
    n_states = next_state.shape[0]
    neg = -np.inf
    # Each state's two predecessors, the lower state first, and the bit from each.
    pred = np.empty((n_states, 2), np.int64)
    pred_bit = np.empty((n_states, 2), np.int64)
    count = np.zeros(n_states, np.int64)
    for s in range(n_states):
        for b in range(2):
            ns = next_state[s, b]
            if count[ns] == 2:
                raise ValueError("list_viterbi_decode: a state has more than two predecessors")
            pred[ns, count[ns]] = s
            pred_bit[ns, count[ns]] = b
            count[ns] += 1
    for s in range(n_states):
        if count[s] != 2:
            raise ValueError("list_viterbi_decode: a state has fewer than two predecessors")
    metric = np.full((n_states, n_list), neg)
    metric[0, 0] = 0.0
    new = np.empty((n_states, n_list))
    back = np.zeros((n, n_states, n_list), np.int32)
    rate = outputs.shape[2]
    pat = _patterns(outputs)
    bm = np.empty(1 << rate)
    for t in range(n):
        _pattern_metrics(llr, rate * t, rate, bm)
        for ns in range(n_states):
            s0 = pred[ns, 0]
            s1 = pred[ns, 1]
            branch0 = bm[pat[s0, pred_bit[ns, 0]]]
            branch1 = bm[pat[s1, pred_bit[ns, 1]]]
            i = 0
            j = 0
            for p in range(n_list):
                a = metric[s0, i] + branch0 if i < n_list else neg
                c = metric[s1, j] + branch1 if j < n_list else neg
                if c > a:  # strict: a tie keeps the lower state's survivor first
                    new[ns, p] = c
                    back[t, ns, p] = s1 * n_list + j
                    j += 1
                else:
                    new[ns, p] = a
                    back[t, ns, p] = s0 * n_list + i
                    i += 1
        metric, new = new, metric
    for k in range(n_list):
        out_metrics[k] = metric[0, k]
        s = 0
        r = k
        for t in range(n - 1, -1, -1):
            if metric[0, k] == neg:
                out_paths[k, t] = 0
                continue
            prev = back[t, s, r]
            ps = prev // n_list
            out_paths[k, t] = 0 if next_state[ps, 0] == s else 1
            r = prev - ps * n_list
            s = ps
