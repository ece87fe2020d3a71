"""The PNG container: chunk walking, reading the label's text chunks, writing the label.

The XMP packet travels in an iTXt chunk keyed ``XML:com.adobe.xmp``; another
producer's plain copy of the label may sit in a tEXt/zTXt/iTXt chunk keyed
``AIGC``.  Reading walks the chunks (checking every CRC) and returns those texts;
writing updates or inserts the XMP chunk before the first IDAT and copies every
other chunk byte for byte.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from ._model import MAX_JSON_LENGTH, AIGCLabel, MetadataError
from ._xmp import MAX_XMP_BYTES, _new_xmp_packet, _too_many, _update_xmp, _XmpBudget

_MAX_AIGC_TEXTS = 16  # PNG text chunks keyed AIGC read per file
_MAX_CRC_REPORTS = 8  # bad-CRC chunks named one by one; the rest are counted

_XMP_PNG_KEYWORD = b"XML:com.adobe.xmp"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _inflate(blob: bytes, what: str, limit: int = MAX_XMP_BYTES) -> bytes:
    d = zlib.decompressobj()
    try:
        out = d.decompress(blob, limit)
    except zlib.error as exc:
        raise MetadataError(f"{what} is not valid zlib data ({exc})") from None
    if d.unconsumed_tail:
        raise MetadataError(f"{what} decompresses to more than {limit} bytes; not read")
    return out


@dataclass(frozen=True)
class _Chunk:
    """One chunk (PNG, or RIFF in WebP): its type, its data, and its bytes as stored
    (empty when the walker was asked for some types only)."""

    kind: bytes
    data: bytes
    raw: bytes


_U32 = struct.Struct(">I")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_chunks(
    data: bytes, problems: list[str], keep: tuple[bytes, ...] | None = None
) -> tuple[list[_Chunk], bytes, bool]:
    """(chunks, bytes after IEND, complete).  Problems are appended, never raised.

    ``keep``: the chunk types to return (with an empty ``raw``); every chunk's CRC
    is still checked.  None returns every chunk with its raw bytes (for writing).
    """
    chunks: list[_Chunk] = []
    view = memoryview(data)
    pos = len(_PNG_SIGNATURE)
    n = len(data)
    bad_crc = 0
    trailing, complete = b"", False
    while True:
        if pos + 12 > n:
            problems.append(f"PNG is truncated: it ends at byte {n} before the IEND chunk")
            break
        (length,) = _U32.unpack_from(data, pos)
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > n:
            problems.append(
                f"PNG is truncated: chunk {kind!r} at byte {pos} declares {length} bytes "
                f"but only {max(n - pos - 12, 0)} remain"
            )
            break
        if _U32.unpack_from(data, end - 4)[0] != zlib.crc32(view[pos + 4 : end - 4]):
            bad_crc += 1
            if bad_crc <= _MAX_CRC_REPORTS:
                problems.append(f"PNG chunk {kind!r} at byte {pos} has a bad CRC")
        if keep is None:
            chunks.append(_Chunk(kind, data[pos + 8 : pos + 8 + length], data[pos:end]))
        elif kind in keep:
            chunks.append(_Chunk(kind, data[pos + 8 : pos + 8 + length], b""))
        pos = end
        if kind == b"IEND":
            trailing, complete = data[pos:], True
            break
    if bad_crc > _MAX_CRC_REPORTS:
        problems.append(f"{bad_crc - _MAX_CRC_REPORTS} more PNG chunks have a bad CRC")
    return chunks, trailing, complete


def _png_keyword(chunk: _Chunk) -> bytes | None:
    """The keyword of a tEXt/zTXt/iTXt chunk, None if it has no terminator."""
    end = chunk.data.find(b"\x00", 0, 80)  # keywords are 1-79 bytes
    return None if end < 0 else chunk.data[:end]


def _png_text(chunk: _Chunk, limit: int = MAX_XMP_BYTES) -> tuple[bytes, bytes]:
    """(keyword, text bytes) of a tEXt/zTXt/iTXt chunk; ValueError if malformed.

    Compressed text is inflated to at most ``limit`` bytes (more is a ValueError).
    """
    keyword = _png_keyword(chunk)
    if keyword is None:
        raise MetadataError(
            f"{chunk.kind.decode('latin-1')} chunk has no keyword (1-79 bytes ended by a NUL)"
        )
    rest = chunk.data[len(keyword) + 1 :]
    if chunk.kind == b"tEXt":
        return keyword, rest
    if chunk.kind == b"zTXt":
        if not rest or rest[0] != 0:
            raise MetadataError("zTXt chunk uses an unknown compression method")
        return keyword, _inflate(rest[1:], f"zTXt chunk {keyword!r}", limit)
    # iTXt
    if len(rest) < 2:
        raise MetadataError(f"iTXt chunk {keyword!r} is too short")
    flag, method = rest[0], rest[1]
    parts = rest[2:].split(b"\x00", 2)
    if len(parts) != 3:
        raise MetadataError(f"iTXt chunk {keyword!r} lacks its language/translated-keyword fields")
    text = parts[2]
    if flag == 1:
        if method != 0:
            raise MetadataError(f"iTXt chunk {keyword!r} uses an unknown compression method")
        text = _inflate(text, f"iTXt chunk {keyword!r}", limit)
    return keyword, text


_TEXT_KINDS = (b"tEXt", b"zTXt", b"iTXt")
# Bytes of an AIGC text chunk read: any text longer is not a label (4 bytes a
# character is the most UTF-8 needs).
_AIGC_TEXT_BYTES = 4 * MAX_JSON_LENGTH + 4


def _png_extract(
    data: bytes, problems: list[str], budget: _XmpBudget
) -> tuple[list[bytes], list[str]]:
    chunks, _, _ = _png_chunks(data, problems, keep=_TEXT_KINDS)
    xmps: list[bytes] = []
    texts: list[str] = []
    aigc_seen = 0
    for ch in chunks:
        keyword = _png_keyword(ch)
        if keyword is None:
            problems.append(
                f"PNG text chunk: {ch.kind.decode('latin-1')} chunk has no keyword (1-79 "
                "bytes ended by a NUL)"
            )
            continue
        # Only the two keywords read here are decompressed: a file of many small
        # zlib bombs under other keywords costs nothing.
        if keyword == _XMP_PNG_KEYWORD:
            limit = budget.admit()
            if limit < 0:
                continue
        elif keyword.lower() == b"aigc":
            aigc_seen += 1
            if aigc_seen > _MAX_AIGC_TEXTS:
                continue
            limit = _AIGC_TEXT_BYTES
        else:
            continue
        try:
            keyword, text = _png_text(ch, limit)
        except ValueError as exc:
            why = str(exc)
            if limit < MAX_XMP_BYTES and why.endswith("; not read"):
                why += (f": with the file's earlier packets it passes the {MAX_XMP_BYTES} "
                        "bytes of XMP read per file")
            problems.append(f"PNG text chunk: {why}")
            continue
        if keyword == _XMP_PNG_KEYWORD:
            if ch.kind != b"iTXt":
                problems.append(
                    f"the XMP packet is in a {ch.kind.decode()} chunk; the PNG spec says iTXt"
                )
            if budget.take(len(text), problems):
                xmps.append(text)
        else:
            enc = "utf-8" if ch.kind == b"iTXt" else "latin-1"
            texts.append(text.decode(enc, errors="replace"))
    if aigc_seen > _MAX_AIGC_TEXTS:
        problems.append(_too_many(aigc_seen, "PNG text chunks keyed AIGC", _MAX_AIGC_TEXTS))
    return xmps, texts


def _png_write(data: bytes, label: AIGCLabel, value: str, replace_malformed: bool) -> bytes:
    problems: list[str] = []
    chunks, trailing, complete = _png_chunks(data, problems)
    if not complete:
        raise MetadataError(f"cannot write a label into this PNG: {problems[-1]}")
    if not chunks or chunks[0].kind != b"IHDR":
        raise MetadataError("cannot write a label into this PNG: its first chunk is not IHDR")
    out: list[bytes] = []
    xmp_done = False
    for ch in chunks:
        if ch.kind in _TEXT_KINDS:
            keyword = _png_keyword(ch)
            # an XMP packet in a tEXt or zTXt chunk is read too: update it as well
            # (rewritten as the iTXt chunk the PNG spec asks for), or a stale label
            # there would be the one read back
            is_xmp = keyword == _XMP_PNG_KEYWORD
            is_aigc = keyword is not None and keyword.lower() == b"aigc"
            text = None
            if is_xmp or is_aigc:  # other text chunks are copied without inflating
                try:
                    _, text = _png_text(ch, MAX_XMP_BYTES if is_xmp else _AIGC_TEXT_BYTES)
                except ValueError:
                    pass  # unreadable: copied as it is
            if is_xmp and text is not None:
                if xmp_done:
                    continue  # a second XMP packet would contradict the first: drop it
                packet = _update_xmp(text, value, replace_malformed=replace_malformed)
                out.append(_png_chunk(b"iTXt", _XMP_PNG_KEYWORD + b"\x00\x00\x00\x00\x00" + packet))
                xmp_done = True
                continue
            if is_aigc and text is not None:
                # another producer's plain-text copy of the label: keep it in step,
                # in the shape (wrapped or bare) it had
                wrapped = re.match(rb'\s*\{\s*"AIGC"', text) is not None
                new = label.to_json(wrapped=wrapped).encode("ascii")
                out.append(_png_chunk(b"tEXt", keyword + b"\x00" + new))
                continue
        if ch.kind in (b"IDAT", b"IEND") and not xmp_done:
            out.append(
                _png_chunk(
                    b"iTXt", _XMP_PNG_KEYWORD + b"\x00\x00\x00\x00\x00" + _new_xmp_packet(value)
                )
            )
            xmp_done = True
        out.append(ch.raw)
    return _PNG_SIGNATURE + b"".join(out) + trailing

