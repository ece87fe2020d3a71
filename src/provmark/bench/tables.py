"""The tables of a benchmark result (robustness, quality, detection rate at a
false-positive rate), computed once for the Markdown report (:mod:`.report`) and the
plots (:mod:`.plots`)."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .metrics import empirical_tpr_at_fpr, tpr_at_fpr

#: False-positive rates of the detection table.
FPRS = (1e-3, 1e-6)


_FAMILY_ORDER = ("none", "compression", "geometry", "filtering", "colour", "occlusion", "chain")


def _usable(r: dict) -> bool:
    return not r.get("attack_failed")


def _method_names(result) -> list[str]:
    return [m.name for m in result.methods]


def _case_order(result) -> list[str]:
    return list(OrderedDict.fromkeys(c.label for c in result.config.cases))


def robustness_rows(result) -> list[dict]:
    """One row per (attack case, method): images, exact-payload rate, bit accuracy."""
    cells: dict[tuple[str, str], list[dict]] = {}
    info: dict[str, dict] = {}
    for r in result.records:
        if r["kind"] != "positive" or not _usable(r):
            continue
        cells.setdefault((r["case"], r["method"]), []).append(r)
        info.setdefault(r["case"], {k: r[k] for k in ("attack", "family", "severity_key",
                                                      "severity", "params")})
    rows = []
    for case in _case_order(result):
        for name in _method_names(result):
            rs = cells.get((case, name), [])
            if not rs:
                continue
            rows.append({
                "case": case, **info[case], "method": name, "n": len(rs),
                "exact_rate": float(np.mean([r["exact"] for r in rs])),
                "bit_accuracy": float(np.mean([r["bit_accuracy"] for r in rs])),
                "abstained": int(sum(bool(r["abstained"]) for r in rs)),
                "embed_failed": int(sum(str(r.get("error") or "").startswith("embed failed")
                                        for r in rs)),
            })
    return rows


def quality_rows(result) -> list[dict]:
    """One row per method: payload bits, PSNR/SSIM/MS-SSIM of the marked images,
    embed failures and the mean robustness over every attacked case."""
    by_method: dict[str, list[dict]] = {}
    pos: dict[str, list[dict]] = {}
    for r in result.records:
        if r["kind"] == "embed":
            by_method.setdefault(r["method"], []).append(r)
        elif r["kind"] == "positive" and _usable(r) and r["attack"] != "none":
            pos.setdefault(r["method"], []).append(r)
    rows = []
    for m in result.methods:
        rs = by_method.get(m.name, [])
        ok = [r for r in rs if not r.get("error")]

        def mean(key, ok=ok):
            vals = [r[key] for r in ok if r.get(key) is not None and math.isfinite(r[key])]
            return float(np.mean(vals)) if vals else math.nan

        ps = pos.get(m.name, [])
        rows.append({
            "method": m.name, "family": m.family, "primary": bool(m.primary),
            "strength": getattr(m, "strength", None), "payload_bits": m.payload_bits,
            "description": m.description, "images": len(rs), "embed_failures": len(rs) - len(ok),
            "embed_errors": sorted({r["error"] for r in rs if r.get("error")}),
            "psnr": mean("psnr"),
            "psnr_min": float(min((r["psnr"] for r in ok), default=math.nan)),
            "ssim": mean("ssim"), "ms_ssim": mean("ms_ssim"),
            "embed_seconds": mean("seconds"),
            "attacked_cases": len(ps),
            "exact_rate": float(np.mean([r["exact"] for r in ps])) if ps else math.nan,
            "bit_accuracy": float(np.mean([r["bit_accuracy"] for r in ps])) if ps else math.nan,
        })
    return rows


def _null_model(m) -> str:
    if m.family == "provmark":
        return "calibrated bound (decoder x pilot, Hoeffding)"
    return f"binomial: matches of {m.payload_bits} random bits"


def tpr_rows(result, groups: str = "all") -> list[dict]:
    """TPR at each FPR of :data:`FPRS`, per method and attack group.

    ``groups="all"`` gives one row per method over every attacked case (``none``
    excluded); ``"family"`` one row per method and attack family (``none`` is the
    family of the unattacked images).
    """
    pos: dict[tuple[str, str], list[float]] = {}
    neg: dict[tuple[str, str], list[float]] = {}
    for r in result.records:
        if r["kind"] not in ("positive", "negative") or not _usable(r):
            continue
        if groups == "all":
            if r["attack"] == "none":
                continue
            g = "all attacks"
        else:
            g = r["family"]
        target = pos if r["kind"] == "positive" else neg
        target.setdefault((r["detector"] if r["kind"] == "negative" else r["method"], g),
                          []).append(r["p_value"])
    group_names = sorted({g for _, g in pos},
                         key=lambda g: _FAMILY_ORDER.index(g) if g in _FAMILY_ORDER else 99)
    rows = []
    for m in result.methods:
        for g in group_names:
            p_pos = np.asarray(pos.get((m.name, g), []), dtype=np.float64)
            neg_key = (m.detector_id, g)
            p_neg = np.asarray(neg.get(neg_key, []), dtype=np.float64)
            if p_pos.size == 0:
                continue
            row = {"method": m.name, "group": g, "null_model": _null_model(m),
                   "positives": int(p_pos.size), "negatives": int(p_neg.size)}
            for fpr in FPRS:
                tag = f"{fpr:.0e}"
                row[f"tpr@{tag}"] = tpr_at_fpr(p_pos, fpr)
                row[f"neg_fp@{tag}"] = int(np.sum(p_neg <= fpr))
                emp = empirical_tpr_at_fpr(-np.log10(np.maximum(p_pos, 1e-300)),
                                           -np.log10(np.maximum(p_neg, 1e-300)), fpr)
                row[f"empirical_tpr@{tag}"] = None if emp is None else emp[0]
            rows.append(row)
    return rows
