"""How much of a carrier survives compression, by its frequency: a question for a
future layout (format version 2), not a test of the current mark.

Smooth images lose the mark to WebP 50 (benchmarks/RESULTS.md): read at the true grid,
about half their channel bits come out wrong, because WebP's smooth-block coding
removes the flat-area floor. A lower-frequency carrier would survive better - but a
layout that carries the same bits on larger blocks has fewer repetitions of each. This
measures both sides on corpus images at native size.

For each block size ``B`` (16 = today's carriers: one cosine period per 16-px block, as
the LL-DCT coefficient (0, 2) of a 16x16 block; 32 and 64: the same basis on larger
blocks), a random sign is written into every block as ``sign * amplitude *
basis`` (RMS ``--amplitude`` grey levels on every pixel, the same luma change in R, G
and B, rounded), the image is compressed, and each block's projection on the basis is
read back. Reported per attack:

- ``kept``: the share of the written projection that survives (attacked marked minus
  attacked original, over written);
- ``SNR``: of what is left, block by block (attacked marked minus attacked original,
  signed by the written sign: its mean over its spread), the signal-to-noise ratio of
  one block with the host's own projection taken away, as an ideal (host-cancelling)
  reader would see it;
- ``per bit``: SNR times ``16 / B``: a layout of ``B``-px blocks carrying as many bits
  as today's repeats each bit ``(B / 16)**2`` times less often, and the SNR of a sum of
  ``n`` repetitions grows as ``sqrt(n)``; this column compares directly with the
  ``B = 16`` rows (higher is better).

::

    python benchmarks/carrier_frequency.py --corpus .corpus \\
        --images lomiri-fossa@0.25mp debian-spacefun debian-moonlight sway-blue lxqt-drop@0.4mp

About 10 s per image.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ATTACKS = (("JPEG q50", "jpeg", {"quality": 50}), ("WebP q50", "webp", {"quality": 50}),
           ("JPEG q30", "jpeg", {"quality": 30}))
BLOCKS = (16, 32, 64)


def luma(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def measure(rgb: np.ndarray, block: int, amplitude: float, rng) -> dict[str, tuple]:
    """``{attack: (kept, SNR per block)}`` for one block size."""
    from provmark import attacks

    ny, nx = rgb.shape[0] // block, rgb.shape[1] // block
    x = np.arange(block)
    row = np.cos(np.pi * (2 * x + 1) * 2 / (2 * block))  # DCT-II frequency 2: one period
    basis = np.outer(np.ones(block), row)
    basis /= np.sqrt(np.mean(basis**2))
    signs = rng.choice([-1.0, 1.0], size=(ny, nx))
    change = np.kron(signs, np.ones((block, block))) * np.tile(basis, (ny, nx)) * amplitude
    marked = rgb.copy()
    region = rgb[:ny * block, :nx * block].astype(np.float64) + change[..., None]
    marked[:ny * block, :nx * block] = np.clip(np.floor(region + 0.5), 0, 255).astype(np.uint8)

    def project(img):
        y = luma(img)[:ny * block, :nx * block]
        return (y.reshape(ny, block, nx, block) * basis[None, :, None, :]).mean(axis=(1, 3))

    written = (project(marked) - project(rgb)) * signs
    out = {}
    for label, name, params in ATTACKS:
        am = project(attacks.apply(name, marked, **params))
        ao = project(attacks.apply(name, rgb, **params))
        left = (am - ao) * signs
        kept = float(left.mean() / written.mean())
        out[label] = (kept, float(left.mean() / max(left.std(), 1e-12)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=".corpus", help="corpus directory (make corpus)")
    ap.add_argument("--images", nargs="+", required=True, metavar="ID", help="corpus image IDs")
    ap.add_argument("--amplitude", type=float, default=1.0,
                    help="RMS of the written change, grey levels (default 1.0: about 48 dB)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="write the Markdown table here too")
    args = ap.parse_args(argv)
    from PIL import Image

    manifest = Path(args.corpus) / "manifest.jsonl"
    if not manifest.is_file():
        print(f"{manifest} not found: build the corpus with `make corpus`", file=sys.stderr)
        return 2
    records = {r["id"]: r for r in map(json.loads, manifest.read_text().splitlines()) if r}
    missing = [i for i in args.images if i not in records]
    if missing:
        print(f"not in the corpus: {', '.join(missing)}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    lines = [f"Command: python benchmarks/carrier_frequency.py --corpus {args.corpus} "
             f"--amplitude {args.amplitude} --images {' '.join(args.images)}", "",
             "Each cell: kept / SNR per block / SNR per bit at today's bit density "
             "(higher is better)", "",
             "| image | block | " + " | ".join(a[0] for a in ATTACKS) + " |",
             "|---|---|" + "---|" * len(ATTACKS)]
    for image in args.images:
        with Image.open(Path(args.corpus) / records[image]["file"]) as im:
            rgb = np.ascontiguousarray(np.asarray(im.convert("RGB")))
        for block in BLOCKS:
            res = measure(rgb, block, args.amplitude, rng)
            cells = [f"{k:.2f} / {snr:.2f} / {snr * 16 / block:.2f}" for k, snr in res.values()]
            lines.append(f"| {image} | {block} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
