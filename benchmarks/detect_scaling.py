"""How detection time grows with image size, from 256x256 to 5120x2880.

For each size, a scikit-image photo (coffee, resized) is marked, and ``detect`` is
timed (median of ``--repeat`` runs, JIT warmed up first) on: the marked image (aligned
grid, no search), a crop at an odd offset (the grid search runs), a 0.75x resize (the
template path, from 0.6 MP sources), and the unmarked photo (every stage runs and
fails). ``--exhaustive`` adds the unmarked photo with ``search="exhaustive"`` for sizes
up to 1024x1024 (the sweep is bounded to sources of at most 1.2 MP).

Usage::

    python benchmarks/detect_scaling.py               # all sizes, 5 runs each
    python benchmarks/detect_scaling.py --repeat 3 --exhaustive
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2
import numpy as np

import provmark

SIZES = ((256, 256), (512, 512), (1024, 1024), (1080, 1920), (2160, 3840), (2880, 5120))


def _photo(h: int, w: int) -> np.ndarray:
    from skimage import data

    img = data.coffee()  # astronaut is too busy to mark at 256x256 within 40 dB
    interp = cv2.INTER_AREA if img.shape[0] * img.shape[1] > h * w else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(img, (w, h), interpolation=interp))


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--exhaustive", action="store_true",
                        help="also time search='exhaustive' on unmarked images up to 1024x1024")
    args = parser.parse_args(argv)
    payload = provmark.Payload(provider=1, content_id=2)
    warm = provmark.embed(_photo(512, 512), payload)
    provmark.detect(warm[3:, 5:])
    cols = ["aligned", "crop (search)", "resize 0.75", "unmarked"]
    if args.exhaustive:
        cols.append("unmarked, exhaustive")
    print(f"Command: python benchmarks/detect_scaling.py --repeat {args.repeat}"
          + (" --exhaustive" if args.exhaustive else ""))
    print()
    print("| size | megapixels | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for h, w in SIZES:
        img = _photo(h, w)
        marked = provmark.embed(img, payload)
        crop = np.ascontiguousarray(marked[7:, 11:])
        small = cv2.resize(marked, (round(w * 0.75), round(h * 0.75)), interpolation=cv2.INTER_AREA)
        cases = [marked, crop if min(crop.shape[:2]) >= 256 else None,
                 small if min(small.shape[:2]) >= 256 else None, img]
        cells = []
        for case in cases:
            if case is None:
                cells.append("-")
                continue
            found = provmark.detect(case).found
            ms = _median_ms(lambda c=case: provmark.detect(c), args.repeat)
            cells.append(f"{ms:.1f} ms" + ("" if found or case is img else " (not found)"))
        if args.exhaustive:
            if h * w <= 1024 * 1024:
                ms = _median_ms(lambda: provmark.detect(img, search="exhaustive"), max(1, args.repeat // 2))
                cells.append(f"{ms / 1e3:.2f} s")
            else:
                cells.append("-")
        print(f"| {w}x{h} | {h * w / 1e6:.2f} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
