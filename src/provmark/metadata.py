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
# A label JSON of 7 fields at the maximum length is under 2 000 characters;
# anything this long is not a label and is not parsed.
MAX_JSON_LENGTH = 8192
# Largest XMP packet (or decompressed PNG text chunk) that is parsed.
MAX_XMP_BYTES = 4 * 1024 * 1024

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
def _xmp_description(value: str, rdf: str = "rdf") -> str:
    return (
        f'<{rdf}:Description {rdf}:about=""\n'
        f'    xmlns:{TC260_PREFIX}="{TC260_NAMESPACE}"\n'
        f'    xmlns:Iptc4xmpExt="{IPTC_EXT_NAMESPACE}">\n'
        f"   <{TC260_PREFIX}:AIGC>{_xml_escape(value)}</{TC260_PREFIX}:AIGC>\n"
        f"   <Iptc4xmpExt:DigitalSourceType>{DIGITAL_SOURCE_TYPE_TRAINED}"
        f"</Iptc4xmpExt:DigitalSourceType>\n"
        f"  </{rdf}:Description>"
    )


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


def _xml_root(packet: bytes) -> ET.Element:
    """Parse an XMP packet; ET.ParseError / ValueError if it is not acceptable XML."""
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        raise ValueError("it contains a DOCTYPE/ENTITY declaration, which XMP forbids")
    return ET.fromstring(packet.rstrip(b"\x00 \t\r\n"))


def _decode_packet(packet: bytes) -> str:
    if packet.startswith(b"\xef\xbb\xbf"):
        packet = packet[3:]
    return packet.decode("utf-8", errors="replace")


def _read_xmp(packet: bytes) -> tuple[list[str], str | None, list[str]]:
    """Label JSON candidates, DigitalSourceType and problems from one XMP packet."""
    problems: list[str] = []
    if len(packet) > MAX_XMP_BYTES:
        return (
            [],
            None,
            [f"XMP packet of {len(packet)} bytes is larger than {MAX_XMP_BYTES}; not parsed"],
        )
    candidates: list[str] = []
    dst: str | None = None
    try:
        root = _xml_root(packet)
    except (ET.ParseError, ValueError) as exc:
        why = (
            f"is not well-formed XML ({exc})"
            if isinstance(exc, ET.ParseError)
            else f"was not parsed: {exc}"
        )
        problems.append(f"XMP packet {why}; searched its text for TC260:AIGC instead")
        candidates, dst, more = _scan_xmp_text(_decode_packet(packet))
        return candidates, dst, problems + more

    odd_ns: set[str] = set()
    for elem in root.iter():
        for name, value in elem.attrib.items():
            ns, local = _split(name)
            if local == "AIGC" and _is_tc260_ns(ns):
                candidates.append(value.strip())
                if ns != TC260_NAMESPACE:
                    odd_ns.add(ns)
            elif local == "DigitalSourceType" and _is_iptc_ext_ns(ns) and dst is None:
                dst = value.strip()
        if not isinstance(elem.tag, str):
            continue
        ns, local = _split(elem.tag)
        if local == "AIGC" and _is_tc260_ns(ns):
            candidates.append("".join(elem.itertext()).strip())
            if ns != TC260_NAMESPACE:
                odd_ns.add(ns)
        elif local == "DigitalSourceType" and _is_iptc_ext_ns(ns) and dst is None:
            text = "".join(elem.itertext()).strip()
            dst = text or elem.attrib.get(f"{{{RDF_NAMESPACE}}}resource", "").strip() or None
    for ns in sorted(odd_ns):
        problems.append(f"TC260:AIGC uses the namespace {ns!r} instead of {TC260_NAMESPACE!r}")
    return candidates, dst, problems


_DECL_RE = re.compile(r"""xmlns:([A-Za-z_][\w.-]*)\s*=\s*(["'])(.*?)\2""", re.S)


def _prefixes_for(text: str, predicate) -> set[str]:
    return {m.group(1) for m in _DECL_RE.finditer(text) if predicate(m.group(3))}


