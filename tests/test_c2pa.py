"""Tests for C2PA Content Credentials beside the GB 45438 labels (provmark.c2pa, and
their reading in provmark.inspect and the HTML report).

The certificates are made here, at test time, with ``cryptography``: a root CA and an
ES256 end-entity certificate with the extensions the C2PA certificate profile asks
for (digitalSignature key usage, emailProtection and documentSigning extended key
usages, key identifiers). No private key is committed; nothing touches the network
(no time-stamp authority, no OCSP, no remote manifest).

The bar of issue 14: a labelled PNG/JPEG/WebP with a manifest reads "consistent",
C2PA trusted (the test CA as anchor), validates with c2pa-python's own Reader, and
its TC260 XMP still reads (exiftool when installed, and provmark.metadata); with its
metadata stripped the watermark still names the soft binding; pixels changed after
signing make the manifest invalid and the tamper map finds the region; a manifest
made by c2pa-python alone is read; without c2pa-python the report says C2PA was not
checked.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.util
import io
import json
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import provmark
from provmark import attacks, metadata
from provmark import c2pa as pc
from provmark._label import encode_labelled, write_labelled
from provmark._report_html import render_html, write_html_report

c2pa = pytest.importorskip("c2pa", reason="the c2pa extra (c2pa-python) is not installed")
pytest.importorskip("cryptography")

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

pytestmark = pytest.mark.usefixtures("numba_one_thread")

PAYLOAD = provmark.Payload(provider=4242, content_id=987654321, label=1)
KEY = b"c2pa-test-secret"
PRODUCER, PRODUCE_ID = "ACME-AI", "img-987654321"
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".webp": "WEBP"}
ROOT = Path(__file__).resolve().parents[1]
#: The pasted rectangle of the "edited after signing" tests: (top, left, height, width).
EDIT_BOX = (0, 256, 256, 256)


# --------------------------------------------------------------------- certificates


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])


def _usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False)


def make_ca(cn: str = "provmark test root CA", org: str = "provmark tests"):
    """A self-signed EC P-256 root CA: (certificate, key)."""
    now = dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(cn, org)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(sign=False, ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def make_leaf(ca, ca_key, *, cn: str = "ACME image service", org: str = "ACME AI",
              ekus=(ExtendedKeyUsageOID.EMAIL_PROTECTION, x509.ObjectIdentifier(
                  "1.3.6.1.5.5.7.3.36")), days=(-1, 30), curve=ec.SECP256R1,
              sign_usage: bool = True, is_ca: bool = False, self_signed: bool = False):
    """An end-entity certificate issued by ``ca`` (C2PA profile by default; the
    keyword arguments break it for the error tests): (certificate, key)."""
    now = dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(curve())
    issuer_name, signing_key = (_name(cn, org), key) if self_signed else (ca.subject, ca_key)
    b = (x509.CertificateBuilder().subject_name(_name(cn, org)).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now + dt.timedelta(days=days[0]))
         .not_valid_after(now + dt.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
         .add_extension(_usage(sign=sign_usage, ca=is_ca), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                        critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             signing_key.public_key()), critical=False))
    if ekus:
        b = b.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    return b.sign(signing_key, hashes.SHA256()), key


def pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key, password: bytes | None = None) -> bytes:
    enc = (serialization.BestAvailableEncryption(password) if password
           else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


@dataclasses.dataclass
class Credentials:
    ca_pem: bytes
    chain_path: Path
    key_path: Path
    anchors_path: Path
    signer: pc.C2paSigner


@pytest.fixture(scope="module")
def creds(tmp_path_factory) -> Credentials:
    d = tmp_path_factory.mktemp("pki")
    ca, ca_key = make_ca()
    leaf, leaf_key = make_leaf(ca, ca_key)
    (d / "chain.pem").write_bytes(pem(leaf))  # the root stays out: it is the anchor
    (d / "signer.key").write_bytes(key_pem(leaf_key))
    (d / "signer.key").chmod(0o600)
    (d / "anchors.pem").write_bytes(pem(ca))
    signer = pc.C2paSigner.from_files(d / "chain.pem", d / "signer.key")
    return Credentials(pem(ca), d / "chain.pem", d / "signer.key", d / "anchors.pem", signer)


@pytest.fixture(scope="module")
def labelled(astronaut_512, creds):
    return provmark.label(astronaut_512, PAYLOAD, key=KEY, content_producer=PRODUCER,
                          produce_id=PRODUCE_ID, c2pa=creds.signer)


@pytest.fixture(scope="module")
def files(labelled, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("signed")
    return {ext: write_labelled(d / f"img{ext}", labelled, quality=92) for ext in FORMATS}


def own_reader(data: bytes, mime: str, anchors: bytes | None):
    """c2pa-python's Reader alone (no provmark code): the validation state and the
    active manifest's failure codes."""
    settings = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if anchors:
        settings["trust"] = {"trust_anchors": anchors.decode()}
    ctx = c2pa.Context.from_dict(settings)
    with c2pa.Reader(mime, io.BytesIO(data), context=ctx) as reader:
        results = reader.get_validation_results() or {}
        failures = [f["code"] for f in (results.get("activeManifest") or {}).get("failure", [])]
        return reader.get_validation_state(), failures, reader.get_active_manifest()


