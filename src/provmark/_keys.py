"""Key handling: turn a user key into the keyed randomness of the layout and codec.

The key seeds everything an attacker would need to read, forge or target the mark:
the dither of every symbol, which symbol slot carries which code bit or pilot bit,
the pilot bits and the codeword whitening. ``key=None`` means the documented public
default key (:data:`PUBLIC_KEY`) so that anyone can read a provider's label, as a
regulator-readable label needs; a provider that wants forging and targeted removal
to be harder uses its own secret key (DESIGN.md section 4).
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np

#: The documented public default key. Marks embedded with it can be read by anyone.
PUBLIC_KEY = b"provmark/public-default-key/v1"


def normalize_key(key: bytes | str | None) -> bytes:
    """Return the key as bytes; ``None`` is :data:`PUBLIC_KEY`.

    Raises
    ------
    TypeError
        If the key is not bytes, str or None.
    ValueError
        If the key is empty.
    """
    if key is None:
        return PUBLIC_KEY
    if isinstance(key, str):
        key = key.encode("utf-8")
    if isinstance(key, (bytearray, memoryview)):
        key = bytes(key)
    if not isinstance(key, bytes):
        raise TypeError(f"key must be bytes, str or None, not {type(key).__name__}")
    if not key:
        raise ValueError("key is empty: pass None for the public default key, or a non-empty secret")
    return key


def derive_bytes(key: bytes, domain: str, n: int) -> bytes:
    """``n`` pseudo-random bytes bound to ``key`` and a domain label (HMAC-SHA256 in
    counter mode), so that each use of the key gets independent randomness."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        msg = f"provmark/{domain}/{counter}".encode()
        out += hmac.new(key, msg, hashlib.sha256).digest()
        counter += 1
    return bytes(out[:n])


class KeyStream:
    """Keyed pseudo-random draws whose every output is fixed by this code alone.

    The mark's layout and template are read back months or years after they were
    written, by later versions and perhaps other implementations, so the draws are
    not delegated to a library whose streams may change between versions (NumPy's
    ``Generator`` makes no such promise, NEP 19). The source is
    :func:`derive_bytes` for ``(key, domain)``, consumed in order; every draw below
    is specified exactly (``docs/format.md``):

    - ``word()``: the next 4 bytes as an unsigned little-endian integer;
    - ``below(n)``: ``word() % n`` after rejecting words at or above
      ``2**32 - 2**32 % n`` (no modulo bias);
    - ``unit()``: the next 8 bytes as an unsigned little-endian integer, shifted
      right by 11, times ``2**-53``: a float in ``[0, 1)``;
    - ``permutation(n)``: Fisher-Yates on ``0..n-1``: for ``i`` from ``n - 1`` down
      to 1, swap entries ``i`` and ``below(i + 1)``.
    """

    def __init__(self, key: bytes, domain: str):
        self._key, self._domain = key, domain
        self._buf = b""
        self._pos = 0
        self._counter = 0

    def _take(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n:
            msg = f"provmark/{self._domain}/{self._counter}".encode()
            self._buf = self._buf[self._pos:] + hmac.new(self._key, msg, hashlib.sha256).digest()
            self._pos = 0
            self._counter += 1
        out = self._buf[self._pos:self._pos + n]
        self._pos += n
        return out

    def word(self) -> int:
        return int.from_bytes(self._take(4), "little")

    def below(self, n: int) -> int:
        if not 1 <= n <= 2**32:
            raise ValueError(f"below({n}): n must be in [1, 2**32]")
        limit = 2**32 - 2**32 % n
        while True:
            w = self.word()
            if w < limit:
                return w % n

    def unit(self) -> float:
        return (int.from_bytes(self._take(8), "little") >> 11) * 2.0**-53

    def permutation(self, n: int) -> np.ndarray:
        a = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1)
            a[i], a[j] = a[j], a[i]
        return np.array(a, dtype=np.int64)

    def integers(self, n: int, count: int) -> np.ndarray:
        """``count`` draws of ``below(n)``, in order."""
        return np.array([self.below(n) for _ in range(count)], dtype=np.int64)

    def uniform(self, low: float, high: float, count: int) -> np.ndarray:
        """``count`` draws of ``low + (high - low) * unit()``, in order."""
        return np.array([low + (high - low) * self.unit() for _ in range(count)])


def key_fingerprint(key: bytes | str | None) -> str:
    """A short public fingerprint of the key (for reports; reveals nothing useful)."""
    k = normalize_key(key)
    return hashlib.sha256(b"provmark/fingerprint/" + k).hexdigest()[:12]
