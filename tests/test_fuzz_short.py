"""A short fuzzing run of every harness in ``tests/fuzz`` (seconds, part of ``make test``).

Each harness (``tests/fuzz/harnesses.py``: image decoding, the PNG/JPEG/WebP walkers,
the label writer, the XMP reader and updater, the label JSON parser, key files) gets
its committed seed corpus and then a few hundred inputs made by hypothesis: seeds with
bytes flipped, inserted, deleted, repeated and spliced, and plain random bytes. The
harness raises on any undocumented exception or broken invariant; an input taking
longer than the hang limit of the long runs fails too. The long runs are ``make fuzz``.
"""

from __future__ import annotations

import time

import pytest
from fuzz.harnesses import HANG_SECONDS, HARNESSES, IMAGE_MAX_PIXELS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = {"image": 120, "writer": 150}  # the slower harnesses; the others get 250


def _seeds(name: str) -> list[bytes]:
    files = sorted(f for f in HARNESSES[name].seeds.iterdir() if f.is_file())
    assert files, f"no seed corpus for {name}: run python tests/fuzz/seeds.py"
    return [f.read_bytes() for f in files]


@st.composite
def mutants(draw, seeds: list[bytes], max_len: int) -> bytes:
    """A seed with up to 6 edits drawn by hypothesis (so failures shrink)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    edits = st.tuples(st.integers(0, 5), st.integers(0, 1 << 20), st.binary(max_size=24))
    for op, at, blob in draw(st.lists(edits, max_size=6)):
        at %= len(data) + 1
        if op == 0 and data:  # flip bits
            data[at % len(data)] ^= blob[0] if blob and blob[0] else 0x01
        elif op == 1:  # insert
            data[at:at] = blob
        elif op == 2:  # delete
            del data[at : at + len(blob) + 1]
        elif op == 3:  # truncate
            del data[at:]
        elif op == 4:  # repeat a piece (the shape of most super-linear inputs)
            data[at:at] = data[at : at + 1 + len(blob)] * (1 + 4 * len(blob))
        else:  # splice another seed
            other = draw(st.sampled_from(seeds))
            data[at:] = other[at % (len(other) + 1) :]
    return bytes(data[:max_len])


@pytest.mark.parametrize("name", sorted(HARNESSES))
def test_harness_short_run(name, monkeypatch):
    h = HARNESSES[name]
    if name == "image":  # as in the long runs: decoding stays within the memory bound
        monkeypatch.setenv("PROVMARK_MAX_PIXELS", IMAGE_MAX_PIXELS)
    seeds = _seeds(name)
    for data in seeds:
        h.check(data)

    @settings(max_examples=EXAMPLES.get(name, 250), deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
    @given(data=st.one_of(mutants(seeds, h.max_len), st.binary(max_size=2048)))
    def run(data: bytes) -> None:
        t = time.monotonic()
        h.check(data)
        assert time.monotonic() - t < HANG_SECONDS, f"{name}: one input took too long"

    run()
