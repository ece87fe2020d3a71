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
  130 a batch stopped by Ctrl-C or SIGTERM (the images in flight were finished and
     recorded; run the same command again to finish, see docs/batch.md).
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

from ._keyfile import KEY_FILE_MAX_BYTES, KeyFileError, read_key_file

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_ERROR = 2

_EPILOG_EXIT = ("exit codes: 0 done or mark found, 1 no mark found, "
                "2 usage, input or output error (one line each; with several inputs the "
                "others are still processed), 130 interrupted (Ctrl-C)")
_EPILOG_CHECK = ("exit codes: 0 the image can carry the mark (and with --self-test the "
                 "mark survived JPEG quality 50), 1 it carries the mark but the self-test "
                 "failed, 2 it cannot carry the mark, or a usage or input error")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2 on usage errors: keep that, say more
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n"
                              f"Try '{self.prog} --help' for examples.\n")


def _read_key(path: str | None) -> bytes | None:
    """The key in ``path`` (None without ``--key-file``), read by the rules that
    :func:`provmark._keyfile.read_key_file` states."""
    if path is None:
        return None
    try:
        return read_key_file(path)
    except KeyFileError as exc:
        raise _UsageError(str(exc)) from None


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


class _Ordered:
    """Hands results to ``emit`` in input order although workers finish them in any
    order (a result waits until those before it are out)."""

    def __init__(self, indices, emit):
        self._order = sorted(indices)
        self._next = 0
        self._held: dict = {}
        self._emit = emit

    def add(self, index: int, item) -> None:
        self._held[index] = item
        while self._next < len(self._order) and self._order[self._next] in self._held:
            self._emit(self._held.pop(self._order[self._next]))
            self._next += 1

    def flush(self) -> None:
        """Emit what is held (after an interruption some results never come)."""
        for index in sorted(self._held):
            self._emit(self._held.pop(index))


def _want_summary(args, corpus: bool) -> bool:
    """The summary line goes to stderr on a terminal, and whenever the run is a
    corpus run: a directory or URL prefix, a manifest, --workers, --jsonl or Ray."""
    return (_is_terminal(sys.stderr) or corpus or getattr(args, "manifest", None) is not None
            or getattr(args, "workers", None) is not None or getattr(args, "jsonl", False)
            or getattr(args, "engine", "local") != "local")


def _id_policy(args):
    from ._batch import IdPolicy

    if args.content_ids is not None:
        return IdPolicy(csv=args.content_ids)
    if args.content_id_from_name:
        return IdPolicy(from_name=True)
    return IdPolicy(first=args.content_id)


def _single_target(out: str, src: str, args) -> str:
    """Check a single output (before the work) and return its format name
    ("png", "jpeg", "webp") from its extension."""
    from . import _batch
    from ._io import FORMATS, check_output

    path = _batch.local_path(out)
    if path is not None:
        source = _batch.local_path(src)
        fmt = check_output(path, source=source, overwrite=args.force)
    else:
        suffix = "." + out.rsplit(".", 1)[-1].lower() if "." in out.rsplit("/", 1)[-1] else ""
        fmt = FORMATS.get(suffix)
        if fmt is None:
            raise _UsageError(f"{out}: unknown output extension {suffix!r}; use .png, .jpg or .webp")
    if args.format and FORMATS[args.format] != fmt:
        raise _UsageError(f"--format {args.format} disagrees with the output {out}: with one "
                          "input the format comes from -o's extension (drop --format, or "
                          f"write to {out.rsplit('.', 1)[0] + args.format})")
    return fmt.lower()


def _check_visible_label(text: str, position: str) -> None:
    """The visible label's text, position and font, checked before any work."""
    from . import explicit

    explicit.check_label_text(text)
    if explicit._ALIASES.get(position, position) not in explicit.POSITIONS:
        raise _UsageError(f"--position {position!r} is not one of "
                          f"{', '.join(explicit.POSITIONS)}")
    try:
        explicit.find_font(text)
    except explicit.FontNotFoundError as exc:
        raise _UsageError(str(exc)) from None


def _row_text(row, mode: str, args) -> str:
    from ._payload import LABEL_MEANINGS

    p = row.payload
    head = (f"{row.output}: {'marked' if mode == 'embed' else 'labelled'} "
            f"provider={p['provider']} content_id={p['content_id']} label={p['label']} "
            f"({LABEL_MEANINGS[p['label']]})")
    if mode == "label":
        m = row.metadata or {}
        vis = ("no visible label" if row.explicit_box is None else
               f"visible label {args.text!r} at {list(row.explicit_box)} "
               f"({row.explicit_text_height}px text)")
        head += (f"; metadata ContentProducer={m.get('ContentProducer')} "
                 f"ProduceID={m.get('ProduceID')} ReservedCode1={m.get('ReservedCode1')}; {vis}")
    if row.psnr_db is not None:
        head += f"; PSNR {row.psnr_db} dB"
    head += f"{';' if row.psnr_db is None else ','} {row.mark_ms} ms"
    if row.reused:
        head += " (the output was already there with exactly these bytes: kept)"
    return head


