"""Channel code of the payload: CRC-32, Reed-Solomon over GF(256), keyed whitening,
an inner convolutional code, and soft-decision decoding with erasures — plus the
false-alarm arithmetic.

Encoding: 9 data bytes + CRC-32 (4 bytes) = 13 message bytes, RS(15, 13) adds 2
parity bytes, and the 15-byte codeword is XORed with key-derived bytes (so that a
wrong key, or an unmarked image, yields a uniformly random word): 120 code bits.
:func:`encode_channel` adds the inner convolutional code
(:mod:`provmark._convolutional`, K=9, rate 1/4, punctured) that turns them into the
400 bits the tile carries; :func:`decode_channel` runs its list Viterbi decoder and hands
the outer decoder the best words and their reliabilities, best first.

Why so little Reed-Solomon parity: the outer code decodes hard bytes, the inner code
soft values, and on this channel a redundant bit is worth far more inside the soft
decoder (``benchmarks/code_comparison.py``: over 444 words sent through hard channel
realisations recorded from real attacks, RS(25,13) with a rate-1/2 inner code decoded
304, RS(15,13) with this rate-1/4 code 396). Two parity bytes still repair what the
Viterbi decoder most often leaves: a short error event inside one byte.

Decoding from soft bit scores (:func:`decode`): the least reliable bytes (smallest
min |score| over their 8 bits) are declared erasures, which lets RS repair ``2*errors
+ erasures <= 2``. The erasure counts 0 and 1 are tried in turn
(:data:`ERASURE_SCHEDULE`): 2 erasures would leave no error budget and accept any word
whose CRC matches, a false-alarm cost (2**-32 per hypothesis) 16 times the rest of
the schedule. A result is accepted only if RS succeeds, the CRC matches and the
fields are valid.

False alarms. Under the null hypothesis (no mark, or another key), the whitened
hard-decision word is uniform and independent of the reliabilities, so an attempt
with ``e`` erasures and ``t = (2 - e) // 2`` correctable errors yields *some* RS
codeword with probability ``V(15 - e, t) / 256**(2 - e)`` where ``V(n, t) =
sum_{i<=t} C(n, i) 255**i`` (a bounded-distance decoder on the punctured code), and
that codeword passes the CRC with probability ``2**-32``. The union bound over the
attempts gives :func:`false_alarm_per_hypothesis` (about 1.45e-11 per word); the list
Viterbi decoder hands over :data:`LIST_SIZE` words, each whitened hence uniform under the
null, so one :func:`decode_channel` call accepts a null input with probability at most
4 x 1.45e-11 = 5.8e-11 (:func:`false_alarm_per_channel_attempt`). The inner decoder
keeps both premises: the channel values of a null image are sign-symmetric, so
flipping them along any codeword of the (linear) inner code shifts the Viterbi
decision by that codeword's input and leaves the reliabilities unchanged: the
decision is uniform and independent of the reliabilities, and the whitening makes
the outer word uniform whatever the decision's distribution.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache
from math import comb

import numpy as np
import reedsolo

from . import _convolutional
from ._keys import derive_bytes
from ._payload import DATA_BYTES, Payload

CRC_BYTES = 4
PARITY_BYTES = 2
MESSAGE_BYTES = DATA_BYTES + CRC_BYTES
CODE_BYTES = MESSAGE_BYTES + PARITY_BYTES
CODE_BITS = 8 * CODE_BYTES
#: Bits the tile carries: the inner convolutional code's punctured output.
CHANNEL_BITS = 400
#: Erasure counts tried in order (each is a hypothesis in the false-alarm sum).
ERASURE_SCHEDULE = (0, 1)
#: Candidate words of the list Viterbi decoder handed to the outer decoder, best
#: first; each is one more decoding hypothesis in the false-alarm sum.
LIST_SIZE = 4
#: The longer list a reader may ask for when the short one found no codeword but the
#: pilot shows the mark (:data:`provmark._detect.EXTENDED_LIST_Z`): the true word of a
#: copy a little past the short list's reach is often further down (session 17: 6 more
#: copies of bar15's two small bands, none wrong). It costs 8 ms instead of 1.6 and
#: counts 16 words in that attempt's false-alarm term.
EXTENDED_LIST_SIZE = 16

_CRC_DOMAIN = b"provmark/v1"


@lru_cache(maxsize=1)
def _rs() -> reedsolo.RSCodec:
    return reedsolo.RSCodec(PARITY_BYTES, nsize=255)


def _crc(data: bytes) -> bytes:
    return zlib.crc32(_CRC_DOMAIN + data).to_bytes(CRC_BYTES, "big")


@lru_cache(maxsize=64)
def _whitening(key: bytes) -> np.ndarray:
    return np.frombuffer(derive_bytes(key, "whitening", CODE_BYTES), dtype=np.uint8)


def encode(payload: Payload, key: bytes) -> np.ndarray:
    """Payload -> 120 code bits (uint8 0/1, most significant bit of each byte first)."""
    data = payload.to_bytes()
    msg = data + _crc(data)
    word = np.frombuffer(bytes(_rs().encode(msg)), dtype=np.uint8) ^ _whitening(key)
    return np.unpackbits(word)


def encode_channel(payload: Payload, key: bytes) -> np.ndarray:
    """Payload -> the :data:`CHANNEL_BITS` bits written into the tile (uint8 0/1)."""
    return _convolutional.encode(encode(payload, key), CHANNEL_BITS)


@dataclass(frozen=True)
class DecodeResult:
    """Outcome of :func:`decode`."""

    payload: Payload | None
    corrected_symbols: int
    erasures: int
    attempts: int
    reason: str


def _ball(n: int, t: int) -> int:
    return sum(comb(n, i) * 255**i for i in range(t + 1))


@lru_cache(maxsize=None)
def false_alarm_per_hypothesis(schedule: tuple[int, ...] = ERASURE_SCHEDULE,
                               list_size: int = 1) -> float:
    """Probability that decoding random soft scores returns any payload, for one
    synchronisation hypothesis: union bound over the erasure schedule and, for
    :func:`decode_channel`, over its ``list_size`` candidate words."""
    total = 0.0
    for e in schedule:
        t = (PARITY_BYTES - e) // 2
        total += _ball(CODE_BYTES - e, t) / 256.0 ** (PARITY_BYTES - e)
    return list_size * total * 2.0**-32


def false_alarm_per_channel_attempt(list_size: int = LIST_SIZE) -> float:
    """:func:`false_alarm_per_hypothesis` of one :func:`decode_channel` call (a list of
    ``list_size`` words): about 5.8e-11 for :data:`LIST_SIZE`, 2.3e-10 for
    :data:`EXTENDED_LIST_SIZE`."""
    return false_alarm_per_hypothesis(ERASURE_SCHEDULE, list_size)


def decode(soft: np.ndarray, key: bytes,
           schedule: tuple[int, ...] = ERASURE_SCHEDULE) -> DecodeResult:
    """Decode 120 soft bit scores (positive means bit 1) into a payload.

    Returns a :class:`DecodeResult` whose ``payload`` is None when no attempt gave
    a word that RS, the CRC and the field checks all accept.
    """
    soft = np.asarray(soft, dtype=np.float64)
    if soft.shape != (CODE_BITS,):
        raise ValueError(f"expected {CODE_BITS} soft bits, got shape {soft.shape}")
    hard = (soft > 0).astype(np.uint8)
    word = np.packbits(hard) ^ _whitening(key)
    reliability = np.abs(soft).reshape(CODE_BYTES, 8).min(axis=1)
    order = np.argsort(reliability, kind="stable")
    rs = _rs()
    reason = "Reed-Solomon decoding failed"
    for attempt, e in enumerate(schedule, start=1):
        erase = sorted(int(i) for i in order[:e])
        try:
            msg, full, errata = rs.decode(bytearray(word.tobytes()), erase_pos=erase or None)
        except reedsolo.ReedSolomonError:
            continue
        msg = bytes(msg)
        # reedsolo can return words beyond the bounded distance; re-check it.
        diff = np.frombuffer(bytes(full), dtype=np.uint8) != word
        if erase:
            diff[erase] = False
        errors = int(diff.sum())
        if 2 * errors + e > PARITY_BYTES:
            continue
        data, crc = msg[:DATA_BYTES], msg[DATA_BYTES:]
        if _crc(data) != crc:
            reason = "CRC mismatch after Reed-Solomon decoding"
            continue
        try:
            payload = Payload.from_bytes(data)
        except ValueError as exc:
            reason = f"invalid payload fields ({exc})"
            continue
        return DecodeResult(payload, errors, e, attempt, "decoded")
    return DecodeResult(None, 0, 0, len(schedule), reason)


def decode_channel(soft: np.ndarray, key: bytes,
                   schedule: tuple[int, ...] = ERASURE_SCHEDULE,
                   list_size: int = LIST_SIZE) -> DecodeResult:
    """Decode :data:`CHANNEL_BITS` soft channel values (positive means bit 1):
    Viterbi for the inner code (its ``list_size`` best words), then :func:`decode`
    with its reliabilities."""
    soft = np.asarray(soft, dtype=np.float64)
    if soft.shape != (CHANNEL_BITS,):
        raise ValueError(f"expected {CHANNEL_BITS} soft channel values, got shape {soft.shape}")
    # The Viterbi kernel takes positive = bit 0. The list's words are tried best
    # first; the first that RS, the CRC and the fields accept is returned.
    result = None
    for bits, reliability in _convolutional.decode_list(-soft, CODE_BITS, list_size):
        result = decode(np.where(bits == 1, reliability, -reliability), key, schedule)
        if result.payload is not None:
            return result
    return result
