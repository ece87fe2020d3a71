"""Tests for provmark._codec: CRC + RS(15, 13) + keyed whitening, soft decoding with
erasures, and the false-alarm arithmetic.

The channel model used here is the one the decoder assumes: soft scores whose sign
is the bit (positive = 1) and whose magnitude is the reliability. A byte *error* is
a byte with some bits flipped but still confident scores; a byte *erasure* is a
byte whose scores are near zero and whose hard value is random.
"""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provmark import PUBLIC_KEY, Payload
from provmark import _codec
from provmark._codec import (
    CODE_BITS,
    CODE_BYTES,
    ERASURE_SCHEDULE,
    PARITY_BYTES,
    decode,
    encode,
    false_alarm_per_hypothesis,
)

KEY = b"test-key"

payloads = st.builds(Payload, provider=st.integers(0, 2**24 - 1),
                     content_id=st.integers(0, 2**40 - 1), label=st.sampled_from([1, 2, 3]))
keys = st.binary(min_size=1, max_size=40)


def confident_soft(bits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Soft scores for ``bits`` with magnitudes in [1, 2] (confident)."""
    return (2.0 * bits - 1.0) * rng.uniform(1.0, 2.0, bits.size)


def corrupt(bits: np.ndarray, rng: np.random.Generator, *, errors=(), erasures=()) -> np.ndarray:
    """Confident soft scores with bit flips in the ``errors`` bytes (at least one bit
    per byte, still confident) and near-zero random scores in the ``erasures`` bytes."""
    soft = confident_soft(bits, rng).reshape(CODE_BYTES, 8)
    for b in errors:
        mask = np.zeros(8, bool)
        while not mask.any():
            mask = rng.random(8) < rng.uniform(0.1, 1.0)
        soft[b, mask] *= -1.0
    for b in erasures:
        soft[b] = rng.choice([-1.0, 1.0], 8) * rng.uniform(1e-4, 1e-2, 8)
    return soft.reshape(-1)


def guaranteed(n_erasures: int, n_errors: int) -> bool:
    """Whether some attempt of the erasure schedule is within the RS bound
    ``2 * errors + erasures <= PARITY_BYTES`` (the unreliable bytes are always the
    ones erased first; those left unerased count as errors)."""
    for e in ERASURE_SCHEDULE:
        residual = n_errors + max(0, n_erasures - e)
        if 2 * residual + e <= PARITY_BYTES:
            return True
    return False


# --------------------------------------------------------------------------- #
# Encoding


def test_code_dimensions():
    assert CODE_BITS == 120 == 8 * CODE_BYTES
    assert PARITY_BYTES == 2


@pytest.mark.parametrize("label", [1, 2, 3])
def test_encode_is_120_bits(label):
    bits = encode(Payload(4242, 123456789, label), KEY)
    assert bits.shape == (120,)
    assert bits.dtype == np.uint8
    assert set(np.unique(bits)) <= {0, 1}


def test_encode_deterministic_and_keyed():
    p = Payload(1, 2)
    a = encode(p, KEY)
    assert np.array_equal(a, encode(p, KEY))
    b = encode(p, b"other-key")
    # Whitening: another key gives an unrelated word (about half the bits differ).
    assert 35 < int((a != b).sum()) < 85
    assert not np.array_equal(a, encode(Payload(1, 3), KEY))


@pytest.mark.parametrize("label", [1, 2, 3])
def test_clean_decode(label):
    p = Payload(2**24 - 1, 2**40 - 1, label)
    rng = np.random.default_rng(label)
    res = decode(confident_soft(encode(p, KEY), rng), KEY)
    assert res.payload == p
    assert (res.corrected_symbols, res.erasures, res.attempts) == (0, 0, 1)
    assert res.reason == "decoded"


def test_decode_accepts_any_positive_scale():
    p = Payload(5, 6, 2)
    soft = 2.0 * encode(p, KEY) - 1.0
    for scale in (1e-6, 1.0, 1e6):
        assert decode(soft * scale, KEY).payload == p


@pytest.mark.parametrize("shape", [(119,), (121,), (15, 8), (0,)])
def test_decode_rejects_wrong_shape(shape):
    with pytest.raises(ValueError, match="120"):
        decode(np.zeros(shape), KEY)


# --------------------------------------------------------------------------- #
# Within the design: always the exact payload


@settings(max_examples=250, deadline=None)
@given(p=payloads, key=keys, data=st.data())
def test_a_byte_error_always_decodes(p, key, data):
    n = data.draw(st.integers(0, PARITY_BYTES // 2), label="n_errors")
    positions = data.draw(st.lists(st.integers(0, CODE_BYTES - 1), min_size=n, max_size=n,
                                   unique=True), label="positions")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    res = decode(corrupt(encode(p, key), rng, errors=positions), key)
    assert res.payload == p
    assert res.corrected_symbols == n
    assert res.erasures == 0


@settings(max_examples=250, deadline=None)
@given(p=payloads, key=keys, data=st.data())
def test_erasures_within_the_schedule_always_decode(p, key, data):
    # The schedule tries up to max(ERASURE_SCHEDULE) = 1 erasure; RS(15, 13) then has
    # no error budget left, so one unreliable byte is what is guaranteed.
    n = data.draw(st.integers(0, max(ERASURE_SCHEDULE)), label="n_erasures")
    positions = data.draw(st.lists(st.integers(0, CODE_BYTES - 1), min_size=n, max_size=n,
                                   unique=True), label="positions")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    res = decode(corrupt(encode(p, key), rng, erasures=positions), key)
    assert res.payload == p


@settings(max_examples=250, deadline=None)
@given(p=payloads, key=keys, data=st.data())
def test_errors_plus_erasures_within_the_bound_always_decode(p, key, data):
    n_erasures = data.draw(st.integers(0, 1), label="n_erasures")
    n_errors = data.draw(st.integers(0, 1), label="n_errors")
    if not guaranteed(n_erasures, n_errors):
        n_errors = max(j for j in range(2) if guaranteed(n_erasures, j))
    order = data.draw(st.permutations(range(CODE_BYTES)), label="order")
    erased, wrong = order[:n_erasures], order[n_erasures:n_erasures + n_errors]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    res = decode(corrupt(encode(p, key), rng, errors=wrong, erasures=erased), key)
    assert res.payload == p


def test_guarantee_helper_matches_the_design():
    # Pure errors: t = 1. Pure erasures: 1 (2 erased would leave no error budget).
    assert guaranteed(0, 1) and not guaranteed(0, 2)
    assert guaranteed(1, 0) and not guaranteed(2, 0)
    assert not guaranteed(1, 1)


def test_two_erasures_are_not_attempted():
    # ERASURE_SCHEDULE stops at 1 on purpose: 2 erasures leave no error budget and
    # would accept any word whose CRC matches (2**-32 per hypothesis, 16x the rest of
    # the schedule). 2 unreliable bytes therefore decode only if their hard values
    # happen to leave at most one byte wrong -- never a wrong payload.
    assert max(ERASURE_SCHEDULE) == 1
    rng = np.random.default_rng(12)
    p = Payload(77, 88, 1)
    bits = encode(p, KEY)
    for _ in range(50):
        erased = rng.choice(CODE_BYTES, 2, replace=False)
        assert decode(corrupt(bits, rng, erasures=erased), KEY).payload in (None, p)


# --------------------------------------------------------------------------- #
# Beyond the design: rejected, never mis-decoded


def test_beyond_design_byte_errors_are_never_misdecoded(record_property):
    rng = np.random.default_rng(2024)
    trials, none, correct = 1500, 0, 0
    for i in range(trials):
        p = Payload(int(rng.integers(0, 2**24)), int(rng.integers(0, 2**40)),
                    int(rng.integers(1, 4)))
        key = rng.bytes(16)
        n_errors = int(rng.integers(2, CODE_BYTES + 1))
        wrong = rng.choice(CODE_BYTES, n_errors, replace=False)
        res = decode(corrupt(encode(p, key), rng, errors=wrong), key)
        assert res.payload is None or res.payload == p, (i, n_errors, res)
        none += res.payload is None
        correct += res.payload == p
    record_property("beyond_design_none", none)
    print(f"2+ confident byte errors: {none}/{trials} rejected, {correct} decoded correctly")
    # Confident errors give the erasure schedule nothing to go on: almost all fail.
    assert none >= 0.95 * trials


def test_beyond_design_mixed_corruption_is_never_misdecoded(record_property):
    rng = np.random.default_rng(99)
    trials, none = 1500, 0
    p = Payload(123, 456, 2)
    bits = encode(p, KEY)
    for i in range(trials):
        while True:
            n_erasures = int(rng.integers(0, CODE_BYTES + 1))
            n_errors = int(rng.integers(0, CODE_BYTES - n_erasures + 1))
            if not guaranteed(n_erasures, n_errors):
                break
        order = rng.permutation(CODE_BYTES)
        soft = corrupt(bits, rng, erasures=order[:n_erasures],
                       errors=order[n_erasures:n_erasures + n_errors])
        res = decode(soft, KEY)
        assert res.payload is None or res.payload == p, (i, n_erasures, n_errors, res)
        none += res.payload is None
    record_property("beyond_design_mixed_none", none)
    print(f"mixed corruption beyond the bound: {none}/{trials} rejected")


@settings(max_examples=200, deadline=None)
@given(p=payloads, key=keys, data=st.data())
def test_property_more_than_one_byte_error_never_misdecodes(p, key, data):
    n = data.draw(st.integers(2, CODE_BYTES), label="n_errors")
    positions = data.draw(st.lists(st.integers(0, CODE_BYTES - 1), min_size=n, max_size=n,
                                   unique=True), label="positions")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    res = decode(corrupt(encode(p, key), rng, errors=positions), key)
    assert res.payload is None or res.payload == p


def test_random_soft_input_never_decodes():
    rng = np.random.default_rng(7)
    for i in range(3000):
        soft = rng.normal(size=CODE_BITS) * rng.uniform(0.01, 10)
        res = decode(soft, rng.bytes(int(rng.integers(1, 33))))
        assert res.payload is None, (i, res)
        assert res.reason != "decoded"


def test_wrong_key_never_decodes_a_clean_codeword():
    rng = np.random.default_rng(8)
    for i in range(3000):
        p = Payload(int(rng.integers(0, 2**24)), int(rng.integers(0, 2**40)),
                    int(rng.integers(1, 4)))
        right, wrong = rng.bytes(16), rng.bytes(16)
        soft = confident_soft(encode(p, right), rng)
        if i % 2:  # also with the least reliable bytes looking like erasures
            soft[: 8 * int(rng.integers(1, 3))] *= 1e-3
        res = decode(soft, wrong)
        assert res.payload is None, (i, res)


@pytest.mark.parametrize("bad", ["a flipped CRC", "random data bytes"])
def test_crc_rejects_valid_rs_words(bad):
    # A word that is a valid RS codeword but whose CRC is wrong must be rejected.
    rng = np.random.default_rng(3)
    data = Payload(9, 10).to_bytes()
    crc = bytearray(_codec._crc(data))
    if bad == "a flipped CRC":
        crc[0] ^= 0x01
    else:
        data = rng.bytes(9)
    word = np.frombuffer(bytes(_codec._rs().encode(data + bytes(crc))), np.uint8)
    word = word ^ _codec._whitening(KEY)
    res = decode(2.0 * np.unpackbits(word) - 1.0, KEY)
    assert res.payload is None
    assert "CRC" in res.reason or "invalid" in res.reason


# --------------------------------------------------------------------------- #
# False-alarm arithmetic


def _expected_false_alarm(schedule) -> float:
    # Module docstring: sum over attempts of V(15 - e, t) / 256**(2 - e) * 2**-32,
    # t = (2 - e) // 2, V(n, t) = sum_{i<=t} C(n, i) 255**i.
    total = 0.0
    for e in schedule:
        t = (2 - e) // 2
        ball = sum(comb(15 - e, i) * 255**i for i in range(t + 1))
        total += ball / 256 ** (2 - e)
    return total / 2**32


def test_false_alarm_matches_docstring_formula():
    expected = _expected_false_alarm((0, 1))
    assert false_alarm_per_hypothesis() == pytest.approx(expected, rel=1e-12)
    assert ERASURE_SCHEDULE == (0, 1)
    assert false_alarm_per_hypothesis() < 1e-9
    # The docstrings quote "about 1.45e-11".
    assert 1.4e-11 < false_alarm_per_hypothesis() < 1.5e-11


@pytest.mark.parametrize("schedule", [(0,), (1,), (0, 2), (0, 1, 2)])
def test_false_alarm_other_schedules(schedule):
    assert false_alarm_per_hypothesis(schedule) == pytest.approx(
        _expected_false_alarm(schedule), rel=1e-12)


def test_false_alarm_of_a_channel_attempt_counts_the_list():
    assert _codec.LIST_SIZE == 4
    per_word = _expected_false_alarm((0, 1))
    assert _codec.false_alarm_per_channel_attempt() == pytest.approx(4 * per_word, rel=1e-12)
    # The docstrings quote "about 5.8e-11".
    assert 5.7e-11 < _codec.false_alarm_per_channel_attempt() < 5.9e-11


def test_list_decoding_rescues_a_near_miss():
    """When the best Viterbi path has a few wrong bits, the true word is often next in
    line: the list hands the outer decoder both and the CRC picks the right one. At a
    raw error rate of about 19% (noise sigma 1.15) the single path decodes 175 of these
    200 words, the list of 4 192 (measured); never a wrong payload."""
    rng = np.random.default_rng(21)
    rescued = 0
    for _ in range(200):
        payload = Payload(int(rng.integers(0, 2**24)), int(rng.integers(0, 2**40)))
        channel = _codec.encode_channel(payload, KEY)
        soft = (2.0 * channel - 1.0) + rng.normal(0, 1.15, channel.size)
        bits, rel = _codec._convolutional.decode(-soft, CODE_BITS)
        single = decode(np.where(bits == 1, rel, -rel), KEY).payload
        listed = _codec.decode_channel(soft, KEY).payload
        assert listed in (None, payload) and single in (None, payload)
        if single is None and listed == payload:
            rescued += 1
        assert not (single == payload and listed is None)
    assert rescued >= 12


def test_false_alarm_grows_with_attempts():
    a = false_alarm_per_hypothesis((0,))
    b = false_alarm_per_hypothesis((0, 1))
    c = false_alarm_per_hypothesis((0, 1, 2))
    assert b == false_alarm_per_hypothesis()
    assert 0 < a < b < c
    # A second erasure would leave no error budget: it alone costs 2**-32.
    assert c - b == pytest.approx(2.0**-32, rel=1e-12)


# --------------------------------------------------------------------------- #
# The channel layer: inner convolutional code + Viterbi in front of RS


@settings(max_examples=40, deadline=None)
@given(payload=payloads, key=keys)
def test_channel_roundtrip(payload, key):
    channel = _codec.encode_channel(payload, key)
    assert channel.shape == (_codec.CHANNEL_BITS,) and set(np.unique(channel)) <= {0, 1}
    result = _codec.decode_channel(2.0 * channel - 1.0, key)
    assert result.payload == payload


def test_channel_corrects_heavy_noise():
    """At a raw channel bit error rate of about 15% (Gaussian noise sigma 0.95 on +-1
    values) the concatenated code decodes every word here (99 in 100 at 16%, 74 in 100
    at 20%: ``benchmarks/code_comparison.py`` compares it with the former codes).
    Sending the former 200 RS bits twice decoded 66 in 100 at 10%."""
    rng = np.random.default_rng(11)
    raw_errors = []
    for _ in range(40):
        payload = Payload(int(rng.integers(0, 2**24)), int(rng.integers(0, 2**40)))
        channel = _codec.encode_channel(payload, KEY)
        soft = (2.0 * channel - 1.0) + rng.normal(0, 0.95, channel.size)
        raw_errors.append(np.mean((soft > 0) != (channel == 1)))
        assert _codec.decode_channel(soft, KEY).payload == payload
    assert 0.13 < np.mean(raw_errors) < 0.17


def test_channel_never_decodes_random_scores():
    rng = np.random.default_rng(12)
    for _ in range(300):
        soft = rng.normal(size=_codec.CHANNEL_BITS) * rng.uniform(0.01, 10)
        assert _codec.decode_channel(soft, KEY).payload is None


def test_channel_wrong_key_never_decodes():
    rng = np.random.default_rng(13)
    for i in range(100):
        payload = Payload(int(rng.integers(0, 2**24)), int(rng.integers(0, 2**40)))
        channel = _codec.encode_channel(payload, KEY)
        assert _codec.decode_channel(2.0 * channel - 1.0, b"other-key-%d" % i).payload is None


def test_channel_rejects_wrong_length():
    with pytest.raises(ValueError, match="400"):
        _codec.decode_channel(np.zeros(120), KEY)


def test_channel_coding_golden_values():
    # docs/format.md section 7.6: the worked example, pinned. A change here breaks every
    # mark already written: it is a new format version, never a silent edit.
    p = Payload(provider=7, content_id=42, label=1)
    k = PUBLIC_KEY
    data = p.to_bytes()
    assert data.hex() == "280000380000000150"
    assert _codec._crc(data).hex() == "6fdfc100"
    assert bytes(_codec._rs().encode(data + _codec._crc(data))).hex() == (
        "2800003800000001506fdfc1005c6c")
    assert np.packbits(_codec.encode(p, k)).tobytes().hex() == "34cb5ed4a42d2bc005304af551180e"
    assert np.packbits(_codec.encode_channel(p, k)).tobytes().hex() == (
        "01f20bed602b7c1d6185db0d34f03f294d96ccaa4c4c3cc7d07c00ee6a1c4ad851eef20d0c78ae455faf40a0"
        "3e46b80da1f0")


# --------------------------------------------------------------------------- #
# The longer list (EXTENDED_LIST_SIZE), asked for when the pilot shows the mark

def _noisy_channel(rng, sigma):
    payload = Payload(int(rng.integers(0, 2**24)), int(rng.integers(0, 2**40)))
    channel = _codec.encode_channel(payload, KEY)
    return payload, (2.0 * channel - 1.0) + rng.normal(0, sigma, channel.size)


def test_the_longer_list_rescues_words_past_the_short_one():
    """At a raw error rate of about 23% (noise sigma 1.35) the list of 16 decodes words
    the list of 4 cannot (47 of 400 in a first measurement), everything the short
    list decodes, and never a wrong payload."""
    rng = np.random.default_rng(33)
    rescued = 0
    for _ in range(200):
        payload, soft = _noisy_channel(rng, 1.35)
        short = _codec.decode_channel(soft, KEY).payload
        long = _codec.decode_channel(soft, KEY, list_size=_codec.EXTENDED_LIST_SIZE).payload
        assert short in (None, payload) and long in (None, payload)
        assert not (short == payload and long is None)
        rescued += short is None and long == payload
    assert rescued >= 12


def test_false_alarm_of_the_longer_list_counts_its_words():
    per_word = _expected_false_alarm((0, 1))
    assert _codec.EXTENDED_LIST_SIZE == 16
    p = _codec.false_alarm_per_channel_attempt(_codec.EXTENDED_LIST_SIZE)
    assert p == pytest.approx(16 * per_word, rel=1e-12)
    assert 2.2e-10 < p < 2.4e-10  # (quoted in the docstrings as 2.3e-10)


def test_detection_asks_for_the_longer_list_only_when_the_pilot_shows_the_mark():
    """evaluate() decodes a folded tile whose code word lies past the short list with
    the longer list when the pilot's z reaches EXTENDED_LIST_Z, and not otherwise; the
    reported bound counts the longer list's words."""
    from provmark import _detect
    from provmark._layout import keyed_layout
    from provmark._sync import SyncCandidate

    rng = np.random.default_rng(33)
    while True:  # a word the short list misses and the long one finds
        payload, soft = _noisy_channel(rng, 1.35)
        if (_codec.decode_channel(soft, KEY).payload is None and _codec.decode_channel(
                soft, KEY, list_size=_codec.EXTENDED_LIST_SIZE).payload == payload):
            break
    layout = keyed_layout(KEY)
    sign = 1.0 - 2.0 * layout.pilot_bits
    tile = np.zeros(layout.pilot_slots.size + layout.code_slots.size)
    tile[layout.code_slots] = -soft  # (a folded score: positive means bit 0)
    tile[layout.pilot_slots] = sign * np.abs(rng.normal(1.0, 0.2, sign.size))
    strong = _detect.evaluate(tile, KEY)
    assert strong.z >= _detect.EXTENDED_LIST_Z
    assert strong.result.payload == payload and strong.list_size == _codec.EXTENDED_LIST_SIZE
    tile[layout.pilot_slots] = rng.normal(0.0, 1.0, sign.size)
    weak = _detect.evaluate(tile, KEY)
    assert weak.z < _detect.EXTENDED_LIST_Z
    assert weak.result.payload is None and weak.list_size == _codec.LIST_SIZE

    run = _detect._Search.__new__(_detect._Search)
    plane = np.zeros((16, 16), np.float32)
    cand = SyncCandidate(strong.z, 0, 0, 0, 0)
    run.attempts = [_detect.Attempt(plane, cand, weak, 1, 10),
                    _detect.Attempt(plane, cand, strong, 1, 1000)]
    expected = ((_codec.false_alarm_per_channel_attempt()
                 + _codec.false_alarm_per_channel_attempt(_codec.EXTENDED_LIST_SIZE))
                * min(1.0, 1000 * _detect.pilot_p_value(strong.z)))
    assert run.false_alarm(run.attempts[1]) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- #
# Longer lists still (LONG_LIST_MAX), where the bound affords them

def _search_with(hypotheses, attempts=()):
    from provmark import _detect

    run = _detect._Search.__new__(_detect._Search)
    run.hypotheses, run.attempts, run._long_lists = hypotheses, list(attempts), 0
    return run


def test_a_long_list_is_as_long_as_the_bound_affords():
    """words_for(z): the longest power-of-2 list whose attempt, were it to decode, keeps
    its bound under LONG_LIST_SHARE of MAX_FALSE_ALARM (the words already tried
    counted), at most LONG_LIST_MAX; nothing under LONG_LIST_Z, nothing once a search
    has read so many hypotheses that the pilot's tail no longer pays for more than the
    longer list, and at most LONG_LIST_ATTEMPTS long lists a search."""
    from provmark import _detect

    def bound(run, z, words):
        spent = sum(_codec.false_alarm_per_channel_attempt(a.evaluation.list_size)
                    for a in run.attempts)
        tail = min(1.0, run.hypotheses * _detect.pilot_p_value(z))
        return (spent + _codec.false_alarm_per_channel_attempt(words)) * tail

    share = _detect.LONG_LIST_SHARE * _detect.MAX_FALSE_ALARM
    assert _search_with(1).words_for(_detect.LONG_LIST_Z - 0.01) == 0
    aligned = _search_with(1)  # the aligned grid: the first hypothesis read
    assert aligned.words_for(5.25) == _detect.LONG_LIST_MAX
    assert bound(aligned, 5.25, _detect.LONG_LIST_MAX) <= share
    middling = _search_with(20_000)
    words = middling.words_for(5.3)
    assert _codec.EXTENDED_LIST_SIZE < words < _detect.LONG_LIST_MAX
    assert words & (words - 1) == 0  # a power of 2
    assert bound(middling, 5.3, words) <= share < bound(middling, 5.3, 2 * words)
    assert _search_with(2_000_000).words_for(5.6) == 0  # a long search's noise reads so high
    spent = _search_with(1)
    for _ in range(_detect.LONG_LIST_ATTEMPTS):
        assert spent.words_for(6.0) == _detect.LONG_LIST_MAX
    assert spent.words_for(6.0) == 0


def test_a_long_list_decodes_a_copy_the_shorter_ones_cannot(photo_factory):
    """A 256x256 photo at JPEG 38 read at its aligned grid alone: the pilot reads
    about 5.6, the lists of 4 and 16 find no codeword, the long list the bound affords
    there finds the payload; the bound counts its words. Without long lists it reads
    nothing."""
    import cv2

    import provmark
    from provmark import _detect

    key = b"geometry-test-key"
    payload = Payload(4242, 123456789, 2)
    marked = provmark.embed(photo_factory("astronaut", 256, 256), payload, key=key)
    ok, buf = cv2.imencode(".jpg", marked, [cv2.IMWRITE_JPEG_QUALITY, 38])
    copy = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    det = provmark.detect(copy, key=key, search=False)
    assert det.found and det.payload == payload
    assert det.details["long_lists"] == 1
    assert det.sync_score >= _detect.LONG_LIST_Z
    assert det.false_alarm_probability == pytest.approx(
        _codec.false_alarm_per_channel_attempt(_detect.LONG_LIST_MAX)
        * _detect.pilot_p_value(det.sync_score), rel=1e-9)
    assert det.false_alarm_probability <= _detect.LONG_LIST_SHARE * _detect.MAX_FALSE_ALARM
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_detect, "LONG_LIST_Z", float("inf"))
        assert provmark.detect(copy, key=key, search=False).payload is None