def _scan_xmp_text(text: str) -> tuple[list[str], str | None, list[str]]:
    """Regex recovery of TC260:AIGC from a packet that does not parse."""
    prefixes = _prefixes_for(text, _is_tc260_ns) | {TC260_PREFIX}
    candidates: list[str] = []
    problems: list[str] = []
    for prefix in sorted(prefixes):
        p = re.escape(prefix)
        for m in re.finditer(rf"<{p}:AIGC\b[^>]*>(.*?)</{p}:AIGC\s*>", text, re.S):
            candidates.append(html.unescape(m.group(1)).strip())
        for m in re.finditer(rf"""(?<![\w.:-]){p}:AIGC\s*=\s*(?:"([^"]*)"|'([^']*)')""", text):
            candidates.append(html.unescape(m.group(1) or m.group(2) or "").strip())
        if not candidates and re.search(rf"<{p}:AIGC\b[^>]*>[^<]*\Z", text):
            problems.append("the XMP packet ends inside the TC260:AIGC property (truncated)")
    if not candidates and not problems:
        problems.append("no TC260:AIGC property could be recovered from the malformed XMP packet")
    dst = None
    m = re.search(r"DigitalSourceType\s*>\s*([^<\s]+)\s*<", text) or re.search(
        r"""DigitalSourceType\s*=\s*["']([^"']*)["']""", text
    )
    if m:
        dst = html.unescape(m.group(1)).strip()
    return candidates, dst, problems


def _property_census(root: ET.Element) -> Counter:
    """Every element/attribute except the two label properties and rdf:Description."""
    census: Counter = Counter()
    desc = f"{{{RDF_NAMESPACE}}}Description"
    about = f"{{{RDF_NAMESPACE}}}about"

    def skipped(name: str) -> bool:
        ns, local = _split(name)
        return (local == "AIGC" and _is_tc260_ns(ns)) or (
            local == "DigitalSourceType" and _is_iptc_ext_ns(ns)
        )

    def walk(elem: ET.Element) -> None:
        tag = elem.tag if isinstance(elem.tag, str) else repr(elem.tag)
        if skipped(tag):
            return
        if tag != desc:
            census[("elem", tag, (elem.text or "").strip())] += 1
        for name, value in elem.attrib.items():
            if not skipped(name) and not (tag == desc and name == about):
                census[("attr", tag, name, value)] += 1
        for child in elem:
            walk(child)

    walk(root)
    return census


