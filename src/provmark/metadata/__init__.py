"""The metadata implicit label of GB 45438-2025 (TC260-PG-20258A) for PNG, JPEG and WebP.

This module owns the ``{"AIGC": {...}}`` label: its fields and their validation
(:class:`AIGCLabel`), its XMP form (property ``TC260:AIGC`` in the namespace
``http://www.tc260.org.cn/ns/AIGC/1.0/`` next to IPTC's
``Iptc4xmpExt:DigitalSourceType``), byte-level writers and readers for the PNG,
JPEG and WebP containers that keep every other metadata block byte for byte
(:func:`write_label`, :func:`read_label`), atomic file helpers, and an HMAC
integrity code that ties the producer's fields to the watermark payload
(:func:`integrity_code`, :func:`verify_integrity`).  It imports nothing from the
rest of :mod:`provmark` and only the Python standard library.

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

import base64
import dataclasses
import hashlib
import hmac
import html
import json
import os
import re
import stat
import struct
import xml.etree.ElementTree as ET
from xml.parsers import expat
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Union
from xml.sax.saxutils import escape as _xml_escape

__all__ = [
    "AIGCLabel",
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

TC260_NAMESPACE = "http://www.tc260.org.cn/ns/AIGC/1.0/"
TC260_PREFIX = "TC260"
IPTC_EXT_NAMESPACE = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
DIGITAL_SOURCE_TYPE_TRAINED = (
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
)
RDF_NAMESPACE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"

#: Meaning of each value of ``Label``.
LABEL_MEANINGS = {
    "1": "AI-generated",
    "2": "possibly AI-generated",
    "3": "suspected AI-generated",
}
#: Longest value accepted for any field other than ``Label`` (characters).
MAX_FIELD_LENGTH = 256
#: Longest label JSON parsed (characters).  A label of 7 fields at the maximum
#: length is under 2 000 characters; anything longer is not a label.
MAX_JSON_LENGTH = 8192
#: XMP bytes parsed per file, every packet together (after decompression).
MAX_XMP_BYTES = 4 * 1024 * 1024
#: XMP packets read per file (PNG iTXt chunks, JPEG APP1 segments, WebP chunks).
MAX_XMP_PACKETS = 16
#: Attributes on one XML element; expat slows down super-linearly beyond.
MAX_XML_ATTRIBUTES = 4096
#: ``TC260:AIGC`` properties read per XMP packet.
MAX_AIGC_PROPERTIES = 4
#: Problem lines kept in a :class:`LabelReading`.
MAX_PROBLEMS = 40
_MAX_AIGC_TEXTS = 16  # PNG text chunks keyed AIGC read per file
_MAX_CRC_REPORTS = 8  # bad-CRC chunks named one by one; the rest are counted
_MAX_PREFIXES = 8  # TC260/IPTC/RDF prefixes a packet may declare for the writer
_MAX_SHOWN_DST = 1024  # characters of DigitalSourceType kept in a reading

_XMP_PNG_KEYWORD = b"XML:com.adobe.xmp"
_JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_INTEGRITY_PREFIX = "pm1:"
_MAC_DOMAIN = b"provmark/TC260-ReservedCode1/v1\x00"
_MAC_BYTES = 16  # 128-bit tag -> 26 base32 characters

# (attribute name, JSON key, required)
_FIELDS = (
    ("label", "Label", True),
    ("content_producer", "ContentProducer", True),
    ("produce_id", "ProduceID", True),
    ("reserved_code1", "ReservedCode1", False),
    ("content_propagator", "ContentPropagator", False),
    ("propagate_id", "PropagateID", False),
    ("reserved_code2", "ReservedCode2", False),
)
_JSON_KEYS = tuple(k for _, k, _ in _FIELDS)
_PRODUCER_KEYS = ("Label", "ContentProducer", "ProduceID")


# --------------------------------------------------------------------------- #
# Field validation
# --------------------------------------------------------------------------- #
def _describe_char(ch: str) -> str:
    if ch == " ":
        return "a space"
    if ch == '"':
        return 'a double quote (")'
    if ch == "\\":
        return "a backslash (\\)"
    code = ord(ch)
    if code < 0x20 or code == 0x7F:
        return f"the control character U+{code:04X}"
    return f"the non-ASCII character {ch!r} (U+{code:04X})"


def _value_problem(key: str, value: object, *, required: bool) -> str | None:
    """Return why ``value`` is not acceptable for the field ``key``, or None."""
    if not isinstance(value, str):
        return f"{key} must be a string, got {type(value).__name__} {value!r:.40}"
    if key == "Label":
        if value not in LABEL_MEANINGS:
            return (
                f'Label must be "1" (AI-generated), "2" (possibly) or "3" (suspected), '
                f"got {value!r:.40}"
            )
        return None
    if required and not value:
        return f"{key} is empty; GB 45438 requires it"
    if len(value) > MAX_FIELD_LENGTH:
        return f"{key} is {len(value)} characters long; the maximum is {MAX_FIELD_LENGTH}"
    for i, ch in enumerate(value):
        if not ("!" <= ch <= "~") or ch in '"\\':
            return (
                f"{key} contains {_describe_char(ch)} at position {i}; only printable "
                'ASCII without space, " and \\ is allowed'
            )
    return None


# --------------------------------------------------------------------------- #
# The label
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class AIGCLabel:
    """The seven fields of the GB 45438 metadata label.

    Parameters
    ----------
    label : str
        ``"1"`` AI-generated, ``"2"`` possibly AI-generated, ``"3"`` suspected.
    content_producer : str
        Name or code of the service that generated the content (required).
    produce_id : str
        The producer's unique ID of this piece of content (required).
    reserved_code1 : str, optional
        Producer's protection code; :func:`sign_label` stores an integrity code here.
    content_propagator, propagate_id, reserved_code2 : str, optional
        Filled by a platform that spreads the content (:meth:`with_propagator`).

    Raises
    ------
    ValueError
        If a field breaks the rules in the module docstring; the message names the
        JSON key of each bad field and what is wrong with it.

    Examples
    --------
    >>> lab = AIGCLabel("1", "001191440300MA5DXXXX00000", "img-20250901-0001")
    >>> lab.to_json()[:46]
    '{"AIGC":{"Label":"1","ContentProducer":"001191'
    >>> AIGCLabel.from_json(lab.to_json()) == lab
    True
    """

    label: str
    content_producer: str
    produce_id: str
    reserved_code1: str = ""
    content_propagator: str = ""
    propagate_id: str = ""
    reserved_code2: str = ""

    def __post_init__(self) -> None:
        problems = [
            p
            for attr, key, required in _FIELDS
            if (p := _value_problem(key, getattr(self, attr), required=required))
        ]
        if problems:
            raise ValueError("invalid AIGC label: " + "; ".join(problems))

    @property
    def meaning(self) -> str:
        """Plain-English meaning of :attr:`label`."""
        return LABEL_MEANINGS[self.label]

    def to_dict(self) -> dict[str, str]:
        """The inner ``AIGC`` object, keys in the standard's order."""
        return {key: getattr(self, attr) for attr, key, _ in _FIELDS}

    def to_json(self, *, wrapped: bool = True) -> str:
        """Compact JSON with all seven keys in the standard's order.

        ``wrapped=True`` gives ``{"AIGC":{"Label":..}}`` (GB 45438 Annex E);
        ``wrapped=False`` gives the bare ``{"Label":..}`` that goes into the XMP
        property ``TC260:AIGC``.
        """
        obj = {"AIGC": self.to_dict()} if wrapped else self.to_dict()
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> AIGCLabel:
        """Parse and strictly validate ``{"AIGC":{...}}`` or the bare ``{"Label":..}``.

        Strict means: valid JSON, ``Label``, ``ContentProducer`` and ``ProduceID``
        present, every value a valid string, no unknown or duplicate key.  Missing
        optional keys read as ``""``.

        Raises
        ------
        ValueError
            Naming each problem (field and what is wrong).
        """
        label, problems, _ = _parse_label_json(text)
        if problems or label is None:
            raise ValueError("invalid AIGC label JSON: " + "; ".join(problems))
        return label

    def with_propagator(
        self, content_propagator: str, propagate_id: str, reserved_code2: str = ""
    ) -> AIGCLabel:
        """Return a copy with the propagator's fields set; producer fields are unchanged.

        Raises
        ------
        ValueError
            If ``content_propagator`` or ``propagate_id`` is empty or invalid.
        """
        problems = [
            p
            for key, value in (
                ("ContentPropagator", content_propagator),
                ("PropagateID", propagate_id),
            )
            if (p := _value_problem(key, value, required=True))
        ]
        if problems:
            raise ValueError("invalid propagator fields: " + "; ".join(problems))
        return dataclasses.replace(
            self,
            content_propagator=content_propagator,
            propagate_id=propagate_id,
            reserved_code2=reserved_code2,
        )


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKeyError(key)
        seen[key] = value
    return seen