# --------------------------------------------------------------------- file surgery


def _png_chunks(data: bytes):
    at = 8
    while at < len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        yield data[at + 4:at + 8], data[at:at + 12 + size]
        at += 12 + size


def _jpeg_split(data: bytes):
    """(list of APPn/COM segments, the rest from the first other marker)."""
    at, keep = 2, []
    while data[at] == 0xFF and (0xE0 <= data[at + 1] <= 0xEF or data[at + 1] == 0xFE):
        size = int.from_bytes(data[at + 2:at + 4], "big")
        keep.append(data[at:at + 2 + size])
        at += 2 + size
    return keep, data[at:]


def replace_pixels(signed: bytes, rgb: np.ndarray, fmt: str) -> bytes:
    """``signed`` with its pixel data replaced by ``rgb``'s, every other byte (the
    XMP, the C2PA manifest) kept as it was: an editor that keeps the metadata."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    fresh = buf.getvalue()
    if fmt == "PNG":
        idat = b"".join(c for k, c in _png_chunks(fresh) if k == b"IDAT")
        out, done = [signed[:8]], False
        for kind, chunk in _png_chunks(signed):
            if kind == b"IDAT":
                if not done:
                    out.append(idat)
                    done = True
                continue
            out.append(chunk)
        return b"".join(out)
    assert fmt == "JPEG"
    segments, _ = _jpeg_split(signed)
    _, body = _jpeg_split(fresh)
    return b"\xff\xd8" + b"".join(segments) + body


def strip_metadata(path: Path, out: Path) -> Path:
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    fmt = FORMATS[path.suffix]
    rgb.save(out, fmt, **({} if fmt == "PNG" else {"quality": 95}))
    return out


def exiftool_aigc(path: Path) -> str | None:
    """The TC260:AIGC value as exiftool reads it, or None without exiftool."""
    tool = shutil.which("exiftool")
    if tool is None:
        return None
    res = subprocess.run([tool, "-j", "-XMP-TC260:AIGC", str(path)], capture_output=True,
                         text=True, check=True, timeout=60)
    row = json.loads(res.stdout)[0]
    # exiftool has no table for the TC260 namespace and names the tag from its XMP
    # name ("Aigc" in exiftool 12.57): match it case-insensitively; "" when missing.
    return next((v for k, v in row.items() if k.lower() == "aigc"), "")


# --------------------------------------------------------------------- the bar


@pytest.mark.parametrize("ext", list(FORMATS))
def test_round_trip_all_layers_consistent(files, creds, ext):
    path = files[ext]
    rep = provmark.inspect(path, key=KEY, c2pa_trust=creds.anchors_path)
    assert rep.verdict == "consistent", rep.problems
    assert rep.layers == {"metadata": "valid", "watermark": "found", "integrity": "valid",
                          "c2pa": "trusted", "explicit": "not checked"}
    assert not rep.problems
    r = rep.c2pa
    assert (r.state, r.trust, r.validation_state) == ("trusted", "trusted", "Trusted")
    assert r.signer == "ACME image service" and r.signer_issuer == "ACME AI"
    assert r.claim_generator.startswith("provmark ")
    assert [a.action for a in r.actions] == ["c2pa.created", "c2pa.watermarked"]
    assert r.digital_source_type == pc.TRAINED_ALGORITHMIC_MEDIA
    assert [(b.alg, b.value) for b in r.soft_bindings] == [
        ("io.provmark.v1", PAYLOAD.to_bytes().hex())]
    assert r.provmark_payload == PAYLOAD
    assert r.gb45438_label["ProduceID"] == PRODUCE_ID
    assert r.failures == () and r.signed_at is None  # offline: no time-stamp
    assert {c.state for c in rep.cross_checks} == {"agree"}
    assert len(rep.cross_checks) == 4
    row = json.loads(json.dumps(rep.to_dict()))  # JSON-ready
    assert row["c2pa"]["soft_bindings"][0]["payload"] == {
        "provider": PAYLOAD.provider, "content_id": PAYLOAD.content_id, "label": 1}
    # c2pa-python's own Reader agrees, with and without the anchor.
    data = path.read_bytes()
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp"}[ext]
    state, failures, manifest = own_reader(data, mime, creds.ca_pem)
    assert (state, failures) == ("Trusted", [])
    assert manifest["signature_info"]["common_name"] == "ACME image service"
    state, failures, _ = own_reader(data, mime, None)
    assert (state, failures) == ("Valid", ["signingCredential.untrusted"])
    # The TC260 XMP still reads, and says the same as before signing.
    reading = metadata.read_label(data)
    assert reading.found and reading.label == rep.metadata.label
    assert reading.digital_source_type == pc.TRAINED_ALGORITHMIC_MEDIA
    aigc = exiftool_aigc(path)
    if aigc is not None:  # exiftool installed: it must read the label
        assert aigc, f"exiftool did not read TC260:AIGC from {path.name}"
        assert json.loads(aigc) == reading.label.to_dict()


def test_exiftool_reads_the_signed_files(files):
    """The TC260 label of every signed file reads in exiftool (the issue's bar)."""
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool not installed (apt-get install libimage-exiftool-perl)")
    for path in files.values():
        assert json.loads(exiftool_aigc(path))["ProduceID"] == PRODUCE_ID


def test_signing_only_adds_the_manifest(labelled, files):
    """The signed file is the unsigned one plus the manifest: same pixels, same XMP."""
    plain = encode_labelled(dataclasses.replace(labelled, c2pa=None), "PNG")
    signed = files[".png"].read_bytes()
    assert pc.sniff_manifest(plain) is False and pc.sniff_manifest(signed) is True
    kept = signed[:8] + b"".join(c for k, c in _png_chunks(signed) if k != b"caBX")
    assert kept == plain


def test_without_anchors_valid_not_trusted(files):
    rep = provmark.inspect(files[".jpg"], key=KEY)
    assert rep.verdict == "consistent" and not rep.problems
    assert rep.layers["c2pa"] == "valid"
    assert rep.c2pa.trust == "no anchors"
    doc = render_html(rep, None)
    assert "no trust anchors were given" in doc


def test_other_anchors_untrusted(files, tmp_path):
    other, _ = make_ca("some other CA", "elsewhere")
    anchors = tmp_path / "other.pem"
    anchors.write_bytes(pem(other))
    rep = provmark.inspect(files[".png"], key=KEY, c2pa_trust=anchors)
    assert rep.layers["c2pa"] == "valid" and rep.c2pa.trust == "untrusted"
    assert rep.verdict == "consistent"
    assert any("does not chain to the given trust anchors" in p for p in rep.problems)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_metadata_stripped_watermark_names_the_manifest(files, creds, ext, tmp_path):
    stripped = strip_metadata(files[ext], tmp_path / f"stripped{ext}")
    rep = provmark.inspect(stripped, key=KEY, c2pa_trust=creds.anchors_path)
    assert rep.verdict == "metadata stripped, watermark present"
    assert rep.layers["c2pa"] == "absent" and rep.layers["metadata"] == "absent"
    assert rep.detection.payload == PAYLOAD
    original = provmark.inspect(files[ext], key=KEY).c2pa.soft_bindings[0]
    assert (rep.soft_binding.alg, rep.soft_binding.value) == (original.alg, original.value)
    assert rep.to_dict()["soft_binding_lookup"] == {"alg": "io.provmark.v1",
                                                    "value": original.value}
    doc = render_html(rep, None)
    assert f"<code>io.provmark.v1</code> = <code>{original.value}</code>" in doc
    assert "This file carries no manifest" in doc
    assert f"soft binding io.provmark.v1 = {original.value}" in pc.report_lines(rep)[0]
    assert (f"the watermark names the soft binding <code>io.provmark.v1</code> = "
            f"<code>{original.value}</code>") in doc  # in the layers table, at the top


def _overlap(region: dict, box) -> float:
    top, left, h, w = box
    dy = min(region["top"] + region["height"], top + h) - max(region["top"], top)
    dx = min(region["left"] + region["width"], left + w) - max(region["left"], left)
    return max(0, dy) * max(0, dx) / (region["height"] * region["width"])


@pytest.fixture(scope="module")
def edited(files, photo_factory, tmp_path_factory):
    """The signed PNG and JPEG with a 256x256 patch of another photo pasted over their
    top-right quarter after signing; all other bytes (XMP, manifest) kept."""
    d = tmp_path_factory.mktemp("edited")
    out = {}
    for ext in (".png", ".jpg"):
        signed = files[ext].read_bytes()
        with Image.open(io.BytesIO(signed)) as im:
            rgb = np.asarray(im.convert("RGB"))
        pasted = attacks.paste_patch(rgb, area=0.25, source=photo_factory("coffee", 512, 512),
                                     position=EDIT_BOX[:2], rng=1)
        assert (pasted[:256, :256] == rgb[:256, :256]).all()  # only the top-right changed
        path = d / f"edited{ext}"
        path.write_bytes(replace_pixels(signed, pasted, FORMATS[ext]))
        out[ext] = path
    return out


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_pixels_edited_after_signing(edited, creds, ext):
    path = edited[ext]
    rep = provmark.inspect(path, key=KEY, c2pa_trust=creds.anchors_path)
    assert rep.verdict == "C2PA manifest invalid"
    assert rep.layers["c2pa"] == "invalid"
    assert "assertion.dataHash.mismatch" in rep.c2pa.failure_codes
    assert rep.c2pa.trust == "trusted"  # who signed is still known; what was signed changed
    assert any(p.startswith("C2PA manifest invalid: assertion.dataHash.mismatch (the file's "
                            "bytes") for p in rep.problems)
    # The metadata and the watermark are still there and agree: only C2PA sees the edit...
    assert rep.layers["metadata"] == "valid" and rep.integrity is True
    assert rep.detection.payload == PAYLOAD
    # ...and the tamper map says where: the largest missing region lies in the patch.
    ts = rep.tamper_summary
    assert ts["missing_region_count"] >= 1
    assert _overlap(ts["missing_regions"][0], EDIT_BOX) > 0.8, ts["missing_regions"][0]
    # c2pa-python's own Reader says the same.
    mime = "image/png" if ext == ".png" else "image/jpeg"
    state, failures, _ = own_reader(path.read_bytes(), mime, creds.ca_pem)
    assert state == "Invalid" and "assertion.dataHash.mismatch" in failures
    doc = render_html(rep, None)
    assert "C2PA manifest invalid" in doc and "assertion.dataHash.mismatch" in doc


def test_xmp_edited_after_signing(files, creds):
    """Rewriting the XMP label after signing breaks the hard binding too; the
    integrity code (which binds ProduceID) takes precedence in the verdict."""
    data = files[".png"].read_bytes()
    lab = metadata.read_label(data).label
    forged = metadata.write_label(data, dataclasses.replace(lab, produce_id="img-1"))
    rep = provmark.inspect(forged, key=KEY, c2pa_trust=creds.anchors_path)
    assert rep.verdict == "integrity code invalid"
    assert rep.layers["c2pa"] == "invalid"
    assert "assertion.dataHash.mismatch" in rep.c2pa.failure_codes
    check = {c.name: c for c in rep.cross_checks}["manifest GB 45438 copy vs XMP label"]
    assert check.state == "disagree"
    assert "ProduceID: manifest img-987654321, XMP img-1" in check.detail


def test_manifest_from_another_tool(photo_factory, tmp_path):
    """A manifest made with c2pa-python alone (another claim generator, a camera
    source type, its own CA) on an unmarked photo is read and reported."""
    ca, ca_key = make_ca("Other Camera Root", "OtherCam Inc")
    leaf, leaf_key = make_leaf(ca, ca_key, cn="OtherCam signer", org="OtherCam Inc")
    rgb = photo_factory("chelsea", 512, 512)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    manifest = {
        "claim_generator_info": [{"name": "OtherCam", "version": "2.0"}],
        "title": "cat.jpg",
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [
            {"action": "c2pa.created",
             "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"},
            {"action": "c2pa.color_adjustments"}]}},
            {"label": "c2pa.soft-binding", "data": {
                "alg": "com.adobe.trustmark.Q", "blocks": [{"scope": {}, "value": "2*0101"}]}}],
    }
    ctx = c2pa.Context.from_dict({"verify": {"verify_trust": False,
                                             "remote_manifest_fetch": False},
                                  "builder": {"thumbnail": {"enabled": False}}})
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(
        c2pa.C2paSigningAlg.ES256, pem(leaf) + pem(ca), key_pem(leaf_key), None))
    out = io.BytesIO()
    c2pa.Builder(manifest, context=ctx).sign(signer, "image/jpeg", io.BytesIO(buf.getvalue()), out)
    path = tmp_path / "cat.jpg"
    path.write_bytes(out.getvalue())

    rep = provmark.inspect(path, c2pa_trust=pem(ca), search=True)
    assert rep.verdict == "C2PA manifest only"
    assert rep.layers["c2pa"] == "trusted" and rep.layers["watermark"] == "absent"
    r = rep.c2pa
    assert r.claim_generator == "OtherCam 2.0" and r.title == "cat.jpg"
    assert r.signer == "OtherCam signer" and r.signer_issuer == "OtherCam Inc"
    assert [a.action for a in r.actions] == ["c2pa.created", "c2pa.color_adjustments"]
    assert r.digital_source_type.endswith("/digitalCapture")
    assert [(b.alg, b.value) for b in r.soft_bindings] == [("com.adobe.trustmark.Q", "2*0101")]
    assert r.provmark_payload is None and r.gb45438_label is None
    sb = {c.name: c for c in rep.cross_checks}["manifest soft binding vs watermark"]
    assert sb.state == "not applicable" and "com.adobe.trustmark.Q" in sb.detail
    doc = render_html(rep, None)
    for text in ("OtherCam 2.0", "OtherCam signer", "c2pa.color_adjustments", "digitalCapture",
                 "com.adobe.trustmark.Q", "C2PA manifest only"):
        assert text in doc, text


