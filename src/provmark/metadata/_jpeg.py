"""The JPEG container: header segment walking, reading and writing the XMP APP1 segment.

The XMP packet travels in the standard APP1 segment that starts with
``http://ns.adobe.com/xap/1.0/``.  Only the header segments before the image data
(SOS) are walked; writing updates the first XMP segment or inserts one after the
JFIF/Exif segments, and copies every other segment and the image data byte for byte.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from ._model import AIGCLabel, MetadataError
from ._xmp import _new_xmp_packet, _update_xmp, _XmpBudget

_JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"


_STANDALONE = {0x01, *range(0xD0, 0xD8)}


@dataclass(frozen=True)
class _Segment:
    marker: int
    payload: bytes
    raw: bytes


_FILL_RE = re.compile(rb"\xff+")


def _jpeg_segments(
    data: bytes, problems: list[str], keep: int | None = None
) -> tuple[list[_Segment], bytes, bool]:
    """Header segments up to SOS; (segments, rest from SOS on, complete).

    ``keep``: the one marker to return (payload only, empty ``raw``); None returns
    every segment with its raw bytes (for writing).
    """
    segs: list[_Segment] = []
    pos = 2
    n = len(data)
    while True:
        start = pos
        if pos >= n:
            problems.append(f"JPEG is truncated: it ends at byte {n} before the image data (SOS)")
            return segs, b"", False
        if data[pos] != 0xFF:
            problems.append(
                f"JPEG is malformed: expected a marker at byte {pos}, found 0x{data[pos]:02X}"
            )
            return segs, b"", False
        pos += 1
        if pos < n and data[pos] == 0xFF:
            pos = _FILL_RE.match(data, pos).end()  # fill bytes
        if pos >= n:
            problems.append("JPEG is truncated inside a marker")
            return segs, b"", False
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE:
            if keep is None:
                segs.append(_Segment(marker, b"", data[start:pos]))
            continue
        if marker in (0xD9, 0xDA):
            if marker == 0xD9:
                problems.append("JPEG has an EOI marker before any image data")
            return segs, data[start:], True
        if marker == 0xD8:
            problems.append(f"JPEG is malformed: a second SOI marker at byte {start}")
            return segs, b"", False
        if pos + 2 > n:
            problems.append("JPEG is truncated inside a segment length")
            return segs, b"", False
        length = data[pos] << 8 | data[pos + 1]
        if length < 2:
            problems.append(
                f"JPEG segment 0xFF{marker:02X} at byte {start} has an invalid length {length}"
            )
            return segs, b"", False
        end = pos + length
        if end > n:
            problems.append(
                f"JPEG is truncated: segment 0xFF{marker:02X} at byte {start} declares "
                f"{length} bytes but only {n - pos} remain"
            )
            return segs, b"", False
        if keep is None:
            segs.append(_Segment(marker, data[pos + 2 : end], data[start:end]))
        elif marker == keep:
            segs.append(_Segment(marker, data[pos + 2 : end], b""))
        pos = end


def _jpeg_extract(
    data: bytes, problems: list[str], budget: _XmpBudget
) -> tuple[list[bytes], list[str]]:
    segs, _, complete = _jpeg_segments(data, problems, keep=0xE1)
    if complete and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        problems.append("JPEG does not end with an EOI marker: the image data may be truncated")
    xmps = []
    for s in segs:
        if s.payload.startswith(_JPEG_XMP_HEADER) and budget.admit() >= 0:
            packet = s.payload[len(_JPEG_XMP_HEADER) :]
            if budget.take(len(packet), problems):
                xmps.append(packet)
    return xmps, []


def _jpeg_app1(packet: bytes) -> bytes:
    body = _JPEG_XMP_HEADER + packet
    if len(body) + 2 > 0xFFFF:
        raise MetadataError(
            f"the XMP packet ({len(packet)} bytes) does not fit a JPEG APP1 segment "
            f"(at most {0xFFFF - 2 - len(_JPEG_XMP_HEADER)} bytes)"
        )
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def _jpeg_write(data: bytes, label: AIGCLabel, value: str, replace_malformed: bool) -> bytes:
    problems: list[str] = []
    segs, rest, complete = _jpeg_segments(data, problems)
    if not complete:
        raise MetadataError(f"cannot write a label into this JPEG: {problems[-1]}")
    out: list[bytes] = []
    done = False
    for s in segs:
        if s.marker == 0xE1 and s.payload.startswith(_JPEG_XMP_HEADER):
            if not done:
                packet = _update_xmp(
                    s.payload[len(_JPEG_XMP_HEADER) :], value, replace_malformed=replace_malformed
                )
                out.append(_jpeg_app1(packet))
                done = True
            continue
        out.append(s.raw)
    if not done:
        # after the leading JFIF/Exif segments (APP0/APP1), as readers expect
        i = 0
        while i < len(segs) and segs[i].marker in (0xE0, 0xE1):
            i += 1
        out.insert(i, _jpeg_app1(_new_xmp_packet(value)))
    return b"\xff\xd8" + b"".join(out) + rest

