"""The provenance payload carried by the watermark: what it holds and its bit layout.

The full GB 45438 ContentProducer string (27+ characters) does not fit in pixels, so
the mark carries a compact key into it (DESIGN.md section 2) in 72 data bits:

====== ==== ===============================================================
field  bits meaning
====== ==== ===============================================================
version   3 payload format version (this is version 1; 0 is never written)
label     2 generation label: 1 AI-generated, 2 possibly, 3 suspected
provider 24 provider code: an index a provider registers, mapped to its code
content  40 content ID: a serial number or a hash of the ProduceID
reserved  3 zero in version 1
====== ==== ===============================================================
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

FORMAT_VERSION = 1
PROVIDER_BITS = 24
CONTENT_ID_BITS = 40
DATA_BYTES = 9

LABEL_MEANINGS = {1: "AI-generated", 2: "possibly AI-generated", 3: "suspected AI-generated"}


@dataclass(frozen=True)
class Payload:
    """Provenance fields carried in the pixels.

    Parameters
    ----------
    provider : int
        Provider code, ``0 <= provider < 2**24``.
    content_id : int
        Content ID, ``0 <= content_id < 2**40`` (e.g. a serial, or
        ``int.from_bytes(sha256(produce_id)[:5], 'big')``).
    label : int, default 1
        Generation label of GB 45438: 1 AI-generated, 2 possibly, 3 suspected.

    Examples
    --------
    >>> p = Payload(provider=4242, content_id=123456789)
    >>> Payload.from_bytes(p.to_bytes()) == p
    True
    """

    provider: int
    content_id: int
    label: int = 1

    def __post_init__(self) -> None:
        for name in ("provider", "content_id", "label"):
            value = getattr(self, name)
            if isinstance(value, bool) or not hasattr(value, "__index__") or isinstance(value, float):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
            # NumPy integers are accepted and stored as plain ints.
            object.__setattr__(self, name, operator.index(value))
        for name, bits in (("provider", PROVIDER_BITS), ("content_id", CONTENT_ID_BITS)):
            value = getattr(self, name)
            if not 0 <= value < (1 << bits):
                raise ValueError(
                    f"{name}={value} is out of range: it must satisfy 0 <= {name} < 2**{bits}"
                    f" ({(1 << bits) - 1} at most)")
        if isinstance(self.label, bool) or self.label not in (1, 2, 3):
            raise ValueError(
                f"label={self.label!r} is invalid: use 1 (AI-generated), 2 (possibly) "
                "or 3 (suspected), as in GB 45438")

    @property
    def version(self) -> int:
        """Payload format version written into the mark."""
        return FORMAT_VERSION

    @property
    def label_meaning(self) -> str:
        """Human-readable meaning of :attr:`label`."""
        return LABEL_MEANINGS[self.label]

    def to_bytes(self) -> bytes:
        """Pack into the 9 data bytes (big-endian bit fields, see module docstring)."""
        word = FORMAT_VERSION
        word = (word << 2) | self.label
        word = (word << PROVIDER_BITS) | self.provider
        word = (word << CONTENT_ID_BITS) | self.content_id
        word <<= 3
        return word.to_bytes(DATA_BYTES, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> Payload:
        """Unpack 9 data bytes; raises ``ValueError`` on an unknown version, an invalid
        label or non-zero reserved bits."""
        if len(data) != DATA_BYTES:
            raise ValueError(f"payload data must be {DATA_BYTES} bytes, got {len(data)}")
        word = int.from_bytes(data, "big")
        reserved = word & 0b111
        word >>= 3
        content_id = word & ((1 << CONTENT_ID_BITS) - 1)
        word >>= CONTENT_ID_BITS
        provider = word & ((1 << PROVIDER_BITS) - 1)
        word >>= PROVIDER_BITS
        label = word & 0b11
        version = word >> 2
        if version != FORMAT_VERSION:
            raise ValueError(f"unsupported payload version {version}")
        if reserved:
            raise ValueError("reserved payload bits are set")
        return cls(provider=provider, content_id=content_id, label=label)
