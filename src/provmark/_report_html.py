"""The HTML forensic report: one self-contained file an analyst can put in a case file.

This module owns the rendering of an :class:`~provmark.InspectionReport` (and the
image it was made from) as a single HTML document: inline CSS, every image a base64
PNG ``data:`` URI, no scripts, no fonts or anything else fetched from the network, so
the file opens the same anywhere, offline, years later. It shows the verdict, each
label layer (metadata fields parsed and validated, the watermark payload and its
false-alarm probability, the integrity code, the C2PA manifest, the visible label "not
checked"), the image, the tamper map and the evidence heatmap over a greyscale copy of
the image with their legends, the C2PA Content Credentials (validation, trust, signer,
actions, soft bindings) and their cross-checks with the other layers, the problems
found, and a "how to read this report" note. The file is written atomically
(temporary file in the same directory, then renamed).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import io
import os
from pathlib import Path

import numpy as np

from ._image import ImageError, as_rgb_array

#: Longest side, in pixels, of the images drawn into the report.
DISPLAY_SIDE = 1024
#: Colours (RGB) of the maps: missing (red), the evidence scale (ColorBrewer RdBu
#: end points: red = no mark, blue = mark as expected, colour-blind safe).
MISSING_RGB = (215, 25, 28)
SCALE_LOW = (178, 24, 43)
SCALE_MID = (247, 247, 247)
SCALE_HIGH = (33, 102, 172)
HATCH_RGB = (70, 70, 70)

_VERDICT_CLASS = {
    "consistent": "ok",
    "metadata stripped, watermark present": "warn",
    "metadata invalid, watermark present": "warn",
    "watermark absent": "warn",
    "integrity code invalid": "bad",
    "metadata and watermark disagree": "bad",
    "metadata invalid, no watermark": "bad",
    "C2PA manifest invalid": "bad",
    "C2PA manifest and watermark disagree": "bad",
    "C2PA manifest and metadata disagree": "bad",
    "C2PA manifest only": "warn",
    "no label": "none",
}

_VERDICT_TEXT = {
    "consistent": "The metadata label and the watermark agree, the integrity code "
                  "(if present) matches both, and a C2PA manifest (if present) validates "
                  "and agrees with them.",
    "C2PA manifest invalid": "The C2PA manifest does not validate: the file changed after "
        "it was signed (the tamper map shows where the pixels were changed) or the "
        "manifest is damaged.",
    "C2PA manifest and watermark disagree": "The C2PA manifest's soft binding or source "
        "type contradicts the watermark decoded from the pixels.",
    "C2PA manifest and metadata disagree": "The C2PA manifest's copy of the GB 45438 "
        "label or its source type contradicts the XMP metadata label.",
    "C2PA manifest only": "A C2PA manifest is present, but neither a GB 45438 metadata "
        "label nor a watermark (with this key).",
    "metadata stripped, watermark present": "The file carries no metadata label (most "
        "platforms strip it), but the pixels carry the provenance watermark.",
    "metadata invalid, watermark present": "A metadata label is present but malformed "
        "(see the problems); the pixels carry the provenance watermark.",
    "watermark absent": "A valid metadata label is present, but no watermark was found "
        "in the pixels (a different key, heavy processing, or a label copied onto "
        "another image).",
    "integrity code invalid": "The metadata's integrity code does not match its fields, "
        "the watermark payload and the key: the metadata was altered or copied from "
        "another image.",
    "metadata and watermark disagree": "The metadata label and the watermark give "
        "different generation labels.",
    "metadata invalid, no watermark": "A malformed metadata label and no watermark.",
    "no label": "Neither a metadata label nor a watermark (with this key) was found.",
}

_CSS = """
:root { --ok:#1a7f37; --warn:#9a6700; --bad:#cf222e; --none:#57606a; --line:#d0d7de; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f8fa; color: #1f2328;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Helvetica Neue",
  Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 40px; background: #fff;
  border-left: 1px solid var(--line); border-right: 1px solid var(--line); }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 16px 0 6px; }
.sub { color: #57606a; font-size: 13px; }
.mono, code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono",
  monospace; font-size: 13px; }
pre { white-space: pre-wrap; word-break: break-all; background: #f6f8fa; padding: 8px;
  border: 1px solid var(--line); margin: 4px 0; }
