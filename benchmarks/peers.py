"""Re-export of :mod:`provmark.bench.peers`, where the peer adapters now live.

Kept so that the scripts in ``benchmarks/`` and ``tests/test_peers.py``, which load
this file by path, keep working; new code should import ``provmark.bench.peers``.
"""

from provmark.bench.peers import (  # noqa: F401
    _IMWATERMARK_METHODS,
    _IMWATERMARK_MIN_PIXELS,
    RIVAGAN_BITS,
    SDXL_BITS,
    BlindWatermarkAdapter,
    InvisibleWatermarkAdapter,
    Method,
    PeerDetection,
    available_peers,
    bit_accuracy,
)

__all__ = [
    "BlindWatermarkAdapter",
    "InvisibleWatermarkAdapter",
    "Method",
    "PeerDetection",
    "available_peers",
    "bit_accuracy",
]