def _update_xmp(packet: bytes, value: str, *, replace_malformed: bool) -> bytes:
    """Put the label into an existing packet, keeping every other property as it is.

    The old TC260:AIGC and Iptc4xmpExt:DigitalSourceType properties (any prefix,
    attribute or element form) are cut out of the text, and a new
    ``rdf:Description`` holding both is inserted before ``</rdf:RDF>``; the rest of
    the packet is kept character for character.  The result is re-parsed and its
    census of other properties compared with the original before it is accepted.
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
    for prefix, local in targets:
        p = re.escape(prefix)
        text = re.sub(rf"[ \t]*<{p}:{local}\b[^>]*/>[ \t]*\r?\n?", "", text)
        text = re.sub(
            rf"[ \t]*<{p}:{local}\b[^>]*>.*?</{p}:{local}\s*>[ \t]*\r?\n?", "", text, flags=re.S
        )
        text = re.sub(rf"""\s+{p}:{local}\s*=\s*(?:"[^"]*"|'[^']*')""", "", text)

    rdf_prefixes = sorted(_prefixes_for(text, lambda u: u == RDF_NAMESPACE))
    for rdf in rdf_prefixes:
        # drop descriptions left empty (only rdf:about and namespace declarations),
        # so that relabelling a file again and again does not grow its packet
        r = re.escape(rdf)
        attrs = rf"""(?:\s+(?:xmlns:[\w.-]+|{r}:about)\s*=\s*(?:"[^"]*"|'[^']*'))*\s*"""
        text = re.sub(rf"[ \t]*<{r}:Description{attrs}/>[ \t]*\r?\n?", "", text)
        text = re.sub(
            rf"[ \t]*<{r}:Description{attrs}>\s*</{r}:Description\s*>[ \t]*\r?\n?", "", text
        )
    inserted = False
    for rdf in rdf_prefixes:
        closing = list(re.finditer(rf"</{re.escape(rdf)}:RDF\s*>", text))
        if closing:
            pos = closing[-1].start()
            text = text[:pos] + " " + _xmp_description(value, rdf) + "\n " + text[pos:]
            inserted = True
            break
    if not inserted:
        closing = list(re.finditer(r"</([\w.-]+):xmpmeta\s*>", text))
        if not closing or rdf_prefixes:
            return malformed("it has no rdf:RDF element to add the label to")
        pos = closing[-1].start()
        text = (
            text[:pos]
            + f' <rdf:RDF xmlns:rdf="{RDF_NAMESPACE}">\n  {_xmp_description(value)}\n </rdf:RDF>\n'
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
        ``{"AIGC":{..}}`` or bare ``{"Label":..}``.
    problems : tuple of str
        Human-readable problems: malformed JSON or XMP, invalid fields, truncated
        container, disagreeing copies.  Empty for a clean file.
    digital_source_type : str or None
        ``Iptc4xmpExt:DigitalSourceType`` if present.
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


def _inflate(blob: bytes, what: str) -> bytes:
    d = zlib.decompressobj()
    try:
        out = d.decompress(blob, MAX_XMP_BYTES)
    except zlib.error as exc:
        raise ValueError(f"{what} is not valid zlib data ({exc})") from None
    if d.unconsumed_tail:
        raise ValueError(f"{what} decompresses to more than {MAX_XMP_BYTES} bytes; not read")
    return out


# --------------------------------------------------------------------------- #
# PNG
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class _Chunk:
    kind: bytes
    data: bytes
    raw: bytes


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_chunks(data: bytes, problems: list[str]) -> tuple[list[_Chunk], bytes, bool]:
    """(chunks, bytes after IEND, complete).  Problems are appended, never raised."""
    chunks: list[_Chunk] = []
    pos = len(_PNG_SIGNATURE)
    n = len(data)
    while True:
        if pos + 12 > n:
            problems.append(f"PNG is truncated: it ends at byte {n} before the IEND chunk")
            return chunks, b"", False
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > n:
            problems.append(
                f"PNG is truncated: chunk {kind!r} at byte {pos} declares {length} bytes "
                f"but only {max(n - pos - 12, 0)} remain"
            )
            return chunks, b"", False
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : end])
        if crc != zlib.crc32(kind + body):
            problems.append(f"PNG chunk {kind!r} at byte {pos} has a bad CRC")
        chunks.append(_Chunk(kind, body, data[pos:end]))
        pos = end
        if kind == b"IEND":
            return chunks, data[pos:], True


def _png_text(chunk: _Chunk) -> tuple[bytes, bytes]:
    """(keyword, text bytes) of a tEXt/zTXt/iTXt chunk; ValueError if malformed."""
    keyword, sep, rest = chunk.data.partition(b"\x00")
    if not sep:
        raise ValueError(f"{chunk.kind.decode('latin-1')} chunk has no keyword terminator")
    if chunk.kind == b"tEXt":
        return keyword, rest
    if chunk.kind == b"zTXt":
        if not rest or rest[0] != 0:
            raise ValueError("zTXt chunk uses an unknown compression method")
        return keyword, _inflate(rest[1:], f"zTXt chunk {keyword!r}")
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
        text = _inflate(text, f"iTXt chunk {keyword!r}")
    return keyword, text


_TEXT_KINDS = (b"tEXt", b"zTXt", b"iTXt")


def _png_extract(data: bytes, problems: list[str]) -> tuple[list[bytes], list[str]]:
    chunks, _, _ = _png_chunks(data, problems)
    xmps: list[bytes] = []
    texts: list[str] = []
    for ch in chunks:
        if ch.kind not in _TEXT_KINDS:
            continue
        try:
            keyword, text = _png_text(ch)
        except ValueError as exc:
            problems.append(f"PNG text chunk: {exc}")
            continue
        if keyword == _XMP_PNG_KEYWORD:
            if ch.kind != b"iTXt":
                problems.append(
                    f"the XMP packet is in a {ch.kind.decode()} chunk; the PNG spec says iTXt"
                )
            xmps.append(text)
        elif keyword.lower() == b"aigc":
            enc = "utf-8" if ch.kind == b"iTXt" else "latin-1"
            texts.append(text.decode(enc, errors="replace"))
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
            try:
                keyword, text = _png_text(ch)
            except ValueError:
                keyword, text = b"", b""
            if keyword == _XMP_PNG_KEYWORD and ch.kind == b"iTXt":
                if xmp_done:
                    continue  # a second XMP packet would contradict the first: drop it
                packet = _update_xmp(text, value, replace_malformed=replace_malformed)
                out.append(_png_chunk(b"iTXt", _XMP_PNG_KEYWORD + b"\x00\x00\x00\x00\x00" + packet))
                xmp_done = True
                continue
            if keyword.lower() == b"aigc":
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


