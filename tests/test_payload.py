"""Tests for provmark.Payload: field validation, bit layout and the bytes round trip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provmark import Payload
from provmark._payload import (
    CONTENT_ID_BITS,
    DATA_BYTES,
    FORMAT_VERSION,
    LABEL_MEANINGS,
    PROVIDER_BITS,
)

MAX_PROVIDER = 2**24 - 1
MAX_CONTENT = 2**40 - 1

providers = st.integers(0, MAX_PROVIDER)
contents = st.integers(0, MAX_CONTENT)
labels = st.sampled_from([1, 2, 3])


def test_capacity_meets_the_issue():
    # Issue 2: provider code of at least 24 bits, content ID of at least 40 bits.
    assert PROVIDER_BITS >= 24
    assert CONTENT_ID_BITS >= 40
    assert DATA_BYTES == 9


def test_defaults_and_version():
    p = Payload(provider=4242, content_id=123456789)
    assert p.label == 1
    assert p.version == FORMAT_VERSION == 1
    assert p.label_meaning == "AI-generated"


@pytest.mark.parametrize("label", [1, 2, 3])
def test_labels(label):
    p = Payload(1, 2, label=label)
    assert p.label == label
    assert p.label_meaning == LABEL_MEANINGS[label]
    assert Payload.from_bytes(p.to_bytes()).label == label


def test_label_meanings_follow_gb45438():
    assert "possibly" in Payload(0, 0, 2).label_meaning
    assert "suspected" in Payload(0, 0, 3).label_meaning


@pytest.mark.parametrize("provider, content_id", [
    (0, 0), (MAX_PROVIDER, 0), (0, MAX_CONTENT), (MAX_PROVIDER, MAX_CONTENT)])
def test_extreme_values_accepted(provider, content_id):
    p = Payload(provider, content_id, 3)
    assert Payload.from_bytes(p.to_bytes()) == p


@pytest.mark.parametrize("field, value, bits", [
    ("provider", -1, 24), ("provider", 2**24, 24), ("provider", 10**12, 24),
    ("content_id", -1, 40), ("content_id", 2**40, 40)])
def test_out_of_range_is_value_error_with_clear_message(field, value, bits):
    kwargs = {"provider": 1, "content_id": 1, field: value}
    with pytest.raises(ValueError) as exc:
        Payload(**kwargs)
    msg = str(exc.value)
    assert field in msg and str(value) in msg
    assert f"2**{bits}" in msg  # says what the valid range is


@pytest.mark.parametrize("label", [None, "1", 1.0])
def test_non_int_label_is_type_error(label):
    with pytest.raises(TypeError, match="label"):
        Payload(1, 2, label=label)


@pytest.mark.parametrize("label", [0, 4, -1, 255])
def test_invalid_label_is_value_error(label):
    with pytest.raises(ValueError, match="label") as exc:
        Payload(1, 2, label=label)
    assert "1" in str(exc.value) and "3" in str(exc.value)  # lists the valid labels


@pytest.mark.parametrize("field", ["provider", "content_id"])
@pytest.mark.parametrize("value", [1.0, "7", None, True, False, 2**0.5])
def test_non_int_fields_are_type_error(field, value):
    kwargs = {"provider": 1, "content_id": 1, field: value}
    with pytest.raises(TypeError, match=field):
        Payload(**kwargs)


@pytest.mark.parametrize("field", ["provider", "content_id", "label"])
def test_numpy_integers_are_accepted_as_ints(field):
    p = Payload(**{"provider": 1, "content_id": 1, "label": 1, field: np.int64(2)})
    assert getattr(p, field) == 2 and type(getattr(p, field)) is int


@pytest.mark.parametrize("label", [True, False])
def test_bool_label_rejected(label):
    # True == 1, but a bool is not a label.
    with pytest.raises((TypeError, ValueError), match="label"):
        Payload(1, 2, label=label)


def test_float_label_rejected_at_construction():
    # 2.0 == 2, so a membership test lets it through; the error must come from the
    # constructor (like provider/content_id), not later from to_bytes() or embed().
    for label in (1.0, 2.0, 3.0):
        with pytest.raises((TypeError, ValueError), match="label"):
            Payload(1, 2, label=label)


def test_numpy_int_label_rejected_or_works():
    try:
        p = Payload(1, 2, label=np.int64(2))
    except (TypeError, ValueError):
        return
    assert Payload.from_bytes(p.to_bytes()) == Payload(1, 2, 2)


def test_frozen_and_hashable():
    p = Payload(1, 2, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.provider = 5  # type: ignore[misc]
    assert {p, Payload(1, 2, 3)} == {p}


def test_bit_layout_is_documented_big_endian():
    # version(3) label(2) provider(24) content(40) reserved(3), MSB first.
    p = Payload(provider=0xABCDEF, content_id=0x0123456789, label=2)
    expected = (((((1 << 2) | 2) << 24 | 0xABCDEF) << 40 | 0x0123456789) << 3)
    assert p.to_bytes() == expected.to_bytes(9, "big")
    assert p.to_bytes()[0] >> 5 == FORMAT_VERSION


@settings(max_examples=300, deadline=None)
@given(provider=providers, content_id=contents, label=labels)
def test_bytes_round_trip(provider, content_id, label):
    p = Payload(provider, content_id, label)
    data = p.to_bytes()
    assert isinstance(data, bytes) and len(data) == DATA_BYTES
    assert Payload.from_bytes(data) == p
    assert Payload.from_bytes(bytearray(data)) == p


@settings(max_examples=200, deadline=None)
@given(a=st.tuples(providers, contents, labels), b=st.tuples(providers, contents, labels))
def test_to_bytes_is_injective(a, b):
    if a != b:
        assert Payload(*a).to_bytes() != Payload(*b).to_bytes()


@pytest.mark.parametrize("n", [0, 8, 10, 25])
def test_from_bytes_wrong_length(n):
    with pytest.raises(ValueError, match="9 bytes"):
        Payload.from_bytes(bytes(n))


def test_from_bytes_rejects_other_versions():
    word = int.from_bytes(Payload(1, 2).to_bytes(), "big")
    for version in (0, 2, 7):
        bad = (word & ~(0b111 << 69)) | (version << 69)
        with pytest.raises(ValueError, match="version"):
            Payload.from_bytes(bad.to_bytes(9, "big"))


def test_from_bytes_rejects_reserved_bits_and_label_zero():
    word = int.from_bytes(Payload(1, 2).to_bytes(), "big")
    for r in (1, 2, 4, 7):
        with pytest.raises(ValueError, match="reserved"):
            Payload.from_bytes((word | r).to_bytes(9, "big"))
    label0 = word & ~(0b11 << 67)
    with pytest.raises(ValueError, match="label"):
        Payload.from_bytes(label0.to_bytes(9, "big"))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(min_size=9, max_size=9))
def test_from_bytes_any_bytes_valid_or_value_error(data):
    try:
        p = Payload.from_bytes(data)
    except ValueError:
        return
    assert p.to_bytes() == data