def _parse_label_json(text: str | bytes) -> tuple[AIGCLabel | None, list[str], str | None]:
    """Lenient parse: (label or None, problems, declared Label value or None).

    ``label`` is None when the fields cannot make a valid :class:`AIGCLabel`;
    problems that do not prevent that (unknown keys, a numeric Label) are
    reported but the label is still returned.  Both the wrapped ``{"AIGC":{..}}``
    and the bare ``{"Label":..}`` shapes are accepted without a problem.
    """
    problems: list[str] = []
    if isinstance(text, (bytes, bytearray)):
        if len(text) > 4 * MAX_JSON_LENGTH + 3:  # longer than any UTF-8 of that length
            return (
                None,
                [f"AIGC JSON is {len(text)} bytes long, more than any valid label needs; "
                 "not parsed"],
                None,
            )
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return None, [f"AIGC JSON is not UTF-8 ({exc})"], None
    if len(text) > MAX_JSON_LENGTH:
        return (
            None,
            [
                f"AIGC JSON is {len(text)} characters long, more than the {MAX_JSON_LENGTH} "
                "any valid label needs; not parsed"
            ],
            None,
        )
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKeyError as exc:
        return None, [f"AIGC JSON has the key {exc.args[0]!r} more than once"], None
    except (ValueError, RecursionError) as exc:
        return None, [f"AIGC JSON is not valid JSON ({exc})"], None
    if not isinstance(obj, dict):
        return (
            None,
            [
                'AIGC JSON must be an object, {"AIGC":{..}} or {"Label":..}, got a '
                f"{type(obj).__name__}"
            ],
            None,
        )
    if "AIGC" in obj:
        extra = sorted(k for k in obj if k != "AIGC")
        if extra:
            problems.append(f"unexpected top-level key(s) {extra} next to AIGC; ignored")
        inner = obj["AIGC"]
        if not isinstance(inner, dict):
            return (
                None,
                [*problems, f"the value of AIGC must be an object, got a {type(inner).__name__}"],
                None,
            )
    elif "Label" in obj:
        inner = obj  # the bare form used inside XMP (TC260 practice guide)
    else:
        keys = sorted(obj)[:10]
        return (
            None,
            [f"AIGC JSON has neither an AIGC nor a Label key (top-level keys: {keys})"],
            None,
        )

    unknown = sorted(k for k in inner if k not in _JSON_KEYS)
    if unknown:
        problems.append(f"unknown key(s) {unknown} in AIGC; ignored")

    values: dict[str, str] = {}
    fatal = False
    declared: str | None = None
    for attr, key, required in _FIELDS:
        if key not in inner:
            if required:
                problems.append(f"{key} is missing; GB 45438 requires it")
                fatal = True
            values[attr] = ""
            continue
        value = inner[key]
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if key == "Label" and is_int and str(value) in LABEL_MEANINGS:
            problems.append(f'Label is the number {value}; it must be the string "{value}"')
            value = str(value)
        problem = _value_problem(key, value, required=required)
        if problem:
            problems.append(problem)
            fatal = True
        elif key == "Label":
            declared = value
        values[attr] = value if isinstance(value, str) else ""
    if fatal:
        return None, problems, declared
    return AIGCLabel(**values), problems, declared


