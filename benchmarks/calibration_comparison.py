"""Plain against pilot-calibrated soft decisions, on the same attacked copies.

Each robustness photo is marked, attacked (the hard attacks of
``benchmarks/code_comparison.py``; the grid is known: the aligned one, or the true
offset of the combined attack's crop) and its coefficient pairs are read once. The
payload is then decoded twice from those pairs: from the plain fold (every pair
weighted by the same function of its margin) and from the calibrated fold
(``provmark._detect.calibrated_scores``: each radius class weighted by its reliability
on the pilot). Counts exact payloads.

Usage::

    python benchmarks/calibration_comparison.py            # 512 and 1024, 3 payloads
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def run(job):
    import provmark
    from provmark._detect import (calibrated_scores, evaluate, grid_pairs, read_luma,
                                  soft_scores)
    from provmark._keys import normalize_key
    from provmark._layout import keyed_layout

    from code_comparison import ATTACKS, attack_with_grid
    from robustness import SIZES, load_photo

    name, size, seed, n_payloads = job
    img = load_photo(name, SIZES[size])
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_payloads):
        payload = provmark.Payload(int(rng.integers(0, 2**24)), int(rng.integers(0, 2**40)))
        k = normalize_key(f"calibration-comparison-{seed}-{i}")
        marked = provmark.embed(img, payload, key=k)
        for label, attack, params in ATTACKS:
            attacked, (oy, ox, ty, tx) = attack_with_grid(marked, attack, params, rng)
            coef = grid_pairs(read_luma(attacked), oy, ox)
            plain, _ = soft_scores(coef, keyed_layout(k).dither, ty, tx)
            ok_plain = evaluate(plain, k).result.payload == payload
            ok_cal = evaluate(plain, k, code_score=calibrated_scores(coef, k, ty, tx)
                              ).result.payload == payload
            rows.append((label, size, ok_plain, ok_cal))
    return rows


def main(argv=None) -> int:
    from robustness import PHOTOS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["512", "1024"], choices=["512", "1024", "1080p"])
    ap.add_argument("--payloads", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    jobs = [(n, s, 4000 + 31 * j, args.payloads) for s in args.sizes for j, n in enumerate(PHOTOS)]
    counts: dict[tuple, Counter] = defaultdict(Counter)
    with ProcessPoolExecutor(args.jobs) as pool:
        for rows in pool.map(run, jobs):
            for label, size, ok_plain, ok_cal in rows:
                for key in ((label, size), ("all", "")):
                    counts[key]["n"] += 1
                    counts[key]["plain"] += ok_plain
                    counts[key]["calibrated"] += ok_cal
    print(f"Command: python benchmarks/calibration_comparison.py --sizes {' '.join(args.sizes)} "
          f"--payloads {args.payloads}   ({time.perf_counter() - t0:.0f} s)\n")
    print("| attack | size | copies | plain fold | calibrated fold |")
    print("|---|---|---|---|---|")
    for (label, size), c in sorted(counts.items(), key=lambda kv: (kv[0][0] == "all", kv[0])):
        print(f"| {label} | {size} | {c['n']} | {c['plain']} | {c['calibrated']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
