"""Hostile inputs for the timing guard: XMP packets and files built to make a parser
super-linear.

Each entry of :data:`PACKETS` builds an XMP packet of about ``size`` bytes from one
construction repeated: the unclosed ``<TC260:AIGC>`` tags of issue 11 (62 s for
256 KB before the fix), tags that never close their ``>``, open quotes, long runs
of blanks, deep nesting, elements with thousands of attributes, comments full of
tags, and so on. :data:`FILES` wraps such packets in PNG, JPEG and WebP files the
way an attacker would (16 APP1 segments, a compressed iTXt chunk, many packets).
``tests/test_metadata.py`` times the readers on 1 MB against 4 MB of each (a
linear reader takes about 4 times as long) and the fuzzing runner uses them as
seeds. Every construction is deterministic.
"""

from __future__ import annotations

import struct
import zlib

TC260 = "http://www.tc260.org.cn/ns/AIGC/1.0/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
IPTC = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
HEAD = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="' + RDF + '">'
    '<rdf:Description rdf:about="" xmlns:TC260="' + TC260 + '" xmlns:Iptc4xmpExt="'
    + IPTC + '">'
)
TAIL = "</rdf:Description></rdf:RDF></x:xmpmeta>"
LABEL_JSON = '{"Label":"1","ContentProducer":"ACME","ProduceID":"id-1"}'


