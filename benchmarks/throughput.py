"""Batch throughput: marking 1920x1080 JPEGs against the same pipeline without the mark.

Issue 13's bar: the batch engine marking 200 1920x1080 JPEGs (read -> decode -> mark ->
encode JPEG quality 92 -> write) with 2 workers runs at >= 85% of the images/s of the
same pipeline without the mark (read -> decode -> encode -> write), measured in the
same run, and 2 workers give >= 1.7x the images/s of 1.

Both pipelines run through the engine's own pieces: :class:`provmark._batch.WorkerPool`
(the process pool of ``provmark embed --workers N``), the per-item function
:func:`provmark._batch.process` for the marked pipeline, and for the unmarked one the
same steps with the mark left out (:func:`transcode`: the same reader, decoder,
encoder, atomic writer, hashes and manifest row). The driver appends every row to a
JSONL manifest (one write + fsync each), as a real run does. Workers are started and
warmed up (Numba kernels loaded, codecs used once) before the clock starts; the
configurations are interleaved over ``--rounds`` rounds and the median is reported,
since the machine may be shared. Besides wall-clock images/s, each item's CPU time
(``time.process_time`` in the process that ran it) is recorded: the ratio of CPU
per image is what the wall-clock ratio converges to on an otherwise idle machine.

Inputs: 200 distinct 1920x1080 crops of the native photos of at least 1920x1080 in
the real corpus (``.corpus/``, ``benchmarks/corpus.py``), each scaled by a factor
drawn from [1920/width, 1] and cropped at a seeded random position, written as JPEG
quality 95 (4:2:0) into ``--work``. Without the corpus, scikit-image's colour sample
photos are upscaled instead (the report says which).

Usage::

    python benchmarks/throughput.py                       # 200 images, 3 rounds
    python benchmarks/throughput.py --images 40 --rounds 1  # a quick look
    python benchmarks/throughput.py --out benchmarks/results/throughput.md
    python benchmarks/throughput.py --profile              # where the time goes, per stage
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / ".corpus"
#: Debian packages whose images the project must not use (DESIGN / working rules).
RESERVED_SOURCES = ("opencv-doc", "mate-backgrounds", "plasma-workspace-wallpapers")
WIDTH, HEIGHT = 1920, 1080
OUTPUT_QUALITY = 92
INPUT_QUALITY = 95
PROVIDER = 4242


# --------------------------------------------------------------------------- #
# Inputs


def _corpus_photos() -> list[tuple[str, np.ndarray]]:
    import cv2

    manifest = CORPUS / "manifest.jsonl"
    if not manifest.is_file():
        return []
    out = []
    for line in manifest.read_text().splitlines():
        rec = json.loads(line)
        if (rec.get("kind") != "photo" or not rec.get("native")
                or any(r in str(rec.get("source", "")) for r in RESERVED_SOURCES)):
            continue
        w, h = rec["width"], rec["height"]
        if max(w, h) < WIDTH or min(w, h) < HEIGHT:
            continue
        bgr = cv2.imread(str(CORPUS / rec["file"]), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        rgb = bgr[..., ::-1]
        if rgb.shape[0] > rgb.shape[1]:  # portrait: use it in landscape
            rgb = np.rot90(rgb)
        if rgb.shape[1] >= WIDTH and rgb.shape[0] >= HEIGHT:
            out.append((rec["id"], np.ascontiguousarray(rgb)))
    return out


def _sample_photos() -> list[tuple[str, np.ndarray]]:
    import skimage.data

    return [(n, np.ascontiguousarray(getattr(skimage.data, n)()))
            for n in ("astronaut", "coffee", "chelsea", "rocket")]


def make_inputs(work: Path, n: int, seed: int = 0) -> tuple[list[Path], str]:
    """``n`` distinct 1920x1080 JPEGs in ``work/in`` (reused when already there);
    returns the paths and a sentence saying where they came from."""
    import cv2
    from PIL import Image

    src_dir = work / "in"
    done = sorted(src_dir.glob("*.jpg")) if src_dir.is_dir() else []
    photos = _corpus_photos()
    origin = (f"{len(photos)} native corpus photos of at least {WIDTH}x{HEIGHT} "
              f"({', '.join(i for i, _ in photos)}), random crops at random scales"
              if photos else "scikit-image sample photos (no corpus found), upscaled")
    if len(done) == n:
        return done, origin
    shutil.rmtree(src_dir, ignore_errors=True)
    src_dir.mkdir(parents=True)
    photos = photos or _sample_photos()
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        name, rgb = photos[i % len(photos)]
        h, w = rgb.shape[:2]
        low = max(WIDTH / w, HEIGHT / h)
        scale = min(1.0, low if low > 1 else rng.uniform(low, 1.0))
        if low > 1:  # sample photos: upscale to cover the frame
            scale = low
        size = (max(WIDTH, round(w * scale)), max(HEIGHT, round(h * scale)))
        scaled = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else
                            cv2.INTER_CUBIC)
        y = int(rng.integers(0, scaled.shape[0] - HEIGHT + 1))
        x = int(rng.integers(0, scaled.shape[1] - WIDTH + 1))
        crop = np.ascontiguousarray(scaled[y:y + HEIGHT, x:x + WIDTH])
        p = src_dir / f"{i:04d}-{name}.jpg"
        Image.fromarray(crop).save(p, format="JPEG", quality=INPUT_QUALITY)
        paths.append(p)
    return paths, origin


# --------------------------------------------------------------------------- #
# The two pipelines (module level: the spawned workers import them)


def transcode(task, options):
    """The unmarked pipeline: :func:`provmark._batch.process` without the mark."""
    from provmark import _batch
    from provmark._io import encode_image, read_image_bytes

    t0 = time.perf_counter()
    data = _batch.read_input(task.input)
    src = read_image_bytes(data, what=task.input)
    out = encode_image(src.rgb, "JPEG", quality=options.quality, **src.metadata)
    reused = _batch.write_output(task.output, out, overwrite=options.overwrite,
                                 source=task.input)
    return _batch.Row(
        input=task.input, output=task.output, status=_batch.DONE, index=task.index,
        name=task.name, format="jpeg", width=src.rgb.shape[1], height=src.rgb.shape[0],
        input_bytes=len(data), output_bytes=len(out),
        input_sha256=hashlib.sha256(data).hexdigest(),
        output_sha256=hashlib.sha256(out).hexdigest(), reused=reused,
        seconds=round(time.perf_counter() - t0, 4), settings=options.settings_id(),
        finished=_batch._now())


def marked(task, options):
    from provmark import _batch

    return _batch.process(task, options)


def _timed(task, options, fn_name):
    """``(row, cpu seconds of this process for the item)``."""
    fn = {"transcode": transcode, "marked": marked}[fn_name]
    c0 = time.process_time()
    row = fn(task, options)
    return row, time.process_time() - c0


# --------------------------------------------------------------------------- #
# Measurement


def _tasks(paths: list[Path], out: Path, options):
    from provmark import _batch

    sources = [_batch.Source(str(p), p.name) for p in paths]
    return _batch.plan(sources, str(out), options, ids=_batch.IdPolicy(first=1),
                       provider=PROVIDER).tasks


def measure(pool, pipeline: str, paths: list[Path], work: Path, options) -> dict:
    """One timed run of ``pipeline`` over ``paths`` in the open ``pool``."""
    from provmark import _batch

    out = work / f"out-{pipeline}-{pool.workers}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    tasks = _tasks(paths, out, options)
    manifest_path = work / f"manifest-{pipeline}-{pool.workers}.jsonl"
    manifest_path.unlink(missing_ok=True)
    load0 = os.getloadavg()[0]
    rows, cpu = [], []
    with _batch.Manifest.open(manifest_path) as manifest:
        t0 = time.perf_counter()
        for row, seconds in pool.map(_timed, tasks, options, pipeline):
            manifest.append(row)
            rows.append(row)
            cpu.append(seconds)
        wall = time.perf_counter() - t0
    failed = [r for r in rows if not r.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} items failed, e.g. {failed[0].error}")
    return {"pipeline": pipeline, "workers": pool.workers, "images": len(rows),
            "seconds": wall, "images_per_s": len(rows) / wall,
            "mb_per_s": sum(r.input_bytes for r in rows) / 1e6 / wall,
            "cpu_ms_per_image": 1e3 * statistics.median(cpu),
            "load_before": load0, "load_after": os.getloadavg()[0]}


def _warm(pool, pipeline, paths, work, options) -> None:
    """Run ``2 * workers`` items untimed: kernels loaded, codecs used, in every worker."""
    out = work / "warm"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    tasks = _tasks(paths[: 2 * pool.workers], out, options)
    for _ in pool.map(_timed, tasks, options, pipeline):
        pass


#: (pipeline, workers, Numba threads in the one-worker case: None = Numba's default,
#: all cores, which is what ``--workers 1`` uses; 1 = one core, like each of 2 workers).
CONFIGS = (("transcode", 2, None), ("marked", 2, None), ("transcode", 1, None),
           ("marked", 1, None), ("marked", 1, 1))


def run(paths: list[Path], work: Path, rounds: int) -> list[dict]:
    import numba

    from provmark import _batch

    options = _batch.Options(format="jpeg", quality=OUTPUT_QUALITY, overwrite=True)
    default_threads = numba.get_num_threads()
    results = []
    for r in range(rounds):
        ceiling = machine_scaling(paths[0])
        print(f"round {r}: this machine's 2-process ceiling now {ceiling:.2f}x", flush=True)
        order = CONFIGS if r % 2 == 0 else CONFIGS[::-1]
        for pipeline, workers, threads in order:
            numba.set_num_threads(threads or default_threads)
            with _batch.WorkerPool(workers) as pool:
                _warm(pool, pipeline, paths, work, options)
                res = measure(pool, pipeline, paths, work, options)
            numba.set_num_threads(default_threads)
            res.update(round=r, ceiling=ceiling, threads=threads or (default_threads if workers == 1 else
                                                    max(1, _batch.available_cores() // workers)))
            results.append(res)
            print(f"round {r} {pipeline:9s} workers={workers} threads={res['threads']}: "
                  f"{res['images_per_s']:.2f} images/s, {res['mb_per_s']:.2f} MB/s, "
                  f"CPU {res['cpu_ms_per_image']:.1f} ms/image, load "
                  f"{res['load_before']:.1f}->{res['load_after']:.1f}", flush=True)
    return results


def _decode_loop(path: str, seconds: float) -> int:
    """Decode one JPEG over and over for ``seconds``; returns how many times."""
    from PIL import Image

    data = Path(path).read_bytes()
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
        n += 1
    return n


def machine_scaling(path: Path, seconds: float = 3.0) -> float:
    """How much more work 2 processes do than 1 on this machine right now, on a loop
    that involves no provmark code (Pillow decoding one JPEG): the ceiling for any
    2-worker speed-up at that moment (other jobs on a shared machine lower it)."""
    import concurrent.futures as cf
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        list(pool.map(_decode_loop, [str(path)] * 2, [0.5] * 2))  # start and warm both
        one = pool.submit(_decode_loop, str(path), seconds).result()
        two = sum(pool.map(_decode_loop, [str(path)] * 2, [seconds] * 2))
    return two / one


def profile(paths: list[Path], n: int = 20) -> dict:
    """Median milliseconds per stage in this process (one Numba thread, as in a
    2-worker pool on 2 cores)."""
    import numba

    import provmark
    from provmark._io import encode_image, read_image_bytes

    numba.set_num_threads(1)
    stages: dict[str, list[float]] = {}
    for i, p in enumerate(paths[: n + 2]):
        t = time.perf_counter()
        data = p.read_bytes()
        t_read = time.perf_counter() - t
        t = time.perf_counter()
        src = read_image_bytes(data)
        t_dec = time.perf_counter() - t
        t = time.perf_counter()
        m = provmark.embed(src.rgb, provmark.Payload(PROVIDER, i + 1))
        t_emb = time.perf_counter() - t
        t = time.perf_counter()
        out = encode_image(m, "JPEG", quality=OUTPUT_QUALITY, **src.metadata)
        t_enc = time.perf_counter() - t
        t = time.perf_counter()
        hashlib.sha256(data).hexdigest()
        hashlib.sha256(out).hexdigest()
        t_hash = time.perf_counter() - t
        if i < 2:  # warm-up
            continue
        for k, v in (("read file", t_read), ("decode JPEG", t_dec), ("embed", t_emb),
                     ("encode JPEG 92", t_enc), ("SHA-256 in+out", t_hash)):
            stages.setdefault(k, []).append(1e3 * v)
    return {k: statistics.median(v) for k, v in stages.items()}


def _select(results, pipeline, workers, threads=None):
    return [r for r in results if r["pipeline"] == pipeline and r["workers"] == workers
            and (threads is None or r["threads"] == threads)]


def _median(results, pipeline, workers, key, threads=None):
    return statistics.median(r[key] for r in _select(results, pipeline, workers, threads))


def report(results: list[dict], prof: dict | None, origin: str, n: int, argv: list[str]) -> str:
    import numba

    cores = os.cpu_count() or 1
    m2, t2 = (_median(results, p, 2, "images_per_s") for p in ("marked", "transcode"))
    m1 = _median(results, "marked", 1, "images_per_s", threads=cores)
    m1_one = _median(results, "marked", 1, "images_per_s", threads=1)
    t1 = _median(results, "transcode", 1, "images_per_s")
    c_m, c_t = (_median(results, p, 2, "cpu_ms_per_image") for p in ("marked", "transcode"))
    loads = [r["load_before"] for r in results] + [r["load_after"] for r in results]
    rounds = len({r["round"] for r in results})
    lines = [
        "# Batch throughput (issue 13)",
        "",
        f"Command: `python benchmarks/throughput.py {' '.join(argv)}`".rstrip(),
        "",
        f"Machine: {platform.machine()}, {cores} cores "
        f"({platform.platform()}), Python {platform.python_version()}, NumPy {np.__version__}, "
        f"Numba {numba.__version__}. The machine was shared with other jobs: load average "
        f"{min(loads):.1f}-{max(loads):.1f} during the runs, on {cores} cores, so the "
        "wall-clock figures are lower than on an idle machine; the CPU time per image is "
        "what their ratio tends to when the machine is idle.",
        "",
        f"Inputs: {n} JPEGs of {WIDTH}x{HEIGHT} (quality {INPUT_QUALITY}, 4:2:0) from {origin}. "
        f"Pipelines: read -> decode -> [embed] -> encode JPEG {OUTPUT_QUALITY} (4:4:4, "
        "provmark's choice from quality 90) -> atomic write, SHA-256 of input and output, one "
        "manifest line (write + fsync) per image, through the batch engine's worker pool; "
        f"workers warmed up before timing; {rounds} interleaved rounds, medians.",
        "",
        "| pipeline | workers | Numba threads per worker | images/s (median) "
        "| images/s (best round) | MB/s read (median) | CPU ms/image (median) "
        "| images/s per round |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for pipeline, workers, threads in CONFIGS:
        th = threads or (cores if workers == 1 else max(1, cores // workers))
        sel = _select(results, pipeline, workers, th)
        if not sel:
            continue
        per = ", ".join(f"{r['images_per_s']:.1f}" for r in sel)
        name = "decode+encode (no mark)" if pipeline == "transcode" else "decode+mark+encode"
        lines.append(
            f"| {name} | {workers} | {th} "
            f"| {statistics.median(r['images_per_s'] for r in sel):.2f} "
            f"| {max(r['images_per_s'] for r in sel):.2f} "
            f"| {statistics.median(r['mb_per_s'] for r in sel):.2f} "
            f"| {statistics.median(r['cpu_ms_per_image'] for r in sel):.1f} | {per} |")
    def best(pipeline, workers, threads=None):
        return max(r["images_per_s"] for r in _select(results, pipeline, workers, threads))

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    ratio, ratio_best = m2 / t2, best("marked", 2) / best("transcode", 2)
    s1, s1_one = m2 / m1, m2 / m1_one
    s1_best = best("marked", 2) / best("marked", 1, cores)
    s1_one_best = best("marked", 2) / best("marked", 1, 1)
    lines += [
        "",
        f"- Marked / unmarked, 2 workers: **{ratio:.0%}** of the images/s from the medians, "
        f"{ratio_best:.0%} from the best rounds (bar >= 85%: {verdict(ratio >= 0.85)}); from "
        f"the CPU time per image ({c_t:.1f} ms unmarked, {c_m:.1f} ms marked): {c_t / c_m:.0%}.",
        f"- Marking, 2 workers / 1 worker: **{s1:.2f}x** (best rounds {s1_best:.2f}x) against "
        f"one worker as `--workers 1` runs it (in the driver, Numba on all {cores} cores); "
        f"**{s1_one:.2f}x** (best rounds {s1_one_best:.2f}x) against one worker on one core "
        f"(bar >= 1.7x: {verdict(s1 >= 1.7)} / {verdict(s1_one >= 1.7)}); the unmarked "
        f"pipeline: {t2 / t1:.2f}x (best rounds "
        f"{best('transcode', 2) / best('transcode', 1):.2f}x).",
    ]
    ceilings = [r["ceiling"] for r in results if r["workers"] == 2 and r["pipeline"] == "marked"]
    if ceilings:
        lines.append(
            "- The machine's own 2-process ceiling at the start of each round (2 processes "
            "decoding a JPEG in a loop, no provmark code, against 1): "
            + ", ".join(f"{c:.2f}x" for c in ceilings)
            + ". Other jobs on the shared machine took the rest.")
    if prof:
        total = sum(prof.values())
        lines += ["", "Where the time goes (one process, one Numba thread, median ms per "
                  f"{WIDTH}x{HEIGHT} image):", "", "| stage | ms | share |", "|---|---:|---:|"]
        lines += [f"| {k} | {v:.1f} | {v / total:.0%} |" for k, v in prof.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200, help="number of inputs (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--work", type=Path,
                        default=Path(tempfile.gettempdir()) / "provmark-throughput",
                        help="working directory for inputs and outputs (inputs are reused)")
    parser.add_argument("--profile", action="store_true",
                        help="also time each stage in one process (decode, embed, encode)")
    parser.add_argument("--out", type=Path, help="write the markdown report here")
    parser.add_argument("--json", type=Path, help="write every measurement as JSON here")
    args = parser.parse_args(argv)
    paths, origin = make_inputs(args.work, args.images)
    print(f"{len(paths)} inputs in {args.work / 'in'}: {origin}", flush=True)
    results = run(paths, args.work, args.rounds)
    prof = profile(paths) if args.profile else None
    text = report(results, prof, origin, len(paths), sys.argv[1:] if argv is None else argv)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({"results": results, "profile": prof, "inputs": origin},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