# --------------------------------------------------------------------------- #
# Integrity code (ReservedCode1)
# --------------------------------------------------------------------------- #
def _producer_values(label_fields: AIGCLabel | Mapping[str, str]) -> list[tuple[str, str]]:
    if isinstance(label_fields, AIGCLabel):
        d = label_fields.to_dict()
    elif isinstance(label_fields, Mapping):
        d = dict(label_fields.get("AIGC", label_fields))  # accept the wrapper too
    else:
        raise TypeError(
            "label_fields must be an AIGCLabel or a mapping of JSON keys "
            f"(Label, ContentProducer, ProduceID), got {type(label_fields).__name__}"
        )
    out = []
    for key in _PRODUCER_KEYS:
        if key not in d:
            raise ValueError(f"label_fields has no {key}; it is part of the integrity code")
        problem = _value_problem(key, d[key], required=True)
        if problem:
            raise ValueError(problem)
        out.append((key, d[key]))
    return out


def _as_bytes(name: str, value: object, *, allow_empty: bool) -> bytes:
    if isinstance(value, str) or not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be bytes, got {type(value).__name__}")
    b = bytes(value)
    if not allow_empty and not b:
        raise ValueError(f"{name} must not be empty")
    return b


def _mac_message(label_fields: AIGCLabel | Mapping[str, str], payload: bytes) -> bytes:
    parts = [_MAC_DOMAIN]
    for key, value in _producer_values(label_fields):
        raw = value.encode("ascii")
        parts += [key.encode("ascii"), b"=", struct.pack(">I", len(raw)), raw]
    parts += [b"payload=", struct.pack(">I", len(payload)), payload]
    return b"".join(parts)


def integrity_code(
    label_fields: AIGCLabel | Mapping[str, str], payload_bytes: bytes, key: bytes
) -> str:
    """Integrity code for ``ReservedCode1``: ``"pm1:"`` + 26 base32 characters.

    HMAC-SHA256 (truncated to 128 bits) over a length-prefixed serialisation of
    the producer fields ``Label``, ``ContentProducer``, ``ProduceID`` and of the
    watermark payload bytes.  ``ReservedCode1`` itself and the propagator fields
    are not covered, so a platform may add its fields without breaking the code.

    Parameters
    ----------
    label_fields : AIGCLabel or mapping
        The label, or a mapping with the JSON keys (``{"AIGC": {...}}`` accepted).
    payload_bytes : bytes
        The watermark payload the image carries (may be empty).
    key : bytes
        Secret HMAC key (non-empty).

    Examples
    --------
    >>> lab = AIGCLabel("1", "ACME", "id-1")
    >>> code = integrity_code(lab, b"\\x01\\x02", b"secret")
    >>> code.startswith("pm1:"), len(code)
    (True, 30)
    """
    payload = _as_bytes("payload_bytes", payload_bytes, allow_empty=True)
    k = _as_bytes("key", key, allow_empty=False)
    tag = hmac.new(k, _mac_message(label_fields, payload), hashlib.sha256).digest()
    return _INTEGRITY_PREFIX + base64.b32encode(tag[:_MAC_BYTES]).decode("ascii").rstrip("=")


def sign_label(label: AIGCLabel, payload_bytes: bytes, key: bytes) -> AIGCLabel:
    """Return ``label`` with ``ReservedCode1`` set to :func:`integrity_code`."""
    return dataclasses.replace(label, reserved_code1=integrity_code(label, payload_bytes, key))


def verify_integrity(label: AIGCLabel, payload_bytes: bytes, key: bytes) -> bool | None:
    """Check the provmark integrity code in ``label.reserved_code1``.

    Returns
    -------
    bool or None
        None when ``ReservedCode1`` holds no provmark code (empty, another
        producer's content, or a future ``pmN:`` version this release cannot
        check); True when it matches; False when it is a ``pm1:`` code that does
        not match (wrong key, changed producer fields or a different payload).
    """
    code = label.reserved_code1
    if not code.startswith(_INTEGRITY_PREFIX):
        return None
    return hmac.compare_digest(code, integrity_code(label, payload_bytes, key))


