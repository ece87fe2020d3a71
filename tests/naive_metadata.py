"""Slow, obviously-correct references for the XMP code of provmark.metadata.

These are the straightforward versions the module had before issue 11: an
ElementTree walk for reading a packet, lazy regular expressions for recovering the
label from a malformed one (except that a property's content is its text, without
markup), and ``re.sub`` with leading ``[ \\t]*`` / ``\\s+`` for
cutting the old label out when updating. They are quadratic on hostile input (the
reason they were replaced) but clear; the property tests in ``test_metadata.py``
check that the linear versions give the same answers on realistic packets. Two
deliberate changes of the update are mirrored here: the new description keeps the
indentation of ``</rdf:RDF>`` (so relabelling is byte-stable) and never reuses a
prefix bound to another namespace.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

from provmark import metadata as m


def read_xmp(packet: bytes) -> tuple[list[str], str | None, list[str]]:
    """Candidates, DigitalSourceType and problems of a well-formed packet (no caps)."""
    root = ET.fromstring(packet.rstrip(b"\x00 \t\r\n"))
    candidates: list[str] = []
    dst = None
    odd: set[str] = set()
    for elem in root.iter():
        for name, value in elem.attrib.items():
            ns, local = m._split(name)
            if local == "AIGC" and m._is_tc260_ns(ns):
                candidates.append(value.strip())
                if ns != m.TC260_NAMESPACE:
                    odd.add(ns)
            elif local == "DigitalSourceType" and m._is_iptc_ext_ns(ns) and dst is None:
                dst = value.strip()
        ns, local = m._split(elem.tag)
        if local == "AIGC" and m._is_tc260_ns(ns):
            candidates.append("".join(elem.itertext()).strip())
            if ns != m.TC260_NAMESPACE:
                odd.add(ns)
        elif local == "DigitalSourceType" and m._is_iptc_ext_ns(ns) and dst is None:
            text = "".join(elem.itertext()).strip()
            dst = text or elem.attrib.get(f"{{{m.RDF_NAMESPACE}}}resource", "").strip() or None
    problems = [f"TC260:AIGC uses the namespace {ns!r} instead of {m.TC260_NAMESPACE!r}"
                for ns in sorted(odd)]
    return candidates, dst, problems


def _prefixes_for(text: str, predicate) -> set[str]:
    decl = r"""xmlns:([A-Za-z_][\w.-]*)\s*=\s*(["'])(.*?)\2"""
    return {mm.group(1) for mm in re.finditer(decl, text, re.S) if predicate(mm.group(3))}


def scan_xmp_text(text: str) -> tuple[list[str], str | None]:
    """Candidates and DigitalSourceType recovered from a malformed packet (no caps)."""
    prefixes = _prefixes_for(text, m._is_tc260_ns) | {m.TC260_PREFIX}
    candidates = []
    for prefix in sorted(prefixes):
        p = re.escape(prefix)
        # (the one change from the original: the content of a property is its text,
        # without markup, and <TC260:AIGC/> does not open one)
        for mm in re.finditer(rf"<{p}:AIGC\b[^>]*(?<!/)>([^<]*)</{p}:AIGC\s*>", text):
            candidates.append(html.unescape(mm.group(1)).strip())
        for mm in re.finditer(rf"""(?<![\w.:-]){p}:AIGC\s*=\s*(?:"([^"]*)"|'([^']*)')""", text):
            candidates.append(html.unescape(mm.group(1) or mm.group(2) or "").strip())
    mm = re.search(r"DigitalSourceType\s*>\s*([^<\s]+)\s*<", text) or re.search(
        r"""DigitalSourceType\s*=\s*["']([^"']*)["']""", text)
    return candidates, (html.unescape(mm.group(1)).strip() if mm else None)


def update_xmp(packet: bytes, value: str) -> bytes | None:
    """The updated packet, or None where the module refuses (well-formed input)."""
    root = ET.fromstring(packet.rstrip(b"\x00 \t\r\n"))
    before = m._property_census(root)
    bom = packet.startswith(b"\xef\xbb\xbf")
    text = packet[3:].decode("utf-8") if bom else packet.decode("utf-8")
    targets = [(p, "AIGC") for p in _prefixes_for(text, m._is_tc260_ns)]
    targets += [(p, "DigitalSourceType") for p in _prefixes_for(text, m._is_iptc_ext_ns)]
    for prefix, local in targets:
        p = re.escape(prefix)
        text = re.sub(rf"[ \t]*<{p}:{local}\b[^>]*/>[ \t]*\r?\n?", "", text)
        text = re.sub(rf"[ \t]*<{p}:{local}\b[^>]*>.*?</{p}:{local}\s*>[ \t]*\r?\n?", "", text,
                      flags=re.S)
        text = re.sub(rf"""\s+{p}:{local}\s*=\s*(?:"[^"]*"|'[^']*')""", "", text)
    rdf_prefixes = sorted(_prefixes_for(text, lambda u: u == m.RDF_NAMESPACE))
    for rdf in rdf_prefixes:
        r = re.escape(rdf)
        attrs = rf"""(?:\s+(?:xmlns:[\w.-]+|{r}:about)\s*=\s*(?:"[^"]*"|'[^']*'))*\s*"""
        text = re.sub(rf"[ \t]*<{r}:Description{attrs}/>[ \t]*\r?\n?", "", text)
        text = re.sub(rf"[ \t]*<{r}:Description{attrs}>\s*</{r}:Description\s*>[ \t]*\r?\n?",
                      "", text)
    tc260 = m._free_prefix(text, m.TC260_PREFIX, m._is_tc260_ns)
    iptc = m._free_prefix(text, "Iptc4xmpExt", m._is_iptc_ext_ns)
    for rdf in rdf_prefixes:
        closing = list(re.finditer(rf"</{re.escape(rdf)}:RDF\s*>", text))
        if closing:
            break
    else:
        return None
    pos = closing[-1].start()
    indent = re.search(r"[ \t]*\Z", text[:pos]).group()
    head, tail = text[: pos - len(indent)], text[pos - len(indent) :]
    text = head + indent + " " + m._xmp_description(value, rdf, tc260, iptc) + "\n" + tail
    out = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    candidates, dst, _ = read_xmp(out)
    ok = (m._property_census(ET.fromstring(out.rstrip(b"\x00 \t\r\n"))) == before
          and candidates == [value] and dst == m.DIGITAL_SOURCE_TYPE_TRAINED)
    return out if ok else None