def test_manifest_that_contradicts_the_labels(labelled, creds):
    """A manifest (validly signed) whose soft binding names another payload: the
    manifest and the watermark disagree."""
    plain = encode_labelled(dataclasses.replace(labelled, c2pa=None), "PNG")
    other = provmark.Payload(provider=4242, content_id=1, label=1)
    signed = pc.sign_manifest(plain, creds.signer, payload=other, label=labelled.label)
    rep = provmark.inspect(signed, key=KEY, c2pa_trust=creds.ca_pem)
    assert rep.layers["c2pa"] == "trusted"
    assert rep.verdict == "C2PA manifest and watermark disagree"
    check = {c.name: c for c in rep.cross_checks}["manifest soft binding vs watermark"]
    assert check.state == "disagree"
    assert f"manifest binds {other.to_bytes().hex()} (provider 4242, content ID 1" in check.detail


def test_manifest_source_type_contradicts_metadata(labelled, creds, monkeypatch):
    """A manifest claiming a camera capture on an image labelled AI-generated."""
    real = pc.build_manifest

    def capture(**kw):
        m = real(**kw)
        m["assertions"][0]["data"]["actions"][0]["digitalSourceType"] = (
            pc.IPTC_DST + "digitalCapture")
        return m

    monkeypatch.setattr(pc, "build_manifest", capture)
    plain = encode_labelled(dataclasses.replace(labelled, c2pa=None), "JPEG")
    signed = pc.sign_manifest(plain, creds.signer, label=labelled.label)  # no soft binding
    rep = provmark.inspect(signed, key=KEY, c2pa_trust=creds.ca_pem)
    assert rep.verdict == "C2PA manifest and watermark disagree"  # label 1 in the pixels too
    states = {c.name: c.state for c in rep.cross_checks}
    assert states["manifest source type vs metadata Label"] == "disagree"
    assert states["manifest source type vs watermark label"] == "disagree"
    assert states["manifest source type vs XMP DigitalSourceType"] == "disagree"