# --------------------------------------------------------------------------- #
# XMP
# --------------------------------------------------------------------------- #
def _xmp_description(
    value: str, rdf: str = "rdf", tc260: str = TC260_PREFIX, iptc: str = "Iptc4xmpExt"
) -> str:
    return (
        f'<{rdf}:Description {rdf}:about=""\n'
        f'    xmlns:{tc260}="{TC260_NAMESPACE}"\n'
        f'    xmlns:{iptc}="{IPTC_EXT_NAMESPACE}">\n'
        f"   <{tc260}:AIGC>{_xml_escape(value)}</{tc260}:AIGC>\n"
        f"   <{iptc}:DigitalSourceType>{DIGITAL_SOURCE_TYPE_TRAINED}"
        f"</{iptc}:DigitalSourceType>\n"
        f"  </{rdf}:Description>"
    )


def _free_prefix(text: str, wanted: str, predicate) -> str:
    """``wanted``, or ``wanted_2``, ``wanted_3``... if the packet binds ``wanted`` to
    another namespace anywhere: the prefixes the writer adds must not collide, or
    the next update, which finds properties by prefix in the text, would take that
    namespace's properties for its own (and refuse)."""
    bound: dict[str, set[str]] = {}
    for prefix, dq, sq in _DECL_RE.findall(text):
        bound.setdefault(prefix, set()).add(dq or sq)
    name, i = wanted, 1
    while any(not predicate(uri) for uri in bound.get(name, ())):
        i += 1
        name = f"{wanted}_{i}"
    return name


def _new_xmp_packet(value: str) -> bytes:
    text = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="provmark">\n'
        f' <rdf:RDF xmlns:rdf="{RDF_NAMESPACE}">\n'
        f"  {_xmp_description(value)}\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )
    return text.encode("utf-8")


def _is_tc260_ns(uri: str) -> bool:
    u = uri.strip().lower().rstrip("/")
    return u in ("http://www.tc260.org.cn/ns/aigc/1.0", "https://www.tc260.org.cn/ns/aigc/1.0")


def _is_iptc_ext_ns(uri: str) -> bool:
    return uri.strip().rstrip("/") == IPTC_EXT_NAMESPACE.rstrip("/")


def _split(name: str) -> tuple[str, str]:
    if name.startswith("{"):
        ns, _, local = name[1:].partition("}")
        return ns, local
    return "", name


# An element with more than MAX_XML_ATTRIBUTES attributes: a start tag followed by that
# many ``name="value"`` pairs.  Each part of a pair stops where the next cannot start,
# so backtracking out of a failed attempt costs one step a character, and a value
# cannot hold "<": an attempt costs the length of one tag and tags do not overlap.
# (No atomic groups: they need Python 3.11.)
_MANY_ATTRIBUTES_RE = re.compile(
    rb"<[^\s<>/!?]+(?:\s+[^\s<>=/]+\s*=\s*(?:\"[^\"<]*\"|'[^'<]*')){%d}"
    % (MAX_XML_ATTRIBUTES + 1)
)


def _check_packet(packet: bytes) -> bytes:
    """The packet without trailing padding; ValueError if it must not be parsed."""
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        raise ValueError("it contains a DOCTYPE/ENTITY declaration, which XMP forbids")
    # (an element with that many attributes has as many "=": count them first)
    if packet.count(b"=") > MAX_XML_ATTRIBUTES and _MANY_ATTRIBUTES_RE.search(packet):
        raise ValueError(
            f"an element has more than {MAX_XML_ATTRIBUTES} attributes, which no XMP "
            "writer produces"
        )
    return packet.rstrip(b"\x00 \t\r\n")


def _xml_root(packet: bytes) -> ET.Element:
    """Parse an XMP packet; ET.ParseError / ValueError if it is not acceptable XML."""
    return ET.fromstring(_check_packet(packet))


def _decode_packet(packet: bytes) -> str:
    if packet.startswith(b"\xef\xbb\xbf"):
        packet = packet[3:]
    return packet.decode("utf-8", errors="replace")


# A numeric character reference with more digits than any code point has: int()
# refuses strings over 4300 digits (and is quadratic below), so html.unescape would
# raise on them.  They stand for no character; read them as U+FFFD as it does for
# other out-of-range references.
_LONG_CHARREF_RE = re.compile(r"&#(?:[xX][0-9a-fA-F]{9,}|[0-9]{11,});?")


def _unescape(text: str) -> str:
    """:func:`html.unescape` that cannot fail (overlong numeric references)."""
    return html.unescape(_LONG_CHARREF_RE.sub("\ufffd", text))


def _clip(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more characters not shown]"


def _too_many(count: int, what: str, limit: int) -> str:
    return f"{what}: {count} found, only the first {limit} were read"


def _read_xmp(packet: bytes) -> tuple[list[str], str | None, list[str]]:
    """Label JSON candidates, DigitalSourceType and problems from one XMP packet.

    At most :data:`MAX_AIGC_PROPERTIES` candidates are returned (document order:
    an element's attributes, then its text); more are counted in a problem.
    """
    if len(packet) > MAX_XMP_BYTES:
        return (
            [],
            None,
            [f"XMP packet of {len(packet)} bytes is larger than {MAX_XMP_BYTES}; not parsed"],
        )
    try:
        return _XmpReader().read(_check_packet(packet))
    except (expat.ExpatError, ValueError) as exc:
        why = (
            f"is not well-formed XML ({exc})"
            if isinstance(exc, expat.ExpatError)
            else f"was not parsed: {exc}"
        )
        problem = f"XMP packet {why}; searched its text for TC260:AIGC instead"
        candidates, dst, more = _scan_xmp_text(_decode_packet(packet))
        return candidates, dst, [problem, *more]


# Names that can be one of the two label properties: ``{namespace}local`` as
# ElementTree gives them, ``namespace}local`` as expat does.
_LABEL_NAME_ENDS = ("}AIGC", "}DigitalSourceType")


