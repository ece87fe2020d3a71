#!/usr/bin/env python3
"""Render provmark's HTML forensic report for an image and screenshot it in headless
Chromium, so the report can be looked at (and checked) without opening a browser.

Usage
-----
    .venv/bin/python scripts/render_report.py IMAGE [--key-file K] [--out DIR]
    .venv/bin/python scripts/render_report.py --demo [--out DIR]

``IMAGE`` is inspected with :func:`provmark.inspect`; ``DIR/<stem>.report.html`` is
written with :func:`provmark._report_html.write_html_report`, then
``DIR/<stem>.report.png`` is taken with Chromium (``--headless --screenshot``, a
fresh temporary profile, no network services; 1280 px wide, ``--height`` tall).
The tamper map and evidence heatmap are also saved as ``<stem>.tamper.png`` and
``<stem>.heatmap.png``.

``--demo`` makes its own case first: scikit-image's astronaut at 1024x1024 is
labelled (visible label, watermark, signed metadata) and written as JPEG, and a
quarter of it is then pasted over from the coffee photo, so the report shows a
verdict, the payload and a missing region.

Chromium is looked up as ``chromium``, ``chromium-browser``, ``google-chrome`` (or
``$CHROMIUM``); install it with ``apt-get install chromium``. Without it the HTML is
still written and the script says that the screenshot was skipped. Exit code 0 on
success, 2 on an input error.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary, or None."""
    env = os.environ.get("CHROMIUM")
    if env and Path(env).exists():
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(html: Path, png: Path, *, width: int = 1280, height: int = 2000,
               timeout: float = 120.0) -> Path:
    """Screenshot ``html`` (a local file) with headless Chromium into ``png``.

    Raises
    ------
    FileNotFoundError
        No Chromium binary found.
    RuntimeError
        Chromium failed or wrote no screenshot.
    """
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium binary found (apt-get install chromium)")
    png = Path(png).resolve()
    with tempfile.TemporaryDirectory(prefix="provmark-chromium-") as profile:
        cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--screenshot={png}",
               f"--window-size={width},{height}", Path(html).resolve().as_uri()]
        if png.exists():
            png.unlink()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-500:]}")
    return png


def demo_image(out: Path) -> Path:
    """Write the demo case (labelled JPEG, a quarter pasted over) and return its path."""
    import cv2
    import skimage.data

    import provmark
    from provmark import attacks

    rgb = cv2.resize(skimage.data.astronaut(), (1024, 1024), interpolation=cv2.INTER_CUBIC)
    donor = cv2.resize(skimage.data.coffee(), (1024, 1024), interpolation=cv2.INTER_AREA)
    payload = provmark.Payload(provider=4242, content_id=20260001, label=1)
    lab = provmark.label(rgb, payload, content_producer="ACME-IMAGE-AI",
                         produce_id="img-20260001")
    tampered = attacks.paste_patch(lab.image, area=0.25, source=donor, position=(160, 448),
                                   rng=7)
    lab = dataclasses.replace(lab, image=tampered)
    path = out / "demo-tampered.jpg"
    provmark.write_labelled(path, lab, quality=92, overwrite=True)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example:\n  .venv/bin/python scripts/render_report.py "
                                        "found-online.jpg --out reports/")
    ap.add_argument("image", nargs="?", help="image file to inspect")
    ap.add_argument("--demo", action="store_true", help="make and inspect a tampered demo image")
    ap.add_argument("--key-file", help="file holding the key (default: the public key)")
    ap.add_argument("--out", default="report-output", help="output directory (default report-output)")
    ap.add_argument("--height", type=int, default=2000, help="screenshot height in px (default 2000)")
    args = ap.parse_args(argv)
    if bool(args.image) == bool(args.demo):
        ap.error("give an IMAGE or --demo")

    import provmark
    from provmark._report_html import (render_evidence_heatmap, render_tamper_overlay,
                                       write_html_report)
    from provmark._io import read_image

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    src = demo_image(out) if args.demo else Path(args.image)
    key = None
    if args.key_file:
        key = Path(args.key_file).read_bytes().rstrip(b"\n")
    try:
        report = provmark.inspect(src, key=key)
        rgb = read_image(src).rgb
    except provmark.ImageError as exc:
        print(f"render_report: {exc}", file=sys.stderr)
        return 2
    stem = src.stem
    html = write_html_report(report, rgb, out / f"{stem}.report.html")
    print(f"{html}: {report.verdict}; {html.stat().st_size / 1e6:.1f} MB")
    if report.tamper is not None:
        from PIL import Image

        Image.fromarray(render_tamper_overlay(rgb, report.tamper)).save(out / f"{stem}.tamper.png")
        Image.fromarray(render_evidence_heatmap(rgb, report.tamper)).save(out / f"{stem}.heatmap.png")
        print(f"{out / (stem + '.tamper.png')}, {out / (stem + '.heatmap.png')}")
    try:
        png = screenshot(html, out / f"{stem}.report.png", height=args.height)
    except FileNotFoundError as exc:
        print(f"screenshot skipped: {exc}")
        return 0
    print(f"{png}: screenshot")
    return 0


if __name__ == "__main__":
    sys.exit(main())