def _jpeg_segments(data: bytes, problems: list[str]) -> tuple[list[_Segment], bytes, bool]:
    """Header segments up to SOS; (segments, rest from SOS on, complete)."""
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
        while pos < n and data[pos] == 0xFF:
            pos += 1  # fill bytes
        if pos >= n:
            problems.append("JPEG is truncated inside a marker")
            return segs, b"", False
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE:
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
        (length,) = struct.unpack(">H", data[pos : pos + 2])
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
        segs.append(_Segment(marker, data[pos + 2 : end], data[start:end]))
        pos = end


def _jpeg_extract(data: bytes, problems: list[str]) -> tuple[list[bytes], list[str]]:
    segs, _, complete = _jpeg_segments(data, problems)
    if complete and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        problems.append("JPEG does not end with an EOI marker: the image data may be truncated")
    return [
        s.payload[len(_JPEG_XMP_HEADER) :]
        for s in segs
        if s.marker == 0xE1 and s.payload.startswith(_JPEG_XMP_HEADER)
    ], []


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


def _webp_chunks(data: bytes, problems: list[str]) -> tuple[list[_Chunk], bytes, bool]:
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
        raw = data[pos:padded] if padded <= end else data[pos:body_end] + b"\x00"
        chunks.append(_Chunk(kind, data[pos + 8 : body_end], raw))
        pos = padded
    if pos < end:
        problems.append(f"WebP has {end - pos} stray bytes at the end of its RIFF data")
        return chunks, b"", False
    return chunks, data[8 + size :] if complete else b"", complete


def _webp_extract(data: bytes, problems: list[str]) -> tuple[list[bytes], list[str]]:
    chunks, _, _ = _webp_chunks(data, problems)
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
    return xmps, []


def _webp_canvas(first: _Chunk) -> tuple[int, int, bool]:
    d = first.data
    if first.kind == b"VP8 " and len(d) >= 10 and d[3:6] == b"\x9d\x01\x2a":
        w = struct.unpack("<H", d[6:8])[0] & 0x3FFF
        h = struct.unpack("<H", d[8:10])[0] & 0x3FFF
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
    line in ``problems``.

    Raises
    ------
    ValueError
        Only when ``data`` is not a PNG, JPEG or WebP file at all.
    """
    data = _bytes_of(data)
    fmt = _sniff(data)
    problems: list[str] = []
    extract = {"png": _png_extract, "jpeg": _jpeg_extract, "webp": _webp_extract}[fmt]
    xmps, texts = extract(data, problems)

    candidates: list[tuple[str, str]] = []
    dst: str | None = None
    for packet in xmps:
        found, packet_dst, more = _read_xmp(packet)
        problems += [f"xmp: {p}" for p in more]
        candidates += [("xmp", c) for c in found]
        dst = dst or packet_dst
    candidates += [("png-text", t) for t in texts]
    if not candidates:
        return LabelReading(None, None, None, tuple(problems), dst, fmt)

    parsed = []
    for source, raw in candidates:
        lab, probs, declared = _parse_label_json(raw)
        parsed.append((source, raw, lab, probs, declared))
    chosen = next((p for p in parsed if p[2] is not None), parsed[0])
    source, raw, lab, _, declared = chosen
    for src, _raw, _lab, probs, _ in parsed:
        problems += [f"{src}: {p}" for p in probs]
    valid = [p for p in parsed if p[2] is not None]
    if len({p[2] for p in valid}) > 1:
        where = "; ".join(
            f"{p[0]} has Label {p[2].label}, ContentProducer {p[2].content_producer}, "
            f"ProduceID {p[2].produce_id}"
            for p in valid
        )
        problems.append(
            f"the file holds labels that disagree ({where}); using the one from {source}"
        )
    if declared is None:
        declared = next((p[4] for p in parsed if p[4] is not None), None)
    return LabelReading(lab, source, raw, tuple(problems), dst, fmt, declared)


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
    from ._io import atomic_output

    with atomic_output(dst_p, mode) as fh:
        fh.write(out)
    return dst_p
