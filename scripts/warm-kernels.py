"""Compile provmark's Numba kernels into their on-disk cache (kernels/__pycache__).

`make test` runs this in the background while pip installs the test extras: a fresh
clone otherwise compiles every kernel in each test process that starts before the
cache exists (about a minute of CPU per process, two test workers and the CLI's
subprocesses at once). Runs the paths the library takes: embed, the default detect
of a resized copy, the exhaustive sweep, the tamper map and the embeddability check.
Safe to run twice (the second run loads the cache) or not at all.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

import provmark


def main() -> None:
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    # Smooth content with some texture, so that every code path (flat floor, texture,
    # template, pilot search) has work to do.
    base = cv2.GaussianBlur(rng.normal(128, 60, (384, 384, 3)), (0, 0), 3)
    img = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    payload = provmark.Payload(1, 2, 1)
    marked = provmark.embed(img, payload)
    provmark.check_embeddable(img)
    provmark.detect(marked)
    provmark.detect(img)  # unmarked: the blind grid search
    resized = cv2.resize(marked, (480, 480), interpolation=cv2.INTER_LINEAR)
    provmark.detect(resized)  # the template search and its resampling
    provmark.detect(cv2.resize(marked, (288, 288), interpolation=cv2.INTER_AREA),
                    search="exhaustive")
    ok, png = cv2.imencode(".png", marked[..., ::-1])
    provmark.inspect(png.tobytes(), search=True)  # the tamper map and the report's parts
    print(f"kernels compiled or loaded in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