def _is_label_property(name: str) -> bool:
    if not name.endswith(_LABEL_NAME_ENDS):  # the quick test, done for every name
        return False
    ns, local = _split(name if name.startswith("{") else "{" + name)
    return (local == "AIGC" and _is_tc260_ns(ns)) or (
        local == "DigitalSourceType" and _is_iptc_ext_ns(ns)
    )


class _XmpReader:
    """Streams one packet through expat and keeps only the label properties.

    No tree is built (a 4 MB packet can hold a million elements); the text of a
    property element is collected while it is open, as ``"".join(itertext())``
    would give it.  At most :data:`MAX_AIGC_PROPERTIES` ``TC260:AIGC`` values and
    as many ``DigitalSourceType`` elements are collected: nested properties would
    otherwise each collect the text of all those inside them (quadratic).
    """

    def __init__(self) -> None:
        self.values: list[str | None] = []  # TC260:AIGC values in document order
        self.found = 0
        self.dst: list[str | None] = []  # DigitalSourceType candidates, in order
        self.dst_elements = 0
        self.odd_ns: set[str] = set()
        self.open: list[tuple[int, list[str], str, int, str]] = []  # properties being read
        self.depth = 0  # open elements, counted while a property is open
        self.kinds: dict[str, tuple[str, str] | None] = {}  # name -> _kind(name)

    def read(self, packet: bytes) -> tuple[list[str], str | None, list[str]]:
        self.parser = parser = expat.ParserCreate(namespace_separator="}")
        parser.ordered_attributes = True
        parser.buffer_text = True
        parser.StartElementHandler = self.start
        parser.Parse(packet, True)
        problems = [
            f"TC260:AIGC uses the namespace {ns!r} instead of {TC260_NAMESPACE!r}"
            for ns in sorted(self.odd_ns)
        ]
        if self.found > MAX_AIGC_PROPERTIES:
            problems.append(
                _too_many(self.found, "TC260:AIGC properties in one XMP packet",
                          MAX_AIGC_PROPERTIES)
            )
        candidates = [v for v in self.values if v is not None]
        dst = next((d for d in self.dst if d is not None), None)
        return candidates, dst, problems

    def _kind(self, name: str) -> tuple[str, str] | None:
        """("aigc" or "dst", namespace) for a label property's name, else None."""
        kind = self.kinds.get(name, 0)
        if kind == 0:
            kind = None
            if _is_label_property(name):
                ns, _, local = name.partition("}")
                kind = ("aigc" if local == "AIGC" else "dst", ns)
            self.kinds[name] = kind
        return kind

    def _aigc(self, ns: str) -> bool:
        """Count one TC260:AIGC property; True if it is to be read."""
        self.found += 1
        if self.found > MAX_AIGC_PROPERTIES:
            return False
        if ns != TC260_NAMESPACE:
            self.odd_ns.add(ns)
        return True

    def start(self, name: str, attrs: list[str]) -> None:
        if self.open:
            self.depth += 1
        for i in range(0, len(attrs), 2):
            kind = self._kind(attrs[i])
            if kind is None:
                continue
            if kind[0] == "aigc":
                if self._aigc(kind[1]):
                    self.values.append(attrs[i + 1].strip())
            elif len(self.dst) <= MAX_AIGC_PROPERTIES:
                self.dst.append(attrs[i + 1].strip())
        kind = self._kind(name)
        if kind is None:
            return
        if kind[0] == "aigc":
            if not self._aigc(kind[1]):
                return
            slot, resource = len(self.values), ""
            self.values.append(None)
        else:
            self.dst_elements += 1
            if self.dst_elements > MAX_AIGC_PROPERTIES:
                return
            slot = len(self.dst)
            self.dst.append(None)
            resource = next(
                (attrs[i + 1] for i in range(0, len(attrs), 2)
                 if attrs[i] == f"{RDF_NAMESPACE}}}resource"),
                "",
            )
        if not self.open:
            self.depth = 1
            self.parser.EndElementHandler = self.end
            self.parser.CharacterDataHandler = self.text
        self.open.append((self.depth, [], kind[0], slot, resource))

    def text(self, data: str) -> None:
        for _, parts, _, _, _ in self.open:
            parts.append(data)

    def end(self, name: str) -> None:
        while self.open and self.open[-1][0] == self.depth:
            _, parts, kind, slot, resource = self.open.pop()
            text = "".join(parts).strip()
            if kind == "aigc":
                self.values[slot] = text
            else:
                self.dst[slot] = text or resource.strip() or None
        self.depth -= 1
        if not self.open:
            self.parser.EndElementHandler = None
            self.parser.CharacterDataHandler = None


# Namespace declarations.  A failed attempt runs to the end of the text only when no
# closing quote of its kind follows, which can happen once per quote kind: linear.
_DECL_RE = re.compile(r"""xmlns:([A-Za-z_][\w.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def _prefixes_for(text: str, predicate) -> set[str]:
    return {
        prefix for prefix, dq, sq in _DECL_RE.findall(text) if predicate(dq or sq)
    }


# The patterns below that read a malformed packet are linear by construction: no
# part of a match can hold "<" except where it starts, so a failed attempt stops at
# the next "<" and the attempts of one search never cover the same text twice.  (A
# lazy ``(.*?)</TC260:AIGC>`` would rescan the rest of the packet for every unclosed
# tag: quadratic, 62 s for 256 KB of them.)  They recover simple-text properties,
# the only kind whose content can be label JSON.
def _element_re(prefix: str, local: str) -> re.Pattern:
    """``<P:local ...>text</P:local>``: group 1 is the text (no markup in it).

    A self-closing ``<P:local/>`` is empty, not the start of a property."""
    p = re.escape(prefix)
    return re.compile(rf"<{p}:{local}\b[^<>]*(?<!/)>([^<]*)</{p}:{local}\s*>")


def _attribute_re(prefix: str, local: str) -> re.Pattern:
    """``P:local="value"`` or ``P:local='value'``: group 1 or 2 is the value."""
    p = re.escape(prefix)
    # the name first (a literal, which the search skips to quickly), then the check
    # that it does not continue a longer name
    return re.compile(
        rf"""{p}:{local}(?<![\w.:-]{p}:{local})\s*=\s*(?:"([^"<]*)"|'([^'<]*)')"""
    )


