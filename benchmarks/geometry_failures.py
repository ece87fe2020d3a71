"""Where the geometry search fails: a diagnosis of resized, rotated and squashed copies.

For every corpus image, one payload is embedded and five geometric copies are made
(resize x0.75, x1.5, x2.0, rotate +2 degrees with crop, aspect 0.89 x 0.67). Each copy
is detected with the default search, and a copy that does not decode is put in one of
four classes from ``Detection.details["template"]``:

- *estimate wrong, no lock*: the template's spectral estimate of the geometry is more
  than 2% (or 0.7 degrees) off and no resampled copy locked: the template was not
  visible in the copy's spectrum;
- *estimate wrong, locked*: a lock was reached with a wrong estimate (another lattice
  factor, or a near miss the refinement did not rescue);
- *estimate right, no lock*: the estimate is within 2% but not close enough for the
  coherent lock (z < 5.5);
- *estimate right, locked*: the template locked, the mark did not decode (the geometry
  is still off by a few tenths of a percent for the mark's blocks, or the mark is weak).

Each copy also gets the template's lock at its *true* geometry (the copy resampled by
the known resize and rotation, under the source's lattice factor): a failed copy whose
lock there reaches ``LOCK_Z`` still carries its template, which the spectral estimate
did not find; one under it lost the template.

Tables per size band and per kind of image (photo, art, screenshot, text)::

    python benchmarks/geometry_failures.py --corpus .corpus --jobs 2 [--out FILE.md]

About 3 minutes on 2 idle cores for the 73 images of ``make corpus``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

#: (label, attack, parameters, true scale (y, x), true rotation in degrees).
COPIES = (
    ("resize x0.75", "resize", {"scale": 0.75}, (0.75, 0.75), 0.0),
    ("resize x1.5", "resize", {"scale": 1.5}, (1.5, 1.5), 0.0),
    ("resize x2.0", "resize", {"scale": 2.0}, (2.0, 2.0), 0.0),
    ("rotate +2 deg + crop", "rotate", {"angle": 2.0, "crop": True}, (1.0, 1.0), 2.0),
    ("aspect 0.89 x 0.67", "resize", {"scale": (960 / 1080, 1280 / 1920)},
     (960 / 1080, 1280 / 1920), 0.0),
)
SCALE_TOLERANCE = 0.02
ROTATION_TOLERANCE = 0.7
CLASSES = ("estimate wrong, no lock", "estimate wrong, locked", "estimate right, no lock",
           "estimate right, locked")


def classify(template: dict, factor: int, true_scale, true_rotation: float, lock_z: float) -> str:
    """The failure class of a copy that did not decode (see the module docstring)."""
    sy = template.get("scale_y", 0.0) / factor
    sx = template.get("scale_x", 0.0) / factor
    right = (sy > 0 and abs(sy / true_scale[0] - 1) < SCALE_TOLERANCE
             and abs(sx / true_scale[1] - 1) < SCALE_TOLERANCE
             and abs(template.get("rotation", 0.0) - true_rotation) < ROTATION_TOLERANCE)
    locks = [lk["z"] for lk in template.get("locks", []) if lk.get("resampled")]
    locked = bool(locks) and max(locks) >= lock_z
    return f"estimate {'right' if right else 'wrong'}, {'locked' if locked else 'no lock'}"


def run_image(job):
    record, path, seed = job
    from PIL import Image

    import provmark
    from provmark import attacks
    from provmark._detect import LOCK_Z
    from provmark._keys import normalize_key
    from provmark._template import template_factor

    with Image.open(path) as im:
        img = np.ascontiguousarray(np.asarray(im.convert("RGB")))
    key = f"geometry-{seed}-{record['id']}"
    key_bytes = normalize_key(key)
    payload = provmark.Payload(123456, 987654321, 1)
    base = {"image": record["id"], "band": record["band"], "kind": record["kind"]}
    try:
        marked = provmark.embed(img, payload, key=key)
    except provmark.EmbedError as exc:
        return [{**base, "refused": str(exc)}]
    from provmark._detect import read_luma
    from provmark._sync import hypothesis_matrix
    from provmark._template import phase_lock, warp_to_grid

    factor = template_factor(*img.shape[:2])
    rows = []
    for label, attack, params, true_scale, true_rotation in COPIES:
        rng = np.random.default_rng([seed, len(record["id"]), len(label)])
        copy = attacks.apply(attack, marked, rng=rng, **params)
        if min(copy.shape[:2]) < 256:
            continue
        t0 = time.perf_counter()
        det = provmark.detect(copy, key=key)
        ms = 1000 * (time.perf_counter() - t0)
        ok = det.payload == payload
        template = det.details.get("template") or {}
        truth = hypothesis_matrix(1.0, true_rotation) @ np.diag(true_scale)
        plane = np.ascontiguousarray(warp_to_grid(read_luma(copy), truth), np.float32)
        rows.append({**base, "copy": label, "ok": ok, "ms": round(ms),
                     "truth_lock_z": round(phase_lock(plane, key_bytes, factor)[0], 2),
                     "class": None if ok else classify(template, factor, true_scale,
                                                       true_rotation, LOCK_Z)})
    return rows


def table(rows, key: str, groups) -> list[str]:
    out = [f"| {key} | copies | decoded | " + " | ".join(CLASSES) + " |",
           "|---" * (3 + len(CLASSES)) + "|"]
    for g in groups:
        rr = [r for r in rows if g == "all" or r[key] == g]
        if not rr:
            continue
        c = Counter(r["class"] for r in rr if not r["ok"])
        ok = sum(r["ok"] for r in rr)
        out.append(f"| {g} | {len(rr)} | {ok} ({100 * ok / len(rr):.0f}%) | "
                   + " | ".join(str(c[k]) for k in CLASSES) + " |")
    return out


def main(argv=None) -> int:
    from provmark._detect import LOCK_Z

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=".corpus", help="corpus directory (make corpus)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="keys and attack randomness")
    ap.add_argument("--out", help="write the Markdown tables here too")
    ap.add_argument("--json", help="write every copy's row here (JSON lines)")
    args = ap.parse_args(argv)
    corpus = Path(args.corpus)
    manifest = corpus / "manifest.jsonl"
    if not manifest.is_file():
        print(f"{manifest} not found: build the corpus with `make corpus`", file=sys.stderr)
        return 2
    records = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    jobs = [(r, corpus / r["file"], args.seed) for r in records]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as ex:
        rows = [row for rr in ex.map(run_image, jobs) for row in rr]
    seconds = time.perf_counter() - t0
    refused = [r for r in rows if "refused" in r]
    rows = [r for r in rows if "refused" not in r]
    lines = [f"Command: python benchmarks/geometry_failures.py --corpus {args.corpus} "
             f"--jobs {args.jobs} --seed {args.seed}",
             f"{len(records)} images, {len(rows)} geometric copies, {seconds:.0f} s", "",
             *table(rows, "band", ("<0.3", "0.3-0.6", "0.6-2", ">2", "all")), "",
             *table(rows, "kind", sorted({r["kind"] for r in rows}) + ["all"]), ""]
    per_image = defaultdict(int)
    for r in rows:
        per_image[r["image"]] += not r["ok"]
    worst = sorted(((n, i) for i, n in per_image.items() if n), reverse=True)
    lines.append("Copies lost per image: " + ", ".join(f"{i} {n}" for n, i in worst))
    failed = [r for r in rows if not r["ok"]]
    present = sorted(r["truth_lock_z"] for r in failed if r["truth_lock_z"] >= LOCK_Z)
    lines.append(f"Failed copies whose template locks at the true geometry (z >= {LOCK_Z}): "
                 f"{len(present)} of {len(failed)}"
                 + (f" (z {present[0]:.1f}-{present[-1]:.1f})" if present else "")
                 + "; decoded copies locked there at z "
                 + "{:.1f} (median)".format(float(np.median([r["truth_lock_z"] for r in rows
                                                             if r["ok"]] or [0.0]))))
    if refused:
        lines.append("Refused at embedding: " + ", ".join(r["image"] for r in refused))
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.json:
        Path(args.json).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
