"""Plots of a benchmark run (matplotlib, Agg; PNG and SVG).

* ``severity_<family>``: exact-payload rate and bit accuracy versus severity, one
  panel pair per attack of the family, one line per method at its default setting;
* ``tradeoff_psnr``: robustness versus PSNR as provmark's strength varies (peers
  at their defaults as single points);
* ``capacity``: robustness versus the number of random message bits carried;
* ``tpr_at_fpr``: TPR at FPR 1e-3 and 1e-6 per method and attack family.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot, no
global backend switch), so importing this module never opens a window.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .tables import FPRS, quality_rows, robustness_rows, tpr_rows

__all__ = ["make_plots", "method_style"]

_PEER_COLOURS = {"dwtDct": "#e6850e", "dwtDctSvd": "#2ca02c", "rivaGan": "#d62728",
                 "blind-watermark": "#9467bd"}
_MARKERS = {"provmark": "o", "dwtDct": "s", "dwtDctSvd": "D", "rivaGan": "^",
            "blind-watermark": "v"}
_FAMILY_ORDER = ("compression", "geometry", "filtering", "colour", "occlusion", "chain")


def method_style(method, all_methods) -> dict:
    """Colour, marker and line style of a method, stable across plots: provmark in
    blues (darker = stronger), each peer package in its own colour."""
    from matplotlib import colormaps

    if method.family == "provmark":
        strengths = sorted({m.strength for m in all_methods if m.family == "provmark"})
        i = strengths.index(method.strength)
        t = 0.5 if len(strengths) == 1 else 0.45 + 0.5 * i / (len(strengths) - 1)
        colour = colormaps["Blues"](t)
    else:
        colour = _PEER_COLOURS.get(method.family, "#7f7f7f")
    exhaustive = getattr(method, "search", "standard") == "exhaustive"
    if exhaustive:
        colour = "#08306b"  # darkest blue: provmark's slow, exhaustive detector
    return {"color": colour, "marker": "D" if exhaustive else _MARKERS.get(method.family, "o"),
            "linestyle": "-." if exhaustive else "-" if method.primary else "--"}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained", dpi=110)


def _save(fig, out: Path, stem: str, formats) -> list[str]:
    files = []
    for fmt in formats:
        path = out / f"{stem}.{fmt}"
        fig.savefig(path, format=fmt)
        files.append(str(path))
    return files


def _shown_methods(result) -> list:
    """Each package at its default setting, plus provmark's exhaustive detector (the
    same marks read with the scale/rotation sweep) when it was run."""
    primary = [m for m in result.methods
               if m.primary or (getattr(m, "search", "standard") == "exhaustive"
                                and m.strength == 1.0 and m.bits == 64)]
    return primary or list(result.methods)


def _severity_plots(result, out: Path, formats) -> dict[str, list[str]]:
    rows = robustness_rows(result)
    methods = _shown_methods(result)
    names = {m.name for m in methods}
    by_family: dict[str, OrderedDict] = {}
    baseline = {r["method"]: r for r in rows if r["attack"] == "none"}
    for r in rows:
        if r["attack"] == "none" or r["method"] not in names:
            continue
        fam = by_family.setdefault(r["family"], OrderedDict())
        fam.setdefault(r["attack"], OrderedDict()).setdefault(r["case"], {})[r["method"]] = r
    files = {}
    for family in [f for f in _FAMILY_ORDER if f in by_family]:
        attacks = by_family[family]
        n = len(attacks)
        ncols = min(4, n)
        blocks = math.ceil(n / ncols)
        side_legend = ncols <= 2
        fig = _figure(3.1 * ncols + (2.6 if side_legend else 0.4), 4.6 * blocks + 0.9)
        axes = fig.subplots(2 * blocks, ncols, squeeze=False)
        for i, (attack, cases) in enumerate(attacks.items()):
            b, c = divmod(i, ncols)
            ax_e, ax_b = axes[2 * b, c], axes[2 * b + 1, c]
            first = next(iter(next(iter(cases.values())).values()))
            sev_labels = [next(iter(v.values()))["severity"] for v in cases.values()]
            if len(set(sev_labels)) < len(sev_labels):  # same severity, other params
                sev_labels = [case.split(" ", 1)[1] for case in cases]
            labels = ["none"] + sev_labels
            x = np.arange(len(labels))
            fixed = _fixed_params(cases)
            for k, m in enumerate(methods):
                # A small sideways offset per method, so equal values do not hide
                # each other (the x axis is categorical).
                dx = 0.08 * (k - (len(methods) - 1) / 2)
                style = method_style(m, result.methods)
                ys_e, ys_b = [], []
                base = baseline.get(m.name)
                ys_e.append(base["exact_rate"] if base else np.nan)
                ys_b.append(base["bit_accuracy"] if base else np.nan)
                for v in cases.values():
                    r = v.get(m.name)
                    ys_e.append(r["exact_rate"] if r else np.nan)
                    ys_b.append(r["bit_accuracy"] if r else np.nan)
                kw = dict(color=style["color"], marker=style["marker"], markersize=4.5,
                          linewidth=1.5, linestyle=style["linestyle"], label=m.name)
                ax_e.plot(x + dx, 100 * np.asarray(ys_e), **kw)
                ax_b.plot(x + dx, ys_b, **kw)
            ax_e.set_title(attack + (f" ({fixed})" if fixed else ""), fontsize=10)
            ax_b.axhline(0.5, color="0.5", linewidth=0.8, linestyle=":")
            for ax in (ax_e, ax_b):
                ax.set_xticks(x)
                ax.set_xticklabels(labels, rotation=30 if max(map(len, labels)) > 4 else 0,
                                   ha="right" if max(map(len, labels)) > 4 else "center",
                                   fontsize=8)
                ax.grid(True, alpha=0.3)
                ax.tick_params(axis="y", labelsize=8)
            ax_e.set_ylim(-3, 103)
            ax_b.set_ylim(0.0, 1.02)
            ax_b.set_xlabel(f"{first['severity_key']} (mild → strong)", fontsize=9)
            if c == 0:
                ax_e.set_ylabel("exact payload (%)", fontsize=9)
                ax_b.set_ylabel("bit accuracy\n(0.5 = chance)", fontsize=9)
        for j in range(n, blocks * ncols):
            b, c = divmod(j, ncols)
            axes[2 * b, c].set_visible(False)
            axes[2 * b + 1, c].set_visible(False)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        if side_legend:
            fig.legend(handles, labels, loc="outside right center", fontsize=9, frameon=False)
        else:
            fig.legend(handles, labels, loc="outside lower center",
                       ncols=min(len(labels), 6), fontsize=9, frameon=False)
        fig.suptitle(f"{family}: robustness vs severity\n"
                     f"({len(result.config.images)} image(s), blind detection)", fontsize=11)
        files[f"robustness vs severity, {family}"] = _save(fig, out, f"severity_{family}", formats)
    return files


def _fixed_params(cases) -> str:
    """Parameters other than the severity that every case of an attack sets alike."""
    rows = [next(iter(v.values())) for v in cases.values()]
    common = None
    for r in rows:
        extra = {k: v for k, v in r["params"].items() if k != r["severity_key"]} \
            if "params" in r else {}
        common = extra if common is None else {k: v for k, v in common.items()
                                               if extra.get(k) == v}
    return ", ".join(f"{k}={v}" for k, v in (common or {}).items())


def _quality_by_name(result) -> dict[str, dict]:
    return {q["method"]: q for q in quality_rows(result)}


def _robustness_ylim(ax, key: str, values) -> None:
    """Exact rate on 0..100 %; bit accuracy from just below chance (or the lowest
    value) to 1, with chance (0.5) marked."""
    if key == "exact_rate":
        ax.set_ylim(-3, 103)
        return
    finite = [v for v in values if math.isfinite(v)]
    low = min([0.45] + [v - 0.03 for v in finite])
    ax.set_ylim(max(0.0, low), 1.01)
    ax.axhline(0.5, color="0.5", linewidth=0.8, linestyle=":")
    ax.text(ax.get_xlim()[0], 0.5, " chance", va="bottom", ha="left", fontsize=7, color="0.4")


#: The two robustness measures of the trade-off figures, one panel each:
#: (quality row key, y label, scale of the plotted value).
_ROBUSTNESS_PANELS = (("exact_rate", "exact payload (%)", 100),
                      ("bit_accuracy", "mean bit accuracy", 1))


def _robustness_figure(q: dict[str, dict], draw, *, xlabel: str, over: str, title: str):
    """A figure of the two robustness panels (exact payload, bit accuracy) against
    one x quantity, with one legend and ``title``. ``draw(ax, key, scale)`` plots the
    methods on a panel; ``over`` says what the means are taken over (y label)."""
    fig = _figure(10.5, 4.4)
    axes = fig.subplots(1, 2)
    for ax, (key, label, scale) in zip(axes, _ROBUSTNESS_PANELS):
        draw(ax, key, scale)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{label}\n{over}")
        ax.grid(True, alpha=0.3)
        _robustness_ylim(ax, key, [scale * v[key] for v in q.values()])
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=9, frameon=False)
    fig.suptitle(title, fontsize=11)
    return fig


def _tradeoff_plot(result, out: Path, formats) -> dict[str, list[str]]:
    q = _quality_by_name(result)
    prov = sorted([m for m in result.methods if m.family == "provmark"
                   and m.payload_bits == 64 and m.key is None], key=lambda m: m.strength)
    peers = [m for m in result.methods if m.family != "provmark" and m.primary]
    if not prov and not peers:
        return {}
    n_cases = max((v["attacked_cases"] for v in q.values()), default=0)

    def draw(ax, key: str, scale: float) -> None:
        if prov:
            xs = [q[m.name]["psnr"] for m in prov]
            ys = [scale * q[m.name][key] for m in prov]
            ax.plot(xs, ys, color=method_style(prov[-1], result.methods)["color"],
                    marker="o", linewidth=1.8, label="provmark (strength varies)", zorder=3)
            for m, x, y in zip(prov, xs, ys):
                if math.isfinite(x) and math.isfinite(y):
                    ax.annotate(f"{m.strength:g}", (x, y), textcoords="offset points",
                                xytext=(0, -13), ha="center", fontsize=8, color="#08306b")
        for m in peers:
            s = method_style(m, result.methods)
            ax.plot([q[m.name]["psnr"]], [scale * q[m.name][key]], linestyle="none",
                    color=s["color"], marker=s["marker"], markersize=8, label=m.name)

    fig = _robustness_figure(
        q, draw, xlabel="PSNR of the marked image (dB; higher = less visible)",
        over=f"mean over {n_cases // max(len(result.config.images), 1)} attack cases",
        title="Robustness vs imperceptibility (numbers under the provmark points: strength)")
    return {"robustness vs PSNR": _save(fig, out, "tradeoff_psnr", formats)}


def _capacity_plot(result, out: Path, formats) -> dict[str, list[str]]:
    q = _quality_by_name(result)
    groups: OrderedDict = OrderedDict()
    for m in result.methods:
        if m.family == "provmark":
            if m.strength != 1.0:
                continue
            label = "provmark@1.0 (fixed 72-bit payload)"
        else:
            label = m.family
        groups.setdefault(label, []).append(m)
    if not groups:
        return {}
    all_bits = sorted({m.payload_bits for ms in groups.values() for m in ms})

    def draw(ax, key: str, scale: float) -> None:
        for glabel, ms in groups.items():
            ms = sorted(ms, key=lambda m: m.payload_bits)
            s = method_style(ms[0], result.methods)
            ax.plot([m.payload_bits for m in ms], [scale * q[m.name][key] for m in ms],
                    color=s["color"], marker=s["marker"], linewidth=1.6, markersize=6,
                    label=glabel)
        ax.set_xscale("log", base=2)
        ax.set_xticks(all_bits)
        ax.set_xticklabels([str(b) for b in all_bits], fontsize=8)
        ax.minorticks_off()

    fig = _robustness_figure(
        q, draw, xlabel="random message bits carried per image",
        over="mean over the attacked cases",
        title="Robustness vs capacity (peers: package defaults, payload length varied; "
              "provmark always codes 72 bits + CRC + RS)")
    return {"robustness vs payload bits": _save(fig, out, "capacity", formats)}


def _tpr_plot(result, out: Path, formats) -> dict[str, list[str]]:
    rows = tpr_rows(result, groups="family") + tpr_rows(result, groups="all")
    if not rows:
        return {}
    methods = [m.name for m in result.methods]
    groups = [g for g in ("none",) + _FAMILY_ORDER + ("all attacks",)
              if any(r["group"] == g for r in rows)]
    cell = {(r["method"], r["group"]): r for r in rows}
    fig = _figure(2.4 + 0.62 * len(groups) * len(FPRS), 1.9 + 0.3 * len(methods))
    axes = fig.subplots(1, len(FPRS), sharey=True)
    image = None
    for ax, fpr in zip(np.atleast_1d(axes), FPRS):
        tag = f"{fpr:.0e}"
        grid = np.full((len(methods), len(groups)), np.nan)
        for i, m in enumerate(methods):
            for j, g in enumerate(groups):
                r = cell.get((m, g))
                if r is not None:
                    grid[i, j] = r[f"tpr@{tag}"]
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for i in range(len(methods)):
            for j in range(len(groups)):
                v = grid[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=7.5,
                            color="black" if v > 0.6 else "white")
        ax.set_xticks(np.arange(len(groups)))
        ax.set_xticklabels(groups, rotation=35, ha="right", fontsize=8.5)
        ax.set_yticks(np.arange(len(methods)))
        ax.set_yticklabels(methods, fontsize=8.5)
        ax.set_title(f"TPR (%) at FPR {_sci(fpr)}", fontsize=10)
        ax.set_xlabel("attack family (none = unattacked)", fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.8, label="true-positive rate")
    fig.suptitle(f"Detection of marked vs unmarked images ({len(result.config.images)} "
                 "image(s) per attack case; p-value models in report.md)", fontsize=11)
    return {"TPR at FPR": _save(fig, out, "tpr_at_fpr", formats)}


def _sci(x: float) -> str:
    """1e-3 rather than 0.001."""
    mant, exp = f"{x:.0e}".split("e")
    return f"{mant}e{int(exp)}"


def make_plots(result, out: str | Path, *, formats=("png", "svg")) -> dict[str, list[str]]:
    """Write every plot into ``out`` in each of ``formats``; returns title -> files."""
    formats = tuple(f.lower().lstrip(".") for f in formats)
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad:
        raise ValueError(f"unsupported plot format(s) {bad}: use png, svg or pdf")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[str]] = {}
    files.update(_severity_plots(result, out, formats))
    files.update(_tradeoff_plot(result, out, formats))
    files.update(_capacity_plot(result, out, formats))
    files.update(_tpr_plot(result, out, formats))
    return files
