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
def _branch_metric(llr, base, outputs, s, b):
    """Correlation of the branch ``(s, b)``'s coded bits with ``llr[base:base + R]``."""
    total = 0.0
    for j in range(outputs.shape[2]):
        lj = llr[base + j]
        total += lj if outputs[s, b, j] == 0 else -lj
    return total


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
    for t in range(n):
        base = outputs.shape[2] * t
        new[:] = neg
        for s in range(n_states):
            m = metric[s]
            if m <= neg:
                continue
            for b in range(2):
                cand = m + _branch_metric(llr, base, outputs, s, b)
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
    llr, next_state, outputs : as :func:`viterbi_decode`
    out_paths : (L, n) int64, receives the decoded input bits of the ``L`` best
        paths ending in state 0, best first (the tail included)
    out_metrics : (L,) float64, their metrics; ``-inf`` where fewer than ``L`` paths
        exist (very short codes)

    Rank 0 is the maximum-likelihood path of :func:`viterbi_decode`. Ties keep the
    earlier candidate (lower predecessor state, then lower rank, then bit 0).

    Reference: N. Seshadri and C.-E. W. Sundberg, "List Viterbi decoding algorithms
    with applications", IEEE Trans. Communications 42(2/3/4), 1994.
    """
    n_list, n = out_paths.shape
    n_states = next_state.shape[0]
    neg = -np.inf
    metric = np.full((n_states, n_list), neg)
    metric[0, 0] = 0.0
    new = np.empty((n_states, n_list))
    bp_state = np.zeros((n, n_states, n_list), np.int64)
    bp_rank = np.zeros((n, n_states, n_list), np.int64)
    bp_bit = np.zeros((n, n_states, n_list), np.int64)
    for t in range(n):
        base = outputs.shape[2] * t
        new[:, :] = neg
        for s in range(n_states):
            for r in range(n_list):
                m = metric[s, r]
                if m == neg:
                    break  # ranks are sorted: the rest are empty too
                for b in range(2):
                    cand = m + _branch_metric(llr, base, outputs, s, b)
                    ns = next_state[s, b]
                    # Insert into the sorted survivors of ns (strict '>': ties keep
                    # the earlier candidate).
                    p = n_list
                    while p > 0 and cand > new[ns, p - 1]:
                        p -= 1
                    if p == n_list:
                        continue
                    for q in range(n_list - 1, p, -1):
                        new[ns, q] = new[ns, q - 1]
                        bp_state[t, ns, q] = bp_state[t, ns, q - 1]
                        bp_rank[t, ns, q] = bp_rank[t, ns, q - 1]
                        bp_bit[t, ns, q] = bp_bit[t, ns, q - 1]
                    new[ns, p] = cand
                    bp_state[t, ns, p] = s
                    bp_rank[t, ns, p] = r
                    bp_bit[t, ns, p] = b
        for s in range(n_states):
            for r in range(n_list):
                metric[s, r] = new[s, r]
    for k in range(n_list):
        out_metrics[k] = metric[0, k]
        s = 0
        r = k
        for t in range(n - 1, -1, -1):
            if metric[0, k] == neg:
                out_paths[k, t] = 0
                continue
            out_paths[k, t] = bp_bit[t, s, r]
            s2 = bp_state[t, s, r]
            r = bp_rank[t, s, r]
            s = s2
