"""The analyst's page in a real browser: Playwright driving Debian's chromium against
the service started on a loopback port (``python -m provmark.server``).

End to end: a JPEG marked by the library is chosen on the page; the page shows
"watermark present" with the right content ID, draws the heatmap over the image on its
canvas (read back pixel by pixel), and downloads the HTML report. Screenshots at a
laptop and a phone width go to a temporary directory (``PROVMARK_SCREENSHOTS=DIR``
keeps them), and the layout is checked where a screenshot would show it: nothing
wider than the viewport, nothing loaded from another origin, no console error.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from test_server_support import (ACME, ACME_KEY, ACME_WATERMARK_KEY, PUBLIC, ServerProcess,
                                 marked_jpeg)

pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright "
                                                  "(pip install playwright)")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (scripts/install-test-tools.sh); Playwright "
                "cannot download its own browser here", allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402

pytestmark = pytest.mark.slow

#: Chromium flags for a closed, headless machine.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORTS = {"laptop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
CONTENT_ID = 918273645


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("page"), workers=1, queue=4).start()
    yield srv
    srv.stop()
    assert "workers stopped" in srv.log()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    keep = os.environ.get("PROVMARK_SCREENSHOTS")
    d = Path(keep) if keep else tmp_path_factory.mktemp("screenshots")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("images")
    out = {}
    out["marked"] = d / "marked.jpg"
    out["marked"].write_bytes(marked_jpeg(PUBLIC, CONTENT_ID))
    out["acme"] = d / "acme.jpg"
    out["acme"].write_bytes(marked_jpeg(ACME, 5, key=ACME_WATERMARK_KEY, name="chelsea"))
    out["text"] = d / "notes.jpg"
    out["text"].write_bytes(b"this is not an image" * 20)
    return out


def _open(browser, server, viewport):
    page = browser.new_page(viewport=viewport, device_scale_factor=1, accept_downloads=True)
    problems = {"console": [], "foreign": []}
    page.on("console", lambda m: problems["console"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems["console"].append(str(e)))
    page.on("request", lambda r: None if r.url.startswith((server.url, "data:", "blob:"))
            else problems["foreign"].append(r.url))
    page.goto(server.url + "/")
    return page, problems


def _heatmap_pixels(page) -> dict:
    """Counts of coloured pixels on the canvas: blue (mark as expected) and red (no
    mark) against grey; a canvas never drawn is empty."""
    return page.evaluate("""() => {
        const c = document.getElementById('map');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let blue = 0, red = 0, opaque = 0;
        for (let i = 0; i < d.length; i += 4) {
            if (d[i + 3] > 0) opaque++;
            if (d[i + 2] - d[i] > 25) blue++;
            if (d[i] - d[i + 2] > 25) red++;
        }
        return {w: c.width, h: c.height, n: d.length / 4, opaque, blue, red};
    }""")


def _no_horizontal_overflow(page) -> None:
    wide = page.evaluate("""() => {
        const vw = document.documentElement.clientWidth;
        return [...document.querySelectorAll('body *')]
            .filter(e => e.offsetParent !== null && e.getBoundingClientRect().right > vw + 1)
            .map(e => e.tagName + '#' + e.id + '.' + e.className);
    }""")
    assert not wide, f"wider than the viewport: {wide[:5]}"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_marked_jpeg_end_to_end(server, browser, files, shots, device):
    page, problems = _open(browser, server, VIEWPORTS[device])
    page.set_input_files("#file", str(files["marked"]))
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)

    assert page.inner_text("#wm-state") == "watermark present"
    table = page.inner_text("#wm-table")
    assert f"Content ID\t{CONTENT_ID}" in table
    assert f"Provider\t{PUBLIC}" in table and "AI-generated" in table
    assert "\u00d7 10" in table  # the false-alarm probability, e.g. 2.1 x 10^-30
    assert page.inner_text("#verdict-text") == "metadata stripped, watermark present"
    assert page.inner_text("#md-state") == "no label"

    # The heatmap is drawn over the image: the canvas holds the heatmap's size and
    # its pixels are mostly blue (the mark as expected everywhere in an intact copy).
    page.wait_for_function("document.getElementById('map').dataset.drawn === 'heatmap'")
    px = _heatmap_pixels(page)
    assert px["w"] == 640 and px["h"] == 448 and px["opaque"] == px["n"]
    assert px["blue"] > 0.5 * px["n"], px
    page.click("button[data-view=tamper]")
    assert page.eval_on_selector("#map", "c => c.dataset.drawn") == "tamper"
    page.click("button[data-view=heatmap]")

    _no_horizontal_overflow(page)
    page.screenshot(path=str(shots / f"marked-{device}.png"), full_page=True)

    with page.expect_download(timeout=120_000) as dl:
        page.click("#download")
    download = dl.value
    assert download.suggested_filename == "marked.report.html"
    report = Path(download.path()).read_text(encoding="utf-8")
    assert "Provenance forensic report" in report and str(CONTENT_ID) in report
    page.wait_for_function("!document.getElementById('download').disabled")

    assert not problems["foreign"], problems["foreign"]
    assert not problems["console"], problems["console"]
    page.close()


def test_secret_key_and_errors(server, browser, files, shots):
    page, problems = _open(browser, server, VIEWPORTS["phone"])
    # A mark made with a provider's secret key: not found with the public key ...
    page.set_input_files("#file", str(files["acme"]))
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)
    assert page.inner_text("#wm-state") == "no watermark found"
    assert page.inner_text("#verdict-text") == "no label"
    assert page.eval_on_selector("#map", "c => c.dataset.drawn") == "image"
    # ... asking for the provider's key without an API key is refused, clearly ...
    page.click("summary")
    page.fill("#provider", str(ACME))
    page.set_input_files("#file", str(files["acme"]))
    page.wait_for_selector("#status.error")
    assert "needs an API key" in page.inner_text("#status")
    assert page.is_hidden("#result")
    # ... and found with an API key bound to the provider.
    page.fill("#api-key", ACME_KEY)
    page.set_input_files("#file", str(files["acme"]))
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)
    assert page.inner_text("#wm-state") == "watermark present"
    assert "Content ID\t5" in page.inner_text("#wm-table")
    # Not an image: the service's message, and the page still works.
    page.set_input_files("#file", str(files["text"]))
    page.wait_for_selector("#status.error")
    assert "not a recognised image file" in page.inner_text("#status")
    page.screenshot(path=str(shots / "error-phone.png"), full_page=True)
    _no_horizontal_overflow(page)
    assert not problems["foreign"], problems["foreign"]
    page.close()


def test_api_docs_page(server, browser, shots):
    page, problems = _open(browser, server, VIEWPORTS["phone"])
    page.goto(server.url + "/docs")
    page.wait_for_selector("#ops article")
    text = page.inner_text("#ops")
    for path in ("/v1/embed", "/v1/label", "/v1/detect", "/v1/inspect", "/v1/inspect/report",
                 "/healthz", "/readyz", "/metrics"):
        assert f"POST {path}" in text or f"GET {path}" in text, path
    assert "content_id *" in text and "Retry-After" in text
    _no_horizontal_overflow(page)
    page.screenshot(path=str(shots / "docs-phone.png"), full_page=True)
    assert not problems["foreign"] and not problems["console"], problems
    page.close()


def test_drop_an_image(server, browser, files):
    """Dropping a file on the drop zone works like choosing it."""
    import base64

    page, problems = _open(browser, server, VIEWPORTS["laptop"])
    data = base64.b64encode(files["marked"].read_bytes()).decode("ascii")
    page.evaluate("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "dropped.jpg", {type: "image/jpeg"}));
        const zone = document.getElementById("drop");
        for (const type of ["dragenter", "dragover", "drop"]) {
            zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true,
                                                    cancelable: true}));
        }
    }""", data)
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)
    assert page.inner_text("#wm-state") == "watermark present"
    assert f"Content ID\t{CONTENT_ID}" in page.inner_text("#wm-table")
    assert "dropped.jpg" in page.inner_text("#status")
    assert not page.eval_on_selector("#drop", "e => e.classList.contains('over')")
    assert not problems["foreign"] and not problems["console"], problems
    page.close()
