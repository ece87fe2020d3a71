"""Tests for the self-contained HTML forensic report (provmark._report_html) and
``provmark inspect --html``: the document parses, loads nothing from the network,
inlines its images as PNG data URIs, says the verdict and the payload, escapes what
the metadata carries, is written atomically and never over an input; and, when a
Chromium binary is available, renders to a non-blank screenshot (the same check as
``scripts/render_report.py``)."""

from __future__ import annotations

import base64
import dataclasses
import html
import html.parser
import importlib.util
import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import provmark
from provmark import attacks
from provmark._report_html import render_evidence_heatmap, render_tamper_overlay, write_html_report
from provmark.cli import EXIT_ERROR, EXIT_OK, main

pytestmark = pytest.mark.usefixtures("numba_one_thread")

PAYLOAD = provmark.Payload(provider=4242, content_id=987654321, label=1)
ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("render_report",
                                                  ROOT / "scripts" / "render_report.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("render_report", mod)
    spec.loader.exec_module(mod)
    return mod


render_report = _load_script()


class _Collector(html.parser.HTMLParser):
    """Collects tags and attributes; the standard parser raises nothing on bad HTML,
    so balance of the main containers is checked by counting."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.depth: dict[str, int] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("html", "body", "main", "table", "figure", "div", "ul"):
            self.depth[tag] = self.depth.get(tag, 0) + 1

    def handle_endtag(self, tag):
        if tag in self.depth:
            self.depth[tag] -= 1

    def handle_data(self, data):
        self.text.append(data)


def parse(doc: str) -> _Collector:
    p = _Collector()
    p.feed(doc)
    p.close()
    return p


def kv_rows(doc: str) -> list[tuple[str, str]]:
    """The report's key-value rows (``<th>`` text, ``<td>`` text), tags stripped."""
    def text(fragment: str) -> str:
        return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())

    return [(text(th), text(td))
            for th, td in re.findall(r"<tr><th>((?:(?!</?t[rhd]\b).)*)</th>"
                                     r"<td>((?:(?!</?tr\b).)*)</td></tr>", doc, re.S)]


@pytest.fixture(scope="module")
def tampered_file(photo_factory, tmp_path_factory):
    """A labelled 512x512 JPEG whose right half-top quarter was pasted from another
    photo, plus its pixels."""
    src = photo_factory("chelsea", 512, 512)
    lab = provmark.label(src, PAYLOAD, content_producer="ACME<b>&AI", produce_id="img-987654321")
    att = attacks.paste_patch(np.asarray(lab.image), area=0.25,
                              source=photo_factory("coffee", 512, 512), position=(0, 256), rng=1)
    lab = dataclasses.replace(lab, image=att)
    path = tmp_path_factory.mktemp("case") / "found.jpg"
    provmark.write_labelled(path, lab, quality=92)
    return path


@pytest.fixture(scope="module")
def report_doc(tampered_file, tmp_path_factory):
    rep = provmark.inspect(tampered_file)
    out = write_html_report(rep, None, tmp_path_factory.mktemp("out") / "found.report.html")
    return rep, out, out.read_text("utf-8")


