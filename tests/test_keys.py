"""The keyed draws behind the layout and the template: fixed by the format, not by a
library version.

The golden values below are part of the mark's format: if one of these tests fails,
marks written before the change can no longer be read. Changing them means a new
format version, never an edit of the expected values.
"""

import hashlib
import hmac

import numpy as np
import pytest

from provmark._keys import PUBLIC_KEY, KeyStream
from provmark._layout import N_PILOT, N_SLOTS, keyed_layout
from provmark._template import keyed_template


def _spec_words(key: bytes, domain: str, count: int) -> list[int]:
    """The stream's words written straight from the format text: HMAC-SHA256 of
    "provmark/<domain>/<counter>" under the key, concatenated, 4 bytes at a time."""
    raw = b"".join(hmac.new(key, f"provmark/{domain}/{c}".encode(), hashlib.sha256).digest()
                   for c in range(count // 8 + 1))
    return [int.from_bytes(raw[4 * i:4 * i + 4], "little") for i in range(count)]


def test_words_follow_the_written_definition():
    stream = KeyStream(b"some key", "layout")
    assert [stream.word() for _ in range(20)] == _spec_words(b"some key", "layout", 20)


def test_below_rejects_the_biased_tail():
    # n = 3 * 2**30: the limit is 2**32 - 2**30, so words at or above it are skipped.
    n = 3 * 2**30
    words = _spec_words(b"k", "d", 64)
    expected = [w % n for w in words if w < 2**32 - 2**32 % n][:10]
    stream = KeyStream(b"k", "d")
    assert [stream.below(n) for _ in range(10)] == expected


def test_below_is_uniform_enough():
    stream = KeyStream(b"uniformity", "test")
    counts = np.bincount(stream.integers(10, 20000), minlength=10)
    chi2 = float(((counts - 2000.0) ** 2 / 2000.0).sum())
    assert chi2 < 27.9  # 9 degrees of freedom, p = 0.001


def test_permutation_is_a_permutation_and_keyed():
    a = KeyStream(b"a", "x").permutation(N_SLOTS)
    b = KeyStream(b"b", "x").permutation(N_SLOTS)
    assert sorted(a.tolist()) == list(range(N_SLOTS))
    assert not np.array_equal(a, b)


def test_below_range_is_checked():
    with pytest.raises(ValueError, match="below"):
        KeyStream(b"k", "d").below(0)


# -- golden values: part of the format ------------------------------------------------

def test_golden_stream():
    s = KeyStream(PUBLIC_KEY, "test-vector")
    assert [s.word() for _ in range(3)] == [2258381178, 3472371914, 2666772134]
    assert [s.below(1000) for _ in range(5)] == [578, 660, 125, 228, 259]
    assert [s.unit() for _ in range(2)] == [0.19238128968750956, 0.7072242578822707]
    assert s.permutation(10).tolist() == [8, 4, 0, 3, 5, 9, 6, 2, 1, 7]


def test_golden_layout_of_the_public_key():
    lay = keyed_layout(PUBLIC_KEY)
    assert lay.code_slots[:10].tolist() == [70, 31, 14, 399, 45, 92, 366, 8, 150, 393]
    assert lay.pilot_slots[:5].tolist() == [206, 182, 6, 95, 475]
    assert lay.pilot_bits.shape == (N_PILOT,)
    assert lay.pilot_bits[:16].tolist() == [0, 0, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1]
    assert float(lay.dither[3, 5, 1]) == 1.0655095056564832


def test_golden_extension_dither_of_the_public_key():
    """docs/format.md 5.8: the extension carriers' dither, domain ``layout-extension``."""
    from provmark._layout import extension_dither

    d = extension_dither(PUBLIC_KEY)
    assert d.shape == (32, 32, 2)
    assert float(d[0, 0, 0]) == 1.5192533276956928
    assert float(d[3, 5, 1]) == 0.9723659492200856


def test_golden_template_of_the_public_key():
    tpl = keyed_template(PUBLIC_KEY)
    assert tpl.lattice.tolist() == [[-8, 1], [-10, 4], [-9, 6], [-9, 7], [-6, 8], [-4, 9],
                                    [-2, 8], [-1, 12], [1, 11], [3, 9], [6, 9], [8, 9],
                                    [7, 7], [9, 6], [10, 3], [11, 2]]
    assert float(tpl.phase[0]) == 0.7731953108520303
