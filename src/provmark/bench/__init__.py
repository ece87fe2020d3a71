"""``provmark bench``: a robustness benchmark of image watermarking methods.

Runs methods (provmark at several strengths and payload profiles, and the peer
packages invisible-watermark and blind-watermark when installed) over images x
attacks x severities from :mod:`provmark.attacks`, in parallel worker processes
with a resume cache, and writes JSON/CSV of every case, a markdown report and
plots of robustness versus severity, imperceptibility (PSNR) and capacity, and
TPR at FPR 1e-3 and 1e-6. Command line: ``provmark bench --help``; guide:
``docs/bench.md``.

Submodules: :mod:`~provmark.bench.methods` (the method interface and adapters),
:mod:`~provmark.bench.peers` (the peer packages' adapters),
:mod:`~provmark.bench.runner` (parallel, resumable execution),
:mod:`~provmark.bench.report` and :mod:`~provmark.bench.plots` (outputs),
:mod:`~provmark.bench.metrics` (PSNR, SSIM, MS-SSIM, TPR at FPR) and
:mod:`~provmark.bench.images` (test images). Importing this package does not
import matplotlib or any peer.
"""

from .images import PHOTOS, ImageRef, folder_images, skimage_photos
from .methods import Method, PeerMethod, ProvmarkMethod, Readout, parse_method, resolve_methods
from .metrics import empirical_tpr_at_fpr, ms_ssim, psnr, ssim, tpr_at_fpr
from .runner import QUICK_CASES, AttackCase, BenchConfig, BenchResult, attack_cases, run

__all__ = [
    "PHOTOS",
    "ImageRef",
    "folder_images",
    "skimage_photos",
    "Method",
    "Readout",
    "ProvmarkMethod",
    "PeerMethod",
    "parse_method",
    "resolve_methods",
    "ms_ssim",
    "psnr",
    "ssim",
    "tpr_at_fpr",
    "empirical_tpr_at_fpr",
    "AttackCase",
    "QUICK_CASES",
    "BenchConfig",
    "BenchResult",
    "attack_cases",
    "run",
    "write_report",
]


def write_report(result, out, *, formats=("png", "svg"), plots=True):
    """Write the JSON, CSV, markdown report and plots of ``result`` into ``out``
    (see :func:`provmark.bench.report.write_report`)."""
    from .report import write_report as _write

    return _write(result, out, formats=formats, plots=plots)