def test_report_parses_and_is_self_contained(report_doc):
    rep, out, doc = report_doc
    p = parse(doc)
    assert doc.startswith("<!DOCTYPE html>")
    assert all(v == 0 for v in p.depth.values()), p.depth
    # Nothing is fetched: no URL schemes, no protocol-relative sources, no scripts,
    # no external stylesheets or fonts.
    assert not re.search(r"https?://(?!cv\.iptc\.org/newscodes)", doc)
    assert 'src="//' not in doc and "url(" not in doc and "@import" not in doc
    assert not any(tag in ("script", "link", "iframe", "object", "embed") for tag, _ in p.tags)
    imgs = [a for tag, a in p.tags if tag == "img"]
    assert len(imgs) == 3  # the image, the tamper map, the evidence heatmap
    for a in imgs:
        assert a["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(a["src"].split(",", 1)[1])
        with Image.open(io.BytesIO(png)) as im:
            assert im.format == "PNG" and im.size == (512, 512)


def test_report_says_what_was_found(report_doc):
    rep, _, doc = report_doc
    text = " ".join(parse(doc).text)
    assert rep.verdict == "consistent"
    assert "consistent" in text.lower() and "partly altered" in text.lower()
    assert "4242" in text and "987654321" in text and "AI-generated" in text
    assert "not checked" in text  # the visible label layer
    assert "False-alarm probability" in text and "How to read this report" in text
    assert "img-987654321" in text and "TC260" in text
    # Metadata values are escaped, never markup.
    assert "ACME<b>&AI" in text and "ACME<b>" not in doc and "ACME&lt;b&gt;&amp;AI" in doc
    # The missing region is drawn as box 1 and listed.
    assert 'class="box"' in doc and "Missing regions" in text
    # The headline and the problems give the same share of the same area.
    share = f"{rep.tamper_summary['missing_fraction']:.1%} of the analysed area"
    assert share in " ".join(text.split())
    assert any(share in p for p in rep.problems), rep.problems
    # A found mark's figures are findings, and shown as such.
    rows = dict(kv_rows(doc))
    assert rows["Sync score (pilot z)"].startswith(f"{rep.detection.sync_score:.1f} ")
    assert rows["Scale / rotation"].startswith(f"{rep.detection.scale:g} / ")
    assert rows["Status"].startswith("valid") and rows["Found in"] == "xmp"
    # The heatmap states the missing threshold measured on this image, 1/(1+s).
    spread = rep.tamper_summary["calibration"]["spread_by_texture"]
    lo, hi = 1 / (1 + max(spread)), 1 / (1 + min(spread))
    assert f"below {lo:.2f}-{hi:.2f} of the expectation" in doc or (
        f"below {lo:.2f} of the expectation" in doc and round(lo, 2) == round(hi, 2))
    assert "0.5 decision" not in text


@pytest.mark.slow
def test_no_mark_report(photo_factory, tmp_path):
    path = tmp_path / "plain.png"
    Image.fromarray(photo_factory("coffee", 512, 512)).save(path)
    rep = provmark.inspect(path)
    out = write_html_report(rep, None, tmp_path / "plain.html")
    doc = out.read_text("utf-8")
    text = " ".join(parse(doc).text)
    assert "no label" in text.lower() and "Tamper map unavailable" in text
    assert len([a for t, a in parse(doc).tags if t == "img"]) == 1


def test_no_mark_report_shows_no_findings(photo_factory, tmp_path):
    """Without a decoded mark the best hypothesis of the search (its grid offset,
    scale, rotation, pilot score, bits) describes noise: none of it is shown as a
    finding. The search is summarised as statistics, labelled as such; an absent
    metadata label reads "absent", never "Valid: no"."""
    path = tmp_path / "plain.png"
    Image.fromarray(photo_factory("astronaut", 512, 512)).save(path)
    rep = provmark.inspect(path)  # the exhaustive search: it resamples by its best guess
    det = rep.detection
    assert not det.found and rep.layers["metadata"] == "absent"
    doc = write_html_report(rep, None, tmp_path / "plain.html").read_text("utf-8")
    rows = kv_rows(doc)
    keys = [k for k, _ in rows]
    for finding in ("Sync score (pilot z)", "Grid offset (y, x) px", "Scale / rotation",
                    "Bit reliability", "Blocks read", "RS symbols corrected / erased"):
        assert finding not in keys, (finding, rows)
    assert not any(k == "False-alarm probability" for k in keys)
    hidden = [(k, v) for k, v in rows if v == "not applicable: no mark decoded"]
    assert hidden and all(w in hidden[0][0] for w in ("False-alarm", "scale", "rotation"))
    stats = dict(rows)["Search statistics (not findings)"]
    assert f"{det.hypotheses:,}" in stats and f"pilot z = {det.sync_score:.1f}" in stats
    assert "not evidence of a mark" in stats
    assert f"{det.scale:g}" not in doc.split("<h2>Watermark</h2>")[1].split("<h2>")[0]
    assert ("Valid", "no") not in rows and "Valid" not in keys
    assert dict(rows)["Status"].startswith("absent no GB 45438 metadata label"), rows
    assert dict(rows)["IPTC DigitalSourceType"] == "absent"
    text = " ".join(parse(doc).text)
    assert "No watermark decoded: the map needs the payload" in text  # the headline box


def test_overlays_mark_the_region(report_doc, tampered_file):
    rep, _, _ = report_doc
    rgb = np.asarray(Image.open(tampered_file).convert("RGB"))
    tamper = render_tamper_overlay(rgb, rep.tamper)
    heat = render_evidence_heatmap(rgb, rep.tamper)
    assert tamper.shape == heat.shape == rgb.shape
    red = (tamper[..., 0].astype(int) - tamper[..., 2]) > 60
    assert red[:256, 256:].mean() > 0.7 and red[256:, :].mean() < 0.05
    warm = heat[..., 0].astype(int) - heat[..., 2]
    assert warm[32:224, 288:480].mean() > 40 > warm[300:480, 32:224].mean()


def test_write_is_safe(report_doc, tampered_file, tmp_path):
    rep, _, _ = report_doc
    with pytest.raises(provmark.ImageError, match=r"\.html"):
        write_html_report(rep, None, tmp_path / "x.png")
    with pytest.raises(provmark.ImageError, match="already exists"):
        p = tmp_path / "r.html"
        p.write_text("old")
        write_html_report(rep, None, p, overwrite=False)
    assert (tmp_path / "r.html").read_text() == "old"
    with pytest.raises(provmark.ImageError, match="does not exist"):
        write_html_report(rep, None, tmp_path / "nope" / "r.html")
    with pytest.raises(provmark.ImageError, match="pixels it was made from"):
        write_html_report(rep, np.zeros((300, 300, 3), np.uint8), tmp_path / "s.html")
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_cli_html(tampered_file, tmp_path, capsys):
    out = tmp_path / "r.html"
    before = tampered_file.read_bytes()
    assert main(["inspect", str(tampered_file), "--html", str(out)]) == EXIT_OK
    assert "report:" in capsys.readouterr().out and out.stat().st_size > 10_000
    assert main(["inspect", str(tampered_file), "--html", str(out)]) == EXIT_ERROR
    assert "already exists" in capsys.readouterr().err
    assert main(["inspect", str(tampered_file), "--html", str(out), "--force", "--json"]) == EXIT_OK
    assert '"html_report"' in capsys.readouterr().out
    # Never over an input: not an .html target, and refused outright.
    assert main(["inspect", str(tampered_file), "--html", str(tampered_file)]) == EXIT_ERROR
    assert tampered_file.read_bytes() == before
    # Several images: one report each in a directory.
    d = tmp_path / "reports"
    assert main(["inspect", str(tampered_file), str(tampered_file), "--html", str(d)]) == EXIT_OK
    assert sorted(p.name for p in d.iterdir()) == ["found-2.report.html", "found.report.html"]
    assert main(["inspect", str(tampered_file), str(tampered_file), "--html",
                 str(tmp_path / "x.html")]) == EXIT_ERROR


def test_chromium_screenshot(report_doc, tmp_path):
    """Render the report in headless Chromium and check the screenshot is a page
    with content: not blank, the right size, with the heatmap's colours in it."""
    if render_report.find_chromium() is None:
        pytest.skip("no chromium binary found (apt-get install chromium, or set $CHROMIUM); "
                    "the report's rendering was not checked")
    _, out, _ = report_doc
    png = render_report.screenshot(out, tmp_path / "shot.png", width=1280, height=2000)
    with Image.open(png) as im:
        shot = np.asarray(im.convert("RGB")).astype(int)
    assert shot.shape == (2000, 1280, 3)
    # Far from a blank page: many distinct colours, text and the photos.
    assert shot.std() > 30
    white = (shot > 245).all(axis=2).mean()
    assert 0.1 < white < 0.95
    assert len(np.unique(shot.reshape(-1, 3)[::7], axis=0)) > 2000
    # The verdict boxes' green and red borders are drawn near the top.
    top = shot[:400]
    assert ((top[..., 1] > 100) & (top[..., 0] < 60) & (top[..., 2] < 90)).sum() > 200
    assert ((top[..., 0] > 180) & (top[..., 1] < 60) & (top[..., 2] < 70)).sum() > 200


def test_report_from_bytes_names_and_hashes_the_upload(photo_factory, tmp_path):
    """A report made from bytes (the service's upload) shows the name it is given and
    the SHA-256 and size of those bytes; the name is only displayed: a server file of
    that name is never opened or hashed."""
    import hashlib

    from provmark._report_html import render_html

    buf = io.BytesIO()
    Image.fromarray(photo_factory("coffee", 320, 320)).save(buf, format="PNG")
    data = buf.getvalue()
    decoy = tmp_path / "upload.png"
    decoy.write_bytes(b"not the upload")
    rep = provmark.inspect(data, tamper=False, search=False)
    doc = render_html(rep, name=str(decoy), data=data)
    facts = dict(kv_rows(doc))
    assert facts["File"] == str(decoy)
    assert facts["File SHA-256"] == hashlib.sha256(data).hexdigest()
    assert facts["File size"] == f"{len(data):,} bytes"
    bare = dict(kv_rows(render_html(rep)))
    assert bare["File"] == "<bytes>" and "File SHA-256" not in bare