_DST_ELEMENT_RE = re.compile(r"DigitalSourceType\s*>\s*([^<>\s]+)\s*<")
_DST_ATTR_RE = re.compile(r"""DigitalSourceType\s*=\s*["']([^"'<]*)["']""")


def _scan_xmp_text(text: str) -> tuple[list[str], str | None, list[str]]:
    """Regex recovery of TC260:AIGC from a packet that does not parse (linear time).

    At most :data:`MAX_AIGC_PROPERTIES` values are read, from at most
    ``_MAX_PREFIXES`` prefixes bound to the TC260 namespace.
    """
    problems: list[str] = []
    prefixes = sorted(_prefixes_for(text, _is_tc260_ns) - {TC260_PREFIX})
    if len(prefixes) >= _MAX_PREFIXES:
        problems.append(
            f"the XMP packet declares {len(prefixes)} prefixes for the TC260 namespace; "
            f"only {_MAX_PREFIXES - 1} and {TC260_PREFIX} were searched"
        )
    prefixes = sorted([TC260_PREFIX, *prefixes[: _MAX_PREFIXES - 1]])
    candidates: list[str] = []
    more = False
    for prefix in prefixes:
        for pattern in (_element_re(prefix, "AIGC"), _attribute_re(prefix, "AIGC")):
            for m in pattern.finditer(text):
                if len(candidates) == MAX_AIGC_PROPERTIES:
                    more = True
                    break
                value = next((g for g in m.groups() if g is not None), "")
                candidates.append(_unescape(value).strip())
    if more:
        problems.append(
            f"more than {MAX_AIGC_PROPERTIES} TC260:AIGC properties in one XMP packet; "
            f"only the first {MAX_AIGC_PROPERTIES} were read"
        )
    if not candidates:
        for prefix in prefixes:
            p = re.escape(prefix)
            if re.search(rf"<{p}:AIGC\b[^<>]*>[^<]*\Z", text):
                problems.append("the XMP packet ends inside the TC260:AIGC property (truncated)")
                break
        else:
            problems.append(
                "no TC260:AIGC property could be recovered from the malformed XMP packet"
            )
    m = _DST_ELEMENT_RE.search(text) or _DST_ATTR_RE.search(text)
    dst = _unescape(m.group(1)).strip() if m else None
    return candidates, dst, problems


def _property_census(root: ET.Element) -> Counter:
    """Every element/attribute except the two label properties and rdf:Description."""
    census: Counter = Counter()
    desc = f"{{{RDF_NAMESPACE}}}Description"
    about = f"{{{RDF_NAMESPACE}}}about"
    ends = _LABEL_NAME_ENDS
    stack = [root]  # iterative: a deeply nested packet must not exhaust the C stack
    pop, extend = stack.pop, stack.extend
    while stack:
        elem = pop()
        tag = elem.tag
        if not isinstance(tag, str):
            tag = repr(tag)
        elif tag.endswith(ends) and _is_label_property(tag):
            continue
        if tag != desc:
            census["elem", tag, (elem.text or "").strip()] += 1
        for name, value in elem.items():
            if not (name.endswith(ends) and _is_label_property(name)) and not (
                tag == desc and name == about
            ):
                census["attr", tag, name, value] += 1
        extend(elem)
    return census


_TRAILING_BLANKS_RE = re.compile(r"[ \t]*\r?\n?")
_UNPARSED_RE = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>", re.S)


def _masked(text: str) -> str:
    """``text`` (well-formed XML) with comments, CDATA and PIs replaced by NULs.

    Positions are kept.  In well-formed XML every "<" outside these starts one of
    them or a tag, and each ends, so the lazy search is linear.
    """
    return _UNPARSED_RE.sub(lambda m: "\x00" * len(m.group()), text)


def _cut(text: str, spans, *, blanks_before: str | None, trailing: bool) -> str:
    """Remove the ``(start, end)`` spans (sorted, disjoint) from ``text``.

    Each span takes with it the run of ``blanks_before`` characters just before it
    (``None``: any whitespace) and, if ``trailing``, the ``[ \\t]*\\r?\\n?`` after it:
    what a leading ``[ \\t]*`` or ``\\s+`` in the pattern would have matched, without
    the quadratic cost such a pattern has on a long run of blanks.
    """
    out: list[str] = []
    last = 0
    for start, end in spans:
        if start < last:
            continue
        gap = text[last:start]
        start -= len(gap) - len(gap.rstrip(blanks_before))
        if trailing:
            end = _TRAILING_BLANKS_RE.match(text, end).end()
        out.append(text[last:start])
        last = end
    out.append(text[last:])
    return "".join(out)