def test_c2pa_not_installed(files, labelled, creds, monkeypatch, tmp_path):
    """Without c2pa-python (the import fails) everything else works and the report
    says C2PA was not checked; signing refuses with the install hint."""
    monkeypatch.setitem(sys.modules, "c2pa", None)  # `import c2pa` raises ImportError
    assert not pc.available()
    rep = provmark.inspect(files[".jpg"], key=KEY)
    assert rep.verdict == "consistent"
    assert rep.layers["c2pa"] == "not checked" and rep.layers["watermark"] == "found"
    assert rep.c2pa.present is True
    assert rep.c2pa.notes[0].startswith("C2PA not checked (c2pa-python not installed")
    assert any("embeds a C2PA manifest that was not validated" in p for p in rep.problems)
    out = write_html_report(rep, None, tmp_path / "r.html")
    assert "C2PA not checked (c2pa-python not installed" in out.read_text("utf-8")
    assert rep.to_dict()["c2pa"]["state"] == "not checked"
    with pytest.raises(pc.C2paUnavailableError, match=r"pip install 'provmark\[c2pa\]'"):
        encode_labelled(labelled, "PNG")
    with pytest.raises(pc.C2paUnavailableError):
        provmark.label(np.zeros((256, 256, 3), np.uint8), PAYLOAD, content_producer="A",
                       produce_id="B", c2pa=creds.signer)
    # A file without a manifest: not checked, nothing to report as a problem.
    plain = tmp_path / "plain.png"
    strip_metadata(files[".png"], plain)
    rep = provmark.inspect(plain, key=KEY)
    assert rep.c2pa.present is False and rep.layers["c2pa"] == "not checked"
    assert not any("C2PA" in p for p in rep.problems)


