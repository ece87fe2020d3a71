"""JIT configuration for every provmark kernel: one place for Numba options.

All kernels are compiled with ``cache=True`` so the compile cost (about a second
per kernel) is paid once per machine. ``FASTMATH`` is a restricted flag set: it
allows contraction and reassociation of sums (speed) but not ``nnan``/``ninf``
approximations, and the quantise/decide steps are compiled with ``fastmath=False``
(``EXACT``) so embed and detect round identically. ``NUMBA_DISABLE_JIT=1`` turns
every kernel into plain Python, which the test suite uses to cover kernel bodies.
"""

from __future__ import annotations

import os

# Numba's OpenMP threading layer spins while waiting; on a machine whose other core
# is busy (a generation loop, a CI runner) that made a 1080p embed 3x slower (32 ms
# instead of 9 ms, measured on 2 cores). Passive waiting costs ~1 ms unloaded and
# keeps the loaded case at ~12 ms. Only a default: a user's own setting wins. It
# must be set before libgomp starts, i.e. before the first parallel kernel runs.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402

#: Reassociation and FMA contraction only: results stay within float rounding of
#: the reference, and NaN/inf semantics are kept.
FASTMATH = {"contract", "reassoc", "nsz", "arcp"}

#: Options for leaf kernels whose arithmetic is summation-heavy.
FAST = dict(cache=True, nogil=True, fastmath=FASTMATH)
#: Options for kernels that quantise or take decisions (no fastmath).
EXACT = dict(cache=True, nogil=True, fastmath=False)


def njit_fast(func=None, *, parallel: bool = False):
    """``numba.njit`` with :data:`FAST` options (optionally ``parallel``)."""
    def wrap(f):
        return numba.njit(parallel=parallel, **FAST)(f)
    return wrap(func) if func is not None else wrap


def njit_exact(func=None, *, parallel: bool = False):
    """``numba.njit`` with :data:`EXACT` options (optionally ``parallel``)."""
    def wrap(f):
        return numba.njit(parallel=parallel, **EXACT)(f)
    return wrap(func) if func is not None else wrap


prange = numba.prange


def njit_inline(func):
    """A helper inlined into its callers at Numba IR level (``inline="always"``): it
    is compiled with each caller's options, so one source serves a fastmath
    measurement kernel and an exact one alike, each with the arithmetic it had when
    the loop was written in place."""
    return numba.njit(inline="always", **EXACT)(func)