def _fill(unit: str, size: int) -> str:
    return unit * max(1, size // len(unit))


def _nested(open_tag: str, close_tag: str, size: int) -> str:
    k = max(1, size // (len(open_tag) + len(close_tag)))
    return open_tag * k + close_tag * k


def _malformed(body: str) -> str:
    """``body`` inside the usual packet, left unclosed (not well-formed)."""
    return HEAD + body


def _wellformed(body: str) -> str:
    return HEAD + body + TAIL


#: name -> (build(size) -> packet text, well-formed?)
PACKETS = {
    # issue 11: a packet full of unclosed TC260:AIGC tags
    "unclosed-aigc": (lambda n: _malformed(_fill("<TC260:AIGC>", n)), False),
    "unclosed-aigc-json": (
        lambda n: _malformed(_fill("<TC260:AIGC>" + LABEL_JSON, n)), False),
    "aigc-no-gt": (lambda n: _malformed(_fill("<TC260:AIGC ", n)), False),
    "aigc-attr-open-quote": (lambda n: _malformed(_fill('TC260:AIGC="', n)), False),
    "aigc-attr-mixed-quotes": (
        lambda n: _malformed(_fill("TC260:AIGC=\"a' TC260:AIGC='b\" ", n)), False),
    "closings-only": (lambda n: _malformed(_fill("</TC260:AIGC>", n)), False),
    "dst-element-run": (lambda n: _malformed(_fill("DigitalSourceType>", n)), False),
    "dst-attr-open": (lambda n: _malformed(_fill('DigitalSourceType="', n)), False),
    "xmlns-open-quotes": (lambda n: "<x " + _fill("xmlns:a=\"xmlns:b='", n), False),
    "many-tc260-prefixes": (
        lambda n: "<x " + "".join(
            f'xmlns:p{i}="{TC260}" <p{i}:AIGC>'
            for i in range(max(1, n // (len(TC260) + 30)))), False),
    "blank-run-malformed": (lambda n: _malformed(" " * n + "<"), False),
    "lt-run": (lambda n: "<" * n, False),
    "entity-refs": (lambda n: _malformed("<TC260:AIGC>" + _fill("&#" + "9" * 40 + ";", n)),
                    False),
    "truncated-in-property": (lambda n: _malformed("<TC260:AIGC>" + "x" * n), False),
    "nested-aigc": (lambda n: _wellformed(_nested("<TC260:AIGC>", "</TC260:AIGC>", n)), True),
    "nested-dst": (lambda n: _wellformed(
        _nested("<Iptc4xmpExt:DigitalSourceType>", "</Iptc4xmpExt:DigitalSourceType>", n)),
        True),
    "many-aigc": (lambda n: _wellformed(
        _fill("<TC260:AIGC>" + LABEL_JSON.replace('"', "&quot;") + "</TC260:AIGC>", n)), True),
    "comment-of-tags": (lambda n: _wellformed("<!--" + _fill("<TC260:AIGC <rdf:Description ", n)
                                               + "-->"), True),
    "blank-run": (lambda n: _wellformed(" " * n), True),
    "blank-lines": (lambda n: _wellformed(_fill(" \t\r\n", n)), True),
    "deep-nesting": (lambda n: _wellformed(_nested("<a>", "</a>", n)), True),
    "many-elements": (lambda n: _wellformed(_fill("<a/>", n)), True),
    "long-attribute": (lambda n: _wellformed('<a b="' + "v" * n + '"/>'), True),
    "many-attributes": (lambda n: _wellformed(
        "<a " + " ".join(f'b{i}="1"' for i in range(max(1, n // len(f' b{n}="1"')))) + "/>"),
        True),
    "blank-in-tag": (lambda n: _wellformed("<a" + " " * n + "/>"), True),
}
#: The case reported in issue 11, used for the absolute time bound.
ISSUE_CASE = "unclosed-aigc"


def packet(name: str, size: int) -> bytes:
    """The packet ``name`` at about ``size`` bytes (never above it by more than a tag)."""
    build, _ = PACKETS[name]
    data = build(size - len(HEAD) - len(TAIL)).encode("utf-8")
    return data


# --------------------------------------------------------------------------- #
# Files
# --------------------------------------------------------------------------- #
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEYWORD = b"XML:com.adobe.xmp"
JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def tiny_png(*extra: bytes) -> bytes:
    """A 1x1 grey PNG with ``extra`` chunks before its IDAT."""
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    idat = png_chunk(b"IDAT", zlib.compress(b"\x00\x80"))
    return PNG_SIGNATURE + ihdr + b"".join(extra) + idat + png_chunk(b"IEND", b"")


def png_itxt(text: bytes, *, compressed: bool = False, keyword: bytes = XMP_KEYWORD) -> bytes:
    body = zlib.compress(text, 9) if compressed else text
    return png_chunk(b"iTXt", keyword + b"\x00" + bytes([int(compressed), 0]) + b"\x00\x00"
                     + body)


def tiny_jpeg(*segments: bytes) -> bytes:
    """A JPEG with ``segments`` after SOI and an empty scan (enough for the walker)."""
    return b"\xff\xd8" + b"".join(segments) + b"\xff\xda\x00\x02\x00\xff\xd9"


def jpeg_app1(packet: bytes) -> bytes:
    body = JPEG_XMP_HEADER + packet
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def tiny_webp(*chunks: bytes) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x04, 0, 0, 0]) + b"\x00" * 6
    body = b"WEBP" + vp8x + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def riff_chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) & 1 else b"")


def _jpeg_segments_of(name: str, size: int) -> bytes:
    """Issue 11's 1.1 MB JPEG: the packet cut into as many APP1 segments as it takes."""
    each = 0xFFFF - 2 - len(JPEG_XMP_HEADER)
    segs = []
    left = size
    while left > 0:
        segs.append(jpeg_app1(packet(name, min(each, left))))
        left -= each
    return tiny_jpeg(*segs)


#: name -> build(size) -> file bytes of about ``size`` bytes (compressed ones: of
#: about ``size`` bytes once inflated)
FILES = {
    "jpeg-app1-segments": lambda n: _jpeg_segments_of(ISSUE_CASE, n),
    "png-itxt": lambda n: tiny_png(png_itxt(packet(ISSUE_CASE, n))),
    "png-itxt-compressed": lambda n: tiny_png(png_itxt(packet(ISSUE_CASE, n), compressed=True)),
    "png-many-packets": lambda n: tiny_png(
        *[png_itxt(packet(ISSUE_CASE, 4096), compressed=True)] * max(1, n // 4096)),
    "png-bombs-other-keyword": lambda n: tiny_png(
        *[png_itxt(b" " * (4 << 20), compressed=True, keyword=b"Comment")] * max(1, n >> 18)),
    "png-many-bad-crc-chunks": lambda n: tiny_png(
        *[b"\x00\x00\x00\x00teXt\x00\x00\x00\x00"] * max(1, n // 12)),
    "jpeg-fill-bytes": lambda n: b"\xff\xd8" + b"\xff" * n + b"\xe1\x00\x02\xff\xd9",
    "jpeg-many-segments": lambda n: tiny_jpeg(*[b"\xff\xe2\x00\x02"] * max(1, n // 4)),
    "webp-xmp-chunk": lambda n: tiny_webp(riff_chunk(b"XMP ", packet(ISSUE_CASE, n))),
}
