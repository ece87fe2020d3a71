"""The ``provmark`` command line: a thin shell over the public API.

Exit codes (every subcommand):
  0  done / mark found (for ``detect``: in every image; for ``inspect``: every image
     has a watermark or a valid metadata label)
  1  no mark found (``detect``: in at least one image, none with an input error;
     ``inspect``: an image with neither a watermark nor a valid metadata label;
     ``check --self-test``: the image carries the mark but the self-test failed)
  2  usage, input or output error (bad arguments, an unreadable, unsupported or too
     large image, an output that cannot be written). Every such error is one line on
     stderr; with several inputs each bad one is reported and the others are still
     processed, and the exit code is 2 at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_ERROR = 2
#: Largest key file read (bytes); a key is a secret of a few dozen bytes.
KEY_FILE_MAX_BYTES = 4096

_EPILOG_EXIT = ("exit codes: 0 done or mark found, 1 no mark found, "
                "2 usage, input or output error (one line each; with several inputs the "
                "others are still processed)")
_EPILOG_CHECK = ("exit codes: 0 the image can carry the mark (and with --self-test the "
                 "mark survived JPEG quality 50), 1 it carries the mark but the self-test "
                 "failed, 2 it cannot carry the mark, or a usage or input error")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2 on usage errors: keep that, say more
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n"
                              f"Try '{self.prog} --help' for examples.\n")


def _read_key(path: str | None) -> bytes | None:
    """The key in ``path`` (one trailing newline removed), read with a size limit so
    that ``/dev/zero`` or a large file by mistake is an error, not a hang."""
    if path is None:
        return None
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            data = fh.read(KEY_FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise _UsageError(f"cannot read key file {p}: {exc.strerror or exc}") from None
    if len(data) > KEY_FILE_MAX_BYTES:
        raise _UsageError(f"key file {p} is larger than {KEY_FILE_MAX_BYTES} bytes: is it the "
                          "right file? A key is a secret of a few dozen bytes")
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise _UsageError(f"key file {p} is empty")
    return data


class _UsageError(Exception):
    pass


def _int_arg(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r} (decimal or 0x-hex)") from None


def _quality_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"quality {text!r}: use an integer 1..100")
    return value


def _pixels_arg(text: str) -> int:
    from ._image import ImageError, parse_pixel_limit

    try:
        return parse_pixel_limit(text, what="--max-pixels")
    except ImageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _json_default(value):
    """JSON for NumPy scalars and arrays in ``Detection.details``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(obj) -> str:
    return json.dumps(obj, default=_json_default)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal.

    Every other line (results on stdout, errors on stderr) goes through
    :meth:`print`, which first erases the bar and redraws it after the line, so
    that the bar and the result lines never overwrite each other.
    """

    width = 30

    def __init__(self, total: int, enabled: bool = True):
        self.total = total
        self.enabled = enabled and _is_terminal(sys.stderr)
        self.shown = ""

    def _erase(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * len(self.shown) + "\r")
            sys.stderr.flush()

    def _draw(self) -> None:
        if self.shown:
            sys.stderr.write(self.shown)
            sys.stderr.flush()

    def print(self, text: str, *, err: bool = False) -> None:
        self._erase()
        stream = sys.stderr if err else sys.stdout
        print(text, file=stream, flush=True)
        self._draw()

    def update(self, done: int, name: str) -> None:
        if not self.enabled:
            return
        self._erase()
        filled = int(self.width * done / max(self.total, 1))
        self.shown = (f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} "
                      f"{name[-40:]}")
        self._draw()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.shown = ""


def _error_text(exc: BaseException, name: str) -> str:
    """One line for a per-file error, naming the file once."""
    from ._io import describe_os_error

    msg = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
    return msg if name in msg else f"{name}: {msg}"


def _embed_one(provmark, payload, key, args, src_path, out_path, report) -> dict:
    from ._io import check_output, read_image, write_image

    # Output problems are found before the work (the atomic write still has the
    # final word if another process creates the file meanwhile).
    check_output(out_path, source=src_path, overwrite=args.force)
    src = read_image(src_path)
    for note in src.notes:
        report(f"provmark embed: warning: {note}", err=True)
    t0 = time.perf_counter()
    marked = provmark.embed(src.rgb, payload, key=key, strength=args.strength,
                            adapt=not args.no_adapt)
    elapsed = time.perf_counter() - t0
    out = write_image(out_path, marked, quality=args.quality, exif=src.exif,
                      icc_profile=src.icc_profile, source=src_path, overwrite=args.force)
    return {"input": str(src_path), "output": str(out), "width": int(src.rgb.shape[1]),
            "height": int(src.rgb.shape[0]), "psnr_db": round(_psnr(src.rgb, marked), 2),
            "embed_ms": round(elapsed * 1e3, 1),
            "payload": {"label": payload.label, "provider": payload.provider,
                        "content_id": payload.content_id},
            **({"warnings": list(src.notes)} if src.notes else {})}


def cmd_embed(args) -> int:
    import provmark
    from ._image import ImageError

    key = _read_key(args.key_file)
    inputs = [Path(p) for p in args.inputs]
    out = Path(args.output)
    # Several inputs, or -o naming a directory: OUTPUT is a directory and content
    # IDs are consecutive from --content-id.
    batch = len(inputs) > 1 or out.is_dir() or args.output.endswith(("/", os.sep))
    if batch:
        if out.exists() and not out.is_dir():
            raise _UsageError(f"{out}: with several inputs, -o must be a directory")
        if len({p.name for p in inputs}) != len(inputs):
            raise _UsageError("two inputs have the same file name; they would write the same output")
        last = args.content_id + len(inputs) - 1
        if last >= 2**40:
            raise _UsageError(f"content_id {args.content_id} + {len(inputs)} inputs runs past "
                              "2**40-1: start lower")
        out.mkdir(parents=True, exist_ok=True)
        targets = [out / (p.stem + (args.format or p.suffix.lower())) for p in inputs]
    else:
        from ._io import FORMATS

        if args.format and FORMATS.get(out.suffix.lower()) != FORMATS[args.format]:
            raise _UsageError(f"--format {args.format} disagrees with the output {out}: with one "
                              "input the format comes from -o's extension (drop --format, or "
                              f"write to {out.with_suffix(args.format)})")
        targets = [out]
    progress = _Progress(len(inputs), enabled=batch and len(inputs) > 1)
    status = EXIT_OK
    for i, (src_path, out_path) in enumerate(zip(inputs, targets)):
        payload = provmark.Payload(provider=args.provider, content_id=args.content_id + i,
                                   label=args.label)
        try:
            info = _embed_one(provmark, payload, key, args, src_path, out_path, progress.print)
        except (ImageError, ValueError, OSError) as exc:
            if not batch:
                raise
            msg = _error_text(exc, str(src_path))
            progress.print(f"provmark embed: {msg}", err=True)
            if args.json:
                progress.print(_dumps({"input": str(src_path), "error": msg}))
            status = EXIT_ERROR
            progress.update(i + 1, src_path.name)
            continue
        if args.json:
            progress.print(_dumps(info))
        else:
            progress.print(f"{info['output']}: marked provider={payload.provider} "
                           f"content_id={payload.content_id} label={payload.label} "
                           f"({payload.label_meaning}); PSNR {info['psnr_db']} dB, "
                           f"{info['embed_ms']} ms")
        progress.update(i + 1, src_path.name)
    progress.close()
    return status


def cmd_detect(args) -> int:
    import provmark
    from ._image import ImageError
    from ._io import read_image

    key = _read_key(args.key_file)
    worst = EXIT_OK
    rows = []
    for path in args.inputs:
        try:
            img = read_image(path)
            t0 = time.perf_counter()
            det = provmark.detect(img.rgb, key=key,
                                  search="exhaustive" if args.exhaustive else True)
            ms = (time.perf_counter() - t0) * 1e3
        except (ImageError, OSError) as exc:
            msg = _error_text(exc, str(path))
            rows.append({"input": str(path), "error": msg})
            print(f"provmark detect: {msg}", file=sys.stderr)
            worst = EXIT_ERROR
            continue
        row = {"input": str(path), **det.to_dict(), "detect_ms": round(ms, 1)}
        if args.explain:
            row["search"] = _search_summary(det)
        rows.append(row)
        if not det.found and worst == EXIT_OK:
            worst = EXIT_NOT_FOUND
        if not args.json:
            if det.found:
                p = det.payload
                print(f"{path}: FOUND provider={p.provider} content_id={p.content_id} "
                      f"label={p.label} ({p.label_meaning}); false-alarm probability "
                      f"{det.false_alarm_probability:.1e}, sync z={det.sync_score:.1f}, "
                      f"{det.corrected_symbols} bytes corrected, {det.erasures} erased")
            else:
                print(f"{path}: no mark found ({det.reason}; sync z={det.sync_score:.1f})")
            if args.explain:
                _explain(det)
    if args.json:
        print(_dumps(rows if len(rows) != 1 else rows[0]))
    return worst


def _search_summary(det) -> dict:
    """``det.details`` for ``--explain --json``, with the template's ``used`` true
    only when the reported decoding used that geometry (never on "not found")."""
    search = dict(det.details or {})
    tpl = search.get("template")
    if isinstance(tpl, dict):
        search["template"] = {**tpl, "used": bool(tpl.get("used")) and det.found}
    return search


def _explain(det) -> None:
    """Print the synchronisation search. A geometry is said to be "used" only when
    the reported decoding used it; on "not found" this says what was searched,
    not where the best guesses were (they are not findings)."""
    d = det.details or {}
    attempts = d.get("decode_attempts", 1)
    cands = d.get("candidates") or []
    tpl = d.get("template")
    sweep = d.get("scale_sweep")
    if not det.found:
        print(f"  searched: the aligned grid, then {det.hypotheses} grid/geometry hypotheses "
              f"scored, {attempts} decoded; no word decoded with a false-alarm probability "
              f"within bounds ({det.reason})")
        if cands:
            print(f"  grid search: the {len(cands)} best pixel-offset/tile-phase candidates "
                  "were decoded, none gave a valid word")
        if tpl:
            print(f"  template search: the spectral template was fitted (best score "
                  f"{tpl.get('score', 0.0):.2f}; a geometry is trusted from 1.8 and then the "
                  "copy is also searched resampled to it); no geometry was used")
        else:
            print("  template search: not run (the aligned grid was decoded, or search was off)")
        if sweep:
            if sweep.get("hypotheses_scored"):
                print(f"  exhaustive sweep: {sweep['hypotheses_scored']} of {sweep.get('of', '?')} "
                      "scale/rotation hypotheses scored, none decoded")
            else:
                print("  exhaustive sweep: nothing to sweep (the copy is larger than any "
                      "source the sweep covers, 1.2 MP at scale 1)")
        return
    print(f"  grid: aligned-grid pilot z={d.get('aligned_sync_score', 0.0):.2f}; "
          f"{det.hypotheses} grid hypotheses scored; {attempts} decoded")
    if cands:
        print("  best grid candidates (pilot z, pixel offset dy,dx, tile phase ty,tx):")
        for z, oy, ox, ty, tx in cands:
            print(f"    z={z:6.2f}  offset=({oy:2d},{ox:2d})  tile=({ty:2d},{tx:2d})")
    else:
        print("  the aligned grid decoded; no search was needed")
    if tpl:
        used = bool(tpl.get("used"))
        print(f"  template: score {tpl.get('score', 0.0):.2f} (trusted from 1.8), scale "
              f"y {tpl.get('scale_y', 1.0):.4f} x {tpl.get('scale_x', 1.0):.4f}, rotation "
              f"{tpl.get('rotation', 0.0):.2f} deg; "
              f"{'used for the decoding' if used else 'not used for the decoding'}")
    if sweep and not sweep.get("hypotheses_scored"):
        print("  exhaustive sweep: nothing to sweep (the copy is larger than any source "
              "the sweep covers, 1.2 MP at scale 1)")
    elif sweep:
        print(f"  exhaustive sweep: {sweep['hypotheses_scored']} of {sweep.get('of', '?')} "
              f"scale/rotation hypotheses scored; best pilot z "
              f"{sweep.get('best_z', det.sync_score):.2f} at scale "
              f"{sweep.get('best_scale', det.scale):g}, rotation "
              f"{sweep.get('best_rotation', det.rotation):g} deg")
    print(f"  chosen: offset={det.offset} tile={d.get('tile_phase')} scale={det.scale:g} "
          f"rotation={det.rotation:g} deg; blocks read {det.blocks_used}; "
          f"bit reliability {det.bit_reliability:.2f}; "
          f"false-alarm probability {det.false_alarm_probability:.1e}")


def cmd_check(args) -> int:
    import provmark
    from ._io import read_image

    key = _read_key(args.key_file)
    img = read_image(args.input)
    res = provmark.check_embeddable(img.rgb, self_test=args.self_test, key=key)
    self_test_failed = res.ok and res.jpeg50_survives is False
    info = {"input": str(args.input), "ok": res.ok, "reasons": list(res.reasons),
            "warnings": list(res.warnings), "tiles": round(res.tiles, 2),
            "flat_fraction": round(res.flat_fraction, 3), "jpeg50_survives": res.jpeg50_survives}
    if args.json:
        print(_dumps(info))
    else:
        if not res.ok:
            status = "cannot carry the mark"
        elif self_test_failed:
            status = ("the mark reads back without an attack, but NOT after JPEG quality 50 "
                      "(self-test failed): too weak for images that will be recompressed")
        else:
            status = "can carry the mark"
        print(f"{args.input}: {status}; {res.tiles:.1f} tile repetitions, "
              f"{res.flat_fraction:.0%} flat")
        for line in res.reasons + res.warnings:
            print(f"  - {line}")
        if res.jpeg50_survives is not None:
            print(f"  self-test (JPEG quality 50): {'decoded' if res.jpeg50_survives else 'FAILED'}")
    if not res.ok:
        return EXIT_ERROR
    return EXIT_NOT_FOUND if self_test_failed else EXIT_OK


def cmd_label(args) -> int:
    import provmark
    from ._io import read_image
    from ._label import write_labelled
    from .explicit import FontNotFoundError

    from ._io import check_output

    payload = provmark.Payload(provider=args.provider, content_id=args.content_id, label=args.label)
    key = _read_key(args.key_file)
    check_output(args.output, source=args.input, overwrite=args.force)  # before the work
    src = read_image(args.input)
    for note in src.notes:
        print(f"provmark label: warning: {note}", file=sys.stderr)
    t0 = time.perf_counter()
    try:
        res = provmark.label(src.rgb, payload, key=key, content_producer=args.content_producer,
                             produce_id=args.produce_id, explicit=not args.no_explicit,
                             text=args.text, position=args.position, strength=args.strength,
                             adapt=not args.no_adapt)
    except FontNotFoundError as exc:
        raise _UsageError(str(exc)) from None
    elapsed = time.perf_counter() - t0
    out = write_labelled(args.output, res, quality=args.quality, exif=src.exif,
                         icc_profile=src.icc_profile, source=args.input, overwrite=args.force)
    info = {"input": str(args.input), "output": str(out), "width": int(src.rgb.shape[1]),
            "height": int(src.rgb.shape[0]), "psnr_db": round(_psnr(src.rgb, res.image), 2),
            "label_ms": round(elapsed * 1e3, 1),
            "payload": {"label": payload.label, "provider": payload.provider,
                        "content_id": payload.content_id},
            "metadata": res.label.to_dict(),
            "explicit_box": None if res.explicit_box is None else list(res.explicit_box),
            "explicit_text_height_px": res.explicit_text_height,
            **({"warnings": list(src.notes)} if src.notes else {})}
    if args.json:
        print(_dumps(info))
    else:
        vis = ("no visible label" if res.explicit_box is None else
               f"visible label {args.text!r} at {list(res.explicit_box)} "
               f"({res.explicit_text_height}px text)")
        print(f"{out}: labelled provider={payload.provider} content_id={payload.content_id} "
              f"label={payload.label} ({payload.label_meaning}); metadata "
              f"ContentProducer={res.label.content_producer} ProduceID={res.label.produce_id} "
              f"ReservedCode1={res.label.reserved_code1}; {vis}; {info['label_ms']} ms")
    return EXIT_OK


def cmd_inspect(args) -> int:
    import provmark
    from ._image import ImageError

    key = _read_key(args.key_file)
    html_paths = _html_targets(args) if args.html else []
    any_error = False
    all_found = True
    rows = []
    from ._io import probe_image

    for index, path in enumerate(args.inputs):
        try:
            probe_image(path)  # format, pixel limit, bit depth, frames: from the header
            rep = provmark.inspect(path, key=key,
                                   search=True if args.fast else "exhaustive")
        except (ImageError, OSError) as exc:
            msg = _error_text(exc, str(path))
            rows.append({"input": str(path), "error": msg})
            print(f"provmark inspect: {msg}", file=sys.stderr)
            any_error = True
            continue
        row = rep.to_dict()
        if args.html:
            from ._io import read_image
            from ._report_html import write_html_report

            out = html_paths[index]
            try:
                write_html_report(rep, read_image(path).rgb, out, overwrite=args.force)
                row["html_report"] = str(out)
            except (ImageError, OSError) as exc:
                msg = _error_text(exc, str(out))
                row["html_error"] = msg
                print(f"provmark inspect: {msg}", file=sys.stderr)
                any_error = True
        rows.append(row)
        all_found = all_found and rep.found
        if not args.json:
            _print_report(rep)
            if row.get("html_report"):
                print(f"  report:    {row['html_report']}")
    if args.json:
        print(_dumps(rows if len(rows) != 1 else rows[0]))
    if any_error:
        return EXIT_ERROR
    return EXIT_OK if all_found else EXIT_NOT_FOUND


def _html_targets(args) -> list[Path]:
    """Output file of each input's HTML report: ``--html`` itself for one input, else
    ``<stem>.report.html`` inside the ``--html`` directory (created if needed)."""
    out = Path(args.html)
    inputs = [str(p) for p in args.inputs]
    if len(inputs) == 1 and not out.is_dir():
        if out.suffix.lower() not in (".html", ".htm"):
            raise _UsageError(f"--html {out}: the report file must end in .html "
                              "(with several images, give a directory)")
        parent = out.parent if str(out.parent) else Path(".")
        if not parent.is_dir():
            raise _UsageError(f"--html {out}: the directory {parent} does not exist")
        return _check_free([out], args)
    if out.suffix.lower() in (".html", ".htm") or (out.exists() and not out.is_dir()):
        raise _UsageError(f"--html {out}: with several images --html must be a directory "
                          "(one report per image is written into it)")
    targets: list[Path] = []
    used: set[str] = set()
    for p in inputs:
        stem = Path(p).stem or "image"
        name, n = f"{stem}.report.html", 2
        while name in used:
            name, n = f"{stem}-{n}.report.html", n + 1
        used.add(name)
        targets.append(out / name)
    _check_free(targets, args)
    out.mkdir(parents=True, exist_ok=True)
    return targets


def _check_free(targets: list[Path], args) -> list[Path]:
    resolved = {Path(p).resolve() for p in args.inputs}
    for out in targets:
        if out.resolve() in resolved:
            raise _UsageError(f"--html: {out} is an input; refusing to overwrite it")
        if out.exists() and not args.force:
            raise _UsageError(f"--html: {out} already exists; pass --force to replace it")
    return targets


def _print_report(rep) -> None:
    print(f"{rep.source}: {rep.verdict.upper()} ({rep.container}, {rep.width}x{rep.height})")
    m = rep.metadata
    if m is not None and m.label is not None:
        lab = m.label
        print(f"  metadata:  valid ({m.source}) Label={lab.label} ({lab.meaning}) "
              f"ContentProducer={lab.content_producer} ProduceID={lab.produce_id} "
              f"ReservedCode1={lab.reserved_code1 or '-'}")
        if lab.content_propagator:
            print(f"             ContentPropagator={lab.content_propagator} "
                  f"PropagateID={lab.propagate_id}")
    else:
        print(f"  metadata:  {rep.layers['metadata']}")
    det = rep.detection
    if det.found:
        p = det.payload
        print(f"  watermark: found provider={p.provider} content_id={p.content_id} "
              f"label={p.label} ({p.label_meaning}); false-alarm probability "
              f"{det.false_alarm_probability:.1e}, sync z={det.sync_score:.1f}; "
              f"offset={det.offset} scale={det.scale:g} rotation={det.rotation:g} deg")
    else:
        print(f"  watermark: absent ({det.reason}; sync z={det.sync_score:.1f})")
    print(f"  integrity: {rep.layers['integrity']}")
    print(f"  explicit:  {rep.layers['explicit']}")
    ts = rep.tamper_summary
    if ts.get("available"):
        print(f"  tamper:    mark missing in {ts['missing_fraction']:.1%} of the image "
              f"({ts['missing_region_count']} region(s)), inconclusive "
              f"{ts['inconclusive_fraction']:.1%}")
    else:
        print(f"  tamper:    no map ({ts.get('reason', 'not computed')})")
    for line in rep.problems:
        print(f"  problem: {line}")


def cmd_demo(args) -> int:
    from ._demo import run_demo

    return run_demo(Path(args.out), as_json=args.json)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog="provmark",
        description="Embed and read robust, keyed provenance watermarks (GB 45438 implicit "
                    "label) in images.",
        epilog="examples:\n  provmark demo\n"
               "  provmark embed in.png -o out.png --provider 4242 --content-id 123456789\n"
               "  provmark detect suspicious.jpg --json\n\n" + _EPILOG_EXIT,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"provmark {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def add(name, help_, example, exits=_EPILOG_EXIT):
        return sub.add_parser(name, help=help_, description=help_,
                              epilog=f"example:\n  {example}\n\n{exits}",
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    from ._image import MAX_PIXELS, MAX_PIXELS_ENV
    from ._io import SUPPORTED_TEXT

    key_help = ("file holding the secret key (its bytes, one trailing newline removed; at "
                f"most {KEY_FILE_MAX_BYTES} bytes); default: the public key anyone can read")
    pixels_help = (f"largest image accepted, in pixels (default {MAX_PIXELS} = "
                   f"{MAX_PIXELS / 1e6:g} MP, or the environment variable {MAX_PIXELS_ENV}); "
                   "larger images are refused from their header, before decoding")
    inputs_help = (f"{SUPPORTED_TEXT} (still, 8 bits per channel); other formats, 16-bit "
                   "and animated images are refused")
    p = add("embed", "embed a provenance watermark into an image (or a batch of images)",
            "provmark embed in.png -o out.png --provider 4242 --content-id 123456789 --label 1\n"
            "  provmark embed gen/*.png -o marked/ --provider 4242 --content-id 1000 --format .jpg")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help=f"input image(s): {inputs_help}; never modified")
    p.add_argument("-o", "--output", required=True,
                   help="output image; format from the extension (.png, .jpg, .webp). With several "
                        "inputs (or an existing directory, or a path ending in /): a directory, "
                        "and content IDs count up from --content-id")
    p.add_argument("--format", choices=(".png", ".jpg", ".webp"),
                   help="output format when -o is a directory (default: each input's own "
                        "extension); with one output file it must agree with its extension")
    p.add_argument("--provider", type=_int_arg, required=True, help="provider code, 0 .. 2**24-1")
    p.add_argument("--content-id", type=_int_arg, required=True, help="content ID, 0 .. 2**40-1")
    p.add_argument("--label", type=int, choices=(1, 2, 3), default=1,
                   help="generation label: 1 AI-generated (default), 2 possibly, 3 suspected")
    p.add_argument("--key-file", help=key_help)
    p.add_argument("--quality", type=_quality_arg, default=95,
                   help="JPEG/WebP quality of the output, 1..100 (default 95; WebP 100 = lossless)")
    p.add_argument("--strength", type=float, default=1.0,
                   help="embedding strength multiplier (default 1.0)")
    p.add_argument("--no-adapt", action="store_true",
                   help="use --strength as given; by default images under about 0.5 MP get "
                        "a stronger mark (textured-block floor, then margins) while their "
                        "SSIM stays >= 0.982")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists (never the input)")
    p.add_argument("--max-pixels", type=_pixels_arg, help=pixels_help)
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per image (an error object for a bad one)")
    p.set_defaults(func=cmd_embed)

    p = add("detect", "detect a watermark and print its payload",
            "provmark detect found-online.jpg other.webp --json")
    p.add_argument("inputs", nargs="+", metavar="IMAGE", help=f"images to examine: {inputs_help}")
    p.add_argument("--key-file", help=key_help)
    p.add_argument("--max-pixels", type=_pixels_arg, help=pixels_help)
    p.add_argument("--json", action="store_true",
                   help="print JSON (an object for one image, a list for several)")
    p.add_argument("--explain", action="store_true",
                   help="also print the synchronisation search: when found, the grid "
                        "candidates, the geometry used and the scores; when not, what was "
                        "searched")
    p.add_argument("--exhaustive", action="store_true",
                   help="if nothing is found, also sweep rotations (+-6 deg) and scales "
                        "(0.4-3.0) one by one: finds resized or rotated copies of sources "
                        "under 0.6 MP (which carry no template); 2-4 s more per unmarked image")
    p.set_defaults(func=cmd_detect)

    p = add("check", "say whether an image can carry the mark, and how robustly",
            "provmark check generated.png --self-test", exits=_EPILOG_CHECK)
    p.add_argument("input", help=f"image to check: {inputs_help}")
    p.add_argument("--self-test", action="store_true",
                   help="embed a probe, JPEG-compress at quality 50 and try to read it back "
                        "(exit 1 if it does not read back)")
    p.add_argument("--key-file", help=key_help)
    p.add_argument("--max-pixels", type=_pixels_arg, help=pixels_help)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_check)

    p = add("label", "write all three GB 45438 labels: visible label, watermark, metadata",
            "provmark label in.png -o out.png --provider 4242 --content-id 123456789 "
            "--content-producer ACME --produce-id img-123456789")
    p.add_argument("input", help=f"input image: {inputs_help}; never modified")
    p.add_argument("-o", "--output", required=True,
                   help="output image; format from the extension (.png, .jpg, .webp)")
    p.add_argument("--provider", type=_int_arg, required=True, help="provider code, 0 .. 2**24-1")
    p.add_argument("--content-id", type=_int_arg, required=True, help="content ID, 0 .. 2**40-1")
    p.add_argument("--content-producer", required=True,
                   help="metadata ContentProducer (printable ASCII, no space, quote or backslash)")
    p.add_argument("--produce-id", required=True, help="metadata ProduceID (same character rules)")
    p.add_argument("--label", type=int, choices=(1, 2, 3), default=1,
                   help="generation label: 1 AI-generated (default), 2 possibly, 3 suspected")
    p.add_argument("--key-file", help=key_help)
    p.add_argument("--no-explicit", action="store_true", help="do not draw the visible label")
    p.add_argument("--text", default="AI生成",
                   help='visible label text; must contain "AI" or "人工智能" and "生成" or "合成" '
                        '(default "AI生成")')
    p.add_argument("--position", default="bottom-right",
                   help="visible label position: top-left, top, top-right, left, right, "
                        "bottom-left, bottom, bottom-right (default)")
    p.add_argument("--quality", type=_quality_arg, default=95,
                   help="JPEG/WebP quality of the output, 1..100 (default 95; WebP 100 = lossless)")
    p.add_argument("--strength", type=float, default=1.0,
                   help="embedding strength multiplier (default 1.0)")
    p.add_argument("--no-adapt", action="store_true",
                   help="use --strength as given; by default images under about 0.5 MP get "
                        "a stronger mark (textured-block floor, then margins) while their "
                        "SSIM stays >= 0.982")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists (never the input)")
    p.add_argument("--max-pixels", type=_pixels_arg, help=pixels_help)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_label)

    p = add("inspect", "report every label layer of images, whether they agree, and where "
                       "the watermark is missing (tamper map)",
            "provmark inspect found-online.jpg other.webp --json\n"
            "  provmark inspect found-online.jpg --html found-online.report.html\n"
            "  provmark inspect case/*.jpg --html reports/    # one report per image")
    p.add_argument("inputs", nargs="+", metavar="IMAGE", help=f"image files to examine: {inputs_help}")
    p.add_argument("--key-file", help=key_help)
    p.add_argument("--max-pixels", type=_pixels_arg, help=pixels_help)
    p.add_argument("--json", action="store_true",
                   help="print JSON (an object for one image, a list for several); includes "
                        "the tamper map's summary, not the map")
    p.add_argument("--fast", action="store_true",
                   help="skip the exhaustive scale/rotation sweep that inspect runs when the "
                        "mark is not found at once (2-4 s per image; it finds resized or "
                        "rotated copies of sources under 0.6 MP)")
    p.add_argument("--html", metavar="OUT",
                   help="also write a self-contained HTML forensic report (verdict, layers, "
                        "image, tamper map, metadata): OUT is a .html file for one image, a "
                        "directory for several (<stem>.report.html each). Never an input")
    p.add_argument("--force", action="store_true",
                   help="replace existing HTML reports")
    p.set_defaults(func=cmd_inspect)

    p = add("demo", "embed into the bundled sample photo, compress it, detect, report",
            "provmark demo --out demo-output")
    p.add_argument("--out", default="demo-output",
                   help="directory for the marked image and the difference image (default demo-output)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_demo)

    from .bench.cli import add_bench_parser  # light: matplotlib and peers load on use

    add_bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from PIL import Image

    from ._image import ImageError, pixel_limit
    from ._io import describe_os_error

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        with warnings.catch_warnings(), pixel_limit(getattr(args, "max_pixels", None)):
            # provmark refuses images above its own limit from the header with a clear
            # error; Pillow's warning for the same images would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return args.func(args)
    except (ImageError, _UsageError, ValueError, TypeError) as exc:
        print(f"provmark {args.command}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # the file system refused: read-only, full, permissions
        print(f"provmark {args.command}: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except MemoryError:
        print(f"provmark {args.command}: out of memory; lower --max-pixels or process "
              "smaller images", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