def _row_json(row, mode: str) -> dict:
    d = row.to_dict()
    d["embed_ms" if mode == "embed" else "label_ms"] = row.mark_ms
    if mode == "label":
        d["explicit_text_height_px"] = row.explicit_text_height or 0
        d.setdefault("explicit_box", None)
    return d


def _c2pa_signer(args):
    """``--c2pa-cert``/``--c2pa-key`` as a C2paSigner (None without them); checked
    before any work, with the payload label C2PA can state (1)."""
    from .c2pa import C2paError, C2paUnavailableError, check_signing, signer_from_args
    from ._payload import Payload

    try:
        signer = signer_from_args(args)
        if signer is not None:
            check_signing(Payload(0, 0, label=args.label))
    except (C2paError, C2paUnavailableError) as exc:
        raise _UsageError(str(exc)) from None
    return signer


def _c2pa_trust(args):
    """``--c2pa-trust`` as PEM text (None without it)."""
    from .c2pa import C2paError, trust_from_args

    try:
        return trust_from_args(args)
    except C2paError as exc:
        raise _UsageError(str(exc)) from None


def _mark_command(args, mode: str) -> int:
    """``provmark embed`` and ``provmark label``: one image, or a batch (several
    inputs, a directory or URL prefix, or -o naming a directory)."""
    from . import _batch

    cmd = f"provmark {mode}"
    key = _read_key(args.key_file)
    if args.ray_address is not None and args.engine != "ray":
        raise _UsageError("--ray-address needs --engine ray")
    sources, corpus = _batch.list_sources(args.inputs)
    out = args.output
    out_local = _batch.local_path(out)
    batch = (len(sources) > 1 or corpus or out.endswith(("/", os.sep))
             or (out_local is not None and out_local.is_dir()))
    fmt = args.format.lstrip(".") if args.format else None
    if not batch:
        fmt = _single_target(out, sources[0].location, args)
    signer = _c2pa_signer(args) if mode == "label" else None
    options = _batch.Options(
        mode=mode, key=key, format=fmt, quality=args.quality, strength=args.strength,
        adapt=not args.no_adapt, overwrite=args.force, measure=not batch,
        **({} if mode == "embed" else dict(
            content_producer=args.content_producer, explicit=not args.no_explicit,
            text=args.text, position=args.position, c2pa=signer)))
    if mode == "label" and not args.no_explicit:
        _check_visible_label(args.text, args.position)
    if batch:
        _batch.check_output_outside_inputs(args.inputs, out)
    if batch and out_local is not None:
        if out_local.exists() and not out_local.is_dir():
            raise _UsageError(f"{out}: with several inputs, -o must be a directory")
        out_local.mkdir(parents=True, exist_ok=True)
    manifest = _batch.Manifest.open(args.manifest) if args.manifest else None
    try:
        plan = _batch.plan(sources, out, options, ids=_id_policy(args), provider=args.provider,
                           label=args.label, produce_id=getattr(args, "produce_id", None),
                           manifest=manifest, single_output=not batch)
        return _run_marking(args, mode, cmd, plan, options, manifest, batch, corpus)
    finally:
        if manifest is not None:
            manifest.close()


def _run_marking(args, mode, cmd, plan, options, manifest, batch, corpus) -> int:
    import dataclasses

    from . import _batch

    progress = _Progress(len(plan.tasks), enabled=batch and len(plan.tasks) > 1)
    failed = 0

    def emit(row) -> None:
        nonlocal failed
        for note in row.warnings:
            progress.print(f"{cmd}: warning: {note}", err=True)
        if not row.ok:
            failed += 1
            progress.print(f"{cmd}: {row.error}", err=True)
            if args.json:
                progress.print(_dumps(row.to_dict()))
            return
        progress.print(_dumps(_row_json(row, mode)) if args.json else _row_text(row, mode, args))

    ordered = _Ordered([t.index for t in plan.tasks], emit)
    finished = 0

    def on_row(row) -> None:
        nonlocal finished
        finished += 1
        ordered.add(row.index, row)
        progress.update(finished, row.name)

    if plan.stale_temporaries:
        progress.print(f"{cmd}: removed {plan.stale_temporaries} temporary file(s) left by an "
                       "interrupted run", err=True)
    interrupted = False
    try:
        if args.engine == "ray":
            try:
                from .integrations import ray as ray_engine
            except ImportError as exc:
                raise _UsageError(f"--engine ray needs Ray: pip install 'provmark[ray]' ({exc})"
                                  ) from None
            summary = ray_engine.run_batch(plan.tasks, options, manifest=manifest,
                                           workers=args.workers, progress=on_row,
                                           address=args.ray_address)
        else:
            summary = _batch.run_batch(plan.tasks, options, manifest=manifest,
                                       workers=args.workers, progress=on_row)
    except _batch.Interrupted as exc:
        summary, interrupted = exc.summary, True
        ordered.flush()
    summary = dataclasses.replace(summary, skipped=len(plan.done))
    if batch and (interrupted or _want_summary(args, corpus)):
        progress.print(f"{cmd} {summary.text('marked' if mode == 'embed' else 'labelled')}",
                       err=True)
    progress.close()
    if interrupted:
        return 130
    return EXIT_ERROR if failed else EXIT_OK


