"""``provmark.inspect``: a forensic report on one image file across the label layers.

This module owns the cross-layer verdict. It reads the GB 45438 metadata label
(:func:`provmark.metadata.read_label`: parsed, validated, problems listed — malformed
metadata never raises), detects the watermark in the pixels (:func:`provmark.detect`),
verifies the ``ReservedCode1`` integrity code when both are present, maps where the
decoded mark is missing (:mod:`provmark._tamper`), reads any C2PA manifest
(:func:`provmark.c2pa.read_manifest`: validation state, trust, signer, actions, source
type, soft bindings), cross-checks it against the GB 45438 label and the decoded
watermark, and says per layer and overall what the image carries. The explicit
(visible) label is not read back: that needs OCR, so its layer is reported as "not
checked".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import _tamper
from . import c2pa as _c2pa
from . import metadata as _metadata
from ._detect import Detection, locate
from ._image import ImageError
from ._io import read_image_bytes
from ._keys import normalize_key

#: Overall verdicts, in the order of :func:`inspect`'s decision.
#: A tamper map's missing regions are reported with a caveat when the detection's bit
#: reliability is under this: the mark is weak in the whole copy, as after strong
#: compression, where the map can call untampered areas missing. Session 22, corpus
#: copies up to 2 MP after JPEG 30 / WebP 50 / JPEG 50, untampered: the 10 maps of 154
#: that called over 2% missing (up to 29%) came with reliabilities 0.17-0.38; a quarter
#: pasted into the tests' 512 and 1024 photos reads 0.38-0.71 (the caveat then says
#: "may", on the weakest).
WEAK_MARK_RELIABILITY = 0.4

VERDICTS = (
    "consistent",
    "integrity code invalid",
    "C2PA manifest invalid",
    "metadata and watermark disagree",
    "C2PA manifest and watermark disagree",
    "C2PA manifest and metadata disagree",
    "watermark absent",
    "metadata stripped, watermark present",
    "metadata invalid, watermark present",
    "metadata invalid, no watermark",
    "C2PA manifest only",
    "no label",
)

#: States of a :class:`CrossCheck`.
CHECK_STATES = ("agree", "disagree", "not applicable", "not checked")


@dataclass(frozen=True)
class CrossCheck:
    """One comparison between the C2PA manifest and another layer.

    Attributes
    ----------
    name : str
        What is compared, e.g. "manifest soft binding vs watermark".
    against : str
        The other layer: ``"watermark"`` or ``"metadata"``.
    state : str
        One of :data:`CHECK_STATES`.
    detail : str
        The values compared, in words.
    """

    name: str
    against: str
    state: str
    detail: str

    def to_dict(self) -> dict:
        return {"name": self.name, "against": self.against, "state": self.state,
                "detail": self.detail}


@dataclass(frozen=True)
class InspectionReport:
    """Result of :func:`provmark.inspect`.

    Attributes
    ----------
    source : str
        The file path, or ``"<bytes>"``.
    container : str
        ``"png"``, ``"jpeg"``, ``"webp"`` or ``"?"`` (metadata could not be parsed).
    width, height : int
        Pixel size.
    metadata : LabelReading or None
        What the metadata reader found; None if the container could not be parsed.
    detection : Detection
        The watermark detection.
    integrity : bool or None
        True/False when a provmark integrity code (``ReservedCode1`` = ``pm1:...``)
        was checked against the decoded payload and the key; None when it was not
        present or could not be checked (no metadata label or no watermark).
    layers : dict
        Per-layer verdicts: ``metadata`` ("valid", "invalid", "absent"),
        ``watermark`` ("found", "absent"), ``integrity`` ("valid", "invalid",
        "absent", "not checked"), ``explicit`` ("not checked").
    verdict : str
        One of :data:`VERDICTS`.
    problems : tuple of str
        Everything wrong that was found (metadata problems, disagreements).
    tamper : TamperMap or None
        Where the decoded mark is present, missing or cannot be judged
        (:func:`provmark._tamper.tamper_map`); None when no watermark was found.
    tamper_summary : dict
        The map's JSON-ready summary, or ``{"available": False, "reason": ...}``.
    c2pa : C2paReading or None
        The C2PA manifest reading (:func:`provmark.c2pa.read_manifest`); its
        ``state`` is also ``layers["c2pa"]``: "trusted", "valid", "invalid",
        "absent" or "not checked" (c2pa-python not installed).
    cross_checks : tuple of CrossCheck
        The manifest compared with the watermark and the metadata label (empty
        without a manifest).
    """

    source: str
    container: str
    width: int
    height: int
    metadata: _metadata.LabelReading | None
    detection: Detection
    integrity: bool | None
    layers: dict = field(compare=False)
    verdict: str
    problems: tuple[str, ...] = ()
    tamper: _tamper.TamperMap | None = field(default=None, repr=False, compare=False)
    tamper_summary: dict = field(default_factory=lambda: _tamper.unavailable_summary(
        "not computed"), compare=False)
    c2pa: _c2pa.C2paReading | None = field(default=None, compare=False)
    cross_checks: tuple[CrossCheck, ...] = field(default=(), compare=False)

    @property
    def found(self) -> bool:
        """True when the image has a watermark or a valid metadata label."""
        return self.detection.found or (self.metadata is not None and self.metadata.found)

    @property
    def soft_binding(self) -> _c2pa.SoftBinding | None:
        """The C2PA soft binding the decoded watermark stands for (algorithm
        :data:`provmark.c2pa.SOFT_BINDING_ALG`, value the payload's hex): the key a
        manifest repository is searched with when the file's own manifest was
        stripped. None without a decoded watermark."""
        if not self.detection.found:
            return None
        return _c2pa.SoftBinding(_c2pa.SOFT_BINDING_ALG,
                                 _c2pa.soft_binding_value(self.detection.payload))

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        m = self.metadata
        return {
            "input": self.source,
            "container": self.container,
            "width": self.width,
            "height": self.height,
            "verdict": self.verdict,
            "layers": dict(self.layers),
            "metadata": None if m is None else {
                "found": m.found,
                "label": None if m.label is None else m.label.to_dict(),
                "label_meaning": None if m.label is None else m.label.meaning,
                "source": m.source,
                "raw_json": m.raw_json,
                "declared_label": m.declared_label,
                "digital_source_type": m.digital_source_type,
                "problems": list(m.problems),
            },
            "watermark": self.detection.to_dict(),
            "integrity": self.integrity,
            "tamper": dict(self.tamper_summary),
            "c2pa": None if self.c2pa is None else self.c2pa.to_dict(),
            "soft_binding_lookup": None if self.soft_binding is None else {
                "alg": self.soft_binding.alg, "value": self.soft_binding.value},
            "cross_checks": [c.to_dict() for c in self.cross_checks],
            "problems": list(self.problems),
        }


def inspect(image, *, key: bytes | str | None = None, tamper: bool = True,
            search: bool | str = "exhaustive", c2pa_trust=None) -> InspectionReport:
    """Read every label layer of an image file and say whether they agree.

    Parameters
    ----------
    image : str, path or bytes
        An image file (PNG, JPEG or WebP) or its bytes. Metadata lives in the file,
        so decoded pixel arrays are not accepted: use :func:`provmark.detect` for those.
    key : bytes, str or None, optional
        The watermark key, also the integrity code's HMAC key; None is the public key.
    tamper : bool, default True
        Compute the tamper map when the watermark is found (about 20-50 ms).
    search : bool or "exhaustive", default "exhaustive"
        Passed to :func:`provmark.detect`. A forensic report tries everything by
        default: ``"exhaustive"`` also finds resized or rotated copies whose
        template is too weak to find, at 2-4 s more when no mark is found; ``True`` is the fast
        search of ``detect``'s default.
    c2pa_trust : bytes, str, path or None
        PEM trust anchors for the C2PA signer (e.g. the C2PA trust list or a
        provider's CA), or a file holding them; None: a valid manifest is reported
        "valid", never "trusted". Nothing is fetched from the network.

    Returns
    -------
    InspectionReport
        ``verdict`` is, in order of precedence: "integrity code invalid" (the
        ``pm1:`` code does not match the fields, the decoded payload and the key),
        "metadata and watermark disagree" (metadata ``Label`` differs from the
        watermark's), "consistent", "watermark absent" (valid metadata label, no
        mark), "metadata stripped, watermark present", "metadata invalid, watermark
        present" / "metadata invalid, no watermark" (a label is there but malformed;
        see ``problems``), "no label". A C2PA manifest adds: "C2PA manifest
        invalid" (after "integrity code invalid": a validation failure, e.g. the
        bytes changed after signing), "C2PA manifest and watermark disagree" (its
        soft binding or source type contradicts the decoded watermark), "C2PA
        manifest and metadata disagree" (its copy of the GB 45438 label or its source
        type contradicts the XMP label), and "C2PA manifest only" (a valid manifest,
        no GB 45438 label). ``tamper`` maps where the decoded mark is
        missing (see ``docs/inspect.md``); a missing region is also listed in
        ``problems``, and does not change the verdict (a crop of the marked image
        is not a forgery; an analyst decides).

    Raises
    ------
    ImageError
        The file is missing or its pixels cannot be decoded. Malformed metadata
        or C2PA data never raises: it is reported in ``problems``.
    provmark.c2pa.C2paError
        ``c2pa_trust`` names a missing file or holds no certificate.

    Examples
    --------
    >>> import provmark
    >>> rep = provmark.inspect("labelled.png")  # doctest: +SKIP
    >>> rep.verdict  # doctest: +SKIP
    'consistent'
    """
    k = normalize_key(key)
    anchors = _c2pa.load_trust_anchors(c2pa_trust)  # a bad file fails before the work
    if isinstance(image, (bytes, bytearray, memoryview)):
        data, what = bytes(image), "<bytes>"
    elif isinstance(image, (str, os.PathLike)):
        p = Path(image)
        what = str(p)
        if not p.exists():
            raise ImageError(f"{p}: no such file")
        if p.is_dir():
            raise ImageError(f"{p}: is a directory, not an image file")
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise ImageError(f"{p}: cannot read ({exc.strerror})") from None
    else:
        raise TypeError(
            f"image must be a file path or the file's bytes, not {type(image).__name__}; "
            "for a pixel array use provmark.detect")
    # The header checks (format, pixel limit) run before any pixel is decoded: a
    # 69-byte PNG claiming 30000x30000 pixels is refused, not decoded.
    rgb = read_image_bytes(data, what=what).rgb
    det, loc = locate(rgb, key=k, search=search)

    problems: list[str] = []
    try:
        reading = _metadata.read_label(data)
    except Exception as exc:  # noqa: BLE001 - a forensic report must never crash on metadata
        reading = None
        problems.append(f"metadata could not be parsed: {exc}")
    if reading is not None:
        problems += list(reading.problems)
    has_raw = reading is not None and reading.raw_json is not None
    meta_valid = reading is not None and reading.found
    meta_state = "valid" if meta_valid else ("invalid" if has_raw else "absent")

    integrity: bool | None = None
    if meta_valid and det.found:
        integrity = _metadata.verify_integrity(reading.label, det.payload.to_bytes(), k)
    if integrity is True:
        integ_state = "valid"
    elif integrity is False:
        integ_state = "invalid"
        problems.append("integrity code (ReservedCode1) does not match the label fields, "
                        "the watermark payload and the key: the metadata was altered or "
                        "copied from another image")
    elif meta_valid and not reading.label.reserved_code1.startswith("pm1:"):
        integ_state = "absent"
    else:
        integ_state = "not checked"

    if meta_valid and det.found:
        if integrity is False:
            verdict = "integrity code invalid"
        elif reading.label.label != str(det.payload.label):
            verdict = "metadata and watermark disagree"
            problems.append(f"metadata Label {reading.label.label} ({reading.label.meaning}) "
                            f"differs from the watermark's label {det.payload.label} "
                            f"({det.payload.label_meaning})")
        else:
            verdict = "consistent"
    elif meta_valid:
        verdict = "watermark absent"
    elif det.found:
        verdict = ("metadata invalid, watermark present" if has_raw
                   else "metadata stripped, watermark present")
    else:
        verdict = "metadata invalid, no watermark" if has_raw else "no label"

    tmap = None
    if not det.found:
        tsum = _tamper.unavailable_summary(
            "no watermark decoded: the map needs the payload to know what each block "
            "should carry")
    elif not tamper:
        tsum = _tamper.unavailable_summary("not requested")
    elif det.details.get("layer") in ("both", "extended"):
        # Neither reading decoded alone: region by region each is weaker still, and a
        # map of the fine grid called 94-99% of such compressed copies "missing".
        tsum = _tamper.unavailable_summary(
            "the mark decoded only with its fine and coarse layers read together: "
            "neither is strong enough region by region to map where it is missing"
            if det.details.get("layer") == "both" else
            "the mark decoded only with its carriers and extension carriers read "
            "together: neither is strong enough region by region to map where it is "
            "missing")
    else:
        tmap = _tamper.tamper_map(rgb, loc, det.payload, key=k)
        tsum = tmap.to_dict()
        tsum["weak_mark"] = det.bit_reliability < WEAK_MARK_RELIABILITY
        if tsum["missing_regions"]:
            big = tsum["missing_regions"][0]
            n = tsum["missing_region_count"]
            problems.append(
                f"watermark missing in {tsum['missing_fraction']:.1%} of the analysed area "
                f"({n} region{'s' if n != 1 else ''}; largest {big['width']}x{big['height']} "
                f"px at x={big['left']}, y={big['top']}): that part was replaced, "
                "inpainted or pasted over after marking" + (
                    f" - or, as the mark is weak in the whole copy (bit reliability "
                    f"{det.bit_reliability:.2f}), lost it to strong compression: compare "
                    "with another copy" if tsum["weak_mark"] else ""))

    manifest = _c2pa.read_manifest(data, trust_anchors=anchors)
    checks = _cross_checks(manifest, reading if meta_valid else None, det)
    problems += _c2pa_problems(manifest, checks, anchors is not None)
    verdict = _with_c2pa(verdict, manifest, checks)

    layers = {"metadata": meta_state, "watermark": "found" if det.found else "absent",
              "integrity": integ_state, "c2pa": manifest.state, "explicit": "not checked"}
    return InspectionReport(
        source=what, container=reading.container if reading is not None else "?",
        width=int(rgb.shape[1]), height=int(rgb.shape[0]), metadata=reading, detection=det,
        integrity=integrity, layers=layers, verdict=verdict, problems=tuple(problems),
        tamper=tmap, tamper_summary=tsum, c2pa=manifest, cross_checks=checks)


def _short_type(source_type: str | None) -> str:
    if not source_type:
        return "none"
    return source_type.removeprefix(_c2pa.IPTC_DST)


def _payload_text(p) -> str:
    return f"provider {p.provider}, content ID {p.content_id}, label {p.label}"


def _cross_checks(manifest, meta, det) -> tuple[CrossCheck, ...]:
    """The manifest against the decoded watermark and the (valid) metadata label."""
    if not manifest.found:
        return ()
    checks = []
    ours = [sb for sb in manifest.soft_bindings if sb.alg == _c2pa.SOFT_BINDING_ALG]
    name = "manifest soft binding vs watermark"
    if not ours:
        others = sorted({sb.alg for sb in manifest.soft_bindings})
        checks.append(CrossCheck(name, "watermark", "not applicable", (
            f"the manifest has no {_c2pa.SOFT_BINDING_ALG} soft binding"
            + (f" (soft bindings of other algorithms: {', '.join(others)}; provmark does "
               "not decode them)" if others else ""))))
    elif not det.found:
        checks.append(CrossCheck(name, "watermark", "not checked", (
            f"the manifest binds a provmark watermark ({ours[0].alg} = {ours[0].value}), "
            "but none was decoded with this key")))
    else:
        value = _c2pa.soft_binding_value(det.payload)
        if any(sb.value == value for sb in ours):
            checks.append(CrossCheck(name, "watermark", "agree",
                                     f"both {_c2pa.SOFT_BINDING_ALG} = {value} "
                                     f"({_payload_text(det.payload)})"))
        else:
            named = ours[0].payload
            checks.append(CrossCheck(name, "watermark", "disagree", (
                f"the manifest binds {ours[0].value}"
                + (f" ({_payload_text(named)})" if named else " (not a valid payload)")
                + f", the watermark reads {value} ({_payload_text(det.payload)})")))

    dst = manifest.digital_source_type
    ai = _c2pa.source_type_is_ai(dst)
    name = "manifest source type vs GB 45438 label"
    meta_label = meta.label.label if meta is not None else None
    wm_label = str(det.payload.label) if det.found else None
    if dst is None:
        checks.append(CrossCheck(name, "metadata", "not applicable",
                                 "the manifest states no digital source type"))
    elif meta_label is None and wm_label is None:
        checks.append(CrossCheck(name, "metadata", "not applicable",
                                 f"manifest: {_short_type(dst)}; no GB 45438 label to compare"))
    else:
        for against, lab in (("metadata", meta_label), ("watermark", wm_label)):
            if lab is None:
                continue
            where = "metadata Label" if against == "metadata" else "watermark label"
            if ai is False and lab == "1":
                state = "disagree"
                detail = (f"the manifest says {_short_type(dst)} (not AI-generated), the "
                          f"{where} says 1 (AI-generated)")
            elif ai is None:
                state = "not applicable"
                detail = (f"the manifest's {_short_type(dst)} neither states nor denies "
                          f"AI generation; the {where} says {lab}")
            else:
                state = "agree"
                detail = f"manifest: {_short_type(dst)}; {where}: {lab}"
            checks.append(CrossCheck(f"manifest source type vs {where}", against, state,
                                     detail))
        xmp_dst = meta.digital_source_type if meta is not None else None
        if xmp_dst and xmp_dst != dst:
            checks.append(CrossCheck("manifest source type vs XMP DigitalSourceType",
                                     "metadata", "disagree",
                                     f"manifest: {_short_type(dst)}; XMP: {_short_type(xmp_dst)}"))

    copy = manifest.gb45438_label
    if copy is not None:
        name = "manifest GB 45438 copy vs XMP label"
        if meta is None:
            checks.append(CrossCheck(name, "metadata", "not applicable", (
                "the manifest holds a copy of a GB 45438 label "
                f"(Label {copy.get('Label')}, ContentProducer {copy.get('ContentProducer')}, "
                f"ProduceID {copy.get('ProduceID')}), the file no valid XMP label")))
        else:
            xmp = meta.label.to_dict()
            differ = [k for k in sorted(set(xmp) | set(copy))
                      if (xmp.get(k) or "") != (copy.get(k) or "")]
            if differ:
                checks.append(CrossCheck(name, "metadata", "disagree", "; ".join(
                    f"{k}: manifest {copy.get(k) or '(empty)'}, XMP {xmp.get(k) or '(empty)'}"
                    for k in differ[:7])))
            else:
                checks.append(CrossCheck(name, "metadata", "agree",
                                         "all seven AIGC fields are equal"))
    return tuple(checks)


def _c2pa_problems(manifest, checks, anchors_given: bool) -> list[str]:
    out = []
    if manifest.state == "not checked" and manifest.present:
        out.append(manifest.notes[0] if manifest.notes else
                   "a C2PA manifest is embedded but was not validated")
    if manifest.state == "invalid":
        out.append(f"C2PA manifest invalid: {_c2pa.describe_failures(manifest)}")
        out += [n for n in manifest.notes if n not in out[-1]]
    if manifest.found and manifest.trust == "untrusted" and anchors_given:
        out.append(f"C2PA signer {manifest.signer or '?'} ({manifest.signer_issuer or '?'}) "
                   "does not chain to the given trust anchors")
    for c in checks:
        if c.state == "disagree":
            out.append(f"{c.name}: {c.detail}")
        elif c.state == "not checked":
            out.append(f"{c.name}: {c.detail}")
    return out


def _with_c2pa(verdict: str, manifest, checks) -> str:
    """The overall verdict once the C2PA layer is known (order of :data:`VERDICTS`)."""
    if not manifest.found or verdict == "integrity code invalid":
        return verdict
    if manifest.state == "invalid":
        return "C2PA manifest invalid"
    if verdict == "metadata and watermark disagree":
        return verdict
    against = {c.against for c in checks if c.state == "disagree"}
    if "watermark" in against:
        return "C2PA manifest and watermark disagree"
    if "metadata" in against:
        return "C2PA manifest and metadata disagree"
    if verdict == "no label":
        return "C2PA manifest only"
    return verdict
