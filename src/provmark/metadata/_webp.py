"""The WebP container (RIFF): chunk walking, reading and writing the ``XMP `` chunk.

Reading walks the RIFF chunks and returns the XMP chunks (noting a VP8X header
that does not flag them); writing converts a simple (VP8/VP8L) file to the
extended VP8X layout when needed, sets its XMP flag, updates or inserts the
``XMP `` chunk and copies every other chunk byte for byte.
"""

from __future__ import annotations

import struct

from ._model import AIGCLabel, MetadataError
from ._png import _Chunk  # a RIFF chunk has the same (type, data, raw bytes) shape
from ._xmp import _new_xmp_packet, _update_xmp, _XmpBudget

_VP8X_XMP = 0x04
_VP8X_ALPHA = 0x10


def _riff_chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) & 1 else b"")


def _webp_chunks(
    data: bytes, problems: list[str], keep: tuple[bytes, ...] | None = None
) -> tuple[list[_Chunk], bytes, bool]:
    """(chunks, bytes after the RIFF data, complete).

    ``keep``: the chunk types to return besides the first chunk (with an empty
    ``raw``); None returns every chunk with its raw bytes (for writing).
    """
    n = len(data)
    if n < 12:
        problems.append("WebP is truncated inside its RIFF header")
        return [], b"", False
    (size,) = struct.unpack("<I", data[4:8])
    end = 8 + size
    complete = True
    if end > n:
        problems.append(
            f"WebP is truncated: the RIFF header declares {end} bytes but the file has {n}"
        )
        end = n
        complete = False
    chunks: list[_Chunk] = []
    pos = 12
    while pos + 8 <= end:
        kind = data[pos : pos + 4]
        (length,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        body_end = pos + 8 + length
        if body_end > end:
            if complete:
                problems.append(
                    f"WebP chunk {kind!r} at byte {pos} declares {length} bytes, past the "
                    "end of the RIFF data"
                )
            return chunks, b"", False
        padded = body_end + (length & 1)
        if keep is None:
            raw = data[pos:padded] if padded <= end else data[pos:body_end] + b"\x00"
            chunks.append(_Chunk(kind, data[pos + 8 : body_end], raw))
        elif pos == 12 or kind in keep:
            chunks.append(_Chunk(kind, data[pos + 8 : body_end], b""))
        pos = padded
    if pos < end:
        problems.append(f"WebP has {end - pos} stray bytes at the end of its RIFF data")
        return chunks, b"", False
    return chunks, data[8 + size :] if complete else b"", complete


def _webp_extract(
    data: bytes, problems: list[str], budget: _XmpBudget
) -> tuple[list[bytes], list[str]]:
    chunks, _, _ = _webp_chunks(data, problems, keep=(b"XMP ",))
    xmps = [c.data for c in chunks if c.kind == b"XMP "]
    if xmps and not (
        chunks
        and chunks[0].kind == b"VP8X"
        and chunks[0].data[:1]
        and chunks[0].data[0] & _VP8X_XMP
    ):
        problems.append(
            "WebP has an XMP chunk but its VP8X header does not flag it; some readers "
            "will ignore it"
        )
    return [x for x in xmps if budget.admit() >= 0 and budget.take(len(x), problems)], []


def _webp_canvas(first: _Chunk) -> tuple[int, int, bool]:
    d = first.data
    if first.kind == b"VP8 " and len(d) >= 10 and d[3:6] == b"\x9d\x01\x2a":
        w = struct.unpack("<H", d[6:8])[0] & 0x3FFF
        h = struct.unpack("<H", d[8:10])[0] & 0x3FFF
        if not (w and h):
            raise MetadataError(
                f"cannot write a label into this WebP: its VP8 header gives a {w}x{h} "
                "canvas; re-encode the image"
            )
        return w, h, False
    if first.kind == b"VP8L" and len(d) >= 5 and d[0] == 0x2F:
        bits = struct.unpack("<I", d[1:5])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    raise MetadataError(
        f"cannot write a label into this WebP: its first chunk {first.kind!r} is not a "
        "readable VP8/VP8L/VP8X header"
    )


def _webp_write(data: bytes, label: AIGCLabel, value: str, replace_malformed: bool) -> bytes:
    problems: list[str] = []
    chunks, trailing, complete = _webp_chunks(data, problems)
    if not complete or not chunks:
        raise MetadataError(
            f"cannot write a label into this WebP: {(problems or ['it has no chunks'])[-1]}"
        )
    raws = [c.raw for c in chunks]
    kinds = [c.kind for c in chunks]
    if kinds[0] == b"VP8X":
        vp8x = bytearray(chunks[0].data)
        if len(vp8x) < 10:
            raise MetadataError("cannot write a label into this WebP: its VP8X chunk is too short")
        vp8x[0] |= _VP8X_XMP
        raws[0] = _riff_chunk(b"VP8X", bytes(vp8x))
    else:
        w, h, alpha = _webp_canvas(chunks[0])
        flags = _VP8X_XMP | (_VP8X_ALPHA if alpha else 0)
        vp8x = (
            bytes([flags, 0, 0, 0]) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
        )
        raws.insert(0, _riff_chunk(b"VP8X", vp8x))
        kinds.insert(0, b"VP8X")
        chunks = [_Chunk(b"VP8X", vp8x, raws[0]), *chunks]

    xmp_idx = [i for i, k in enumerate(kinds) if k == b"XMP "]
    if xmp_idx:
        first = xmp_idx[0]
        packet = _update_xmp(chunks[first].data, value, replace_malformed=replace_malformed)
        raws[first] = _riff_chunk(b"XMP ", packet)
        for i in reversed(xmp_idx[1:]):
            del raws[i]
    else:
        new = _riff_chunk(b"XMP ", _new_xmp_packet(value))
        if b"EXIF" in kinds:
            at = kinds.index(b"EXIF") + 1
        else:
            image = [i for i, k in enumerate(kinds) if k in (b"VP8 ", b"VP8L", b"ALPH", b"ANMF")]
            at = image[-1] + 1 if image else len(raws)
        raws.insert(at, new)
    body = b"WEBP" + b"".join(raws)
    return b"RIFF" + struct.pack("<I", len(body)) + body + trailing