def cmd_embed(args) -> int:
    return _mark_command(args, "embed")


def cmd_label(args) -> int:
    return _mark_command(args, "label")


class _ScanTally:
    """What a scan's summary counts, kept as counters (a scan may be millions of
    images): images, errors, marked, and per provider, label and verdict."""

    def __init__(self, kind: str):
        from collections import Counter

        self.kind = kind
        self.images = self.errors = self.found = 0
        self.providers: Counter = Counter()
        self.labels: Counter = Counter()
        self.verdicts: Counter = Counter()

    def add(self, res) -> None:
        self.images += 1
        if res.error is not None:
            self.errors += 1
            return
        det = res.result if self.kind == "detect" else res.result.detection
        if self.kind == "inspect":
            self.verdicts[res.result.verdict] += 1
        if det.found:
            self.found += 1
            self.providers[det.payload.provider] += 1
            self.labels[det.payload.label] += 1

    def text(self, seconds: float) -> str:
        def counts(c) -> str:
            return ", ".join(f"{k}: {v}" for k, v in c.most_common()) or "none"

        text = (f"provmark {self.kind} summary: {self.images} images in {seconds:.1f} s "
                f"({self.images / max(seconds, 1e-9):.2f} images/s): {self.found} with a mark, "
                f"{self.images - self.errors - self.found} without, {self.errors} errors; "
                f"providers {counts(self.providers)}; labels {counts(self.labels)}")
        if self.kind == "inspect":
            text += f"; verdicts {counts(self.verdicts)}"
        return text


def _scan_inputs(args):
    """``(key, sources, corpus)`` of ``detect`` or ``inspect``, after the checks both
    make before any image is read."""
    from . import _batch

    key = _read_key(args.key_file)
    if args.json and args.jsonl:
        raise _UsageError("--json and --jsonl: choose one")
    sources, corpus = _batch.list_sources(args.inputs)
    return key, sources, corpus


def _scan(args, kind: str, jobs, describe, corpus: bool) -> bool:
    """Run detect/inspect ``jobs`` (in worker processes when there are many) and give
    out each result in input order; print the summary. Returns whether an input
    could not be read.

    An input that could not be read is one error line on stderr; any other result
    goes to ``describe(res, say)``, which prints its text lines with ``say`` (when
    neither --json nor --jsonl is given) and returns its JSON row. With --jsonl each
    row is printed as it comes; with --json all of them at the end (an object for one
    image, a list for several).
    """
    from . import _batch

    workers = _batch.default_workers(len(jobs), args.workers)
    if any(_batch.in_process_only(j.input) for j in jobs):
        workers = 1
    progress = _Progress(len(jobs), enabled=len(jobs) > 1)
    tally = _ScanTally(kind)
    rows = []
    failed = False

    def keep(res):
        nonlocal failed
        tally.add(res)
        if res.error is not None:
            failed = True
            row = {"input": res.input, "error": res.error}
            progress.print(f"provmark {kind}: {res.error}", err=True)
        else:
            row = describe(res, progress.print)
        if args.jsonl:
            progress.print(_dumps(row))
        elif args.json:  # printed at the end; the other modes print as they go
            rows.append(row)

    ordered = _Ordered(range(len(jobs)), keep)
    t0 = time.perf_counter()
    for n, res in enumerate(_batch.pool_map(_batch.scan_item, jobs, workers=workers), start=1):
        ordered.add(res.index, res)
        progress.update(n, res.input.rsplit("/", 1)[-1])
    if len(jobs) > 1 and _want_summary(args, corpus):
        progress.print(tally.text(time.perf_counter() - t0), err=True)
    progress.close()
    if args.json:
        print(_dumps(rows if len(rows) != 1 else rows[0]))
    return failed


