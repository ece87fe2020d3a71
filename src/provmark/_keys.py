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


def derive_rng(key: bytes, domain: str) -> np.random.Generator:
    """A NumPy generator seeded from :func:`derive_bytes` (256-bit seed)."""
    seed = int.from_bytes(derive_bytes(key, domain, 32), "little")
    return np.random.default_rng(seed)


def key_fingerprint(key: bytes | str | None) -> str:
    """A short public fingerprint of the key (for reports; reveals nothing useful)."""
    k = normalize_key(key)
    return hashlib.sha256(b"provmark/fingerprint/" + k).hexdigest()[:12]