def test_c2pa_python_too_old(files, monkeypatch):
    """A c2pa-python without the Context API (before 0.29) is reported as such, not
    as an unreadable manifest."""
    import types

    monkeypatch.setitem(sys.modules, "c2pa", types.SimpleNamespace(__version__="0.10.0"))
    r = pc.read_manifest(files[".png"].read_bytes())
    assert r.state == "not checked" and r.present is True
    assert r.notes[0].startswith("C2PA not checked (c2pa-python 0.10.0 is too old")
    with pytest.raises(pc.C2paUnavailableError, match=r"c2pa-python>=0\.29"):
        pc.check_signing(PAYLOAD)


# --------------------------------------------------------------------- signer


def test_signer_repr_hides_the_key(creds):
    text = repr(creds.signer) + str(creds.signer)
    assert "PRIVATE" not in text and creds.signer.private_key.decode() not in text
    assert "ACME image service" in text and "es256" in text
    assert creds.signer.issuer.endswith("CN=provmark test root CA")


def _err(chain: bytes, key: bytes, **kw) -> str:
    with pytest.raises(pc.C2paError) as info:
        pc.C2paSigner(chain, key, **kw)
    msg = str(info.value)
    assert "PRIVATE KEY" not in msg
    return msg


def test_signer_profile_errors():
    ca, ca_key = make_ca()
    leaf, leaf_key = make_leaf(ca, ca_key)
    assert "does not belong to the signing certificate" in _err(
        pem(leaf), key_pem(ec.generate_private_key(ec.SECP256R1())))
    assert "es384 needs an EC P-384 key" in _err(pem(leaf), key_pem(leaf_key), algorithm="es384")
    assert "unknown C2PA signing algorithm" in _err(pem(leaf), key_pem(leaf_key),
                                                    algorithm="rs256")
    cert, key = make_leaf(ca, ca_key, self_signed=True)
    assert "self-signed" in _err(pem(cert), key_pem(key))
    cert, key = make_leaf(ca, ca_key, days=(-10, -1))
    assert "expired on" in _err(pem(cert), key_pem(key))
    cert, key = make_leaf(ca, ca_key, ekus=())
    assert "no extended key usage that C2PA accepts" in _err(pem(cert), key_pem(key))
    cert, key = make_leaf(ca, ca_key, ekus=(ExtendedKeyUsageOID.SERVER_AUTH,))
    assert "emailProtection" in _err(pem(cert), key_pem(key))
    cert, key = make_leaf(ca, ca_key, sign_usage=False)
    assert "digitalSignature" in _err(pem(cert), key_pem(key))
    assert "is a CA certificate" in _err(pem(ca) + pem(leaf), key_pem(ca_key))
    assert "not PEM" in _err(b"\x30\x82garbage", key_pem(leaf_key))
    assert "could not be parsed" in _err(
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", key_pem(leaf_key))
    assert "could not be read" in _err(
        pem(leaf), b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_signer_from_files(tmp_path):
    ca, ca_key = make_ca()
    leaf, leaf_key = make_leaf(ca, ca_key)
    (tmp_path / "chain.pem").write_bytes(pem(leaf) + pem(ca))
    (tmp_path / "enc.key").write_bytes(key_pem(leaf_key, b"s3cret"))
    with pytest.raises(pc.C2paError, match="the private key is encrypted"):
        pc.C2paSigner.from_files(tmp_path / "chain.pem", tmp_path / "enc.key")
    signer = pc.C2paSigner.from_files(tmp_path / "chain.pem", tmp_path / "enc.key",
                                      key_password="s3cret")
    assert b"ENCRYPTED" not in signer.private_key
    with pytest.raises(pc.C2paError, match=r"missing\.pem: no such file \(the certificate"):
        pc.C2paSigner.from_files(tmp_path / "missing.pem", tmp_path / "enc.key")
    with pytest.raises(pc.C2paError, match="is a directory"):
        pc.C2paSigner.from_files(tmp_path, tmp_path / "enc.key")


def test_label_refuses_labels_2_and_3(astronaut_512, creds):
    with pytest.raises(pc.C2paError, match="sign only label 1"):
        provmark.label(astronaut_512, provmark.Payload(4242, 7, label=2),
                       content_producer="A", produce_id="B", c2pa=creds.signer)
    with pytest.raises(TypeError, match="C2paSigner"):
        provmark.label(astronaut_512, PAYLOAD, content_producer="A", produce_id="B",
                       c2pa="chain.pem")


# --------------------------------------------------------------------- reading


def _damage_manifest(png: bytes) -> bytes:
    """64 bytes inside the PNG's caBX chunk zeroed, the chunk's CRC recomputed (so the
    PNG itself stays readable: only the C2PA data is damaged)."""
    out = [png[:8]]
    for kind, chunk in _png_chunks(png):
        if kind == b"caBX":
            body = bytearray(chunk[8:-4])
            body[200:264] = bytes(64)
            chunk = chunk[:8] + bytes(body) + zlib.crc32(kind + bytes(body)).to_bytes(4, "big")
        out.append(chunk)
    return b"".join(out)


def test_read_manifest_never_raises_on_damaged_data(files, creds):
    data = _damage_manifest(files[".png"].read_bytes())
    r = pc.read_manifest(bytes(data), trust_anchors=creds.ca_pem)
    assert r.state == "invalid" and r.present is True
    # Cut through the manifest: still a reading, never an exception.
    for cut in (files[".jpg"].read_bytes()[:3000], b"\x89PNG\r\n\x1a\n", b"not an image"):
        r = pc.read_manifest(cut)
        assert r.state in ("invalid", "absent")
    rep = provmark.inspect(bytes(data), key=KEY)
    assert rep.verdict == "C2PA manifest invalid"


def test_bad_trust_anchors_fail_before_the_work(files, tmp_path):
    with pytest.raises(pc.C2paError, match="no such file"):
        provmark.inspect(files[".png"], c2pa_trust=tmp_path / "nope.pem")
    (tmp_path / "empty.pem").write_text("nothing here\n")
    with pytest.raises(pc.C2paError, match="hold no PEM certificate"):
        provmark.inspect(files[".png"], c2pa_trust=tmp_path / "empty.pem")


def test_soft_binding_value_round_trip():
    assert pc.soft_binding_value(PAYLOAD) == PAYLOAD.to_bytes().hex()
    assert pc.payload_from_soft_binding(pc.soft_binding_value(PAYLOAD)) == PAYLOAD
    for bad in ("", "zz" * 9, "00" * 9, "ab" * 8, None):
        assert pc.payload_from_soft_binding(bad) is None


def test_cli_helpers(creds, files, capsys):
    parser = argparse.ArgumentParser()
    pc.add_signing_arguments(parser)
    pc.add_trust_arguments(parser)
    args = parser.parse_args(["--c2pa-cert", str(creds.chain_path),
                              "--c2pa-key", str(creds.key_path),
                              "--c2pa-trust", str(creds.anchors_path)])
    assert pc.signer_from_args(args) == creds.signer
    assert pc.trust_from_args(args) == creds.ca_pem.decode()
    assert pc.signer_from_args(parser.parse_args([])) is None
    with pytest.raises(pc.C2paError, match="go together"):
        pc.signer_from_args(parser.parse_args(["--c2pa-cert", str(creds.chain_path)]))
    rep = provmark.inspect(files[".png"], key=KEY, c2pa_trust=creds.anchors_path)
    lines = pc.report_lines(rep)
    assert lines[0].startswith("  c2pa:      trusted") and "ACME image service" in lines[0]
    assert any("io.provmark.v1 = " + PAYLOAD.to_bytes().hex() in ln for ln in lines)


# --------------------------------------------------------------------- HTML


def test_html_report_c2pa_section(files, creds, tmp_path):
    rep = provmark.inspect(files[".jpg"], key=KEY, c2pa_trust=creds.anchors_path)
    doc = write_html_report(rep, None, tmp_path / "r.html").read_text("utf-8")
    for text in ("<h2>C2PA Content Credentials</h2>", "C2PA manifest (Content Credentials)",
                 "Cross-checks: manifest vs GB 45438 label vs watermark",
                 "the signer chains to a given trust anchor", "ACME image service",
                 "<code>c2pa.watermarked</code>", "trainedAlgorithmicMedia",
                 f"<code>io.provmark.v1</code> = <code>{PAYLOAD.to_bytes().hex()}</code>",
                 "The manifest embedded in this file carries the same soft binding",
                 "no time-stamp"):
        assert text in doc, text
    assert doc.count('<span class="st ok">agree</span>') == 4


def _load_render_script():
    spec = importlib.util.spec_from_file_location("render_report",
                                                  ROOT / "scripts" / "render_report.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("render_report", mod)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_chromium_screenshot_of_the_c2pa_report(edited, creds, tmp_path):
    """The report of a file edited after signing, rendered in headless Chromium: a page
    with content, and the C2PA section's red "invalid" status drawn."""
    render_report = _load_render_script()
    if render_report.find_chromium() is None:
        pytest.skip("no chromium binary found (apt-get install chromium, or set $CHROMIUM)")
    rep = provmark.inspect(edited[".png"], key=KEY, c2pa_trust=creds.anchors_path)
    out = write_html_report(rep, None, tmp_path / "edited.report.html")
    png = render_report.screenshot(out, tmp_path / "shot.png", width=1280, height=2400)
    with Image.open(png) as im:
        shot = np.asarray(im.convert("RGB")).astype(int)
    assert shot.shape == (2400, 1280, 3) and shot.std() > 30
    red = (shot[..., 0] > 180) & (shot[..., 1] < 60) & (shot[..., 2] < 70)
    assert red[:500].sum() > 200  # the verdict box and the layer statuses


# --------------------------------------------------------------------- command line


def _cli_wired() -> bool:
    from provmark.cli import build_parser

    try:
        build_parser().parse_args(["label", "a.png", "-o", "b.png", "--provider", "1",
                                   "--content-id", "1", "--content-producer", "A",
                                   "--produce-id", "B", "--c2pa-cert", "c", "--c2pa-key", "k"])
    except SystemExit:
        return False
    return True


def test_cli_label_and_inspect_with_c2pa(creds, astronaut_512, tmp_path, capsys):
    """provmark label --c2pa-cert/--c2pa-key, then provmark inspect --c2pa-trust."""
    from provmark.cli import EXIT_ERROR, EXIT_OK, main

    if not _cli_wired():
        pytest.skip("the C2PA options are not wired into provmark.cli yet")
    src = tmp_path / "in.png"
    Image.fromarray(astronaut_512).save(src)
    out = tmp_path / "out.jpg"
    base = ["label", str(src), "-o", str(out), "--provider", "4242", "--content-id", "77",
            "--content-producer", "ACME", "--produce-id", "img-77"]
    assert main(base + ["--c2pa-cert", str(creds.chain_path)]) == EXIT_ERROR
    assert "--c2pa-cert and --c2pa-key go together" in capsys.readouterr().err
    assert main(base + ["--label", "2", "--c2pa-cert", str(creds.chain_path),
                        "--c2pa-key", str(creds.key_path)]) == EXIT_ERROR
    assert "sign only label 1" in capsys.readouterr().err
    assert not out.exists()
    assert main(base + ["--c2pa-cert", str(creds.chain_path),
                        "--c2pa-key", str(creds.key_path)]) == EXIT_OK
    capsys.readouterr()
    assert main(["inspect", str(out), "--fast", "--c2pa-trust", str(creds.anchors_path)]) == EXIT_OK
    text = capsys.readouterr().out
    assert "CONSISTENT" in text and "c2pa:      trusted" in text
    assert "io.provmark.v1 = " + provmark.Payload(4242, 77).to_bytes().hex() in text
    assert main(["inspect", str(out), "--fast", "--json"]) == EXIT_OK
    row = json.loads(capsys.readouterr().out)
    assert row["layers"]["c2pa"] == "valid" and row["c2pa"]["trust"] == "no anchors"
    assert main(["inspect", str(out), "--c2pa-trust", str(tmp_path / "nope.pem")]) == EXIT_ERROR
    assert "no such file (the trust anchors)" in capsys.readouterr().err