def cmd_detect(args) -> int:
    from . import _batch

    key, sources, corpus = _scan_inputs(args)
    search = "exhaustive" if args.exhaustive else True
    jobs = [_batch.ScanJob(i, s.location, "detect", key, search) for i, s in enumerate(sources)]
    missed = False

    def describe(res, say) -> dict:
        nonlocal missed
        det = res.result
        row = {"input": res.input, **det.to_dict(), "detect_ms": res.ms}
        if args.explain:
            row["search"] = _search_summary(det)
        missed = missed or not det.found
        if not (args.json or args.jsonl):
            if det.found:
                p = det.payload
                say(f"{res.input}: FOUND provider={p.provider} content_id={p.content_id} "
                    f"label={p.label} ({p.label_meaning}); false-alarm probability "
                    f"{det.false_alarm_probability:.1e}, sync z={det.sync_score:.1f}, "
                    f"{det.corrected_symbols} bytes corrected, {det.erasures} erased")
            else:
                say(f"{res.input}: no mark found ({det.reason}; sync z={det.sync_score:.1f})")
            if args.explain:
                _explain(det, say=say)
        return row

    if _scan(args, "detect", jobs, describe, corpus):
        return EXIT_ERROR
    return EXIT_NOT_FOUND if missed else EXIT_OK


def _search_summary(det) -> dict:
    """``det.details`` for ``--explain --json``, with the template's ``used`` true
    only when the reported decoding used that geometry (never on "not found")."""
    search = dict(det.details or {})
    tpl = search.get("template")
    if isinstance(tpl, dict):
        search["template"] = {**tpl, "used": bool(tpl.get("used")) and det.found}
    return search


#: The pilot gates' stages, as ``--explain`` tells that one of them found the geometry:
#: how (formatted with the best gate's record), what it found, and the gate's level.
_GATE_FOUND = {
    "pilot_scales": ("the scale was found by reading the pilot at the coherent sweep's "
                     "best scales (scale {scale:.4f}", "scale", "SCALE_PILOT_Z"),
    "enlargements": ("the scale was read off the copy's interpolation traces (an "
                     "enlargement y {scale_y:.4f} x {scale_x:.4f}", "scale",
                     "ENLARGEMENT_PILOT_Z"),
    "pilot_rotations": ("the rotation was found by reading the pilot at the coherent "
                        "rotation sweep's best rotations ({rotation:.2f} deg", "rotation",
                        "ROTATION_PILOT_Z"),
    "edge_rotation": ("the rotation was read off the copy's straight edges ({rotation:.2f} "
                      "deg, {prominence:.1f} deviations out", "rotation",
                      "EDGE_ROTATION_PILOT_Z"),
}


