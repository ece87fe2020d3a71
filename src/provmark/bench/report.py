"""Tables of a benchmark run: JSON and CSV of every case, and a markdown report.

Robustness is scored two ways per method and attack case: the *exact-payload rate*
(every message bit right; for provmark the whole payload) and the mean *bit
accuracy* (a method that reports "no mark" scores 0.5, a coin's accuracy, for that
case). Imperceptibility is PSNR, SSIM and MS-SSIM of the marked image against the
original. Detection is the TPR at FPR 1e-3 and 1e-6 (as WAVES reports), from
p-values that are valid on unmarked images (:mod:`provmark.bench.metrics`), checked
against the unmarked (attacked) images the run also read.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import platform
from pathlib import Path

from .tables import (FPRS, _case_order, _method_names, quality_rows, robustness_rows,
                     tpr_rows)

__all__ = ["FPRS", "robustness_rows", "quality_rows", "tpr_rows", "write_report",
           "markdown", "CSV_COLUMNS"]

CSV_COLUMNS = ("key", "kind", "method", "detector", "image", "attack", "family", "case",
               "severity_key", "severity", "params", "seed", "payload_bits", "exact",
               "bit_accuracy", "abstained", "p_value", "score", "found", "psnr", "ssim",
               "ms_ssim", "seconds", "error", "info")


def _pct(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"


def _f(x: float, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _environment() -> dict:
    from importlib import metadata

    versions = {}
    for pkg in ("provmark", "numpy", "scipy", "opencv-python-headless", "Pillow",
                "scikit-image", "numba", "matplotlib", "invisible-watermark",
                "blind-watermark", "onnxruntime", "torch"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    import os

    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "packages": versions}


def _sanity_rows(result) -> list[tuple[str, str, str]]:
    """invisible-watermark's published claims for dwtDct next to what this run measured."""
    names = _method_names(result)
    if "dwtDct" not in names:
        return []
    claims = (("no attack (clean read-back)", "–", ("none",)),
              ("JPEG", "Pass", ("jpeg", "jpeg_pillow", "webp")),
              ("brightness", "Pass", ("brightness",)),
              ("resize 50%", "Fail", ("resize",)),
              ("crop", "Fail", ("crop",)))
    rows = []
    by_case = {(r["case"], r["method"]): r for r in robustness_rows(result)}
    for what, claim, attacks in claims:
        measured = []
        for case in _case_order(result):
            r = by_case.get((case, "dwtDct"))
            if r and r["attack"] in attacks:
                if what == "resize 50%" and r["severity"] != "0.5":
                    continue
                measured.append(f"{case}: {_pct(r['exact_rate'])}")
        if measured:
            rows.append((what, claim, "; ".join(measured)))
    return rows