def _update_xmp(packet: bytes, value: str, *, replace_malformed: bool) -> bytes:
    """Put the label into an existing packet, keeping every other property as it is.

    The old TC260:AIGC and Iptc4xmpExt:DigitalSourceType properties (any prefix,
    attribute or element form) are cut out of the text, and a new
    ``rdf:Description`` holding both is inserted before ``</rdf:RDF>``; the rest of
    the packet is kept character for character.  The result is re-parsed and its
    census of other properties compared with the original before it is accepted.
    Every step is linear in the size of the packet.
    """

    def malformed(why: str) -> bytes:
        if replace_malformed:
            return _new_xmp_packet(value)
        raise ValueError(
            f"the file's existing XMP packet cannot be updated: {why}. Pass "
            "replace_malformed_xmp=True to replace it with a new packet (its other "
            "properties are then lost)"
        )

    if len(packet) > MAX_XMP_BYTES:
        return malformed(f"it is {len(packet)} bytes, larger than {MAX_XMP_BYTES}")
    try:
        before = _property_census(_xml_root(packet))
        text = (
            packet[3:].decode("utf-8")
            if packet.startswith(b"\xef\xbb\xbf")
            else packet.decode("utf-8")
        )
    except (ET.ParseError, ValueError) as exc:
        return malformed(f"it is not well-formed UTF-8 XML ({exc})")
    bom = packet.startswith(b"\xef\xbb\xbf")

    targets = [(prefix, "AIGC") for prefix in _prefixes_for(text, _is_tc260_ns)]
    targets += [(prefix, "DigitalSourceType") for prefix in _prefixes_for(text, _is_iptc_ext_ns)]
    declared = len(targets) + len(_prefixes_for(text, lambda u: u == RDF_NAMESPACE))
    if declared > _MAX_PREFIXES:
        return malformed(
            f"it declares {declared} prefixes for the TC260, IPTC and RDF namespaces; "
            f"at most {_MAX_PREFIXES} are handled"
        )
    # The spans to cut are looked for in _masked(text), where comments, CDATA and
    # processing instructions are blanked out: every "<" left starts a real tag (the
    # packet parsed), so each attempt ends within its own tag or element and the
    # searches are linear.
    for prefix, local in targets:
        p = re.escape(prefix)
        tag = rf"""<{p}:{local}(?:\s+[^\s=<>/]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*\s*"""
        for pattern, blanks, trailing in (
            (tag + "/>", " \t", True),
            (tag + rf">.*?</{p}:{local}\s*>", " \t", True),
            (rf"""(?<=\s){p}:{local}\s*=\s*(?:"[^"]*"|'[^']*')""", None, False),
        ):
            spans = [m.span() for m in re.finditer(pattern, _masked(text), re.S)]
            text = _cut(text, spans, blanks_before=blanks, trailing=trailing)

    rdf_prefixes = sorted(_prefixes_for(text, lambda u: u == RDF_NAMESPACE))
    for rdf in rdf_prefixes:
        # drop descriptions left empty (only rdf:about and namespace declarations),
        # so that relabelling a file again and again does not grow its packet
        r = re.escape(rdf)
        attrs = (
            rf"""(?:\s+(?:xmlns:[\w.-]+|{r}:about)\s*=\s*(?:"[^"]*"|'[^']*'))*\s*"""
        )
        for empty in (
            rf"<{r}:Description{attrs}/>",
            rf"<{r}:Description{attrs}>\s*</{r}:Description\s*>",
        ):
            spans = [m.span() for m in re.finditer(empty, _masked(text))]
            text = _cut(text, spans, blanks_before=" \t", trailing=True)
    tc260 = _free_prefix(text, TC260_PREFIX, _is_tc260_ns)
    iptc = _free_prefix(text, "Iptc4xmpExt", _is_iptc_ext_ns)
    inserted = False
    for rdf in rdf_prefixes:
        closing = list(re.finditer(rf"</{re.escape(rdf)}:RDF\s*>", text))
        if closing:
            # "  <description>\n" goes before the blanks that indent </rdf:RDF>, so
            # that the cut above (blanks before it, one line end after it) removes
            # exactly what was added: relabelling gives the same bytes again
            pos = closing[-1].start()
            keep = text[:pos].rstrip(" \t")
            indent = text[len(keep) : pos]
            description = _xmp_description(value, rdf, tc260, iptc)
            text = keep + indent + " " + description + "\n" + indent + text[pos:]
            inserted = True
            break
    if not inserted:
        closing = list(re.finditer(r"</([\w.-]+):xmpmeta\s*>", text))
        if not closing or rdf_prefixes:
            return malformed("it has no rdf:RDF element to add the label to")
        pos = closing[-1].start()
        rdf = _free_prefix(text, "rdf", lambda u: u == RDF_NAMESPACE)
        text = (
            text[:pos]
            + f' <{rdf}:RDF xmlns:{rdf}="{RDF_NAMESPACE}">\n'
            + f"  {_xmp_description(value, rdf, tc260, iptc)}\n </{rdf}:RDF>\n"
            + text[pos:]
        )

    out = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    try:
        root = _xml_root(out)
    except (ET.ParseError, ValueError) as exc:  # pragma: no cover - defensive
        return malformed(f"editing it produced invalid XML ({exc})")
    candidates, dst, _ = _read_xmp(out)
    if (
        _property_census(root) != before
        or candidates != [value]
        or dst != DIGITAL_SOURCE_TYPE_TRAINED
    ):
        return malformed(
            "its layout defeated the text-level update (other properties would change)"
        )
    return out


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
        raise ValueError(
            f"unsupported image format: a RIFF file of type {data[8:12]!r}, not WebP; "
            "provmark writes and reads labels in PNG, JPEG and WebP"
        )
    raise ValueError(
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


def _inflate(blob: bytes, what: str, limit: int = MAX_XMP_BYTES) -> bytes:
    d = zlib.decompressobj()
    try:
        out = d.decompress(blob, limit)
    except zlib.error as exc:
        raise ValueError(f"{what} is not valid zlib data ({exc})") from None
    if d.unconsumed_tail:
        raise ValueError(f"{what} decompresses to more than {limit} bytes; not read")
    return out


class _XmpBudget:
    """What one file may still spend on XMP: :data:`MAX_XMP_PACKETS` and :data:`MAX_XMP_BYTES`."""

    def __init__(self) -> None:
        self.seen = 0
        self.left = MAX_XMP_BYTES

    def admit(self) -> int:
        """Count one more packet; the bytes it may have, or -1 if over the count."""
        self.seen += 1
        return self.left if self.seen <= MAX_XMP_PACKETS else -1

    def take(self, size: int, problems: list[str]) -> bool:
        """Spend ``size`` bytes on a packet, or say in ``problems`` why it is not read."""
        if size > self.left:
            if self.left == MAX_XMP_BYTES:
                problems.append(
                    f"XMP packet of {size} bytes is larger than {MAX_XMP_BYTES}; not parsed"
                )
            else:
                problems.append(
                    f"XMP packet of {size} bytes not parsed: with the file's earlier packets "
                    f"it passes the {MAX_XMP_BYTES} bytes of XMP read per file"
                )
            return False
        self.left -= size
        return True

    def finish(self, problems: list[str]) -> None:
        if self.seen > MAX_XMP_PACKETS:
            problems.append(_too_many(self.seen, "XMP packets in the file", MAX_XMP_PACKETS))


# --------------------------------------------------------------------------- #
# PNG
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class _Chunk:
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
        raise ValueError(
            f"{chunk.kind.decode('latin-1')} chunk has no keyword (1-79 bytes ended by a NUL)"
        )
    rest = chunk.data[len(keyword) + 1 :]
    if chunk.kind == b"tEXt":
        return keyword, rest
    if chunk.kind == b"zTXt":
        if not rest or rest[0] != 0:
            raise ValueError("zTXt chunk uses an unknown compression method")
        return keyword, _inflate(rest[1:], f"zTXt chunk {keyword!r}", limit)
    # iTXt
    if len(rest) < 2:
        raise ValueError(f"iTXt chunk {keyword!r} is too short")
    flag, method = rest[0], rest[1]
    parts = rest[2:].split(b"\x00", 2)
    if len(parts) != 3:
        raise ValueError(f"iTXt chunk {keyword!r} lacks its language/translated-keyword fields")
    text = parts[2]
    if flag == 1:
        if method != 0:
            raise ValueError(f"iTXt chunk {keyword!r} uses an unknown compression method")
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
        raise ValueError(f"cannot write a label into this PNG: {problems[-1]}")
    if not chunks or chunks[0].kind != b"IHDR":
        raise ValueError("cannot write a label into this PNG: its first chunk is not IHDR")
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


# --------------------------------------------------------------------------- #
# JPEG
# --------------------------------------------------------------------------- #
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
        raise ValueError(
            f"the XMP packet ({len(packet)} bytes) does not fit a JPEG APP1 segment "
            f"(at most {0xFFFF - 2 - len(_JPEG_XMP_HEADER)} bytes)"
        )
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def _jpeg_write(data: bytes, label: AIGCLabel, value: str, replace_malformed: bool) -> bytes:
    problems: list[str] = []
    segs, rest, complete = _jpeg_segments(data, problems)
    if not complete:
        raise ValueError(f"cannot write a label into this JPEG: {problems[-1]}")
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


# --------------------------------------------------------------------------- #
# WebP (RIFF)
# --------------------------------------------------------------------------- #
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
            raise ValueError(
                f"cannot write a label into this WebP: its VP8 header gives a {w}x{h} "
                "canvas; re-encode the image"
            )
        return w, h, False
    if first.kind == b"VP8L" and len(d) >= 5 and d[0] == 0x2F:
        bits = struct.unpack("<I", d[1:5])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    raise ValueError(
        f"cannot write a label into this WebP: its first chunk {first.kind!r} is not a "
        "readable VP8/VP8L/VP8X header"
    )


def _webp_write(data: bytes, label: AIGCLabel, value: str, replace_malformed: bool) -> bytes:
    problems: list[str] = []
    chunks, trailing, complete = _webp_chunks(data, problems)
    if not complete or not chunks:
        raise ValueError(
            f"cannot write a label into this WebP: {(problems or ['it has no chunks'])[-1]}"
        )
    raws = [c.raw for c in chunks]
    kinds = [c.kind for c in chunks]
    if kinds[0] == b"VP8X":
        vp8x = bytearray(chunks[0].data)
        if len(vp8x) < 10:
            raise ValueError("cannot write a label into this WebP: its VP8X chunk is too short")
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


def read_label_file(path: PathLike) -> LabelReading:
    """:func:`read_label` on the file at ``path``."""
    p = Path(path)
    data = p.read_bytes()
    try:
        return read_label(data)
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from None


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
        raise ValueError(
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
        raise ValueError(f"{src_p}: {exc}") from None
    mode_from = dst_p if dst_p.exists() else src_p
    mode = stat.S_IMODE(os.stat(mode_from).st_mode)
    from .._io import atomic_output

    with atomic_output(dst_p, mode) as fh:
        fh.write(out)
    return dst_p