def _explain(det, say=print) -> None:
    """Print the synchronisation search. A geometry is said to be "used" only when
    the reported decoding used it; on "not found" this says what was searched,
    not where the best guesses were (they are not findings)."""
    from . import _detect
    from ._detect import (COHERENT_Z, DECODE_MIN_Z, ROTATION_SWEEP_LOCK_Z, SCALE_SWEEP_LOCK_Z,
                          UNCROPPED_PILOT_Z)

    d = det.details or {}
    attempts = d.get("decode_attempts", 1)
    cands = d.get("candidates") or []
    tpl = d.get("template")
    sweep = d.get("scale_sweep")
    if not det.found:
        say(f"  searched: the aligned grid, then {det.hypotheses} grid/geometry hypotheses "
              f"scored, {attempts} decoded (grids whose pilot z was under "
              f"{DECODE_MIN_Z} are read, not decoded); no word decoded with a false-alarm probability "
              f"within bounds ({det.reason})")
        if cands:
            say(f"  grid search: the best of its {len(cands)} pixel-offset/tile-phase "
                  "candidates was decoded, without a valid word")
        if tpl:
            say(f"  template search: the spectral template was fitted (best score "
                  f"{tpl.get('score', 0.0):.2f}; a geometry is trusted from 1.8 and then the "
                  "copy is also searched resampled to it); no geometry was used")
            narrow = [lock["breadth"] for lock in tpl.get("locks", [])
                      if lock.get("breadth", _detect.LOCK_MIN_BREADTH) < _detect.LOCK_MIN_BREADTH]
            skipped = tpl.get("fine_skipped") or []
            if narrow or skipped:
                say(f"  {len(narrow) + len(skipped)} template lock(s) from z "
                    f"{_detect.LOCK_Z} on a few of its bins only (median bin z "
                    f"{max(narrow + skipped):.2f} at most): {len(narrow)} not searched "
                    f"(under {_detect.LOCK_MIN_BREADTH}), {len(skipped)} not searched "
                    f"finely (under {_detect.FINE_MIN_BREADTH}). A template raises all "
                    "its bins; an image's own steps or lines (a quantised gradient) a few")
        else:
            say("  template search: not run (the aligned grid was decoded, or search was off)")
        if sweep:
            if sweep.get("hypotheses_scored"):
                say(f"  exhaustive sweep: {sweep['hypotheses_scored']} of {sweep.get('of', '?')} "
                      "scale/rotation hypotheses scored, none decoded")
            else:
                say("  exhaustive sweep: nothing to sweep (the copy is larger than any "
                      "source the sweep covers, 1.2 MP at scale 1)")
        return
    say(f"  grid: aligned-grid pilot z={d.get('aligned_sync_score', 0.0):.2f}; "
          f"{det.hypotheses} grid hypotheses scored; {attempts} decoded")
    if cands:
        say("  best grid candidates (pilot z, pixel offset dy,dx, tile phase ty,tx):")
        for z, oy, ox, ty, tx in cands:
            say(f"    z={z:6.2f}  offset=({oy:2d},{ox:2d})  tile=({ty:2d},{tx:2d})")
    elif d.get("grids_read", attempts) == 1:
        say("  the aligned grid decoded; no search was needed")
    if tpl:
        used = bool(tpl.get("used"))
        say(f"  template: score {tpl.get('score', 0.0):.2f} (trusted from 1.8), scale "
              f"y {tpl.get('scale_y', 1.0):.4f} x {tpl.get('scale_x', 1.0):.4f}, rotation "
              f"{tpl.get('rotation', 0.0):.2f} deg; "
              f"{'used for the decoding' if used else 'not used for the decoding'}")
        swept = tpl.get("swept")
        if used and swept == "coherent_scales":
            say(f"  the scale was found by the coherent sweep of isotropic resizes (best "
                f"score {tpl['coherent_scales'][0]:.2f}, locked from {SCALE_SWEEP_LOCK_Z}), "
                "not at the estimate above; the chosen scale below is the one read")
        elif used and swept == "coherent_rotations":
            say(f"  the rotation was found by the coherent sweep of rotations at scale 1 "
                f"(best score {tpl['coherent_rotations'][0]:.2f}, locked from "
                f"{ROTATION_SWEEP_LOCK_Z}), not at the estimate above; the chosen rotation "
                "below is the one read")
        elif used and swept == "coherent_uncropped":
            hit = max(tpl["coherent_uncropped"], key=lambda h: h["pilot_z"])
            say(f"  the scales were found by the coherent sweep of resizes of the whole, "
                f"uncropped image, each axis its own (y {hit['scale_y']:.4f} x "
                f"{hit['scale_x']:.4f}: coherent score {hit['z']:.2f}, pilot z "
                f"{hit['pilot_z']:.2f} on the grid from the copy's corner, searched from "
                f"{UNCROPPED_PILOT_Z}), not at the estimate above; the chosen scales below "
                "are the ones read")
        elif used and swept in _GATE_FOUND:
            found, what, gate = _GATE_FOUND[swept]
            hit = max(tpl[swept], key=lambda h: h["pilot_z"])
            say(f"  {found.format(**hit)}: pilot z {hit['pilot_z']:.2f} over every grid "
                f"phase, searched from {getattr(_detect, gate)}; the template was too weak to lock), not at "
                f"the estimate above; the chosen {what} below is the one read")
        elif used and tpl.get("coherent") and "coherent_scales" not in tpl:
            say(f"  the geometry was found by the coherent search around the template's "
                f"first estimates (best coherent score {tpl['coherent'][0]:.2f}, locked from "
                f"{COHERENT_Z}), not at the best estimate above; the chosen scale and "
                "rotation below are the ones read")
    if sweep and not sweep.get("hypotheses_scored"):
        say("  exhaustive sweep: nothing to sweep (the copy is larger than any source "
              "the sweep covers, 1.2 MP at scale 1)")
    elif sweep:
        say(f"  exhaustive sweep: {sweep['hypotheses_scored']} of {sweep.get('of', '?')} "
              f"scale/rotation hypotheses scored; best pilot z "
              f"{sweep.get('best_z', det.sync_score):.2f} at scale "
              f"{sweep.get('best_scale', det.scale):g}, rotation "
              f"{sweep.get('best_rotation', det.rotation):g} deg")
    if d.get("layer") == "coarse":
        say("  read on the copy reduced by 2: the coarse layer (smooth images carry one) "
            "or the fine mark of a copy enlarged 2x")
    elif d.get("layer") == "both":
        say("  read on both layers at once: the fine mark and the coarse layer of a smooth "
            "image, each weighed by its own pilot (neither decoded alone)")
    elif d.get("layer") == "extended":
        say("  read with the extension carriers (small smooth images carry them): the "
            "carriers and the extension, each weighed by its own pilot (the carriers "
            "alone did not decode)")
    blind = d.get("blind_coarse")
    if blind:
        say(f"  coarse layer searched blind on the copy reduced by 2 ({blind['flat_share']:.0%} "
            f"of its blocks flat, like a smooth image's): {blind['parities']} pixel "
            f"parit{'y' if blind['parities'] == 1 else 'ies'} searched, every phase counted")
    ext = d.get("extension") or []
    if ext:
        say(f"  extension carriers read on {len(ext)} grid(s) whose carriers did not "
            f"decode; best pilot z {max(e['z'] for e in ext):.2f} (decoded together "
            f"from 2.0; each read counted)")
    say(f"  chosen: offset={det.offset} tile={d.get('tile_phase')} scale={det.scale:g} "
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
            "flat_fraction": round(res.flat_fraction, 3), "jpeg50_survives": res.jpeg50_survives,
            "coarse_layer": res.coarse_layer}
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
        if res.coarse_layer:
            print("  - smooth image: the mark includes a coarse layer at half resolution "
                  "(survives WebP 50 and JPEG 30 better)")
        if res.jpeg50_survives is not None:
            print(f"  self-test (JPEG quality 50): {'decoded' if res.jpeg50_survives else 'FAILED'}")
    if not res.ok:
        return EXIT_ERROR
    return EXIT_NOT_FOUND if self_test_failed else EXIT_OK


