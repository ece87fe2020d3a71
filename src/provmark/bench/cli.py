"""``provmark bench``: the command-line shell over :mod:`provmark.bench`.

:func:`add_bench_parser` registers the subcommand on provmark's parser; nothing
heavy (matplotlib, the peers) is imported until the command runs, so other
subcommands start as fast as before.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

__all__ = ["add_bench_parser", "cmd_bench"]

_EXAMPLES = """\
examples:
  provmark bench --quick                          # 2-3 min on 2 cores: 2 photos, 20 attack cases
  provmark bench --methods provmark,peers --attacks compression,geometry --jobs 4
  provmark bench --methods provmark@1.0,dwtDct --attacks jpeg,crop --images my-photos/ --size 1024
  provmark bench --out bench-output/full          # everything; rerun the same command to resume

methods: provmark@STRENGTH[/BITSb] (e.g. provmark@1.5, provmark@1.0/40b), dwtDct[/BITSb],
  dwtDctSvd[/BITSb], rivaGan, blind-watermark[/BITSb]; groups: provmark, peers,
  peers-capacity, all. Peers need `make peers`; missing ones are skipped with a message.
attacks: names from provmark.attacks (jpeg, crop, resize, ...), families (compression,
  geometry, filtering, colour, occlusion, chain) or all; each runs its full severity grid.

outputs in --out: report.md (tables), results.json and results.csv (every case),
  severity_<family>, tradeoff_psnr, capacity and tpr_at_fpr plots, cache.jsonl (resume).
See docs/bench.md.

exit codes: 0 done, 2 usage or input error"""


def add_bench_parser(sub) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to ``sub`` (an argparse subparsers action)."""
    from .images import PHOTOS

    p = sub.add_parser(
        "bench", help="robustness benchmark: methods x images x attacks x severities",
        description="Run watermarking methods (provmark at several strengths and payload "
                    "profiles, and the installed peers) over images x attacks x severities "
                    "in parallel; write tables (markdown, CSV, JSON) and plots.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small run (< 5 min on 2 cores): photos astronaut and coffee at 512x512, "
                        "a reduced attack grid covering every family, provmark and every peer")
    p.add_argument("--methods", metavar="SPEC[,SPEC]",
                   help="methods or groups, comma-separated (default: all; with --quick: the "
                        "quick set)")
    p.add_argument("--attacks", metavar="NAME[,NAME]",
                   help="attacks or families, comma-separated, each with its full severity "
                        "grid (default: all; with --quick: the quick grid)")
    p.add_argument("--images", metavar="DIR",
                   help="benchmark every PNG/JPEG/WebP in DIR instead of scikit-image's photos")
    p.add_argument("--photos", metavar="NAME[,NAME]",
                   help=f"scikit-image photos to use (default all: {', '.join(PHOTOS)}; "
                        "with --quick: astronaut,coffee)")
    p.add_argument("--size", default="512",
                   help="resize every image to this: 512 (square), 1920x1080 (width x height) "
                        "or native (default 512)")
    p.add_argument("--jobs", type=int, default=0,
                   help="worker processes (default: the number of CPU cores; 1 = no workers)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of messages and random attacks (default 0)")
    p.add_argument("--out", default="bench-output",
                   help="output directory (default bench-output)")
    p.add_argument("--no-resume", action="store_true",
                   help="ignore and replace the cache of finished cases in OUT/cache.jsonl")
    p.add_argument("--formats", default="png,svg",
                   help="plot formats, comma-separated: png, svg, pdf (default png,svg; "
                        "'none' for no plots)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON summary (files written, time, cases) instead of the table")
    p.set_defaults(func=cmd_bench)
    return p


def _require(module: str, what: str) -> None:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        raise ValueError(f"provmark bench needs {module} for {what}: "
                         "pip install 'provmark[bench]' (make peers installs it too)") from None


def _command_line(args) -> str:
    """The options given, as a command that reproduces the run."""
    parts = ["provmark", "bench"]
    if args.quick:
        parts.append("--quick")
    for opt in ("methods", "attacks", "images", "photos"):
        if getattr(args, opt):
            parts += [f"--{opt}", getattr(args, opt)]
    if args.size != "512":
        parts += ["--size", args.size]
    if args.seed:
        parts += ["--seed", str(args.seed)]
    parts += ["--out", args.out]
    return " ".join(shlex.quote(p) for p in parts)


def cmd_bench(args) -> int:
    from . import images as I
    from .methods import METHOD_GROUPS
    from .report import markdown, write_report
    from .runner import QUICK_CASES, QUICK_METHODS, QUICK_PHOTOS, BenchConfig, attack_cases
    from .runner import default_jobs, run

    t0 = time.perf_counter()
    formats = [] if args.formats.strip().lower() == "none" else [
        f.strip() for f in args.formats.split(",") if f.strip()]
    bad = [f for f in formats if f.lower().lstrip(".") not in ("png", "svg", "pdf")]
    if bad:
        raise ValueError(f"--formats: unsupported {', '.join(bad)}; use png, svg, pdf or none")
    _require("skimage", "SSIM and the sample photos")
    if formats:
        _require("matplotlib", "the plots (or use --formats none)")
    size = I.parse_size(args.size)
    if args.images:
        refs = I.folder_images(args.images, size)
    else:
        names = (args.photos.split(",") if args.photos
                 else QUICK_PHOTOS if args.quick else I.PHOTOS)
        refs = I.skimage_photos([n.strip() for n in names if n.strip()], size)
    skipped_attacks: dict[str, str] = {}
    if args.attacks:
        try:
            cases, skipped_attacks = attack_cases(args.attacks.split(","))
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
    elif args.quick:
        cases = list(QUICK_CASES)
    else:
        cases, skipped_attacks = attack_cases(None)
    for name, why in skipped_attacks.items():
        print(f"bench: skipping attack {name}: {why}", file=sys.stderr)
    methods = (args.methods.split(",") if args.methods
               else list(QUICK_METHODS) if args.quick else list(METHOD_GROUPS["all"]))
    jobs = args.jobs if args.jobs > 0 else default_jobs()
    command = _command_line(args)
    config = BenchConfig(methods=methods, images=refs, cases=cases, out=Path(args.out),
                         seed=args.seed, jobs=jobs, resume=not args.no_resume,
                         command=command)
    print(f"bench: {len(refs)} image(s), {len(cases)} attack cases, {jobs} worker(s); "
          f"output in {config.out}", file=sys.stderr)
    result = run(config, progress=True)
    result.skipped_attacks = skipped_attacks
    written = write_report(result, config.out, formats=formats)
    seconds = time.perf_counter() - t0
    if args.json:
        print(json.dumps({"out": str(config.out), "seconds": round(seconds, 1),
                          "computed": result.computed, "cached": result.cached,
                          "skipped_methods": result.skipped_methods,
                          "files": {k: [str(p) for p in v] if isinstance(v, list) else str(v)
                                    for k, v in written.items()}}, indent=1))
    else:
        text = markdown(result)
        section = text.split("## Robustness", 1)[1].split("\n## ", 1)[0]
        print("## Robustness" + section)
        print(f"wrote {written['markdown']}, {written['json']}, {written['csv']} and "
              f"{len(written.get('plots', []))} plot files in {seconds:.0f} s")
    return 0