.verdicts { display: flex; gap: 14px; margin: 16px 0 8px; }
.verdict { flex: 1 1 0; padding: 12px 16px; border-radius: 6px; border: 2px solid;
  background: #fff; }
.verdict .k { font-size: 12px; font-weight: 600; text-transform: uppercase; color: #57606a;
  letter-spacing: .04em; }
.verdict .v { font-size: 22px; font-weight: 700; text-transform: uppercase; letter-spacing: .02em;
  margin: 2px 0 4px; }
.verdict.ok { border-color: var(--ok); } .verdict.ok .v { color: var(--ok); }
.verdict.warn { border-color: var(--warn); } .verdict.warn .v { color: var(--warn); }
.verdict.bad { border-color: var(--bad); } .verdict.bad .v { color: var(--bad); }
.verdict.none { border-color: var(--none); } .verdict.none .v { color: var(--none); }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid var(--line); }
th { background: #f6f8fa; font-weight: 600; }
table.kv th { width: 30%; background: none; font-weight: 600; color: #424a53; }
.st { font-weight: 700; white-space: nowrap; }
.st.ok { color: var(--ok); } .st.warn { color: var(--warn); } .st.bad { color: var(--bad); }
.st.none { color: var(--none); }
figure { margin: 12px 0 20px; }
figcaption { font-size: 13px; color: #424a53; margin-top: 6px; }
.frame { position: relative; display: inline-block; max-width: 100%; line-height: 0;
  border: 1px solid var(--line); }
.frame img { max-width: 100%; height: auto; display: block; }
.box { position: absolute; border: 2px solid rgb(215,25,28); }
.box span { position: absolute; top: -2px; left: -2px; background: rgb(215,25,28); color: #fff;
  font: 700 12px/16px system-ui, sans-serif; padding: 0 5px; }
.legend { display: flex; flex-wrap: wrap; gap: 14px 22px; align-items: center; font-size: 13px;
  margin: 8px 0 0; }
.sw { display: inline-block; width: 22px; height: 14px; vertical-align: -2px; margin-right: 6px;
  border: 1px solid #8c959f; }
.sw.missing { background: rgba(215,25,28,.55); border-color: rgb(215,25,28); }
.sw.present { background: #d9d9d9; }
.sw.hatch { background: repeating-linear-gradient(45deg, #5a5a5a 0 2px, #e6e6e6 2px 6px); }
.scalebox { display: inline-flex; flex-direction: column; width: 260px; vertical-align: top; }
.scale { display: block; width: 260px; height: 14px; border: 1px solid #8c959f;
  background: linear-gradient(to right, rgb(178,24,43), rgb(247,247,247) 50%, rgb(33,102,172)); }
.scalelab { display: flex; justify-content: space-between; width: 260px; font-size: 12px;
  color: #57606a; margin-top: 2px; }
ul { margin: 6px 0; padding-left: 22px; }
.note li { margin: 4px 0; }
footer { margin-top: 28px; font-size: 12px; color: #57606a; border-top: 1px solid var(--line);
  padding-top: 8px; }
"""


# --------------------------------------------------------------------- images


def _png_data_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(buf, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _display_size(h: int, w: int, side: int = DISPLAY_SIDE) -> tuple[int, int]:
    f = min(1.0, side / max(h, w))
    return max(1, round(h * f)), max(1, round(w * f))


def _resize(arr: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    import cv2

    h, w = size
    if arr.shape[:2] == (h, w):
        return arr
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    return cv2.resize(arr, (w, h), interpolation=interp)


def _grey_base(rgb: np.ndarray) -> np.ndarray:
    """A lightened greyscale copy, so that only the map carries colour."""
    y = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    y = 70.0 + 0.65 * y
    return np.repeat(y[..., None], 3, axis=2)


def _hatch(shape: tuple[int, int], period: int = 8) -> np.ndarray:
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return ((yy + xx) % period) < 2


def _hatch_over(base: np.ndarray, region: np.ndarray) -> None:
    """Diagonal hatching over ``region``: dark lines on light content, light lines
    on dark content, so it shows on black and white alike."""
    lines = region & _hatch(region.shape)
    light = base[..., 0] < 128
    base[lines & light] = 225.0
    base[lines & ~light] = float(HATCH_RGB[0])


def _blend(base: np.ndarray, mask: np.ndarray, rgb, alpha) -> None:
    colour = np.asarray(rgb, np.float32)
    a = np.asarray(alpha, np.float32)
    if a.ndim:
        a = a[mask][:, None]
    base[mask] = base[mask] * (1.0 - a) + colour * a


def render_tamper_overlay(image, tamper, *, side: int = DISPLAY_SIDE) -> np.ndarray:
    """The decision map: missing regions in red (filled and outlined), inconclusive
    or unanalysed areas hatched grey, over a lightened greyscale copy of the image.
    Returns an RGB uint8 array at most ``side`` pixels on its long side."""
    import cv2

    rgb, _ = as_rgb_array(image)
    size = _display_size(*rgb.shape[:2], side)
    base = _grey_base(_resize(rgb, size))
    state = _resize(tamper.state, size, nearest=True)
    from ._tamper import INCONCLUSIVE, MISSING, NOT_ANALYSED

    _hatch_over(base, (state == INCONCLUSIVE) | (state == NOT_ANALYSED))
    missing = state == MISSING
    _blend(base, missing, MISSING_RGB, 0.5)
    out = np.clip(base + 0.5, 0, 255).astype(np.uint8)
    contours, _ = cv2.findContours(missing.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, MISSING_RGB, thickness=max(2, size[1] // 400))
    return out


def render_evidence_heatmap(image, tamper, *, side: int = DISPLAY_SIDE) -> np.ndarray:
    """The evidence heatmap: ``z / E`` (measured over expected strength of the mark)
    on a red - white - blue scale (0 red: no mark; 0.5 white: the decision point;
    >= 1 blue: as strong as expected), inconclusive areas hatched grey and left
    uncoloured, over a lightened greyscale copy of the image."""
    rgb, _ = as_rgb_array(image)
    size = _display_size(*rgb.shape[:2], side)
    base = _grey_base(_resize(rgb, size))
    ratio = _resize(tamper.ratio, size, nearest=True)
    known = np.isfinite(ratio)
    t = np.clip(np.nan_to_num(ratio, nan=0.0), 0.0, 1.0)
    lo, mid, hi = (np.asarray(c, np.float32) for c in (SCALE_LOW, SCALE_MID, SCALE_HIGH))
    t2 = t[..., None]
    colour = np.where(t2 < 0.5, lo + (mid - lo) * (t2 / 0.5), mid + (hi - mid) * ((t2 - 0.5) / 0.5))
    a = 0.6
    base[known] = base[known] * (1 - a) + colour[known] * a
    _hatch_over(base, ~known)
    return np.clip(base + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------- HTML


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _kv(rows) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _status(text: str, cls: str) -> str:
    return f'<span class="st {cls}">{_e(text)}</span>'


def _layer_rows(report) -> list[tuple[str, str, str]]:
    det = report.detection
    m = report.metadata
    layers = report.layers
    meta = layers.get("metadata", "absent")
    if meta == "valid":
        md = (f"TC260:AIGC label read from {_e(m.source)}: Label {_e(m.label.label)} "
              f"({_e(m.label.meaning)}), ContentProducer <code>{_e(m.label.content_producer)}</code>, "
              f"ProduceID <code>{_e(m.label.produce_id)}</code>")
    elif meta == "invalid":
        md = "a label is present but malformed: see Problems"
    else:
        md = "no GB 45438 metadata label in the file (stripped, or never written)"
    if det.found:
        p = det.payload
        wm = (f"provider {p.provider}, content ID {p.content_id}, label {p.label} "
              f"({_e(p.label_meaning)}); false-alarm probability "
              f"{det.false_alarm_probability:.1e}")
    else:
        wm = (f"no mark decoded with this key ({_e(det.reason)}; {det.hypotheses:,} "
              "hypotheses searched)")
    integ = layers.get("integrity", "not checked")
    integ_text = {
        "valid": "ReservedCode1 matches the label fields, the watermark payload and the key",
        "invalid": "ReservedCode1 does NOT match: the metadata was altered or copied",
        "absent": "the label carries no provmark integrity code (pm1:...)",
        "not checked": "needs both a valid metadata label and a decoded watermark",
    }.get(integ, "")
    ts = report.tamper_summary
    if ts.get("available"):
        n = ts["missing_region_count"]
        tam_state = "missing in part" if n else "intact"
        tam = (f"mark missing in {ts['missing_fraction']:.1%} of the analysed area "
               f"({n} region{'s' if n != 1 else ''}); inconclusive "
               f"{ts['inconclusive_fraction']:.1%}" if n else
               "mark present wherever it can be judged; inconclusive "
               f"{ts['inconclusive_fraction']:.1%} of the analysed area")
        tam_cls = "bad" if n else "ok"
    else:
        tam_state, tam_cls = "unavailable", "none"
        tam = _e(ts.get("reason", "not computed"))
    cls = {"valid": "ok", "found": "ok", "invalid": "bad", "absent": "warn",
           "not checked": "none"}
    c2 = layers.get("c2pa", "not checked")
    return [
        ("Metadata label (GB 45438 XMP TC260:AIGC)", _status(meta, cls.get(meta, "none")), md),
        ("Watermark (implicit label in the pixels)",
         _status(layers.get("watermark", "absent"), cls.get(layers.get("watermark"), "none")), wm),
        ("Integrity code (ReservedCode1)", _status(integ, cls.get(integ, "none")), _e(integ_text)),
        ("C2PA manifest (Content Credentials)", _status(c2, _C2PA_CLASS.get(c2, "none")),
         _c2pa_summary(report)),
        ("Visible label (explicit)", _status("not checked", "none"),
         "reading the visible text needs OCR, which provmark does not do: look at the image"),
        ("Tamper map", _status(tam_state, tam_cls), tam),
    ]


_C2PA_CLASS = {"trusted": "ok", "valid": "ok", "invalid": "bad", "absent": "none",
               "not checked": "none"}
_CHECK_CLASS = {"agree": "ok", "disagree": "bad", "not applicable": "none",
                "not checked": "warn"}
_TRUST_TEXT = {
    "trusted": "the signer chains to a given trust anchor",
    "untrusted": "the signer does NOT chain to the given trust anchors: anyone could "
                 "have made this certificate",
    "no anchors": "not evaluated: no trust anchors were given (provmark inspect "
                  "--c2pa-trust ANCHORS.pem); the signature itself is checked",
    "not checked": "not evaluated (c2pa-rs stops before the trust check when an earlier "
                   "check fails)",
}


def _c2pa_summary(report) -> str:
    """The C2PA row of the layers table."""
    r = report.c2pa
    if r is None:
        return "not read"
    if r.state == "not checked":
        return _e(r.notes[0] if r.notes else "C2PA not checked")
    if r.state == "absent":
        text = _e("no C2PA manifest in the file" + (f" ({r.notes[0]})" if r.notes else ""))
        sb = report.soft_binding
        if sb is not None:
            text += (f"; the watermark names the soft binding <code>{_e(sb.alg)}</code> = "
                     f"<code>{_e(sb.value)}</code>, the key to look the signed manifest up "
                     "in a manifest repository")
        return text
    who = f"signed by {_e(r.signer or '?')}" + (f" ({_e(r.signer_issuer)})"
                                                 if r.signer_issuer else "")
    if r.state == "invalid":
        from .c2pa import describe_failures

        return f"does not validate: {_e(describe_failures(r))}; {who}"
    return (f"{who}; trust: {_e(_TRUST_TEXT.get(r.trust, r.trust))}; generator "
            f"{_e(r.claim_generator or '?')}")


def _list(items) -> str:
    if not items:
        return '<span class="sub">none</span>'
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _soft_binding_html(report) -> str:
    """What the decoded watermark resolves to as a C2PA soft binding."""
    from .c2pa import SOFT_BINDING_ALG

    sb = report.soft_binding
    if sb is None:
        return ("<p><b>Soft-binding lookup:</b> no watermark was decoded, so there is no "
                "soft-binding value to look a manifest up with.</p>")
    r = report.c2pa
    embedded = r is not None and r.found and any(
        b.alg == sb.alg and b.value == sb.value for b in r.soft_bindings)
    if embedded:
        tail = "The manifest embedded in this file carries the same soft binding."
    elif r is not None and r.found:
        tail = ("The manifest embedded in this file does not carry it (see the "
                "cross-checks).")
    else:
        tail = ("This file carries no manifest (stripped, or never signed): a C2PA manifest "
                "repository queried with this pair returns the manifest signed for the "
                "image, if its provider registered one. provmark does not query a "
                "repository (it works offline).")
    return (f"<p><b>Soft-binding lookup:</b> the decoded watermark stands for the C2PA soft "
            f"binding <code>{_e(sb.alg)}</code> = <code>{_e(sb.value)}</code> (the payload's "
            f"9 bytes in hex). {_e(tail)} <span class=sub>{_e(SOFT_BINDING_ALG)} is "
            "provmark's own algorithm name, not yet in the C2PA soft-binding algorithm "
            "list.</span></p>")


def _c2pa_html(report) -> str:
    """The C2PA Content Credentials section."""
    from .c2pa import IPTC_DST

    r = report.c2pa
    parts = []
    if r is None or r.state == "not checked":
        note = (r.notes[0] if r is not None and r.notes else
                "C2PA not checked (c2pa-python not installed)")
        parts.append(f"<p><b>{_e(note)}.</b> The other layers were checked as usual.</p>")
    elif r.state == "absent":
        parts.append("<p>No C2PA manifest in the file" + (f" ({_e(r.notes[0])})" if r.notes
                                                        else "") + ".</p>")
    else:
        def dst(value):
            return (f"<span class=mono>{_e(value.removeprefix(IPTC_DST))}</span>"
                    if value else '<span class="sub">none</span>')

        actions = [f"<code>{_e(a.action)}</code>"
                   + (f" &middot; source type {dst(a.digital_source_type)}"
                      if a.digital_source_type else "")
                   + (f" &middot; {_e(a.description)}" if a.description else "")
                   + (f" &middot; agent {_e(a.software_agent)}" if a.software_agent else "")
                   for a in r.actions]
        bindings = []
        for b in r.soft_bindings:
            p = b.payload
            bindings.append(f"<code>{_e(b.alg)}</code> = <code>{_e(b.value)}</code>"
                            + (f" (provider {p.provider}, content ID {p.content_id}, label "
                               f"{p.label})" if p else ""))
        failures = [f"<code>{_e(f.code)}</code> {_e(f.explanation)}" for f in r.failures]
        rows = [
            ("Status", _status(r.state, _C2PA_CLASS.get(r.state, "none"))
             + f" (c2pa-rs validation state: {_e(r.validation_state or '?')})"),
            ("Trust", _status(r.trust, {"trusted": "ok", "untrusted": "bad"}.get(r.trust, "none"))
             + " " + _e(_TRUST_TEXT.get(r.trust, ""))),
            ("Signer", f"{_e(r.signer or '?')}" + (f" &middot; issuer {_e(r.signer_issuer)}"
                                                   if r.signer_issuer else "")
             + (f" &middot; {_e(r.signature_algorithm)}" if r.signature_algorithm else "")
             + (f" &middot; serial <span class=mono>{_e(r.certificate_serial)}</span>"
                if r.certificate_serial else "")),
            ("Signed at", _e(r.signed_at) if r.signed_at else
             '<span class="sub">no time-stamp (signed without a time-stamp authority)</span>'),
            ("Claim generator", _e(r.claim_generator or "?")),
            ("Manifest", f"<span class=mono>{_e(r.manifest_label or '?')}</span>"
             + (f" &middot; title {_e(r.title)}" if r.title else "")
             + f" &middot; {r.manifest_count} manifest(s) in the store, "
               f"{r.ingredient_count} ingredient(s)"),
            ("Actions", _list(actions)),
            ("Digital source type", dst(r.digital_source_type)),
            ("Soft bindings", _list(bindings)),
        ]
        if r.gb45438_label is not None:
            rows.append(("GB 45438 label copy", "<span class=mono>" + _e(
                ", ".join(f"{k}={v}" for k, v in r.gb45438_label.items() if v)) + "</span>"))
        rows.append(("Validation failures", _list(failures)))
        if r.informational:
            rows.append(("Informational", _list([f"<code>{_e(f.code)}</code>"
                                                 for f in r.informational])))
        if r.notes:
            rows.append(("Notes", _list([_e(n) for n in r.notes])))
        parts.append(_kv(rows))
        if report.cross_checks:
            body = "".join(
                f"<tr><td>{_e(c.name)}</td>"
                f"<td>{_status(c.state, _CHECK_CLASS.get(c.state, 'none'))}</td>"
                f"<td>{_e(c.detail)}</td></tr>" for c in report.cross_checks)
            parts.append("<h3>Cross-checks: manifest vs GB 45438 label vs watermark</h3>"
                         "<table><tr><th>Check</th><th>Status</th><th>Compared</th></tr>"
                         f"{body}</table>")
    parts.append(_soft_binding_html(report))
    return "".join(parts)


#: Best pilot z that the detector's search reached on unmarked photos (scikit-image's
#: astronaut, coffee, chelsea and rocket at 512 and 1024 px): 3.6-4.2 over the
#: default search (526,565 hypotheses), 4.4-5.0 over the exhaustive one (10.7 M).
NULL_BEST_PILOT_Z = "3.6-5.0"

_NOT_APPLICABLE = '<span class="sub">not applicable: no mark decoded</span>'


def _watermark_rows(det) -> list[tuple[str, str]]:
    """The watermark table. Without a decoded mark only what the search did is
    shown: the grid, scale and rotation of its best hypothesis, the bits it read
    and its pilot score describe noise, not a mark, and are not findings."""
    rows = [("Found", _status("yes" if det.found else "no", "ok" if det.found else "warn"))]
    if not det.found:
        return rows + [
            ("Result", f"no mark decoded with this key ({_e(det.reason)})"),
            ("False-alarm probability, grid offset, scale / rotation, RS corrections, "
             "bit reliability", _NOT_APPLICABLE),
            ("Search statistics (not findings)",
             f"{det.hypotheses:,} grid and geometry hypotheses searched; the best reached "
             f"pilot z = {det.sync_score:.1f}. The best of a search this size is not "
             "evidence of a mark: on unmarked photos it reaches "
             f"{NULL_BEST_PILOT_Z}."),
            ("Key fingerprint", f"<span class=mono>{_e(det.key_fingerprint)}</span>"),
        ]
    p = det.payload
    return rows + [
        ("Provider code", f"<span class=mono>{p.provider}</span>"),
        ("Content ID", f"<span class=mono>{p.content_id}</span>"),
        ("Generation label", f"{p.label} ({_e(p.label_meaning)})"),
        ("Payload format version", _e(p.version)),
        ("False-alarm probability", f"{det.false_alarm_probability:.2e} "
         "(bound on the chance that an unmarked image or a wrong key gives this result, "
         "the whole search included)"),
        ("Sync score (pilot z)", f"{det.sync_score:.1f} (one grid position of an unmarked "
         "image reads about 0 \u00b1 1)"),
        ("Grid offset (y, x) px", _e(tuple(det.offset))),
        ("Scale / rotation", f"{det.scale:g} / {det.rotation:g} deg " + {
            "coarse": "(read on the copy reduced by 2: the coarse layer of a copy at the "
                      "original's size, or the fine mark of a copy enlarged 2x)",
            "both": "(relative to the marked original; read on the fine mark and the "
                    "coarse layer at once, neither of which decoded alone)",
            "extended": "(relative to the marked original; read on the carriers and the "
                        "extension carriers at once: the carriers alone did not decode)",
        }.get((det.details or {}).get("layer"), "(relative to the marked original)")),
        ("Hypotheses searched", f"{det.hypotheses:,}"),
        ("RS symbols corrected / erased", f"{det.corrected_symbols} / {det.erasures}"),
        ("Bit reliability", f"{det.bit_reliability:.2f} (0 noise .. 1 clean)"),
        ("Blocks read", _e(det.blocks_used)),
        ("Key fingerprint", f"<span class=mono>{_e(det.key_fingerprint)}</span>"),
        ("Decoder", _e(det.reason)),
    ]


def _metadata_html(report) -> str:
    m = report.metadata
    if m is None:
        return "<p>The container could not be parsed for metadata (see Problems).</p>"
    state = report.layers.get("metadata", "absent")
    meaning = {
        "valid": "a well-formed TC260:AIGC label",
        "invalid": "a label is present but malformed (see the problems below)",
        "absent": "no GB 45438 metadata label in the file (stripped, or never written)",
    }.get(state, "")
    rows = [("Container", _e(report.container)),
            ("Status", f"{_status(state, {'valid': 'ok', 'invalid': 'bad'}.get(state, 'warn'))}"
                      f" {_e(meaning)}")]
    if m.source:
        rows.append(("Found in", _e(m.source)))
    if m.label is not None:
        names = {"Label": f"{_e(m.label.label)} ({_e(m.label.meaning)})"}
        for key, value in m.label.to_dict().items():
            shown = names.get(key) or (f"<span class=mono>{_e(value)}</span>" if value
                                       else '<span class="sub">(empty)</span>')
            rows.append((key, shown))
    elif m.declared_label:
        rows.append(("Label (declared)", _e(m.declared_label)))
    rows.append(("IPTC DigitalSourceType", _e(m.digital_source_type or "absent")))
    out = _kv(rows)
    if m.raw_json is not None:
        out += f"<h3>Label JSON as stored</h3><pre>{_e(m.raw_json)}</pre>"
    if m.problems:
        out += "<h3>Metadata problems</h3><ul>" + "".join(
            f"<li>{_e(p)}</li>" for p in m.problems) + "</ul>"
    return out


def _figures(report, rgb: np.ndarray | None) -> str:
    if rgb is None:
        return "<p>The image pixels were not available to this report.</p>"
    h, w = rgb.shape[:2]
    size = _display_size(h, w)
    shown = f"{size[1]}x{size[0]} px" + ("" if size == (h, w) else f" (image is {w}x{h} px)")
    parts = [f'<figure><div class="frame"><img alt="the examined image" width="{size[1]}" '
             f'height="{size[0]}" src="{_png_data_uri(_resize(rgb, size))}"></div>'
             f"<figcaption>The image as examined, shown at {_e(shown)}.</figcaption></figure>"]
    tm = report.tamper
    if tm is None:
        parts.append(f"<p><b>Tamper map unavailable:</b> "
                     f"{_e(report.tamper_summary.get('reason', 'not computed'))}.</p>")
        return "".join(parts)
    s = report.tamper_summary
    boxes = []
    for i, r in enumerate(s["missing_regions"], start=1):
        boxes.append(
            f'<div class="box" style="top:{100 * r["top"] / h:.3f}%;left:{100 * r["left"] / w:.3f}%;'
            f'width:{100 * r["width"] / w:.3f}%;height:{100 * r["height"] / h:.3f}%">'
            f"<span>{i}</span></div>")
    win = s["window_px"]
    parts.append(
        f'<figure><div class="frame"><img alt="tamper map" width="{size[1]}" height="{size[0]}" '
        f'src="{_png_data_uri(render_tamper_overlay(rgb, tm))}">{"".join(boxes)}</div>'
        '<div class="legend"><span><span class="sw missing"></span>mark missing (replaced, '
        'inpainted or pasted over)</span><span><span class="sw present"></span>no colour: mark '
        'present</span><span><span class="sw hatch"></span>inconclusive: cannot be judged '
        '(saturated, too flat after compression, or outside the block grid)</span></div>'
        f"<figcaption>Tamper map over a greyscale copy of the image. Regions are found on "
        f"windows of {win[0]}-{win[1]} px; near a missing region every 16-px block is then "
        "judged on its own evidence, so a box edge lies within about one block of the true "
        "edge (at most two). Numbered boxes are the missing regions listed "
        "below.</figcaption></figure>")
    parts.append(
        f'<figure><div class="frame"><img alt="evidence heatmap" width="{size[1]}" '
        f'height="{size[0]}" src="{_png_data_uri(render_evidence_heatmap(rgb, tm))}"></div>'
        '<div class="legend"><span>measured / expected mark strength</span>'
        '<span class="scalebox"><span class="scale"></span><span class="scalelab">'
        '<span>0 absent</span><span>0.5</span><span>&ge;1 as expected</span></span></span>'
        '<span><span class="sw hatch"></span>inconclusive (no colour)</span></div>'
        "<figcaption>Evidence heatmap: the window z-score divided by what an intact mark "
        "would reach there (texture-calibrated). Red: the expected symbols are not there; "
        f"blue: they are. A window reads missing below {_threshold_text(s)} of the "
        "expectation (1/(1+s), s the spread of intact windows measured on this "
        "image).</figcaption></figure>")
    if s["missing_regions"]:
        rows = "".join(
            f"<tr><td>{i}</td><td>{r['left']}</td><td>{r['top']}</td><td>{r['width']}</td>"
            f"<td>{r['height']}</td><td>{100 * r['area_px'] / (h * w):.1f}%</td></tr>"
            for i, r in enumerate(s["missing_regions"], start=1))
        more = (f"<p class=sub>{s['missing_region_count'] - len(s['missing_regions'])} smaller "
                "regions not listed.</p>" if s["missing_region_count"] > len(s["missing_regions"])
                else "")
        parts.append("<h3>Missing regions (image pixels)</h3><table><tr><th>#</th><th>x</th>"
                     "<th>y</th><th>width</th><th>height</th><th>share of image</th></tr>"
                     f"{rows}</table>{more}")
    cal = s["calibration"]
    parts.append(_kv([
        ("Mark missing", f"{s['missing_fraction']:.2%} of the analysed area"),
        ("Inconclusive", f"{s['inconclusive_fraction']:.2%}"),
        ("Present", f"{s['present_fraction']:.2%}"),
        ("Analysed area", f"{s['analysed_fraction']:.2%} of the image (whole 16-px blocks)"),
        ("Analysed on", "a resampled copy (resize/rotation undone), mapped back"
         if s["resampled"] else "the image's own pixel grid"),
        ("Method", _e(s["method"])),
        ("Intact strength by texture", _e(_mu_text(cal["mu_by_texture"]))
         + " (mean score per symbol of intact blocks, flat to busy; 0 = no mark, "
         "&ndash; = not enough such blocks)"),
        ("\u2026 in partly clipped blocks", _e(_mu_text(cal["mu_by_texture_partly_clipped"]))),
    ]))
    return "".join(parts)


def _threshold_text(summary: dict) -> str:
    """The range of the missing threshold ``1/(1+s)`` (as a fraction of the intact
    expectation) over the image's texture classes."""
    spread = summary.get("calibration", {}).get("spread_by_texture") or []
    if not spread:
        return "about 0.6"
    lo, hi = 1.0 / (1.0 + max(spread)), 1.0 / (1.0 + min(spread))
    return f"{lo:.2f}" if abs(hi - lo) < 0.005 else f"{lo:.2f}-{hi:.2f}"


def _mu_text(values) -> str:
    return ", ".join("\u2013" if v is None else f"{v:.2f}" for v in values)


_HOW_TO_READ = """
<ul class="note">
<li><b>Three layers.</b> GB 45438 asks for a metadata label (the <code>TC260:AIGC</code> XMP
property), an invisible watermark in the pixels, and a visible label. Platforms usually strip
metadata; the watermark survives re-encoding, resizing, cropping and colour changes. The visible
label is not read back by provmark (that needs OCR): look at the image.</li>
<li><b>The watermark is a yes/no answer with a number.</b> "found" means Reed-Solomon and the
CRC agreed and the false-alarm probability is at most 1e-9: an unmarked image (or a wrong key)
gives such a result less than once in a billion tries. "Not found" means no mark <i>with this
key</i>; it does not prove the image is not AI-generated.</li>
<li><b>The integrity code</b> (ReservedCode1 = <code>pm1:...</code>) binds the metadata fields to
the watermark payload and the key. "invalid" means the metadata was edited or copied from another
image.</li>
<li><b>C2PA Content Credentials</b> are a signed manifest in the file. "trusted": the
signature, the hashes of the file and its assertions hold and the signer chains to a given
trust anchor; "valid": they hold but the signer is not trusted (or no anchors were given);
"invalid": something changed after signing (<code>assertion.dataHash.mismatch</code>: the
file's bytes, pixels or metadata) or the manifest is damaged. Its <i>soft binding</i> names
the watermark payload, so a manifest stripped with the metadata can be found again from the
pixels; the cross-checks compare it, and the source type it states, with the watermark and
the GB 45438 label. Nothing is fetched from the network.</li>
<li><b>The tamper map</b> asks, block by block, whether the symbols the decoded payload says
should be there are there. Where the mark is absent a window's score z behaves like N(0, 1);
where it is intact it is expected to reach E, give or take s (both measured on the intact parts
of this very image, by texture). A window is <i>missing</i> when z is below E/(1+s) (and below
3.09, above which the mark is significantly present), decided only where E is large enough for
each error to stay under 1% per window; <i>inconclusive</i> where even a 144-px window could not
tell (flat areas after strong compression, near-black or near-white areas where the mark is
never written). Near a missing region each 16-px block is then judged on its own evidence,
pooled along the edges, so that the outline follows the blocks rather than the windows.</li>
<li><b>What "missing" means.</b> The content there was replaced after the mark was embedded:
inpainted, pasted from another image, painted over, or moved. It does not say what was there
before. Edits made <i>before</i> marking (a composite the generator produced) are marked like
the rest and read intact: the map shows changes made after generation.</li>
<li><b>Limits.</b> Regions smaller than about one window (80 px at full resolution; more where
the mark is weak) may not show. Box edges lie within about one 16-px block of the true edge:
over 320 pastes of 160x160 px into marked 1024-px photos the worst edge of a box was off by
13 px in the median and by at most 31 px. Strong JPEG
compression weakens flat areas first: they turn inconclusive, not missing. Content moved by a
multiple of 512 px (the mark's full period) keeps a valid-looking mark. A copy with the mark
removed <i>everywhere</i> has no map at all.</li>
</ul>
"""


def _file_facts(source: str, data: bytes | None = None) -> list[tuple[str, str]]:
    """SHA-256 and size of the examined file: of ``data`` when the report was made
    from bytes and they are given, else of the file ``source`` names."""
    if source == "<bytes>":
        if data is None:
            return []
        return [("File SHA-256", f"<span class=mono>{hashlib.sha256(data).hexdigest()}</span>"),
                ("File size", f"{len(data):,} bytes")]
    p = Path(source)
    if not p.is_file():
        return []
    digest = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return [("File SHA-256", f"<span class=mono>{digest.hexdigest()}</span>"),
            ("File size", f"{p.stat().st_size:,} bytes")]


def render_html(report, image=None, *, name: str | None = None, data: bytes | None = None) -> str:
    """The report as one self-contained HTML document (a string).

    ``image`` is the examined image's pixels (array or PIL image) or a path; None
    reads ``report.source`` when it is a file. For a report made from bytes,
    ``name`` is shown instead of ``<bytes>`` (an upload's name: it is only displayed,
    never opened) and ``data``, the examined bytes, gives the file's SHA-256 and size.
    """
    from . import __version__

    rgb = _load_pixels(report, image)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    verdict = report.verdict
    vcls = _VERDICT_CLASS.get(verdict, "none")
    ts = report.tamper_summary
    if ts.get("available") and ts["missing_region_count"]:
        n = ts["missing_region_count"]
        tword, tcls = "partly altered", "bad"
        tline = (f"The watermark is missing in {ts['missing_fraction']:.1%} of the analysed "
                 f"area ({n} region{'s' if n != 1 else ''}, outlined below): that content "
                 f"was replaced after marking. {ts['inconclusive_fraction']:.1%} cannot be "
                 "judged.")
        if ts.get("weak_mark"):
            tword, tcls = "possibly altered", "warn"
            tline = (f"The watermark is missing in {ts['missing_fraction']:.1%} of the "
                     f"analysed area ({n} region{'s' if n != 1 else ''}, outlined below). "
                     "The mark is weak in the whole copy, as after strong compression, "
                     "which can leave areas without it as replacing them does: compare "
                     f"with another copy. {ts['inconclusive_fraction']:.1%} cannot be "
                     "judged.")
    elif ts.get("available"):
        tword, tcls = "no alteration found", "ok"
        tline = ("The watermark is present wherever it can be judged "
                 f"({ts['inconclusive_fraction']:.1%} of the analysed area cannot be judged).")
    else:
        tword, tcls = "no map", "none"
        reason = str(ts.get("reason", "not computed"))
        tline = reason[:1].upper() + reason[1:] + "."
    from_bytes = report.source == "<bytes>"
    shown = (name or "<bytes>") if from_bytes else report.source
    name = (name or "<bytes>") if from_bytes else Path(report.source).name
    layer_rows = "".join(f"<tr><td>{_e(a)}</td><td>{b}</td><td>{c}</td></tr>"
                         for a, b, c in _layer_rows(report))
    problems = ("<ul>" + "".join(f"<li>{_e(p)}</li>" for p in report.problems) + "</ul>"
                if report.problems else "<p>None.</p>")
    facts = _kv([("File", f"<span class=mono>{_e(shown)}</span>"),
                 ("Container", _e(report.container)),
                 ("Pixels", f"{report.width} x {report.height}")]
                + _file_facts(report.source, data if from_bytes else None))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="provmark {_e(__version__)}">
<title>provmark report: {_e(name)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1>Provenance forensic report</h1>
<div class="sub">{_e(name)} &middot; generated {_e(now)} by provmark {_e(__version__)}
&middot; key fingerprint <span class="mono">{_e(report.detection.key_fingerprint)}</span></div>
<div class="verdicts">
<div class="verdict {vcls}"><div class="k">Label layers</div><div class="v">{_e(verdict)}</div>
<div>{_e(_VERDICT_TEXT.get(verdict, ""))}</div></div>
<div class="verdict {tcls}"><div class="k">Pixels (tamper map)</div><div class="v">{_e(tword)}</div>
<div>{_e(tline)}</div></div>
</div>
<h2>Layers</h2>
<table><tr><th>Layer</th><th>Status</th><th>What was found</th></tr>{layer_rows}</table>
<h2>Problems</h2>
{problems}
<h2>Image and tamper map</h2>
{_figures(report, rgb)}
<h2>Watermark</h2>
{_kv(_watermark_rows(report.detection))}
<h2>Metadata label</h2>
{_metadata_html(report)}
<h2>C2PA Content Credentials</h2>
{_c2pa_html(report)}
<h2>How to read this report</h2>
{_HOW_TO_READ}
<h2>File</h2>
{facts}
<footer>Self-contained report: every image is embedded; nothing is loaded from the network.
Generated by provmark {_e(__version__)} ({_e(now)}). The tamper method is described in
provmark's docs/inspect.md.</footer>
</main>
</body>
</html>
"""


def _load_pixels(report, image):
    if image is None:
        if report.source == "<bytes>" or not Path(report.source).is_file():
            return None
        image = report.source
    if isinstance(image, (str, os.PathLike)):
        from ._io import read_image

        return read_image(image).rgb
    rgb, _ = as_rgb_array(image)
    if rgb.shape[:2] != (report.height, report.width):
        raise ImageError(f"the image is {rgb.shape[1]}x{rgb.shape[0]} but the report is about a "
                         f"{report.width}x{report.height} image: pass the pixels it was made from")
    return rgb


def write_html_report(report, image, path: str | os.PathLike, *,
                      overwrite: bool = True) -> Path:
    """Write ``report`` as one self-contained HTML file, atomically.

    Parameters
    ----------
    report : InspectionReport
        From :func:`provmark.inspect`.
    image : ndarray, PIL.Image.Image, path or None
        The pixels the report was made from (None: read ``report.source``).
    path : str or path
        Output file; must end in ``.html`` or ``.htm`` (so an image can never be
        overwritten) and must not be the inspected file.
    overwrite : bool, default True
        Replace an existing report at ``path``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ImageError
        Wrong extension, the output is the input, an existing file and not
        ``overwrite``, or a missing output directory.

    Examples
    --------
    >>> rep = provmark.inspect("found-online.jpg")  # doctest: +SKIP
    >>> write_html_report(rep, None, "found-online.report.html")  # doctest: +SKIP
    """
    p = Path(path)
    if p.suffix.lower() not in (".html", ".htm"):
        raise ImageError(f"{p}: the report must be written to a .html file")
    src = Path(report.source)
    if report.source != "<bytes>" and p.exists() and src.exists() and p.samefile(src):
        raise ImageError(f"{p}: refusing to overwrite the inspected file")
    if p.exists() and not overwrite:
        raise ImageError(f"{p}: already exists; pass --force (overwrite=True) to replace it")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ImageError(f"{parent}: output directory does not exist")
    from ._io import atomic_output

    # Exclusive unless overwriting: two processes writing the same report cannot
    # replace each other's file between the check above and the write.
    with atomic_output(p, overwrite=overwrite) as fh:
        fh.write(render_html(report, image).encode("utf-8"))
    return p