def cmd_inspect(args) -> int:
    from . import _batch

    key, sources, corpus = _scan_inputs(args)
    html_paths = _html_targets(args, [s.location for s in sources]) if args.html else []
    search = True if args.fast else "exhaustive"
    anchors = _c2pa_trust(args)
    jobs = [_batch.ScanJob(i, s.location, "inspect", key, search,
                           html=str(html_paths[i]) if args.html else None, overwrite=args.force,
                           c2pa_trust=anchors)
            for i, s in enumerate(sources)]
    html_failed = False
    all_found = True

    def describe(res, say) -> dict:
        nonlocal html_failed, all_found
        rep = res.result
        row = rep.to_dict()
        if res.html_report:
            row["html_report"] = res.html_report
        if res.html_error:
            row["html_error"] = res.html_error
            say(f"provmark inspect: {res.html_error}", err=True)
            html_failed = True
        all_found = all_found and rep.found
        if not (args.json or args.jsonl):
            _print_report(rep, say=say)
            if row.get("html_report"):
                say(f"  report:    {row['html_report']}")
        return row

    failed = _scan(args, "inspect", jobs, describe, corpus)
    if failed or html_failed:
        return EXIT_ERROR
    return EXIT_OK if all_found else EXIT_NOT_FOUND


def _html_targets(args, inputs: list[str]) -> list[Path]:
    """Output file of each input's HTML report: ``--html`` itself for one input, else
    ``<stem>.report.html`` inside the ``--html`` directory (created if needed)."""
    out = Path(args.html)
    if len(inputs) == 1 and not out.is_dir():
        if out.suffix.lower() not in (".html", ".htm"):
            raise _UsageError(f"--html {out}: the report file must end in .html "
                              "(with several images, give a directory)")
        parent = out.parent if str(out.parent) else Path(".")
        if not parent.is_dir():
            raise _UsageError(f"--html {out}: the directory {parent} does not exist")
        return _check_free([out], inputs, args)
    if out.suffix.lower() in (".html", ".htm") or (out.exists() and not out.is_dir()):
        raise _UsageError(f"--html {out}: with several images --html must be a directory "
                          "(one report per image is written into it)")
    targets: list[Path] = []
    used: set[str] = set()
    for p in inputs:
        stem = p.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0] or "image"
        name, n = f"{stem}.report.html", 2
        while name in used:
            name, n = f"{stem}-{n}.report.html", n + 1
        used.add(name)
        targets.append(out / name)
    _check_free(targets, inputs, args)
    out.mkdir(parents=True, exist_ok=True)
    return targets


def _check_free(targets: list[Path], inputs: list[str], args) -> list[Path]:
    from ._batch import local_path

    resolved = {p.resolve() for p in map(local_path, inputs) if p is not None}
    for out in targets:
        if out.resolve() in resolved:
            raise _UsageError(f"--html: {out} is an input; refusing to overwrite it")
        if out.exists() and not args.force:
            raise _UsageError(f"--html: {out} already exists; pass --force to replace it")
    return targets


