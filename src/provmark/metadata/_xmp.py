"""The XMP packet that carries the label: reading, text recovery, updating, new packets.

This module owns the XMP form of the label (property ``TC260:AIGC`` next to IPTC's
``Iptc4xmpExt:DigitalSourceType``): a streaming reader of a well-formed packet
(:class:`_XmpReader`), a linear-time text search that recovers the label from a
packet that does not parse (:func:`_scan_xmp_text`), the in-place updater that
keeps every other property character for character (:func:`_update_xmp`), a fresh
packet for a file that has none (:func:`_new_xmp_packet`), and what one file may
spend on XMP (:class:`_XmpBudget`).  The limits are tabled in
:mod:`provmark.metadata`.  It works on packet bytes only; finding packets in a PNG,
JPEG or WebP file is the container modules' job.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections import Counter
from xml.parsers import expat
from xml.sax.saxutils import escape as _xml_escape

from ._model import MetadataError

TC260_NAMESPACE = "http://www.tc260.org.cn/ns/AIGC/1.0/"
TC260_PREFIX = "TC260"
IPTC_EXT_NAMESPACE = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
DIGITAL_SOURCE_TYPE_TRAINED = (
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
)
RDF_NAMESPACE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"

#: XMP bytes parsed per file, every packet together (after decompression).
MAX_XMP_BYTES = 4 * 1024 * 1024
#: XMP packets read per file (PNG iTXt chunks, JPEG APP1 segments, WebP chunks).
MAX_XMP_PACKETS = 16
#: Attributes on one XML element; expat slows down super-linearly beyond.
MAX_XML_ATTRIBUTES = 4096
#: ``TC260:AIGC`` properties read per XMP packet.
MAX_AIGC_PROPERTIES = 4
_MAX_PREFIXES = 8  # TC260/IPTC/RDF prefixes a packet may declare for the writer


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
        raise MetadataError("it contains a DOCTYPE/ENTITY declaration, which XMP forbids")
    # (an element with that many attributes has as many "=": count them first)
    if packet.count(b"=") > MAX_XML_ATTRIBUTES and _MANY_ATTRIBUTES_RE.search(packet):
        raise MetadataError(
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
        raise MetadataError(
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

