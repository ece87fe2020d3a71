"""False-positive benchmark: no payload may come back from an unmarked image or
from a marked image read with the wrong key.

Default mode: at least 10,000 detections over random crops and rescales of the
scikit-image photos (unmarked), flat, gradient and noise images (unmarked), and
marked photos (random payloads and keys) read with other keys. Reports how many
returned a payload (must be 0), the sync-score distribution under the null
hypothesis (about N(0, 1) by design), and the smallest p-values seen.

With ``--corpus DIR`` (a corpus built by ``benchmarks/corpus.py``) the
detections (default 10,000) are spread evenly over every corpus image, the
images taken in turn across the size bands: each image's ``j``-th draw follows a
fixed schedule of 20 (1 unmarked at native size, 4 random crops keeping 25-90%
of the area with the aspect changed up to 25%, 4 resizes by x0.5-2.0 with the
aspect changed up to 25%, 3 rotations by up to +-5 degrees, 2 JPEG and 2 WebP
re-encodes at quality 30-95, 4 marked with a random payload and a random key and
read with another key: a random one, or in a quarter of them the public default
key; half of the marked copies also get one of the attacks above). Unmarked
copies are read with the public default key or, half of the time, a random key;
a native-size image is read with the default key in its first round, and with
random keys after that (the same image and key would give the same detection).
Everything is drawn from ``--seed``, the image id and ``j``, so a run does not
depend on ``--jobs`` and a larger ``--n`` extends a smaller one. Detection is
the default ``provmark.detect`` (``search=True``). The report gives, per size
band of the source: detections, found and payloads returned (both must be 0),
decoded words the false-alarm bound rejected, the largest pilot score, the
smallest pilot bound ``m * exp(-z**2/2)`` and false-alarm probability, the
expected number of codec acceptances (the sum of every attempt's ``p_dec`` over
detections; an attempt that tried the longer list counts its 16 words)
and the median detection time.

Cost cap for large sources: a detection on a copy above 4 MP takes seconds, so
no attacked copy is larger than 4 MP (``CAP_MP``). When the source times the
drawn attack's area factor (crop fraction, resize ``sx * sy``) would exceed
it, the source is first reduced to a random 1.5-4 MP divided by that factor, by
an INTER_AREA downscale or by a window cut out of it (one or the other at
random), and the attack runs on the reduced copy. Native-size reads (the
unmarked image, and marked copies without an attack) of sources above 4 MP are
kept for the first round of 20 draws of each image only; after that they too
read a reduced copy ("reduced only" in the tables). Each image still gets its
even share of the draws; ``>2`` MP sources are 18 of the 73 images. The 10,000
detections took 2,400 CPU seconds (about 20-25 minutes on two idle cores).

With ``--out X.md`` a corpus run appends every finished job to ``X.journal.jsonl``;
the same command run again after a stop goes on where it stopped (see
``benchmarks/_journal.py``), and the journal is removed once the tables are written.

Usage::

    python benchmarks/false_positives.py            # 12,000 detections
    python benchmarks/false_positives.py --n 2000
    python benchmarks/false_positives.py --n 600 --search exhaustive   # ~1-4 s each
    python benchmarks/false_positives.py --corpus .corpus --out bench-output/fp_corpus.md
    python benchmarks/false_positives.py --corpus .corpus --n 40 --jobs 1   # smoke test, < 1 min
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np

import provmark

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina")


def _photos():
    from skimage import data

    return [np.ascontiguousarray(getattr(data, n)()[..., :3]) for n in PHOTOS]


def _synthetic(rng, h, w):
    kind = rng.integers(0, 3)
    if kind == 0:  # flat colour
        return np.full((h, w, 3), rng.integers(0, 256, 3), np.uint8), "flat"
    if kind == 1:  # smooth gradient in a random direction
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ang = rng.uniform(0, 2 * np.pi)
        g = (np.cos(ang) * xx + np.sin(ang) * yy)
        g = (g - g.min()) / max(float(np.ptp(g)), 1.0)
        lo, hi = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        img = lo + g[..., None] * (hi.astype(np.float32) - lo)
        return np.clip(np.round(img), 0, 255).astype(np.uint8), "gradient"
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "noise"


def _crop_rescale(rng, img):
    h, w = img.shape[:2]
    s = rng.uniform(0.6, 1.6)
    img = cv2.resize(img, (max(256, int(w * s)), max(256, int(h * s))), interpolation=cv2.INTER_LINEAR)
    h, w = img.shape[:2]
    ch, cw = rng.integers(256, h + 1), rng.integers(256, w + 1)
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    return np.ascontiguousarray(img[y:y + ch, x:x + cw])


def worker(args):
    seed, n, search = args
    rng = np.random.default_rng(seed)
    photos = _photos()
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            img, what = _crop_rescale(rng, photos[rng.integers(len(photos))]), "unmarked photo"
            key = None
        elif kind == 1:
            img, what = _synthetic(rng, int(rng.integers(256, 700)), int(rng.integers(256, 700)))
            key = None
        else:
            payload = provmark.Payload(int(rng.integers(0, 2**24)), int(rng.integers(0, 2**40)))
            while True:  # small busy crops can be refused (EmbedError): take another
                base = _crop_rescale(rng, photos[rng.integers(len(photos))])
                try:
                    img = provmark.embed(base, payload, key=f"true-{seed}-{i}")
                    break
                except provmark.EmbedError:
                    continue
            key, what = f"wrong-{seed}-{i}", "marked, wrong key"
        det = provmark.detect(img, key=key, search=search)
        out.append((what, det.found, det.payload is not None, det.sync_score,
                    det.details.get("aligned_sync_score", det.sync_score)))
    return out


# --------------------------------------------------------------------------------------
# Corpus mode: every image of benchmarks/corpus.py's corpus, per size band of the source.

#: No attacked copy is larger than this (megapixels): the source is reduced first.
CAP_MP = 4.0
#: Reduced copies of large sources are this many megapixels (uniform) after the attack.
REDUCED_MP = (1.5, CAP_MP)
#: What the j-th draw of an image is: SCHEDULE[(j + image position) % 20].
SCHEDULE = ("native", "crop", "resize", "marked", "rotate", "jpeg", "crop", "resize", "marked",
            "webp", "rotate", "crop", "resize", "marked", "jpeg", "rotate", "crop", "resize",
            "marked", "webp")
#: The attacks a marked copy may also get (half of them do).
MARKED_ATTACKS = ("crop", "resize", "rotate", "jpeg", "webp")
INTERPOLATIONS = ("area", "bilinear", "bicubic", "lanczos")
#: Row labels of the table per case, in order.
CASES = ("native", "reduced only", "crop", "resize", "rotate", "jpeg", "webp",
         "marked, wrong key", "marked + attack, wrong key", "embed refused: unmarked, wrong key")

_IMAGE_CACHE: dict = {}


def _sibling(stem: str):
    """The module ``benchmarks/<stem>.py``, loaded by path (this script is run as a file
    and loaded by path in the tests, so ``benchmarks`` is not always importable)."""
    import importlib.util
    from pathlib import Path

    name = f"provmark_bench_{stem.lstrip('_')}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{stem}.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _load_corpus_module():
    return _sibling("corpus")


def _read_rgb(path) -> np.ndarray:
    """The image at ``path`` as RGB uint8 (the worker keeps the last one it read)."""
    from PIL import Image

    if path not in _IMAGE_CACHE:
        _IMAGE_CACHE.clear()
        with Image.open(path) as im:
            _IMAGE_CACHE[path] = np.ascontiguousarray(np.asarray(im.convert("RGB")))
    return _IMAGE_CACHE[path]


def _random_key(rng) -> str:
    return "fp-" + rng.bytes(12).hex()


def _draw_attack(kind, rng):
    """Parameters of one attack and the factor it multiplies the pixel count by."""
    if kind == "crop":
        area, aspect = rng.uniform(0.25, 0.90), rng.uniform(0.75, 1.25)
        return {"area": area, "aspect": aspect}, area
    if kind == "resize":
        s, aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0))), rng.uniform(0.75, 1.25)
        sy, sx = s / np.sqrt(aspect), s * np.sqrt(aspect)
        return {"scale": (float(sy), float(sx)),
                "interpolation": INTERPOLATIONS[rng.integers(len(INTERPOLATIONS))]}, sy * sx
    if kind == "rotate":
        return {"angle": float(rng.uniform(-5.0, 5.0)), "crop": bool(rng.integers(2)),
                "interpolation": ("bilinear", "bicubic")[rng.integers(2)]}, 1.0
    if kind in ("jpeg", "webp"):
        return {"quality": int(rng.integers(30, 96))}, 1.0
    raise ValueError(kind)


def _apply(kind, params, img, rng):
    import provmark.attacks as A

    if kind == "crop":
        h, w = img.shape[:2]
        fy = min(1.0, np.sqrt(params["area"] / params["aspect"]))
        fx = min(1.0, params["area"] / fy)  # aspect up to 1.25: keep inside
        size = (max(1, round(h * fy)), max(1, round(w * fx)))
        return A.crop(img, size=size, position="random", rng=rng)
    return getattr(A, kind)(img, **params, rng=rng)


def _reduce(img, target_mp, rng):
    """A copy of ``img`` of about ``target_mp`` megapixels: a downscale or a window."""
    h, w = img.shape[:2]
    f = min(1.0, np.sqrt(target_mp * 1e6 / (h * w)))
    nh, nw = max(1, round(h * f)), max(1, round(w * f))
    if rng.integers(2):
        return np.ascontiguousarray(cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)), \
            "downscale"
    y, x = rng.integers(0, h - nh + 1), rng.integers(0, w - nw + 1)
    return np.ascontiguousarray(img[y:y + nh, x:x + nw]), "window"


def corpus_case(record, img, position, j, seed):
    """The ``j``-th draw of one corpus image: build the copy, detect, one row."""
    rng = np.random.default_rng([seed, zlib.crc32(record["id"].encode()), j])
    kind = SCHEDULE[(j + position) % len(SCHEDULE)]
    src_mp = img.shape[0] * img.shape[1] / 1e6
    first_round = j < len(SCHEDULE)
    attack, params, factor = None, None, 1.0
    marked = kind == "marked"
    if kind == "marked":
        if rng.integers(2):
            attack = MARKED_ATTACKS[rng.integers(len(MARKED_ATTACKS))]
    elif kind != "native":
        attack = kind
    if attack is not None:
        params, factor = _draw_attack(attack, rng)
    work, reduced = img, ""
    if attack is None:
        if src_mp > CAP_MP and not first_round:
            work, reduced = _reduce(img, rng.uniform(*REDUCED_MP), rng)
            if not marked:
                kind = "reduced only"
    elif src_mp * factor > CAP_MP:
        work, reduced = _reduce(img, rng.uniform(*REDUCED_MP) / factor, rng)
    if marked:
        payload = provmark.Payload(int(rng.integers(0, 2**24)), int(rng.integers(0, 2**40)),
                                   int(rng.integers(1, 4)))
        embed_key = _random_key(rng)
        read_key = None if rng.integers(4) == 0 else _random_key(rng)
        try:
            work = provmark.embed(work, payload, key=embed_key)
            case = "marked, wrong key" if attack is None else "marked + attack, wrong key"
        except provmark.EmbedError:
            case = "embed refused: unmarked, wrong key"
    else:
        case = kind
        if kind == "native":
            # The public default key once; later rounds would repeat the same read.
            read_key = None if first_round else _random_key(rng)
        else:
            read_key = None if rng.integers(2) else _random_key(rng)
    copy = work if attack is None else _apply(attack, params, work, rng)
    t0 = time.perf_counter()
    det = provmark.detect(copy, key=read_key)
    seconds = time.perf_counter() - t0
    z = float(det.sync_score)
    return {
        "draw": j, "image": record["id"], "band": record["band"], "case": case,
        "attack": attack, "params": params, "reduced": reduced,
        "default_key": read_key is None,
        "copy_shape": list(copy.shape[:2]), "copy_mp": copy.shape[0] * copy.shape[1] / 1e6,
        "found": bool(det.found), "payload": det.payload is not None,
        "rejected_word": det.reason == "decoded word not significant enough",
        "z": z, "aligned_z": float(det.details.get("aligned_sync_score", z)),
        "hypotheses": int(det.hypotheses),
        "attempts": int(det.details.get("decode_attempts", 0)),
        "long_lists": int(det.details.get("long_lists", 0)),
        "fap": float(det.false_alarm_probability),
        "seconds": seconds,
    }


def corpus_worker(job):
    record, path, position, js, seed = job
    img = _read_rgb(str(path))
    return [corpus_case(record, img, position, j, seed) for j in js]


def _pilot_bound(row) -> float:
    """``m * exp(-z**2/2)``: the pilot bound of the best hypothesis with all ``m`` searched
    counted, unclipped (``detect`` uses ``min(1, ...)``; 1 or more is no evidence at all)."""
    return row["hypotheses"] * np.exp(-row["z"] ** 2 / 2) if row["hypotheses"] else np.inf


def summarise_corpus(rows, bands, images) -> str:
    from provmark import _codec

    p_dec = _codec.false_alarm_per_channel_attempt()
    p_long = _codec.false_alarm_per_channel_attempt(_codec.EXTENDED_LIST_SIZE)

    def stats(rr):
        z = np.array([r["z"] for r in rr])
        za = np.array([r["aligned_z"] for r in rr])
        t = np.array([r["seconds"] for r in rr])
        mp = np.array([r["copy_mp"] for r in rr])
        return {
            "n": len(rr), "found": sum(r["found"] for r in rr),
            "payload": sum(r["payload"] for r in rr),
            "rejected": sum(r["rejected_word"] for r in rr),
            "reduced": sum(bool(r["reduced"]) for r in rr),
            "mp": f"{np.median(mp):.2f} ({mp.max():.1f})",
            "za": f"{za.mean():+.2f} / {za.std():.2f}",
            "zmax": f"{z.max():.2f}", "zmean": f"{z.mean():.2f}",
            "bound": f"{min(_pilot_bound(r) for r in rr):.2g}",
            "fap": f"{min(r['fap'] for r in rr):.3g}",
            "m": f"{max(r['hypotheses'] for r in rr):,}",
            "att": max(r["attempts"] for r in rr),
            "expected": f"{sum((r['attempts'] - r.get('long_lists', 0)) * p_dec + r.get('long_lists', 0) * p_long for r in rr):.1e}",
            "t": f"{np.median(t):.2f} ({t.max():.1f})",
        }

    head = ("| {label} | detections | found | payload returned | words rejected by the bound "
            "| reduced first | copy MP median (max) | aligned z mean / std | best z mean "
            "| best z max | min m·exp(-z²/2) (unclipped) | min false_alarm_probability | max m "
            "| max decode attempts | expected codec acceptances | detect s median (max) |")
    sep = "|---" * 16 + "|"

    def line(label, s):
        return (f"| {label} | {s['n']} | {s['found']} | {s['payload']} | {s['rejected']} "
                f"| {s['reduced']} | {s['mp']} | {s['za']} | {s['zmean']} | {s['zmax']} "
                f"| {s['bound']} | {s['fap']} | {s['m']} | {s['att']} | {s['expected']} "
                f"| {s['t']} |")

    out = ["Per size band of the source:", "", head.format(label="band (MP)"), sep]
    for b in bands:
        rr = [r for r in rows if r["band"] == b]
        if rr:
            nimg = sum(i["band"] == b for i in images)
            out.append(line(f"{b} ({nimg} images)", stats(rr)))
    out.append(line("all", stats(rows)))
    out += ["", "Per case (all bands):", "", head.format(label="case"), sep]
    for c in CASES:
        rr = [r for r in rows if r["case"] == c]
        if rr:
            out.append(line(c, stats(rr)))
    dk = [r for r in rows if r["default_key"]]
    out += ["", f"Read with the public default key: {len(dk)} of {len(rows)} detections "
                f"({sum(r['found'] for r in dk)} found); the rest with random keys.",
            f"Copies with a short side under 256 px: "
            f"{sum(min(r['copy_shape']) < 256 for r in rows)} (all still detected)."]
    total_found = sum(r["found"] for r in rows)
    total_payload = sum(r["payload"] for r in rows)
    m = max(r["hypotheses"] for r in rows)
    out += ["", f"Total: {total_found} found and {total_payload} payloads returned in "
                f"{len(rows)} detections; best pilot z {max(r['z'] for r in rows):.2f} "
                f"(the Hoeffding level sqrt(2 ln(N m)) for N = {len(rows)}, m = {m:,} is "
                f"{np.sqrt(2 * np.log(len(rows) * m)):.2f})."]
    return "\n".join(out)


def corpus_main(args, parser) -> int:
    import json
    import shlex
    from pathlib import Path

    corpus = _load_corpus_module()
    try:
        records = corpus.load_manifest(args.corpus)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    bands = list(corpus.BAND_LABELS)
    per_band = [sorted((r for r in records if r["band"] == b), key=lambda r: r["id"])
                for b in bands]
    # The images in turn across the bands, so that a small --n still reaches every band.
    images = [band[k] for k in range(max(map(len, per_band))) for band in per_band
              if k < len(band)]
    if not images:
        parser.error(f"{args.corpus}: the manifest lists no images")
    n = 10000 if args.n is None else args.n
    draws: dict[int, list[int]] = {}
    for i in range(n):
        draws.setdefault(i % len(images), []).append(i // len(images))
    root = Path(args.corpus)
    chunk = 25
    jobs = [(images[p], root / images[p]["file"], p, js[k:k + chunk], args.seed)
            for p, js in draws.items() for k in range(0, len(js), chunk)]
    jobs.sort(key=lambda job: -job[0]["megapixels"])  # long jobs first
    journal_mod = _sibling("_journal")
    settings = {"n": n, "seed": args.seed, "corpus": str(root),
                "source": journal_mod.source_fingerprint(
                    corpus_worker, corpus_case, _draw_attack, _apply, _reduce, _read_rgb,
                    _random_key)}
    journal = journal_mod.Journal.open(Path(args.out).with_suffix(".journal.jsonl")
                                       if args.out else None, settings, parser)
    t0 = time.time()
    rows = []
    keyed = {(job[0]["id"], job[3][0]): job for job in jobs}
    resumed = [key for key in keyed if key in journal.done]
    for key in resumed:
        rows.extend(journal.done[key])
        del keyed[key]
    if resumed:
        print(f"resuming from {journal.path}: {len(resumed)} of {len(jobs)} jobs done",
              file=sys.stderr)
    tty = sys.stderr.isatty()
    todo = {key: (corpus_worker, job) for key, job in keyed.items()}
    for k, (key, part) in enumerate(journal_mod.finished(todo, args.jobs), 1):
        journal.append(key, part)
        rows.extend(part)
        if tty or k % 10 == 0 or k == len(todo):
            print(f"{chr(13) if tty else ''}{k}/{len(todo)} jobs, {len(rows)} detections, "
                  f"{sum(r['found'] for r in rows)} found, {time.time() - t0:.0f} s",
                  end="" if tty else "\n", file=sys.stderr, flush=True)
    if tty:
        print(file=sys.stderr)
    rows.sort(key=lambda r: (r["image"], r["draw"]))
    elapsed = time.time() - t0
    argv = shlex.join(sys.argv[1:] if args.argv is None else args.argv)
    used = {r["image"] for r in rows}
    counts = ", ".join(f"{b}: {sum(i['band'] == b and i['id'] in used for i in images)}"
                       for b in bands)
    header = (f"Command: python benchmarks/false_positives.py {argv}\n"
              f"Corpus {args.corpus}: {len(used)} of {len(images)} images ({counts}); "
              f"{len(rows)} detections (default provmark.detect, search=True) in {elapsed:.0f} s "
              f"with {args.jobs} jobs"
              + (f" after resuming {len(resumed)} jobs from its journal" if resumed else "")
              + f"; seed {args.seed}; copies capped at {CAP_MP:g} MP\n")
    text = header + "\n" + summarise_corpus(rows, bands, images)
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        journal_mod.write_atomically(out, text + "\n")
        journal_mod.write_atomically(out.with_suffix(".json"),
                                     json.dumps({"header": header, "rows": rows}))
        journal.remove()
        print(f"wrote {out} and {out.with_suffix('.json')}", file=sys.stderr)
    return 1 if any(r["found"] or r["payload"] for r in rows) else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None,
                        help="detections in total (default 12,000; 10,000 with --corpus)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--search", choices=("standard", "exhaustive"), default="standard",
                        help="detect's search mode")
    parser.add_argument("--corpus", metavar="DIR",
                        help="spread the detections over every image of this corpus (build it "
                             "with make corpus: .corpus/), results per size band of the source")
    parser.add_argument("--out", help="with --corpus: also write the markdown tables here (and "
                                      "the rows as JSON next to it)")
    args = parser.parse_args(argv)
    args.argv = argv
    if args.corpus:
        if args.search != "standard":
            parser.error("--corpus runs the default detect (search=True): drop --search")
        return corpus_main(args, parser)
    if args.out:
        parser.error("--out needs --corpus DIR")
    if args.n is None:
        args.n = 12000
    search = "exhaustive" if args.search == "exhaustive" else True
    chunks = 24
    per = -(-args.n // chunks)
    t0 = time.time()
    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for k, part in enumerate(pool.map(worker, [(args.seed * 100 + c, per, search)
                                                 for c in range(chunks)]), 1):
            rows.extend(part)
            print(f"\r{k}/{chunks} chunks", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(f"Command: python benchmarks/false_positives.py --n {args.n} --seed {args.seed} "
          f"--search {args.search}")
    print(f"{len(rows)} detections in {time.time() - t0:.0f} s\n")
    print("| case | detections | found | payload returned | aligned z mean | aligned z std "
          "| best searched z mean | best searched z max |")
    print("|---|---|---|---|---|---|---|---|")
    for what in sorted({r[0] for r in rows}):
        rr = [r for r in rows if r[0] == what]
        z = np.array([r[3] for r in rr])
        za = np.array([r[4] for r in rr])
        print(f"| {what} | {len(rr)} | {sum(r[1] for r in rr)} | {sum(r[2] for r in rr)} | "
              f"{za.mean():.3f} | {za.std():.3f} | {z.mean():.2f} | {z.max():.2f} |")
    found = sum(r[1] for r in rows)
    print(f"\nTotal payloads returned: {sum(r[2] for r in rows)} of {len(rows)} "
          f"(found={found}).")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