def markdown(result, plots: dict[str, list[str]] | None = None) -> str:
    """The markdown report: robustness table, quality, TPR at FPR, notes."""
    cfg = result.config
    names = _method_names(result)
    lines = ["# provmark bench report", ""]
    lines.append(f"Command: `{cfg.command or 'provmark bench'}`  ")
    lines.append(f"Run: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, "
                 f"{len(cfg.images)} image(s) ({', '.join(i.name for i in cfg.images)}) at "
                 f"{_size_text(cfg.images)}, {len(cfg.cases)} attack cases, seed {cfg.seed}, "
                 f"{cfg.jobs} worker(s), {result.seconds:.0f} s "
                 f"({result.computed} cases computed, {result.cached} from the cache).")
    lines.append("")
    if result.skipped_methods:
        lines.append("Skipped methods:")
        lines += [f"- `{k}`: {v}" for k, v in result.skipped_methods.items()]
        lines.append("")
    if result.skipped_attacks:
        lines.append("Skipped attacks:")
        lines += [f"- `{k}`: {v}" for k, v in result.skipped_attacks.items()]
        lines.append("")

    lines += ["## Robustness", "",
              f"Each cell: exact-payload rate / mean bit accuracy over {len(cfg.images)} "
              "image(s). Exact = every message bit right (provmark: the whole payload). "
              "Bit accuracy of a case where the method reports \"no mark\" counts as 0.5. "
              "Detection is blind: each method sees only the attacked image.", ""]
    lines.append("| attack | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    cells = {(r["case"], r["method"]): r for r in robustness_rows(result)}
    for case in _case_order(result):
        row = []
        for n in names:
            r = cells.get((case, n))
            if r is None:
                row.append("–")
                continue
            mark = "†" if r["embed_failed"] else ""
            row.append(f"{_pct(r['exact_rate'])} / {r['bit_accuracy']:.2f}{mark}")
        lines.append(f"| {case} | " + " | ".join(row) + " |")
    if any(r["embed_failed"] for r in cells.values()):
        lines.append("")
        lines.append("† includes images the method could not mark (embedding refused; "
                     "counted as failures, see Imperceptibility).")
    lines.append("")

    small = [i for i in cfg.images if i.size is not None and i.size[0] * i.size[1] < 600_000]
    standard_only = not any(getattr(m, "search", "standard") == "exhaustive"
                            for m in result.methods)
    if small and standard_only and any(m.family == "provmark" for m in result.methods):
        lines += ["provmark embeds its resize/rotation template only in sources of at least "
                  "0.6 megapixels; at the size used here its default detector does not "
                  "resynchronise resizes and rotations (README, Limits). The exhaustive "
                  "detector does (seconds per image): add `--methods provmark@1.0:exhaustive`, "
                  "or run with `--size 1024`.", ""]

    sanity = _sanity_rows(result)
    if sanity:
        lines += ["### Sanity check against invisible-watermark's README", "",
                  "Its README reports for dwtDct: JPEG compress Pass, brightness Pass, "
                  "resize 50% Fail, crop Fail. Measured here (exact-payload rate):", "",
                  "| operation | README | measured (dwtDct) |", "|---|---|---|"]
        lines += [f"| {w} | {c} | {m} |" for w, c, m in sanity]
        lines += ["", "The README does not say which JPEG chroma subsampling it used: dwtDct "
                  "hides its bits in the U chroma channel, which the default 4:2:0 "
                  "subsampling of OpenCV (`jpeg`) halves and Pillow at 4:4:4 "
                  "(`jpeg_pillow ... subsampling=4:4:4`) keeps at full resolution.", ""]

    lines += ["## Imperceptibility and capacity", "",
              "PSNR and SSIM (scikit-image) and MS-SSIM (Wang et al. 2003), all on RGB, of "
              "the marked image against the original; bits = random message bits carried "
              "per image; robustness = mean over every attacked case (none excluded).", "",
              "| method | bits | PSNR dB (min) | SSIM | MS-SSIM | embed failures | "
              "exact rate | bit accuracy | what it is |",
              "|---|---|---|---|---|---|---|---|---|"]
    for q in quality_rows(result):
        lines.append(f"| {q['method']} | {q['payload_bits']} | {_f(q['psnr'], 1)} "
                     f"({_f(q['psnr_min'], 1)}) | {_f(q['ssim'], 4)} | {_f(q['ms_ssim'], 4)} | "
                     f"{q['embed_failures']}/{q['images']} | {_pct(q['exact_rate'])} | "
                     f"{_f(q['bit_accuracy'])} | {q['description']} |")
    errors = [(q["method"], e) for q in quality_rows(result) for e in q["embed_errors"]]
    if errors:
        lines.append("")
        lines += [f"- `{m}` could not mark an image: {e}" for m, e in errors]
    lines.append("")

    lines += ["## Detection: TPR at fixed FPR", "",
              "Positives: every marked, attacked image (none excluded); negatives: the same "
              "attacks on the unmarked images. TPR@FPR uses each method's p-value, valid "
              "on unmarked images, so FPR 1e-6 is certified without 1e6 negatives (see "
              "docs/bench.md). \"neg. p≤FPR\" counts negatives that would be false alarms "
              "(a check of the model); the empirical TPR uses a threshold set on the "
              "negatives alone and needs at least 1/FPR of them.", "",
              "| method | p-value model | pos. | neg. | TPR@1e-3 | TPR@1e-6 | "
              "neg. p≤1e-3 | neg. p≤1e-6 | empirical TPR@1e-3 |",
              "|---|---|---|---|---|---|---|---|---|"]
    for t in tpr_rows(result):
        emp = t["empirical_tpr@1e-03"]
        emp_text = (_pct(emp) if emp is not None
                    else f"n/a (needs ≥1000 negatives, has {t['negatives']})")
        lines.append(f"| {t['method']} | {t['null_model']} | {t['positives']} | "
                     f"{t['negatives']} | {_pct(t['tpr@1e-03'])} | {_pct(t['tpr@1e-06'])} | "
                     f"{t['neg_fp@1e-03']} | {t['neg_fp@1e-06']} | {emp_text} |")
    lines.append("")
    if plots:
        lines += ["## Plots", ""]
        for title, files in plots.items():
            lines.append(f"- {title}: " + ", ".join(f"`{Path(f).name}`" for f in files))
        lines.append("")
    return "\n".join(lines)


def _size_text(images) -> str:
    sizes = sorted({"native" if i.size is None else f"{i.size[0]}x{i.size[1]}" for i in images})
    return ", ".join(sizes)


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    if isinstance(v, float):
        return repr(v)
    return v


def write_csv(result, path: Path) -> Path:
    """Every record (embed, positive, negative) as one CSV row."""
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for r in result.records:
            w.writerow([_csv_value(r.get(c)) for c in CSV_COLUMNS])
    return Path(path)


def _config_dict(result) -> dict:
    cfg = result.config
    return {"command": cfg.command, "methods": cfg.methods, "seed": cfg.seed,
            "jobs": cfg.jobs, "images": [i.id for i in cfg.images],
            "cases": [c.label for c in cfg.cases]}


def _finite(obj):
    """JSON has no NaN/inf: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def write_json(result, path: Path) -> Path:
    """Configuration, environment, summaries and every record, as one JSON document."""
    doc = {
        "config": _config_dict(result),
        "environment": _environment(),
        "seconds": result.seconds,
        "methods": quality_rows(result),
        "skipped_methods": result.skipped_methods,
        "skipped_attacks": result.skipped_attacks,
        "robustness": robustness_rows(result),
        "tpr_at_fpr": tpr_rows(result) + tpr_rows(result, groups="family"),
        "records": result.records,
    }
    Path(path).write_text(json.dumps(_finite(doc), indent=1, default=str), encoding="utf-8")
    return Path(path)


def write_report(result, out: str | Path, *, formats=("png", "svg"), plots: bool = True
                 ) -> dict[str, Path | list[Path]]:
    """Write ``results.json``, ``results.csv``, ``report.md`` and the plots into ``out``.

    Returns the paths written, by name.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path | list[Path]] = {}
    written["json"] = write_json(result, out / "results.json")
    written["csv"] = write_csv(result, out / "results.csv")
    plot_files: dict[str, list[str]] = {}
    if plots and formats:
        from .plots import make_plots

        plot_files = make_plots(result, out, formats=tuple(formats))
        written["plots"] = [Path(f) for fs in plot_files.values() for f in fs]
    md = out / "report.md"
    md.write_text(markdown(result, plot_files), encoding="utf-8")
    written["markdown"] = md
    return written