def _print_report(rep, say=print) -> None:
    say(f"{rep.source}: {rep.verdict.upper()} ({rep.container}, {rep.width}x{rep.height})")
    m = rep.metadata
    if m is not None and m.label is not None:
        lab = m.label
        say(f"  metadata:  valid ({m.source}) Label={lab.label} ({lab.meaning}) "
              f"ContentProducer={lab.content_producer} ProduceID={lab.produce_id} "
              f"ReservedCode1={lab.reserved_code1 or '-'}")
        if lab.content_propagator:
            say(f"             ContentPropagator={lab.content_propagator} "
                  f"PropagateID={lab.propagate_id}")
    else:
        say(f"  metadata:  {rep.layers['metadata']}")
    det = rep.detection
    if det.found:
        p = det.payload
        say(f"  watermark: found provider={p.provider} content_id={p.content_id} "
              f"label={p.label} ({p.label_meaning}); false-alarm probability "
              f"{det.false_alarm_probability:.1e}, sync z={det.sync_score:.1f}; "
              f"offset={det.offset} scale={det.scale:g} rotation={det.rotation:g} deg")
    else:
        say(f"  watermark: absent ({det.reason}; sync z={det.sync_score:.1f})")
    say(f"  integrity: {rep.layers['integrity']}")
    from .c2pa import report_lines

    for line in report_lines(rep):
        say(line)
    say(f"  explicit:  {rep.layers['explicit']}")
    ts = rep.tamper_summary
    if ts.get("available"):
        say(f"  tamper:    mark missing in {ts['missing_fraction']:.1%} of the image "
              f"({ts['missing_region_count']} region(s)), inconclusive "
              f"{ts['inconclusive_fraction']:.1%}"
              + ("; the mark is weak in the whole copy: compression may explain it"
                 if ts.get("weak_mark") and ts["missing_region_count"] else ""))
    else:
        say(f"  tamper:    no map ({ts.get('reason', 'not computed')})")
    for line in rep.problems:
        say(f"  problem: {line}")


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
    where_help = ("a file, a directory (every PNG, JPEG and WebP under it, recursively) or a "
                  "URL: file://, and with provmark[scale] (fsspec) s3://, gs://, memory:// ... "
                  "(a prefix, or a pattern with *)")
    workers_help = ("worker processes (default: the CPU cores, but one per 8 images at most; "
                    "1 runs in this process); each gets cores/workers Numba threads")

    def add_marking(p, verb: str) -> None:
        """The options embed and label share: outputs, content IDs, quality, batch."""
        p.add_argument("inputs", nargs="+", metavar="INPUT",
                       help=f"input image(s), each {where_help}: {inputs_help}; never modified")
        p.add_argument("-o", "--output", required=True,
                       help="output image (format from its extension: .png, .jpg, .webp); "
                            "with several inputs, an input directory or prefix, an existing "
                            "directory or a path ending in /: the output directory or URL "
                            "prefix, where outputs keep the inputs' relative names")
        p.add_argument("--format", choices=(".png", ".jpg", ".webp"),
                       help="output format when -o is a directory (default: each input's own "
                            "format); with one output file it must agree with its extension")
        p.add_argument("--provider", type=_int_arg, required=True,
                       help="provider code, 0 .. 2**24-1")
        ids = p.add_mutually_exclusive_group(required=True)
        ids.add_argument("--content-id", type=_int_arg,
                         help="content ID, 0 .. 2**40-1; with several inputs the first, counting "
                              "up in input order (a directory's files sorted by relative path)")
        ids.add_argument("--content-ids", metavar="CSV",
                         help="content IDs from a CSV file with a header line "
                              "input,content_id[,produce_id]; input is the file's path or its "
                              "name relative to the input directory")
        ids.add_argument("--content-id-from-name", action="store_true",
                         help="content ID = the first 40 bits of SHA-256 of each file's relative "
                              "name (stable across runs; collisions in a run are refused)")
        p.add_argument("--label", type=int, choices=(1, 2, 3), default=1,
                       help="generation label: 1 AI-generated (default), 2 possibly, 3 suspected")
        p.add_argument("--key-file", help=key_help)
        p.add_argument("--quality", type=_quality_arg, default=None,
                       help="JPEG/WebP quality of the output, 1..100 (default 95, and a lossless "
                            "WebP input stays lossless; WebP 100 = lossless)")
        p.add_argument("--strength", type=float, default=1.0,
                       help="embedding strength multiplier (default 1.0)")
        p.add_argument("--no-adapt", action="store_true",
                       help="use --strength as given; by default images under about 0.5 MP get "
                            "a stronger mark (textured-block floor, then margins) while their "
                            "SSIM stays >= 0.982")
        p.add_argument("--force", action="store_true",
                       help="replace outputs that exist (never an input)")
        p.add_argument("--max-pixels", type=_pixels_arg, help=pixels_help)
        p.add_argument("--workers", type=int, metavar="N", help=workers_help)
        p.add_argument("--manifest", metavar="FILE",
                       help="JSON-lines manifest (a local file): one line per image (input, "
                            "output, payload, sizes, SHA-256, status, error), written after the "
                            "output exists; running the same command again skips what it "
                            "records as done and finishes the rest")
        p.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local worker processes (default) or a Ray cluster "
                            "(pip install 'provmark[ray]')")
        p.add_argument("--ray-address", metavar="ADDR",
                       help="with --engine ray: the cluster to join (auto, host:6379 or "
                            "ray://host:10001); default: a local Ray, or RAY_ADDRESS")
        p.add_argument("--json", action="store_true",
                       help=f"print one JSON object per image (its manifest row; a bad one "
                            f"has status failed and error) instead of the '{verb}' lines")

    p = add("embed", "embed a provenance watermark into an image (or a batch of images)",
            "provmark embed in.png -o out.png --provider 4242 --content-id 123456789 --label 1\n"
            "  provmark embed gen/ -o marked/ --provider 4242 --content-id 1000 --format .jpg "
            "--manifest marked.jsonl\n"
            "  provmark embed s3://bucket/gen/ -o s3://bucket/marked/ --provider 4242 "
            "--content-id-from-name --manifest run.jsonl --workers 8")
    add_marking(p, "marked")
    p.set_defaults(func=cmd_embed)

    def add_scan(p, json_help: str) -> None:
        p.add_argument("inputs", nargs="+", metavar="IMAGE",
                       help=f"images to examine, each {where_help}: {inputs_help}")
        p.add_argument("--key-file", help=key_help)
        p.add_argument("--max-pixels", type=_pixels_arg, help=pixels_help)
        p.add_argument("--json", action="store_true", help=json_help)
        p.add_argument("--jsonl", action="store_true",
                       help="print one JSON object per line per image as results come (in "
                            "input order), for large scans; a summary line goes to stderr")
        p.add_argument("--workers", type=int, metavar="N", help=workers_help)

    p = add("detect", "detect a watermark and print its payload",
            "provmark detect found-online.jpg other.webp --json\n"
            "  provmark detect uploads/ --jsonl --workers 2 > found.jsonl")
    add_scan(p, "print JSON (an object for one image, a list for several)")
    p.add_argument("--explain", action="store_true",
                   help="also print the synchronisation search: when found, the grid "
                        "candidates, the geometry used and the scores; when not, what was "
                        "searched")
    p.add_argument("--exhaustive", action="store_true",
                   help="if nothing is found, also sweep rotations (+-6 deg) and scales "
                        "(0.4-3.0) one by one: finds resized or rotated copies whose template "
                        "is too weak to find; 2-4 s more per unmarked image")
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
            "--content-producer ACME --produce-id img-123456789\n"
            "  provmark label gen/ -o labelled/ --provider 4242 --content-id 1000 "
            "--content-producer ACME --produce-id 'img-{content_id}' --manifest labelled.jsonl")
    add_marking(p, "labelled")
    p.add_argument("--content-producer", required=True,
                   help="metadata ContentProducer (printable ASCII, no space, quote or backslash)")
    p.add_argument("--produce-id",
                   help="metadata ProduceID (same character rules); with several inputs a "
                        "template with {stem}, {name}, {content_id} or {index}, e.g. "
                        "'img-{content_id}' (or a produce_id column in --content-ids)")
    p.add_argument("--no-explicit", action="store_true", help="do not draw the visible label")
    p.add_argument("--text", default="AI生成",
                   help='visible label text; must contain "AI" or "人工智能" and "生成" or "合成" '
                        '(default "AI生成")')
    p.add_argument("--position", default="bottom-right",
                   help="visible label position: top-left, top, top-right, left, right, "
                        "bottom-left, bottom, bottom-right (default)")
    from .c2pa import add_signing_arguments, add_trust_arguments

    add_signing_arguments(p)
    p.set_defaults(func=cmd_label)

    p = add("inspect", "report every label layer of images, whether they agree, and where "
                       "the watermark is missing (tamper map)",
            "provmark inspect found-online.jpg other.webp --json\n"
            "  provmark inspect found-online.jpg --html found-online.report.html\n"
            "  provmark inspect case/*.jpg --html reports/    # one report per image\n"
            "  provmark inspect corpus/ --fast --jsonl --workers 2 > verdicts.jsonl")
    add_scan(p, "print JSON (an object for one image, a list for several); includes the "
                "tamper map's summary, not the map")
    p.add_argument("--fast", action="store_true",
                   help="skip the exhaustive scale/rotation sweep that inspect runs when the "
                        "mark is not found at once (2-4 s per image; it finds resized or "
                        "rotated copies whose template is too weak to find)")
    p.add_argument("--html", metavar="OUT",
                   help="also write a self-contained HTML forensic report (verdict, layers, "
                        "image, tamper map, metadata): OUT is a .html file for one image, a "
                        "directory for several (<stem>.report.html each). Never an input")
    p.add_argument("--force", action="store_true",
                   help="replace existing HTML reports")
    add_trust_arguments(p)
    p.set_defaults(func=cmd_inspect)

    p = add("demo", "embed into the bundled sample photo, compress it, detect, report",
            "provmark demo --out demo-output")
    p.add_argument("--out", default="demo-output",
                   help="directory for the marked image and the difference image (default demo-output)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_demo)

    from .bench.cli import add_bench_parser  # light: matplotlib and peers load on use

    add_bench_parser(sub)
    from .server.cli import add_serve_parser  # light: fastapi/uvicorn load on use

    add_serve_parser(sub)
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
