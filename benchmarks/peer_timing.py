"""Wall-clock embed and detect times of the peer watermarking packages.

A plain script (no pytest) so the lead can read numbers for the peers beside
provmark's own benchmarks: for each available peer of :mod:`peers` and each image
size it embeds random bits into scikit-image's astronaut photo (resized with
OpenCV's bicubic filter), calls once to warm up (imports, ONNX session start,
caches), then reports the median and minimum of ``--repeats`` further calls.

Example::

    .venv/bin/python benchmarks/peer_timing.py --repeats 5
    .venv/bin/python benchmarks/peer_timing.py --sizes 512x512 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import available_peers, bit_accuracy

DEFAULT_SIZES = ("512x512", "1024x1024", "1920x1080")


def _image(size: str) -> np.ndarray:
    w, h = (int(v) for v in size.lower().split("x"))
    return cv2.resize(data.astronaut(), (w, h), interpolation=cv2.INTER_CUBIC)


def _times(fn, repeats: int) -> list[float]:
    fn()  # warm-up, not counted
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), help="WxH, e.g. 1920x1080")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls after one warm-up call")
    parser.add_argument("--only", nargs="*", default=None, help="peer names to run (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    args = parser.parse_args(argv)

    rows = []
    for name, peer in available_peers().items():
        if args.only and name not in args.only:
            continue
        if isinstance(peer, str):
            rows.append({"peer": name, "unavailable": peer})
            continue
        for size in args.sizes:
            image = _image(size)
            bits = np.random.default_rng(0).integers(0, 2, peer.payload_bits).astype(bool)
            embed_t = _times(lambda p=peer, x=image, b=bits: p.embed(x, b), args.repeats)
            marked = peer.embed(image, bits)
            detect_t = _times(lambda p=peer, x=marked: p.detect(x), args.repeats)
            rows.append({
                "peer": name,
                "size": size,
                "bits": peer.payload_bits,
                "embed_median_s": statistics.median(embed_t),
                "embed_min_s": min(embed_t),
                "detect_median_s": statistics.median(detect_t),
                "detect_min_s": min(detect_t),
                "clean_bit_accuracy": bit_accuracy(peer.detect(marked).bits, bits),
                "psnr_db": float(cv2.PSNR(marked, image)),
            })
            if not args.json:
                r = rows[-1]
                print(f"{name:32s} {size:>10s} {r['bits']:3d} bits  embed {r['embed_median_s']*1e3:8.1f} ms"
                      f"  detect {r['detect_median_s']*1e3:8.1f} ms  clean acc {r['clean_bit_accuracy']:.3f}"
                      f"  PSNR {r['psnr_db']:.1f} dB", flush=True)
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "repeats": args.repeats, "rows": rows}, indent=1))
    else:
        for r in rows:
            if "unavailable" in r:
                print(f"{r['peer']:32s} unavailable: {r['unavailable']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
