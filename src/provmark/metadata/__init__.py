"""The metadata implicit label of GB 45438-2025 (TC260-PG-20258A) for PNG, JPEG and WebP.

This package owns the ``{"AIGC": {...}}`` label: its fields and their validation
(:class:`AIGCLabel`), its XMP form (property ``TC260:AIGC`` in the namespace
``http://www.tc260.org.cn/ns/AIGC/1.0/`` next to IPTC's
``Iptc4xmpExt:DigitalSourceType``), byte-level writers and readers for the PNG,
JPEG and WebP containers that keep every other metadata block byte for byte
(:func:`write_label`, :func:`read_label`), atomic file helpers, and an HMAC
integrity code that ties the producer's fields to the watermark payload
(:func:`integrity_code`, :func:`verify_integrity`).  Of the rest of
:mod:`provmark` it imports only the exception root (its refusals are
:class:`MetadataError`, a :class:`provmark.ProvmarkError` and a ``ValueError``) and,
in the file helpers, the atomic writer; otherwise the Python standard library.

Its private modules split it by concern, each importing only those before it:
``_model`` (the label, its JSON and its integrity code), ``_xmp`` (the XMP packet:
reading, recovery from a malformed packet, updating, limits), then ``_png``,
``_jpeg`` and ``_webp`` (the containers); this file holds the public read and
write functions.  Import everything from :mod:`provmark.metadata`.

Field rules enforced here (the standard's character rule, and lengths chosen by
provmark since the standard gives none):

=================  ==========================================  ==========
JSON key           content                                     max length
=================  ==========================================  ==========
Label              ``"1"`` AI-generated, ``"2"`` possibly,     1
                   ``"3"`` suspected
ContentProducer    required, non-empty                         256
ProduceID          required, non-empty                         256
ReservedCode1      optional (provmark puts its integrity code)  256
ContentPropagator  optional                                    256
PropagateID        optional                                    256
ReservedCode2      optional                                    256
=================  ==========================================  ==========

Every value is printable ASCII (``!`` to ``~``) without ``"`` and ``\\``; space is
not allowed.

Two JSON shapes exist.  GB 45438 Annex E wraps the fields, ``{"AIGC":{"Label":..}}``,
which is how a plain key/value slot such as a PNG text chunk keyed ``AIGC`` carries
them.  Inside XMP the property is already named ``TC260:AIGC``, and the TC260
practice guide's own sample code (exempi ``set_property(ns, "AIGC",
'{"Label":..,"ContentProducer":..}')``) and the files of Chinese generators
seen in the wild hold the bare object ``{"Label":..}``.  :func:`write_label`
therefore writes the bare object into XMP by default (``wrapped_json=True`` gives
the wrapped form), and every reader here accepts both shapes without complaint.

The files read here are untrusted, so every reader takes time linear in the size of
its input (no regular expression or loop here rescans text it has passed; a test
times 1 MB against 4 MB of hostile XMP) and keeps a bounded amount of it:

=========================  ========  ================================================
limit                      value     above it
=========================  ========  ================================================
``MAX_XMP_BYTES``          4 MiB     XMP bytes parsed per file, all packets together
                                     (after decompression): a packet that does not
                                     fit is not parsed, and a problem says so
``MAX_XMP_PACKETS``        16        XMP packets read per file; more are counted
``MAX_XML_ATTRIBUTES``     4096      attributes on one XML element: a packet with
                                     more is searched as text, not parsed as XML
``MAX_JSON_LENGTH``        8192      characters of label JSON parsed; longer JSON is
                                     reported and shown cut to this length
``MAX_AIGC_PROPERTIES``    4         ``TC260:AIGC`` properties read per XMP packet
                                     (and PNG text chunks keyed ``AIGC`` per file:
                                     16); more are counted
``MAX_PROBLEMS``           40        problem lines kept; the rest are counted
=========================  ========  ================================================
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from ._jpeg import _jpeg_extract, _jpeg_write
from ._model import (
    LABEL_MEANINGS,
    MAX_FIELD_LENGTH,
    MAX_JSON_LENGTH,
    AIGCLabel,
    MetadataError,
    _parse_label_json,
    integrity_code,
    sign_label,
    verify_integrity,
)
from ._png import _PNG_SIGNATURE, _png_extract, _png_write
from ._webp import _webp_extract, _webp_write
from ._xmp import (
    DIGITAL_SOURCE_TYPE_TRAINED,
    IPTC_EXT_NAMESPACE,
    MAX_AIGC_PROPERTIES,
    MAX_XML_ATTRIBUTES,
    MAX_XMP_BYTES,
    MAX_XMP_PACKETS,
    TC260_NAMESPACE,
    TC260_PREFIX,
    _read_xmp,
    _XmpBudget,
)

# The XMP helpers that tests check against slow references and fuzz directly,
# reachable here as they were when this package was one module.
from ._xmp import (  # noqa: F401
    RDF_NAMESPACE,
    _decode_packet,
    _free_prefix,
    _is_iptc_ext_ns,
    _is_tc260_ns,
    _new_xmp_packet,
    _property_census,
    _scan_xmp_text,
    _split,
    _unescape,
    _update_xmp,
    _xmp_description,
)

__all__ = [
    "AIGCLabel",
    "MetadataError",
    "LabelReading",
    "write_label",
    "read_label",
    "write_label_file",
    "read_label_file",
    "integrity_code",
    "verify_integrity",
    "sign_label",
    "TC260_NAMESPACE",
    "TC260_PREFIX",
    "IPTC_EXT_NAMESPACE",
    "DIGITAL_SOURCE_TYPE_TRAINED",
    "LABEL_MEANINGS",
    "MAX_FIELD_LENGTH",
    "MAX_JSON_LENGTH",
    "MAX_XMP_BYTES",
    "MAX_XMP_PACKETS",
    "MAX_XML_ATTRIBUTES",
    "MAX_AIGC_PROPERTIES",
    "MAX_PROBLEMS",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Problem lines kept in a :class:`LabelReading`.
MAX_PROBLEMS = 40
_MAX_SHOWN_DST = 1024  # characters of DigitalSourceType kept in a reading


# --------------------------------------------------------------------------- #
# Results
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class LabelReading:
    """What :func:`read_label` found.

    Attributes
    ----------
    label : AIGCLabel or None
        The valid label, or None when none was found or it is invalid.
    source : str or None
        Where it was found: ``"xmp"`` (TC260:AIGC in the XMP packet) or
        ``"png-text"`` (a PNG tEXt/zTXt/iTXt chunk keyed ``AIGC``); None if nothing.
    raw_json : str or None
        The JSON string as stored (from the chosen source), wrapped
        ``{"AIGC":{..}}`` or bare ``{"Label":..}``; cut to
        :data:`MAX_JSON_LENGTH` characters, with a note, when longer.
    problems : tuple of str
        Human-readable problems: malformed JSON or XMP, invalid fields, truncated
        container, disagreeing copies, limits reached.  Empty for a clean file.
        At most :data:`MAX_PROBLEMS`.
    digital_source_type : str or None
        ``Iptc4xmpExt:DigitalSourceType`` if present (cut to 1024 characters).
    container : str
        ``"png"``, ``"jpeg"`` or ``"webp"``.
    declared_label : str or None
        The ``Label`` value ("1"/"2"/"3") when it is valid, even if other fields
        make :attr:`label` None.
    """

    label: AIGCLabel | None
    source: str | None
    raw_json: str | None
    problems: tuple[str, ...]
    digital_source_type: str | None
    container: str
    declared_label: str | None = None

    @property
    def found(self) -> bool:
        """True when a valid label was read."""
        return self.label is not None

    @property
    def state(self) -> str:
        """``"valid"`` (a valid label), ``"invalid"`` (label JSON is there but is not
        a valid label) or ``"absent"`` (no label JSON at all: stripped or never
        written).  An absent label is not an invalid one; say so in reports."""
        if self.label is not None:
            return "valid"
        return "invalid" if self.raw_json is not None else "absent"


# --------------------------------------------------------------------------- #
# Container sniffing
# --------------------------------------------------------------------------- #
def _sniff(data: bytes) -> str:
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    if data[:4] == b"RIFF":
        if data[8:12] == b"WEBP":
            return "webp"
        raise MetadataError(
            f"unsupported image format: a RIFF file of type {data[8:12]!r}, not WebP; "
            "provmark writes and reads labels in PNG, JPEG and WebP"
        )
    raise MetadataError(
        f"unsupported image format (first bytes {data[:12]!r}); provmark writes and "
        "reads labels in PNG, JPEG and WebP"
    )


def _bytes_of(data: object) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(
        f"data must be the bytes of an image file, got {type(data).__name__}; use "
        "read_label_file/write_label_file for paths"
    )


# --------------------------------------------------------------------------- #
# Public read / write
# --------------------------------------------------------------------------- #
def write_label(
    data: bytes,
    label: AIGCLabel,
    *,
    wrapped_json: bool = False,
    replace_malformed_xmp: bool = False,
) -> bytes:
    """Return the image file ``data`` with ``label`` written as XMP.

    PNG: an iTXt chunk keyed ``XML:com.adobe.xmp`` (before the first IDAT).
    JPEG: the standard XMP APP1 segment (after the JFIF/Exif segments).
    WebP: an ``XMP `` chunk, converting a simple file to the extended (VP8X)
    layout and setting its XMP flag.  Every other chunk or segment (EXIF, ICC
    profile, text, unknown) is copied byte for byte.  An existing XMP packet is
    updated in place: its ``TC260:AIGC`` and ``Iptc4xmpExt:DigitalSourceType`` are
    replaced and all its other properties kept.  A PNG text chunk keyed ``AIGC``
    (another producer's plain copy) is rewritten with the new JSON, in the shape
    it had, so the two copies agree.  Pixels are never decoded.

    Parameters
    ----------
    data : bytes
        A PNG, JPEG or WebP file.
    label : AIGCLabel
    wrapped_json : bool, optional
        Put ``{"AIGC":{"Label":..}}`` into ``TC260:AIGC`` instead of the bare
        ``{"Label":..}`` that the TC260 practice guide's sample code and current
        generators write (see the module docstring).
    replace_malformed_xmp : bool, optional
        If the file's XMP packet is not well-formed, replace it with a fresh one
        instead of raising.

    Raises
    ------
    ValueError
        Unknown format, a truncated or malformed container, or an existing XMP
        packet that cannot be updated safely.

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.new("RGB", (8, 8)).save(buf, "PNG")
    >>> out = write_label(buf.getvalue(), AIGCLabel("1", "ACME", "id-1"))
    >>> read_label(out).label.produce_id
    'id-1'
    """
    if not isinstance(label, AIGCLabel):
        raise TypeError(f"label must be an AIGCLabel, got {type(label).__name__}")
    data = _bytes_of(data)
    fmt = _sniff(data)
    writer = {"png": _png_write, "jpeg": _jpeg_write, "webp": _webp_write}[fmt]
    return writer(data, label, label.to_json(wrapped=wrapped_json), replace_malformed_xmp)


def read_label(data: bytes) -> LabelReading:
    """Read the GB 45438 metadata label from a PNG, JPEG or WebP file.

    Looks at the XMP packet (``TC260:AIGC`` in attribute or element form; a packet
    that is not well-formed XML is searched as text) and at PNG tEXt/zTXt/iTXt
    chunks keyed ``AIGC``.  XMP wins when both exist; disagreement is reported.
    Malformed content never raises: it gives ``label=None`` (or a label) and a
    line in ``problems``.  Time is linear in the size of ``data`` and what is
    read is bounded (the limits are in the module docstring): a file made to
    slow the reader down is read or refused in well under a second per 4 MB of
    XMP.

    Raises
    ------
    ValueError
        Only when ``data`` is not a PNG, JPEG or WebP file at all.
    """
    data = _bytes_of(data)
    fmt = _sniff(data)
    problems: list[str] = []
    extract = {"png": _png_extract, "jpeg": _jpeg_extract, "webp": _webp_extract}[fmt]
    budget = _XmpBudget()
    xmps, texts = extract(data, problems, budget)
    budget.finish(problems)

    candidates: list[tuple[str, str]] = []
    dst: str | None = None
    for packet in xmps:
        found, packet_dst, more = _read_xmp(packet)
        problems += [f"xmp: {p}" for p in more]
        candidates += [("xmp", c) for c in found]
        dst = dst or packet_dst
    candidates += [("png-text", t) for t in texts]
    dst = _clip(dst, _MAX_SHOWN_DST)
    if not candidates:
        return LabelReading(None, None, None, _bounded(problems), dst, fmt)

    parsed = []
    for source, raw in candidates:
        lab, probs, declared = _parse_label_json(raw)
        parsed.append((source, raw, lab, probs, declared))
    chosen = next((p for p in parsed if p[2] is not None), parsed[0])
    source, raw, lab, _, declared = chosen
    for src, _raw, _lab, probs, _ in parsed:
        problems += [f"{src}: {p}" for p in probs]
    valid = [p for p in parsed if p[2] is not None]
    last: list[str] = []  # kept even when the other problems are cut
    if len({p[2] for p in valid}) > 1:
        where = "; ".join(
            f"{p[0]} has Label {p[2].label}, ContentProducer {p[2].content_producer}, "
            f"ProduceID {p[2].produce_id}"
            for p in valid[:4]
        ) + (f"; {len(valid) - 4} more" if len(valid) > 4 else "")
        last.append(
            f"the file holds labels that disagree ({where}); using the one from {source}"
        )
    if declared is None:
        declared = next((p[4] for p in parsed if p[4] is not None), None)
    raw = _clip(raw, MAX_JSON_LENGTH)
    return LabelReading(lab, source, raw, _bounded(problems, last), dst, fmt, declared)


def _bounded(problems: list[str], last: list[str] = ()) -> tuple[str, ...]:
    """``problems + last`` in at most :data:`MAX_PROBLEMS` lines: when ``problems``
    has to be cut, a line counts what was left out; ``last`` is always kept."""
    room = MAX_PROBLEMS - len(last)
    if len(problems) > room:
        problems = [*problems[: room - 1], f"{len(problems) - room + 1} more problems not listed"]
    return (*problems, *last)


def _clip(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more characters not shown]"


def read_label_file(path: PathLike) -> LabelReading:
    """:func:`read_label` on the file at ``path``."""
    p = Path(path)
    data = p.read_bytes()
    try:
        return read_label(data)
    except ValueError as exc:
        raise MetadataError(f"{p}: {exc}") from None


def write_label_file(
    src: PathLike,
    dst: PathLike,
    label: AIGCLabel,
    *,
    allow_same_file: bool = False,
    wrapped_json: bool = False,
    replace_malformed_xmp: bool = False,
) -> Path:
    """Write a labelled copy of ``src`` to ``dst`` atomically.

    The output goes to a temporary file in ``dst``'s directory, is flushed to
    disk and then renamed over ``dst`` (:func:`os.replace`), so a reader never
    sees a half-written file.  The new file takes ``dst``'s permission bits if
    it existed, else ``src``'s.

    Parameters
    ----------
    src, dst : str or path
    label : AIGCLabel
    allow_same_file : bool, optional
        ``dst`` may be ``src`` itself (labelling in place); refused by default.
    wrapped_json, replace_malformed_xmp : bool, optional
        See :func:`write_label`.

    Returns
    -------
    pathlib.Path
        ``dst``.
    """
    src_p, dst_p = Path(src), Path(dst)
    same = src_p.resolve() == dst_p.resolve() or (
        dst_p.exists() and src_p.exists() and os.path.samefile(src_p, dst_p)
    )
    if same and not allow_same_file:
        raise MetadataError(
            f"dst {dst_p} is the same file as src; pass allow_same_file=True to label it in place"
        )
    try:
        out = write_label(
            src_p.read_bytes(),
            label,
            wrapped_json=wrapped_json,
            replace_malformed_xmp=replace_malformed_xmp,
        )
    except ValueError as exc:
        raise MetadataError(f"{src_p}: {exc}") from None
    mode_from = dst_p if dst_p.exists() else src_p
    mode = stat.S_IMODE(os.stat(mode_from).st_mode)
    from .._io import atomic_output

    with atomic_output(dst_p, mode) as fh:
        fh.write(out)
    return dst_p
