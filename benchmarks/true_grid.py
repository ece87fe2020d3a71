"""How much of the mark an attack leaves: the pilot read at each copy's true grid.

A copy the detector does not decode was either not found (the search missed its
grid or geometry) or found and too weak. This separates the two: the bar15 copies of
``benchmarks/robustness.py`` are made again (the same payloads, keys and attack
randomness) and the fine carriers of each are read on the grid the source was written
on (section 6 of docs/format.md), with no search, and decoded there.

- A copy that keeps the scale (compression, filters, colour, occlusion, crops and
  their chains) is placed in its marked source (a crop by normalised
  cross-correlation of the luma) and read at the pixel origin and tile phase that the
  crop's offset gives.
- A copy resampled by parameters alone (resizes, aspect changes, rotations cropped to
  their valid area, the screenshot chain) is resampled back onto the source's pixel
  grid through the geometry the attack applied (:func:`known_geometry`) and read at
  the aligned grid; blocks it does not cover are left flat.

The pilot z there measures what the attack left of the carriers, independently of
the search; the default detector's outcome is listed beside it (it may also read the
coarse layer or the extension carriers, which this does not).

    python benchmarks/true_grid.py --corpus .corpus --attack "JPEG 60" --bands "<0.3" \\
        --bands 0.3-0.6 --jobs 2 [--out FILE.md]

``--attack`` takes a substring of a bar15 label (repeatable). About 10 s for the
combined chain on the 35 images under 0.6 MP, 2 payloads each, on 2 cores; about a
minute for the geometric attacks on the 37 images between 0.3 and 2 MP.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

#: A crop is placed where its luma correlates best with the source's; a best
#: correlation under this means the copy is not a crop of it (resampled, say).
MIN_MATCH = 0.5
#: Pilot z bins of the summary (the carriers decode alone from about 6).
Z_BINS = (-np.inf, 4.0, 5.0, 6.0, 7.0, np.inf)


def _robustness():
    """``benchmarks/robustness.py`` loaded by path (its bar15 set and copy recipe)."""
    name = "provmark_bench_robustness"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("robustness.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def locate(source: np.ndarray, copy: np.ndarray) -> tuple[int, int, float]:
    """Top-left corner ``(y0, x0)`` of ``copy`` in ``source`` (both RGB uint8) and
    the normalised correlation there (1.0 for a copy of the same size)."""
    import cv2

    if copy.shape == source.shape:
        return 0, 0, 1.0
    if copy.shape[0] > source.shape[0] or copy.shape[1] > source.shape[1]:
        return 0, 0, 0.0
    grey = [cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32) for a in (source, copy)]
    scores = cv2.matchTemplate(grey[0], grey[1], cv2.TM_CCOEFF_NORMED)
    _, best, _, (x0, y0) = cv2.minMaxLoc(scores)
    return int(y0), int(x0), float(best)


def known_geometry(attack: str, params: dict, source_shape: tuple[int, int]
                   ) -> np.ndarray | None:
    """The 2x3 matrix taking source pixel ``(x, y, 1)`` to the copy's pixel ``(x, y)``
    of an attack that resamples the whole image by parameters alone (resize, rotation
    cropped to its valid area, the screenshot chain), as ``provmark.attacks`` applies
    it; None for any other attack. Pixel centres are aligned as OpenCV aligns them:
    ``u = (x + 1/2) s - 1/2`` for a resize by ``s``."""
    import math

    import cv2

    h, w = source_shape
    if attack in ("resize", "screenshot"):
        if attack == "resize":
            sy, sx = (params["scale"],) * 2 if np.isscalar(params["scale"]) else params["scale"]
            out_h, out_w, border = max(1, round(h * sy)), max(1, round(w * sx)), 0
        else:
            out_w, border = params["width"], params["border"]
            out_h = max(1, round(h * out_w / w))
        ky, kx = out_h / h, out_w / w
        return np.array([[kx, 0.0, 0.5 * kx - 0.5 - border],
                         [0.0, ky, 0.5 * ky - 0.5 - border]])
    if attack == "rotate" and params.get("crop"):
        from provmark.attacks._geometry import _inner_rectangle

        centre = ((w - 1) / 2.0, (h - 1) / 2.0)
        matrix = cv2.getRotationMatrix2D(centre, params["angle"], 1.0)
        inner_w, inner_h = _inner_rectangle(w - 1.0, h - 1.0, math.radians(params["angle"]))
        matrix[0, 2] += math.floor(inner_w + 1e-6) / 2.0 - centre[0]
        matrix[1, 2] += math.floor(inner_h + 1e-6) / 2.0 - centre[1]
        return matrix
    return None


def back_on_source(copy_y: np.ndarray, matrix: np.ndarray, source_shape: tuple[int, int]
                   ) -> np.ndarray:
    """The copy's luma resampled onto the source's pixel grid (bilinear) through
    ``matrix`` (:func:`known_geometry`), every block of the source that the copy does
    not wholly cover made flat (a flat block carries nothing to the reader)."""
    import cv2

    from provmark._layout import BLOCK_PX

    h, w = source_shape
    plane = cv2.warpAffine(copy_y.astype(np.float32), matrix, (w, h),
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan"))
    nby, nbx = h // BLOCK_PX, w // BLOCK_PX
    blocks = plane[:nby * BLOCK_PX, :nbx * BLOCK_PX].reshape(
        nby, BLOCK_PX, nbx, BLOCK_PX).transpose(0, 2, 1, 3)  # a view of plane
    covered = np.isfinite(blocks).all(axis=(2, 3))
    fill = float(np.nanmean(plane)) if covered.any() else 0.0
    blocks[~covered] = fill
    plane[nby * BLOCK_PX:] = fill
    plane[:, nbx * BLOCK_PX:] = fill
    return plane


def true_grid(y0: int, x0: int) -> tuple[int, int, int, int]:
    """The grid hypothesis ``(oy, ox, ty, tx)`` of docs/format.md section 6 for a copy
    whose pixel (0, 0) is source pixel ``(y0, x0)``: the first whole block starts at
    the next multiple of 16, and its tile phase is that block's index modulo 32."""
    oy, ox = (-y0) % 16, (-x0) % 16
    return oy, ox, ((y0 + oy) // 16) % 32, ((x0 + ox) // 16) % 32


def run_image(job):
    record, path, payloads, seed, attacks = job
    import provmark
    from provmark import attacks as A
    from provmark._detect import _attempt, read_luma
    from provmark._keys import normalize_key
    from provmark._sync import SyncCandidate

    R = _robustness()
    img = R._read_rgb(path)
    rows = []
    for i in range(payloads):
        payload, key = R.corpus_payload(seed, record["id"], i)
        marked = provmark.embed(img, payload, key=key)
        for label, attack, params, _ in R.BAR15_SET:
            if attack is None or not any(a.lower() in label.lower() for a in attacks):
                continue
            copy = A.apply(attack, marked, rng=R._attack_rng(seed, record["id"], i, label),
                           **params)
            row = {"image": record["id"], "band": record["band"], "payload_index": i,
                   "attack": label, "short_side": int(min(copy.shape[:2]))}
            matrix = known_geometry(attack, params, img.shape[:2])
            if matrix is not None:  # resampled: read back on the source's own grid
                row["match"] = None
                plane, cand = back_on_source(read_luma(copy), matrix, img.shape[:2]), (0, 0, 0, 0)
            else:
                y0, x0, match = locate(marked, copy)
                row["match"] = round(match, 3)
                plane, cand = (read_luma(copy), true_grid(y0, x0)) if match >= MIN_MATCH else (None, None)
            if plane is not None:
                ev = _attempt(plane, normalize_key(key), SyncCandidate(0.0, *cand), 1).evaluation
                row.update(true_z=round(float(ev.z), 2), true_decoded=ev.result.payload == payload)
            det = provmark.detect(copy, key=key)
            row.update(detected=det.payload == payload, wrong=bool(det.found and det.payload != payload),
                       layer=det.details.get("layer") if det.found else None)
            rows.append(row)
    return rows


def summary(rows) -> list[str]:
    """Per band: copies, decoded by the detector, decoded at the true grid, the true
    grid's pilot z; then the share decoded at the true grid per z bin."""
    lines = ["| band | counted copies | detector | true grid decodes | true-grid z: min / median / max |",
             "|---|---|---|---|---|"]
    for band in ("<0.3", "0.3-0.6", "0.6-2", ">2"):
        rs = [r for r in rows if r["band"] == band and r["short_side"] >= 256 and "true_z" in r]
        if not rs:
            continue
        z = [r["true_z"] for r in rs]
        lines.append(f"| {band} | {len(rs)} | {sum(r['detected'] for r in rs)} | "
                     f"{sum(r['true_decoded'] for r in rs)} | "
                     f"{min(z):.2f} / {float(np.median(z)):.2f} / {max(z):.2f} |")
    lines += ["", "| true-grid pilot z | copies | decoded at the true grid | by the detector |",
              "|---|---|---|---|"]
    located = [r for r in rows if r["short_side"] >= 256 and "true_z" in r]
    for lo, hi in zip(Z_BINS[:-1], Z_BINS[1:]):
        rs = [r for r in located if lo <= r["true_z"] < hi]
        name = f"under {hi:g}" if lo == -np.inf else f"{lo:g} and over" if hi == np.inf else f"{lo:g}-{hi:g}"
        lines.append(f"| {name} | {len(rs)} | {sum(r['true_decoded'] for r in rs)} | "
                     f"{sum(r['detected'] for r in rs)} |")
    lost = sorted((r for r in rows if not r["detected"] and r["short_side"] >= 256),
                  key=lambda r: r.get("true_z", -99))
    lines += ["", "Copies the detector did not decode:", "",
              "| image | band | payload | attack | true-grid z | decoded there |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['image']} | {r['band']} | {r['payload_index']} | {r['attack']} | "
              f"{r.get('true_z', 'not located')} | {r.get('true_decoded', '-')} |" for r in lost]
    unlocated = sum("true_z" not in r for r in rows)
    if unlocated:
        lines += ["", f"{unlocated} copies are not crops of their source (correlation under "
                  f"{MIN_MATCH}) and were not read at a true grid."]
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=".corpus", help="corpus directory (make corpus)")
    ap.add_argument("--attack", action="append", required=True,
                    help="a substring of a bar15 attack label (repeatable)")
    ap.add_argument("--bands", action="append", help="size bands to read (default: all)")
    ap.add_argument("--payloads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="the robustness run's seed")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", help="write the Markdown tables here too")
    ap.add_argument("--json", help="write every copy's row here")
    args = ap.parse_args(argv)
    corpus = Path(args.corpus)
    corpus_module = _robustness()._load_corpus_module()
    try:
        records = corpus_module.load_manifest(corpus)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    unknown = sorted(set(args.bands or ()) - set(corpus_module.BAND_LABELS))
    if unknown:
        print(f"--bands {' '.join(unknown)}: the bands are {', '.join(corpus_module.BAND_LABELS)}",
              file=sys.stderr)
        return 2
    labels = [a[0] for a in _robustness().BAR15_SET[1:]]
    unknown = [a for a in args.attack if not any(a.lower() in lab.lower() for lab in labels)]
    if unknown:
        print(f"--attack {unknown[0]!r} matches no bar15 attack; they are: {', '.join(labels)}",
              file=sys.stderr)
        return 2
    records = [r for r in records if not args.bands or r["band"] in args.bands]
    jobs = [(r, corpus / r["file"], args.payloads, args.seed, args.attack) for r in records]
    t0 = time.time()
    rows = []
    if args.jobs == 1:
        for job in jobs:
            rows += run_image(job)
    else:
        with ProcessPoolExecutor(args.jobs) as pool:
            for part in pool.map(run_image, jobs):
                rows += part
    command = " ".join(["python benchmarks/true_grid.py"] + [
        f'{flag} "{v}"' for flag, vs in (("--attack", args.attack), ("--bands", args.bands or []))
        for v in vs] + [f"--corpus {args.corpus} --jobs {args.jobs}"])
    lines = [f"Command: {command}", "",
             f"{len(records)} images, {len(rows)} copies, {time.time() - t0:.0f} s", ""] + summary(rows)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
