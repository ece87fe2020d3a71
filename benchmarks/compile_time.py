"""Numba compile time: the first embed and detect in a fresh process, with an empty
on-disk cache (compiling every kernel) and with a warm cache (loading them).

Each measurement runs in its own Python process, so nothing is shared but the cache
directory. Usage: ``python benchmarks/compile_time.py [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

_PROBE = r"""
import json, time
t0 = time.perf_counter()
import numpy as np, provmark
t1 = time.perf_counter()
img = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
p = provmark.Payload(1, 2)
t2 = time.perf_counter(); m = provmark.embed(img, p); t3 = time.perf_counter()
d = provmark.detect(m); t4 = time.perf_counter()
t5 = time.perf_counter(); provmark.embed(img, p); t6 = time.perf_counter()
assert d.payload == p
print(json.dumps({"import_s": t1 - t0, "first_embed_s": t3 - t2, "first_detect_s": t4 - t3,
                  "second_embed_s": t6 - t5}))
"""


def probe(cache_dir: str) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    cold, warm = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as cache:
            cold.append(probe(cache))
            warm.append(probe(cache))
    print(f"Command: python benchmarks/compile_time.py --repeat {args.repeat}  (median of runs, seconds)\n")
    print("| cache | import | first embed | first detect | second embed |")
    print("|---|---|---|---|---|")
    for name, runs in (("empty (compile)", cold), ("warm (load)", warm)):
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"| {name} | {med['import_s']:.2f} | {med['first_embed_s']:.2f} | "
              f"{med['first_detect_s']:.2f} | {med['second_embed_s'] * 1e3:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
